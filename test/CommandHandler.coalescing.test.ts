/**
 * Concurrent commands to one stream, through one handler in one process, are
 * coalesced: decided in order against the state the previous ones left, their
 * events appended together. Run on the memory, filesystem and PostgreSQL stores.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Chunk, Deferred, Effect, Either, Fiber, Layer, Metric, Schedule, Schema, Stream } from "effect"
import { SqlClient } from "@effect/sql"
import * as fc from "fast-check"
import {
  CommandHandler,
  Decider,
  EventCodec,
  EventId,
  EventStore,
  MemoryEventStore,
  MemorySnapshotStore,
  Metrics,
  SnapshotPolicy,
  StreamId
} from "chronicle"
import type { AccountCommand } from "../examples/BankAccount.js"
import { AccountEvents, AccountState, BankAccount, InsufficientFunds, MoneyDeposited } from "../examples/BankAccount.js"
import { fileStoreLayer } from "./support/filesystem.js"
import { postgresAvailable, storeLayer } from "./support/postgres.js"

const open: AccountCommand = { _tag: "OpenAccount", owner: "ada", currency: "EUR" }
const deposit = (amount: number): AccountCommand => ({ _tag: "Deposit", amount })
const withdraw = (amount: number): AccountCommand => ({ _tag: "Withdraw", amount })
const freshAccount = () => StreamId.unsafeMake("account", EventId.unsafeGenerate())
const counter = (metric: Metric.Metric.Counter<number>) => Effect.map(Metric.value(metric), (state) => state.count)
const storedEvents = (streamId: StreamId.StreamId) => EventStore.read(streamId).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
const amounts = (streamId: StreamId.StreamId) =>
  Effect.map(storedEvents(streamId), (events) => events.map((e) => (e.data as { amount?: number }).amount ?? e.type))

/** An outside writer: a deposit of 1 that no handler of this process made. */
const depositElsewhere = (streamId: StreamId.StreamId) =>
  Effect.flatMap(AccountEvents.encode(MoneyDeposited.make({ amount: 1 })), (event) =>
    EventStore.append(streamId, [event], { expectedVersion: "Any" }))

/**
 * The bank account whose decide yields once (as one that awaits anything
 * would), and which can be told to hold its next decision until released; with
 * `race`, the first decision of a deposit of `race.amount` lets an outside
 * writer in.
 */
const controlled = (race?: { readonly amount: number; readonly streamId: StreamId.StreamId }) =>
  Effect.gen(function*() {
    const entered = yield* Deferred.make<void>()
    const release = yield* Deferred.make<void>()
    let holdNext = false
    let races = 0
    let decisions = 0
    const decider = Decider.make({
      ...BankAccount,
      decide: (command: AccountCommand, state: Decider.State<typeof BankAccount>) =>
        Effect.gen(function*() {
          decisions++
          if (holdNext) {
            holdNext = false
            yield* Deferred.succeed(entered, undefined)
            yield* Deferred.await(release)
          }
          yield* Effect.yieldNow()
          if (race !== undefined && command._tag === "Deposit" && command.amount === race.amount && races === 0) {
            races++
            yield* depositElsewhere(race.streamId)
          }
          return yield* BankAccount.decide(command, state)
        })
    })
    return {
      decider,
      decisions: () => decisions,
      /** The next decision waits for `release`; `entered` says it started. */
      hold: () => void (holdNext = true),
      entered,
      release
    }
  })

/** Waits until every fiber is suspended (its command queued behind the held one) or done. */
const allWaiting = (fibers: ReadonlyArray<Fiber.RuntimeFiber<unknown, unknown>>) =>
  Effect.gen(function*() {
    for (;;) {
      const statuses = yield* Effect.forEach(fibers, (f) => f.status)
      if (statuses.every((s) => s._tag !== "Running")) return
      yield* Effect.yieldNow()
    }
  })

/**
 * Runs `commands` as one batch: a first command (a deposit of 1) is held in
 * its decision while the others queue behind it, then released. Resolves with
 * the first command's result and each other command's outcome, in order.
 */
