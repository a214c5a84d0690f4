/**
 * Runs projections over the global log.
 *
 * - `run` / `start`: asynchronous, in the background: catch up from the
 *   checkpoint, then follow the log live. Events come in chunks (as many as
 *   are ready, up to `batchSize`); each chunk is handled and checkpointed as
 *   one unit, inside the checkpoint store's `transaction` (on PostgreSQL one
 *   database transaction: read model and checkpoint commit together). The
 *   next chunk is read only once the last is handled: back-pressure. Stopping
 *   lets the chunk in hand finish and be checkpointed.
 * - `catchUp` / `rebuild`: up to the current end of the log, then return.
 * - `inline`: inside the append itself, so the read model is never behind.
 *
 * A failing chunk is retried on a `Schedule`; when the schedule runs out the
 * projection parks with `ProjectionParked`, naming the event: its checkpoint
 * stays before it, and nothing is ever skipped.
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import * as CheckpointStore from "./CheckpointStore.js"
import type { PartitionLost } from "./ConsumerGroup.js"
import type { StoredEvent } from "./Event.js"
import * as EventId from "./EventId.js"
import * as EventStore from "./EventStore.js"
import * as Metrics from "./Metrics.js"
import * as Projection from "./Projection.js"
import * as Subscription from "./Subscription.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface RunOptions {
  /** Most events handled (and checkpointed) as one unit; default 100. */
  readonly batchSize?: number | undefined
  /**
   * Retries of a failing batch; default exponential from 50 ms, jittered, 5
   * retries. Its input is the handler's own error (or the store's), so
   * `Schedule.whileInput` can park at once on errors no retry will fix.
   */
  readonly retry?: Schedule.Schedule<unknown, any> | undefined
  /** Where to start when the projection has no checkpoint; default the beginning. */
  readonly from?: Subscription.From | undefined
  /** How long a live projection waits for a change signal before reading anyway. */
  readonly pollInterval?: Duration.DurationInput | undefined
  /**
   * Run as member `member` (from 0) of `of` workers that split the
   * projection by stream (`StreamId.partitionOf`): this one handles the
   * events of its streams only, in global order, with a checkpoint of its
   * own (`name#member/of`). The store sends it only those events
   * (`LogFilter.partition`); its checkpoint is how far the store looked,
   * so it keeps moving (saved at most once a second while none of its own
   * come) when its partition is idle. A partitioned runner never calls
   * `reset` (the read model is shared): rebuild it unpartitioned, or with
   * `replace`.
   *
   * @since 0.2.0
   */
  readonly partition?: { readonly member: number; readonly of: number } | undefined
  /**
   * Runs inside each batch's checkpoint transaction, after the handlers and
   * just before the checkpoint moves: when it fails with `PartitionLost`
   * nothing of the batch commits and the runner stops. Consumer groups fence
   * a partition's old owner with it.
   *
   * @since 0.2.0
   */
  readonly fence?: Effect.Effect<void, PartitionLost | EventStore.StoreError> | undefined
  /**
   * Runs first inside each batch's checkpoint transaction, before the
   * handlers. Consumer groups bound with it how long a lane's transaction
   * may sit idle (`ConsumerGroupStoreService.limitIdle`).
   *
   * @since 0.2.0
   */
  readonly begin?: Effect.Effect<void, EventStore.StoreError> | undefined
}

/** What one runner works on: the checkpoint it moves, and which events of the log are its own (read by the store). */
interface Lane {
  readonly checkpoint: string
  readonly filter: EventStore.LogFilter | undefined
  readonly partitioned: boolean
  readonly fence: Effect.Effect<void, PartitionLost | EventStore.StoreError>
  readonly begin: Effect.Effect<void, EventStore.StoreError>
}

const laneOf = (projection: Projection.Projection<any, any>, options: RunOptions | undefined): Effect.Effect<Lane, EventStore.InvalidArgument> => {
  const partition = options?.partition
  const checkpoint = Projection.checkpointName(projection)
  const fence = options?.fence ?? Effect.void
  const begin = options?.begin ?? Effect.void
  if (partition === undefined) return Effect.succeed({ checkpoint, filter: undefined, partitioned: false, fence, begin })
  const { member, of } = partition
  if (!Number.isSafeInteger(of) || of < 1 || !Number.isSafeInteger(member) || member < 0 || member >= of) {
    return Effect.fail(
      new EventStore.InvalidArgument({
        operation: "ProjectionRunner",
        argument: "partition",
        reason: `must be { member, of } with integers 0 <= member < of, got ${JSON.stringify(partition)}`
      })
    )
  }
  return Effect.succeed({
    checkpoint: `${checkpoint}#${member}/${of}`,
    filter: of === 1 ? undefined : { partition: { member, of } },
    partitioned: true,
    fence,
    begin
  })
}

