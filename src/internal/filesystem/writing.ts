/**
 * The filesystem store's writer: an append commits at once when the lease
 * is held and nobody is committing; otherwise appends queue to one fiber that
 * commits whatever has queued under one lock, in one write and one `fsync`
 * (group commit). Each append is planned against the log's end as this
 * holder sees it and read back after the write (fencing).
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { identity } from "effect/Function"
import * as Option from "effect/Option"
import type { PendingEvent } from "../../Event.js"
import * as EventStore from "../../EventStore.js"
import type * as ExpectedVersion from "../../ExpectedVersion.js"
import type { StreamId } from "../../StreamId.js"
import { planAppendMany } from "../appendPlan.js"
import { type SerializedEvent, serializeEvent } from "../serialize.js"
import { awaitVerified, checkpointDue, writeIfDue } from "./checkpointing.js"
import { appendNow, readBytesNow, syncData, syncDataNow } from "./io.js"
import { encodeLine } from "./logFormat.js"
import { addEntry, fillIds, firstSlotAtOrAfter, type Index, matchingEntries, rollback, streamOf, streamVersionOf, versionOf } from "./logIndex.js"
import { fenced, type LogStore, logStateNow, readOnlyError, scanTail } from "./logStore.js"

/** One call: a single append, or an `appendMany` call, all of it or none. */
interface Call {
  readonly appends: ReadonlyArray<EventStore.PendingAppend>
  readonly condition: EventStore.SettledCondition | undefined
}

/** A call waiting for the writer fiber, and where its outcome goes. */
interface Pending extends Call {
  readonly done: Deferred.Deferred<ReadonlyArray<EventStore.AppendResult>, EventStore.AppendError>
}

type Outcome = Either.Either<ReadonlyArray<EventStore.AppendResult>, EventStore.AppendError>

/** A group planned against the index: the lines to write and what each call's outcome is if they land. */
interface Plan {
  /** The index's entry count before the group's entries. */
  readonly start: number
  readonly chunks: ReadonlyArray<string>
  /** The log's size once the group is written. */
  readonly bytes: number
  readonly outcomes: Array<Outcome>
  /** The byte span each written call is planned at, and which outcome it is. */
  readonly spans: ReadonlyArray<{ readonly outcome: number; readonly from: number; readonly to: number }>
}

/** Refusals that depend on the log's state (not on the input alone). */
const judged = new Set(["ConcurrencyConflict", "AppendConditionFailed", "DuplicateEventId", "StreamDeleted"])

const located = (index: Index) => (id: string) => {
  const at = index.ids.get(id)
  return at === undefined ? undefined : {
    streamId: streamOf(index, at),
    streamVersion: versionOf(index, at),
    globalPosition: BigInt(index.positionOf.get(at))
  }
}

/**
 * Plans a group against the index (the caller holds the lock and the
 * indexing permit), adding its entries as tentative: versions and positions
 * are taken here, after the lock.
 */
const plan = (store: LogStore, group: ReadonlyArray<Call>, now: string): Plan => {
  const index = store.index
  fillIds(index)
  const start = index.offsets.length
  const chunks: Array<string> = []
  let bytes = index.size
  const spans: Array<Plan["spans"][number]> = []
  const outcomes: Array<Outcome> = []
  for (const { appends, condition } of group) {
    const planned = planAppendMany(
      appends,
      (streamId) => streamVersionOf(index, streamId),
      (streamId) => store.deleted.has(streamId),
      located(index)
    )
    if (Either.isLeft(planned)) {
      outcomes.push(Either.left(planned.left))
      continue
    }
    if (planned.right._tag === "AlreadyStored") {
      outcomes.push(Either.right(planned.right.results))
      continue
    }
    const { versions } = planned.right
    // the whole index: events planned earlier in this group count too
    const end = index.offsets.length
    const conflicting = condition === undefined
      ? -1
      : matchingEntries(index, condition.failIfEventsMatch, firstSlotAtOrAfter(index, condition.after + 1n, end), end, 1)[0] ?? -1
    if (conflicting !== -1) {
      outcomes.push(Either.left(
        new EventStore.AppendConditionFailed({
          streamId: appends[0]!.streamId,
          query: condition!.failIfEventsMatch,
          after: condition!.after,
          position: BigInt(index.positionOf.get(conflicting))
        })
      ))
      continue
    }
    const serialized: Array<Array<SerializedEvent>> = []
    let rejected: EventStore.AppendError | undefined
    let total = 0
    for (const { events, streamId } of appends) {
      const own: Array<SerializedEvent> = []
      for (let i = 0; i < events.length && rejected === undefined; i++) {
        const result = serializeEvent(streamId, i, events[i]!, store.maxEventBytes)
        if (Either.isLeft(result)) rejected = result.left
        else own.push(result.right)
      }
      serialized.push(own)
      total += events.length
    }
    if (rejected !== undefined) {
      outcomes.push(Either.left(rejected))
      continue
    }
    // one batch for the whole call, whatever streams it spans: recovery keeps it whole or drops it whole
    const from = bytes
    let line = 0
    const results = appends.map(({ events, streamId }, j): EventStore.AppendResult => {
      const positions: Array<bigint> = []
      for (let i = 0; i < events.length; i++, line++) {
        const position = Math.max(index.head, index.positionOf.at(-1) ?? 0) + 1
        // the first line says where the call must start: anywhere else, it is void. A call spanning
        // streams says it on every line: erasing one stream may leave any of them the first one readable
        const text = encodeLine(
          events[i]!,
          serialized[j]![i]!,
          streamId,
          versions[j]! + i + 1,
          position,
          now,
          line,
          total,
          line === 0 || appends.length > 1 ? bytes : undefined
        )
        addEntry(index, streamId, events[i]!.eventId, bytes, position, events[i]!.type, events[i]!.tags)
        bytes += Buffer.byteLength(text)
        chunks.push(text)
        positions.push(BigInt(position))
      }
      return { streamId, streamVersion: versions[j]! + events.length, globalPositions: positions }
    })
    if (total > 0) spans.push({ outcome: outcomes.length, from, to: bytes })
    outcomes.push(Either.right(results))
  }
  return { start, chunks, bytes, outcomes, spans }
}

