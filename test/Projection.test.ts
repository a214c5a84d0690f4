import { describe, expect, it } from "@effect/vitest"
import { Chunk, Context, Effect, Either, Layer, Option, Ref, Schedule, Stream } from "effect"
import type { Event } from "chronicle"
import { CheckpointStore, CommandHandler, EventStore, MemoryCheckpointStore, MemoryEventStore, ProcessManager, Projection, ProjectionRunner, StreamId } from "chronicle"
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
})