const asOneBatch = <E, R>(
  control: Effect.Effect.Success<ReturnType<typeof controlled>>,
  run: (command: AccountCommand, options?: CommandHandler.HandleOptions) => Effect.Effect<CommandHandler.CommandResult<unknown, any>, E, R>,
  commands: ReadonlyArray<readonly [AccountCommand, CommandHandler.HandleOptions?]>
) =>
  Effect.gen(function*() {
    control.hold()
    const first = yield* Effect.fork(run(deposit(1)))
    yield* Deferred.await(control.entered)
    const rest: Array<Fiber.RuntimeFiber<Either.Either<CommandHandler.CommandResult<unknown, any>, E>>> = []
    for (const [command, options] of commands) rest.push(yield* Effect.fork(Effect.either(run(command, options))))
    yield* allWaiting(rest)
    yield* Deferred.succeed(control.release, undefined)
    const firstResult = yield* Fiber.await(first)
    const outcomes = yield* Effect.forEach(rest, Fiber.join)
    return { first: firstResult, outcomes }
  })

const coalescingContract = (name: string, storeLayer: Layer.Layer<EventStore.EventStore, unknown>) =>
  layer(storeLayer, { timeout: "60 seconds" })(`command coalescing: ${name}`, (it) => {
    it.effect("given 16 concurrent deposits on one stream, all succeed, no conflict is retried, and the stream holds 17 events", () =>
      Effect.gen(function*() {
        const control = yield* controlled()
        const accounts = CommandHandler.make(control.decider, { codec: AccountEvents, retry: Schedule.recurs(100) })
        const streamId = freshAccount()
        yield* accounts.handle(streamId, open)
        const retriesBefore = yield* counter(Metrics.commandRetries)
        const results = yield* Effect.forEach(Array.from({ length: 16 }, (_, i) => i + 1), (amount) =>
          accounts.handle(streamId, deposit(amount)), { concurrency: "unbounded" })
        expect(yield* counter(Metrics.commandRetries)).toBe(retriesBefore)
        expect(yield* EventStore.streamVersion(streamId)).toBe(17)
        // every result is the state of the stream right after its own event
        const stored = yield* amounts(streamId)
        expect(results.map((r) => r.streamVersion).sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, i) => i + 2))
        for (const [i, result] of results.entries()) {
          expect(result.events).toEqual([MoneyDeposited.make({ amount: i + 1 })])
          expect(stored[result.streamVersion - 1]).toBe(i + 1)
          const replayed = yield* accounts.loadAt(streamId, { version: result.streamVersion })
          expect(result.state).toEqual(replayed.state)
          expect(result.globalPositions).toHaveLength(1)
        }
      }))

    it.effect("a decision failing in the middle of a batch fails alone: the commands around it are stored", () =>
      Effect.gen(function*() {
        const control = yield* controlled()
        const accounts = CommandHandler.make(control.decider, { codec: AccountEvents, retry: Schedule.recurs(5) })
        const streamId = freshAccount()
        yield* accounts.handle(streamId, open)
        const sizesBefore = yield* Metric.value(Metrics.commandBatchSize)
        const { first, outcomes } = yield* asOneBatch(control, (c, o) => accounts.handle(streamId, c, o), [
          [deposit(10)],
          [withdraw(1_000)],
          [deposit(5)]
        ])
        expect(first._tag).toBe("Success")
        expect(outcomes.map((o) => Either.isRight(o) ? o.right.streamVersion : o.left)).toEqual([
          3,
          new InsufficientFunds({ balance: 11, requested: 1_000 }),
          4
        ])
        expect(yield* amounts(streamId)).toEqual(["AccountOpened", 1, 10, 5])
        const sizes = yield* Metric.value(Metrics.commandBatchSize)
        // the held command alone, then the two that write, in one append
        expect([sizes.count - sizesBefore.count, sizes.sum - sizesBefore.sum]).toEqual([2, 3])
      }))

    it.effect("pinned expected versions in a batch are checked against the version each command's turn finds", () =>
      Effect.gen(function*() {
        const control = yield* controlled()
        const accounts = CommandHandler.make(control.decider, { codec: AccountEvents, retry: Schedule.recurs(5) })
        const streamId = freshAccount()
        yield* accounts.handle(streamId, open)
        const { outcomes } = yield* asOneBatch(control, (c, o) => accounts.handle(streamId, c, o), [
          [deposit(10)],
          [deposit(20), { expectedVersion: 2 }],
          [deposit(30), { expectedVersion: 3 }]
        ])
        expect(outcomes.map((o) => Either.isRight(o) ? o.right.streamVersion : o.left)).toEqual([
          3,
          new EventStore.ConcurrencyConflict({ streamId, expected: 2, actual: 3 }),
          4
        ])
        expect(yield* amounts(streamId)).toEqual(["AccountOpened", 1, 10, 30])
      }))

    it.effect("an outside writer mid-batch: the batch catches up and is decided again; nothing lost, nothing doubled", () =>
      Effect.gen(function*() {
        const streamId = freshAccount()
        const control = yield* controlled({ amount: 77, streamId })
        const accounts = CommandHandler.make(control.decider, { codec: AccountEvents, retry: Schedule.recurs(5) })
        yield* accounts.handle(streamId, open)
        const retriesBefore = yield* counter(Metrics.commandRetries)
        const { outcomes } = yield* asOneBatch(control, (c, o) => accounts.handle(streamId, c, o), [
          [deposit(10)],
          [deposit(77)],
          [deposit(5)],
          [deposit(6), { expectedVersion: 5 }]
        ])
        // the pinned command's turn came at version 5, but the outside write made that view stale
        expect(outcomes.map((o) => Either.isRight(o) ? o.right.streamVersion : o.left._tag)).toEqual([4, 5, 6, "ConcurrencyConflict"])
        expect(yield* amounts(streamId)).toEqual(["AccountOpened", 1, 1, 10, 77, 5])
        expect(yield* counter(Metrics.commandRetries)).toBe(retriesBefore + 3)
        const last = outcomes[2]!
        expect(Either.isRight(last) && last.right.state).toEqual({ status: "open", owner: "ada", currency: "EUR", balance: 94 })
      }))

    it.effect("streams are independent: a command on one stream is not held up by a batch on another", () =>
      Effect.gen(function*() {
        const control = yield* controlled()
        const accounts = CommandHandler.make(control.decider, { codec: AccountEvents, retry: Schedule.recurs(5) })
        const [a, b] = [freshAccount(), freshAccount()]
        yield* accounts.handle(a, open)
        yield* accounts.handle(b, open)
        control.hold()
        const held = yield* Effect.fork(accounts.handle(a, deposit(1)))
        yield* Deferred.await(control.entered)
        const onB = yield* Effect.forEach([1, 2, 3], (n) => accounts.handle(b, deposit(n)), { concurrency: "unbounded" })
        expect(onB.map((r) => r.streamVersion).sort()).toEqual([2, 3, 4])
        yield* Deferred.succeed(control.release, undefined)
        expect((yield* held.await)._tag).toBe("Success")
        expect([yield* EventStore.streamVersion(a), yield* EventStore.streamVersion(b)]).toEqual([2, 4])
      }))

    it.effect("an event the store refuses in one command fails that command only", () =>
      Effect.gen(function*() {
        const Noted = Schema.TaggedStruct("Noted", { text: Schema.String })
        const notes = Decider.make({
          initialState: 0,
          decide: (text: string) => Effect.as(Effect.yieldNow(), [Noted.make({ text })]),
          evolve: (n: number) => n + 1
        })
        const handler = CommandHandler.make(notes, { codec: EventCodec.make(Noted), retry: Schedule.recurs(5) })
        const streamId = freshAccount()
        const outcomes = yield* Effect.forEach(["a", "b", "nul \u0000 inside", "c"], (text) =>
          Effect.either(handler.handle(streamId, text)), { concurrency: "unbounded" })
        expect(outcomes.map((o) => Either.isRight(o) ? "ok" : o.left._tag)).toEqual(["ok", "ok", "InvalidEvent", "ok"])
        const texts = (yield* storedEvents(streamId)).map((e) => (e.data as { text: string }).text)
        expect([...texts].sort()).toEqual(["a", "b", "c"])
      }))
  })

