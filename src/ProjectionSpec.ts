/**
 * Given-When-Then specifications for projections. The events go through a
 * real (in-memory) event store and the projection runner, as in production:
 * `given` events build the read model, `when` events arrive after them, and
 * `then` checks the read model with an Effect of your own.
 *
 * @example
 * const spec = ProjectionSpec.make(OrderTotals, OrderEvents)
 * it.effect("a cancelled order leaves the totals", () =>
 *   spec.given([["order-1", placed(40)]]).when([["order-1", cancelled]]).then(
 *     Effect.flatMap(Totals, (totals) => totals.get("order-1")).pipe(Effect.map((t) => expect(t).toBe(0)))
 *   ).pipe(Effect.provide(TotalsLive)))
 *
 * @since 0.1.0
 */
import { AssertionError } from "node:assert"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as CheckpointStore from "./CheckpointStore.js"
import type { NewEvent } from "./Event.js"
import type * as EventCodec from "./EventCodec.js"
import * as EventStore from "./EventStore.js"
import type * as Projection from "./Projection.js"
import * as ProjectionRunner from "./ProjectionRunner.js"
import * as StreamId from "./StreamId.js"
import * as MemoryCheckpointStore from "./stores/memory/MemoryCheckpointStore.js"
import * as MemoryEventStore from "./stores/memory/MemoryEventStore.js"

/**
 * An event of a specification: the stream it is appended to, and the event.
 *
 * @since 0.1.0
 * @category models
 */
export type SpecEvent<Ev> = readonly [streamId: string, event: Ev]

/**
 * @since 0.1.0
 * @category models
 */
export interface When<E, R> {
  /** Handles every event, then runs `check` on the read model: it fails or dies to fail the spec. */
  readonly then: <A, E2, R2>(check: Effect.Effect<A, E2, R2>) => Effect.Effect<A, E | E2, Exclude<R | R2, Provided>>
  /** Expects the projection to park on the event matching `expected` (e.g. its type), after `given` was handled. */
  readonly thenParks: (
    expected: (parked: Projection.ProjectionParked) => boolean
  ) => Effect.Effect<void, E, Exclude<R, Provided>>
}

/** What a specification provides itself: a fresh in-memory event store and checkpoint store. */
type Provided = EventStore.EventStore | CheckpointStore.CheckpointStore

/**
 * @since 0.1.0
 * @category models
 */
export interface Given<Ev, E, R> extends When<E, R> {
  readonly when: (events: ReadonlyArray<SpecEvent<Ev>>) => When<E, R>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ProjectionSpec<Ev, E, R> {
  readonly given: (events: ReadonlyArray<SpecEvent<Ev>>) => Given<Ev, E, R>
}

const fromNewEvents = (event: NewEvent) => Either.right(event)

/**
 * A specification for `projection`. With a codec, events are typed and encoded
 * through it (as a command handler would); without, they are `NewEvent`s.
 *
 * @since 0.1.0
 * @category constructors
 */
export function make<Ev extends EventCodec.Tagged, E, R>(
  projection: Projection.Projection<E, R>,
  codec: EventCodec.EventCodec<Ev>
): ProjectionSpec<Ev, E, R>
export function make<E, R>(projection: Projection.Projection<E, R>): ProjectionSpec<NewEvent, E, R>
export function make<E, R>(
  projection: Projection.Projection<E, R>,
  codec?: EventCodec.EventCodec<any>
): ProjectionSpec<unknown, E, R> {
  const encode = (codec === undefined ? fromNewEvents : codec.encode) as (event: unknown) => Either.Either<NewEvent, unknown>
  const appendAll = (events: ReadonlyArray<SpecEvent<unknown>>) =>
    Effect.forEach(events, ([streamId, event], index) =>
      Effect.gen(function*() {
        const encoded = encode(event)
        if (Either.isLeft(encoded)) {
          return yield* Effect.die(new AssertionError({ message: `event #${index} does not encode: ${String(encoded.left)}` }))
        }
        yield* EventStore.append(StreamId.unsafeParse(streamId), [encoded.right], { expectedVersion: "Any" }).pipe(Effect.orDie)
      }), { discard: true })
  const stores = Layer.merge(MemoryEventStore.layer(), MemoryCheckpointStore.layer())
  const scenario = (given: ReadonlyArray<SpecEvent<unknown>>, when: ReadonlyArray<SpecEvent<unknown>>): When<E, R> => ({
    then: (check) =>
      Effect.gen(function*() {
        yield* appendAll(given)
        yield* ProjectionRunner.catchUp(projection).pipe(Effect.orDie)
        if (when.length > 0) {
          yield* appendAll(when)
          yield* ProjectionRunner.catchUp(projection).pipe(Effect.orDie)
        }
        return yield* check
      }).pipe(Effect.provide(stores)),
    thenParks: (expected) =>
      Effect.gen(function*() {
        yield* appendAll(given)
        yield* ProjectionRunner.catchUp(projection).pipe(Effect.orDie)
        yield* appendAll(when)
        const exit = yield* Effect.exit(ProjectionRunner.catchUp(projection, { retry: Schedule.recurs(0) }))
        if (Exit.isSuccess(exit)) {
          return yield* Effect.die(new AssertionError({ message: `expected ${projection.name} to park, but it handled every event` }))
        }
        const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        if (error === undefined || error._tag !== "ProjectionParked" || !expected(error)) {
          return yield* Effect.die(new AssertionError({ message: `expected ${projection.name} to park as described, got ${String(error ?? exit.cause)}` }))
        }
      }).pipe(Effect.provide(stores))
  })
  return {
    given: (given) => ({
      ...scenario(given, []),
      when: (when) => scenario(given, when)
    })
  }
}
