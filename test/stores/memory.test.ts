import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Metric, Stream } from "effect"
import { EventStore, MemoryCheckpointStore, MemoryEventStore, Metrics, StreamId } from "chronicle"
import { eventStoreContract, newEvent } from "../contract/EventStoreContract.js"
import { dcbContract } from "../contract/DcbContract.js"
import { subscriptionContract } from "../contract/SubscriptionContract.js"
import { streamLifecycleContract } from "../contract/StreamLifecycleContract.js"

eventStoreContract("memory", MemoryEventStore.layer())

eventStoreContract("memory with a 4 KiB event limit", MemoryEventStore.layer({ maxEventBytes: 4096 }), {
  maxEventBytes: 4096
})

describe("MemoryEventStore", () => {
  it.effect("stores a copy: mutating the appended payload afterwards changes nothing", () =>
    Effect.gen(function*() {
      const streamId = StreamId.unsafeMake("memory", "copy")
      const data = { items: ["a"] }
      yield* EventStore.append(streamId, [newEvent("Added", data)], { expectedVersion: "NoStream" })
      data.items.push("b")
      const [stored] = yield* EventStore.read(streamId).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      expect(stored!.data).toEqual({ items: ["a"] })
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  it.effect("hands out frozen events: a reader cannot corrupt the store", () =>
    Effect.gen(function*() {
      const streamId = StreamId.unsafeMake("memory", "frozen")
      yield* EventStore.append(streamId, [newEvent("Added", { items: ["a"] })], { expectedVersion: "NoStream" })
      const [stored] = yield* EventStore.read(streamId).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      expect(() => (stored!.data as { items: Array<string> }).items.push("b")).toThrow(TypeError)
      expect(Object.isFrozen(stored)).toBe(true)
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  it.effect("its appends are counted under store=memory", () =>
    Effect.gen(function*() {
      const appends = Metric.tagged(Metrics.appends, "store", "memory")
      const before = (yield* Metric.value(appends)).count
      yield* EventStore.append(StreamId.unsafeMake("memory", "counted"), [newEvent("A")], { expectedVersion: "NoStream" })
      expect((yield* Metric.value(appends)).count).toBe(before + 1)
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  it.effect("each layer build is a separate, empty store", () =>
    Effect.gen(function*() {
      const streamId = StreamId.unsafeMake("memory", "separate")
      yield* EventStore.append(streamId, [newEvent("A")], { expectedVersion: "NoStream" }).pipe(
        Effect.provide(MemoryEventStore.layer())
      )
      expect(yield* EventStore.streamVersion(streamId).pipe(Effect.provide(MemoryEventStore.layer()))).toBe(0)
    }))
})

streamLifecycleContract("memory", MemoryEventStore.layer(), { erase: true })

subscriptionContract("memory", Layer.merge(MemoryEventStore.layer(), MemoryCheckpointStore.layer()))

dcbContract("memory", MemoryEventStore.layer())
