import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Metric, Schedule, Stream } from "effect"
import { CommandHandler, EventId, EventStore, MemoryEventStore, Metrics, StreamId } from "chronicle"
import type { AccountCommand } from "../examples/BankAccount.js"
import { AccountEvents, BankAccount, MoneyDeposited, transfer } from "../examples/BankAccount.js"

const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents, retry: Schedule.recurs(5) })
const freshAccount = () => StreamId.unsafeMake("account", EventId.unsafeGenerate())
const storedTypes = (streamId: StreamId.StreamId) =>
  EventStore.read(streamId).pipe(Stream.map((e) => e.type), Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

/** Two open accounts holding `balance` each. */
const twoAccounts = (balance: number) =>
  Effect.gen(function*() {
    const ids = [freshAccount(), freshAccount()] as const
    for (const id of ids) {
      yield* accounts.handle(id, { _tag: "OpenAccount", owner: "ada", currency: "EUR" } satisfies AccountCommand)
      yield* accounts.handle(id, { _tag: "Deposit", amount: balance })
    }
    return ids
  })

/** Another writer deposits 1 on `streamId` during the first `races` decisions. */
const interfered = (streamId: StreamId.StreamId, races: number) => {
  let decisions = 0
  return {
    decisions: () => decisions,
    decide: (states: ReadonlyArray<typeof BankAccount.initialState>) =>
      Effect.gen(function*() {
        decisions++
        if (decisions <= races) {
          const event = yield* AccountEvents.encode(MoneyDeposited.make({ amount: 1 }))
          yield* EventStore.append(streamId, [event], { expectedVersion: "Any" })
        }
        return yield* Effect.all([
          BankAccount.decide({ _tag: "Withdraw", amount: 10 }, states[0]!),
          BankAccount.decide({ _tag: "Deposit", amount: 10 }, states[1]!)
        ])
      })
  }
}

describe("CommandHandler.handleMany", () => {
  it.effect("given two accounts, when money is transferred, then both change in one atomic append, with results per stream", () =>
    Effect.gen(function*() {
      const [from, to] = yield* twoAccounts(100)
      const results = yield* transfer(from, to, 30)
      expect(results.map((r) => [r.streamId, r.state.balance, r.streamVersion])).toEqual([[from, 70, 3], [to, 130, 3]])
      expect(results[1]!.globalPositions[0]).toBe(results[0]!.globalPositions[0]! + 1n)
      expect(yield* storedTypes(from)).toEqual(["AccountOpened", "MoneyDeposited", "MoneyWithdrawn"])
      expect(yield* storedTypes(to)).toEqual(["AccountOpened", "MoneyDeposited", "MoneyDeposited"])
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  it.effect("given an overdraft, when transferring, then the domain error comes back unretried and neither account changes", () =>
    Effect.gen(function*() {
      const [from, to] = yield* twoAccounts(100)
      const error = yield* Effect.flip(transfer(from, to, 500))
      expect(error).toMatchObject({ _tag: "InsufficientFunds", balance: 100, requested: 500 })
      expect(yield* EventStore.streamVersion(from)).toBe(2)
      expect(yield* EventStore.streamVersion(to)).toBe(2)
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  it.effect("given a concurrent write to the second account, when the append conflicts, then all states are reloaded and decided again", () =>
    Effect.gen(function*() {
      const [from, to] = yield* twoAccounts(100)
      const race = interfered(to, 2)
      const results = yield* CommandHandler.handleMany(BankAccount, { codec: AccountEvents, retry: Schedule.recurs(5) }, [from, to], race.decide)
      expect(race.decisions()).toBe(3)
      expect(results[1]!.state.balance).toBe(100 + 2 + 10)
      expect(results[1]!.streamVersion).toBe(2 + 2 + 1)
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  it.effect("given conflicts on every attempt, when the schedule runs out, then ConflictRetriesExhausted names the stream and the attempts", () =>
    Effect.gen(function*() {
      const [from, to] = yield* twoAccounts(100)
      const race = interfered(to, 100)
      const error = yield* Effect.flip(
        CommandHandler.handleMany(BankAccount, { codec: AccountEvents, retry: Schedule.recurs(2) }, [from, to], race.decide)
      )
      expect(error).toMatchObject({ _tag: "ConflictRetriesExhausted", streamId: to, attempts: 3 })
      expect(yield* EventStore.streamVersion(from)).toBe(2)
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  it.effect("given a transfer, when it is appended, then chronicle_append_many_total counts the call and the events count in events appended", () =>
    Effect.gen(function*() {
      const calls = Metric.tagged(Metrics.appendManyCalls, "store", "memory")
      const appended = Metric.tagged(Metrics.eventsAppended, "store", "memory")
      const [from, to] = yield* twoAccounts(100)
      const [callsBefore, eventsBefore] = [(yield* Metric.value(calls)).count, (yield* Metric.value(appended)).count]
      yield* transfer(from, to, 5)
      expect((yield* Metric.value(calls)).count).toBe(callsBefore + 1)
      expect((yield* Metric.value(appended)).count).toBe(eventsBefore + 2)
    }).pipe(Effect.provide(MemoryEventStore.layer())))
})
