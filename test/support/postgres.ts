/**
 * PostgreSQL for tests: the real server from DATABASE_URL, one schema per
 * test file (dropped when the file's layer closes), so files run in parallel
 * and again. Under CI=true an unreachable database fails the run.
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import type { CheckpointStore, EventStore } from "chronicle"
import { PostgresCheckpointStore, PostgresEventStore } from "chronicle/postgres"
import { serviceAvailable } from "./service.js"

export const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

const databaseAddress = new URL(databaseUrl)

/** Whether PostgreSQL tests run; in CI an unreachable database throws instead. */
export const postgresAvailable = serviceAvailable(
  "PostgreSQL",
  databaseUrl,
  databaseAddress.hostname,
  Number(databaseAddress.port || 5432)
)

let schemas = 0
/** A schema name no other test file or run uses. */
export const uniqueSchema = (label: string): string =>
  `t_${label}_${process.pid}_${Date.now().toString(36)}_${++schemas}`.toLowerCase().replace(/[^a-z0-9_]/g, "_")

/** A pooled client for the test database. */
export const client = (
  options: { readonly maxConnections?: number | undefined; readonly applicationName?: string | undefined; readonly connectTimeout?: number | undefined } = {}
) =>
  PgClient.layer({
    url: Redacted.make(databaseUrl),
    maxConnections: options.maxConnections ?? 20,
    ...(options.applicationName === undefined ? {} : { applicationName: options.applicationName }),
    ...(options.connectTimeout === undefined ? {} : { connectTimeout: options.connectTimeout })
  })


/** Drops `schema` when the layer closes. */
export const dropSchemaAfter = (schema: string) =>
  Layer.scopedDiscard(
    Effect.addFinalizer(() =>
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)).pipe(
        Effect.ignore
      )
    )
  )

/**
 * A store in a fresh schema and the SqlClient beside it: over a PgClient
 * (`via: "client"`, statements unnamed) or with the store's own pool
 * (`via: "pool"`, `layerFromUrl`: hot statements prepared).
 */
export const storeLayer = (
  label: string,
  options: Omit<PostgresEventStore.PostgresEventStoreOptions, "schema" | "pool" | "readReplica"> & {
    readonly via?: "client" | "pool"
    readonly maxConnections?: number
    readonly applicationName?: string
    readonly connectTimeout?: number
  } = {}
): Layer.Layer<EventStore.EventStore | SqlClient.SqlClient, unknown> => {
  const schema = uniqueSchema(label)
  if (options.via === "client") {
    return Layer.mergeAll(PostgresEventStore.layer({ ...options, schema }), dropSchemaAfter(schema)).pipe(
      Layer.provideMerge(client(options))
    )
  }
  return dropSchemaAfter(schema).pipe(
    Layer.provideMerge(
      PostgresEventStore.layerFromUrl({
        ...options,
        schema,
        url: databaseUrl,
        maxConnections: options.maxConnections ?? 20,
        ...(options.connectTimeout === undefined ? {} : { connectTimeoutMs: options.connectTimeout })
      })
    )
  )
}

/**
 * A store (own pool) and its checkpoint store in one fresh schema, with the
 * SqlClient beside them.
 */
export const readSideLayer = (
  label: string,
  options: { readonly maxConnections?: number; readonly via?: "client" | "pool" } = {}
): Layer.Layer<EventStore.EventStore | CheckpointStore.CheckpointStore | SqlClient.SqlClient, unknown> => {
  const schema = uniqueSchema(label)
  const stores = options.via === "client"
    ? Layer.mergeAll(PostgresEventStore.layer({ schema }), dropSchemaAfter(schema)).pipe(
      Layer.provideMerge(client({ maxConnections: options.maxConnections }))
    )
    : dropSchemaAfter(schema).pipe(
      Layer.provideMerge(PostgresEventStore.layerFromUrl({ schema, url: databaseUrl, maxConnections: options.maxConnections ?? 20 }))
    )
  return PostgresCheckpointStore.layer({ schema }).pipe(Layer.provideMerge(stores))
}
