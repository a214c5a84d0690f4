/**
 * What every step of the PostgreSQL event store shares: its tables and
 * statements, the `SqlClient`, its own pool if it has one, and how a
 * statement is run (on the pool outside a transaction of the caller's, on the
 * `SqlClient` inside one; re-run on a fresh connection when its own was lost).
 */
import { SqlClient } from "@effect/sql"
import type Pg from "pg"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { StoreError } from "../../EventStore.js"
import { defaultMaxEventBytes } from "../serialize.js"
import type { StreamId } from "../../StreamId.js"
import { isConnectionLost, storeError } from "./errors.js"
import { queryPool } from "./pool.js"
import { replicaReader } from "./replica.js"
import { prepare, type Tables } from "./schema.js"
import { type Row, type Statement, statements } from "./statements.js"

/** The settings the steps read (those of `PostgresEventStoreOptions`). */
export interface ContextOptions {
  readonly schema?: string | undefined
  readonly maxEventBytes?: number | undefined
  readonly pageSize?: number | undefined
  readonly migrate?: boolean | undefined
  readonly pool?: Pg.Pool | undefined
  readonly notify?: boolean | undefined
  readonly readReplica?: { readonly pool: Pg.Pool } | undefined
}

/** One store's shared state and statement runners. */
export interface Context {
  readonly tables: Tables
  readonly q: ReturnType<typeof statements>
  readonly sql: SqlClient.SqlClient
  readonly pool: Pg.Pool | undefined
  readonly maxBytes: number
  readonly pageSize: number
  /** Runs a statement; every statement is safe to repeat, so a lost connection is retried. */
  readonly execute: (st: Statement, params: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<Row>, unknown>
  /** `execute` on the store's own pool, for a caller known to be outside a transaction of its own; `undefined` without a pool. */
  readonly onPool: ((st: Statement, params: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<Row>, unknown>) | undefined
  /** `execute`, failing with a `StoreError` of `operation`. */
  readonly run: (operation: string, st: Statement, params: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<Row>, StoreError>
  /** `run` for a page of the global log (bound in its third parameter): on the read replica when there is one. */
  readonly readLog: (operation: string, st: Statement, params: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<Row>, StoreError>
  /** The stream's version; 0 when it has no row. */
  readonly currentVersion: (streamId: StreamId) => Effect.Effect<number, StoreError>
}

/** How many times a statement is re-run on a fresh connection after losing its own. */
const reconnectAttempts = 3

type Query = (st: Statement, params: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<Row>, unknown>

/** Every statement is safe to repeat (appends are idempotent by event id): re-run it after a lost connection. */
const retryingLostConnections = (query: Query): Query => {
  const attempt = (st: Statement, params: ReadonlyArray<unknown>, made: number): Effect.Effect<ReadonlyArray<Row>, unknown> =>
    Effect.catchIf(
      query(st, params),
      (error) => made <= reconnectAttempts && isConnectionLost(error),
      () => attempt(st, params, made + 1)
    )
  return (st, params) => attempt(st, params, 1)
}

/**
 * A store over a standby would read the global log wrongly, not just late:
 * there `pg_current_snapshot()` lists no running transactions (a standby
 * keeps them apart), so `horizon()` ends at the newest id and a late commit
 * replayed afterwards lands behind its readers. Such a store is refused; the
 * `readReplica` option is how a replica is read.
 */
const refuseStandby = (sql: SqlClient.SqlClient): Effect.Effect<void, StoreError> =>
  Effect.flatMap(
    Effect.mapError(sql<{ readonly standby: boolean }>`SELECT pg_is_in_recovery() AS standby`, (error) => storeError("connect", error)),
    (rows) =>
      rows[0]?.standby === true
        ? Effect.fail(
          new StoreError({
            operation: "connect",
            reason:
              "the PostgreSQL server is a standby (in recovery): a store cannot run over it, as its global reads would skip late commits; build the store on the primary with readReplica pointing at the standby"
          })
        )
        : Effect.void
  )

/** Prepares the schema (migrating unless told not to) and builds the context over the `SqlClient` in context. */
export const makeContext = (options: ContextOptions): Effect.Effect<Context, StoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* refuseStandby(sql)
    const tables = yield* prepare(options)
    const q = statements(tables, options.notify !== false)

    const viaClient = (st: Statement, params: ReadonlyArray<unknown>) =>
      sql.unsafe(st.text, params).values as Effect.Effect<ReadonlyArray<Row>, unknown>

    const { pool } = options
    const viaPool = pool === undefined ? viaClient : (st: Statement, params: ReadonlyArray<unknown>) =>
      Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (transaction) =>
        Option.isSome(transaction) ? viaClient(st, params) : queryPool(pool, st, params))

    const execute = retryingLostConnections(viaPool)
    const run = (operation: string, st: Statement, params: ReadonlyArray<unknown>) =>
      Effect.mapError(execute(st, params), (error) => storeError(operation, error))

    const currentVersion = (streamId: StreamId) =>
      Effect.map(run("streamVersion", q.streamVersion, [streamId]), (rows) => (rows.length === 0 ? 0 : Number(rows[0]![0])))

    return {
      tables,
      q,
      sql,
      pool,
      maxBytes: options.maxEventBytes ?? defaultMaxEventBytes,
      pageSize: options.pageSize ?? 1000,
      execute: (st, params) => execute(st, params),
      onPool: pool === undefined ? undefined : retryingLostConnections((st, params) => queryPool(pool, st, params)),
      run,
      readLog: options.readReplica === undefined ? run : replicaReader({ pool: options.readReplica.pool, run, tables }),
      currentVersion
    }
  })
