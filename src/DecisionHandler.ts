/**
 * Runs commands against Dynamic Consistency Boundaries: reads the events
 * matching the command's decision model, folds them, decides, and appends the
 * decided events on the condition that nothing matching the model's query was
 * stored since the read. When another writer got there first, it reads and
 * decides again on a `Schedule` (the same machinery as stream conflicts), so
 * invariants that span entities (a course's capacity and a student's course
 * limit) hold without an aggregate around both.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import type * as Schedule from "effect/Schedule"
import { defaultRetrySchedule } from "./CommandHandler.js"
import type * as DecisionModel from "./DecisionModel.js"
import type { EventMetadata, StoredEvent } from "./Event.js"
import * as EventCodec from "./EventCodec.js"
import * as EventStore from "./EventStore.js"
import * as ExpectedVersion from "./ExpectedVersion.js"
import * as Metrics from "./Metrics.js"
import * as Query from "./Query.js"
import type { InvalidStreamId, StreamId } from "./StreamId.js"

/**
 * Other writers kept changing what the decision read until the retry
 * schedule ran out. Carries the last refusal.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConditionRetriesExhausted
  extends Schema.TaggedError<ConditionRetriesExhausted>()("ConditionRetriesExhausted", {
    attempts: Schema.Number,
    lastFailure: EventStore.AppendConditionFailed
  })
{
  override get message() {
    return `Gave up after ${this.attempts} attempts: ${this.lastFailure.message}`
  }
}

/**
 * Every failure of a decision other than the decider's own domain errors: only
 * what a decision can meet. A failed condition is retried and ends as
 * `ConditionRetriesExhausted`; `InvalidArgument` is a decision model whose
 * query is not one; `TransactionConflict` only inside a caller's PostgreSQL
 * transaction. Appends carry fresh ids and `Any`, so the store's
 * `ConcurrencyConflict` and `DuplicateEventId` would be a defect.
 *
 * @since 0.1.0
 * @category errors
 */
export type HandlerError =
  | ConditionRetriesExhausted
  | EventStore.InvalidArgument
  | EventStore.StreamDeleted
  | InvalidStreamId
  | EventStore.InvalidEvent
  | EventStore.EventTooLarge
  | EventStore.TransactionConflict
  | EventStore.StoreError
  | EventCodec.DecodeError
  | EventCodec.EventEncodeError

/**
 * How commands are turned into decisions.
 *
 * @since 0.1.0
 * @category models
 */
export interface DecisionDecider<C, E extends EventCodec.Tagged, S, Err, R> {
  /** Schema-typed events to and from the store; its `tags` option tags what is appended. */
  readonly codec: EventCodec.EventCodec<E>
  /** The state a command's decision needs. */
  readonly model: (command: C) => DecisionModel.DecisionModel<S, E>
  readonly decide: (command: C, state: S) => Effect.Effect<ReadonlyArray<E>, Err, R>
  /** The stream the decided events are appended to (any expected version). */
  readonly streamId: (command: C) => StreamId
  /** Retries when the condition fails; default as for stream conflicts. */
  readonly retry?: Schedule.Schedule<unknown, EventStore.AppendConditionFailed> | undefined
}

/**
 * What a handled command did: the events decided (none when the state already
 * satisfied the command), the state after them, and where they were stored.
 *
 * @since 0.1.0
 * @category models
 */
export interface DecisionResult<E, S> {
  readonly events: ReadonlyArray<E>
  readonly state: S
  readonly globalPositions: ReadonlyArray<bigint>
  readonly attempts: number
}

type Outcome<E, S> = Omit<DecisionResult<E, S>, "attempts">

/**
 * @since 0.1.0
 * @category models
 */
export interface DecisionHandler<C, E, S, Err, R> {
  readonly handle: (
    command: C,
    options?: { readonly metadata?: EventMetadata | undefined }
  ) => Effect.Effect<DecisionResult<E, S>, Err | HandlerError, R | EventStore.EventStore>
  /** The current state of a command's decision model, and the position it was read up to. */
  readonly load: (
    command: C
  ) => Effect.Effect<{ readonly state: S; readonly position: bigint }, EventStore.ReadError | EventCodec.DecodeError, EventStore.EventStore>
}

