/**
 * The filesystem checkpoint store: one small file per checkpoint under
 * `<directory>/checkpoints/`, named by the SHA-256 of its name, carrying a
 * CRC32 of its content, written to a temporary file and renamed into place
 * (a crash leaves the old checkpoint or the new one, never a torn one).
 *
 * @since 0.1.0
 */
import { createHash, randomUUID } from "node:crypto"
import { crc32 } from "node:zlib"
import { FileSystem, Path } from "@effect/platform"
import { Config, type ConfigError, Effect, Layer, Option } from "effect"
import * as CheckpointStore from "../../CheckpointStore.js"
import { StoreError } from "../../EventStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface FileCheckpointStoreOptions {
  /** The store's directory (the event store's); default `./.chronicle`. */
  readonly directory?: string | undefined
  /** `fsync` checkpoints; default true. */
  readonly fsync?: boolean | undefined
}

/**
 * Builds the store in `directory`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: FileCheckpointStoreOptions = {}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const directory = path.join(path.resolve(options.directory ?? ".chronicle"), "checkpoints")
    const durable = options.fsync !== false
    const fail = (operation: string, name: string, error: unknown) =>
      new StoreError({
        operation,
        reason: `checkpoint ${JSON.stringify(name)} in ${directory}: ${error instanceof Error ? error.message : String(error)}`,
        cause: error
      })
    yield* fs.makeDirectory(directory, { recursive: true }).pipe(
      Effect.mapError((error) => new StoreError({ operation: "open", reason: `${directory}: ${String(error)}`, cause: error }))
    )
    const fileOf = (name: string) => path.join(directory, `${createHash("sha256").update(name).digest("hex")}.json`)

    const load = (name: string) =>
      Effect.gen(function*() {
        const file = fileOf(name)
        if (!(yield* fs.exists(file))) return Option.none<bigint>()
        const text = yield* fs.readFileString(file)
        const parsed = yield* Effect.try(() => JSON.parse(text) as { crc?: unknown; name?: unknown; position?: unknown })
        const body = JSON.stringify({ name: parsed.name, position: parsed.position })
        if (parsed.crc !== crc32(body) || typeof parsed.position !== "string" || !/^\d+$/.test(parsed.position)) {
          return yield* Effect.fail(new Error(`${file} is damaged (checksum mismatch)`))
        }
        if (parsed.name !== name) return yield* Effect.fail(new Error(`${file} holds ${String(parsed.name)}`))
        return Option.some(BigInt(parsed.position))
      }).pipe(Effect.mapError((error) => fail("loadCheckpoint", name, error)))

    const save = (name: string, position: bigint) =>
      Effect.gen(function*() {
        const body = JSON.stringify({ name, position: position.toString() })
        const target = fileOf(name)
        const temporary = `${target}.${randomUUID()}.tmp`
        yield* Effect.scoped(Effect.gen(function*() {
          const file = yield* fs.open(temporary, { flag: "w" })
          yield* file.writeAll(Buffer.from(JSON.stringify({ crc: crc32(body), name, position: position.toString() })))
          if (durable) yield* file.sync
        }))
        yield* fs.rename(temporary, target).pipe(Effect.tapError(() => Effect.ignore(fs.remove(temporary))))
      }).pipe(Effect.mapError((error) => fail("saveCheckpoint", name, error)))

    return CheckpointStore.make("filesystem", {
      load,
      save,
      remove: (name) => fs.remove(fileOf(name), { force: true }).pipe(Effect.mapError((error) => fail("removeCheckpoint", name, error))),
      transaction: (effect) => effect
    })
  })

/**
 * The checkpoint store as a Layer; needs `FileSystem` and `Path`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: FileCheckpointStoreOptions = {}
): Layer.Layer<CheckpointStore.CheckpointStore, StoreError, FileSystem.FileSystem | Path.Path> =>
  Layer.effect(CheckpointStore.CheckpointStore, make(options))

/**
 * `layer` with its options read from `Config`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<FileCheckpointStoreOptions>
): Layer.Layer<CheckpointStore.CheckpointStore, StoreError | ConfigError.ConfigError, FileSystem.FileSystem | Path.Path> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
