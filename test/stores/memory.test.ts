import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Metric, Stream } from "effect"
import { EventStore, MemoryCheckpointStore, MemoryEventStore, Metrics, Query, StreamId } from "chronicle"
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

  it.effect("given metric labels on the fiber (Effect.tagMetrics), its appends, events and conflicts are counted under them and the store", () =>
    Effect.gen(function*() {
      const tenant = <A extends number | bigint>(metric: Metric.Metric.Counter<A>) => Metric.tagged(Metric.tagged(metric, "store", "memory"), "tenant", "t-7")
      const count = <A extends number | bigint>(metric: Metric.Metric.Counter<A>) => Effect.map(Metric.value(tenant(metric)), (state) => Number(state.count))
      const streamId = StreamId.unsafeMake("memory", "labelled")
      const before = [yield* count(Metrics.appends), yield* count(Metrics.eventsAppended), yield* count(Metrics.concurrencyConflicts)]
      yield* EventStore.append(streamId, [newEvent("A"), newEvent("B")], { expectedVersion: "NoStream" }).pipe(
        Effect.tagMetrics("tenant", "t-7")
      )
      yield* Effect.flip(EventStore.append(streamId, [newEvent("C")], { expectedVersion: "NoStream" })).pipe(
        Effect.tagMetrics("tenant", "t-7")
      )
      const after = [yield* count(Metrics.appends), yield* count(Metrics.eventsAppended), yield* count(Metrics.concurrencyConflicts)]
      expect(after).toEqual([before[0]! + 1, before[1]! + 2, before[2]! + 1])
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  // The contract suites build their store once per suite, before any test: these build it in the test,
  // so that what the store's constructor sets up (its defaults, its operations) is pinned per test too.
  it.effect("a store built with no options refuses an event over 1 MiB with EventTooLarge", () =>
    Effect.gen(function*() {
      const big = newEvent("Big", { blob: "x".repeat(1024 * 1024) })
      const error = yield* Effect.flip(EventStore.append(StreamId.unsafeMake("memory", "big"), [big], { expectedVersion: "NoStream" }))
      expect(error).toMatchObject({ _tag: "EventTooLarge", limit: 1024 * 1024 })
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  it.effect("a deleted stream is shown deleted and its events stay in the log; an erased one leaves it", () =>
    Effect.gen(function*() {
      const kept = StreamId.unsafeMake("memory", "deleted")
      const erased = StreamId.unsafeMake("memory", "erased")
      yield* EventStore.append(kept, [newEvent("A"), newEvent("B")], { expectedVersion: "NoStream" })
      yield* EventStore.append(erased, [newEvent("C")], { expectedVersion: "NoStream" })
      expect(yield* EventStore.isDeleted(kept)).toBe(false)
      yield* EventStore.deleteStream(kept, { expectedVersion: 2 })
      expect(yield* EventStore.isDeleted(kept)).toBe(true)
      expect(yield* EventStore.streamVersion(kept)).toBe(2)
      const logTypes = EventStore.readAll().pipe(Stream.map((e) => e.type), Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      expect(yield* logTypes).toEqual(["A", "B", "C"])
      yield* EventStore.deleteStream(erased, { expectedVersion: 1, erase: true })
      expect(yield* EventStore.isDeleted(erased)).toBe(true)
      expect(yield* logTypes).toEqual(["A", "B"])
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  it.effect("the events of an erased stream are gone from queries by their tags, which still find the others", () =>
    Effect.gen(function*() {
      const erased = StreamId.unsafeMake("memory", "erased-tagged")
      yield* EventStore.append(erased, [newEvent("A", {}, { tags: ["shared"] })], { expectedVersion: "NoStream" })
      const kept = yield* EventStore.append(StreamId.unsafeMake("memory", "kept-tagged"), [newEvent("B", {}, { tags: ["shared"] })], { expectedVersion: "NoStream" })
      yield* EventStore.deleteStream(erased, { erase: true })
      const found = yield* EventStore.query(Query.tagged("shared")).pipe(Stream.map((e) => e.globalPosition), Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      expect(found).toEqual(kept.globalPositions)
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
