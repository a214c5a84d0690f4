/**
 * The filesystem checkpoint store: under `<directory>/checkpoints/`, one
 * folder per checkpoint (named by the SHA-256 of its name) holding numbered
 * records `<seq>.json`, each carrying a CRC32 of its content. The record with
 * the highest number is the checkpoint. A record is written whole to a
 * temporary file, synced, then hard-linked to the next number, which fails
 * when that number exists: two savers can never both take it, from any
 * process, however long one of them stalls (no lock to go stale). Older
 * records are removed, oldest first, behind the newest two; each record
 * names the one it was written over, so a saver that linked into such a gap
 * (below the newest) can tell and reports the checkpoint moved. Removing a
 * checkpoint writes a record without position, so numbers never restart.
 * A checkpoint file of earlier versions (`<sha256>.json`) is read as record 0.
 *
 * @since 0.1.0
 */
import { createHash, randomUUID } from "node:crypto"
import { crc32 } from "node:zlib"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
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

/** The newest record of a checkpoint: its number (0 for none or an earlier version's file) and position. */
interface Top {
  readonly seq: number
  readonly position: Option.Option<bigint>
  /** The record's random id (none for an earlier version's file, or no checkpoint). */
  readonly nonce: string | null
}

/** What a record holds besides its number. */
interface Record {
  readonly position: Option.Option<bigint>
  readonly nonce: string | null
  /** The id of the record it was written over. */
  readonly prev: string | null
}

const recordName = /^(\d{16})\.json$/

