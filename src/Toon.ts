/**
 * TOON (Token-Oriented Object Notation) for event histories: the same events
 * as JSON in fewer tokens, for prompts and for people. Events are grouped by
 * type and shape and flattened into rows of primitive fields, so each group
 * becomes one TOON table:
 *
 * ```
 * [2]:
 *   - type: AccountOpened
 *     events[1]{globalPosition,streamId,streamVersion,eventId,recordedAt,data.owner,data.currency}:
 *       1,account-1,1,0192f1c4-…,"2026-11-24T10:00:00.000Z",Ada,EUR
 *   - type: MoneyDeposited
 *     events[2]{globalPosition,streamId,streamVersion,eventId,recordedAt,data.amount}:
 *       2,account-1,2,0192f1c5-…,"2026-11-24T10:00:01.000Z",10000
 *       3,account-1,3,0192f1c6-…,"2026-11-24T10:00:02.000Z",500
 * ```
 *
 * A row holds the envelope (`schemaVersion` only when it is not 1, `tags`
 * only when there are any), the fields of an object payload as `data.<key>`
 * (any other payload as `data`) and the metadata as `meta.<key>`. Events
 * whose rows have the same type and the same fields, in the same order, share
 * a group; `fromToon` reads the groups back into events in global order.
 *
 * @since 0.1.0
 */
import { decode, encode } from "@toon-format/toon"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { StoredEvent } from "./Event.js"
import { EventId } from "./EventId.js"
import { StreamId } from "./StreamId.js"

/**
 * Text that is not a TOON event history: not TOON at all, or TOON whose rows
 * are not events.
 *
 * @since 0.1.0
 * @category errors
 */
export class ToonDecodeError extends Schema.TaggedError<ToonDecodeError>()("ToonDecodeError", {
  reason: Schema.String
}) {
  override get message() {
    return `Not a TOON event history: ${this.reason}`
  }
}

/**
 * A JSON value, as TOON encodes it.
 *
 * @since 0.1.0
 * @category models
 */
export type Plain = string | number | boolean | null | ReadonlyArray<Plain> | { readonly [key: string]: Plain }

const dataPrefix = "data."
const metaPrefix = "meta."

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Sets an own property, even one named `__proto__`. */
const setOwn = (target: Record<string, unknown>, key: string, value: unknown): void => {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
}

/** Tags as one string: space-separated when that reads back unambiguously, else a JSON array. */
const encodeTags = (tags: ReadonlyArray<string>): string =>
  tags.some((tag) => /\s/.test(tag)) || tags[0]!.startsWith("[") ? JSON.stringify(tags) : tags.join(" ")

const decodeTags = (text: string): unknown => {
  if (text.length === 0) return []
  if (!text.startsWith("[")) return text.split(" ")
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** One event as a flat row (without its type, which names its group). */
const toRow = (event: StoredEvent): Record<string, unknown> => {
  const position = event.globalPosition
  const row: Record<string, unknown> = {
    globalPosition: position <= BigInt(Number.MAX_SAFE_INTEGER) && position >= 0n ? Number(position) : String(position),
    streamId: event.streamId,
    streamVersion: event.streamVersion,
    eventId: event.eventId,
    recordedAt: event.recordedAt.toISOString()
  }
  if (event.schemaVersion !== 1) row.schemaVersion = event.schemaVersion
  if (event.tags.length > 0) row.tags = encodeTags(event.tags)
  if (isRecord(event.data)) {
    for (const [key, value] of Object.entries(event.data)) setOwn(row, dataPrefix + key, value)
  } else {
    row.data = event.data
  }
  for (const [key, value] of Object.entries(event.metadata)) setOwn(row, metaPrefix + key, value)
  return row
}

/**
 * Events as TOON: grouped by type and row shape (in order of first
 * appearance), one table per group when the fields are primitive. Events must
 * be plain stored events (JSON payloads), as stores return them.
 *
 * @since 0.1.0
 * @category encoding
 */
export const toToon = (events: Iterable<StoredEvent>): string => {
  const groups = new Map<string, { readonly type: string; readonly events: Array<Record<string, unknown>> }>()
  for (const event of events) {
    const row = toRow(event)
    const shape = `${event.type}\u0000${Object.keys(row).join("\u0000")}`
    const group = groups.get(shape)
    if (group === undefined) groups.set(shape, { type: event.type, events: [row] })
    else group.events.push(row)
  }
  return encode([...groups.values()])
}

const PositionFromRow = Schema.Union(
  Schema.BigInt,
  Schema.transformOrFail(Schema.Int, Schema.BigIntFromSelf, {
    strict: true,
    decode: (n) => ParseResult.succeed(BigInt(n)),
    encode: (n) => ParseResult.succeed(Number(n))
  })
)

const Envelope = Schema.Struct({
  globalPosition: PositionFromRow.pipe(Schema.filter((p) => p >= 0n, { message: () => "a global position is >= 0" })),
  streamId: StreamId,
  streamVersion: Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)),
  eventId: EventId,
  recordedAt: Schema.DateFromString.pipe(Schema.filter((d) => !Number.isNaN(d.getTime()), { message: () => "a valid time" })),
  schemaVersion: Schema.optionalWith(Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)), { default: () => 1 }),
  tags: Schema.optionalWith(Schema.Array(Schema.NonEmptyString), { default: () => [] })
})
const decodeEnvelope = Schema.decodeUnknownEither(Envelope)

const envelopeKeys = new Set(["globalPosition", "streamId", "streamVersion", "eventId", "recordedAt", "schemaVersion", "tags"])