/**
 * How often, at most, a partitioned runner saves that it moved on over other
 * partitions' events while none of its own came: an idle member's checkpoint
 * keeps up with the log without a write per read. Timed by Effect's `Clock`.
 */
const idleSaveMillis = 1000

/**
 * The default retry schedule of a failing batch.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRetrySchedule: Schedule.Schedule<unknown, unknown> = Schedule.exponential(Duration.millis(50), 2).pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(5))
)

/**
 * Everything running a projection needs besides the projection's own services.
 *
 * @since 0.1.0
 * @category models
 */
export type Requirements = EventStore.EventStore | CheckpointStore.CheckpointStore

/**
 * Why a runner stops: its projection parked on an event, the store failed,
 * or another runner of the same projection moved its checkpoint (this one
 * stops rather than apply events twice).
 *
 * @since 0.2.0
 * @category models
 */
export type RunError = Projection.ProjectionParked | EventStore.ReadError | CheckpointStore.CheckpointMoved | PartitionLost

/** A handler failure, with the event it failed on. */
class HandlerFailed extends Data.TaggedError("HandlerFailed")<{
  readonly event: StoredEvent
  readonly cause: unknown
}> {}

const handleBatch = <E, R>(
  projection: Projection.Projection<E, R>,
  checkpoints: CheckpointStore.CheckpointStoreService,
  retry: Schedule.Schedule<unknown, any>,
  page: EventStore.LogPage,
  lane: Lane,
  saved: Option.Option<bigint>,
  resetFirst: boolean
): Effect.Effect<void, RunError, R> => {
  const batch = page.events
  const handled = Metric.tagged(Metrics.projectionEvents, "projection", projection.name)
  const retried = Metric.tagged(Metrics.projectionRetries, "projection", projection.name)
  let attempts = 0
  const attempt = Effect.gen(function*() {
    attempts++
    let count = 0
    yield* lane.begin
    if (resetFirst && projection.reset !== undefined && batch.length > 0) {
      // in the batch's transaction: a second runner that loses the checkpoint race rolls its reset back too
      yield* Effect.mapError(projection.reset, (cause) => new HandlerFailed({ event: batch[0]!, cause }))
    }
    if (projection.handleBatch !== undefined) {
      const selected = batch.filter((event) => Projection.handles(projection, event.type))
      if (selected.length > 0) {
        yield* Effect.mapError(projection.handleBatch(selected), (cause) => new HandlerFailed({ event: selected[0]!, cause }))
      }
      count = selected.length
    } else {
      for (const event of batch) {
        if (!Projection.handles(projection, event.type)) continue
        yield* Effect.mapError(projection.handle(event), (cause) => new HandlerFailed({ event, cause }))
        count++
      }
    }
    yield* lane.fence
    // how far the store looked, not the last own event: a partition with few events moves on over the others'
    yield* checkpoints.compareAndSet(lane.checkpoint, { expected: saved, next: page.through })
    return count
  })
  return checkpoints.transaction(attempt).pipe(
    // a batch in hand is finished, not torn, when the projection is stopped
    Effect.uninterruptible,
    Effect.tapError(() => Metric.increment(retried)),
    Effect.retry({
      schedule: Schedule.mapInput(
        retry,
        (error: HandlerFailed | EventStore.ReadError | CheckpointStore.CheckpointMoved | PartitionLost) =>
          error._tag === "HandlerFailed" ? error.cause : error
      ),
      // another runner moved the checkpoint, or took the partition: trying again would apply its events twice
      while: (error) => error._tag !== "CheckpointMoved" && error._tag !== "PartitionLost"
    }),
    Effect.tap((count) => Metric.incrementBy(handled, count)),
    Effect.catchTag("HandlerFailed", (failure) =>
      Effect.zipRight(
        Metric.increment(Metric.tagged(Metrics.projectionsParked, "projection", projection.name)),
        Effect.fail(
          new Projection.ProjectionParked({
            projection: projection.name,
            position: failure.event.globalPosition,
            eventId: failure.event.eventId,
            streamId: failure.event.streamId,
            type: failure.event.type,
            attempts,
            cause: failure.cause
          })
        )
      )),
    // Stryker disable next-line StringLiteral: a log message
    Effect.tapError((error) => Effect.logError(`chronicle: projection ${projection.name} stopped`, error)),
    Effect.asVoid,
    // Stryker disable all: tracing only (span name and attributes), no behaviour
    Effect.withSpan("ProjectionRunner.handleBatch", {
      captureStackTrace: false,
      attributes: {
        "chronicle.projection": projection.name,
        "chronicle.event_count": batch.length,
        "chronicle.from_position": String(batch[0]?.globalPosition ?? page.through),
        "chronicle.to_position": String(page.through)
      }
    })
    // Stryker restore all
  )
}

