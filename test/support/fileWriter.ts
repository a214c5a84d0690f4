/**
 * A writer process for the filesystem store's multi-process and crash tests.
 *
 *   node --import tsx test/support/fileWriter.ts <directory> <streamId> <appends> <maxBatch> [maxPadding]
 *
 * Appends `appends` batches of 1..maxBatch events to one stream, re-reading
 * the version and retrying on conflicts, and prints one JSON line per
 * acknowledged append: {"ids":[…],"version":n}.
 */
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { EventId, EventStore, FileEventStore, StreamId } from "../../src/index.js"
import { runWorkerProgram } from "./process.js"

const [directory, stream, appendsArg, maxBatchArg, maxPaddingArg] = process.argv.slice(2)
const maxPadding = Number(maxPaddingArg ?? "400")
const appends = Number(appendsArg ?? "50")
const maxBatch = Number(maxBatchArg ?? "3")
const streamId = StreamId.unsafeParse(stream ?? "shared-stream")

const program = Effect.gen(function*() {
  for (let n = 0; n < appends; n++) {
    const size = 1 + Math.floor(Math.random() * maxBatch)
    const batch = Array.from({ length: size }, (_, i) => ({
      eventId: EventId.unsafeGenerate(),
      type: "Written",
      data: { pid: process.pid, n, i, padding: "x".repeat(Math.floor(Math.random() * maxPadding)) }
    }))
    const result = yield* Effect.gen(function*() {
      const version = yield* EventStore.streamVersion(streamId)
      return yield* EventStore.append(streamId, batch, { expectedVersion: version })
    }).pipe(Effect.retry({ while: (e) => e._tag === "ConcurrencyConflict" }))
    process.stdout.write(`${JSON.stringify({ ids: batch.map((e) => e.eventId), version: result.streamVersion })}\n`)
  }
})

runWorkerProgram(program.pipe(Effect.provide(FileEventStore.layer({ directory, lockStaleMs: 2000 }).pipe(Layer.provide(NodeContext.layer)))))
