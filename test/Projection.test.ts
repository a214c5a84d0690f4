import { describe, expect, it } from "@effect/vitest"
import { Chunk, Context, Effect, Either, Layer, Metric, Option, Ref, Schedule, Stream } from "effect"
import type { Event } from "chronicle"
import { CheckpointStore, CommandHandler, EventStore, MemoryCheckpointStore, MemoryEventStore, Metrics, ProcessManager, Projection, ProjectionRunner, StreamId } from "chronicle"
import { ProjectionSpec } from "chronicle/testing"
import { AccountEvents, BankAccount, MoneyDeposited, MoneyWithdrawn, AccountOpened } from "../examples/BankAccount.js"

/** A read model: balances by account, as a service the projection needs. */
class Balances extends Context.Tag("test/Balances")<Balances, Ref.Ref<ReadonlyMap<string, number>>>() {
  static readonly layer = Layer.effect(Balances, Ref.make<ReadonlyMap<string, number>>(new Map()))
}

const balanceOf = (account: string) => Effect.flatMap(Balances, (ref) => Effect.map(Ref.get(ref), (all) => all.get(account)))

const BalanceProjection = Projection.fromCodec(AccountEvents, {
  name: "balances",
  types: ["MoneyDeposited", "MoneyWithdrawn"],
  handle: (event) =>
    Effect.flatMap(Balances, (ref) =>
      Ref.update(ref, (all) => {
        const delta = event.data._tag === "MoneyDeposited" ? event.data.amount : -event.data.amount
        return new Map([...all, [event.streamId, (all.get(event.streamId) ?? 0) + delta]])
      }))
})

const spec = ProjectionSpec.make(BalanceProjection, AccountEvents)
const opened = AccountOpened.make({ owner: "ada", currency: "EUR" })

describe("Projection", () => {
  it.effect("given deposits, when a withdrawal arrives, then the balance drops", () =>
    spec.given([["account-a", opened], ["account-a", MoneyDeposited.make({ amount: 100 })]])
      .when([["account-a", MoneyWithdrawn.make({ amount: 30 })]])
      .then(Effect.map(balanceOf("account-a"), (balance) => expect(balance).toBe(70)))
      .pipe(Effect.provide(Balances.layer)))

  it.effect("accounts are projected apart, and events of other types are not handled", () =>
    spec.given([["account-a", opened], ["account-b", MoneyDeposited.make({ amount: 5 })], ["account-a", MoneyDeposited.make({ amount: 7 })]])
      .then(Effect.all([balanceOf("account-a"), balanceOf("account-b"), balanceOf("account-c")]))
      .pipe(
        Effect.map((balances) => expect(balances).toEqual([7, 5, undefined])),
        Effect.provide(Balances.layer)
      ))

  it.effect("a check that does not hold fails the spec", () =>
    spec.given([["account-a", MoneyDeposited.make({ amount: 1 })]])
      .then(Effect.map(balanceOf("account-a"), (balance) => expect(balance).toBe(2)))
      .pipe(Effect.provide(Balances.layer), Effect.exit, Effect.map((exit) => expect(exit._tag).toBe("Failure"))))

  it.effect("an event that does not decode parks the projection on it, naming it", () =>
    ProjectionSpec.make(BalanceProjection)
      .given([["account-a", { type: "MoneyDeposited", data: { amount: 10 } }]])
      .when([["account-a", { type: "MoneyDeposited", data: { amount: "lots" } }]])
      .thenParks((parked) => parked.type === "MoneyDeposited" && parked.position === 2n && /amount/.test(String(parked.cause)))
      .pipe(Effect.provide(Balances.layer)))

  it.effect("thenParks fails when the projection handles everything", () =>
    spec.given([["account-a", MoneyDeposited.make({ amount: 1 })]])
      .thenParks(() => true)
      .pipe(Effect.provide(Balances.layer), Effect.exit, Effect.map((exit) => expect(exit._tag).toBe("Failure"))))

  it("handles: every type without eventTypes, only those listed with them", () => {
    const all = Projection.make({ name: "all", handle: () => Effect.void })
    expect(Projection.handles(all, "Anything")).toBe(true)
    expect(Projection.handles(BalanceProjection, "MoneyDeposited")).toBe(true)
    expect(Projection.handles(BalanceProjection, "AccountOpened")).toBe(false)
  })
})

