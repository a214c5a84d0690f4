/**
 * Runs commands against event-sourced aggregates: load the stream and fold it
 * into state, decide, append with the loaded version as the expected version.
 * A concurrency conflict re-decides on a `Schedule`, after reading only the
 * events appended since the version it had (no reload); domain errors are
 * never retried. With an `AggregateCache` in context, the next command on a
 * stream starts from the state the last one left, too. Concurrent commands to
 * one stream in one process are coalesced (unless `coalesce: false`): decided
 * one after another, their events appended together.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { AggregateCache } from "./AggregateCache.js"
import type * as Decider from "./Decider.js"
import type { EventMetadata, EventPayload, NewEvent } from "./Event.js"
import * as EventCodec from "./EventCodec.js"
import * as EventStore from "./EventStore.js"
import * as ExpectedVersion from "./ExpectedVersion.js"
import type { LruAggregates } from "./internal/aggregateCache.js"
import { identityOf } from "./internal/aggregateCache.js"
import { foldPageOf } from "./internal/eventStore.js"
import * as Batching from "./internal/commandBatching.js"
import * as Snapshots from "./internal/snapshots.js"
import * as Metrics from "./Metrics.js"
import type * as SnapshotStore from "./SnapshotStore.js"
import { InvalidStreamId, StreamId } from "./StreamId.js"

/**
 * A command kept conflicting with concurrent writers until its retry schedule
 * ran out. Carries the last conflict.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConflictRetriesExhausted
  extends Schema.TaggedError<ConflictRetriesExhausted>()("ConflictRetriesExhausted", {
    streamId: StreamId,
    attempts: Schema.Number,
    lastConflict: EventStore.ConcurrencyConflict
  })
{
  override get message() {
    return `Gave up on ${this.streamId} after ${this.attempts} attempts: ${this.lastConflict.message}`
  }
}

/**
 * Every failure of a command other than the decider's own domain errors: only
 * what a handler can meet. `ConcurrencyConflict` only when the caller pinned
 * `expectedVersion` (otherwise conflicts are retried and end as
 * `ConflictRetriesExhausted`); `TransactionConflict` only inside a caller's
 * PostgreSQL transaction. The handler appends fresh event ids, no condition
 * and versions it read itself, so the store's `AppendConditionFailed`,
 * `DuplicateEventId` and `InvalidArgument` would be its own bug (a defect).
 *
 * @since 0.1.0
 * @category errors
 */
export type HandlerError =
  | EventStore.ConcurrencyConflict
  | ConflictRetriesExhausted
  | EventStore.StreamDeleted
  | InvalidStreamId
  | EventStore.InvalidEvent
  | EventStore.EventTooLarge
  | EventStore.TransactionConflict
  | EventStore.StoreError
  | EventCodec.DecodeError
  | EventCodec.EventEncodeError

/** Store failures the handler's own calls cannot provoke: defects if they happen. */
const impossible = {
  AppendConditionFailed: Effect.die,
  DuplicateEventId: Effect.die,
  InvalidArgument: Effect.die
} as const

/**
 * The default retry schedule on conflicts: exponential from 10 ms, factor 2,
 * jittered, at most 5 retries.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRetrySchedule: Schedule.Schedule<unknown, unknown> = Schedule.exponential(
  Duration.millis(10),
  2
).pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(5)))

/**
 * @since 0.1.0
 * @category options
 */
