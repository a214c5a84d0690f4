import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Schedule } from "effect"
import { CheckpointStore, ConsumerGroup, EventStore, MemoryCheckpointStore, MemoryEventStore, Projection, ProjectionRunner, StreamId } from "chronicle"
import { events } from "./contract/EventStoreContract.js"

const stores = Layer.merge(MemoryEventStore.layer(), MemoryCheckpointStore.layer())

describe("ProjectionRunner fence", () => {
  it.effect("given a fence that fails with PartitionLost, the runner stops at once: no retry, the checkpoint stays", () =>
    Effect.gen(function*() {
      yield* EventStore.append(StreamId.unsafeMake("acct", "a"), events(5), { expectedVersion: "NoStream" })
      let handled = 0
      let fenced = 0
      const projection = Projection.make({ name: "fenced", handle: () => Effect.sync(() => void handled++) })
      const lost = new ConsumerGroup.PartitionLost({ group: "g", partition: 0, member: "m", generation: 1n })
      const error = yield* Effect.flip(
        ProjectionRunner.catchUp(projection, {
          retry: Schedule.recurs(3),
          fence: Effect.suspend(() => (fenced++, Effect.fail(lost)))
        })
      )
      expect(error).toBeInstanceOf(ConsumerGroup.PartitionLost)
      expect(error).toMatchObject({ group: "g", partition: 0, member: "m" })
      expect(fenced).toBe(1)
      expect(handled).toBe(5)
      expect(yield* CheckpointStore.load("fenced")).toEqual(Option.none())
    }).pipe(Effect.provide(stores)))

  it.effect("given a fence that passes, every batch is checked before its checkpoint moves", () =>
    Effect.gen(function*() {
      const appended = yield* EventStore.append(StreamId.unsafeMake("acct", "a"), events(5), { expectedVersion: "NoStream" })
      let fenced = 0
      const projection = Projection.make({ name: "passing", handle: () => Effect.void })
      yield* ProjectionRunner.catchUp(projection, { batchSize: 2, fence: Effect.sync(() => void fenced++) })
      expect(fenced).toBe(3)
      expect(yield* CheckpointStore.load("passing")).toEqual(Option.some(appended.globalPositions[4]!))
    }).pipe(Effect.provide(stores)))

  it.effect("given a begin effect, it runs first in every batch, before the handlers", () =>
    Effect.gen(function*() {
      yield* EventStore.append(StreamId.unsafeMake("acct", "a"), events(5), { expectedVersion: "NoStream" })
      const trail: Array<string> = []
      const projection = Projection.make({ name: "begun", handle: (event) => Effect.sync(() => void trail.push(`handle ${event.streamVersion}`)) })
      yield* ProjectionRunner.catchUp(projection, { batchSize: 2, begin: Effect.sync(() => void trail.push("begin")) })
      expect(trail).toEqual(["begin", "handle 1", "handle 2", "begin", "handle 3", "handle 4", "begin", "handle 5"])
    }).pipe(Effect.provide(stores)))
})