const isCode = (error: unknown, reason: string) =>
  typeof error === "object" && error !== null && "reason" in error && error.reason === reason

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
      error instanceof StoreError ? error : new StoreError({
        operation,
        reason: `checkpoint ${JSON.stringify(name)} in ${directory}: ${error instanceof Error ? error.message : String(error)}`,
        cause: error
      })
    yield* fs.makeDirectory(directory, { recursive: true }).pipe(
      Effect.mapError((error) => new StoreError({ operation: "open", reason: `${directory}: ${String(error)}`, cause: error }))
    )
    const hashOf = (name: string) => createHash("sha256").update(name).digest("hex")
    const folderOf = (name: string) => path.join(directory, hashOf(name))
    const legacyFileOf = (name: string) => path.join(directory, `${hashOf(name)}.json`)
    const recordOf = (name: string, seq: number) => path.join(folderOf(name), `${String(seq).padStart(16, "0")}.json`)

    const encode = (name: string, seq: number, position: bigint | null, nonce: string, prev: string | null) => {
      const fields = { name, seq, position: position === null ? null : position.toString(), nonce, prev }
      return JSON.stringify({ crc: crc32(JSON.stringify(fields)), ...fields })
    }

    /** A record (a removal has no position), or why it cannot be trusted; `seq` undefined for an earlier version's file. */
    const decode = (file: string, name: string, text: string, seq: number | undefined) =>
      Effect.gen(function*() {
        const parsed = yield* Effect.try(() =>
          JSON.parse(text) as { crc?: unknown; name?: unknown; seq?: unknown; position?: unknown; nonce?: unknown; prev?: unknown }
        )
        const body = seq === undefined
          ? JSON.stringify({ name: parsed.name, position: parsed.position })
          : JSON.stringify({ name: parsed.name, seq: parsed.seq, position: parsed.position, nonce: parsed.nonce, prev: parsed.prev })
        const position = parsed.position
        if (
          parsed.crc !== crc32(body) || (seq !== undefined && (parsed.seq !== seq || typeof parsed.nonce !== "string")) ||
          !(position === null && seq !== undefined || typeof position === "string" && /^\d+$/.test(position))
        ) {
          return yield* Effect.fail(new Error(`${file} is damaged (checksum mismatch)`))
        }
        if (parsed.name !== name) return yield* Effect.fail(new Error(`${file} holds ${String(parsed.name)}`))
        const record: Record = {
          position: position === null ? Option.none<bigint>() : Option.some(BigInt(position as string)),
          nonce: seq === undefined ? null : parsed.nonce as string,
          prev: typeof parsed.prev === "string" ? parsed.prev : null
        }
        return record
      })

    /** Record `seq`, or undefined when there is none (never written, or cleaned away). */
    const recordAt = (name: string, seq: number) =>
      fs.readFileString(recordOf(name, seq)).pipe(
        Effect.flatMap((text) => decode(recordOf(name, seq), name, text, seq)),
        Effect.map((record): Record | undefined => record),
        Effect.catchIf((error) => isCode(error, "NotFound"), () => Effect.succeed(undefined))
      )

    /** The record numbers in a checkpoint's folder, highest first (none when it has no folder). */
    const numbers = (name: string) =>
      fs.readDirectory(folderOf(name)).pipe(
        Effect.map((entries) =>
          entries.flatMap((entry) => {
            const match = recordName.exec(entry)
            return match === null ? [] : [Number(match[1])]
          }).sort((a, b) => b - a)
        ),
        Effect.catchIf((error) => isCode(error, "NotFound"), () => Effect.succeed<Array<number>>([]))
      )

    const legacyTop = (name: string) =>
      fs.readFileString(legacyFileOf(name)).pipe(
        Effect.flatMap((text) => decode(legacyFileOf(name), name, text, undefined)),
        Effect.map(({ position }): Top => ({ seq: 0, position, nonce: null })),
        Effect.catchIf((error) => isCode(error, "NotFound"), () => Effect.succeed<Top>({ seq: 0, position: Option.none(), nonce: null }))
      )

    /** The newest record; read again when it was cleaned away between listing and reading. */
    const top = (name: string): Effect.Effect<Top, unknown> =>
      Effect.flatMap(numbers(name), (seqs) => {
        if (seqs.length === 0) return legacyTop(name)
        const seq = seqs[0]!
        return Effect.flatMap(recordAt(name, seq), (record) =>
          record === undefined ? top(name) : Effect.succeed<Top>({ seq, position: record.position, nonce: record.nonce }))
      })

    const syncPath = (target: string) => Effect.scoped(Effect.flatMap(fs.open(target, { flag: "r" }), (file) => file.sync))

    /**
     * Whether our record `seq` (id `nonce`), linked over record `over`, took
     * effect. The link succeeds on a free number, but a number can be free
     * because it was cleaned away (a saver stalled since it read `over`
     * links into the gap, below the newest record). Cleaning removes records
     * oldest first and never the newest two, so ours counts when it is the
     * newest, or when `over` is still there unchanged (its successor was
     * never cleaned away), or when the next record was written over ours.
     */
    const tookEffect = (name: string, seq: number, nonce: string, over: Pick<Top, "seq" | "nonce">) =>
      Effect.gen(function*() {
        const seqs = yield* numbers(name)
        if (seqs[0] === seq) return true
        if (over.nonce !== null && (yield* recordAt(name, over.seq))?.nonce === over.nonce) return true
        return (yield* recordAt(name, seq + 1))?.prev === nonce
      })

    /**
     * Writes the record after `over` unless its number is taken: `true` when
     * it took effect, `false` when another saver took the number or ours
     * landed in a gap below the newest record.
     */
    const publish = (name: string, over: Pick<Top, "seq" | "nonce">, position: bigint | null) =>
      Effect.gen(function*() {
        const seq = over.seq + 1
        const nonce = randomUUID()
        const folder = folderOf(name)
        yield* fs.makeDirectory(folder, { recursive: true })
        const temporary = path.join(folder, `${nonce}.tmp`)
        yield* Effect.scoped(Effect.gen(function*() {
          const file = yield* fs.open(temporary, { flag: "w" })
          yield* file.writeAll(Buffer.from(encode(name, seq, position, nonce, over.nonce)))
          if (durable) yield* file.sync
        }))
        const linked = yield* fs.link(temporary, recordOf(name, seq)).pipe(
          Effect.as(true),
          Effect.catchIf((error) => isCode(error, "AlreadyExists"), () => Effect.succeed(false)),
          Effect.ensuring(Effect.ignore(fs.remove(temporary)))
        )
        if (!linked) return false
        if (durable) yield* syncPath(folder)
        if (!(yield* tookEffect(name, seq, nonce, over))) return false
        // oldest first: a record is removed only after every record below it
        const older = (yield* numbers(name)).filter((n) => n < seq - 1).sort((a, b) => a - b)
        for (const n of older) yield* Effect.ignore(fs.remove(recordOf(name, n)))
        if (seq === 1) yield* Effect.ignore(fs.remove(legacyFileOf(name)))
        return true
      })

    /** Publishes `position` after the newest record (readable or not: a damaged one is overwritten), until one number is ours. */
    const overwrite = (name: string, position: bigint | null): Effect.Effect<void, unknown> =>
      Effect.flatMap(numbers(name), (seqs) =>
        Effect.flatMap(
          Effect.either(top(name)),
          (current) => {
            const over = current._tag === "Right" ? current.right : { seq: seqs[0] ?? 0, nonce: null }
            return Effect.flatMap(publish(name, over, position), (done) => (done ? Effect.void : overwrite(name, position)))
          }
        ))

    const remove = (name: string) =>
      Effect.flatMap(Effect.either(top(name)), (current) =>
        current._tag === "Right" && Option.isNone(current.right.position) ? Effect.void : overwrite(name, null))

    const sameAs = Option.getEquivalence((a: bigint, b: bigint) => a === b)

    return CheckpointStore.make("filesystem", {
      load: (name) => Effect.map(top(name), (current) => current.position).pipe(Effect.mapError((error) => fail("loadCheckpoint", name, error))),
      save: (name, position) => overwrite(name, position).pipe(Effect.mapError((error) => fail("saveCheckpoint", name, error))),
      compareAndSet: (name, change) =>
        Effect.gen(function*() {
          const current = yield* top(name)
          if (!sameAs(current.position, change.expected)) return yield* Effect.fail(CheckpointStore.moved(name, change, current.position))
          if (yield* publish(name, current, change.next)) return
          return yield* Effect.fail(CheckpointStore.moved(name, change, (yield* top(name)).position))
        }).pipe(
          Effect.mapError((error) => error instanceof CheckpointStore.CheckpointMoved ? error : fail("compareAndSetCheckpoint", name, error))
        ),
      remove: (name) => remove(name).pipe(Effect.mapError((error) => fail("removeCheckpoint", name, error))),
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
