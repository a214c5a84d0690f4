/**
 * A writer process for the filesystem store's appendMany crash test.
 *
 *   node --import tsx test/support/transferWriter.ts <directory> <from> <to> <transfers> <maxPadding>
 *
 * Moves 1 from one stream to the other in `appendMany` calls (a withdrawal
 * and a deposit, each padded up to `maxPadding` bytes so a kill can land
 * inside a write), re-reading the versions and retrying on conflicts, and
 * prints one JSON line per acknowledged call: {"transfer":"…"}.
 */
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { EventId, EventStore, FileEventStore, StreamId } from "../../src/index.js"
import { runWorkerProgram } from "./process.js"

const [directory, fromArg, toArg, transfersArg, maxPaddingArg] = process.argv.slice(2)
const from = StreamId.unsafeParse(fromArg ?? "account-a")
const to = StreamId.unsafeParse(toArg ?? "account-b")
const transfers = Number(transfersArg ?? "100")
const maxPadding = Number(maxPaddingArg ?? "400")

const padded = (type: string, amount: number, transfer: string) => ({
  eventId: EventId.unsafeGenerate(),
  type,
  data: { amount, transfer, padding: "x".repeat(Math.floor(Math.random() * maxPadding)) }
})

const program = Effect.gen(function*() {
  for (let n = 0; n < transfers; n++) {
    const transfer = EventId.unsafeGenerate()
    const call = [padded("Withdrawn", -1, transfer), padded("Deposited", 1, transfer)]
    yield* Effect.gen(function*() {
      const [vFrom, vTo] = yield* Effect.all([EventStore.streamVersion(from), EventStore.streamVersion(to)])
      return yield* EventStore.appendMany([
        { streamId: from, events: [call[0]!], expectedVersion: vFrom },
        { streamId: to, events: [call[1]!], expectedVersion: vTo }
      ])
    }).pipe(Effect.retry({ while: (e) => e._tag === "ConcurrencyConflict" }))
    process.stdout.write(`${JSON.stringify({ transfer })}\n`)
  }
})

runWorkerProgram(program.pipe(Effect.provide(FileEventStore.layer({ directory, lockStaleMs: 2000 }).pipe(Layer.provide(NodeContext.layer)))))
