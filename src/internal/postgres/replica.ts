/**
 * Global-log reads from a streaming replica. A standby cannot find the
 * horizon itself (its `pg_locks` are its own, so the primary's in-flight
 * appenders are invisible there), and it shows commits only once it has
 * replayed them. So a read takes its horizon on the primary, with the
 * primary's WAL insert position in the same statement, waits until the
 * replica has replayed that far, and only then reads its pages there, below
 * that horizon: everything below it had committed on the primary before the
 * position was taken, so the replica shows all of it, and nothing lands
 * below it later (see `horizon()` in `schema`).
 */
import type Pg from "pg"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { StoreError } from "../../EventStore.js"
import { storeError } from "./errors.js"
import { queryPool } from "./pool.js"
import type { Tables } from "./schema.js"
import { type Row, type Statement, statement } from "./statements.js"

/** Where a global-log page is read: the primary (by `run`) or a replica's pool. */
export interface ReplicaRead {
  readonly pool: Pg.Pool
  readonly tables: Tables
  readonly run: (operation: string, st: Statement, params: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<Row>, StoreError>
}

/**
 * The WAL position a replica must replay to, given the primary's insert
 * position `lsn` (an SQL expression): when it sits just past a page header
 * (24 bytes) or a segment's first, long header (40 bytes) with nothing after
 * it, the replica's replay stops at the boundary, so the boundary is what it
 * must reach.
 */
export const replayTarget = (lsn: string) =>
  `(CASE WHEN (${lsn} - '0/0'::pg_lsn) % pg_size_bytes(current_setting('wal_segment_size')) = 40 THEN ${lsn} - 40
         WHEN (${lsn} - '0/0'::pg_lsn) % 8192 = 24 THEN ${lsn} - 24
         ELSE ${lsn} END)`

/**
 * The horizon and, after the statement's snapshot, the WAL insert position
 * (the write position could lag a commit made with `synchronous_commit =
 * off`) as the replica must replay it.
 */
const settledStatement = (tables: Tables) =>
  statement(`SELECT ${tables.schema}.horizon()::text, ${replayTarget("w.l")}::text
     FROM (SELECT pg_current_wal_insert_lsn() AS l) AS w`)

/** Whether the replica has replayed up to `$1`; null when it is not a standby (not in recovery). */
const replayed = statement(`SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`)

/** The longest pause between two looks at the replica's replay position. */
const maxPollMs = 50

/**
 * A global-log page reader over the replica: the first page of a read (no
 * bound yet) takes the horizon and WAL position on the primary and waits for
 * the replica to replay that far; every page then runs on the replica with
 * that bound. A replica that fails (down, refusing, promoted) costs nothing
 * but speed: the page is read from the primary, with the same bound, and a
 * warning is logged.
 */
export const replicaReader = ({ pool, run, tables }: ReplicaRead) => {
  const settled = settledStatement(tables)
  const onReplica = (st: Statement, params: ReadonlyArray<unknown>) =>
    Effect.mapError(queryPool(pool, st, params), (error) => storeError("readReplica", error))

  const awaitReplay = (lsn: string): Effect.Effect<void, StoreError | "not a standby"> =>
    Effect.gen(function*() {
      for (let attempt = 0;; attempt++) {
        const reached = (yield* onReplica(replayed, [lsn]))[0]?.[0]
        if (reached === true) return
        if (reached == null) return yield* Effect.fail("not a standby" as const)
        yield* Effect.sleep(Duration.millis(Math.min(maxPollMs, 2 ** attempt)))
      }
    }).pipe(Effect.withSpan("PostgresEventStore.awaitReplica", { attributes: { "chronicle.lsn": lsn } }))

  const fallBack = (operation: string, st: Statement, params: ReadonlyArray<unknown>) => (reason: unknown) =>
    Effect.zipRight(
      Effect.logWarning("chronicle: the read replica failed; this page is read from the primary").pipe(
        Effect.annotateLogs({ reason: typeof reason === "string" ? reason : (reason as StoreError).reason })
      ),
      run(operation, st, params)
    )

  /** Runs a global-log page statement whose third parameter is the bound (null on a read's first page). */
  return (operation: string, st: Statement, params: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<Row>, StoreError> => {
    if (params[2] != null) return Effect.catchAll(onReplica(st, params), fallBack(operation, st, params))
    return Effect.flatMap(run(operation, settled, []), (rows) => {
      const bound = rows[0]![0] as string
      const bounded = [...params.slice(0, 2), bound, ...params.slice(3)]
      return awaitReplay(rows[0]![1] as string).pipe(
        Effect.zipRight(onReplica(st, bounded)),
        Effect.catchAll(fallBack(operation, st, bounded))
      )
    })
  }
}
