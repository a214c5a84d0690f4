/**
 * Opens the store a `StoreSpec` names, for the length of a command's scope:
 * its EventStore, its CheckpointStore (built only when asked for) and how
 * much room it takes. Reading commands never create a store: a missing
 * directory or schema is an error, not a new empty store.
 *
 * @since 0.1.0
 */
import * as NodeFs from "node:fs/promises"
import * as NodePath from "node:path"
import { FileSystem, Path } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"
import * as CheckpointStore from "../CheckpointStore.js"
import * as EventStore from "../EventStore.js"
import * as FileCheckpointStore from "../stores/filesystem/FileCheckpointStore.js"
import * as FileEventStore from "../stores/filesystem/FileEventStore.js"
import * as MemoryCheckpointStore from "../stores/memory/MemoryCheckpointStore.js"
import * as MemoryEventStore from "../stores/memory/MemoryEventStore.js"
import * as PostgresCheckpointStore from "../stores/postgres/PostgresCheckpointStore.js"
import * as PostgresEventStore from "../stores/postgres/PostgresEventStore.js"
import * as CliError from "./CliError.js"
import * as StoreSpec from "./StoreSpec.js"

/**
 * Whether a command only reads (the store must exist) or also writes (it is
 * created, or migrated, when needed).
 *
 * @category models
 */
export type Access = "read" | "write"

/**
 * One part of a store and the bytes it takes.
 *
 * @category models
 */
export interface Part {
  readonly name: string
  readonly bytes: number
}

/**
 * An open store.
 *
 * @category models
 */
export interface Opened {
  readonly spec: StoreSpec.StoreSpec
  /** The store's name for people: a directory or a URL without its password. */
  readonly label: string
  readonly events: EventStore.EventStoreService
  /** The store's checkpoints (built on first use). */
  readonly checkpoints: Effect.Effect<CheckpointStore.CheckpointStoreService, CliError.CliError>
  /** The room the store takes: its files, or its tables with their indexes. */
  readonly size: Effect.Effect<{ readonly kind: "on disk" | "in tables" | "in memory"; readonly parts: ReadonlyArray<Part> }, CliError.CliError>
}

const unavailable = (label: string, error: unknown) => CliError.fail(`cannot open store ${label}: ${CliError.messageOf(error)}`)

/**
 * Parses `spec` and opens the store it names.
 *
 * @category constructors
 */
export const open = (
  spec: string,
  access: Access
): Effect.Effect<Opened, CliError.CliError, Scope.Scope | FileSystem.FileSystem | Path.Path> =>
  Effect.flatMap(
    Effect.mapError(StoreSpec.parse(spec), (error) => CliError.usage(error.message)),
    (parsed) => openSpec(parsed, access)
  )

/**
 * Opens the store of a parsed spec.
 *
 * @category constructors
 */
export const openSpec = (
  spec: StoreSpec.StoreSpec,
  access: Access
): Effect.Effect<Opened, CliError.CliError, Scope.Scope | FileSystem.FileSystem | Path.Path> => {
  const label = StoreSpec.label(spec)
  switch (spec._tag) {
    case "File":
      return openFile(spec.directory, label, access)
    case "Postgres":
      return openPostgres(spec.url, spec.schema, label, access)
    case "Memory":
      return Effect.gen(function*() {
        const events = yield* MemoryEventStore.make()
        const checkpoints = yield* Effect.cached(MemoryCheckpointStore.make)
        return { spec, label, events, checkpoints, size: Effect.succeed({ kind: "in memory" as const, parts: [] }) }
      })
  }
}

const openFile = (directory: string, label: string, access: Access) =>
  Effect.gen(function*() {
    const absolute = NodePath.resolve(directory)
    if (access === "read") {
      const stat = yield* Effect.promise(() => NodeFs.stat(absolute).catch(() => undefined))
      if (stat === undefined) {
        return yield* CliError.fail(`no store at ${label}: the directory ${absolute} does not exist`)
      }
      if (!stat.isDirectory()) return yield* CliError.fail(`no store at ${label}: ${absolute} is not a directory`)
    }
    const context = yield* Effect.context<FileSystem.FileSystem | Path.Path>()
    const events = yield* FileEventStore.make({ directory: absolute }).pipe(Effect.mapError((error) => unavailable(label, error)))
    const checkpoints = yield* Effect.cached(
      FileCheckpointStore.make({ directory: absolute }).pipe(
        Effect.provide(context),
        Effect.mapError((error) => unavailable(label, error))
      )
    )
    const size = Effect.promise(() => directorySize(absolute)).pipe(
      Effect.map((parts) => ({ kind: "on disk" as const, parts }))
    )
    return { spec: { _tag: "File" as const, directory }, label, events, checkpoints, size }
  })

/** The files under `directory`, each with its size (a sub-directory summed up). */
const directorySize = async (directory: string): Promise<ReadonlyArray<Part>> => {
  const sizeOf = async (path: string): Promise<number> => {
    const stat = await NodeFs.lstat(path).catch(() => undefined)
    if (stat === undefined) return 0
    if (!stat.isDirectory()) return stat.size
    const entries = await NodeFs.readdir(path).catch(() => [] as Array<string>)
    let total = 0
    for (const entry of entries) total += await sizeOf(NodePath.join(path, entry))
    return total
  }
  const entries = await NodeFs.readdir(directory).catch(() => [] as Array<string>)
  const parts: Array<Part> = []
  for (const entry of entries.sort()) parts.push({ name: entry, bytes: await sizeOf(NodePath.join(directory, entry)) })
  return parts
}

const openPostgres = (url: string, schema: string, label: string, access: Access) =>
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
    return { spec: { _tag: "Postgres" as const, url, schema }, label, events, checkpoints, size }
  })

/**
 * Runs `f` with the store `spec` names open, closing it afterwards.
 *
 * @category combinators
 */
export const withStore = <A, E, R>(
  spec: string,
  access: Access,
  f: (store: Opened) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | CliError.CliError, Exclude<R, Scope.Scope> | FileSystem.FileSystem | Path.Path> =>
  Effect.scoped(Effect.flatMap(open(spec, access), f))
