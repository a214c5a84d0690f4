/**
 * Event identifiers: UUIDs, generated as time-ordered UUIDv7. Appends are
 * idempotent by event id, so a writer that re-sends a batch after a lost reply
 * must re-send the same ids.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { v7 as uuidv7 } from "uuid"

/**
 * A branded UUID identifying one event across the whole store.
 *
 * @since 0.1.0
 * @category models
 */
export const EventId = Schema.UUID.pipe(Schema.brand("chronicle/EventId"))

/**
 * @since 0.1.0
 * @category models
 */
export type EventId = typeof EventId.Type

/**
 * A fresh UUIDv7 event id.
 *
 * @since 0.1.0
 * @category constructors
 */
export const generate: Effect.Effect<EventId> = Effect.sync(() => uuidv7() as EventId)

/**
 * A fresh UUIDv7 event id, outside of Effect.
 *
 * @since 0.1.0
 * @category constructors
 */
export const unsafeGenerate = (): EventId => uuidv7() as EventId

/**
 * Validates a user-supplied id (any UUID version).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (value: string): EventId => EventId.make(value)
