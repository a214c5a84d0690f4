/**
 * The PostgreSQL event store: chronicle's production store, over
 * `@effect/sql-pg`.
 *
 * - One call (one round trip, one transaction) per append, whatever the
 *   batch size; the expected version is enforced by the database through a
 *   row per stream, so exactly one of several racing writers wins.
 * - Global positions follow transaction ids: an event's position is
 *   `xid << 16 | index in its batch`, the id taken only after the locks that
 *   order the append (its stream's, its tags', the events table), so a
 *   stream's later version always sits higher. Global readers stop at the
 *   schema's `horizon()`: below every transaction that may still write to
 *   this store (a transaction holding no lock on its events table is a
 *   stranger and holds nobody back). A transaction that commits late can
 *   therefore never land behind a reader, and writers never wait on one
 *   another across streams.
 * - Reads go page by page (bounded on both sides), so memory stays flat.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import { createHash } from "node:crypto"
import Pg from "pg"
import { PgClient } from "@effect/sql-pg"
import { Chunk, Config, type ConfigError, Data, Deferred, Effect, Either, Layer, Option, Redacted, Runtime, Stream } from "effect"
import type { EventPayload, PendingEvent, StoredEvent } from "../../Event.js"
import * as EventId from "../../EventId.js"
import * as EventStore from "../../EventStore.js"
import * as ExpectedVersion from "../../ExpectedVersion.js"
import type { AppendPlan, Location } from "../../internal/appendPlan.js"
import { planAppend } from "../../internal/appendPlan.js"
import { defaultMaxEventBytes, serializeEvent } from "../../internal/serialize.js"
import type { StreamId } from "../../StreamId.js"
import { errorCode, isConnectionLost, storeError, violatedConstraint } from "../../internal/postgres/errors.js"
import { prepare } from "../../internal/postgres/schema.js"
import type { Row, Statement } from "../../internal/postgres/statements.js"
import { groupableEvents, makeGroupCommit } from "../../internal/postgres/groupCommit.js"
import { columns, json, payloadOf, planned, queryPredicate, rawTypes, statements, toStored } from "../../internal/postgres/statements.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface PostgresEventStoreOptions {
  /** The PostgreSQL schema holding the store's tables; default `chronicle`. */
  readonly schema?: string | undefined
  /** Largest accepted event (UTF-8 bytes of data plus metadata); default 1 MiB. */
  readonly maxEventBytes?: number | undefined
  /** Rows fetched per page when reading; default 1,000. */
  readonly pageSize?: number | undefined
  /** Apply the schema migrations when the store is built; default true. */
  readonly migrate?: boolean | undefined
  /**
   * A `pg` pool on the same database as the `SqlClient`: the store then runs
   * its hot statements on it as named (prepared) statements, outside of any
   * transaction of yours (inside one it uses the `SqlClient`, to join it).
   * `layerFromUrl` and `layerConfig` set this up.
   */
  readonly pool?: Pg.Pool | undefined
  /**
   * Announce appends on a LISTEN/NOTIFY channel so subscriptions (here and in
   * other processes) wake at once instead of at their next poll; default true.
   */
  readonly notify?: boolean | undefined
}

/** How many times a statement is re-run on a fresh connection after losing its own. */
const reconnectAttempts = 3

/** Most events one append may carry: the batch index takes 16 bits of the position. */
const maxBatch = 0xffff


/** A conditional append refused on one of its own events: maybe a re-send of a stored batch. */
class ResentBatch extends Data.TaggedError("ResentBatch")<{ readonly failed: EventStore.AppendConditionFailed }> {}

