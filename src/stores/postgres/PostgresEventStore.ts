/**
 * The PostgreSQL event store: chronicle's production store, over
 * `@effect/sql-pg`.
 *
 * - One statement (one round trip, one transaction) per append, whatever the
 *   batch size; the expected version is enforced by the database through a
 *   row per stream, so exactly one of several racing writers wins.
 * - Global positions follow transaction ids: an event's position is
 *   `xid << 16 | index in its batch`, and global readers only take positions
 *   below `pg_snapshot_xmin << 16`, where every transaction has finished. A
 *   transaction that commits late can therefore never land behind a reader,
 *   and writers never wait on one another across streams.
 * - Reads go page by page (bounded on both sides), so memory stays flat.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Chunk, Config, Effect, Either, Layer, Option, Redacted, Stream } from "effect"
import type { PendingEvent, StoredEvent } from "../../Event.js"
import type { EventId } from "../../EventId.js"
import * as EventStore from "../../EventStore.js"
import * as ExpectedVersion from "../../ExpectedVersion.js"
import type { Location } from "../../internal/appendPlan.js"
import { planAppend } from "../../internal/appendPlan.js"
import { defaultMaxEventBytes, serializeEvent } from "../../internal/serialize.js"
import type { StreamId } from "../../StreamId.js"
import { errorCode, isConnectionLost, storeError, violatedConstraint } from "./errors.js"
import type { Tables } from "./schema.js"
import { migrate as migrateTables, tablesOf } from "./schema.js"

/**
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
}

/** How many times a statement is re-run on a fresh connection after losing its own. */
const reconnectAttempts = 3

/** Most events one append may carry: the batch index takes 16 bits of the position. */
const maxBatch = 0xffff


interface EventRow {
  readonly p: string
  readonly s: string
  readonly v: string
  readonly id: string
  readonly t: string
  readonly sv: number
  readonly d: unknown
  readonly m: unknown
  readonly at: number
}

const columns = `global_position::text AS p, stream_id AS s, stream_version::text AS v, event_id::text AS id,
  type AS t, schema_version AS sv, data AS d, metadata AS m,
  (extract(epoch FROM recorded_at) * 1000)::float8 AS at`

const toStored = (row: EventRow): StoredEvent => ({
  eventId: row.id as EventId,
  type: row.t,
  streamId: row.s as StreamId,
  streamVersion: Number(row.v),
  globalPosition: BigInt(row.p),
  recordedAt: new Date(row.at),
  schemaVersion: row.sv,
  data: row.d,
  metadata: (row.m ?? {}) as StoredEvent["metadata"]
})

const statements = (t: Tables) => {
  const insertEvents = (streamCte: string) =>
    `WITH s AS (${streamCte}),
     batch AS (
       SELECT r.event_id, r.type, r.schema_version, r.data, r.metadata, r.ord
       FROM ROWS FROM (json_to_recordset($2::json)
         AS (event_id uuid, type text, schema_version integer, data json, metadata json))
         WITH ORDINALITY AS r(event_id, type, schema_version, data, metadata, ord)
     ),
     inserted AS (
       INSERT INTO ${t.events} (global_position, stream_id, stream_version, event_id, type, schema_version, data, metadata)
       SELECT (pg_current_xact_id()::text::bigint << 16) + b.ord, $1, s.base + b.ord,
              b.event_id, b.type, b.schema_version, b.data, b.metadata
       FROM s CROSS JOIN batch b
       RETURNING 1
     )
     SELECT (s.base + $3)::text AS version,
            (pg_current_xact_id()::text::bigint << 16)::text AS base_position,
            (SELECT count(*) FROM inserted)::int AS written
     FROM s`
  return {
    appendAny: insertEvents(
      `INSERT INTO ${t.streams} AS st (stream_id, version) VALUES ($1, $3)
       ON CONFLICT (stream_id) DO UPDATE SET version = st.version + EXCLUDED.version
       RETURNING st.version - $3 AS base`
    ),
    appendNoStream: insertEvents(
      `INSERT INTO ${t.streams} (stream_id, version) VALUES ($1, $3)
       ON CONFLICT (stream_id) DO NOTHING
       RETURNING 0::bigint AS base`
    ),
    appendExact: insertEvents(
      `UPDATE ${t.streams} SET version = version + $3 WHERE stream_id = $1 AND version = $4
       RETURNING version - $3 AS base`
    ),
    appendStreamExists: insertEvents(
      `UPDATE ${t.streams} SET version = version + $3 WHERE stream_id = $1 AND version > 0
       RETURNING version - $3 AS base`
    ),
    streamVersion: `SELECT version::text AS version FROM ${t.streams} WHERE stream_id = $1`,
    locate: `SELECT (SELECT version::text FROM ${t.streams} WHERE stream_id = $1) AS version,
       (SELECT json_agg(json_build_object('id', event_id, 's', stream_id, 'v', stream_version, 'p', global_position::text))
        FROM ${t.events} WHERE event_id IN (SELECT value::uuid FROM json_array_elements_text($2::json))) AS found`,
    readForwards: `SELECT ${columns} FROM ${t.events}
       WHERE stream_id = $1 AND stream_version >= $2 AND stream_version <= $3
       ORDER BY stream_version LIMIT $4`,
    readBackwards: `SELECT ${columns} FROM ${t.events}
       WHERE stream_id = $1 AND stream_version >= $2 AND stream_version <= $3
       ORDER BY stream_version DESC LIMIT $4`,
    readAll: `SELECT ${columns} FROM ${t.events}
       WHERE global_position >= $1
         AND global_position < (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 16)
       ORDER BY global_position LIMIT $2`
  }
}