export interface HandlerOptions<E extends EventCodec.Tagged, S = unknown> {
  /** The codec of the decider's events. */
  readonly codec: EventCodec.EventCodec<E>
  /** Snapshot the state: its Schema, version and policy. Needs a SnapshotStore. */
  readonly snapshots?: SnapshotOptions<E, S> | undefined
  /** When to retry after a conflict; default `defaultRetrySchedule`. */
  readonly retry?: Schedule.Schedule<unknown, EventStore.ConcurrencyConflict> | undefined
  /** Use the `AggregateCache` in context, when there is one; default true. */
  readonly cache?: boolean | undefined
  /**
   * Coalesce concurrent commands to one stream (in this process, through this
   * handler, on one store): they are decided one after another against the
   * state the previous ones left, and their events go out in one append.
   * Default true; `false` runs every command on its own (concurrent ones then
   * conflict and retry). Never inside a caller's SQL transaction.
   */
  readonly coalesce?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category options
 */
export interface HandleOptions {
  /**
   * The version the caller saw (an HTTP `If-Match`, say). A mismatch, or a
   * concurrent write before the append, fails with `ConcurrencyConflict` and is
   * not retried: the caller's view is stale. `Any` means no pin.
   */
  readonly expectedVersion?: ExpectedVersion.ExpectedVersion | undefined
  /** Metadata for every event the command produces (correlation, causation, …). */
  readonly metadata?: EventMetadata | undefined
}

/**
 * What a handled command produced: its events, the state after them, the
 * stream's new version and the events' global positions.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommandResult<E, S> {
  readonly streamId: StreamId
  readonly events: ReadonlyArray<E>
  readonly state: S
  readonly streamVersion: number
  readonly globalPositions: ReadonlyArray<bigint>
}

/**
 * An aggregate's state as loaded from its stream, the version it is at, and
 * the snapshot it started from, if any.
 *
 * @since 0.1.0
 * @category models
 */
export interface Loaded<S> {
  readonly state: S
  readonly version: number
  readonly snapshot: Option.Option<{ readonly version: number; readonly takenAt: Date }>
}

/**
 * How a handler snapshots state: the state's Schema, its version, the policy.
 *
 * @since 0.1.0
 * @category options
 */
export type SnapshotOptions<E, S> = Snapshots.SnapshotOptions<E, S>

/**
 * A point in a stream's past: after the event at `version`, or as it stood at
 * `time` (by the events' `recordedAt`).
 *
 * @since 0.1.0
 * @category models
 */
export type PointInTime = { readonly version: number } | { readonly time: Date }

/**
 * What loading needs from the context: the EventStore, and the SnapshotStore
 * when snapshots are on.
 *
 * @since 0.1.0
 * @category models
 */
export type LoadRequirements<O> = EventStore.EventStore | (O extends { readonly snapshots: object } ? SnapshotStore.SnapshotStore : never)

/**
 * A decider bound to its codec, retry policy and snapshots.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommandHandler<C, E, S, Err, R, Needs = EventStore.EventStore> {
  readonly handle: (
    streamId: StreamId,
    command: C,
    options?: HandleOptions
  ) => Effect.Effect<CommandResult<E, S>, Err | HandlerError, R | Needs>
  /** The current state, from the latest usable snapshot and the events after it. */
  readonly load: (streamId: StreamId) => Effect.Effect<Loaded<S>, EventStore.ReadError | EventCodec.DecodeError, Needs>
  /**
   * The state as it was at a version or a time. Snapshots newer than a target
   * version are never used; a target time replays from the start.
   */
  readonly loadAt: (
    streamId: StreamId,
    at: PointInTime
  ) => Effect.Effect<Loaded<S>, EventStore.ReadError | EventCodec.DecodeError, Needs>
}

type Folder<S> = Pick<Decider.Decider<any, any, S, any, any>, "initialState" | "evolve">

/** A fold in progress: the state, the version it is at, and how many events it took in. */
interface Folding<S> {
  state: S
  version: number
  count: number
}

/** Decodes (upcasting) and folds `payloads` into `folding`, or fails on the first that does not decode. */
const foldPayloads = <E extends EventCodec.Tagged, S>(
  decider: Folder<S>,
  codec: EventCodec.EventCodec<E>,
  folding: Folding<S>,
  payloads: Iterable<EventPayload>
): EventCodec.DecodeError | undefined => {
  for (const stored of payloads) {
    const error = foldPayload(decider, codec, folding, stored)
    if (error !== undefined) return error
  }
  return undefined
}

/** Decodes (upcasting) and folds one payload into `folding`; the error when it does not decode. */
const foldPayload = <E extends EventCodec.Tagged, S>(
  decider: Folder<S>,
  codec: EventCodec.EventCodec<E>,
  folding: Folding<S>,
  stored: EventPayload
): EventCodec.DecodeError | undefined => {
  const decoded = codec.decodeEvents(stored)
  if (Either.isLeft(decoded)) return decoded.left
  for (const event of decoded.right) folding.state = decider.evolve(folding.state, event)
  folding.version = stored.streamVersion
  folding.count++
  return undefined
}