/**
 * Writes a planned group, syncs it and reads it back: an append is ours
 * only where we planned it. A holder that stalled past the stale time finds
 * another's bytes there (its own landed later, and is void). Returns the
 * log's state after the write.
 */
const write = (store: LogStore, planned: Plan) =>
  Effect.suspend(() => {
    const buffer = Buffer.from(planned.chunks.join(""))
    const base = store.index.size
    const written = appendNow(store.log, buffer)
    // synced even after a failed write: appends that landed whole are then acknowledged
    return store.durable
      ? Effect.map(Effect.either(syncData(store.log)), (synced) => settle(store, planned, buffer, base, written, synced))
      : Effect.succeed(settle(store, planned, buffer, base, written, Either.right(undefined)))
  })

/** Reads a written group back and keeps or voids each of its calls; the log's state after. */
const settle = (
  store: LogStore,
  { bytes, chunks, outcomes, spans, start }: Plan,
  buffer: Buffer,
  base: number,
  written: Either.Either<number, unknown>,
  synced: Either.Either<void, unknown>
) => {
  const index = store.index
  // written in one call, the buffer landed in one piece: where its first line is, all of it is
  const whole = Either.isRight(written) && written.right === 1
  const checked = whole ? Buffer.byteLength(chunks[0]!) : buffer.length
  const landed = readBytesNow(store.log, base, checked)
  // a log compacted by an earlier version in another process (renamed over ours) while we stalled: our bytes are in the old file
  const seen = logStateNow(store)
  const failure = Either.isLeft(written)
    ? store.fail("append", written.left)
    : Either.isLeft(synced)
    ? store.fail("append", synced.left)
    : Either.isLeft(landed)
    ? store.fail("append", landed.left)
    : undefined
  const inPlace = whole && Either.isRight(landed) && landed.right.equals(buffer.subarray(0, checked))
  let kept = failure === undefined
  for (const { from, outcome, to } of spans) {
    const intact = !seen.replaced && Either.isRight(landed) && (inPlace || (
      landed.right.length >= to - base && landed.right.subarray(from - base, to - base).equals(buffer.subarray(from - base, to - base))
    ))
    if (!intact || failure !== undefined) {
      kept = false
      outcomes[outcome] = Either.left(failure ?? fenced(store, "append"))
    }
  }
  if (kept) {
    index.size = bytes
    index.count = index.offsets.length
    index.head = Math.max(index.head, index.positionOf.at(-1) ?? 0)
  } else {
    // forget our entries: the next catch-up indexes whatever of ours landed valid, and seals a torn rest
    rollback(index, start)
    store.lease.lose()
  }
  for (const onChange of store.watchers) onChange()
  return seen
}

const failAll = (group: Iterable<Pending>, error: EventStore.StoreError) =>
  Effect.forEach(group, (pending) => Deferred.fail(pending.done, error), { discard: true })

/**
 * Plans, writes and reads back a group holding the lock; `held`: the lock
 * was kept since this process's last commit, so there is no tail to take.
 */