/**
 * Defines a decider for DCB decisions, inferring its types (share one value
 * between `make` and `DecisionSpec.make`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const decider = <C, E extends EventCodec.Tagged, S, Err, R>(
  definition: DecisionDecider<C, E, S, Err, R>
): DecisionDecider<C, E, S, Err, R> => definition

/**
 * Builds the handler.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <C, E extends EventCodec.Tagged, S, Err, R>(
  decider: DecisionDecider<C, E, S, Err, R>
): DecisionHandler<C, E, S, Err, R> => {
  const schedule = decider.retry ?? defaultRetrySchedule

  const load = (command: C) =>
    Effect.gen(function*() {
      const model = decider.model(command)
      const store = yield* EventStore.EventStore
      const read = yield* store.queryForDecision(model.query)
      let state = model.initialState
      for (const stored of read.events) {
        const decoded = decider.codec.decode(stored)
        if (Either.isLeft(decoded)) return yield* decoded.left
        state = model.evolve(state, decoded.right)
      }
      return { state, position: read.condition.after ?? 0n, condition: read.condition }
    }).pipe(Effect.withSpan("DecisionHandler.load", { captureStackTrace: false }))

  const attempt = (command: C, metadata: EventMetadata | undefined) =>
    Effect.gen(function*() {
      const loaded = yield* load(command)
      const model = decider.model(command)
      const events = yield* decider.decide(command, loaded.state).pipe(
        Effect.withSpan("DecisionHandler.decide", { captureStackTrace: false })
      )
      if (events.length === 0) return { events, state: loaded.state, globalPositions: [] } as Outcome<E, S>
      const encoded = yield* EventCodec.encodeAll(decider.codec, events, metadata)
      const appended = yield* EventStore.append(decider.streamId(command), encoded, {
        expectedVersion: ExpectedVersion.Any,
        condition: loaded.condition
      }).pipe(Effect.catchTags({ ConcurrencyConflict: Effect.die, DuplicateEventId: Effect.die }))
      // as the store's Clock tells it (the memory store's; a database's is its own)
      const recordedAt = new Date(yield* Clock.currentTimeMillis)
      let state = loaded.state
      for (let i = 0; i < events.length; i++) {
        const stored: StoredEvent<E> = {
          eventId: encoded[i]!.eventId!,
          type: events[i]!._tag,
          streamId: decider.streamId(command),
          streamVersion: appended.streamVersion - events.length + i + 1,
          globalPosition: appended.globalPositions[i]!,
          recordedAt,
          schemaVersion: decider.codec.schemaVersion(events[i]!._tag),
          data: events[i]!,
          metadata: encoded[i]!.metadata ?? {},
          tags: encoded[i]!.tags ?? []
        }
        if (Query.matches(model.query, stored)) state = model.evolve(state, stored)
      }
      return { events, state, globalPositions: appended.globalPositions } as Outcome<E, S>
    })

  const handle = (
    command: C,
    options?: { readonly metadata?: EventMetadata | undefined }
  ): Effect.Effect<DecisionResult<E, S>, Err | HandlerError, R | EventStore.EventStore> =>
    Effect.suspend(() => {
      let attempts = 0
      const once = Effect.suspend(() => {
        attempts++
        const run = attempt(command, options?.metadata)
        return attempts > 1 ? Effect.zipRight(Metric.increment(Metrics.commandRetries), run) : run
      })
      return once.pipe(
        // only a failed condition goes through the schedule; every other failure leaves at once
        Effect.map((result): Either.Either<Outcome<E, S>, Err | HandlerError> => Either.right(result)),
        Effect.catchAll((error) =>
          error instanceof EventStore.AppendConditionFailed
            ? Effect.fail(error)
            : Effect.succeed<Either.Either<Outcome<E, S>, Err | HandlerError>>(Either.left(error))
        ),
        Effect.retry(schedule),
        Effect.catchAll((lastFailure) =>
          Effect.zipRight(
            Metric.increment(Metrics.commandRetriesExhausted),
            Effect.succeed<Either.Either<Outcome<E, S>, Err | HandlerError>>(Either.left(new ConditionRetriesExhausted({ attempts, lastFailure })))
          )
        ),
        Effect.flatMap((outcome) => outcome),
        Effect.map((result): DecisionResult<E, S> => ({ ...result, attempts }))
      )
    }).pipe(
      Effect.withSpan("DecisionHandler.handle", {
        captureStackTrace: false,
        attributes: { "chronicle.command": Predicate.hasProperty(command, "_tag") ? String(command._tag) : "unknown" }
      })
    )

  return {
    handle,
    load: (command) => Effect.map(load(command), ({ position, state }) => ({ state, position }))
  }
}