const settle = (options: RunOptions | undefined) => ({
  batchSize: Math.max(1, options?.batchSize ?? 100),
  retry: options?.retry ?? defaultRetrySchedule,
  from: options?.from ?? "start"
})

/**
 * Where a runner is: the position it handled up to, the checkpoint it last
 * saw (what its next save expects), and whether it is rebuilding from the
 * beginning with nothing handled yet (its first batch empties the read model).
 */
interface Progress {
  readonly after: bigint
  readonly saved: Option.Option<bigint>
  readonly fresh: boolean
}

/** Where the projection resumes: after its checkpoint, or at `from` when it has none. */
const resumePoint = (name: string, from: Subscription.From): Effect.Effect<Progress, EventStore.StoreError, Requirements> =>
  Effect.flatMap(CheckpointStore.load(name), (saved) =>
    Option.isSome(saved)
      ? Effect.succeed<Progress>({ after: saved.value, saved, fresh: false })
      : Effect.map(
        Subscription.startingPoint(name, from === "checkpoint" ? "start" : from),
        (after): Progress => ({ after, saved, fresh: from === "start" || from === "checkpoint" })
      ))

/** Where a runner reads: pages of the log after `after`, of at most `batchSize` events, kept by `filter`. */
type Source = (after: bigint, batchSize: number, filter: EventStore.LogFilter | undefined) => Stream.Stream<EventStore.LogPage, EventStore.ReadError>

/** A read of the whole log in pages: each chunk, reaching its last event. */
const wholePages = (events: Stream.Stream<StoredEvent, EventStore.ReadError>): Stream.Stream<EventStore.LogPage, EventStore.ReadError> =>
  events.pipe(
    Stream.chunks,
    Stream.filter(Chunk.isNonEmpty),
    Stream.map((chunk) => ({ events: Chunk.toReadonlyArray(chunk), through: Chunk.lastNonEmpty(chunk).globalPosition }))
  )

/**
 * The log up to its current end. A partition page by page, done at the
 * first page that is not full; the whole log in one read (its horizon found
 * once), which is cheaper than pages.
 */
const catchUpPages = (store: EventStore.EventStoreService): Source => (after, batchSize, filter) =>
  filter === undefined
    ? wholePages(store.readAll({ fromPosition: after + 1n, chunkSize: batchSize }))
    : Stream.paginateEffect(after, (after) =>
      Effect.map(store.readLogPage({ after, limit: batchSize, filter }), (page) =>
        [page, page.events.length < batchSize ? Option.none() : Option.some(page.through)] as const))

/** The log from `after` on, forever. */
const livePages = (store: EventStore.EventStoreService, options: RunOptions | undefined): Source => (after, batchSize, filter) =>
  filter === undefined
    ? wholePages(store.subscribe({ after, chunkSize: batchSize, pollInterval: options?.pollInterval }))
    : store.subscribePages({ after, chunkSize: batchSize, pollInterval: options?.pollInterval, filter })

const drain = <E, R>(
  projection: Projection.Projection<E, R>,
  source: Source,
  options: RunOptions | undefined,
  start?: Progress,
  idleSaveEvery = 0
) =>
  Effect.gen(function*() {
    const { batchSize, from, retry } = settle(options)
    const checkpoints = yield* CheckpointStore.CheckpointStore
    const lane = yield* laneOf(projection, options)
    const begin = start ?? (yield* resumePoint(lane.checkpoint, from))
    const progress = yield* Ref.make(begin)
    let lastSave = Number.NEGATIVE_INFINITY
    yield* source(begin.after, batchSize, lane.filter).pipe(
      Stream.runForEach((page) =>
        Effect.flatMap(Effect.zip(Ref.get(progress), Clock.currentTimeMillis), ([now, time]) => {
          if (page.through <= now.after) return Effect.void
          if (page.events.length === 0) {
            // others' events only: a partitioned runner notes it now and then, so its checkpoint keeps up
            if (lane.filter === undefined) return Effect.void
            if (time - lastSave < idleSaveEvery) return Effect.void
          }
          lastSave = time
          return Effect.zipRight(
            handleBatch(projection, checkpoints, retry, page, lane, now.saved, now.fresh && !lane.partitioned),
            Ref.set(progress, { after: page.through, saved: Option.some(page.through), fresh: now.fresh && page.events.length === 0 })
          )
        })
      )
    )
    return yield* Ref.get(progress)
  })

