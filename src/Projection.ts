/**
 * Projections: read models built from the global log. A projection is a
 * value: a name (its checkpoint), the event types it handles, and a handler
 * that is an Effect needing whatever services it writes to. Run it with
 * `ProjectionRunner`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { StoredEvent } from "./Event.js"
import type * as EventCodec from "./EventCodec.js"

/**
 * A projection: `handle` is called for each event of `eventTypes` (every
 * event when absent) in global order. Delivery is at least once: after a
 * crash the events since the last checkpoint come again, so a handler that
 * is not transactional with its checkpoint uses `event.globalPosition` to
 * stay idempotent.
 *
 * @since 0.1.0
 * @category models
 */
export interface Projection<E = never, R = never> {
  readonly name: string
  readonly eventTypes?: ReadonlyArray<string> | undefined
  readonly handle: (event: StoredEvent) => Effect.Effect<void, E, R>
  /**
   * Handles a whole batch at once instead (see `batched`). A failure parks
   * the projection at the batch's first event.
   */
  readonly handleBatch?: ((events: ReadonlyArray<StoredEvent>) => Effect.Effect<void, E, R>) | undefined
  /**
   * Empties the read model before a rebuild (drop and re-create a table,
   * say). The runner also calls it, in the first batch's transaction, when
   * it starts this projection from the beginning without a checkpoint.
   */
  readonly reset?: Effect.Effect<void, E, R> | undefined
  /**
   * The read model's version (default 1). Changing it starts a rebuild: each
   * version keeps its own checkpoint (`checkpointName`), so a new version
   * finds none, empties its read model (`reset`) and replays the log from the
   * start, while the old one, if still running, keeps its own. For a
   * blue-green rebuild (the old version serving until the new one has caught
   * up), give the new version its own read model and see
   * `ProjectionRunner.replace`.
   *
   * @since 0.2.0
   */
  readonly version?: number | undefined
}

/**
 * The key of a projection's checkpoint: its name at version 1, `name@vN` at
 * version N.
 *
 * @since 0.2.0
 * @category getters
 */
export const checkpointName = (projection: Pick<Projection<any, any>, "name" | "version">): string =>
  projection.version === undefined || projection.version === 1 ? projection.name : `${projection.name}@v${projection.version}`

/**
 * A projection kept failing on one event until its retry schedule ran out. It
 * stopped there: its checkpoint is still before `position`, so once the cause
 * is fixed it resumes with this very event. Nothing was skipped.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProjectionParked extends Schema.TaggedError<ProjectionParked>()("ProjectionParked", {
  projection: Schema.String,
  position: Schema.BigIntFromSelf,
  eventId: Schema.String,
  streamId: Schema.String,
  type: Schema.String,
  attempts: Schema.Number,
  cause: Schema.Defect
}) {
  override get message() {
    return `Projection ${this.projection} is parked at position ${this.position} (${this.type} ${this.eventId} of ${this.streamId}) after ${this.attempts} attempts: ${
      this.cause instanceof Error ? this.cause.message : String(this.cause)
    }`
  }
}

/**
 * Defines a projection over raw stored events.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E = never, R = never>(projection: Projection<E, R>): Projection<E, R> => projection

/**
 * Defines a projection that handles whole batches (its events of
 * `eventTypes`, in order): for handlers that pipeline (publish many, await
 * all) or write in bulk. One event alone (an inline run) is a batch of one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const batched = <E = never, R = never>(projection: {
  readonly name: string
  readonly version?: number | undefined
  readonly eventTypes?: ReadonlyArray<string> | undefined
  readonly handleBatch: (events: ReadonlyArray<StoredEvent>) => Effect.Effect<void, E, R>
  readonly reset?: Effect.Effect<void, E, R> | undefined
}): Projection<E, R> => ({ ...projection, handle: (event) => projection.handleBatch([event]) })

/**
 * Defines a projection over Schema-typed events: each event of the codec's
 * types (or of `types`, which also narrows the event type `handle` sees) is
 * upcast and decoded first; one that does not decode is a handler failure
 * (retried, then parked).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromCodec = <Ev extends EventCodec.Tagged, const T extends Ev["_tag"] = Ev["_tag"], E = never, R = never>(
  codec: EventCodec.EventCodec<Ev>,
  options: {
    readonly name: string
    readonly version?: number | undefined
    readonly types?: ReadonlyArray<T> | undefined
    readonly handle: (event: StoredEvent<Extract<Ev, { readonly _tag: T }>>) => Effect.Effect<void, E, R>
    readonly reset?: Effect.Effect<void, E, R> | undefined
  }
): Projection<E | EventCodec.DecodeError, R> => ({
  name: options.name,
  version: options.version,
  eventTypes: options.types ?? codec.types,
  handle: (event) =>
    Effect.suspend((): Effect.Effect<void, E | EventCodec.DecodeError, R> => {
      const decoded = codec.decode(event)
      return Either.isLeft(decoded)
        ? Effect.fail(decoded.left)
        : options.handle(decoded.right as StoredEvent<Extract<Ev, { readonly _tag: T }>>)
    }),
  reset: options.reset
})

/**
 * Whether a projection handles events of `type`.
 *
 * @since 0.1.0
 * @category predicates
 */
export const handles = (projection: Projection<any, any>, type: string): boolean =>
  projection.eventTypes === undefined || projection.eventTypes.includes(type)