const fromRow = (type: unknown, row: unknown, where: string): Either.Either<StoredEvent, ToonDecodeError> => {
  const fail = (reason: string) => Either.left(new ToonDecodeError({ reason: `${where}: ${reason}` }))
  if (typeof type !== "string" || type.length === 0) return fail("the group's type must be a non-empty string")
  if (!isRecord(row)) return fail("an event must be an object")
  const envelope: Record<string, unknown> = {}
  const fields: Record<string, unknown> = {}
  const metadata: Record<string, unknown> = {}
  let whole: { readonly value: unknown } | undefined
  for (const [key, value] of Object.entries(row)) {
    if (key === "tags") envelope.tags = typeof value === "string" ? decodeTags(value) : value
    else if (envelopeKeys.has(key)) envelope[key] = value
    else if (key === "data") whole = { value }
    else if (key.startsWith(dataPrefix)) setOwn(fields, key.slice(dataPrefix.length), value)
    else if (key.startsWith(metaPrefix)) setOwn(metadata, key.slice(metaPrefix.length), value)
    else return fail(`unknown field ${JSON.stringify(key)}`)
  }
  if (whole !== undefined && Object.keys(fields).length > 0) return fail(`both data and data.<key> fields`)
  const decoded = decodeEnvelope(envelope)
  if (Either.isLeft(decoded)) return fail(ParseResult.TreeFormatter.formatErrorSync(decoded.left))
  return Either.right({
    eventId: decoded.right.eventId,
    type,
    streamId: decoded.right.streamId,
    streamVersion: decoded.right.streamVersion,
    globalPosition: decoded.right.globalPosition,
    recordedAt: decoded.right.recordedAt,
    schemaVersion: decoded.right.schemaVersion,
    data: whole === undefined ? fields : whole.value,
    metadata,
    tags: decoded.right.tags
  })
}

/**
 * Reads events written by `toToon`, in global order.
 *
 * @example
 * const events = yield* Toon.fromToon(Toon.toToon(history))
 *
 * @since 0.1.0
 * @category decoding
 */
export const fromToon = (text: string): Either.Either<ReadonlyArray<StoredEvent>, ToonDecodeError> => {
  let document: unknown
  try {
    document = decode(text)
  } catch (error) {
    return Either.left(new ToonDecodeError({ reason: error instanceof Error ? error.message : String(error) }))
  }
  if (!Array.isArray(document)) {
    return Either.left(new ToonDecodeError({ reason: "expected a list of event groups ({ type, events })" }))
  }
  const events: Array<StoredEvent> = []
  for (let g = 0; g < document.length; g++) {
    const group: unknown = document[g]
    if (!isRecord(group) || !Array.isArray(group.events)) {
      return Either.left(new ToonDecodeError({ reason: `group ${g + 1}: expected { type, events[] }` }))
    }
    for (let r = 0; r < group.events.length; r++) {
      const event = fromRow(group.type, group.events[r], `group ${g + 1} (${String(group.type)}), event ${r + 1}`)
      if (Either.isLeft(event)) return Either.left(event.left)
      events.push(event.right)
    }
  }
  // stable: events at one position (never in a store) keep their order of appearance
  return Either.right(events.sort((a, b) => (a.globalPosition < b.globalPosition ? -1 : a.globalPosition > b.globalPosition ? 1 : 0)))
}

/**
 * Any value as plain JSON, for encoders that drop what is not JSON: dates
 * become ISO strings, bigints strings, Maps objects (or `[key, value]` pairs
 * when a key is not a string), Sets arrays, values with `toJSON` (Effect's
 * `Option`, `Either`, `HashMap`, …) what it returns, other objects their own
 * enumerable fields; functions and symbols are left out, cycles cut.
 *
 * @since 0.1.0
 * @category encoding
 */
export const toPlain = (value: unknown): Plain => plain(value, new Set())

const plain = (value: unknown, seen: Set<object>): Plain => {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value
    case "number":
      return Number.isFinite(value) ? value : null
    case "bigint":
      return value.toString()
    case "undefined":
    case "function":
    case "symbol":
      return null
  }
  if (value === null) return null
  const object = value as object
  if (object instanceof Date) return Number.isNaN(object.getTime()) ? null : object.toISOString()
  if (seen.has(object)) return "[Circular]"
  seen.add(object)
  try {
    if (Array.isArray(object)) return object.map((item) => plain(item, seen))
    if (object instanceof Set) return [...object].map((item) => plain(item, seen))
    if (object instanceof Map) {
      const entries = [...object.entries()]
      if (entries.every(([key]) => typeof key === "string")) {
        const out: Record<string, Plain> = {}
        for (const [key, item] of entries) setOwn(out, key as string, plain(item, seen))
        return out
      }
      return entries.map(([key, item]) => [plain(key, seen), plain(item, seen)])
    }
    const toJSON = (object as { toJSON?: unknown }).toJSON
    if (typeof toJSON === "function") return plain(toJSON.call(object), seen)
    const out: Record<string, Plain> = {}
    for (const [key, item] of Object.entries(object)) {
      if (typeof item === "function" || typeof item === "symbol" || item === undefined) continue
      setOwn(out, key, plain(item, seen))
    }
    return out
  } finally {
    seen.delete(object)
  }
}

/**
 * A decider's state (or any value) as TOON, through `toPlain`: arrays of
 * uniform records (line items, subscriptions) become tables.
 *
 * @since 0.1.0
 * @category encoding
 */
export const stateToToon = (state: unknown): string => encode(toPlain(state))
