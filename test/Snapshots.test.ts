/**
 * Snapshots in the command handler: policies, loading from the latest usable
 * snapshot, ignoring unusable ones, temporal queries (the 1,000,000-event
 * stream is in Snapshots.scale.test.ts).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Metric, Option, TestClock } from "effect"
import { CommandHandler, EventStore, MemoryEventStore, Metrics, SnapshotPolicy, SnapshotStore, StreamId } from "chronicle"
import { codec, Counter, stores, TickState } from "./support/ticks.js"
import type { TickEvent } from "./support/ticks.js"

const snapshotOf = (streamId: StreamId.StreamId) =>
  Effect.flatMap(SnapshotStore.SnapshotStore, (store) => store.load(streamId))

const count = (metric: Metric.Metric.Counter<number>) => Effect.map(Metric.value(metric), (state) => state.count)

const fresh = () => StreamId.unsafeMake("counter", `${Date.now()}-${Math.random()}`)

describe("SnapshotPolicy", () => {
  const context = (version: number, last?: number, takenAt = 0, events: ReadonlyArray<{ _tag: string }> = []) => ({
    streamId: StreamId.unsafeMake("x", "1"),
    version,
    state: null,
    events,
    lastSnapshot: last === undefined ? Option.none() : Option.some({ version: last, takenAt: new Date(takenAt) }),
    now: new Date(10_000)
  })

  it.each([
    [SnapshotPolicy.everyEvents(100), context(99), false],
    [SnapshotPolicy.everyEvents(100), context(100), true],
    [SnapshotPolicy.everyEvents(100), context(150, 100), false],
    [SnapshotPolicy.everyEvents(100), context(200, 100), true],
    [SnapshotPolicy.afterTime("5 seconds"), context(3), true],
    [SnapshotPolicy.afterTime("5 seconds"), context(3, 1, 6_000), false],
    [SnapshotPolicy.afterTime("5 seconds"), context(3, 1, 4_000), true],
    [SnapshotPolicy.onEventTypes("Stopped"), context(3, undefined, 0, [{ _tag: "Ticked" }]), false],
    [SnapshotPolicy.onEventTypes("Stopped"), context(3, undefined, 0, [{ _tag: "Ticked" }, { _tag: "Stopped" }]), true],
    [SnapshotPolicy.any(SnapshotPolicy.never, SnapshotPolicy.everyEvents(2)), context(2), true],
    [SnapshotPolicy.all(SnapshotPolicy.everyEvents(2), SnapshotPolicy.afterTime("1 hour")), context(2, 0, 9_000), false],
    [SnapshotPolicy.all(SnapshotPolicy.everyEvents(2), SnapshotPolicy.onEventTypes("Stopped")), context(2, undefined, 0, [{ _tag: "Stopped" }]), true],
    [SnapshotPolicy.when(({ version }) => version % 7 === 0), context(14), true]
  ] as const)("policy %#", (policy, ctx, expected) => {
    expect((policy as SnapshotPolicy.SnapshotPolicy)(ctx)).toBe(expected)
  })

  it("everyEvents refuses an interval that is not a positive integer, naming it; 1 means after every append", () => {
    for (const n of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => SnapshotPolicy.everyEvents(n)).toThrow(`SnapshotPolicy.everyEvents needs a positive integer, got ${n}`)
    }
    expect(SnapshotPolicy.everyEvents(1)(context(1))).toBe(true)
    expect(SnapshotPolicy.everyEvents(1)(context(8, 7))).toBe(true)
    expect(SnapshotPolicy.everyEvents()(context(99))).toBe(false)
    expect(SnapshotPolicy.everyEvents()(context(100))).toBe(true)
  })

  it("afterTime snapshots once exactly the interval has passed, not before", () => {
    expect(SnapshotPolicy.afterTime("5 seconds")(context(3, 1, 5_000))).toBe(true)
    expect(SnapshotPolicy.afterTime("5 seconds")(context(3, 1, 5_001))).toBe(false)
  })

  it("never says no; any and all of no policies are no and yes", () => {
    expect(SnapshotPolicy.never(context(1_000))).toBe(false)
    expect(SnapshotPolicy.any()(context(1))).toBe(false)
    expect(SnapshotPolicy.all()(context(1))).toBe(true)
  })
})

describe("CommandHandler with snapshots", () => {
  const handler = (policy: SnapshotPolicy.SnapshotPolicy<TickEvent, TickState> = SnapshotPolicy.everyEvents(3), version = 1) =>
    CommandHandler.make(Counter, { codec, snapshots: { schema: TickState, version, policy } })

  it.effect("given a policy of every 3 events, snapshots are taken after the 3rd and 6th", () =>
    Effect.gen(function*() {
      const streamId = fresh()
      const ticks = handler()
      for (let i = 1; i <= 5; i++) yield* ticks.handle(streamId, { by: i })
      expect(Option.getOrThrow(yield* snapshotOf(streamId))).toMatchObject({
        version: 3,
        state: { total: 6, ticks: 3, stopped: false }
      })
      yield* ticks.handle(streamId, { by: 6 })
      expect(Option.getOrThrow(yield* snapshotOf(streamId))).toMatchObject({ version: 6, stateSchemaVersion: 1 })
    }).pipe(Effect.provide(stores())))

  it.effect("loading starts from the snapshot and reads only the events after it", () => {
    const counter = { read: 0 }
    return Effect.gen(function*() {
      const streamId = fresh()
      const ticks = handler()
      for (let i = 1; i <= 7; i++) yield* ticks.handle(streamId, { by: 1 })
      counter.read = 0
      const loaded = yield* ticks.load(streamId)
      expect(loaded.version).toBe(7)
      expect(loaded.state).toEqual({ total: 7, ticks: 7, stopped: false })
      expect(Option.map(loaded.snapshot, (s) => s.version)).toEqual(Option.some(6))
      expect(counter.read).toBe(1)
    }).pipe(Effect.provide(stores(counter)))
  })

  it.effect("a snapshot of another state schema version is ignored: full replay, then a fresh snapshot", () => {
    const counter = { read: 0 }
    return Effect.gen(function*() {
      const streamId = fresh()
      for (let i = 1; i <= 4; i++) yield* handler(SnapshotPolicy.everyEvents(3), 1).handle(streamId, { by: 1 })
      const ignoredBefore = yield* count(Metrics.snapshotsIgnored)
      counter.read = 0
      const loaded = yield* handler(SnapshotPolicy.never, 2).load(streamId)
      expect(loaded.state).toEqual({ total: 4, ticks: 4, stopped: false })
      expect(loaded.snapshot).toEqual(Option.none())
      expect(counter.read).toBe(4)
      expect(yield* count(Metrics.snapshotsIgnored)).toBe(ignoredBefore + 1)
      expect(Option.getOrThrow(yield* snapshotOf(streamId))).toMatchObject({ version: 4, stateSchemaVersion: 2 })
    }).pipe(Effect.provide(stores(counter)))
  })

  it.effect("a snapshot whose state does not decode is ignored, replayed and replaced", () =>
    Effect.gen(function*() {
      const streamId = fresh()
      yield* handler().handle(streamId, { by: 5 })
      const snapshots = yield* SnapshotStore.SnapshotStore
      yield* snapshots.save({ streamId, version: 1, state: { total: "garbage" }, stateSchemaVersion: 1 })
      const loaded = yield* handler().load(streamId)
      expect(loaded.state.total).toBe(5)
      expect(Option.getOrThrow(yield* snapshotOf(streamId)).state).toEqual({ total: 5, ticks: 1, stopped: false })
    }).pipe(Effect.provide(stores())))

  it.effect("given a snapshot of a version the stream never reached, loading ignores and counts it, replays, and the replay's snapshot replaces it", () => {
    const counter = { read: 0 }
    return Effect.gen(function*() {
      const streamId = fresh()
      for (let i = 1; i <= 4; i++) yield* handler(SnapshotPolicy.never).handle(streamId, { by: 1 })
      const snapshots = yield* SnapshotStore.SnapshotStore
      yield* snapshots.save({ streamId, version: 40, state: { total: 999, ticks: 40, stopped: false }, stateSchemaVersion: 1 })
      const ignoredBefore = yield* count(Metrics.snapshotsIgnored)
      counter.read = 0
      const loaded = yield* handler(SnapshotPolicy.never).load(streamId)
      expect(loaded).toEqual({ state: { total: 4, ticks: 4, stopped: false }, version: 4, snapshot: Option.none() })
      expect(counter.read).toBe(4)
      expect(yield* count(Metrics.snapshotsIgnored)).toBe(ignoredBefore + 1)
      expect(Option.getOrThrow(yield* snapshotOf(streamId))).toMatchObject({ version: 4, state: { total: 4 } })
    }).pipe(Effect.provide(stores(counter)))
  })

  it.effect("given a snapshot at the stream's last version, loading uses it and reads nothing more", () => {
    const counter = { read: 0 }
    return Effect.gen(function*() {
      const streamId = fresh()
      for (let i = 1; i <= 3; i++) yield* handler().handle(streamId, { by: 2 })
      const ignoredBefore = yield* count(Metrics.snapshotsIgnored)
      counter.read = 0
      const loaded = yield* handler().load(streamId)
      expect(loaded.state).toEqual({ total: 6, ticks: 3, stopped: false })
      expect(Option.map(loaded.snapshot, (s) => s.version)).toEqual(Option.some(3))
      expect(counter.read).toBe(0)
      expect(yield* count(Metrics.snapshotsIgnored)).toBe(ignoredBefore)
    }).pipe(Effect.provide(stores(counter)))
  })

  it.effect("an unusable snapshot is not replaced by a load at a point in time, nor for a stream without events", () =>
    Effect.gen(function*() {
      const streamId = fresh()
      for (let i = 1; i <= 3; i++) yield* handler(SnapshotPolicy.everyEvents(3), 1).handle(streamId, { by: 1 })
      const v2 = handler(SnapshotPolicy.never, 2)
      expect((yield* v2.loadAt(streamId, { version: 3 })).state.total).toBe(3)
      expect(Option.getOrThrow(yield* snapshotOf(streamId)).stateSchemaVersion).toBe(1)
      const empty = fresh()
      const snapshots = yield* SnapshotStore.SnapshotStore
      yield* snapshots.save({ streamId: empty, version: 0, state: { total: 0, ticks: 0, stopped: false }, stateSchemaVersion: 1 })
      expect((yield* v2.load(empty)).version).toBe(0)
      expect(Option.getOrThrow(yield* snapshotOf(empty)).stateSchemaVersion).toBe(1)
    }).pipe(Effect.provide(stores())))

  it.effect("a snapshot store that cannot load, nor remove, is replayed past: the load still succeeds, and the failure is counted", () =>
    Effect.gen(function*() {
      const streamId = fresh()
      yield* CommandHandler.make(Counter, { codec }).handle(streamId, { by: 7 })
      const ignoredBefore = yield* count(Metrics.snapshotsIgnored)
      const loaded = yield* handler(SnapshotPolicy.never).load(streamId)
      expect(loaded).toEqual({ state: { total: 7, ticks: 1, stopped: false }, version: 1, snapshot: Option.none() })
      expect(yield* count(Metrics.snapshotsIgnored)).toBe(ignoredBefore + 1)
    }).pipe(
      Effect.provide(
        Layer.merge(
          MemoryEventStore.layer(),
          Layer.succeed(SnapshotStore.SnapshotStore, {
            save: () => Effect.void,
            load: () => Effect.fail(new EventStore.StoreError({ operation: "loadSnapshot", reason: "unreadable" })),
            remove: () => Effect.fail(new EventStore.StoreError({ operation: "removeSnapshot", reason: "read-only" }))
          })
        )
      )
    ))

  it.effect("a snapshot past the stream's end that cannot be removed is still replayed past: the load succeeds", () =>
    Effect.gen(function*() {
      const streamId = fresh()
      yield* CommandHandler.make(Counter, { codec }).handle(streamId, { by: 3 })
      const loaded = yield* handler(SnapshotPolicy.never).load(streamId)
      expect(loaded).toEqual({ state: { total: 3, ticks: 1, stopped: false }, version: 1, snapshot: Option.none() })
    }).pipe(
      Effect.provide(
        Layer.merge(
          MemoryEventStore.layer(),
          Layer.succeed(SnapshotStore.SnapshotStore, {
            save: () => Effect.void,
            load: (streamId) =>
              Effect.succeed(Option.some({ streamId, version: 9, state: { total: 90, ticks: 9, stopped: false }, stateSchemaVersion: 1, takenAt: new Date(0) })),
            remove: () => Effect.fail(new EventStore.StoreError({ operation: "removeSnapshot", reason: "read-only" }))
          })
        )
      )
    ))

  it.effect("a snapshot policy that throws never fails the command; the failure is counted and nothing is saved", () =>
    Effect.gen(function*() {
      const streamId = fresh()
      const failuresBefore = yield* count(Metrics.snapshotFailures)
      const takenBefore = yield* count(Metrics.snapshotsTaken)
      const result = yield* handler(SnapshotPolicy.when(() => {
        throw new Error("policy bug")
      })).handle(streamId, { by: 1 })
      expect(result.streamVersion).toBe(1)
      expect(yield* count(Metrics.snapshotFailures)).toBe(failuresBefore + 1)
      expect(yield* count(Metrics.snapshotsTaken)).toBe(takenBefore)
      expect(yield* snapshotOf(streamId)).toEqual(Option.none())
    }).pipe(Effect.provide(stores())))

  it.effect("without a policy, a snapshot is taken every 100 events; each one taken is counted", () =>
    Effect.gen(function*() {
      const streamId = fresh()
      const ticks = CommandHandler.make(Counter, { codec, snapshots: { schema: TickState } })
      const takenBefore = yield* count(Metrics.snapshotsTaken)
      yield* EventStore.append(streamId, Array.from({ length: 98 }, () => ({ type: "Ticked", data: { by: 1 } })), { expectedVersion: "NoStream" })
      yield* ticks.handle(streamId, { by: 1 })
      expect(yield* snapshotOf(streamId)).toEqual(Option.none())
      yield* ticks.handle(streamId, { by: 1 })
      expect(Option.getOrThrow(yield* snapshotOf(streamId))).toMatchObject({ version: 100, stateSchemaVersion: 1, state: { total: 100 } })
      expect(yield* count(Metrics.snapshotsTaken)).toBe(takenBefore + 1)
    }).pipe(Effect.provide(stores())))

  it.effect("an aggregate with no events loads its initial state and takes no snapshot", () =>
    Effect.gen(function*() {
      const streamId = fresh()
      const loaded = yield* handler().load(streamId)
      expect(loaded).toEqual({ state: Counter.initialState, version: 0, snapshot: Option.none() })
      expect(yield* snapshotOf(streamId)).toEqual(Option.none())
    }).pipe(Effect.provide(stores())))

  it.effect("a snapshot that cannot be saved never fails the command; the failure is counted", () =>
    Effect.gen(function*() {
      const streamId = fresh()
      const failuresBefore = yield* count(Metrics.snapshotFailures)
      const result = yield* handler(SnapshotPolicy.everyEvents(1)).handle(streamId, { by: 1 })
      expect(result.streamVersion).toBe(1)
      expect(yield* count(Metrics.snapshotFailures)).toBe(failuresBefore + 1)
    }).pipe(
      Effect.provide(
        Layer.merge(
          MemoryEventStore.layer(),
          Layer.succeed(SnapshotStore.SnapshotStore, {
            save: () => Effect.fail(new EventStore.StoreError({ operation: "saveSnapshot", reason: "disk on fire" })),
            load: () => Effect.succeed(Option.none()),
            remove: () => Effect.void
          })
        )
      )
    ))

  it.effect("snapshots follow the policy on event types (a terminal state)", () =>
    Effect.gen(function*() {
      const streamId = fresh()
      const ticks = handler(SnapshotPolicy.onEventTypes("Stopped"))
      yield* ticks.handle(streamId, { by: 1 })
      expect(yield* snapshotOf(streamId)).toEqual(Option.none())
      yield* ticks.handle(streamId, "stop")
      expect(Option.getOrThrow(yield* snapshotOf(streamId))).toMatchObject({ version: 2, state: { stopped: true } })
    }).pipe(Effect.provide(stores())))
})

describe("temporal queries", () => {
  it.effect("the state as of a version never uses a snapshot newer than it", () => {
    const counter = { read: 0 }
    return Effect.gen(function*() {
      const streamId = fresh()
      const ticks = CommandHandler.make(Counter, {
        codec,
        snapshots: { schema: TickState, policy: SnapshotPolicy.everyEvents(5) }
      })
      for (let i = 1; i <= 12; i++) yield* ticks.handle(streamId, { by: i })
      counter.read = 0
      const atSeven = yield* ticks.loadAt(streamId, { version: 7 })
      expect(atSeven.state.total).toBe(28)
      expect(atSeven.version).toBe(7)
      expect(Option.map(atSeven.snapshot, (s) => s.version)).toEqual(Option.none())
      expect(counter.read).toBe(7)
      expect(Option.getOrThrow(yield* snapshotOf(streamId)).version).toBe(10)
      counter.read = 0
      const atTen = yield* ticks.loadAt(streamId, { version: 10 })
      expect([atTen.state.total, Option.map(atTen.snapshot, (s) => s.version), counter.read]).toEqual([55, Option.some(10), 0])
      const atTwelve = yield* ticks.loadAt(streamId, { version: 12 })
      expect(atTwelve.state.total).toBe(78)
    }).pipe(Effect.provide(stores(counter)))
  })

  it.effect("the state as of a point in time folds the events recorded until then", () =>
    Effect.gen(function*() {
      const streamId = fresh()
      const ticks = CommandHandler.make(Counter, { codec })
      yield* TestClock.setTime(Date.parse("2026-01-01T00:00:00Z"))
      yield* ticks.handle(streamId, { by: 1 })
      yield* TestClock.adjust("1 hour")
      yield* ticks.handle(streamId, { by: 10 })
      yield* TestClock.adjust("1 hour")
      yield* ticks.handle(streamId, { by: 100 })
      const at = (iso: string) => Effect.map(ticks.loadAt(streamId, { time: new Date(iso) }), (l) => [l.state.total, l.version])
      expect(yield* at("2025-12-31T23:59:59Z")).toEqual([0, 0])
      expect(yield* at("2026-01-01T00:00:00Z")).toEqual([1, 1])
      expect(yield* at("2026-01-01T01:30:00Z")).toEqual([11, 2])
      expect(yield* at("2026-01-02T00:00:00Z")).toEqual([111, 3])
    }).pipe(Effect.provide(MemoryEventStore.layer())))
})
