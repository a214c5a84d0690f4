import * as Either from "effect/Either"
import type { PendingEvent } from "../Event.js"
import { EventTooLarge, InvalidEvent } from "../EventStore.js"
import type { StreamId } from "../StreamId.js"
import { findNonFinite, findUnstorable, hasUnstorableEscape } from "./text.js"

/** The default limit on an event's serialised size (data plus metadata): 1 MiB. */
export const defaultMaxEventBytes = 1024 * 1024

/** An event's payload and metadata as JSON text. */
export interface SerializedEvent {
  readonly data: string
  readonly metadata: string
}

const stringify = (value: unknown): string | undefined => {
  try {
    return JSON.stringify(value)
  } catch {
    return undefined
  }
}

const isEmpty = (value: object): boolean => {
  for (const _ in value) return false
  return true
}

/**
 * Serialises an event's data and metadata to JSON, rejecting payloads that are
 * not JSON, text no store can keep (U+0000, lone surrogates: `InvalidEvent`
 * naming the field) and events over `maxBytes` (UTF-8 bytes of data plus
 * metadata).
 */
export const serializeEvent = (
  streamId: StreamId,
  index: number,
  event: PendingEvent,
  maxBytes: number
): Either.Either<SerializedEvent, EventTooLarge | InvalidEvent> => {
  const data = stringify(event.data)
  if (data === undefined) {
    return Either.left(new InvalidEvent({ streamId, index, reason: "the event data is not JSON-serialisable" }))
  }
  const metadata = isEmpty(event.metadata) ? "{}" : stringify(event.metadata)
  if (metadata === undefined) {
    return Either.left(new InvalidEvent({ streamId, index, reason: "the event metadata is not JSON-serialisable" }))
  }
  // U+0000 and lone surrogates come out of JSON.stringify as \u escapes: one pass finds them
  for (const [field, json] of [["data", data], ["metadata", metadata]] as const) {
    if (hasUnstorableEscape(json)) {
      const found = findUnstorable(JSON.parse(json), field)
      if (found !== undefined) {
        return Either.left(new InvalidEvent({ streamId, index, path: found.path, reason: `${found.path} holds ${found.reason}` }))
      }
    }
  }
  // NaN and ±Infinity come out of JSON.stringify as null: look for them only where a null was written
  for (const [field, json, value] of [["data", data, event.data], ["metadata", metadata, event.metadata]] as const) {
    if (json.includes("null")) {
      const found = findNonFinite(value, field)
      if (found !== undefined) {
        return Either.left(new InvalidEvent({ streamId, index, path: found.path, reason: `${found.path} is ${found.reason}` }))
      }
    }
  }
  // A UTF-8 string never has more bytes than 3 per UTF-16 unit: skip counting small events.
  const upperBound = (data.length + metadata.length) * 3
  if (upperBound > maxBytes) {
    const size = Buffer.byteLength(data, "utf8") + Buffer.byteLength(metadata, "utf8")
    if (size > maxBytes) {
      return Either.left(new EventTooLarge({ streamId, eventId: event.eventId, type: event.type, size, limit: maxBytes }))
    }
  }
  return Either.right({ data, metadata })
}