/**
 * Runs a projection forever: catches up from its checkpoint, then follows
 * the log live. Fails only when it parks or the store fails.
 *
 * @since 0.1.0
 * @category runners
 */
export const run = <E, R>(
  projection: Projection.Projection<E, R>,
  options?: RunOptions
): Effect.Effect<never, RunError, R | Requirements> =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    Effect.gen(function*() {
      // catch up page by page, then follow the log live from where that ended
      const reached = yield* drain(projection, catchUpPages(store), options)
      yield* drain(projection, livePages(store, options), options, reached, idleSaveMillis)
    })).pipe(
      Effect.zipRight(Effect.never),
      // Stryker disable next-line all: tracing only (span name and attributes), no behaviour
      Effect.withSpan("ProjectionRunner.run", { attributes: { "chronicle.projection": projection.name } })
    )

/**
 * Starts a projection in the background for the life of the scope. Closing
 * the scope stops it gracefully: the batch in hand is finished and
 * checkpointed first. Join the fiber to see why it stopped.
 *
 * @since 0.1.0
 * @category runners
 */
export const start = <E, R>(
  projection: Projection.Projection<E, R>,
  options?: RunOptions
): Effect.Effect<
  Fiber.RuntimeFiber<never, RunError>,
  never,
  R | Requirements | Scope.Scope
> => Effect.forkScoped(run(projection, options))

/**
 * Handles every event up to the current end of the log, then returns the
 * position reached.
 *
 * @since 0.1.0
 * @category runners
 */
export const catchUp = <E, R>(
  projection: Projection.Projection<E, R>,
  options?: RunOptions
): Effect.Effect<bigint, RunError, R | Requirements> =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    Effect.map(
      drain(projection, catchUpPages(store), options),
      (reached) => reached.after
    )).pipe(
      // Stryker disable next-line all: tracing only (span name and attributes), no behaviour
      Effect.withSpan("ProjectionRunner.catchUp", { attributes: { "chronicle.projection": projection.name } })
    )

/**
 * Catches every projection up, again and again, until a round handles
 * nothing new: process managers whose reactions append events that other
 * (or the same) process managers react to settle this way. Returns the head
 * position reached.
 *
 * @since 0.1.0
 * @category runners
 */
export const catchUpAll = <E, R>(
  projections: ReadonlyArray<Projection.Projection<E, R>>,
  options?: RunOptions
): Effect.Effect<bigint, RunError, R | Requirements> =>
  Effect.gen(function*() {
    let head = -1n
    for (;;) {
      for (const projection of projections) yield* catchUp(projection, options)
      const now = yield* EventStore.headPosition
      if (now === head) return now
      head = now
    }
  // Stryker disable next-line all: tracing only (span name and attributes), no behaviour
  }).pipe(Effect.withSpan("ProjectionRunner.catchUpAll", { attributes: { "chronicle.projections": projections.length } }))

/**
 * Rebuilds a projection from the beginning of the log: empties its read
 * model (`reset`), forgets its checkpoint, and catches up. Returns the
 * position reached.
 *
 * @since 0.1.0
 * @category runners
 */
export const rebuild = <E, R>(
  projection: Projection.Projection<E, R>,
  options?: Omit<RunOptions, "from">
): Effect.Effect<bigint, E | RunError, R | Requirements> =>
  Effect.gen(function*() {
    yield* Effect.flatMap(CheckpointStore.CheckpointStore, (checkpoints) => checkpoints.remove(Projection.checkpointName(projection)))
    const store = yield* EventStore.EventStore
    // the first batch empties the read model in its transaction; with nothing to replay, empty it here
    const reached = yield* drain(
      projection,
      catchUpPages(store),
      { ...options, partition: undefined, from: "start" }
    )
    if (reached.fresh && projection.reset !== undefined) yield* projection.reset
    return reached.after
  }).pipe(Effect.withSpan("ProjectionRunner.rebuild", { attributes: { "chronicle.projection": projection.name } }))

/**
 * A blue-green rebuild: `next` (a new version of `current`, or a new
 * projection, with a read model of its own: another table, another key
 * prefix) catches up from its own checkpoint, or from the start, while
 * `current` keeps running and serving. Once `next` has caught up with the
 * log, `swap` makes its read model the one readers use (rename tables, flip
 * a pointer); with `dropOld`, `current`'s read model is emptied (`reset`)
 * and its checkpoint removed (a runner of it still going stops with
 * `CheckpointMoved`). Keep `current` instead to roll back. Returns the
 * position `next` reached: start it live (`start(next)`) and stop `current`.
 *
 * @example
 * const v2 = { ...BalancesV1, version: 2, handle: ..., reset: ... } // writes balances_v2
 * yield* ProjectionRunner.replace(BalancesV1, v2, {
 *   swap: sql`ALTER VIEW balances RENAME ...`, // or any Effect that makes readers use v2
 *   dropOld: true
 * })
 *
 * @since 0.2.0
 * @category runners
 */