/**
 * Builds the store over the `SqlClient` in context (normally a `PgClient`),
 * applying its migrations first unless told not to.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: PostgresEventStoreOptions = {}
): Effect.Effect<EventStore.EventStoreService, EventStore.StoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const tables = yield* prepare(options)
    const sql = yield* SqlClient.SqlClient
    const maxBytes = options.maxEventBytes ?? defaultMaxEventBytes
    const pageSize = options.pageSize ?? 1000
    const q = statements(tables)

    const viaClient = (st: Statement, params: ReadonlyArray<unknown>) =>
      sql.unsafe(st.text, params).values as Effect.Effect<ReadonlyArray<Row>, unknown>

    const { pool } = options
    const viaPool = pool === undefined ? viaClient : (st: Statement, params: ReadonlyArray<unknown>) =>
      Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (transaction) =>
        Option.isSome(transaction)
          ? viaClient(st, params)
          : Effect.async<ReadonlyArray<Row>, unknown>((resume) => {
            pool.query<Array<unknown>>(
              st.name === undefined
                ? { text: st.text, values: params as Array<unknown>, rowMode: "array", types: rawTypes }
                : { name: st.name, text: st.text, values: params as Array<unknown>, rowMode: "array", types: rawTypes },
              (error, result) => resume(error ? Effect.fail(error) : Effect.succeed(result.rows))
            )
          }))

    /** Every statement is safe to repeat (appends are idempotent by event id): retry lost connections. */
    const execute = (st: Statement, params: ReadonlyArray<unknown>, attempt = 1): Effect.Effect<ReadonlyArray<Row>, unknown> =>
      Effect.catchIf(
        viaPool(st, params),
        (error) => attempt <= reconnectAttempts && isConnectionLost(error),
        () => execute(st, params, attempt + 1)
      )

    const run = (operation: string, st: Statement, params: ReadonlyArray<unknown>) =>
      Effect.mapError(execute(st, params), (error) => storeError(operation, error))

    const currentVersion = (streamId: StreamId) =>
      Effect.map(run("streamVersion", q.streamVersion, [streamId]), (rows) => (rows.length === 0 ? 0 : Number(rows[0]![0])))

    const encodeBatch = (streamId: StreamId, events: ReadonlyArray<PendingEvent>) => {
      const parts: Array<string> = []
      for (let i = 0; i < events.length; i++) {
        const event = events[i]!
        const serialized = serializeEvent(streamId, i, event, maxBytes)
        if (Either.isLeft(serialized)) return serialized
        parts.push(
          `{"event_id":"${event.eventId}","type":${JSON.stringify(event.type)},"schema_version":${event.schemaVersion},"data":${serialized.right.data},"metadata":${serialized.right.metadata}${
            event.tags.length === 0 ? "" : `,"tags":${JSON.stringify(event.tags)}`
          }}`
        )
      }
      return Either.right(`[${parts.join(",")}]`)
    }

    /** After a refused or failed write: was it a re-send, a conflict, a duplicate, or a race to retry? */
    const explainRefusal = (
      streamId: StreamId,
      events: ReadonlyArray<PendingEvent>,
      expected: ExpectedVersion.ExpectedVersion
    ) =>
      Effect.gen(function*() {
        const ids = JSON.stringify(events.map((e) => e.eventId))
        const [row] = yield* run("append", q.locate, [streamId, ids])
        const deleted = row?.[1] === true
        const found = (json(row?.[2]) ?? []) as ReadonlyArray<{ id: string; s: string; v: number; p: string }>
        const located = new Map<string, Location>()
        for (const entry of found) {
          located.set(entry.id, {
            streamId: entry.s as StreamId,
            streamVersion: Number(entry.v),
            globalPosition: BigInt(entry.p)
          })
        }
        const version = row?.[0] == null ? 0 : Number(row[0])
        const plan = planAppend(streamId, events, expected, version, (id) => located.get(id))
        const alreadyStored = Either.isRight(plan) && plan.right._tag === "AlreadyStored"
        const outcome: Either.Either<AppendPlan, EventStore.ConcurrencyConflict | EventStore.DuplicateEventId | EventStore.StreamDeleted> =
          deleted && !alreadyStored ? Either.left(new EventStore.StreamDeleted({ streamId })) : plan
        // a stored id decides the refusal, even of a conditional append that its own stored events tripped
        if (Either.isLeft(outcome) && outcome.left._tag === "DuplicateEventId") return yield* outcome.left
        return outcome
      })

    /** An advisory lock key per tag, for this schema: a signed 64-bit integer. */
    const lockKey = (tag: string) => createHash("sha256").update(`${tables.schema}\u0000${tag}`).digest().readBigInt64BE(0)

    /**
     * A tagged or conditional append, as one call of the schema's
     * `append_guarded` (one round trip, one transaction): shared locks on its
     * events' tags, exclusive locks on one tag of each condition item (a
     * writer of a matching event carries that tag, so it waits for us or we
     * for it), the whole table when an item has no tags, then the condition's
     * check, then the write. Locks are taken in sorted key order, so writers
     * never wait on each other in a cycle; writers on unrelated tags never
     * wait at all; appends without tags or condition do not come here.
     */
    const guardedRequest = (
      streamId: StreamId,
      events: ReadonlyArray<PendingEvent>,
      condition: EventStore.SettledCondition | undefined,
      write: () => string
    ): string | undefined => {
      if (condition === undefined && events.every((event) => event.tags.length === 0)) return undefined
      const locks = new Map<bigint, boolean>()
      let wholeTable = false
      for (const item of condition?.failIfEventsMatch.items ?? []) {
        if (item.tags === undefined || item.tags.length === 0) wholeTable = true
        else locks.set(lockKey(item.tags[0]!), true)
      }
      for (const event of events) {
        for (const tag of event.tags) {
          const key = lockKey(tag)
          if (!locks.has(key)) locks.set(key, false)
        }
      }
      const keys = [...locks.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      const items = condition === undefined
        ? null
        : condition.failIfEventsMatch.items.map((item) => ({ types: item.types ?? null, tags: item.tags ?? null }))
      return `${write().slice(0, -1)},"keys":[${keys.join(",")}],"exclusive":${JSON.stringify(keys.map((key) => locks.get(key)!))},"whole":${wholeTable},"q":${
        JSON.stringify(items)
      },"after":${condition?.after ?? 0},"token":${JSON.stringify(condition?.token ?? null)}}`
    }

    /** The rows the plain append statement would have returned, or the condition's refusal. */
    const appendGuarded = (streamId: StreamId, events: ReadonlyArray<PendingEvent>, condition: EventStore.SettledCondition | undefined, request: string) =>
      Effect.flatMap(execute(q.appendGuarded, [request]), (rows): Effect.Effect<ReadonlyArray<Row>, unknown> => {
        const row = rows[0]
        if (row === undefined || row[0] === "refused") return Effect.succeed([])
        if (row[0] === "ok") return Effect.succeed([[row[1], row[2]]])
        const failed = new EventStore.AppendConditionFailed({
          streamId,
          query: condition!.failIfEventsMatch,
          after: condition!.after,
          position: BigInt(row[3] as string)
        })
        // the batch's own event: a re-send of a batch already stored, to be recognised as such
        return Effect.fail(events.some((event) => event.eventId === row[4]) ? new ResentBatch({ failed }) : failed)
      })

    const grouped = makeGroupCommit({ execute, appendGroup: q.appendGroup, maxBatch })

    const append = (
      streamId: StreamId,
      events: ReadonlyArray<PendingEvent>,
      expected: ExpectedVersion.ExpectedVersion,
      condition: EventStore.SettledCondition | undefined
    ): Effect.Effect<EventStore.AppendResult, EventStore.AppendError> =>
      Effect.gen(function*() {
        if (events.length === 0) {
          const version = yield* currentVersion(streamId)
          return ExpectedVersion.matches(expected, version)
            ? { streamId, streamVersion: version, globalPositions: [] }
            : yield* new EventStore.ConcurrencyConflict({ streamId, expected, actual: version })
        }
        if (events.length > maxBatch) {
          return yield* new EventStore.InvalidEvent({
            streamId,
            index: maxBatch,
            reason: `an append carries at most ${maxBatch} events; split the batch`
          })
        }
        const batch = yield* encodeBatch(streamId, events)
        const mode = expected === ExpectedVersion.Any
          ? "any"
          : expected === ExpectedVersion.StreamExists
          ? "exists"
          : expected === ExpectedVersion.NoStream || expected === 0
          ? "nostream"
          : "exact"
        const st = q.appendStream
        const params = [streamId, mode, mode === "exact" ? expected : null, events.length, batch]
        /** The append as a request of the schema's functions; built only for a group or a guarded append. */
        const write = () =>
          `{"s":${JSON.stringify(streamId)},"m":"${mode}","e":${mode === "exact" ? expected : "null"},"n":${events.length},"ev":${batch}}`
        const guarded = guardedRequest(streamId, events, condition, write)
        const attemptAppend = guarded !== undefined
          ? appendGuarded(streamId, events, condition, guarded)
          : pool === undefined
          ? execute(st, params)
          : Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (transaction) =>
            // large batches gain more from running on many connections at once than from sharing a commit
            Option.isSome(transaction) || events.length > groupableEvents
              ? execute(st, params)
              : grouped(st, params, write, events.length))
        for (let attempt = 1;; attempt++) {
          const outcome = yield* Effect.either(attemptAppend)
          if (Either.isLeft(outcome) && outcome.left instanceof EventStore.AppendConditionFailed) return yield* outcome.left
          if (Either.isLeft(outcome) && outcome.left instanceof ResentBatch) {
            // a re-send of a batch already stored matches its own condition: it succeeds again
            const plan = yield* explainRefusal(streamId, events, expected)
            if (Either.isRight(plan) && plan.right._tag === "AlreadyStored") return plan.right.result
            return yield* outcome.left.failed
          }
          if (Either.isRight(outcome) && outcome.right.length > 0) {
            const row = outcome.right[0]!
            const base = BigInt(row[1] as string)
            yield* announce
            return {
              streamId,
              streamVersion: Number(row[0]),
              globalPositions: events.map((_, i) => base + BigInt(i + 1))
            }
          }
          if (Either.isLeft(outcome) && errorCode(outcome.left) === "40001") {
            return yield* new EventStore.TransactionConflict({ streamId })
          }
          if (Either.isLeft(outcome) && !isUniqueViolation(outcome.left)) {
            return yield* storeError("append", outcome.left)
          }
          const plan = yield* explainRefusal(streamId, events, expected)
          if (Either.isLeft(plan)) return yield* plan.left
          if (plan.right._tag === "AlreadyStored") return plan.right.result
          if (attempt >= 5) {
            return yield* new EventStore.StoreError({
              operation: "append",
              reason: "the append kept racing with concurrent writers without a decision; try again"
            })
          }
        }
      })

    /**
     * Wakes subscriptions. Inside a transaction the notification is part of
     * it (delivered on commit). Otherwise one notification at a time is in
     * flight, sent after the commit: appends never wait for it, and each
     * commit is followed by a notification sent after it.
     */
    let notifying: "idle" | "running" | "again" = "idle"
    // its own transaction, committed without waiting for the WAL flush: a hint, not data
    const notifyText = `BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_notify('${tables.channel}', 'append'); COMMIT`
    const notifyOnce: Effect.Effect<void> = pool === undefined
      ? Effect.ignore(run("notify", q.notify, [tables.channel, "append"]))
      : Effect.async<void>((resume) => {
        pool.query(notifyText, () => resume(Effect.void))
      })
    const sendNotification: Effect.Effect<void> = notifyOnce.pipe(
      Effect.zipRight(Effect.suspend(() => {
        if (notifying === "again") {
          notifying = "running"
          return sendNotification
        }
        notifying = "idle"
        return Effect.void
      }))
    )
    const announce = options.notify === false ? Effect.void : Effect.flatMap(
      Effect.serviceOption(SqlClient.TransactionConnection),
      (transaction) => {
        if (Option.isSome(transaction)) return Effect.ignore(run("notify", q.notify, [tables.channel, "append"]))
        if (notifying !== "idle") {
          notifying = "again"
          return Effect.void
        }
        notifying = "running"
        return Effect.asVoid(Effect.forkDaemon(sendNotification))
      }
    )

    const pgClient = yield* Effect.serviceOption(PgClient.PgClient)
    /**
     * LISTEN on the store's channel through the `PgClient`. `listen` gives no
     * sign of when it is active, so the watcher notifies itself until its own
     * token comes back (for at most a second; polling covers the rest).
     */
    const watch = Option.isNone(pgClient) ? undefined : (onChange: () => void) =>
      Effect.gen(function*() {
        const token = `ready:${EventId.unsafeGenerate()}`
        const ready = yield* Deferred.make<void>()
        yield* pgClient.value.listen(tables.channel).pipe(
          Stream.runForEach((payload) => (payload === token ? Deferred.succeed(ready, undefined) : Effect.sync(onChange))),
          Effect.catchAllCause((cause) => Effect.logWarning("chronicle: LISTEN failed; subscriptions poll", cause)),
          Effect.forkScoped
        )
        for (let attempt = 0; attempt < 20; attempt++) {
          yield* Effect.ignore(run("notify", q.notify, [tables.channel, token]))
          if (Option.isSome(yield* Effect.timeoutOption(Deferred.await(ready), "50 millis"))) return
        }
      })

    /**
     * Pages through a stream's range, each page bounded on both sides (versions
     * are dense), and all of them by the stream's version when the read
     * starts: backwards reads look it up first, forwards pages carry it (the
     * first page's bounds the rest), so appends made meanwhile are not read.
     */
    const pages = <A extends { readonly streamVersion: number }>(
      streamId: StreamId,
      range: EventStore.StreamRange,
      queries: { readonly forwards: Statement; readonly backwards: Statement },
      decode: (row: Row) => A
    ) => {
      const page = Math.min(range.chunkSize, pageSize)
      const forwards = range.direction === "forwards"
      const query = forwards ? queries.forwards : queries.backwards
      const fetch = (low: number, high: number, count: number) => run("read", query, [streamId, low, high, count])
      const pagesUpTo = (top: number) =>
        Stream.paginateChunkEffect(
          { next: forwards ? range.fromVersion : top, remaining: range.limit, top },
          ({ next, remaining, top }) => {
            const count = Math.min(page, remaining)
            const low = forwards ? next : Math.max(range.fromVersion, next - count + 1)
            const high = forwards ? Math.min(top, next + count - 1) : next
            if (count <= 0 || low > high) return Effect.succeed([Chunk.empty<A>(), Option.none()])
            return Effect.map(fetch(low, high, count), (rows) => {
              const events = rows.map(decode)
              const done = events.length < high - low + 1 || events.length >= remaining
              const last = events.at(-1)?.streamVersion ?? next
              const bound = forwards && rows.length > 0 ? Math.min(top, Number(rows[0]!.at(-1))) : top
              const following = { next: forwards ? last + 1 : last - 1, remaining: remaining - events.length, top: bound }
              return [Chunk.unsafeFromArray(events), done ? Option.none() : Option.some(following)] as const
            })
          }
        )
      // backwards reads start at the stream's top, which only the database knows
      return forwards
        ? pagesUpTo(range.toVersion)
        : Stream.unwrap(Effect.map(currentVersion(streamId), (version) => pagesUpTo(Math.min(version, range.toVersion))))
    }

    const read = (streamId: StreamId, range: EventStore.StreamRange) =>
      pages(streamId, range, { forwards: q.readForwards, backwards: q.readBackwards }, toStored)

    const readPayloads = (streamId: StreamId, range: EventStore.StreamRange) =>
      pages(
        streamId,
        range,
        { forwards: q.readPayloadsForwards, backwards: q.readPayloadsBackwards },
        (row) => payloadOf(streamId, row)
      )

    /**
     * The global log from `range.fromPosition`, up to the horizon found by the
     * first page: a read returns what had settled when it started, however
     * many pages it takes; following what comes later is for subscriptions.
     */
    const readAll = (range: EventStore.LogRange) => {
      const page = Math.min(range.chunkSize, pageSize)
      return Stream.paginateChunkEffect(
        { from: range.fromPosition, remaining: range.limit, bound: null as string | null },
        ({ bound, from, remaining }) => {
          const count = Math.min(page, remaining)
          if (count <= 0) return Effect.succeed([Chunk.empty<StoredEvent>(), Option.none()])
          return Effect.map(run("readAll", q.readAll, [String(from), count, bound]), (rows) => {
            const events = rows.map(toStored)
            const last = events.at(-1)
            const done = events.length < count || last === undefined
            return [
              Chunk.unsafeFromArray(events),
              done
                ? Option.none()
                : Option.some({ from: last.globalPosition + 1n, remaining: remaining - count, bound: rows[0]![10] as string })
            ] as const
          })
        }
      )
    }

    /** In one transaction, under the stream row's lock: check the version, tombstone, erase if asked. */
    const deleteStream = (streamId: StreamId, expected: ExpectedVersion.ExpectedVersion, erase: boolean) =>
      sql.withTransaction(Effect.gen(function*() {
        // the stream's lock first, as every writer takes it: no cycle with an append waiting on the row
        yield* run("deleteStream", q.lockStreamKey, [streamId])
        yield* run("deleteStream", q.ensureStream, [streamId])
        const [row] = yield* run("deleteStream", q.lockStream, [streamId])
        const version = Number(row?.[0] ?? 0)
        if (row?.[1] !== true) {
          if (!ExpectedVersion.matches(expected, version)) {
            return yield* new EventStore.ConcurrencyConflict({ streamId, expected, actual: version })
          }
          yield* run("deleteStream", q.tombstone, [streamId])
        }
        if (erase) yield* run("deleteStream", q.eraseEvents, [streamId])
      })).pipe(Effect.mapError((error) => error instanceof EventStore.ConcurrencyConflict ? error : storeError("deleteStream", error)))

    return EventStore.make({
      name: "postgres",
      append,
      read,
      readPayloads,
      readPage: (streamId, page) =>
        Effect.map(
          run("read", q.readPayloadsForwards, [streamId, page.fromVersion, page.toVersion, page.limit]),
          (rows) => rows.map((row): EventPayload => payloadOf(streamId, row))
        ),
      readAll,
      query: (query, range) => {
        const page = Math.min(range.chunkSize, pageSize)
        const predicate = queryPredicate(query, 4)
        // bounded, like readAll, by the horizon its first page finds
        const st = planned(`SELECT ${columns}, h.bound::text FROM (SELECT coalesce($3::bigint, ${tables.schema}.horizon()) AS bound) AS h,
           LATERAL (SELECT * FROM ${tables.events}
                    WHERE global_position > $1 AND global_position < h.bound AND ${predicate.sql}
                    ORDER BY global_position LIMIT $2) AS e`)
        return Stream.paginateChunkEffect(
          { after: range.after, remaining: range.limit, bound: null as string | null },
          ({ after, bound, remaining }) => {
            const count = Math.min(page, remaining)
            if (count <= 0) return Effect.succeed([Chunk.empty<StoredEvent>(), Option.none()])
            return Effect.map(run("query", st, [String(after), count, bound, ...predicate.params]), (rows) => {
              const events = rows.map(toStored)
              const last = events.at(-1)
              const done = events.length < count || last === undefined
              return [
                Chunk.unsafeFromArray(events),
                done
                  ? Option.none()
                  : Option.some({ after: last.globalPosition, remaining: remaining - count, bound: rows[0]![10] as string })
              ] as const
            })
          }
        )
      },
      queryForDecision: (query) => {
        const predicate = queryPredicate(query, 1)
        // one statement: the rows and the snapshot they were read in; no horizon, so a reader sees its own writes
        const st = planned(`WITH s AS (SELECT pg_current_snapshot()::text AS snapshot)
           SELECT s.snapshot, e.* FROM s LEFT JOIN LATERAL (
             SELECT ${columns} FROM ${tables.events} WHERE ${predicate.sql}
           ) AS e ON true ORDER BY e.p`)
        return Effect.map(run("queryForDecision", st, predicate.params), (rows): EventStore.DecisionRead => {
          const events = rows[0]?.[1] == null ? [] : rows.map((row) => toStored(row.slice(1)))
          return {
            events,
            condition: {
              failIfEventsMatch: query,
              after: events.at(-1)?.globalPosition ?? 0n,
              token: (rows[0]?.[0] as string | undefined) ?? undefined
            }
          }
        })
      },
      headPosition: Effect.map(run("headPosition", q.headPosition, []), (rows) => BigInt((rows[0]?.[0] as string | undefined) ?? "0")),
      watch,
      streamVersion: currentVersion,
      deleteStream,
      isDeleted: (streamId) => Effect.map(run("isDeleted", q.isDeleted, [streamId]), (rows) => rows[0]?.[0] === true)
    })
  })

