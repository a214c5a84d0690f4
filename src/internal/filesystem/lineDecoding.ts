/**
 * Decoding the event of a log line from its bytes, in one pass: the fields
 * of the envelope are found by walking the event's JSON once (no string of
 * the whole line, no `JSON.parse` of it), numbers and strings are read where
 * they lie, and only `metadata` and `data` go through `JSON.parse`, each on
 * its own slice (`metadata` not at all for a payload). The writer writes no
 * whitespace; an event laid out otherwise, or missing a field, is left to the
 * caller (`undefined`), which parses it whole.
 */
import type { EventPayload, StoredEvent } from "../../Event.js"
import type { EventId } from "../../EventId.js"
import type { StreamId } from "../../StreamId.js"

const quote = 0x22
const backslash = 0x5c
const colon = 0x3a
const comma = 0x2c
const openBrace = 0x7b
const closeBrace = 0x7d
const openBracket = 0x5b
const closeBracket = 0x5d
const zero = 0x30

/** The fields of an event line (named as in the line), as slots of the span table. */
const Field = {
  globalPosition: 0, streamId: 1, streamVersion: 2, eventId: 3, type: 4, schemaVersion: 5,
  recordedAt: 6, batch: 7, tags: 8, at: 9, metadata: 10, data: 11
} as const
type Field = typeof Field[keyof typeof Field]

const fieldNames: ReadonlyArray<readonly [Field, Buffer]> = Object.entries(Field).map(([name, field]) => [field, Buffer.from(name)] as const)

/** The known fields by name length, for a key to be compared with only those of its length. */
const byLength: ReadonlyArray<ReadonlyArray<readonly [Field, Buffer]>> = Array.from(
  { length: 15 },
  (_, length) => fieldNames.filter(([, name]) => name.length === length)
)

/** Where each field's value starts and ends (exclusive) in the line: -1 when absent. Reused: decoding is synchronous. */
const spans = new Int32Array(2 * (Field.data + 1))

/** The field whose name lies between `from` and `to`, or -1 for a name the writer does not write. */
const fieldAt = (bytes: Buffer, from: number, to: number): number => {
  const candidates = byLength[to - from]
  if (candidates === undefined) return -1
  for (let c = 0; c < candidates.length; c++) {
    const name = candidates[c]![1]
    let i = 0
    while (i < name.length && bytes[from + i] === name[i]) i++
    if (i === name.length) return candidates[c]![0]
  }
  return -1
}

/** The end (exclusive) of the string whose opening quote is at `at`, or -1. */
const stringEnd = (bytes: Buffer, at: number, to: number): number => {
  for (let i = at + 1; i < to; i++) {
    const c = bytes[i]
    if (c === backslash) i++
    else if (c === quote) return i + 1
  }
  return -1
}

/** The end (exclusive) of the JSON value starting at `at`, or -1. */
const valueEnd = (bytes: Buffer, at: number, to: number): number => {
  const first = bytes[at]
  if (first === quote) return stringEnd(bytes, at, to)
  if (first === openBrace || first === openBracket) {
    let depth = 0
    for (let i = at; i < to; i++) {
      const c = bytes[i]
      if (c === quote) {
        const end = stringEnd(bytes, i, to)
        if (end === -1) return -1
        i = end - 1
      } else if (c === openBrace || c === openBracket) depth++
      else if ((c === closeBrace || c === closeBracket) && --depth === 0) return i + 1
    }
    return -1
  }
  for (let i = at; i < to; i++) {
    const c = bytes[i]
    if (c === comma || c === closeBrace || c === closeBracket) return i === at ? -1 : i
  }
  return -1
}

/**
 * Finds the fields of the event object from `from` (its brace) up to `to`
 * (after its closing brace) into `spans`. `data`, which the writer puts
 * last, is taken to run to the closing brace without a walk through it:
 * parsing it tells (see `dataOf`).
 */
