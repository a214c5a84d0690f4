/**
 * The filesystem store keeps its cross-process write lock while it keeps
 * writing (a lease), instead of taking and dropping it around each commit.
 * Another writer asks for it and gets it at the end of the holder's current
 * commit: a busy writer never starves the others, and the holder, having let
 * go, catches up with what they wrote before its next commit.
 */
import { rmSync } from "node:fs"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Stream } from "effect"
import { FileEventStore, StreamId } from "chronicle"
import { events } from "../contract/EventStoreContract.js"
import { tempDirectory } from "../support/filesystem.js"

/** Two stores over one fresh directory, each as a process of its own would open it. */
const twoWriters = (label: string) =>
  Effect.gen(function*() {
    const directory = tempDirectory(label)
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true })))
    const open = FileEventStore.make({ directory }).pipe(Effect.provide(NodeContext.layer))
    return [yield* open, yield* open] as const
  })

describe("FileEventStore write lease", () => {
  it.live("given a writer appending without pause, when another writer of the same store appends, then it gets the lock while the first keeps going, and the log stays whole", () =>
    Effect.gen(function*() {
      const [busy, other] = yield* twoWriters("lease")
      const shared = StreamId.unsafeMake("lease", "shared")
      let done = false
      let busyAppends = 0
      // the busy writer never pauses long enough for its lease to lapse; without asking, the other would wait it out
      const busyWriter = Effect.gen(function*() {
        while (!done && busyAppends < 200_000) {
          yield* busy.append(shared, events(1), { expectedVersion: "Any" })
          busyAppends++
        }
      })
      const otherWriter = Effect.gen(function*() {
        // the busy writer holds the lease by the time it has appended a few times
        while (busyAppends < 5) yield* Effect.sleep("1 millis")
        const result = yield* Effect.either(other.append(shared, events(2), { expectedVersion: "Any" }))
        const busyAppendsThen = busyAppends
        done = true
        return { result, busyAppendsThen }
      })
      const [, { busyAppendsThen, result }] = yield* Effect.all([busyWriter, otherWriter], { concurrency: "unbounded" })

      expect(Either.isRight(result), `the other writer's append: ${JSON.stringify(Either.isLeft(result) ? result.left : "")}`).toBe(true)
      expect(busyAppendsThen, "the busy writer was still appending").toBeLessThan(200_000)
      // both see the same whole log: versions contiguous, positions increasing, the other's events once
      for (const store of [busy, other]) {
        const log = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll()))
        expect(log.map((e) => e.streamVersion)).toEqual(log.map((_, i) => i + 1))
        expect(log.map((e) => e.globalPosition)).toEqual(log.map((_, i) => BigInt(i + 1)))
        expect(log.length).toBe(busyAppends + 2)
      }
    }).pipe(Effect.scoped))

  it.live("given a writer that let the lease go for another, when it appends again with an exact version, then it has caught up with the other's append first", () =>
    Effect.gen(function*() {
      const [first, second] = yield* twoWriters("lease-catchup")
      const streamId = StreamId.unsafeMake("lease", "turns")
      let version = 0
      for (let round = 0; round < 20; round++) {
        const writer = round % 2 === 0 ? first : second
        const result = yield* writer.append(streamId, events(1), { expectedVersion: version === 0 ? "NoStream" : version })
        version = result.streamVersion
      }
      expect(version).toBe(20)
      expect(yield* first.streamVersion(streamId)).toBe(20)
    }).pipe(Effect.scoped))
})
