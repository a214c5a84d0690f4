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
import type { SqlClient } from "@effect/sql"
import type Pg from "pg"
import { PgClient } from "@effect/sql-pg"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as EventStore from "../../EventStore.js"
import { makeAppend } from "../../internal/postgres/appending.js"
import { makeAppendMany } from "../../internal/postgres/appendMany.js"
import { makeContext } from "../../internal/postgres/context.js"
import { deleteStream, isDeleted } from "../../internal/postgres/deletion.js"
import { storeError } from "../../internal/postgres/errors.js"
import { headPosition, query, queryForDecision, readAll, readLogPage } from "../../internal/postgres/globalLog.js"
import { makeWatch } from "../../internal/postgres/notifications.js"
import { acquirePool } from "../../internal/postgres/pool.js"
import { read, readPage, readPayloads } from "../../internal/postgres/reading.js"
import { prepare } from "../../internal/postgres/schema.js"

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
  /**
   * A `pg` pool on a streaming replica (hot standby) of the same database:
   * `readAll`, and so subscriptions and projection catch-up, read their pages
   * there. Each read takes its horizon and the WAL position on the primary
   * and waits until the replica has replayed that far, so it delivers what a
   * read on the primary would, never less; a lagging replica delays it. A
   * replica that fails costs only speed: the page is read from the primary
   * (with a warning logged). Stream reads, DCB queries, the head position and
   * LISTEN stay on the primary. `layerFromUrl` takes `readReplica: { url }`.
   *
   * @since 0.2.0
   */
  readonly readReplica?: { readonly pool: Pg.Pool } | undefined
}

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
    const context = yield* makeContext(options)
    return EventStore.make({
      name: "postgres",
      append: makeAppend(context),
      appendMany: makeAppendMany(context, options.notify !== false),
      read: read(context),
      readPayloads: readPayloads(context),
      readPage: readPage(context),
      readAll: readAll(context),
      readLogPage: readLogPage(context),
      query: query(context),
      queryForDecision: queryForDecision(context),
      headPosition: headPosition(context),
      watch: yield* makeWatch(context),
      streamVersion: context.currentVersion,
      deleteStream: deleteStream(context),
      isDeleted: isDeleted(context)
    })
  })

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
export interface ConnectionOptions extends Omit<PostgresEventStoreOptions, "pool" | "readReplica"> {
  readonly url: string | Redacted.Redacted
  /**
   * A streaming replica for global-log reads (see
   * `PostgresEventStoreOptions.readReplica`), with a pool of its own
   * (default 4 connections).
   *
   * @since 0.2.0
   */
  readonly readReplica?: {
    readonly url: string | Redacted.Redacted
    readonly maxConnections?: number | undefined
  } | undefined
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
      const pool = yield* acquirePool(options)
      const client = PgClient.layerFromPool({ acquire: Effect.succeed(pool) }).pipe(
        Layer.mapError((error) => storeError("connect", error))
      )
      const replica = options.readReplica
      const readReplica = replica === undefined ? undefined : {
        pool: yield* acquirePool({
          url: replica.url,
          maxConnections: replica.maxConnections ?? 4,
          connectTimeoutMs: options.connectTimeoutMs,
          applicationName: `${options.applicationName ?? "chronicle"}-replica`
        })
      }
      return layer({ ...options, pool, readReplica }).pipe(Layer.provideMerge(client))
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