/** Folds a stream of payloads into the state `from`, chunk by chunk. */
const foldStream = <E extends EventCodec.Tagged, S>(
  decider: Folder<S>,
  codec: EventCodec.EventCodec<E>,
  events: Stream.Stream<EventPayload, EventStore.ReadError, EventStore.EventStore>,
  from: { readonly state: S; readonly version: number }
) =>
  Effect.suspend(() => {
    const folding: Folding<S> = { ...from, count: 0 }
    return Stream.runForEachChunk(events, (chunk) =>
      Effect.suspend(() => {
        const error = foldPayloads(decider, codec, folding, chunk)
        return error === undefined ? Effect.void : Effect.fail(error)
      })).pipe(Effect.as(folding))
  })

/** Events per page when loading (a page is one query on PostgreSQL). */
const loadPageSize = 1000

/**
 * Folds the versions after `from.version` (up to `toVersion`) page by page, as
 * plain Effects: no Stream to set up per load. Versions are dense, so a short
 * page is the end of the stream. While a full page is folded the next one is
 * already on its way: the store's round trip overlaps the decoding.
 */
const foldPages = <E extends EventCodec.Tagged, S>(
  decider: Folder<S>,
  codec: EventCodec.EventCodec<E>,
  streamId: StreamId,
  from: { readonly state: S; readonly version: number },
  toVersion: number
) =>
  Effect.flatMap(EventStore.EventStore, (store) => {
    const foldPage = foldPageOf(store)
    return foldPage !== undefined
      ? foldDecoding(decider, codec, foldPage, streamId, from, toVersion)
      : foldReadPages(decider, codec, store, streamId, from, toVersion)
  })

/** `foldPages` through `readPage`: while a full page is folded, the next one is already on its way. */
const foldReadPages = <E extends EventCodec.Tagged, S>(
  decider: Folder<S>,
  codec: EventCodec.EventCodec<E>,
  store: EventStore.EventStoreService,
  streamId: StreamId,
  from: { readonly state: S; readonly version: number },
  toVersion: number
) =>
  Effect.gen(function*() {
    const folding: Folding<S> = { ...from, count: 0 }
    const fetch = (after: number) => {
      const last = Math.min(toVersion, after + loadPageSize)
      return store.readPage(streamId, { fromVersion: after + 1, toVersion: last, limit: last - after })
    }
    if (folding.version >= toVersion) return folding
    let page = yield* fetch(folding.version)
    for (;;) {
      const pageEnd = Math.min(toVersion, folding.version + loadPageSize)
      const more = page.length === pageEnd - folding.version && pageEnd < toVersion
      const next = more ? yield* Effect.fork(fetch(pageEnd)) : undefined
      // let the next page's query go out before this page is folded
      if (next !== undefined) yield* Effect.yieldNow()
      const error = foldPayloads(decider, codec, folding, page)
      if (error !== undefined) {
        if (next !== undefined) yield* Fiber.interrupt(next)
        return yield* Effect.fail(error)
      }
      if (next === undefined) return folding
      page = yield* Fiber.join(next)
    }
  })

/**
 * `foldPages` on a store that folds as it decodes (`foldPage`): each event
 * is decoded and evolved as its line is read, so none outlives its step.
 */
const foldDecoding = <E extends EventCodec.Tagged, S>(
  decider: Folder<S>,
  codec: EventCodec.EventCodec<E>,
  foldPage: EventStore.FoldPage<EventStore.ReadError>,
  streamId: StreamId,
  from: { readonly state: S; readonly version: number },
  toVersion: number
) =>
  Effect.gen(function*() {
    const folding: Folding<S> = { ...from, count: 0 }
    let failed: EventCodec.DecodeError | undefined
    let threw: { readonly defect: unknown } | undefined
    const step = (stored: EventPayload) => {
      if (failed !== undefined || threw !== undefined) return false
      try {
        failed = foldPayload(decider, codec, folding, stored)
      } catch (defect) {
        // the decider's or the schema's bug, not the store's: a defect, as on every other path
        threw = { defect }
      }
      return failed === undefined && threw === undefined
    }
    while (folding.version < toVersion) {
      const before = folding.version
      const last = Math.min(toVersion, folding.version + loadPageSize)
      const wanted = last - folding.version
      const taken = yield* foldPage(streamId, { fromVersion: folding.version + 1, toVersion: last, limit: wanted }, step)
      if (threw !== undefined) return yield* Effect.die(threw.defect)
      if (failed !== undefined) return yield* Effect.fail(failed)
      if (taken < wanted || folding.version === before) break
    }
    return folding
  })

