import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Layer, Metric, Option, Schedule, Stream, TestClock } from "effect"
import { CommandHandler, Decider, DecisionHandler, EventCodec, EventId, EventStore, MemoryEventStore, Metrics, StreamId } from "chronicle"
import type { AccountCommand, AccountEvent } from "../examples/BankAccount.js"
import { AccountEvents, BankAccount, InsufficientFunds, MoneyDeposited } from "../examples/BankAccount.js"

const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents, retry: Schedule.recurs(5) })
const open: AccountCommand = { _tag: "OpenAccount", owner: "ada", currency: "EUR" }
const deposit = (amount: number): AccountCommand => ({ _tag: "Deposit", amount })
const withdraw = (amount: number): AccountCommand => ({ _tag: "Withdraw", amount })

const store = MemoryEventStore.layer()
const freshAccount = () => StreamId.unsafeMake("account", EventId.unsafeGenerate())
const storedTypes = (streamId: StreamId.StreamId) =>
  EventStore.read(streamId).pipe(Stream.map((e) => e.type), Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
const counter = (metric: Metric.Metric.Counter<number>) => Effect.map(Metric.value(metric), (state) => state.count)

/** A deposit whose first decision is overtaken by another writer (a teller elsewhere). */
const racedDeposit = (streamId: StreamId.StreamId, races: number) => {
  let decisions = 0
  const decider = Decider.make({
    ...BankAccount,
    decide: (command: AccountCommand, state: Decider.State<typeof BankAccount>) =>
      Effect.gen(function*() {
        decisions++
        if (decisions <= races) {
          const event = AccountEvents.encode(MoneyDeposited.make({ amount: 1 }))
          yield* EventStore.append(streamId, [yield* event], { expectedVersion: "Any" })
        }
        return yield* BankAccount.decide(command, state)
      })
  })
  return { decider, decisions: () => decisions }
}

describe("CommandHandler", () => {
  it.effect("given a new stream, handling a command appends its events and returns the new state", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      const opened = yield* accounts.handle(streamId, open)
      expect(opened.events).toEqual([{ _tag: "AccountOpened", owner: "ada", currency: "EUR" }])
      expect(opened.streamVersion).toBe(1)
      const deposited = yield* accounts.handle(streamId, deposit(500))
      expect(deposited.state).toEqual({ status: "open", owner: "ada", currency: "EUR", balance: 500 })
      expect(deposited.streamVersion).toBe(2)
      expect(deposited.globalPositions).toHaveLength(1)
      expect(yield* accounts.load(streamId)).toEqual({ state: deposited.state, version: 2, snapshot: Option.none() })
    }).pipe(Effect.provide(store)))

  it.effect("a domain error is returned as is, never retried, and nothing is written", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      const retriesBefore = yield* counter(Metrics.commandRetries)
      const error = yield* Effect.flip(accounts.handle(streamId, withdraw(1)))
      expect(error).toEqual(new InsufficientFunds({ balance: 0, requested: 1 }))
      expect(yield* counter(Metrics.commandRetries)).toBe(retriesBefore)
      expect(yield* storedTypes(streamId)).toEqual(["AccountOpened"])
    }).pipe(Effect.provide(store)))

  it.effect("on a conflict it re-reads and re-decides against the state the other writer left", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      const raced = racedDeposit(streamId, 1)
      const retriesBefore = yield* counter(Metrics.commandRetries)
      const result = yield* CommandHandler.handle(raced.decider, streamId, deposit(100), {
        codec: AccountEvents,
        retry: Schedule.recurs(3)
      })
      expect(raced.decisions()).toBe(2)
      expect(result.state.balance).toBe(101)
      expect(result.streamVersion).toBe(3)
      expect(yield* storedTypes(streamId)).toEqual(["AccountOpened", "MoneyDeposited", "MoneyDeposited"])
      expect(yield* counter(Metrics.commandRetries)).toBe(retriesBefore + 1)
    }).pipe(Effect.provide(store)))

  it.effect("when retries run out it fails with ConflictRetriesExhausted carrying the last conflict", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      const raced = racedDeposit(streamId, Number.POSITIVE_INFINITY)
      const error = yield* Effect.flip(
        CommandHandler.handle(raced.decider, streamId, deposit(100), { codec: AccountEvents, retry: Schedule.recurs(2) })
      )
      expect(error._tag).toBe("ConflictRetriesExhausted")
      if (error._tag !== "ConflictRetriesExhausted") return
      expect(error.attempts).toBe(3)
      expect(error.lastConflict).toEqual(new EventStore.ConcurrencyConflict({ streamId, expected: 3, actual: 4 }))
      expect(error.message).toContain("after 3 attempts")
    }).pipe(Effect.provide(store)))

  it.effect("the default (jittered) schedule waits between attempts, gives up after 5 retries, and runs on the TestClock", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      const raced = racedDeposit(streamId, Number.POSITIVE_INFINITY)
      const fiber = yield* Effect.fork(
        CommandHandler.handle(raced.decider, streamId, deposit(1), { codec: AccountEvents })
      )
      yield* TestClock.adjust("5 millis")
      expect(raced.decisions()).toBe(1)
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      for (let step = 0; step < 100 && Option.isNone(yield* Fiber.poll(fiber)); step++) {
        yield* TestClock.adjust("50 millis")
      }
      const exit = yield* Fiber.await(fiber)
      expect(raced.decisions()).toBe(6)
      expect(exit).toEqual(Exit.fail(expect.objectContaining({ _tag: "ConflictRetriesExhausted", attempts: 6 })))
    }).pipe(Effect.provide(store)))

  it.effect("a pinned expected version that no longer matches fails at once, without deciding", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      yield* accounts.handle(streamId, deposit(5))
      const raced = racedDeposit(streamId, 0)
      const error = yield* Effect.flip(
        CommandHandler.handle(raced.decider, streamId, deposit(1), { codec: AccountEvents, expectedVersion: 1 })
      )
      expect(error).toEqual(new EventStore.ConcurrencyConflict({ streamId, expected: 1, actual: 2 }))
      expect(raced.decisions()).toBe(0)
      const ok = yield* accounts.handle(streamId, deposit(1), { expectedVersion: 2 })
      expect(ok.streamVersion).toBe(3)
    }).pipe(Effect.provide(store)))

  it.effect("a pinned version overtaken between load and append is not retried either", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      const raced = racedDeposit(streamId, 1)
      const error = yield* Effect.flip(
        CommandHandler.handle(raced.decider, streamId, deposit(1), { codec: AccountEvents, expectedVersion: 1 })
      )
      expect(error).toEqual(new EventStore.ConcurrencyConflict({ streamId, expected: 1, actual: 2 }))
      expect(raced.decisions()).toBe(1)
    }).pipe(Effect.provide(store)))

  it.effect("metadata given to handle lands on every event the command produces", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open, { metadata: { correlationId: "req-1", causationId: "cmd-1", user: "u" } })
      const [event] = yield* EventStore.read(streamId).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      expect(event!.metadata).toEqual({ correlationId: "req-1", causationId: "cmd-1", user: "u" })
    }).pipe(Effect.provide(store)))

  it.effect("a command that decides no events writes nothing and reports the unchanged state", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      const quiet = Decider.make({
        initialState: 0,
        decide: (_: "noop") => Effect.succeed([] as ReadonlyArray<typeof MoneyDeposited.Type>),
        evolve: (n: number, e: typeof MoneyDeposited.Type) => n + e.amount
      })
      const appends = Metric.tagged(Metrics.appends, "store", "memory")
      const appendsBefore = yield* counter(appends)
      const result = yield* CommandHandler.handle(quiet, streamId, "noop", { codec: EventCodec.make(MoneyDeposited) })
      expect(result).toEqual({ streamId, events: [], state: 0, streamVersion: 0, globalPositions: [] })
      expect(yield* EventStore.streamVersion(streamId)).toBe(0)
      // not even an empty batch goes to the store
      expect(yield* counter(appends)).toBe(appendsBefore)
    }).pipe(Effect.provide(store)))

  it.effect("an event the decider produces that breaks its schema fails with EventEncodeError; nothing is written", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      const sloppy = Decider.make({
        ...BankAccount,
        decide: () => Effect.succeed<ReadonlyArray<AccountEvent>>([{ _tag: "MoneyDeposited", amount: -5 }])
      })
      const error = yield* Effect.flip(CommandHandler.handle(sloppy, streamId, deposit(1), { codec: AccountEvents }))
      expect(error._tag).toBe("EventEncodeError")
      expect(error.message).toContain("MoneyDeposited")
      expect(yield* EventStore.streamVersion(streamId)).toBe(1)
    }).pipe(Effect.provide(store)))

  it.effect("loading as of a time fails on a stored event the codec does not know, as a load does", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      yield* EventStore.append(streamId, [{ type: "MoneyLaundered", data: {} }], { expectedVersion: 1 })
      const error = yield* Effect.flip(accounts.loadAt(streamId, { time: new Date(Date.now() + 60_000) }))
      expect(error).toMatchObject({ _tag: "UnknownEventType", streamId, streamVersion: 2, type: "MoneyLaundered" })
    }).pipe(Effect.provide(store)))

  it.effect("a stored event the codec does not know fails the load with a typed error naming stream and version", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      yield* EventStore.append(streamId, [{ type: "MoneyLaundered", data: {} }], { expectedVersion: 1 })
      const error = yield* Effect.flip(accounts.handle(streamId, deposit(1)))
      expect(error).toMatchObject({ _tag: "UnknownEventType", streamId, streamVersion: 2, type: "MoneyLaundered" })
      expect(error.message).toContain(`${streamId}@2`)
    }).pipe(Effect.provide(store)))

  it.effect("loading folds a stream longer than one read chunk", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      const deposits = Array.from({ length: 2_500 }, () => AccountEvents.encode(MoneyDeposited.make({ amount: 2 })))
      yield* EventStore.append(streamId, yield* Effect.all(deposits), { expectedVersion: 1 })
      const loaded = yield* accounts.load(streamId)
      expect(loaded.version).toBe(2_501)
      expect(loaded.state.balance).toBe(5_000)
    }).pipe(Effect.provide(store)))

  it.effect("given a stream of 2,501 events, loading reads it in pages of 1,000 versions and stops at the short page", () => {
    const pages: Array<EventStore.Page & { readonly got: number }> = []
    const paging = Layer.effect(
      EventStore.EventStore,
      Effect.map(EventStore.EventStore, (inner) => ({
        ...inner,
        readPage: (streamId: StreamId.StreamId, page: EventStore.Page) =>
          Effect.tap(inner.readPage(streamId, page), (events) => Effect.sync(() => void pages.push({ ...page, got: events.length })))
      }))
    ).pipe(Layer.provide(MemoryEventStore.layer()))
    return Effect.gen(function*() {
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      const deposits = Array.from({ length: 2_500 }, () => AccountEvents.encode(MoneyDeposited.make({ amount: 2 })))
      yield* EventStore.append(streamId, yield* Effect.all(deposits), { expectedVersion: 1 })
      const loadedBefore = yield* counter(Metrics.eventsLoaded)
      pages.length = 0
      expect((yield* accounts.load(streamId)).version).toBe(2_501)
      expect(pages.map(({ fromVersion, got, limit, toVersion }) => [fromVersion, toVersion, limit, got])).toEqual([
        [1, 1_000, 1_000, 1_000],
        [1_001, 2_000, 1_000, 1_000],
        [2_001, 3_000, 1_000, 501]
      ])
      expect(yield* counter(Metrics.eventsLoaded)).toBe(loadedBefore + 2_501)
      pages.length = 0
      const atVersion = yield* accounts.loadAt(streamId, { version: 1_500 })
      expect([atVersion.version, atVersion.state.balance]).toEqual([1_500, 2_998])
      expect(pages.map(({ fromVersion, limit, toVersion }) => [fromVersion, toVersion, limit])).toEqual([[1, 1_000, 1_000], [1_001, 1_500, 500]])
    }).pipe(Effect.provide(paging))
  })

  it.effect("given a stream of 2,501 events, the next page is on its way while a page is folded, and a page failing to decode leaves no read running", () => {
    const trail: Array<string> = []
    let reading = 0
    const paging = Layer.effect(
      EventStore.EventStore,
      Effect.map(EventStore.EventStore, (inner) => ({
        ...inner,
        readPage: (streamId: StreamId.StreamId, page: EventStore.Page) =>
          Effect.sync(() => {
            reading++
            trail.push(`read ${page.fromVersion}`)
          }).pipe(
            Effect.zipRight(inner.readPage(streamId, page)),
            Effect.zipLeft(Effect.yieldNow()),
            Effect.ensuring(Effect.sync(() => void reading--))
          )
      }))
    ).pipe(Layer.provide(MemoryEventStore.layer()))
    const tracing = CommandHandler.make({
      ...BankAccount,
      evolve: (state: Decider.State<typeof BankAccount>, event: AccountEvent) => {
        trail.push("fold")
        return BankAccount.evolve(state, event)
      }
    }, { codec: AccountEvents })
    return Effect.gen(function*() {
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      const deposits = Array.from({ length: 2_500 }, () => AccountEvents.encode(MoneyDeposited.make({ amount: 2 })))
      yield* EventStore.append(streamId, yield* Effect.all(deposits), { expectedVersion: 1 })
      trail.length = 0
      expect((yield* tracing.load(streamId)).version).toBe(2_501)
      const firstFold = trail.indexOf("fold")
      expect(trail.slice(0, firstFold + 1)).toEqual(["read 1", "read 1001", "fold"])
      expect(trail.indexOf("read 2001")).toBeLessThan(trail.lastIndexOf("fold") - 500)

      const broken = freshAccount()
      yield* accounts.handle(broken, open)
      const more = Array.from({ length: 1_500 }, () => AccountEvents.encode(MoneyDeposited.make({ amount: 2 })))
      yield* EventStore.append(broken, [{ type: "MoneyDeposited", data: { amount: "two" } }, ...(yield* Effect.all(more))], {
        expectedVersion: 1
      })
      const failed = yield* Effect.exit(tracing.load(broken))
      expect(Exit.isFailure(failed) && Exit.causeOption(failed).pipe(Option.map((cause) => String(cause)), Option.getOrElse(() => ""))).toMatch(/EventDecodeError|Cannot decode/)
      expect(reading).toBe(0)
    }).pipe(Effect.provide(paging))
  })

  it.effect("each load records its duration, no longer than the load took", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      const before = yield* Metric.value(Metrics.aggregateLoadMillis)
      const started = performance.now()
      yield* accounts.load(streamId)
      const took = performance.now() - started
      const after = yield* Metric.value(Metrics.aggregateLoadMillis)
      expect(after.count).toBe(before.count + 1)
      expect(after.sum - before.sum).toBeGreaterThanOrEqual(0)
      expect(after.sum - before.sum).toBeLessThanOrEqual(took)
    }).pipe(Effect.provide(store)))

  it.effect("given a stream of 1,999 events, loading stops at the second page, short by one: no read past the end", () => {
    const pages: Array<readonly [number, number]> = []
    const paging = Layer.effect(
      EventStore.EventStore,
      Effect.map(EventStore.EventStore, (inner) => ({
        ...inner,
        readPage: (streamId: StreamId.StreamId, page: EventStore.Page) =>
          Effect.tap(inner.readPage(streamId, page), (events) => Effect.sync(() => void pages.push([page.fromVersion, events.length])))
      }))
    ).pipe(Layer.provide(MemoryEventStore.layer()))
    return Effect.gen(function*() {
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      const deposits = Array.from({ length: 1_998 }, () => AccountEvents.encode(MoneyDeposited.make({ amount: 1 })))
      yield* EventStore.append(streamId, yield* Effect.all(deposits), { expectedVersion: 1 })
      pages.length = 0
      const loaded = yield* accounts.load(streamId)
      expect([loaded.version, loaded.state.balance]).toEqual([1_999, 1_998])
      expect(pages).toEqual([[1, 1_000], [1_001, 999]])
    }).pipe(Effect.provide(paging))
  })

  it.effect("given a stream of exactly 2,000 events, loading reads one empty page past the end and no more", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      const deposits = Array.from({ length: 1_999 }, () => AccountEvents.encode(MoneyDeposited.make({ amount: 1 })))
      yield* EventStore.append(streamId, yield* Effect.all(deposits), { expectedVersion: 1 })
      const loaded = yield* accounts.load(streamId)
      expect([loaded.version, loaded.state.balance]).toEqual([2_000, 1_999])
    }).pipe(Effect.provide(store)))

  it.effect("an expected version of Any pins nothing: a conflict is retried as without one", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      const raced = racedDeposit(streamId, 1)
      const result = yield* CommandHandler.handle(raced.decider, streamId, deposit(100), {
        codec: AccountEvents,
        retry: Schedule.recurs(3),
        expectedVersion: "Any"
      })
      expect(raced.decisions()).toBe(2)
      expect(result.streamVersion).toBe(3)
    }).pipe(Effect.provide(store)))

  it.effect("giving up is counted, and the error says which stream, how many attempts and the last conflict", () =>
    Effect.gen(function*() {
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      const raced = racedDeposit(streamId, Number.POSITIVE_INFINITY)
      const exhaustedBefore = yield* counter(Metrics.commandRetriesExhausted)
      const retriesBefore = yield* counter(Metrics.commandRetries)
      const error = yield* Effect.flip(
        CommandHandler.handle(raced.decider, streamId, deposit(100), { codec: AccountEvents, retry: Schedule.recurs(1) })
      )
      expect(error.message).toBe(`Gave up on ${streamId} after 2 attempts: ${new EventStore.ConcurrencyConflict({ streamId, expected: 2, actual: 3 }).message}`)
      expect(yield* counter(Metrics.commandRetriesExhausted)).toBe(exhaustedBefore + 1)
      expect(yield* counter(Metrics.commandRetries)).toBe(retriesBefore + 1)
    }).pipe(Effect.provide(store)))
})

describe("HandlerError names only what a handler can raise", () => {
  it("the command handler's and the decision handler's error unions leave out what their own calls cannot provoke", () => {
    type NotFromCommands = Extract<
      CommandHandler.HandlerError,
      EventStore.AppendConditionFailed | EventStore.DuplicateEventId | EventStore.InvalidArgument
    >
    type NotFromDecisions = Extract<DecisionHandler.HandlerError, EventStore.ConcurrencyConflict | EventStore.DuplicateEventId>
    const commands: [NotFromCommands] extends [never] ? "narrow" : "wide" = "narrow"
    const decisions: [NotFromDecisions] extends [never] ? "narrow" : "wide" = "narrow"
    const pinned: [Extract<CommandHandler.HandlerError, EventStore.ConcurrencyConflict>] extends [never] ? "missing" : "kept" = "kept"
    expect([commands, decisions, pinned]).toEqual(["narrow", "narrow", "kept"])
  })
})
