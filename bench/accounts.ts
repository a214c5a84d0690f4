/**
 * The bank account the benchmarks seed and load: its history (opened, then
 * one-cent deposits), seeding it into an `EventStore` in appends of a given
 * size, and loads through a handler's `load` (by default `accounts`, without
 * snapshots) checked against the seeded version.
 */
import { Effect } from "effect"
import { CommandHandler, EventCodec, EventStore, ExpectedVersion, StreamId } from "chronicle"
import { AccountEvents, AccountOpened, BankAccount, MoneyDeposited } from "../examples/BankAccount.js"
import type { AccountEvent, AccountState } from "../examples/BankAccount.js"
import { timed } from "./support.js"

export const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents })

const accountOpened = AccountOpened.make({ owner: "Ada Lovelace", currency: "EUR" })
const oneCentDeposited = MoneyDeposited.make({ amount: 1 })

/** The event at `version` of the account's history: opened first, then one-cent deposits. */
export const accountHistoryEvent = (version: number): AccountEvent => version === 0 ? accountOpened : oneCentDeposited

/** The stream of the `eventCount`-event account the memory and filesystem benches load. */
export const accountStreamId = (eventCount: number) => StreamId.unsafeMake("account", `loaded-${eventCount}`)

/** An append of the account's history: the events and the stream version it expects. */
export interface HistoryBatch {
  readonly version: number
  readonly events: ReadonlyArray<AccountEvent>
}

/** The first `eventCount` events of the account's history, in appends of `batchSize` (built one at a time). */
export function* historyBatches(eventCount: number, batchSize: number): Generator<HistoryBatch> {
  for (let version = 0; version < eventCount; version += batchSize) {
    const size = Math.min(batchSize, eventCount - version)
    yield { version, events: Array.from({ length: size }, (_, i) => accountHistoryEvent(version + i)) }
  }
}

/** Appends the account's history of `eventCount` events to `streamId`, in appends of `batchSize`. */
export const seedAccount = (streamId: StreamId.StreamId, eventCount: number, batchSize: number) =>
  Effect.gen(function*() {
    for (const { version, events } of historyBatches(eventCount, batchSize)) {
      const encoded = yield* EventCodec.encodeAll(AccountEvents, events)
      yield* EventStore.append(streamId, encoded, { expectedVersion: ExpectedVersion.exact(version) })
    }
  })

/** Something that loads the account: a handler's `load`, with or without snapshots. */
export type AccountLoader<E, R> = (
  streamId: StreamId.StreamId
) => Effect.Effect<CommandHandler.Loaded<AccountState>, E, R>

/** Loads the account once with `load`; returns the time it took, and dies unless it is at version `eventCount`. */
export const loadOnceWith = <E, R>(load: AccountLoader<E, R>, streamId: StreamId.StreamId, eventCount: number) =>
  Effect.gen(function*() {
    const { value: loaded, millis } = yield* timed(load(streamId))
    if (loaded.version !== eventCount) {
      return yield* Effect.dieMessage(`loaded version ${loaded.version}, expected ${eventCount}`)
    }
    return millis
  })

/** Loads the account `times` times with `load`, one after another; returns each load's time. */
export const loadRepeatedlyWith = <E, R>(
  load: AccountLoader<E, R>,
  streamId: StreamId.StreamId,
  eventCount: number,
  times: number
) =>
  Effect.gen(function*() {
    const millis: Array<number> = []
    for (let run = 0; run < times; run++) millis.push(yield* loadOnceWith(load, streamId, eventCount))
    return millis
  })

/** Loads the account once through `accounts` (no snapshots); returns the time it took, and dies unless it is at version `eventCount`. */
export const loadOnce = (streamId: StreamId.StreamId, eventCount: number) =>
  loadOnceWith(accounts.load, streamId, eventCount)

/** Loads the account `times` times through `accounts` (no snapshots); returns each load's time. */
export const loadRepeatedly = (streamId: StreamId.StreamId, eventCount: number, times: number) =>
  loadRepeatedlyWith(accounts.load, streamId, eventCount, times)