describe("ProcessManager", () => {
  const stored = (metadata: Event.EventMetadata): Event.StoredEvent => ({
    eventId: "0190a6c1-0000-7000-8000-000000000001" as Event.StoredEvent["eventId"],
    type: "MoneyDeposited",
    streamId: StreamId.unsafeMake("account", "a"),
    streamVersion: 1,
    globalPosition: 1n,
    recordedAt: new Date(0),
    schemaVersion: 1,
    data: { amount: 1 },
    metadata,
    tags: []
  })

  it("causedBy: an event without a correlation id starts one with its own id", () => {
    expect(ProcessManager.causedBy(stored({}))).toEqual({
      correlationId: "0190a6c1-0000-7000-8000-000000000001",
      causationId: "0190a6c1-0000-7000-8000-000000000001"
    })
  })

  it("causedBy: an event's correlation id carries on", () => {
    expect(ProcessManager.causedBy(stored({ correlationId: "order-7" }))).toEqual({
      correlationId: "order-7",
      causationId: "0190a6c1-0000-7000-8000-000000000001"
    })
  })

  it.effect("a reaction's commands append events carrying the correlation and causation ids", () =>
    Effect.gen(function*() {
      const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents })
      // a bonus: every first deposit into an account earns 1 more, deposited by the process manager
      const bonus = ProcessManager.make(AccountEvents, {
        name: "bonus",
        types: ["MoneyDeposited"],
        // idempotent: delivered again, the first deposit finds the bonus already paid
        react: (event, metadata) =>
          Effect.flatMap(EventStore.streamVersion(event.streamId), (version) =>
            event.streamVersion === 2 && version === 2
              ? Effect.orDie(accounts.handle(event.streamId, { _tag: "Deposit", amount: 1 }, { metadata }))
              : Effect.void)
      })
      const account = StreamId.unsafeMake("account", "bonus")
      yield* accounts.handle(account, { _tag: "OpenAccount", owner: "ada", currency: "EUR" }, { metadata: { correlationId: "signup-1" } })
      yield* accounts.handle(account, { _tag: "Deposit", amount: 50 }, { metadata: { correlationId: "signup-1" } })
      yield* ProjectionRunner.catchUp(bonus)
      const log = yield* EventStore.read(account).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      expect(log.map((e) => e.type)).toEqual(["AccountOpened", "MoneyDeposited", "MoneyDeposited"])
      expect(log[2]!.data).toEqual({ amount: 1 })
      expect(log[2]!.metadata).toEqual({ correlationId: "signup-1", causationId: log[1]!.eventId })
      // at least once: delivered again from the start, the idempotent reaction changes nothing
      yield* Effect.flatMap(CheckpointStore.CheckpointStore, (checkpoints) => checkpoints.remove("bonus"))
      yield* ProjectionRunner.catchUp(bonus)
      expect(yield* EventStore.streamVersion(account)).toBe(3)
    }).pipe(Effect.provide(Layer.merge(MemoryEventStore.layer(), MemoryCheckpointStore.layer()))))
})