const walk = (bytes: Buffer, from: number, to: number): boolean => {
  spans.fill(-1)
  if (bytes[from] !== openBrace || bytes[to - 1] !== closeBrace) return false
  let i = from + 1
  for (;;) {
    if (bytes[i] !== quote) return false
    const nameEnd = stringEnd(bytes, i, to)
    if (nameEnd === -1 || bytes[nameEnd] !== colon) return false
    const field = fieldAt(bytes, i + 1, nameEnd - 1)
    if (field === Field.data) {
      spans[2 * field] = nameEnd + 1
      spans[2 * field + 1] = to - 1
      return true
    }
    const end = valueEnd(bytes, nameEnd + 1, to - 1)
    if (end === -1) return false
    if (field !== -1) {
      spans[2 * field] = nameEnd + 1
      spans[2 * field + 1] = end
    }
    if (end === to - 1) return true
    if (bytes[end] !== comma) return false
    i = end + 1
  }
}

/** The keys as the writer writes them, each with the byte before it. */
const keyOf = (name: string, before: string) => Buffer.from(`${before}"${name}":`)
const layout = {
  globalPosition: keyOf("globalPosition", "{"),
  streamId: keyOf("streamId", ","),
  streamVersion: keyOf("streamVersion", ","),
  eventId: keyOf("eventId", ","),
  type: keyOf("type", ","),
  schemaVersion: keyOf("schemaVersion", ","),
  recordedAt: keyOf("recordedAt", ","),
  batch: keyOf("batch", ","),
  tags: keyOf("tags", ","),
  at: keyOf("at", ","),
  metadata: keyOf("metadata", ","),
  data: keyOf("data", ",")
}

/** Whether `key` lies at `at`. */
const keyAt = (bytes: Buffer, at: number, key: Buffer): boolean => {
  for (let i = 0; i < key.length; i++) if (bytes[at + i] !== key[i]) return false
  return true
}

/** The end (exclusive) of the digits from `at`, or -1 when there are none. */
const digitsEnd = (bytes: Buffer, at: number, to: number): number => {
  let i = at
  while (i < to) {
    const c = bytes[i]!
    if (c < zero || c > zero + 9) break
    i++
  }
  return i === at ? -1 : i
}

/** How a field's value is found: digits, a string, or any JSON value. */
type ValueKind = 0 | 1 | 2
const digits: ValueKind = 0
const text: ValueKind = 1
const json: ValueKind = 2

/** The writer's fields in its order: key, value kind, whether the field may be absent. */
const order: ReadonlyArray<readonly [Field, Buffer, ValueKind, boolean]> = [
  [Field.globalPosition, layout.globalPosition, digits, false],
  [Field.streamId, layout.streamId, text, false],
  [Field.streamVersion, layout.streamVersion, digits, false],
  [Field.eventId, layout.eventId, text, false],
  [Field.type, layout.type, text, false],
  [Field.schemaVersion, layout.schemaVersion, digits, false],
  [Field.recordedAt, layout.recordedAt, text, false],
  [Field.batch, layout.batch, json, false],
  [Field.tags, layout.tags, json, true],
  [Field.at, layout.at, digits, true],
  [Field.metadata, layout.metadata, json, false]
]

/**
 * `walk` for a line laid out exactly as the writer lays lines out (its
 * fields in its order, integers as digits): each key is compared where it
 * must be instead of read and looked up. False for any other layout, which
 * `walk` then reads.
 */
const walkLayout = (bytes: Buffer, from: number, to: number): boolean => {
  if (bytes[to - 1] !== closeBrace) return false
  let i = from
  for (let f = 0; f < order.length; f++) {
    const [field, key, kind, optional] = order[f]!
    if (!keyAt(bytes, i, key)) {
      if (optional) {
        spans[2 * field] = -1
        spans[2 * field + 1] = -1
        continue
      }
      return false
    }
    const start = i + key.length
    const end = kind === digits
      ? digitsEnd(bytes, start, to)
      : kind === text
      ? bytes[start] === quote ? stringEnd(bytes, start, to) : -1
      : valueEnd(bytes, start, to - 1)
    if (end === -1) return false
    spans[2 * field] = start
    spans[2 * field + 1] = end
    i = end
  }
  if (!keyAt(bytes, i, layout.data)) return false
  spans[2 * Field.data] = i + layout.data.length
  spans[2 * Field.data + 1] = to - 1
  return true
}

const has = (field: Field) => spans[2 * field]! !== -1

/** The number of `field`, as `JSON.parse` reads it. */
const numberOf = (bytes: Buffer, field: Field): number => {
  const from = spans[2 * field]!
  const to = spans[2 * field + 1]!
  if (to - from <= 15 && (bytes[from] !== zero || to - from === 1)) {
    let n = 0
    let i = from
    for (; i < to; i++) {
      const digit = bytes[i]! - zero
      if (digit < 0 || digit > 9) break
      n = n * 10 + digit
    }
    if (i === to) return n
  }
  return Number(bytes.toString("latin1", from, to))
}

