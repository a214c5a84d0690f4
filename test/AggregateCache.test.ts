import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Metric, Ref, Schedule } from "effect"
import * as fc from "fast-check"
import {
  AggregateCache,
  CommandHandler,
  Decider,
  EventId,
  EventStore,
  MemoryEventStore,
  MemorySnapshotStore,
  Metrics,
  SnapshotPolicy,
  StreamId
} from "chronicle"
import type { AccountCommand } from "../examples/BankAccount.js"
import { AccountEvents, AccountState, BankAccount, MoneyDeposited } from "../examples/BankAccount.js"

const open: AccountCommand = { _tag: "OpenAccount", owner: "ada", currency: "EUR" }
const deposit = (amount: number): AccountCommand => ({ _tag: "Deposit", amount })
const freshAccount = () => StreamId.unsafeMake("account", EventId.unsafeGenerate())
const counter = (metric: Metric.Metric.Counter<number>) => Effect.map(Metric.value(metric), (state) => state.count)

/** The versions each `readPage` of the store started at, in order: what a handler read. */
const recordingReads = (inner: Layer.Layer<EventStore.EventStore>) =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const reads = yield* Ref.make<ReadonlyArray<number>>([])
    const store = Layer.effect(
      EventStore.EventStore,
      Effect.map(EventStore.EventStore, (store): EventStore.EventStoreService => ({
        ...store,
        readPage: (streamId, page) =>
          Effect.zipRight(Ref.update(reads, (all) => [...all, page.fromVersion ?? 1]), store.readPage(streamId, page))
      }))
    ).pipe(Layer.provide(inner))
    return Layer.merge(store, Layer.succeed(Reads, reads))
  }))

class Reads extends Context.Tag("test/Reads")<Reads, Ref.Ref<ReadonlyArray<number>>>() {}
const readsSoFar = Effect.flatMap(Reads, Ref.getAndSet([] as ReadonlyArray<number>))

/** An account at version `deposits + 1`: opened, then `deposits` deposits of 1. */
const seeded = (streamId: StreamId.StreamId, deposits: number) =>
  Effect.gen(function*() {
    const plain = CommandHandler.make(BankAccount, { codec: AccountEvents, cache: false })
    yield* plain.handle(streamId, open)
    for (let i = 0; i < deposits; i++) yield* plain.handle(streamId, deposit(1))
  })

/** Another writer's deposit of 1, straight into the store. */
const depositElsewhere = (streamId: StreamId.StreamId) =>
  Effect.flatMap(AccountEvents.encode(MoneyDeposited.make({ amount: 1 })), (event) =>
    EventStore.append(streamId, [event], { expectedVersion: "Any" }))

/** A deposit whose first `races` decisions are overtaken by another writer. */
const racedDeposit = (streamId: StreamId.StreamId, races: number) => {
  let decisions = 0
  return Decider.make({
    ...BankAccount,
    decide: (command: AccountCommand, state: Decider.State<typeof BankAccount>) =>
      Effect.gen(function*() {
        if (++decisions <= races) yield* depositElsewhere(streamId)
        return yield* BankAccount.decide(command, state)
      })
  })
}

const fullReplay = (streamId: StreamId.StreamId) => CommandHandler.load(BankAccount, AccountEvents, streamId)

describe("CommandHandler retries read only what they missed", () => {
  it.effect("given a long stream, a conflict re-reads only the events after the version the command had, and decides on the full state", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      yield* seeded(streamId, 49)
      yield* readsSoFar
      const result = yield* CommandHandler.handle(racedDeposit(streamId, 2), streamId, deposit(100), {
        codec: AccountEvents,
        retry: Schedule.recurs(3),
        cache: false
      })
      expect(yield* readsSoFar).toEqual([1, 51, 52])
      expect(result.streamVersion).toBe(53)
      expect(result.state.balance).toBe(49 + 2 + 100)
      expect(result.state).toEqual((yield* fullReplay(streamId)).state)
    }).pipe(Effect.provide(recordingReads(MemoryEventStore.layer()))))
})

