/**
 * Runs commands against event-sourced aggregates: load the stream and fold it
 * into state, decide, append with the loaded version as the expected version.
 * A concurrency conflict re-loads and re-decides on a `Schedule`; domain
 * errors are never retried.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Either, Metric, Predicate, Schedule, Schema, Stream } from "effect"
import type * as Decider from "./Decider.js"
import type { EventMetadata } from "./Event.js"
import * as EventCodec from "./EventCodec.js"
import * as EventStore from "./EventStore.js"
import * as ExpectedVersion from "./ExpectedVersion.js"
import * as Metrics from "./Metrics.js"
import { StreamId } from "./StreamId.js"

/**
 * A command kept conflicting with concurrent writers until its retry schedule
 * ran out. Carries the last conflict.
 *
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
 * Every failure of a command other than the decider's own domain errors.
 *
 * @category errors
 */
export type HandlerError =
  | EventStore.AppendError
  | ConflictRetriesExhausted
  | EventCodec.DecodeError
  | EventCodec.EventEncodeError

/**
 * The default retry schedule on conflicts: exponential from 10 ms, factor 2,
 * jittered, at most 5 retries.
 *
 * @category constants
 */
export const defaultRetrySchedule: Schedule.Schedule<unknown, unknown> = Schedule.exponential(
  Duration.millis(10),
  2
).pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(5)))

/**
 * @category options
 */
export interface HandlerOptions<E extends EventCodec.Tagged> {
  /** The codec of the decider's events. */
  readonly codec: EventCodec.EventCodec<E>
  /** When to retry after a conflict; default `defaultRetrySchedule`. */
  readonly retry?: Schedule.Schedule<unknown, EventStore.ConcurrencyConflict> | undefined
}

/**
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
 * An aggregate's state as loaded from its stream, and the version it is at.
 *
 * @category models
 */
export interface Loaded<S> {
  readonly state: S
  readonly version: number
}

/**
 * A decider bound to its codec and retry policy.
 *
 * @category models
 */
export interface CommandHandler<C, E, S, Err, R> {
  readonly handle: (
    streamId: StreamId,
    command: C,
    options?: HandleOptions
  ) => Effect.Effect<CommandResult<E, S>, Err | HandlerError, R | EventStore.EventStore>
  readonly load: (
    streamId: StreamId
  ) => Effect.Effect<Loaded<S>, EventStore.StoreError | EventCodec.DecodeError, EventStore.EventStore>
}

/**
 * Loads an aggregate: streams its events and folds them as they arrive.
 *
 * @category combinators
 */
export const load = <E extends EventCodec.Tagged, S>(
  decider: Pick<Decider.Decider<any, E, S, any, any>, "initialState" | "evolve">,
  codec: EventCodec.EventCodec<E>,
  streamId: StreamId
): Effect.Effect<Loaded<S>, EventStore.StoreError | EventCodec.DecodeError, EventStore.EventStore> =>
  Effect.suspend(() => {
    let state = decider.initialState
    let version = 0
    let count = 0
    const started = performance.now()
    return EventStore.readPayloads(streamId).pipe(
      Stream.runForEachChunk((chunk) =>
        Effect.suspend(() => {
          for (const stored of chunk) {
            const event = codec.decodeData(stored)
            if (Either.isLeft(event)) return Effect.fail(event.left)
            state = decider.evolve(state, event.right)
            version = stored.streamVersion
          }
          count += chunk.length
          return Effect.void
        })
      ),
      // wall time, not the Effect Clock: under the TestClock, jittered schedules leave fractional
      // milliseconds that make Clock.currentTimeNanos (and so Effect.timed) die
      Effect.flatMap(() =>
        Effect.zipRight(
          Metric.update(Metrics.aggregateLoadMillis, performance.now() - started),
          Metric.incrementBy(Metrics.eventsLoaded, count)
        )
      ),
      Effect.map((): Loaded<S> => ({ state, version })),
      Effect.tap(() => Effect.annotateCurrentSpan({ "chronicle.event_count": count, "chronicle.version": version })),
      Effect.withSpan("CommandHandler.load", { captureStackTrace: false, attributes: { "chronicle.stream_id": streamId } })
    )
  })

const isConflict = (u: unknown): u is EventStore.ConcurrencyConflict => u instanceof EventStore.ConcurrencyConflict