/**
 * Loads an aggregate: the latest usable snapshot (when `snapshots` is given)
 * and the events after it, folded as they arrive. With `at`, the state as it
 * was then.
 *
 * @since 0.1.0
 * @category combinators
 */
export const load = <E extends EventCodec.Tagged, S, O extends { readonly snapshots?: SnapshotOptions<E, S> | undefined } = { readonly snapshots?: undefined }>(
  decider: Folder<S>,
  codec: EventCodec.EventCodec<E>,
  streamId: StreamId,
  options: O & { readonly at?: PointInTime | undefined } = {} as O
): Effect.Effect<Loaded<S>, EventStore.ReadError | EventCodec.DecodeError, LoadRequirements<O>> => {
  const snapshots = options.snapshots
  const at = options.at
  const started = performance.now()
  const byTime = at !== undefined && "time" in at
  const toVersion = at !== undefined && "version" in at ? at.version : Number.MAX_SAFE_INTEGER
  const program = Effect.gen(function*() {
    let found = snapshots === undefined || byTime
      ? { usable: Option.none<Snapshots.Usable<S>>(), rejected: false }
      : yield* Snapshots.find(snapshots, streamId, toVersion)
    const start = Option.match(found.usable, {
      onNone: () => ({ state: decider.initialState, version: 0 }),
      onSome: (snapshot) => ({ state: snapshot.state, version: snapshot.version })
    })
    let folded = byTime
      ? yield* foldStream(
        decider,
        codec,
        EventStore.read(streamId).pipe(Stream.takeWhile((event) => event.recordedAt.getTime() <= at.time.getTime())),
        start
      )
      : yield* foldPages(decider, codec, streamId, start, toVersion)
    if (Option.isSome(found.usable) && folded.count === 0) {
      // nothing after the snapshot: is the stream really at its version? One it never reached is not its state
      const actual = yield* EventStore.streamVersion(streamId)
      if (actual < found.usable.value.version) {
        yield* Snapshots.ignored(streamId, `at version ${found.usable.value.version}, but the stream is at version ${actual}`)
        yield* Snapshots.discard(streamId)
        found = { usable: Option.none(), rejected: true }
        folded = yield* foldPages(decider, codec, streamId, { state: decider.initialState, version: 0 }, toVersion)
      }
    }
    yield* Effect.zipRight(
      // wall time, not the Effect Clock: under the TestClock, jittered schedules leave fractional
      // milliseconds that make Clock.currentTimeNanos (and so Effect.timed) die
      Metric.update(Metrics.aggregateLoadMillis, performance.now() - started),
      Metric.incrementBy(Metrics.eventsLoaded, folded.count)
    )
    // Stryker disable next-line all: tracing only (span name and attributes), no behaviour
    yield* Effect.annotateCurrentSpan({ "chronicle.event_count": folded.count, "chronicle.version": folded.version })
    if (found.rejected && snapshots !== undefined && at === undefined && folded.version > 0) {
      yield* Snapshots.save(snapshots, streamId, folded.state, folded.version)
    }
    const loaded: Loaded<S> = {
      state: folded.state,
      version: folded.version,
      snapshot: Option.map(found.usable, ({ takenAt, version }) => ({ takenAt, version }))
    }
    return loaded
  })
  return program.pipe(
    // Stryker disable next-line all: tracing only (span name and attributes), no behaviour
    Effect.withSpan("CommandHandler.load", { captureStackTrace: false, attributes: { "chronicle.stream_id": streamId } })
  ) as Effect.Effect<Loaded<S>, EventStore.ReadError | EventCodec.DecodeError, LoadRequirements<O>>
}

/**
 * A caller's SQL transaction (`@effect/sql`'s `TransactionConnection`, by its
 * key: the handler does not depend on `@effect/sql`). Commands inside one are
 * never coalesced with others, whose events would commit or roll back with it.
 */
const SqlTransaction = Context.GenericTag<unknown>("@effect/sql/SqlClient/TransactionConnection")