coalescingContract("memory", MemoryEventStore.layer())
coalescingContract("filesystem", fileStoreLayer("coalescing"))
describe.runIf(postgresAvailable())("postgres", () => {
  coalescingContract("postgres", storeLayer("coalescing"))

  layer(storeLayer("coalescing_tx"), { timeout: "60 seconds" })("command coalescing and SQL transactions", (it) => {
    it.effect("a command inside a caller's transaction runs on its own: another caller's command survives that transaction's rollback", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const control = yield* controlled()
        const accounts = CommandHandler.make(control.decider, { codec: AccountEvents, retry: Schedule.recurs(20) })
        const streamId = freshAccount()
        yield* accounts.handle(streamId, open)
        control.hold()
        const first = yield* Effect.fork(accounts.handle(streamId, deposit(1)))
        yield* Deferred.await(control.entered)
        const rolledBack = yield* Effect.fork(Effect.either(
          sql.withTransaction(Effect.zipRight(accounts.handle(streamId, deposit(20)), Effect.fail("roll back")))
        ))
        const outside = yield* Effect.fork(accounts.handle(streamId, deposit(30)))
        yield* allWaiting([rolledBack, outside])
        yield* Deferred.succeed(control.release, undefined)
        expect((yield* Fiber.await(first))._tag).toBe("Success")
        expect(yield* Fiber.join(rolledBack)).toEqual(Either.left("roll back"))
        const result = yield* Fiber.join(outside)
        expect(yield* amounts(streamId)).toEqual(["AccountOpened", 1, 30])
        expect(result.streamVersion).toBe(3)
      }))
  })
})

