/**
 * The shapes events take on their way into and out of a store: the event a
 * writer hands over (`NewEvent`) and the envelope the store gives back
 * (`StoredEvent`). Payloads here are plain JSON; `EventCodec` turns them into
 * the typed events of an aggregate.
 *
 * @since 0.1.0
 */
import type { EventId } from "./EventId.js"
import type { StreamId } from "./StreamId.js"

/**
 * Tracing data carried by every event: the id of the request or process that
 * caused it (`correlationId`), the id of the message that directly caused it
 * (`causationId`), and any fields of the user's own.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventMetadata {
  readonly correlationId?: string
  readonly causationId?: string
  readonly [key: string]: unknown
}

/**
 * An event to append. `data` must be JSON-serialisable. Without an `eventId`
 * the store generates a UUIDv7, but then a re-sent batch cannot be recognised:
 * give ids when appends may be retried.
 *
 * @since 0.1.0
 * @category models
 */
export interface NewEvent {
  readonly eventId?: EventId | undefined
  readonly type: string
  readonly data: unknown
  readonly metadata?: EventMetadata | undefined
  readonly schemaVersion?: number | undefined
  /**
   * Tags for Dynamic Consistency Boundaries (`course:c1`, `student:s7`):
   * queries select events by type and tags across streams.
   */
  readonly tags?: ReadonlyArray<string> | undefined
}

/**
 * A `NewEvent` with every field settled, as a store driver receives it.
 *
 * @since 0.1.0
 * @category models
 */
export interface PendingEvent {
  readonly eventId: EventId
  readonly type: string
  readonly data: unknown
  readonly metadata: EventMetadata
  readonly schemaVersion: number
  /** Distinct, non-empty; empty when the event has none. */
  readonly tags: ReadonlyArray<string>
}

/**
 * A stored event: the payload in its envelope. `streamVersion` is 1-based
 * within its stream; `globalPosition` orders every event of the store (it
 * grows strictly, but may have gaps; a `bigint`, because some stores derive
 * it from 64-bit transaction ids).
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredEvent<Data = unknown> {
  readonly eventId: EventId
  readonly type: string
  readonly streamId: StreamId
  readonly streamVersion: number
  readonly globalPosition: bigint
  readonly recordedAt: Date
  readonly schemaVersion: number
  readonly data: Data
  readonly metadata: EventMetadata
  /** The event's tags; empty when it has none. */
  readonly tags: ReadonlyArray<string>
}

/**
 * What folding a stream into state needs of each event: a stored event
 * without its envelope's bookkeeping. Stores may read it more cheaply.
 *
 * @since 0.1.0
 * @category models
 */
export type EventPayload<Data = unknown> = Pick<
  StoredEvent<Data>,
  "streamId" | "streamVersion" | "type" | "schemaVersion" | "data"
>