describe("batch projections", () => {
  const stores = Layer.merge(MemoryEventStore.layer(), MemoryCheckpointStore.layer())
  const deposit = (amount: number) => Either.getOrThrow(AccountEvents.encode(MoneyDeposited.make({ amount })))

  it.effect("handleBatch receives each batch's events of its types, in order, once", () =>
    Effect.gen(function*() {
      const batches: Array<ReadonlyArray<bigint>> = []
      const projection = Projection.batched({
        name: "bulk",
        eventTypes: ["MoneyDeposited"],
        handleBatch: (events) => Effect.sync(() => void batches.push(events.map((e) => e.globalPosition)))
      })
      yield* EventStore.append(StreamId.unsafeMake("account", "b"), [
        Either.getOrThrow(AccountEvents.encode(opened)),
        ...Array.from({ length: 7 }, (_, i) => deposit(i + 1))
      ], { expectedVersion: "NoStream" })
      yield* ProjectionRunner.catchUp(projection, { batchSize: 3 })
      expect(batches).toEqual([[2n, 3n], [4n, 5n, 6n], [7n, 8n]])
    }).pipe(Effect.provide(stores)))

  it.effect("a failing batch parks the projection at its first event, checkpoint before it", () =>
    Effect.gen(function*() {
      const projection = Projection.batched({
        name: "bulk-failing",
        handleBatch: (events) => events.some((e) => e.globalPosition === 5n) ? Effect.fail(new Error("bulk write refused")) : Effect.void
      })
      yield* EventStore.append(StreamId.unsafeMake("account", "c"), Array.from({ length: 6 }, (_, i) => deposit(i + 1)), { expectedVersion: "NoStream" })
      const parked = yield* Effect.flip(ProjectionRunner.catchUp(projection, { batchSize: 2, retry: Schedule.recurs(1) }))
      expect(parked._tag).toBe("ProjectionParked")
      if (parked._tag === "ProjectionParked") expect(parked.position).toBe(5n)
      expect(yield* CheckpointStore.load("bulk-failing")).toEqual(Option.some(4n))
    }).pipe(Effect.provide(stores)))
  it.effect("a batch with none of its types is not handed to handleBatch, and is checkpointed all the same", () =>
    Effect.gen(function*() {
      const batches: Array<ReadonlyArray<bigint>> = []
      const projection = Projection.batched({
        name: "bulk-sparse",
        eventTypes: ["MoneyDeposited"],
        handleBatch: (events) => Effect.sync(() => void batches.push(events.map((e) => e.globalPosition)))
      })
      const opening = () => Either.getOrThrow(AccountEvents.encode(opened))
      yield* EventStore.append(StreamId.unsafeMake("account", "s1"), [opening()], { expectedVersion: "NoStream" })
      yield* EventStore.append(StreamId.unsafeMake("account", "s2"), [opening()], { expectedVersion: "NoStream" })
      yield* EventStore.append(StreamId.unsafeMake("account", "s1"), [deposit(5)], { expectedVersion: 1 })
      expect(yield* ProjectionRunner.catchUp(projection, { batchSize: 2 })).toBe(3n)
      expect(batches).toEqual([[3n]])
      expect(yield* CheckpointStore.load("bulk-sparse")).toEqual(Option.some(3n))
    }).pipe(Effect.provide(stores)))
})

describe("inline projections (memory store)", () => {
  const eventId = (id: string) => id as Event.StoredEvent["eventId"]
  const seen = (name: string, types: ReadonlyArray<string> | undefined, log: Array<Event.StoredEvent>) =>
    Projection.make({ name, ...(types === undefined ? {} : { eventTypes: types }), handle: (event: Event.StoredEvent) => Effect.sync(() => void log.push(event)) })
  const inlineStores = <E>(...projections: ReadonlyArray<Projection.Projection<E, never>>) =>
    ProjectionRunner.inline(...projections).pipe(Layer.provideMerge(Layer.merge(MemoryEventStore.layer(), MemoryCheckpointStore.layer())))

  it.effect("given a stream at version 2, when a batch is appended, then each projection sees the events of its types exactly as the store holds them", () => {
    const all: Array<Event.StoredEvent> = []
    const deposits: Array<Event.StoredEvent> = []
    return Effect.gen(function*() {
      const streamId = StreamId.unsafeMake("account", "inline")
      yield* EventStore.append(streamId, [{ type: "Opened", data: {} }, { type: "Renamed", data: {} }], { expectedVersion: "NoStream" })
      all.length = 0
      yield* EventStore.append(streamId, [
        { type: "Deposited", data: { amount: 1 }, tags: ["t", "u", "t"], metadata: { own: "mine", correlationId: "event" } },
        { type: "Renamed", schemaVersion: 2, data: { name: "x" }, eventId: eventId("0190a6c1-0000-7000-8000-0000000000a1") },
        { type: "Deposited", data: { amount: 2 } }
      ], { expectedVersion: 2, metadata: { correlationId: "batch", tenant: "t1" } })
      const stored = yield* EventStore.read(streamId, { fromVersion: 3 }).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      expect(all).toEqual(stored)
      expect(deposits).toEqual([stored[0], stored[2]])
      expect(all.map((e) => [e.streamVersion, e.schemaVersion, e.tags, e.metadata])).toEqual([
        [3, 1, ["t", "u"], { correlationId: "event", tenant: "t1", own: "mine" }],
        [4, 2, [], { correlationId: "batch", tenant: "t1" }],
        [5, 1, [], { correlationId: "batch", tenant: "t1" }]
      ])
    }).pipe(Effect.provide(inlineStores(seen("everything", undefined, all), seen("deposits", ["Deposited"], deposits))))
  })

  it.effect("an append without batch metadata hands the events their own metadata, or none", () => {
    const all: Array<Event.StoredEvent> = []
    return Effect.gen(function*() {
      yield* EventStore.append(StreamId.unsafeMake("account", "plain"), [
        { type: "A", data: {}, metadata: { own: "mine" } },
        { type: "B", data: {} }
      ], { expectedVersion: "NoStream" })
      expect(all.map((e) => e.metadata)).toEqual([{ own: "mine" }, {}])
    }).pipe(Effect.provide(inlineStores(seen("plain", undefined, all))))
  })

  it.effect("a failing inline handler fails the append with a StoreError naming the projection, the event and the cause", () =>
    Effect.gen(function*() {
      const streamId = StreamId.unsafeMake("account", "refused")
      const error = yield* Effect.flip(EventStore.append(streamId, [
        { type: "Fine", data: {} },
        { type: "Poison", data: {}, eventId: eventId("0190a6c1-0000-7000-8000-0000000000b2") }
      ], { expectedVersion: "NoStream" }))
      expect(error).toMatchObject({
        _tag: "StoreError",
        operation: "append",
        reason: "inline projection picky failed on Poison 0190a6c1-0000-7000-8000-0000000000b2: not this one"
      })
      const other = yield* Effect.flip(EventStore.append(streamId, [{ type: "Odd", data: {} }], { expectedVersion: "Any" }))
      expect(other).toMatchObject({ _tag: "StoreError", reason: expect.stringMatching(/^inline projection picky failed on Odd [0-9a-f-]+: 42$/) })
    }).pipe(Effect.provide(inlineStores(Projection.make({
      name: "picky",
      handle: (event: Event.StoredEvent): Effect.Effect<void, unknown> =>
        event.type === "Poison" ? Effect.fail(new Error("not this one")) : event.type === "Odd" ? Effect.fail(42) : Effect.void
    })))))
})