/**
 * Binds a decider to its codec and retry policy.
 *
 * @example
 * const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents })
 * const result = yield* accounts.handle(streamId, { _tag: "Deposit", amount: 100 })
 *
 * @category constructors
 */
export const make = <C, E extends EventCodec.Tagged, S, Err, R>(
  decider: Decider.Decider<C, E, S, Err, R>,
  options: HandlerOptions<E>
): CommandHandler<C, E, S, Err, R> => {
  const { codec } = options
  const schedule = options.retry ?? defaultRetrySchedule
  const loadStream = (streamId: StreamId) => load(decider, codec, streamId)

  const attempt = (streamId: StreamId, command: C, pinned: ExpectedVersion.ExpectedVersion | undefined, metadata: EventMetadata | undefined) =>
    Effect.gen(function*() {
      const loaded = yield* loadStream(streamId)
      if (pinned !== undefined && !ExpectedVersion.matches(pinned, loaded.version)) {
        return yield* new EventStore.ConcurrencyConflict({ streamId, expected: pinned, actual: loaded.version })
      }
      const events = yield* decider.decide(command, loaded.state).pipe(
        Effect.withSpan("CommandHandler.decide", { captureStackTrace: false, attributes: { "chronicle.stream_id": streamId } })
      )
      if (events.length === 0) {
        const unchanged: CommandResult<E, S> = {
          streamId,
          events,
          state: loaded.state,
          streamVersion: loaded.version,
          globalPositions: []
        }
        return unchanged
      }
      const encoded = yield* EventCodec.encodeAll(codec, events, metadata)
      const appended = yield* EventStore.append(streamId, encoded, {
        expectedVersion: ExpectedVersion.exact(loaded.version)
      })
      let state = loaded.state
      for (const event of events) state = decider.evolve(state, event)
      const result: CommandResult<E, S> = {
        streamId,
        events,
        state,
        streamVersion: appended.streamVersion,
        globalPositions: appended.globalPositions
      }
      return result
    })

  const handle = (
    streamId: StreamId,
    command: C,
    handleOptions: HandleOptions = {}
  ): Effect.Effect<CommandResult<E, S>, Err | HandlerError, R | EventStore.EventStore> =>
    Effect.suspend(() => {
      const pinned = handleOptions.expectedVersion === ExpectedVersion.Any ? undefined : handleOptions.expectedVersion
      const once = attempt(streamId, command, pinned, handleOptions.metadata)
      if (pinned !== undefined) return once
      let attempts = 0
      return Effect.suspend(() => {
        attempts++
        return attempts > 1 ? Effect.zipRight(Metric.increment(Metrics.commandRetries), once) : once
      }).pipe(
        // only conflicts go through the schedule; every other failure leaves at once
        Effect.map(Either.right),
        Effect.catchAll((error) => isConflict(error) ? Effect.fail(error) : Effect.succeed(Either.left(error))),
        Effect.retry(schedule),
        Effect.catchAll((lastConflict) =>
          Effect.zipRight(
            Metric.increment(Metrics.commandRetriesExhausted),
            Effect.succeed(Either.left(new ConflictRetriesExhausted({ streamId, attempts, lastConflict })))
          )
        ),
        Effect.flatMap((outcome: Either.Either<CommandResult<E, S>, Err | HandlerError>) => outcome),
        Effect.tap(() => Effect.annotateCurrentSpan("chronicle.attempts", attempts))
      )
    }).pipe(
      Effect.withSpan("CommandHandler.handle", {
        captureStackTrace: false,
        attributes: {
          "chronicle.stream_id": streamId,
          "chronicle.command": Predicate.hasProperty(command, "_tag") ? String(command._tag) : "unknown"
        }
      })
    )

  return { handle, load: loadStream }
}

/**
 * Handles one command in one call: `make(decider, options).handle(…)`.
 *
 * @category combinators
 */
export const handle = <C, E extends EventCodec.Tagged, S, Err, R>(
  decider: Decider.Decider<C, E, S, Err, R>,
  streamId: StreamId,
  command: C,
  options: HandlerOptions<E> & HandleOptions
): Effect.Effect<CommandResult<E, S>, Err | HandlerError, R | EventStore.EventStore> =>
  make(decider, options).handle(streamId, command, options)