/** The JSON value of `field`, parsed on its own. */
const jsonOf = (bytes: Buffer, field: Field): unknown => JSON.parse(bytes.toString("utf8", spans[2 * field]!, spans[2 * field + 1]!))

/** The payload, or `walk`'s guess of its end wrong (another field after it): undefined. */
const dataOf = (bytes: Buffer): { readonly value: unknown } | undefined => {
  try {
    return { value: jsonOf(bytes, Field.data) }
  } catch {
    return undefined
  }
}

/** The string of `field`: its bytes as they are unless it holds an escape. */
const stringOf = (bytes: Buffer, field: Field): string => {
  const from = spans[2 * field]!
  const to = spans[2 * field + 1]!
  for (let i = from + 1; i < to - 1; i++) if (bytes[i] === backslash) return JSON.parse(bytes.toString("utf8", from, to)) as string
  return bytes.toString("utf8", from + 1, to - 1)
}

/** The last string read of a field, by its bytes: lines in a row mostly name the same stream and few types. */
interface Recent {
  bytes: Buffer
  value: string
}

const recentStream: Recent = { bytes: Buffer.alloc(0), value: "" }
const recentType: Recent = { bytes: Buffer.alloc(0), value: "" }

/** The string of `field`, the one read last when its bytes are the same (no new string). */
const recentStringOf = (bytes: Buffer, field: Field, recent: Recent): string => {
  const from = spans[2 * field]!
  const to = spans[2 * field + 1]!
  const known = recent.bytes
  if (known.length === to - from) {
    let i = 0
    while (i < known.length && known[i] === bytes[from + i]) i++
    if (i === known.length) return recent.value
  }
  const value = stringOf(bytes, field)
  if (to - from <= 256) {
    recent.bytes = Buffer.from(bytes.subarray(from, to))
    recent.value = value
  }
  return value
}

/** Whether `field` holds a string (or a number: not a string, an array or an object). */
const isString = (bytes: Buffer, field: Field) => bytes[spans[2 * field]!] === quote
const isNumber = (bytes: Buffer, field: Field) => {
  const first = bytes[spans[2 * field]!]!
  return first !== quote && first !== openBrace && first !== openBracket
}

const noTags: ReadonlyArray<string> = Object.freeze([])

/** The batch field `[index, size]`, or undefined when it is not two numbers. */
const batchOf = (bytes: Buffer): readonly [number, number] | undefined => {
  const parsed = jsonOf(bytes, Field.batch) as [number, number]
  return Array.isArray(parsed) && typeof parsed[0] === "number" && typeof parsed[1] === "number" ? parsed : undefined
}

/**
 * The event of the line whose event object lies from `from` to `to` in
 * `bytes` (checksum already verified), with its batch and `at`; undefined
 * when it is not laid out as the writer lays lines out.
 */
export const eventIn = (bytes: Buffer, from: number, to: number): {
  readonly event: StoredEvent
  readonly batchIndex: number
  readonly batchSize: number
  readonly at?: number | undefined
} | undefined => {
  if (
    !(walkLayout(bytes, from, to) || walk(bytes, from, to)) || !has(Field.globalPosition) || !isNumber(bytes, Field.globalPosition) ||
    !has(Field.streamId) || !isString(bytes, Field.streamId) || !has(Field.streamVersion) || !isNumber(bytes, Field.streamVersion) ||
    !has(Field.eventId) || !isString(bytes, Field.eventId) || !has(Field.type) || !isString(bytes, Field.type) ||
    !has(Field.schemaVersion) || !isNumber(bytes, Field.schemaVersion) || !has(Field.recordedAt) ||
    !isString(bytes, Field.recordedAt) || !has(Field.batch) || !has(Field.metadata) || !has(Field.data) ||
    (has(Field.at) && !isNumber(bytes, Field.at))
  ) return undefined
  const batch = batchOf(bytes)
  const data = dataOf(bytes)
  if (batch === undefined || data === undefined) return undefined
  const event: StoredEvent = {
    eventId: stringOf(bytes, Field.eventId) as EventId,
    type: recentStringOf(bytes, Field.type, recentType),
    streamId: recentStringOf(bytes, Field.streamId, recentStream) as StreamId,
    streamVersion: numberOf(bytes, Field.streamVersion),
    globalPosition: BigInt(numberOf(bytes, Field.globalPosition)),
    recordedAt: new Date(stringOf(bytes, Field.recordedAt)),
    schemaVersion: numberOf(bytes, Field.schemaVersion),
    data: data.value,
    metadata: jsonOf(bytes, Field.metadata) as StoredEvent["metadata"],
    tags: has(Field.tags) ? jsonOf(bytes, Field.tags) as ReadonlyArray<string> : noTags
  }
  return has(Field.at)
    ? { event, batchIndex: batch[0], batchSize: batch[1], at: numberOf(bytes, Field.at) }
    : { event, batchIndex: batch[0], batchSize: batch[1] }
}

