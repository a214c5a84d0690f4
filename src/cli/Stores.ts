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
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as CheckpointStore from "../CheckpointStore.js"
import * as EventStore from "../EventStore.js"
import * as FileCheckpointStore from "../stores/filesystem/FileCheckpointStore.js"
import * as FileEventStore from "../stores/filesystem/FileEventStore.js"
import * as MemoryCheckpointStore from "../stores/memory/MemoryCheckpointStore.js"
import * as MemoryEventStore from "../stores/memory/MemoryEventStore.js"
import * as Peers from "../internal/peers.js"
import * as CliError from "./CliError.js"
import * as Output from "./Output.js"
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
 * Committed events a reader of the global log cannot see yet, and the open
 * transactions holding them back (PostgreSQL: a transaction that wrote to the
 * events table and has not ended keeps the log's horizon before it).
 *
 * @category models
 */
export interface HeldBack {
  readonly events: number
  readonly holders: ReadonlyArray<{ readonly pid: number; readonly database: string; readonly seconds: number; readonly state: string }>
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
  /** What the global log holds back from readers right now (always nothing but on PostgreSQL). */
  readonly heldBack: Effect.Effect<HeldBack | undefined, CliError.CliError>
  /** The names of the checkpoints the store holds, sorted (read without creating anything). @since 0.2.0 */
  readonly checkpointNames: Effect.Effect<ReadonlyArray<string>, CliError.CliError>
}

/**
 * Before a command reads the whole log: fails when committed events are held
 * back from readers (after a few looks, so an append in flight does not
 * count), naming how many and the transactions holding them; with
 * `allowPartial` it only warns on stderr and the command goes on with what it
 * can see.
 *
 * @category combinators
 */
export const requireWholeLog = (store: Opened, command: string, allowPartial: boolean): Effect.Effect<void, CliError.CliError> =>
  Effect.gen(function*() {
    let held = yield* store.heldBack
    for (let look = 1; held !== undefined && look < 10; look++) {
      yield* Effect.sleep("200 millis")
      held = yield* store.heldBack
    }
    if (held === undefined) return
    const { events, holders } = held
    const who = holders.length === 0
      ? "an open transaction"
      : holders.map((h) => `pid ${h.pid} in database ${h.database}, open for ${Output.duration(h.seconds * 1000)}, ${h.state}`).join("; ")
    const what = `${Output.count(events)} committed events of ${store.label} are held back from readers by a transaction that wrote to its events table and has not ended (${who})`
    if (!allowPartial) {
      return yield* CliError.fail(`${what}: ${command} would miss them. End that transaction, or pass --allow-partial to ${command} what can be seen.`)
    }
    yield* Output.stderr.write(`chronicle: warning: ${what}; --allow-partial: ${command} goes on without them.\n`)
  })

/** A store that cannot be opened, as a CLI failure. */
export const unavailable = (label: string, error: unknown) => CliError.fail(`cannot open store ${label}: ${CliError.messageOf(error)}`)

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
        return {
          spec,
          label,
          events,
          checkpoints,
          size: Effect.succeed({ kind: "in memory" as const, parts: [] }),
          heldBack: Effect.succeed(undefined),
          checkpointNames: Effect.succeed([])
        }
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
    // readers open the log read-only: a read-only directory works, and nothing is ever created there
    const events = yield* FileEventStore.make({ directory: absolute, readOnly: access === "read" }).pipe(
      Effect.mapError((error) => unavailable(label, error))
    )
    const checkpoints = yield* Effect.cached(
      FileCheckpointStore.make({ directory: absolute }).pipe(
        Effect.provide(context),
        Effect.mapError((error) => unavailable(label, error))
      )
    )
    const size = Effect.promise(() => directorySize(absolute)).pipe(
      Effect.map((parts) => ({ kind: "on disk" as const, parts }))
    )
    const checkpointNames = Effect.promise(() => fileCheckpointNames(NodePath.join(absolute, "checkpoints")))
    return { spec: { _tag: "File" as const, directory }, label, events, checkpoints, size, heldBack: Effect.succeed(undefined), checkpointNames }
  })

/**
 * The names of the filesystem checkpoints under `directory`: each folder's
 * records (and each file of earlier versions) carry the name; a checkpoint
 * whose newest readable record has no position was removed.
 */
const fileCheckpointNames = async (directory: string): Promise<ReadonlyArray<string>> => {
  const readRecord = async (path: string): Promise<{ readonly name?: unknown; readonly position?: unknown } | undefined> => {
    const text = await NodeFs.readFile(path, "utf8").catch(() => undefined)
    if (text === undefined) return undefined
    try {
      return JSON.parse(text) as { readonly name?: unknown; readonly position?: unknown }
    } catch {
      return undefined
    }
  }
  const newest = async (path: string) => {
    const records = (await NodeFs.readdir(path).catch(() => [] as Array<string>)).filter((name) => /^\d{16}\.json$/.test(name)).sort().reverse()
    for (const record of records) {
      const parsed = await readRecord(NodePath.join(path, record))
      if (parsed !== undefined) return parsed
    }
    return undefined
  }
  const names = new Set<string>()
  for (const entry of await NodeFs.readdir(directory, { withFileTypes: true }).catch(() => [])) {
    const record = entry.isDirectory()
      ? await newest(NodePath.join(directory, entry.name))
      : entry.name.endsWith(".json")
      ? await readRecord(NodePath.join(directory, entry.name))
      : undefined
    if (typeof record?.name === "string" && record.position !== null && record.position !== undefined) names.add(record.name)
  }
  return [...names].sort()
}

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

const postgresPeers = ["@effect/sql", "@effect/sql-pg", "pg"]

/** The PostgreSQL store, loaded on first use: its packages are optional peers of chronicle. */
const openPostgres = (url: Redacted.Redacted<string>, schema: string, label: string, access: Access) =>
  Effect.gen(function*() {
    const absent = Peers.missing(postgresPeers)
    if (absent.length > 0) {
      return yield* CliError.fail(`cannot open store ${label}: ${Peers.missingPeersError("a PostgreSQL store", absent).message}`)
    }
    const PostgresStore = yield* Effect.promise(() => import("./PostgresStore.js"))
    return yield* PostgresStore.open(url, schema, label, access)
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
