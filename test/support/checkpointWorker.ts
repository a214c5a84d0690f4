/**
 * A checkpoint racer for the cross-process compare-and-set tests.
 *
 *   node --import tsx test/support/checkpointWorker.ts <directory> <name>
 *
 * Forever: loads the checkpoint `name` of the filesystem store in
 * `directory`, moves it one up with `compareAndSet`, and prints `ok <next>`
 * on stdout for each move that succeeded. Stops after the move in hand
 * when its stdin closes (or when killed).
 */
import { NodeContext } from "@effect/platform-node"
import { Effect, Option } from "effect"
import { CheckpointStore, FileCheckpointStore } from "../../src/index.js"
import { runWorkerProgram } from "./process.js"

const [directory, name] = process.argv.slice(2)

let stopping = false
process.stdin.on("end", () => (stopping = true)).resume()

const race = Effect.gen(function*() {
  const checkpoints = yield* CheckpointStore.CheckpointStore
  while (!stopping) {
    const expected = yield* checkpoints.load(name!)
    const next = Option.getOrElse(expected, () => 0n) + 1n
    const moved = yield* Effect.either(checkpoints.compareAndSet(name!, { expected, next }))
    if (moved._tag === "Right") process.stdout.write(`ok ${next}\n`)
    else if (moved.left._tag !== "CheckpointMoved") return yield* moved.left
  }
})

runWorkerProgram(race.pipe(Effect.provide(FileCheckpointStore.layer({ directory: directory!, fsync: false })), Effect.provide(NodeContext.layer)))