describe("command coalescing, opting out and the details", () => {
  const store = MemoryEventStore.layer()

  it.effect("with coalesce: false, concurrent commands on one stream conflict and retry, as each runs on its own", () =>
    Effect.gen(function*() {
      const control = yield* controlled()
      const accounts = CommandHandler.make(control.decider, { codec: AccountEvents, retry: Schedule.recurs(100), coalesce: false })
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      const retriesBefore = yield* counter(Metrics.commandRetries)
      yield* Effect.forEach([1, 2, 3, 4], (n) => accounts.handle(streamId, deposit(n)), { concurrency: "unbounded" })
      expect(yield* counter(Metrics.commandRetries)).toBeGreaterThan(retriesBefore)
      expect(yield* EventStore.streamVersion(streamId)).toBe(5)
    }).pipe(Effect.provide(store)))

  it.effect("a batch takes snapshots at its final version: a load from the snapshot equals a full replay", () =>
    Effect.gen(function*() {
      const control = yield* controlled()
      const snapshots = { schema: AccountState, policy: SnapshotPolicy.everyEvents(4) }
      const accounts = CommandHandler.make(control.decider, { codec: AccountEvents, snapshots, retry: Schedule.recurs(5) })
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      const takenBefore = yield* counter(Metrics.snapshotsTaken)
      yield* Effect.forEach(Array.from({ length: 16 }, (_, i) => i + 1), (n) => accounts.handle(streamId, deposit(n)), {
        concurrency: "unbounded"
      })
      expect(yield* counter(Metrics.snapshotsTaken)).toBeGreaterThan(takenBefore)
      const fromSnapshot = yield* CommandHandler.make(BankAccount, { codec: AccountEvents, snapshots }).load(streamId)
      const replayed = yield* CommandHandler.make(BankAccount, { codec: AccountEvents }).load(streamId)
      expect(fromSnapshot.snapshot._tag).toBe("Some")
      expect([fromSnapshot.state, fromSnapshot.version]).toEqual([replayed.state, 17])
      expect(replayed.state.balance).toBe(136)
    }).pipe(Effect.provide(Layer.merge(MemoryEventStore.layer(), MemorySnapshotStore.layer()))))

  it.effect("a decide that throws fails its own command with the defect; an evolve that throws fails its batch; the stream takes commands after both", () =>
    Effect.gen(function*() {
      const control = yield* controlled()
      const fragile = Decider.make({
        ...control.decider,
        decide: (command: AccountCommand, state: Decider.State<typeof BankAccount>) => {
          if (command._tag === "Deposit" && command.amount === 13) throw new Error("unlucky")
          return control.decider.decide(command, state)
        },
        evolve: (state: Decider.State<typeof BankAccount>, event: Decider.Event<typeof BankAccount>) => {
          if (event._tag === "MoneyDeposited" && event.amount === 66) throw new Error("cursed")
          return BankAccount.evolve(state, event)
        }
      })
      const accounts = CommandHandler.make(fragile, { codec: AccountEvents, retry: Schedule.recurs(5) })
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      const run = (command: AccountCommand) => Effect.exit(accounts.handle(streamId, command))
      const batch = yield* Effect.forEach([deposit(2), deposit(13), deposit(3)], run, { concurrency: "unbounded" })
      expect(batch.map((e) => e._tag)).toEqual(["Success", "Failure", "Success"])
      const cursed = yield* Effect.forEach([deposit(7), deposit(66), deposit(8)], run, { concurrency: "unbounded" })
      expect(cursed.map((e) => e._tag)).toEqual(["Success", "Failure", "Failure"])
      const after = yield* accounts.handle(streamId, deposit(4))
      expect(after.state.balance).toBe((yield* accounts.load(streamId)).state.balance)
      expect((yield* amounts(streamId)).filter((a) => a === 13 || a === 66)).toEqual([])
    }).pipe(Effect.provide(store)))

  it.effect("interrupting the command that runs hands the queued ones on; interrupting a queued one drops it", () =>
    Effect.gen(function*() {
      const control = yield* controlled()
      const accounts = CommandHandler.make(control.decider, { codec: AccountEvents, retry: Schedule.recurs(5) })
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      control.hold()
      const running = yield* Effect.fork(accounts.handle(streamId, deposit(1)))
      yield* Deferred.await(control.entered)
      const queued = yield* Effect.forEach([deposit(10), deposit(20), deposit(30)], (c) => Effect.fork(accounts.handle(streamId, c)))
      yield* allWaiting(queued)
      yield* Fiber.interrupt(queued[1]!)
      yield* Fiber.interrupt(running)
      const results = yield* Effect.forEach([queued[0]!, queued[2]!], Fiber.join)
      expect(results.map((r) => r.streamVersion)).toEqual([2, 3])
      expect(yield* amounts(streamId)).toEqual(["AccountOpened", 10, 30])
    }).pipe(Effect.provide(store)))

  it.effect("metadata stays with its own command's events in a batch", () =>
    Effect.gen(function*() {
      const control = yield* controlled()
      const accounts = CommandHandler.make(control.decider, { codec: AccountEvents, retry: Schedule.recurs(5) })
      const streamId = freshAccount()
      yield* accounts.handle(streamId, open)
      yield* asOneBatch(control, (c, o) => accounts.handle(streamId, c, o), [
        [deposit(10), { metadata: { correlationId: "c-10", causationId: "cmd-10" } }],
        [deposit(20), { metadata: { correlationId: "c-20" } }]
      ])
      const events = yield* storedEvents(streamId)
      expect(events.map((e) => [(e.data as { amount?: number }).amount, e.metadata])).toEqual([
        [undefined, {}],
        [1, {}],
        [10, { correlationId: "c-10", causationId: "cmd-10" }],
        [20, { correlationId: "c-20" }]
      ])
      expect(new Set(events.map((e) => e.eventId)).size).toBe(4)
    }).pipe(Effect.provide(store)))

  it.effect("when retries run out, every command of the batch fails with ConflictRetriesExhausted and none of its events is stored", () =>
    Effect.gen(function*() {
      // every decision of a deposit of 2 lets an outside writer in: no attempt can win
      const streamId = freshAccount()
      const racing = Decider.make({
        ...BankAccount,
        decide: (command: AccountCommand, state: Decider.State<typeof BankAccount>) =>
          Effect.zipRight(
            command._tag === "Deposit" && command.amount === 2 ? depositElsewhere(streamId) : Effect.void,
            BankAccount.decide(command, state)
          )
      })
      const stingy = CommandHandler.make(racing, { codec: AccountEvents, retry: Schedule.recurs(1) })
      yield* stingy.handle(streamId, open)
      const outcomes = yield* Effect.forEach([deposit(2), deposit(2)], (c) => Effect.either(stingy.handle(streamId, c)), {
        concurrency: "unbounded"
      })
      expect(outcomes.map((o) => Either.isRight(o) ? "ok" : o.left._tag)).toEqual(["ConflictRetriesExhausted", "ConflictRetriesExhausted"])
      expect((yield* amounts(streamId)).filter((a) => a === 2)).toEqual([])
    }).pipe(Effect.provide(store)))
})

