/**
 * A writer process that stalls (SIGSTOP on itself) while it holds the
 * filesystem store's lock, after it planned an append and right before the
 * write: the moment a GC pause or a frozen VM hurts most.
 *
 *   node --import tsx test/support/stallingWriter.ts <directory> <streamId> <appends> <maxBatch> <seed>
 *
 * Appends `appends` batches of 1..maxBatch events to one stream. The last
 * append's write stalls: the process prints `{"stalling":true}` and stops
 * itself; the test takes the lock over, appends, and sends SIGCONT. Every
 * append prints one JSON line: `{"ids":[…],"version":n}` when acknowledged,
 * `{"ids":[…],"failed":{"_tag":…,"message":…}}` when it failed. The hook
 * wraps this process's `fs.writeSync` (the store's writer appends with it):
 * the store's own code paths run unchanged.
 */
import { writeSync } from "node:fs"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { EventId, EventStore, FileEventStore, StreamId } from "../../src/index.js"
import { runWorkerProgram } from "./process.js"
import { hookSyncWrites } from "./syncWrites.js"

const [directory, stream, appendsArg, maxBatchArg, seedArg] = process.argv.slice(2)
const appends = Number(appendsArg ?? "3")
const maxBatch = Number(maxBatchArg ?? "3")
const streamId = StreamId.unsafeParse(stream ?? "shared-stream")

let state = Number(seedArg ?? "1") >>> 0
/** mulberry32: the batch sizes follow from the seed. */
const random = () => {
  state = (state + 0x6d2b79f5) >>> 0
  let t = state
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

let armed = false
const print = (value: unknown) => writeSync(1, `${JSON.stringify(value)}\n`)

// the log's next write stops the process first when armed
hookSyncWrites({
  before: (path) => {
    if (armed && path.endsWith(FileEventStore.logFileName)) {
      armed = false
      print({ stalling: true })
      process.kill(process.pid, "SIGSTOP")
    }
  }
})

const program = Effect.gen(function*() {
  for (let n = 0; n < appends; n++) {
    const size = 1 + Math.floor(random() * maxBatch)
    const batch = Array.from({ length: size }, (_, i) => ({
      eventId: EventId.unsafeGenerate(),
      type: "Written",
      data: { pid: process.pid, n, i }
    }))
    const ids = batch.map((e) => e.eventId)
    armed = n === appends - 1
    const result = yield* Effect.gen(function*() {
      const version = yield* EventStore.streamVersion(streamId)
      return yield* EventStore.append(streamId, batch, { expectedVersion: version })
    }).pipe(Effect.either)
    if (result._tag === "Right") print({ ids, version: result.right.streamVersion })
    else print({ ids, failed: { _tag: result.left._tag, message: result.left.message } })
  }
})

runWorkerProgram(program.pipe(Effect.provide(
    FileEventStore.layer({ directory, lockStaleMs: 2000 }).pipe(Layer.provide(NodeContext.layer))
  )))
