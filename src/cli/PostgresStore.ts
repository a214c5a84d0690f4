/**
 * The CLI's PostgreSQL stores, in a module of their own so that `chronicle`
 * loads `@effect/sql`, `@effect/sql-pg` and `pg` (optional peers) only for a
 * `postgres://` store.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as EventStore from "../EventStore.js"
import * as PostgresCheckpointStore from "../stores/postgres/PostgresCheckpointStore.js"
import * as PostgresEventStore from "../stores/postgres/PostgresEventStore.js"
import { heldBackQuery, tablesOf } from "../internal/postgres/schema.js"
import * as CliError from "./CliError.js"
import type { Access } from "./Stores.js"
import { unavailable } from "./Stores.js"

/**
 * Opens the PostgreSQL store at `url`, in `schema`.
 *
 * @category constructors
 */
export const open = (url: Redacted.Redacted<string>, schema: string, label: string, access: Access) =>
  Effect.gen(function*() {
    const layer = PostgresEventStore.layerFromUrl({
      url,
      schema,
      maxConnections: 10,
      connectTimeoutMs: 5_000,
      applicationName: "chronicle-cli",
      migrate: access === "write"
    })
    const context = yield* Layer.build(layer).pipe(Effect.mapError((error) => unavailable(label, error)))
    const sql = Context.get(context, SqlClient.SqlClient)
    if (access === "read") {
      const rows = yield* sql.unsafe<{ readonly found: string | null }>(`SELECT to_regclass($1)::text AS found`, [`"${schema}"."events"`]).pipe(
        Effect.mapError((error) => unavailable(label, error))
      )
      if (rows[0]?.found === null || rows[0]?.found === undefined) {
        return yield* CliError.fail(`no store at ${label}: the schema ${schema} has no chronicle tables`)
      }
    }
    const events = Context.get(context, EventStore.EventStore)
    const checkpoints = yield* Effect.cached(
      PostgresCheckpointStore.make({ schema, migrate: false }).pipe(
        Effect.provideService(SqlClient.SqlClient, sql),
        Effect.mapError((error) => unavailable(label, error))
      )
    )
    const size = sql.unsafe<{ readonly name: string; readonly bytes: string }>(
      `SELECT c.relname AS name, pg_total_relation_size(c.oid)::text AS bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
        ORDER BY c.relname`,
      [schema]
    ).pipe(
      Effect.map((rows) => ({ kind: "in tables" as const, parts: rows.map((row) => ({ name: row.name, bytes: Number(row.bytes) })) })),
      Effect.mapError((error) => CliError.fail(`cannot measure ${label}: ${CliError.messageOf(error)}`))
    )
    const tables = tablesOf(schema)
    const heldBack = sql.unsafe<{ readonly held: string; readonly holders: ReadonlyArray<{ pid: number; database: string; seconds: number; state: string }> | null }>(
      heldBackQuery(tables),
      [tables.events]
    ).pipe(
      Effect.map(([row]) => (row === undefined || row.held === "0" ? undefined : { events: Number(row.held), holders: row.holders ?? [] })),
      Effect.mapError((error) => CliError.fail(`cannot read the horizon of ${label}: ${CliError.messageOf(error)}`))
    )
    const checkpointNames = sql.unsafe<{ readonly name: string }>(`SELECT name FROM ${tables.checkpoints} ORDER BY name`).pipe(
      Effect.map((rows) => rows.map((row) => row.name)),
      Effect.mapError((error) => CliError.fail(`cannot list the checkpoints of ${label}: ${CliError.messageOf(error)}`))
    )
    return { spec: { _tag: "Postgres" as const, url, schema }, label, events, checkpoints, size, heldBack, checkpointNames }
  })
