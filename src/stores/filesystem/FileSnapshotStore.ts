/**
 * The filesystem snapshot store: one file per stream under
 * `<directory>/snapshots/`, named by the SHA-256 of the stream id (any stream
 * id, no path traversal, no collisions on case-insensitive file systems).
 * Each file carries a CRC32 of its content; it is written to a temporary file,
 * synced and atomically renamed into place.
 *
 * @since 0.1.0
 */
import { createHash, randomUUID } from "node:crypto"
import { crc32 } from "node:zlib"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { StoreError } from "../../EventStore.js"
import * as SnapshotStore from "../../SnapshotStore.js"
import type { StreamId } from "../../StreamId.js"
import { withDirectoryLock } from "../../internal/filesystem/directoryLock.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface FileSnapshotStoreOptions {
  /** The store's directory (the event store's); default `./.chronicle`. */
  readonly directory?: string | undefined
  /** `fsync` snapshots and their directory; default true. */
  readonly fsync?: boolean | undefined
}

interface SnapshotFile {
  readonly streamId: string
  readonly version: number
  readonly stateSchemaVersion: number
  readonly takenAt: string
  readonly state: unknown
}

const prefix = "{\"crc\":\""
const middle = "\",\"snapshot\":"

/**
 * Builds the store in `directory`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: FileSnapshotStoreOptions = {}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const directory = path.join(path.resolve(options.directory ?? ".chronicle"), "snapshots")
    const durable = options.fsync !== false
    const fail = (operation: string, streamId: StreamId, error: unknown) =>
      new StoreError({
        operation,
        reason: `snapshot of ${streamId} in ${directory}: ${error instanceof Error ? error.message : String(error)}`,
        cause: error
      })
    yield* fs.makeDirectory(directory, { recursive: true }).pipe(
      Effect.mapError((error) => new StoreError({ operation: "open", reason: `${directory}: ${String(error)}`, cause: error }))
    )
    const fileOf = (streamId: StreamId) =>
      path.join(directory, `${createHash("sha256").update(streamId).digest("hex")}.json`)

    const readFile = (streamId: StreamId) =>
      Effect.gen(function*() {
        const file = fileOf(streamId)
        if (!(yield* fs.exists(file))) return Option.none<SnapshotStore.Snapshot>()
        const text = yield* fs.readFileString(file)
        const json = text.slice(prefix.length + 8 + middle.length, -1)
        const intact = text.startsWith(prefix) && text.endsWith("}") &&
          Number.parseInt(text.slice(prefix.length, prefix.length + 8), 16) === crc32(json)
        if (!intact) return yield* Effect.fail(new Error(`${file} is damaged (checksum mismatch)`))
        const parsed = JSON.parse(json) as SnapshotFile
        if (parsed.streamId !== streamId) return yield* Effect.fail(new Error(`${file} holds ${parsed.streamId}`))
        return Option.some<SnapshotStore.Snapshot>({
          streamId,
          version: parsed.version,
          state: parsed.state,
          stateSchemaVersion: parsed.stateSchemaVersion,
          takenAt: new Date(parsed.takenAt)
        })
      }).pipe(Effect.mapError((error) => fail("loadSnapshot", streamId, error)))

    const withLock = <A, E, R>(streamId: StreamId, effect: Effect.Effect<A, E, R>) =>
      withDirectoryLock(
        { directory, lockPath: path.join(directory, "write.lock"), staleMs: 5000 },
        (error) => fail("saveSnapshot", streamId, error),
        effect
      )

    return SnapshotStore.make("filesystem", {
      save: (snapshot) =>
        Effect.flatMap(SnapshotStore.validate(snapshot), (state) =>
          withLock(
            snapshot.streamId,
            Effect.gen(function*() {
              const current = yield* Effect.either(readFile(snapshot.streamId))
              if (current._tag === "Right" && Option.isSome(current.right) && current.right.value.version > snapshot.version) {
                return
              }
              const takenAt = new Date(yield* Clock.currentTimeMillis)
              const json = `{"streamId":${JSON.stringify(snapshot.streamId)},"version":${snapshot.version},"stateSchemaVersion":${snapshot.stateSchemaVersion},"takenAt":"${
                takenAt.toISOString()
              }","state":${state}}`
              const content = `${prefix}${crc32(json).toString(16).padStart(8, "0")}${middle}${json}}`
              const target = fileOf(snapshot.streamId)
              const temporary = `${target}.${randomUUID()}.tmp`
              yield* Effect.scoped(Effect.gen(function*() {
                const file = yield* fs.open(temporary, { flag: "w" })
                yield* file.writeAll(Buffer.from(content))
                if (durable) yield* file.sync
              }))
              yield* fs.rename(temporary, target).pipe(Effect.tapError(() => Effect.ignore(fs.remove(temporary))))
              if (durable) yield* Effect.scoped(Effect.flatMap(fs.open(directory, { flag: "r" }), (dir) => dir.sync))
            }).pipe(Effect.mapError((error) => error instanceof StoreError ? error : fail("saveSnapshot", snapshot.streamId, error)))
          )),
      load: readFile,
      remove: (streamId) =>
        fs.remove(fileOf(streamId), { force: true }).pipe(Effect.mapError((error) => fail("removeSnapshot", streamId, error)))
    })
  })

/**
 * The snapshot store as a Layer; needs `FileSystem` and `Path`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: FileSnapshotStoreOptions = {}
): Layer.Layer<SnapshotStore.SnapshotStore, StoreError, FileSystem.FileSystem | Path.Path> =>
  Layer.effect(SnapshotStore.SnapshotStore, make(options))

/**
 * `layer` with its options read from `Config`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<FileSnapshotStoreOptions>
): Layer.Layer<SnapshotStore.SnapshotStore, StoreError | ConfigError.ConfigError, FileSystem.FileSystem | Path.Path> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