/**
 * Builds the store over the `SqlClient` in context (normally a `PgClient`),
 * applying its migrations first unless told not to.
 *
 * @category constructors
 */
export const make = (
  options: PostgresEventStoreOptions = {}
): Effect.Effect<EventStore.EventStoreService, EventStore.StoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const tables = yield* Effect.try({
      try: () => tablesOf(options.schema ?? "chronicle"),
      catch: (error) => error as EventStore.StoreError
    })
    if (options.migrate !== false) yield* migrateTables(tables)
    const sql = yield* SqlClient.SqlClient
    const maxBytes = options.maxEventBytes ?? defaultMaxEventBytes
    const pageSize = options.pageSize ?? 1000
    const q = statements(tables)

    /** Every statement is safe to repeat (appends are idempotent by event id): retry lost connections. */
    const execute = <A extends object>(text: string, params: ReadonlyArray<unknown>) =>
      Effect.retry(sql.unsafe<A>(text, params), { times: reconnectAttempts, while: isConnectionLost })

    const run = <A extends object>(operation: string, text: string, params: ReadonlyArray<unknown>) =>
      Effect.mapError(execute<A>(text, params), (error) => storeError(operation, error))

    const currentVersion = (streamId: StreamId) =>
      Effect.map(
        run<{ readonly version: string }>("streamVersion", q.streamVersion, [streamId]),
        (rows) => (rows.length === 0 ? 0 : Number(rows[0]!.version))
      )

    const encodeBatch = (streamId: StreamId, events: ReadonlyArray<PendingEvent>) => {
      const parts: Array<string> = []
      for (let i = 0; i < events.length; i++) {
        const event = events[i]!
        const serialized = serializeEvent(streamId, i, event, maxBytes)
        if (Either.isLeft(serialized)) return serialized
        parts.push(
          `{"event_id":"${event.eventId}","type":${JSON.stringify(event.type)},"schema_version":${event.schemaVersion},"data":${serialized.right.data},"metadata":${serialized.right.metadata}}`
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
        const [row] = yield* run<{
          readonly version: string | null
          readonly found: ReadonlyArray<{ id: string; s: string; v: number; p: string }> | null
        }>("append", q.locate, [streamId, ids])
        const located = new Map<string, Location>()
        for (const found of row?.found ?? []) {
          located.set(found.id, {
            streamId: found.s as StreamId,
            streamVersion: Number(found.v),
            globalPosition: BigInt(found.p)
          })
        }
        const version = row?.version == null ? 0 : Number(row.version)
        return planAppend(streamId, events, expected, version, (id) => located.get(id))
      })

    const append = (
      streamId: StreamId,
      events: ReadonlyArray<PendingEvent>,
      expected: ExpectedVersion.ExpectedVersion
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
        const [text, params] = expected === ExpectedVersion.Any
          ? [q.appendAny, [streamId, batch, events.length]]
          : expected === ExpectedVersion.StreamExists
          ? [q.appendStreamExists, [streamId, batch, events.length]]
          : expected === ExpectedVersion.NoStream || expected === 0
          ? [q.appendNoStream, [streamId, batch, events.length]]
          : [q.appendExact, [streamId, batch, events.length, expected]]

        for (let attempt = 1;; attempt++) {
          const outcome = yield* Effect.either(
            execute<{ readonly version: string; readonly base_position: string; readonly written: number }>(text, params)
          )
          if (Either.isRight(outcome) && outcome.right.length > 0) {
            const row = outcome.right[0]!
            const base = BigInt(row.base_position)
            return {
              streamId,
              streamVersion: Number(row.version),
              globalPositions: events.map((_, i) => base + BigInt(i + 1))
            }
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

    const read = (streamId: StreamId, range: EventStore.StreamRange) => {
      const page = Math.min(range.chunkSize, pageSize)
      const forwards = range.direction === "forwards"
      const statement = forwards ? q.readForwards : q.readBackwards
      const fetch = (low: number, high: number, count: number) =>
        Effect.map(run<EventRow>("read", statement, [streamId, low, high, count]), (rows) => rows.map(toStored))
      const start = forwards
        ? Effect.succeed(range.toVersion)
        : Effect.map(currentVersion(streamId), (version) => Math.min(version, range.toVersion))
      return Stream.unwrap(Effect.map(start, (top) =>
        Stream.paginateChunkEffect(
          { next: forwards ? range.fromVersion : top, remaining: range.limit },
          ({ next, remaining }) => {
            const count = Math.min(page, remaining)
            const low = forwards ? next : Math.max(range.fromVersion, next - count + 1)
            const high = forwards ? Math.min(top, next + count - 1) : next
            if (count <= 0 || low > high) return Effect.succeed([Chunk.empty<StoredEvent>(), Option.none()])
            return Effect.map(fetch(low, high, count), (events) => {
              const done = events.length < high - low + 1 || events.length >= remaining
              const last = events.at(-1)?.streamVersion ?? next
              const following = { next: forwards ? last + 1 : last - 1, remaining: remaining - events.length }
              return [Chunk.unsafeFromArray(events), done ? Option.none() : Option.some(following)] as const
            })
          }
        )))
    }

    const readAll = (range: EventStore.LogRange) => {
      const page = Math.min(range.chunkSize, pageSize)
      return Stream.paginateChunkEffect(
        { from: range.fromPosition, remaining: range.limit },
        ({ from, remaining }) => {
          const count = Math.min(page, remaining)
          if (count <= 0) return Effect.succeed([Chunk.empty<StoredEvent>(), Option.none()])
          return Effect.map(run<EventRow>("readAll", q.readAll, [String(from), count]), (rows) => {
            const events = rows.map(toStored)
            const last = events.at(-1)
            const done = events.length < count || last === undefined
            return [
              Chunk.unsafeFromArray(events),
              done ? Option.none() : Option.some({ from: last.globalPosition + 1n, remaining: remaining - count })
            ] as const
          })
        }
      )
    }

    return EventStore.make({
      name: "postgres",
      append,
      read,
      readAll,
      streamVersion: currentVersion
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
 * @category layers
 */
export const layer = (
  options: PostgresEventStoreOptions = {}
): Layer.Layer<EventStore.EventStore, EventStore.StoreError, SqlClient.SqlClient> =>
  Layer.effect(EventStore.EventStore, make(options))

/**
 * Connection settings for `layerFromUrl`.
 *
 * @category models
 */
export interface ConnectionOptions extends PostgresEventStoreOptions {
  readonly url: string | Redacted.Redacted
  /** Pool size; default 10. */
  readonly maxConnections?: number | undefined
}

/**
 * The store with its own connection pool, from a `postgres://` URL.
 *
 * @category layers
 */
export const layerFromUrl = (
  options: ConnectionOptions
): Layer.Layer<EventStore.EventStore | SqlClient.SqlClient, EventStore.StoreError> =>
  layer(options).pipe(
    Layer.provideMerge(
      PgClient.layer({
        url: Redacted.isRedacted(options.url) ? options.url : Redacted.make(options.url),
        maxConnections: options.maxConnections ?? 10
      }).pipe(Layer.mapError((error) => storeError("connect", error)))
    )
  )

/**
 * The store with its own pool, from `Config`: `DATABASE_URL` and
 * `CHRONICLE_PG_SCHEMA` by default.
 *
 * @category layers
 */
export const layerConfig = (
  options: Omit<PostgresEventStoreOptions, "schema"> = {}
): Layer.Layer<EventStore.EventStore | SqlClient.SqlClient, EventStore.StoreError> =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const url = yield* Config.redacted("DATABASE_URL")
      const schema = yield* Config.string("CHRONICLE_PG_SCHEMA").pipe(Config.withDefault("chronicle"))
      return layerFromUrl({ ...options, url, schema })
    }).pipe(Effect.mapError((error) => storeError("configure", error)))
  )

/**
 * Applies the store's migrations (idempotent; safe to run from several
 * processes at once).
 *
 * @category constructors
 */
export const migrate = (
  options: Pick<PostgresEventStoreOptions, "schema"> = {}
): Effect.Effect<void, EventStore.StoreError, SqlClient.SqlClient> =>
  Effect.flatMap(
    Effect.try({ try: () => tablesOf(options.schema ?? "chronicle"), catch: (error) => error as EventStore.StoreError }),
    migrateTables
  )