const commitHolding = (store: LogStore, group: ReadonlyArray<Call>, held: boolean) =>
  Effect.gen(function*() {
    const now = new Date(yield* Clock.currentTimeMillis).toISOString()
    // plan under the indexing permit; once our entries are in, readers leave the tail to us
    const planned = yield* store.indexing.withPermits(1)(
      Effect.zipRight(held ? Effect.void : scanTail(store, true), Effect.sync(() => plan(store, group, now)))
    )
    const seen = planned.chunks.length > 0 ? yield* write(store, planned) : undefined
    return judge(store, planned, seen ?? logStateNow(store))
  })

/**
 * The outcomes of a written group. Refusals were judged against our view of
 * the log: if it grew behind our back (we stalled past the stale time and
 * another holder appended), a conflict's `actual` or a condition's position
 * may be stale, or point at an entry of ours that was fenced off; they
 * become the fenced error.
 */
const judge = (store: LogStore, { bytes, outcomes }: Plan, after: { readonly replaced: boolean; readonly size: number }) => {
  if (after.replaced || after.size !== bytes) {
    for (let i = 0; i < outcomes.length; i++) {
      const outcome = outcomes[i]!
      if (Either.isLeft(outcome) && judged.has(outcome.left._tag)) outcomes[i] = Either.left(fenced(store, "append"))
    }
    store.lease.lose()
  }
  return outcomes
}

/**
 * Commits one call synchronously from plan to read-back, the `fsync` too (on
 * the event loop): nothing else runs meanwhile. The caller checked that the
 * lease is ready.
 */
const commitNow = (store: LogStore, call: Call, now: string) => {
  const planned = plan(store, [call], now)
  if (planned.chunks.length === 0) return judge(store, planned, logStateNow(store))
  const buffer = Buffer.from(planned.chunks.join(""))
  const base = store.index.size
  const written = appendNow(store.log, buffer)
  // synced even after a failed write: appends that landed whole are then acknowledged
  const synced = store.durable ? syncDataNow(store.log) : Either.right(undefined)
  return judge(store, planned, settle(store, planned, buffer, base, written, synced))
}

/**
 * Commits one call at once if the lease is ready and no reader holds the
 * indexing permit (nothing else runs during the synchronous step, so it needs
 * not be taken); `undefined` when it cannot be had, and nothing was done.
 */
const commitNowIfReady = (store: LogStore, call: Call, now: number): Array<Outcome> | undefined => {
  if (store.indexing.taken()) return undefined
  try {
    return Option.getOrUndefined(store.lease.useNow(() => commitNow(store, call, new Date(now).toISOString())))
  } catch (error) {
    abandon(store)
    return [Either.left(store.fail("append", error))]
  }
}

/**
 * After a commit that threw: the entries it planned are forgotten (the next
 * catch-up indexes whatever of them landed valid) and the lease is given up,
 * so that the next holder starts from the log.
 */
const abandon = (store: LogStore) => {
  if (store.index.offsets.length === store.index.count) return
  rollback(store.index, store.index.count)
  store.lease.lose()
}

/** Every call of a group fails with what stopped its commit. */
const failedGroup = (store: LogStore, group: ReadonlyArray<Call>) => (cause: Cause.Cause<EventStore.StoreError>) => {
  abandon(store)
  const error = Cause.isFailType(cause) ? cause.error : store.fail("append", Cause.squash(cause))
  return Effect.succeed(group.map((): Outcome => Either.left(error)))
}

/** Commits a group of calls: one lock, one write, one fsync; never fails (a call's failure is its outcome). */
const commit = (store: LogStore, group: ReadonlyArray<Call>): Effect.Effect<Array<Outcome>> =>
  Effect.gen(function*() {
    if (store.readOnly) return group.map((): Outcome => Either.left(readOnlyError(store, "append")))
    yield* awaitVerified(store)
    const outcomes = yield* store.lease.use((held) => commitHolding(store, group, held))
    yield* writeIfDue(store)
    return outcomes
  }).pipe(Effect.catchAllCause(failedGroup(store, group)))

/**
 * Commits one call at once if the lease is ready (held, its log verified
 * before it was taken), its `fsync` on the thread pool; `None` when it is
 * not, and nothing was done.
 */
const commitIfReady = (store: LogStore, call: Call): Effect.Effect<Option.Option<Array<Outcome>>> =>
  store.lease.useIfReady(commitHolding(store, [call], true)).pipe(
    Effect.tap((outcomes) => Option.isSome(outcomes) ? writeIfDue(store) : Effect.void),
    Effect.catchAllCause((cause) => Effect.map(failedGroup(store, [call])(cause), Option.some))
  )

/** What `append` returns of its call's results. */
const first = (results: ReadonlyArray<EventStore.AppendResult>) => results[0]!

/** The most calls one commit of queued appends takes. */
const maxGroup = 1000

