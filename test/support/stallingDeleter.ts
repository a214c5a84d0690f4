/**
 * A process that deletes (or erases) a stream of the filesystem store and
 * stalls (SIGSTOP on itself) while it holds the lock, right before one of the
 * writes of that deletion: the moment a GC pause or a frozen VM hurts most.
 *
 *   node --import tsx test/support/stallingDeleter.ts <directory> <streamId> <erase: 0|1> <stallBeforeWrite: k>
 *
 * Reads the stream's version, then deletes it expecting that version; before
 * the k-th write (1-based) of the deletion to any file of the store's
 * directory, it prints `{"stalling":true}` and stops itself; the test takes
 * the lock over, appends, and sends SIGCONT (or SIGKILL). It prints
 * `{"deleted":true,"version":n}` when the deletion succeeded and
 * `{"failed":{"_tag":…,"message":…}}` when it failed. The hook lives in a
 * wrapped `FileSystem` given to the store: the store's own code paths run
 * unchanged.
 */
import { writeSync } from "node:fs"
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { EventStore, FileEventStore, StreamId } from "../../src/index.js"
import { runWorkerProgram } from "./process.js"

const [directory = ".", stream, eraseArg, stallArg] = process.argv.slice(2)
const streamId = StreamId.unsafeParse(stream ?? "deleted-stream")
const erase = eraseArg === "1"
const stallBefore = Number(stallArg ?? "1")

/** Writes left before the stall once armed; not armed: -1. */
let countdown = -1
const print = (value: unknown) => writeSync(1, `${JSON.stringify(value)}\n`)

/** A file of the store, with writes that stop the process first when the countdown runs out. */
const stalling = (file: FileSystem.File): FileSystem.File =>
  new Proxy(file, {
    get(target, property) {
      if (property === "writeAll") {
        return (buffer: Uint8Array) =>
          Effect.suspend(() => {
            if (countdown > 0 && --countdown === 0) {
              print({ stalling: true })
              process.kill(process.pid, "SIGSTOP")
            }
            return target.writeAll(buffer)
          })
      }
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === "function" ? value.bind(target) : value
    }
  })

const StallingFileSystem = Layer.effect(
  FileSystem.FileSystem,
  Effect.map(FileSystem.FileSystem, (fs): FileSystem.FileSystem => ({
    ...fs,
    open: (path, options) => Effect.map(fs.open(path, options), (file) => (path.startsWith(directory) ? stalling(file) : file))
  }))
).pipe(Layer.provide(NodeContext.layer))

const program = Effect.gen(function*() {
  const version = yield* EventStore.streamVersion(streamId)
  countdown = stallBefore
  const result = yield* Effect.either(EventStore.deleteStream(streamId, { expectedVersion: version, erase }))
  if (result._tag === "Right") print({ deleted: true, version })
  else print({ failed: { _tag: result.left._tag, message: result.left.message } })
})

runWorkerProgram(program.pipe(Effect.provide(
  FileEventStore.layer({ directory, lockStaleMs: 2000 }).pipe(Layer.provide(Layer.merge(NodeContext.layer, StallingFileSystem)))
)))