const isUniqueViolation = (error: unknown) => {
  if (errorCode(error) !== "23505") return false
  const constraint = violatedConstraint(error)
  return constraint === undefined || constraint.endsWith("event_id_key") || constraint.endsWith("stream_version_key")
}

/**
 * The store as a Layer over the `SqlClient` in context.
 *
 * @example
 * const Store = PostgresEventStore.layer({ schema: "billing" }).pipe(
 *   Layer.provide(PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL!) }))
 * )
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: PostgresEventStoreOptions = {}
): Layer.Layer<EventStore.EventStore, EventStore.StoreError, SqlClient.SqlClient> =>
  Layer.effect(EventStore.EventStore, make(options))

/**
 * Connection settings for `layerFromUrl`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionOptions extends Omit<PostgresEventStoreOptions, "pool"> {
  readonly url: string | Redacted.Redacted
  /** Pool size; default 10. */
  readonly maxConnections?: number | undefined
  /** How long to wait for a connection (new or pooled) before failing; default 10 s. */
  readonly connectTimeoutMs?: number | undefined
  /** The `application_name` of the pool's connections; default `chronicle`. */
  readonly applicationName?: string | undefined
}

/**
 * The store with its own connection pool, from a `postgres://` URL. Its hot
 * statements run prepared on that pool; the `SqlClient` it also provides
 * shares the pool (for snapshots, projections, your own queries).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromUrl = (
  options: ConnectionOptions
): Layer.Layer<EventStore.EventStore | SqlClient.SqlClient, EventStore.StoreError> =>
  Layer.unwrapScoped(
    Effect.gen(function*() {
      const url = Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url
      const runtime = yield* Effect.runtime<never>()
      const pool = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const pool = new Pg.Pool({
            connectionString: url,
            max: options.maxConnections ?? 10,
            connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
            application_name: options.applicationName ?? "chronicle"
          })
          // an idle connection that died (server restart, backend terminated): the pool drops it, we say so
          pool.on("error", (error) =>
            Runtime.runFork(runtime)(
              Effect.logWarning("chronicle: an idle PostgreSQL connection failed and was dropped from the pool").pipe(
                Effect.annotateLogs({ error: error.message, applicationName: options.applicationName ?? "chronicle" })
              )
            ))
          return pool
        }),
        (pool) => Effect.promise(() => pool.end().catch(() => undefined))
      )
      const client = PgClient.layerFromPool({ acquire: Effect.succeed(pool) }).pipe(
        Layer.mapError((error) => storeError("connect", error))
      )
      return layer({ ...options, pool }).pipe(Layer.provideMerge(client))
    })
  )

/**
 * `layer` with its options read from `Config` (over the `SqlClient` in
 * context).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<PostgresEventStoreOptions>
): Layer.Layer<EventStore.EventStore, EventStore.StoreError | ConfigError.ConfigError, SqlClient.SqlClient> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))

/**
 * The connection settings read from the environment: `DATABASE_URL`
 * (required) and `CHRONICLE_PG_SCHEMA` (default `chronicle`); give it to
 * `layerFromUrlConfig`, or build your own `Config`.
 *
 * @since 0.2.0
 * @category layers
 */