// Stryker disable all: tracing only (span attributes), no behaviour
/** The correlation and causation ids of a command's metadata, as span attributes. */
const messageIds = (metadata: EventMetadata | undefined): Record<string, string> => {
  const ids: Record<string, string> = {}
  if (typeof metadata?.correlationId === "string") ids["chronicle.correlation_id"] = metadata.correlationId
  if (typeof metadata?.causationId === "string") ids["chronicle.causation_id"] = metadata.causationId
  return ids
}
// Stryker restore all

/**
 * Binds a decider to its codec and retry policy.
 *
 * @example
 * const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents })
 * const result = yield* accounts.handle(streamId, { _tag: "Deposit", amount: 100 })
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <C, E extends EventCodec.Tagged, S, Err, R, O extends HandlerOptions<E, S>>(
  decider: Decider.Decider<C, E, S, Err, R>,
  options: O & HandlerOptions<E, S>
): CommandHandler<C, E, S, Err, R, LoadRequirements<O>> => {
  const { codec, snapshots } = options
  const schedule = options.retry ?? defaultRetrySchedule
  const loadStream = (streamId: StreamId) => load(decider, codec, streamId, { snapshots })

  const handlerKey = `${identityOf(decider)}:${identityOf(codec)}`
  const useCache = options.cache !== false
  const coalesce = options.coalesce !== false

  /** The events after `known`, folded into it: what a retry or a cached aggregate reads instead of the whole stream. */
  const catchUp = (streamId: StreamId, known: Loaded<S>) =>
    foldPages(decider, codec, streamId, known, Number.MAX_SAFE_INTEGER).pipe(
      Effect.tap((folded) =>
        Effect.zipRight(
          Metric.incrementBy(Metrics.eventsLoaded, folded.count),
          // Stryker disable next-line all: tracing only (span name and attributes), no behaviour
          Effect.annotateCurrentSpan({ "chronicle.event_count": folded.count, "chronicle.version": folded.version })
        )
      ),
      Effect.map((folded): Loaded<S> => ({ state: folded.state, version: folded.version, snapshot: known.snapshot })),
      // Stryker disable next-line all: tracing only (span name and attributes), no behaviour
      Effect.withSpan("CommandHandler.catchUp", { captureStackTrace: false, attributes: { "chronicle.stream_id": streamId } })
    )

  /** One command's view of its aggregate across attempts, and the cache slot it shares it through. */
  interface Session {
    known: Loaded<S> | undefined
    readonly cache: LruAggregates | undefined
    readonly key: string
  }

  const openSession = (streamId: StreamId) =>
    Effect.gen(function*() {
      const cache = useCache ? Option.getOrUndefined(yield* Effect.serviceOption(AggregateCache)) : undefined
      if (cache === undefined) {
        const session: Session = { known: undefined, cache: undefined, key: "" }
        return session
      }
      const store = yield* EventStore.EventStore
      const key = `${identityOf(store)}:${handlerKey}:${streamId}`
      const known = cache.entries.get(key) as Loaded<S> | undefined
      yield* Metric.increment(known === undefined ? Metrics.aggregateCacheMisses : Metrics.aggregateCacheHits)
      const session: Session = { known, cache: cache.entries, key }
      return session
    })

  const remember = (session: Session, loaded: Loaded<S>) => {
    session.known = loaded
    session.cache?.set(session.key, loaded)
  }

  /** A conflict saying the stream is behind what this command knew (the store was replaced): start over from it. */
  const forgetIfAhead = (session: Session, conflict: EventStore.ConcurrencyConflict) => {
    if (session.known !== undefined && conflict.actual < session.known.version) {
      session.known = undefined
      session.cache?.remove(session.key)
    }
  }

  const machinery = (streamId: StreamId, session: Session): Batching.Machinery<E, S, Loaded<S>, any, EventStore.EventStore | SnapshotStore.SnapshotStore> => ({
    streamId,
    schedule,
    load: Effect.suspend(() =>
      (session.known === undefined ? loadStream(streamId) : catchUp(streamId, session.known)).pipe(
        Effect.catchTag("InvalidArgument", Effect.die),
        Effect.tap((loaded) => remember(session, loaded))
      )
    ),
    evolve: decider.evolve,
    encode: (events, metadata) => {
      const out: Array<NewEvent> = []
      for (const event of events) {
        const encoded = codec.encode(event, { metadata })
        if (Either.isLeft(encoded)) return Either.left(encoded.left)
        out.push(encoded.right)
      }
      return Either.right(out)
    },
    append: (events, expected) =>
      EventStore.append(streamId, events, { expectedVersion: ExpectedVersion.exact(expected) }).pipe(Effect.catchTags(impossible)),
    appended: (from, state, version, events) =>
      Effect.map(
        snapshots === undefined
          ? Effect.succeed(Option.none())
          : Snapshots.afterAppend(snapshots, { streamId, version, state, events, lastSnapshot: from.snapshot }),
        (taken) => remember(session, { state, version, snapshot: Option.orElse(taken, () => from.snapshot) })
      ),
    conflicted: (conflict) => forgetIfAhead(session, conflict),
    exhausted: (attempts, lastConflict) => new ConflictRetriesExhausted({ streamId, attempts, lastConflict })
  })

  /** A batch of one stream's commands, in the context of its first command's caller. */
  const runBatch = (streamId: StreamId) => (session: Session, batch: ReadonlyArray<Batching.Pending<C, E, S, any>>) =>
    Batching.runBatch(machinery(streamId, session), batch).pipe(
      // Stryker disable next-line all: tracing only (span name and attributes), no behaviour
      Effect.withSpan("CommandHandler.batch", {
        captureStackTrace: false,
        attributes: { "chronicle.stream_id": streamId, "chronicle.commands": batch.length }
      }),
      Effect.provide(batch[0]!.context)
    )

  const lanes = Batching.makeLanes<C, E, S, any, Session>()

  const handle = (
    streamId: StreamId,
    command: C,
    handleOptions: HandleOptions = {}
  ): Effect.Effect<CommandResult<E, S>, Err | HandlerError, R | EventStore.EventStore | SnapshotStore.SnapshotStore> =>
    Effect.gen(function*() {
      const pinned = handleOptions.expectedVersion === ExpectedVersion.Any ? undefined : handleOptions.expectedVersion
      const context = yield* Effect.context<R | EventStore.EventStore>()
      const decide = (state: S) =>
        Effect.suspend(() => decider.decide(command, state)).pipe(
          // Stryker disable next-line all: tracing only (span name and attributes), no behaviour
          Effect.withSpan("CommandHandler.decide", { captureStackTrace: false, attributes: { "chronicle.stream_id": streamId } }),
          Effect.provide(context)
        )
      const p = yield* Batching.pending<C, E, S, any>(command, pinned, handleOptions.metadata, decide, context)
      if (!coalesce || Option.isSome(Context.getOption(context, SqlTransaction))) {
        yield* Effect.flatMap(openSession(streamId), (session) => runBatch(streamId)(session, [p]))
      } else {
        const store = Context.get(context, EventStore.EventStore)
        yield* lanes.submit(`${identityOf(store)}:${streamId}`, p, openSession(streamId), runBatch(streamId))
      }
      const result = yield* Deferred.await(p.answer).pipe(
        Effect.onInterrupt(() => Effect.sync(() => void (p.cancelled = true)))
      ) as Effect.Effect<CommandResult<E, S>, Err | HandlerError>
      // Stryker disable next-line all: tracing only (span name and attributes), no behaviour
      yield* Effect.annotateCurrentSpan("chronicle.attempts", p.attempts)
      return result
    }).pipe(
      // Stryker disable all: tracing only (span name and attributes), no behaviour
      Effect.withSpan("CommandHandler.handle", {
        captureStackTrace: false,
        attributes: {
          "chronicle.stream_id": streamId,
          "chronicle.command": Predicate.hasProperty(command, "_tag") ? String(command._tag) : "unknown",
          ...messageIds(handleOptions.metadata)
        }
      })
      // Stryker restore all
    )

  return {
    handle,
    load: loadStream,
    loadAt: (streamId, at) => load(decider, codec, streamId, { snapshots, at })
  } as CommandHandler<C, E, S, Err, R, LoadRequirements<O>>
}