/**
 * With `fsync` and commits on the event loop, one uncontended append in this
 * many commits through the thread pool all the same: the event loop runs
 * during its `fsync`, and appends arriving meanwhile show company.
 */
const probeEvery = 16

/** How many solitary commits through the thread pool it takes, after company was seen, to commit on the event loop again. */
const solitaryToResume = 4

/**
 * Starts the store's writer in the current scope and returns the store's
 * `append` and `appendMany`. A call finding the lease held and nobody
 * committing commits at once in its own fiber; others wait their turn and are
 * committed in groups by the writer fiber. Without `fsync` such a call
 * commits in one synchronous step; with it, too, while commits find no
 * company (`syncOnEventLoop`): one in `probeEvery` syncs on the thread pool
 * instead, the event loop running meanwhile, and once appends queue behind
 * a commit, commits go through the thread pool (grouping what arrives during
 * each `fsync`) until `solitaryToResume` of them in a row were alone. Calls
 * still waiting when the scope closes fail.
 */
export const startWriter = (store: LogStore) =>
  Effect.gen(function*() {
    const waiting: Array<Pending> = []
    let committing = false
    /** Solitary commits through the thread pool still to go before commits run on the event loop again. */
    let grouping = 0
    /** Commits on the event loop since the last through the thread pool. */
    let sinceProbe = 0
    const wake = yield* Effect.makeLatch(false)
    /** A commit of `size` calls ended: the writer fiber takes what queued meanwhile. */
    const done = (size: number) =>
      Effect.suspend(() => {
        committing = false
        if (size > 1 || waiting.length > 0) grouping = solitaryToResume
        else if (grouping > 0) grouping--
        return waiting.length > 0 ? wake.open : Effect.void
      })
    const inlineDone = done(1)
    const queued = (call: Call) =>
      Effect.flatMap(Deferred.make<ReadonlyArray<EventStore.AppendResult>, EventStore.AppendError>(), (settled) => {
        waiting.push({ ...call, done: settled })
        return Effect.zipRight(committing ? Effect.void : wake.open, Deferred.await(settled))
      })
    /** Whether an uncontended commit runs in one synchronous step, its `fsync` (if any) on the event loop. */
    const commitsNow = () => {
      if (!store.durable) return true
      if (!store.syncOnEventLoop || grouping > 0) return false
      if (++sinceProbe < probeEvery) return true
      sinceProbe = 0
      return false
    }

    yield* Effect.gen(function*() {
      while (true) {
        yield* wake.await
        yield* wake.close
        while (!committing && waiting.length > 0) {
          committing = true
          const group = waiting.splice(0, maxGroup)
          // the outcomes handed over in the same protected step: a close arriving meanwhile leaves no caller waiting
          yield* Effect.uninterruptible(Effect.ensuring(
            Effect.flatMap(commit(store, group), (outcomes) =>
              Effect.forEach(group, (pending, i) => Deferred.complete(pending.done, outcomes[i]!), { discard: true })),
            done(group.length)
          ))
        }
      }
    }).pipe(Effect.forkScoped)
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => failAll(waiting.splice(0), store.fail("append", new Error("the store was closed"))))
    )

    /** Commits `call`: at once if it can, else queued; `pick` is what its caller wants of the results. */
    const submit = <A>(call: Call, pick: (results: ReadonlyArray<EventStore.AppendResult>) => A): Effect.Effect<A, EventStore.AppendError> =>
      Effect.withFiberRuntime((fiber) => {
        if (committing || waiting.length > 0 || !store.lease.ready()) return Effect.map(queued(call), pick)
        if (commitsNow()) {
          const outcomes = commitNowIfReady(store, call, Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis())
          if (outcomes === undefined) return Effect.map(queued(call), pick)
          const outcome = Either.map(outcomes[0]!, pick)
          return checkpointDue(store) ? Effect.zipRight(writeIfDue(store), outcome) : outcome
        }
        committing = true
        return Effect.flatMap(
          Effect.uninterruptible(Effect.ensuring(commitIfReady(store, call), inlineDone)),
          Option.match({ onNone: () => Effect.map(queued(call), pick), onSome: ([outcome]) => Either.map(outcome!, pick) })
        )
      })
    const appendMany = (
      appends: ReadonlyArray<EventStore.PendingAppend>,
      condition: EventStore.SettledCondition | undefined
    ): Effect.Effect<ReadonlyArray<EventStore.AppendResult>, EventStore.AppendError> => submit({ appends, condition }, identity)
    const append = (
      streamId: StreamId,
      events: ReadonlyArray<PendingEvent>,
      expectedVersion: ExpectedVersion.ExpectedVersion,
      condition: EventStore.SettledCondition | undefined
    ) => submit({ appends: [{ streamId, events, expectedVersion }], condition }, first)
    return { append, appendMany }
  })