export const environment: Config.Config<ConnectionOptions> = Config.all({
  url: Config.redacted("DATABASE_URL"),
  schema: Config.string("CHRONICLE_PG_SCHEMA").pipe(Config.withDefault("chronicle"))
})

/**
 * `layerFromUrl` with its settings read from `Config`, like
 * `PgClient.layerConfig`.
 *
 * @example
 * PostgresEventStore.layerFromUrlConfig(PostgresEventStore.environment)
 * PostgresEventStore.layerFromUrlConfig({ url: Config.redacted("EVENTS_URL"), maxConnections: Config.succeed(16) })
 *
 * @since 0.2.0
 * @category layers
 */
export const layerFromUrlConfig = (
  config: Config.Config.Wrap<ConnectionOptions>
): Layer.Layer<EventStore.EventStore | SqlClient.SqlClient, EventStore.StoreError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layerFromUrl))

/**
 * Applies the store's migrations (idempotent; safe to run from several
 * processes at once).
 *
 * @since 0.1.0
 * @category constructors
 */
export const migrate = (
  options: Pick<PostgresEventStoreOptions, "schema"> = {}
): Effect.Effect<void, EventStore.StoreError, SqlClient.SqlClient> =>
  Effect.asVoid(prepare({ schema: options.schema }))