describe("catchUpAll", () => {
  const stores = Layer.merge(MemoryEventStore.layer(), MemoryCheckpointStore.layer())

  it.effect("given reactions that append events other reactions react to, it catches up until a round handles nothing new", () =>
    Effect.gen(function*() {
      // ping → pong → ping → … five hops, each reaction appending the next event
      const hop = (from: string, to: string) =>
        Projection.make({
          name: `${from}-to-${to}`,
          eventTypes: [from],
          handle: (event: Event.StoredEvent) =>
            (event.data as { n: number }).n >= 5
              ? Effect.void
              : Effect.asVoid(EventStore.append(StreamId.unsafeMake("hops", "h"), [{ type: to, data: { n: (event.data as { n: number }).n + 1 } }], { expectedVersion: "Any" }))
        })
      yield* EventStore.append(StreamId.unsafeMake("hops", "h"), [{ type: "Ping", data: { n: 1 } }], { expectedVersion: "NoStream" })
      const head = yield* ProjectionRunner.catchUpAll([hop("Ping", "Pong"), hop("Pong", "Ping")])
      expect(head).toBe(5n)
      const types = yield* EventStore.read(StreamId.unsafeMake("hops", "h")).pipe(Stream.runCollect, Effect.map(Chunk.map((e) => e.type)), Effect.map(Chunk.toReadonlyArray))
      expect(types).toEqual(["Ping", "Pong", "Ping", "Pong", "Ping"])
    }).pipe(Effect.provide(stores)))

  it.effect("given an empty log, it returns position 0 at once", () =>
    Effect.gen(function*() {
      expect(yield* ProjectionRunner.catchUpAll([Projection.make({ name: "idle", handle: () => Effect.void })])).toBe(0n)
    }).pipe(Effect.provide(stores)))
})