/**
 * Handles one command in one call: `make(decider, options).handle(…)`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const handle = <C, E extends EventCodec.Tagged, S, Err, R, O extends HandlerOptions<E, S>>(
  decider: Decider.Decider<C, E, S, Err, R>,
  streamId: StreamId,
  command: C,
  options: O & HandlerOptions<E, S> & HandleOptions
): Effect.Effect<CommandResult<E, S>, Err | HandlerError, R | LoadRequirements<O>> =>
  make(decider, options).handle(streamId, command, options)

/**
 * The options of `handleMany`: the aggregates' codec, the retry schedule on
 * conflicts (as `handle`'s), metadata for every event.
 *
 * @since 0.2.0
 * @category options
 */
export interface HandleManyOptions<E extends EventCodec.Tagged> {
  readonly codec: EventCodec.EventCodec<E>
  readonly retry?: Schedule.Schedule<unknown, EventStore.ConcurrencyConflict> | undefined
  readonly metadata?: EventMetadata | undefined
}

/**
 * A decision over several aggregates at once: their states, in the order of
 * the stream ids, to the events for each (one list per stream, in the same
 * order; an empty list appends nothing but still pins that stream's version).
 *
 * @since 0.2.0
 * @category models
 */
export type DecideMany<S, E, Err, R> = (states: ReadonlyArray<S>) => Effect.Effect<ReadonlyArray<ReadonlyArray<E>>, Err, R>