export const replace = <E, R, E2, R2, E3, R3>(
  current: Projection.Projection<E, R>,
  next: Projection.Projection<E2, R2>,
  options: Omit<RunOptions, "from"> & {
    readonly swap: Effect.Effect<void, E3, R3>
    readonly dropOld?: boolean | undefined
  }
): Effect.Effect<bigint, E | E3 | RunError, R | R2 | R3 | Requirements> =>
  Effect.gen(function*() {
    const from = Projection.checkpointName(current)
    const to = Projection.checkpointName(next)
    if (from === to) {
      return yield* Effect.dieMessage(`ProjectionRunner.replace: both projections checkpoint as ${JSON.stringify(from)}; give the new one another version`)
    }
    const reached = yield* catchUp(next, { ...options, partition: undefined, from: "start" })
    yield* options.swap
    if (options.dropOld === true) {
      if (current.reset !== undefined) yield* current.reset
      yield* Effect.flatMap(CheckpointStore.CheckpointStore, (checkpoints) => checkpoints.remove(from))
    }
    return reached
    // Stryker disable next-line all: tracing only (span name and attributes), no behaviour
  }).pipe(Effect.withSpan("ProjectionRunner.replace", { attributes: { "chronicle.projection": current.name, "chronicle.next": Projection.checkpointName(next) } }))

/**
 * Runs projections inside every append: wraps the EventStore below it so an
 * append and the projections' handling of its events run in one checkpoint
 * store `transaction`. On PostgreSQL (with the PostgreSQL checkpoint store on
 * the same `SqlClient`) that is one database transaction: a handler failure
 * rolls the append back, and the read model is never behind the log. On the
 * other stores the handlers run right after the append; a failure is then
 * reported but the events stay.
 *
 * An idempotent re-send of an append runs the handlers again: keep inline
 * handlers idempotent by `globalPosition`.
 *
 * @since 0.1.0
 * @category layers
 */
export const inline = <E, R>(
  ...projections: ReadonlyArray<Projection.Projection<E, R>>
): Layer.Layer<EventStore.EventStore, never, EventStore.EventStore | CheckpointStore.CheckpointStore | R> =>
  Layer.effect(
    EventStore.EventStore,
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const checkpoints = yield* CheckpointStore.CheckpointStore
      const context = yield* Effect.context<R>()
      const project = (stored: StoredEvent) =>
        Effect.forEach(
          projections.filter((projection) => Projection.handles(projection, stored.type)),
          (projection) =>
            Effect.mapError(projection.handle(stored), (cause) =>
              new EventStore.StoreError({
                operation: "append",
                reason: `inline projection ${projection.name} failed on ${stored.type} ${stored.eventId}: ${
                  cause instanceof Error ? cause.message : String(cause)
                }`,
                cause
              })),
          { discard: true }
        )
      const append: EventStore.EventStoreService["append"] = (streamId, events, options) => {
        const withIds = events.map((event) => (event.eventId === undefined ? { ...event, eventId: EventId.unsafeGenerate() } : event))
        return checkpoints.transaction(Effect.gen(function*() {
          const result = yield* store.append(streamId, withIds, options)
          const recordedAt = new Date(yield* Clock.currentTimeMillis)
          const first = result.streamVersion - withIds.length + 1
          for (let i = 0; i < withIds.length; i++) {
            const event = withIds[i]!
            yield* project({
              eventId: event.eventId!,
              type: event.type,
              streamId,
              streamVersion: first + i,
              globalPosition: result.globalPositions[i]!,
              recordedAt,
              schemaVersion: event.schemaVersion ?? 1,
              data: event.data,
              metadata: options.metadata === undefined ? event.metadata ?? {} : { ...options.metadata, ...event.metadata },
              tags: event.tags === undefined ? [] : [...new Set(event.tags)]
            })
          }
          return result
        })).pipe(
          Effect.provide(context),
          // Stryker disable all: tracing only (span name and attributes), no behaviour
          Effect.withSpan("ProjectionRunner.inline", {
            captureStackTrace: false,
            attributes: { "chronicle.stream_id": streamId, "chronicle.event_count": events.length }
          })
          // Stryker restore all
        )
      }
      return { ...store, append }
    })
  )