describe("command coalescing, property", () => {
  type Step =
    | { readonly _tag: "command"; readonly amount: number; readonly withdraw: boolean; readonly pin: boolean }
    | { readonly _tag: "elsewhere" }

  it.effect("under any interleaving of concurrent commands and outside writes, each success is stored once, at the version it reports, and nothing else is", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.oneof(
              fc.record({ _tag: fc.constant("command" as const), amount: fc.integer({ min: 1, max: 9 }), withdraw: fc.boolean(), pin: fc.boolean() }),
              fc.constant({ _tag: "elsewhere" as const })
            ),
            { minLength: 1, maxLength: 30 }
          ),
          async (steps: ReadonlyArray<Step>) => {
            const program = Effect.gen(function*() {
              const control = yield* controlled()
              const accounts = CommandHandler.make(control.decider, { codec: AccountEvents, retry: Schedule.recurs(50) })
              const streamId = freshAccount()
              yield* accounts.handle(streamId, open)
              const outcomes = yield* Effect.forEach(steps, (step, i) =>
                step._tag === "elsewhere"
                  ? Effect.as(depositElsewhere(streamId), undefined)
                  : Effect.either(accounts.handle(streamId, step.withdraw ? withdraw(step.amount) : deposit(step.amount), {
                    metadata: { causationId: `cmd-${i}` },
                    ...(step.pin ? { expectedVersion: 1 + (i % 4) } : {})
                  })), { concurrency: "unbounded" })
              const stored = yield* storedEvents(streamId)
              const outside = steps.filter((s) => s._tag === "elsewhere").length
              const successes = outcomes.flatMap((o, i) => o !== undefined && Either.isRight(o) ? [[i, o.right] as const] : [])
              expect(stored.length).toBe(1 + outside + successes.reduce((n, [, r]) => n + r.events.length, 0))
              for (const [i, result] of successes) {
                const own = stored.filter((e) => e.metadata?.["causationId"] === `cmd-${i}`)
                expect(own.map((e) => e.streamVersion)).toEqual(result.events.map((_, k) => result.streamVersion - result.events.length + 1 + k))
                const replayed = yield* accounts.loadAt(streamId, { version: result.streamVersion })
                expect(result.state).toEqual(replayed.state)
              }
              for (const [i, outcome] of outcomes.entries()) {
                if (outcome === undefined || Either.isRight(outcome)) continue
                expect(["InsufficientFunds", "ConcurrencyConflict", "ConflictRetriesExhausted"]).toContain(outcome.left._tag)
                expect(stored.some((e) => e.metadata?.["causationId"] === `cmd-${i}`)).toBe(false)
              }
            })
            await Effect.runPromise(program.pipe(Effect.provide(MemoryEventStore.layer())))
          }
        ),
        { numRuns: 80 }
      )
    ))
})