/**
 * What a fold needs of the line whose event object lies from `from` to `to`
 * in `bytes` (checksum already verified): metadata, time, id and position
 * are skipped, not decoded. Undefined when it is not laid out as the writer
 * lays lines out.
 */
export const payloadIn = (bytes: Buffer, from: number, to: number): EventPayload | undefined => {
  if (
    !(walkLayout(bytes, from, to) || walk(bytes, from, to)) || !has(Field.streamId) || !isString(bytes, Field.streamId) || !has(Field.streamVersion) ||
    !isNumber(bytes, Field.streamVersion) || !has(Field.type) || !isString(bytes, Field.type) ||
    !has(Field.schemaVersion) || !isNumber(bytes, Field.schemaVersion) || !has(Field.data)
  ) return undefined
  const data = dataOf(bytes)
  if (data === undefined) return undefined
  return {
    streamId: recentStringOf(bytes, Field.streamId, recentStream) as StreamId,
    streamVersion: numberOf(bytes, Field.streamVersion),
    type: recentStringOf(bytes, Field.type, recentType),
    schemaVersion: numberOf(bytes, Field.schemaVersion),
    data: data.value
  }
}

const schemaVersionKey = keyOf("schemaVersion", ",")

const typeKeys = new Map<string, Buffer>()

/** A type name as the writer writes it, after its key: `"type":"…"` (kept for the next line of the type). */
export const typeKeyOf = (type: string): Buffer => {
  let key = typeKeys.get(type)
  if (key === undefined) {
    key = Buffer.from(`"type":${JSON.stringify(type)}`)
    if (typeKeys.size >= 4096) typeKeys.clear()
    typeKeys.set(type, key)
  }
  return key
}

/**
 * What a fold needs of the line whose event object lies from `from` to
 * `to` (checksum already verified), when the index gives its stream,
 * version and type: only `schemaVersion` and `data` are read. The keys are
 * found by search: none can occur unescaped inside the envelope's strings
 * before them, and `schemaVersion` must follow the type the index names
 * (`typeKey`, from `typeKeyOf`). Undefined when the line is not laid out so.
 */
export const knownPayloadIn = (
  bytes: Buffer,
  from: number,
  to: number,
  streamId: StreamId,
  streamVersion: number,
  typeKey: Buffer,
  type: string
): EventPayload | undefined => {
  const versionKey = bytes.indexOf(schemaVersionKey, from)
  if (versionKey === -1 || versionKey >= to || !keyAt(bytes, versionKey - typeKey.length, typeKey)) return undefined
  const versionStart = versionKey + schemaVersionKey.length
  const versionEnd = digitsEnd(bytes, versionStart, to)
  if (versionEnd === -1 || bytes[versionEnd] !== comma) return undefined
  const metadataKey = bytes.indexOf(layout.metadata, versionEnd)
  if (metadataKey === -1 || metadataKey >= to) return undefined
  const metadataEnd = valueEnd(bytes, metadataKey + layout.metadata.length, to - 1)
  if (metadataEnd === -1 || !keyAt(bytes, metadataEnd, layout.data)) return undefined
  spans[2 * Field.schemaVersion] = versionStart
  spans[2 * Field.schemaVersion + 1] = versionEnd
  spans[2 * Field.data] = metadataEnd + layout.data.length
  spans[2 * Field.data + 1] = to - 1
  const data = dataOf(bytes)
  return data === undefined
    ? undefined
    : { streamId, streamVersion, type, schemaVersion: numberOf(bytes, Field.schemaVersion), data: data.value }
}