describe("AggregateCache", () => {
  it.effect("given a cache, the next command on a stream reads only the events after the last one's, whoever wrote them", () =>
    Effect.gen(function*() {
      const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents, retry: Schedule.recurs(3) })
      const streamId = freshAccount()
      yield* seeded(streamId, 9)
      yield* readsSoFar
      const hitsBefore = yield* counter(Metrics.aggregateCacheHits)
      yield* accounts.handle(streamId, deposit(5))
      expect(yield* readsSoFar).toEqual([1])
      yield* depositElsewhere(streamId)
      const result = yield* accounts.handle(streamId, deposit(7))
      expect(yield* readsSoFar).toEqual([12])
      expect(result.state).toEqual((yield* fullReplay(streamId)).state)
      expect(result.state.balance).toBe(9 + 5 + 1 + 7)
      expect(yield* counter(Metrics.aggregateCacheHits)).toBe(hitsBefore + 1)
      expect(yield* AggregateCache.stats).toMatchObject({ hits: 1, misses: 1, entries: 1 })
    }).pipe(
      Effect.provide(Layer.merge(recordingReads(MemoryEventStore.layer()), AggregateCache.layer({ maxEntries: 10 })))
    ))

  it.effect("handlers of different deciders over one stream never share a cached state; `cache: false` ignores the cache", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents, retry: Schedule.recurs(3) })
      const doubling = Decider.make({
        ...BankAccount,
        evolve: (state: AccountState, event: Parameters<typeof BankAccount.evolve>[1]) =>
          event._tag === "MoneyDeposited"
            ? BankAccount.evolve(BankAccount.evolve(state, event), event)
            : BankAccount.evolve(state, event)
      })
      const doubled = CommandHandler.make(doubling, { codec: AccountEvents, retry: Schedule.recurs(3) })
      yield* accounts.handle(streamId, open)
      yield* accounts.handle(streamId, deposit(10))
      expect((yield* doubled.handle(streamId, deposit(1))).state.balance).toBe(22)
      expect((yield* accounts.handle(streamId, deposit(1))).state.balance).toBe(12)
      const uncached = CommandHandler.make(BankAccount, { codec: AccountEvents, cache: false })
      const before = yield* AggregateCache.stats
      yield* uncached.handle(streamId, deposit(1))
      expect(yield* AggregateCache.stats).toEqual(before)
    }).pipe(Effect.provide(Layer.merge(MemoryEventStore.layer(), AggregateCache.layer({ maxEntries: 10 })))))

  it.effect("it holds at most maxEntries aggregates, evicting the least recently used, and no state over maxBytes", () =>
    Effect.gen(function*() {
      const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents, retry: Schedule.recurs(3) })
      const [a, b, c] = [freshAccount(), freshAccount(), freshAccount()]
      yield* accounts.handle(a, open)
      yield* accounts.handle(b, open)
      yield* accounts.handle(a, deposit(1))
      yield* accounts.handle(c, open)
      expect(yield* AggregateCache.stats).toMatchObject({ entries: 2, evictions: 1 })
      yield* accounts.handle(a, deposit(1))
      expect((yield* AggregateCache.stats).hits).toBe(2)
      yield* accounts.handle(b, deposit(1))
      expect((yield* AggregateCache.stats).hits).toBe(2)
    }).pipe(Effect.provide(Layer.merge(MemoryEventStore.layer(), AggregateCache.layer({ maxEntries: 2 })))))

  it.effect("a state bigger than maxBytes is not kept", () =>
    Effect.gen(function*() {
      const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents, retry: Schedule.recurs(3) })
      yield* accounts.handle(freshAccount(), { ...open, owner: "x".repeat(200) })
      yield* accounts.handle(freshAccount(), open)
      expect(yield* AggregateCache.stats).toMatchObject({ entries: 1 })
      expect((yield* AggregateCache.stats).bytes).toBeLessThanOrEqual(300)
    }).pipe(Effect.provide(Layer.merge(MemoryEventStore.layer(), AggregateCache.layer({ maxEntries: 10, maxBytes: 300 })))))

  it.effect("bounds that are not positive integers are an InvalidArgument", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(AggregateCache.make({ maxEntries: 0 }))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = yield* Effect.flip(AggregateCache.make({ maxEntries: 1, maxBytes: 1.5 }))
      expect(error._tag).toBe("InvalidArgument")
    }))

  it.effect("a store replaced under the cache (the stream behind the cached version): the handler reloads, not loops", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      const first = yield* MemoryEventStore.make()
      const stores = yield* Ref.make(first)
      const switching: EventStore.EventStoreService = new Proxy(first, {
        get: (_, property) => (Effect.runSync(Ref.get(stores)) as any)[property]
      })
      const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents, retry: Schedule.recurs(2) })
      const program = Effect.gen(function*() {
        yield* accounts.handle(streamId, open)
        yield* accounts.handle(streamId, deposit(5))
        yield* Ref.set(stores, yield* MemoryEventStore.make())
        yield* CommandHandler.handle(BankAccount, streamId, { ...open, owner: "bob" }, { codec: AccountEvents, cache: false })
        return yield* accounts.handle(streamId, deposit(1))
      })
      const result = yield* program.pipe(Effect.provideService(EventStore.EventStore, switching))
      expect(result.streamVersion).toBe(2)
      expect(result.state).toMatchObject({ owner: "bob", balance: 1 })
    }).pipe(Effect.provide(AggregateCache.layer({ maxEntries: 10 }))))

  it.effect("snapshots are taken as often with the cache as without it", () =>
    Effect.gen(function*() {
      const snapshots = { schema: AccountState, policy: SnapshotPolicy.everyEvents(3) }
      const taken = (handler: ReturnType<typeof CommandHandler.make<AccountCommand, any, AccountState, any, never, any>>) =>
        Effect.gen(function*() {
          const before = yield* counter(Metrics.snapshotsTaken)
          const streamId = freshAccount()
          yield* handler.handle(streamId, open)
          for (let i = 0; i < 10; i++) yield* handler.handle(streamId, deposit(1))
          return (yield* counter(Metrics.snapshotsTaken)) - before
        })
      const cached = yield* taken(CommandHandler.make(BankAccount, { codec: AccountEvents, snapshots, retry: Schedule.recurs(3) }))
      const plain = yield* taken(CommandHandler.make(BankAccount, { codec: AccountEvents, snapshots, cache: false, retry: Schedule.recurs(3) }))
      expect(cached).toBe(plain)
      expect(cached).toBe(3)
    }).pipe(
      Effect.provide(Layer.mergeAll(MemoryEventStore.layer(), MemorySnapshotStore.layer(), AggregateCache.layer({ maxEntries: 10 })))
    ))

  it.effect("property: under any mix of cached commands, other writers and evictions, every result equals a full replay", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.array(fc.record({ account: fc.nat(3), step: fc.constantFrom("command", "elsewhere", "raced") }), { maxLength: 40 }),
          fc.integer({ min: 1, max: 3 }),
          async (steps, maxEntries) => {
            const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents, retry: Schedule.recurs(3) })
            const program = Effect.gen(function*() {
              const ids = [freshAccount(), freshAccount(), freshAccount(), freshAccount()]
              for (const id of ids) yield* accounts.handle(id, open)
              for (const { account, step } of steps) {
                const streamId = ids[account]!
                if (step === "elsewhere") {
                  yield* depositElsewhere(streamId)
                  continue
                }
                const result = step === "raced"
                  ? yield* CommandHandler.make(racedDeposit(streamId, 1), { codec: AccountEvents, retry: Schedule.recurs(3) })
                    .handle(streamId, deposit(2))
                  : yield* accounts.handle(streamId, deposit(3))
                const replayed = yield* fullReplay(streamId)
                expect(result.state).toEqual(replayed.state)
                expect(result.streamVersion).toBe(replayed.version)
              }
            })
            await Effect.runPromise(
              program.pipe(Effect.provide(Layer.merge(MemoryEventStore.layer(), AggregateCache.layer({ maxEntries }))))
            )
          }
        ),
        { numRuns: 60 }
      )
    ))
})
