/**
 * Process managers (sagas): react to events by sending commands to other
 * deciders through their command handlers. A process manager is a projection
 * whose handler sends commands; it runs on `ProjectionRunner` like any other,
 * with its own checkpoint.
 *
 * Delivery is at least once, so a reaction may run twice for one event: make
 * the commands it sends idempotent in their deciders (a second "reserve" of
 * the same reservation decides no events), or check state before sending.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type { EventMetadata, StoredEvent } from "./Event.js"
import type * as EventCodec from "./EventCodec.js"
import * as Projection from "./Projection.js"

/**
 * The metadata for events caused by `event`: the same correlation id (the
 * event's own id when it has none) and the event as their causation.
 *
 * @since 0.1.0
 * @category combinators
 */
export const causedBy = (event: StoredEvent): EventMetadata => ({
  correlationId: typeof event.metadata.correlationId === "string" ? event.metadata.correlationId : event.eventId,
  causationId: event.eventId
})

/**
 * Defines a process manager over Schema-typed events. `react` receives the
 * event and the metadata (`causedBy(event)`) to pass as `metadata` to every
 * `CommandHandler.handle` it runs, so the events it causes carry the
 * correlation and causation ids.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Ev extends EventCodec.Tagged, const T extends Ev["_tag"] = Ev["_tag"], E = never, R = never>(
  codec: EventCodec.EventCodec<Ev>,
  options: {
    readonly name: string
    readonly types?: ReadonlyArray<T> | undefined
    readonly react: (event: StoredEvent<Extract<Ev, { readonly _tag: T }>>, metadata: EventMetadata) => Effect.Effect<void, E, R>
  }
): Projection.Projection<E | EventCodec.DecodeError, R> =>
  Projection.fromCodec<Ev, T, E, R>(codec, {
    name: options.name,
    types: options.types,
    handle: (event) => {
      const metadata = causedBy(event)
      return options.react(event, metadata).pipe(
        // Stryker disable next-line all: tracing only (span name and attributes), no behaviour
        Effect.withSpan("ProcessManager.react", {
          captureStackTrace: false,
          attributes: {
            "chronicle.process": options.name,
            "chronicle.event_type": event.type,
            "chronicle.stream_id": event.streamId,
            "chronicle.position": event.globalPosition,
            "chronicle.correlation_id": metadata.correlationId,
            "chronicle.causation_id": metadata.causationId
          }
        })
      )
    }
  })