/**
 * Runs a command that spans aggregates: loads every stream, decides with a
 * function of all their states, and appends the events of all of them
 * atomically (`EventStore.appendMany`), each at the version it loaded. A
 * concurrency conflict on any of them re-loads and re-decides on the retry
 * schedule, as `handle` does; domain errors are never retried. Results come
 * in the order of `streamIds`.
 *
 * @example
 * const transfer = CommandHandler.handleMany(BankAccount, { codec: AccountEvents }, [from, to], ([source, target]) =>
 *   Effect.succeed([[{ _tag: "Withdrawn", amount: 10 }], [{ _tag: "Deposited", amount: 10 }]]))
 *
 * @since 0.2.0
 * @category combinators
 */
export const handleMany = <E extends EventCodec.Tagged, S, Err, R>(
  decider: Folder<S>,
  options: HandleManyOptions<E>,
  streamIds: ReadonlyArray<StreamId>,
  decide: DecideMany<S, E, Err, R>
): Effect.Effect<ReadonlyArray<CommandResult<E, S>>, Err | HandlerError, R | EventStore.EventStore> => {
  let attempts = 0
  const attempt = Effect.gen(function*() {
    attempts++
    const loaded = yield* Effect.forEach(streamIds, (streamId) => load(decider, options.codec, streamId)).pipe(
      Effect.catchTag("InvalidArgument", Effect.die)
    )
    const decided = yield* decide(loaded.map((aggregate) => aggregate.state))
    if (decided.length !== streamIds.length) {
      return yield* Effect.die(new Error(`handleMany: the decision gave ${decided.length} event lists for ${streamIds.length} streams`))
    }
    const appends: Array<EventStore.StreamAppend> = []
    for (let i = 0; i < streamIds.length; i++) {
      const encoded: Array<NewEvent> = []
      for (const event of decided[i]!) encoded.push(yield* options.codec.encode(event, { metadata: options.metadata }))
      appends.push({ streamId: streamIds[i]!, events: encoded, expectedVersion: ExpectedVersion.exact(loaded[i]!.version) })
    }
    const results = yield* EventStore.appendMany(appends).pipe(Effect.catchTags(impossible))
    return results.map((result, i): CommandResult<E, S> => ({
      streamId: result.streamId,
      events: decided[i]!,
      state: decided[i]!.reduce(decider.evolve, loaded[i]!.state),
      streamVersion: result.streamVersion,
      globalPositions: result.globalPositions
    }))
  })
  return Effect.gen(function*() {
    attempts = 0
    const driver = yield* Schedule.driver(options.retry ?? defaultRetrySchedule)
    for (;;) {
      const outcome = yield* Effect.either(attempt)
      if (Either.isRight(outcome)) return outcome.right
      const error = outcome.left
      if (!(error instanceof EventStore.ConcurrencyConflict)) return yield* Effect.fail(error)
      const next = yield* Effect.either(driver.next(error))
      if (Either.isLeft(next)) return yield* new ConflictRetriesExhausted({ streamId: error.streamId, attempts, lastConflict: error })
    }
  }).pipe(
    // Stryker disable next-line all: tracing only (span name and attributes), no behaviour
    Effect.withSpan("CommandHandler.handleMany", { captureStackTrace: false, attributes: { "chronicle.stream_ids": streamIds } })
  ) as Effect.Effect<ReadonlyArray<CommandResult<E, S>>, Err | HandlerError, R | EventStore.EventStore>
}