describe("ProjectionRunner batches, retries and metrics", () => {
  const stores = Layer.merge(MemoryEventStore.layer(), MemoryCheckpointStore.layer())
  const tagged = (metric: Metric.Metric.Counter<number>, name: string) =>
    Effect.map(Metric.value(Metric.tagged(metric, "projection", name)), (state) => state.count)
  const recordBatches = (name: string, batches: Array<number>) =>
    Projection.batched({ name, handleBatch: (events) => Effect.sync(() => void batches.push(events.length)) })
  const appendMany = (n: number) =>
    EventStore.append(StreamId.unsafeMake("many", "m"), Array.from({ length: n }, () => ({ type: "Tick", data: {} })), { expectedVersion: "Any" })

  it.effect("given 150 events and no batch size, they come in batches of 100; a batch size below 1 means 1", () =>
    Effect.gen(function*() {
      yield* appendMany(150)
      const byDefault: Array<number> = []
      expect(yield* ProjectionRunner.catchUp(recordBatches("default-batches", byDefault))).toBe(150n)
      expect(byDefault).toEqual([100, 50])
      const ones: Array<number> = []
      yield* ProjectionRunner.catchUp(recordBatches("one-by-one", ones), { batchSize: 0 })
      expect(ones).toEqual(Array.from({ length: 150 }, () => 1))
    }).pipe(Effect.provide(stores)))

  it.effect("handled events, retries and parking are counted per projection; a parked projection says after how many attempts", () =>
    Effect.gen(function*() {
      yield* appendMany(3)
      let calls = 0
      const flaky = Projection.make({
        name: "flaky",
        handle: (event: Event.StoredEvent) => event.globalPosition === 2n && ++calls <= 2 ? Effect.fail(new Error("not yet")) : Effect.void
      })
      expect(yield* ProjectionRunner.catchUp(flaky, { retry: Schedule.recurs(5) })).toBe(3n)
      expect(yield* tagged(Metrics.projectionEvents, "flaky")).toBe(3)
      expect(yield* tagged(Metrics.projectionRetries, "flaky")).toBe(2)
      expect(yield* tagged(Metrics.projectionsParked, "flaky")).toBe(0)

      const stubborn = Projection.make({ name: "stubborn", handle: () => Effect.fail(new Error("never")) })
      const parked = yield* Effect.flip(ProjectionRunner.catchUp(stubborn, { retry: Schedule.recurs(2) }))
      expect(parked).toMatchObject({ _tag: "ProjectionParked", projection: "stubborn", position: 1n, type: "Tick", attempts: 3 })
      expect(yield* tagged(Metrics.projectionRetries, "stubborn")).toBe(3)
      expect(yield* tagged(Metrics.projectionsParked, "stubborn")).toBe(1)
      expect(yield* tagged(Metrics.projectionEvents, "stubborn")).toBe(0)
    }).pipe(Effect.provide(stores)))

  it.effect("the retry schedule sees the handler's own error: a transient one is retried, one no retry will fix parks at once", () =>
    Effect.gen(function*() {
      yield* appendMany(2)
      class Transient extends Error {}
      const onlyTransient = Schedule.recurs(3).pipe(Schedule.whileInput((error: unknown) => error instanceof Transient))
      let calls = 0
      const flaky = Projection.make({
        name: "transient",
        handle: () => ++calls === 1 ? Effect.fail(new Transient("busy")) : Effect.void
      })
      expect(yield* ProjectionRunner.catchUp(flaky, { retry: onlyTransient })).toBe(2n)
      expect(yield* tagged(Metrics.projectionRetries, "transient")).toBe(1)

      const broken = Projection.make({ name: "broken", handle: () => Effect.fail(new Error("no such table")) })
      const parked = yield* Effect.flip(ProjectionRunner.catchUp(broken, { retry: onlyTransient }))
      expect(parked).toMatchObject({ _tag: "ProjectionParked", projection: "broken", position: 1n, attempts: 1 })
    }).pipe(Effect.provide(stores)))

  it.effect("a projection without a checkpoint starts where `from` says; with one, it resumes after it", () =>
    Effect.gen(function*() {
      yield* appendMany(4)
      const seen: Array<bigint> = []
      const watcher = (name: string) => Projection.make({ name, handle: (event: Event.StoredEvent) => Effect.sync(() => void seen.push(event.globalPosition)) })
      yield* ProjectionRunner.catchUp(watcher("late"), { from: { after: 2n } })
      expect(seen).toEqual([3n, 4n])
      seen.length = 0
      yield* ProjectionRunner.catchUp(watcher("from-checkpoint"), { from: "checkpoint" })
      expect(seen).toEqual([1n, 2n, 3n, 4n])
      seen.length = 0
      yield* appendMany(1)
      yield* ProjectionRunner.catchUp(watcher("late"), { from: "start" })
      expect(seen).toEqual([5n])
    }).pipe(Effect.provide(stores)))
})
