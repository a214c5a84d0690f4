/**
 * The input checks every store gets from `EventStore.make`: stream ids, event
 * batches (ids, types, tags, schema versions), expected versions, queries and
 * read ranges, each refusal a typed error naming what was wrong.
 */
import * as Effect from "effect/Effect"
import type { EventMetadata, NewEvent, PendingEvent } from "../Event.js"
import * as EventId from "../EventId.js"
import type {
  AppendCondition,
  AppendManyOptions,
  LogFilter,
  LogPageOptions,
  LogRange,
  PendingAppend,
  ReadAllOptions,
  ReadOptions,
  SettledCondition,
  StreamAppend,
  StreamRange
} from "../EventStore.js"
import { defaultChunkSize, endOfLog, InvalidArgument, InvalidEvent } from "../EventStore.js"
import * as ExpectedVersion from "../ExpectedVersion.js"
import type * as Query from "../Query.js"
import { InvalidStreamId, type StreamId } from "../StreamId.js"
import { unfitForId, unstorable } from "./text.js"

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const isUuid = (value: unknown): boolean => typeof value === "string" && uuidPattern.test(value)

const invalidEventOf = (streamId: StreamId, index: number, reason: string, path?: string) =>
  new InvalidEvent(path === undefined ? { streamId, index, reason } : { streamId, index, reason, path })

/** Refuses a stream id that is empty or holds control characters or lone surrogates (the brand bypassed). */
export const checkStreamId = (streamId: StreamId): InvalidStreamId | undefined => {
  if (typeof streamId !== "string" || streamId.length === 0) {
    return new InvalidStreamId({ value: String(streamId), reason: "a stream id must be a non-empty string" })
  }
  const problem = unfitForId(streamId)
  return problem === undefined ? undefined : new InvalidStreamId({ value: streamId, reason: `a stream id must not hold ${problem}` })
}

/** The longest tag accepted, in characters. */
const maxTagLength = 256
const noTags: ReadonlyArray<string> = Object.freeze([])

/** Distinct tags, or why they are refused (and which tag). */
const settleTags = (tags: ReadonlyArray<string> | undefined): ReadonlyArray<string> | { readonly reason: string; readonly path?: string } => {
  if (tags === undefined || tags.length === 0) return noTags
  if (!Array.isArray(tags)) return { reason: "tags must be an array of strings" }
  for (let i = 0; i < tags.length; i++) {
    const tag = tags[i]
    if (typeof tag !== "string" || tag.length === 0 || tag.length > maxTagLength) {
      return { reason: `a tag must be a non-empty string of at most ${maxTagLength} characters, got ${JSON.stringify(tag)}`, path: `tags[${i}]` }
    }
    const problem = unstorable(tag)
    if (problem !== undefined) return { reason: `tags[${i}] holds ${problem}`, path: `tags[${i}]` }
  }
  return tags.length === 1 ? tags : [...new Set(tags)]
}

/**
 * Why a query is refused, if it is: it must have items, each of arrays of
 * non-empty type and tag strings, naming at least one type or tag unless it
 * is the every-event item `{}`.
 */
export const checkQuery = (operation: string, argument: string, query: Query.Query): InvalidArgument | undefined => {
  const refuse = (reason: string) => new InvalidArgument({ operation, argument, reason })
  if (typeof query !== "object" || query === null || !Array.isArray(query.items)) return refuse("expected { items: [...] }")
  if (query.items.length === 0) {
    return refuse("a query with no items matches nothing: give at least one item (Query.all for every event)")
  }
  for (const item of query.items) {
    if (typeof item !== "object" || item === null) return refuse("every item must be an object { types?, tags? }")
    for (const key of ["types", "tags"] as const) {
      const values = item[key]
      if (values === undefined) continue
      if (!Array.isArray(values) || values.some((value) => typeof value !== "string" || value.length === 0)) {
        return refuse(`${key} must be arrays of non-empty strings`)
      }
    }
    const lists = (item.types === undefined ? 0 : 1) + (item.tags === undefined ? 0 : 1)
    if (lists > 0 && (item.types?.length ?? 0) === 0 && (item.tags?.length ?? 0) === 0) {
      return refuse("an item with empty types and tags would match every event: name a type or a tag, or use Query.all ({}) for every event")
    }
  }
  return undefined
}

const isExpectedVersion = (value: unknown): value is ExpectedVersion.ExpectedVersion =>
  value === ExpectedVersion.Any || value === ExpectedVersion.NoStream || value === ExpectedVersion.StreamExists ||
  (typeof value === "number" && isNonNegativeInteger(value))

export const checkExpectedVersion = (operation: string, value: unknown): InvalidArgument | undefined =>
  isExpectedVersion(value) ? undefined : new InvalidArgument({
    operation,
    argument: "expectedVersion",
    reason: `must be an integer >= 0, "NoStream", "StreamExists" or "Any", got ${describe(value)}`
  })

export const settleEvents = (
  streamId: StreamId,
  events: ReadonlyArray<NewEvent>,
  metadata: EventMetadata | undefined
): Effect.Effect<ReadonlyArray<PendingEvent>, InvalidEvent> =>
  Effect.suspend(() => {
    const settled = settleEventsNow(streamId, events, metadata)
    return settled instanceof InvalidEvent ? Effect.fail(settled) : Effect.succeed(settled)
  })

/** `settleEvents` outside of Effect: the pending events, or the first problem. */
export const settleEventsNow = (
  streamId: StreamId,
  events: ReadonlyArray<NewEvent>,
  metadata: EventMetadata | undefined
): ReadonlyArray<PendingEvent> | InvalidEvent => {
  const seen = new Set<string>()
  const pending: Array<PendingEvent> = []
  for (let index = 0; index < events.length; index++) {
    const event = events[index]!
    if (typeof event.type !== "string" || event.type.length === 0) {
      return invalidEventOf(streamId, index, "the event type must be a non-empty string", "type")
    }
    const typeProblem = unstorable(event.type)
    if (typeProblem !== undefined) return invalidEventOf(streamId, index, `the event type holds ${typeProblem}`, "type")
    if (event.data === undefined) {
      return invalidEventOf(streamId, index, "the event data must be a JSON value, not undefined")
    }
    const schemaVersion = event.schemaVersion ?? 1
    if (!Number.isSafeInteger(schemaVersion) || schemaVersion < 1) {
      return invalidEventOf(streamId, index, `the schema version must be a positive integer, got ${schemaVersion}`)
    }
    const eventId = event.eventId ?? EventId.unsafeGenerate()
    if (!isUuid(eventId)) {
      return invalidEventOf(streamId, index, `the event id ${JSON.stringify(eventId)} is not a UUID`)
    }
    if (seen.has(eventId)) {
      return invalidEventOf(streamId, index, `event id ${eventId} appears twice in the batch`)
    }
    seen.add(eventId)
    const tags = settleTags(event.tags)
    if ("reason" in tags) return invalidEventOf(streamId, index, tags.reason, tags.path)
    pending.push({
      eventId,
      type: event.type,
      data: event.data,
      metadata: metadata === undefined ? event.metadata ?? {} : { ...metadata, ...event.metadata },
      schemaVersion,
      tags
    })
  }
  return pending
}

const isNonNegativeInteger = (n: number) => Number.isSafeInteger(n) && n >= 0

const describe = (value: unknown): string =>
  typeof value === "string" ? JSON.stringify(value) : typeof value === "bigint" ? `${value}n` : String(value)

/** Refuses `value` unless it is a safe integer >= `min`. */
export const checkInteger = (operation: string, argument: string, value: number, min: number): InvalidArgument | undefined =>
  Number.isSafeInteger(value) && value >= min
    ? undefined
    : new InvalidArgument({ operation, argument, reason: `must be an integer >= ${min}, got ${describe(value)}` })

/** Refuses `value` unless it is a bigint >= 0. */
export const checkPosition = (operation: string, argument: string, value: bigint): InvalidArgument | undefined =>
  typeof value === "bigint" && value >= 0n
    ? undefined
    : new InvalidArgument({ operation, argument, reason: `must be a bigint >= 0n, got ${describe(value)}` })

export const settleRange = (operation: string, options: ReadOptions | undefined): StreamRange | InvalidArgument => {
  const fromVersion = options?.fromVersion ?? 1
  const toVersion = options?.toVersion ?? Number.MAX_SAFE_INTEGER
  const limit = options?.limit ?? Number.MAX_SAFE_INTEGER
  const chunkSize = options?.chunkSize ?? defaultChunkSize
  const direction = options?.direction ?? "forwards"
  const deleted = options?.deleted ?? "read"
  const invalid = checkInteger(operation, "fromVersion", fromVersion, 0) ??
    checkInteger(operation, "toVersion", toVersion, 0) ??
    checkInteger(operation, "limit", limit, 0) ??
    checkInteger(operation, "chunkSize", chunkSize, 1)
  if (invalid !== undefined) return invalid
  if (direction !== "forwards" && direction !== "backwards") {
    return new InvalidArgument({ operation, argument: "direction", reason: `must be "forwards" or "backwards", got ${describe(direction)}` })
  }
  if (deleted !== "read" && deleted !== "hide") {
    return new InvalidArgument({ operation, argument: "deleted", reason: `must be "read" or "hide", got ${describe(deleted)}` })
  }
  return { fromVersion: Math.max(1, fromVersion), toVersion, direction, limit, chunkSize }
}

export const settleLogRange = (
  operation: string,
  fromPosition: bigint,
  options: { readonly limit?: number | undefined; readonly chunkSize?: number | undefined } | undefined
): LogRange | InvalidArgument => {
  const limit = options?.limit ?? Number.MAX_SAFE_INTEGER
  const chunkSize = options?.chunkSize ?? defaultChunkSize
  return checkInteger(operation, "limit", limit, 0) ?? checkInteger(operation, "chunkSize", chunkSize, 1) ??
    { fromPosition, limit, chunkSize }
}

/** Refuses a filter that is not `{ categories?, types?, partition? }`: non-empty lists of non-empty strings, and integers `0 <= member < of`. */
export const checkFilter = (operation: string, filter: LogFilter | undefined): InvalidArgument | undefined => {
  if (filter === undefined) return undefined
  const refuse = (reason: string) => new InvalidArgument({ operation, argument: "filter", reason })
  if (typeof filter !== "object" || filter === null) return refuse("expected { categories?, types?, partition? }")
  for (const key of ["categories", "types"] as const) {
    const values = filter[key]
    if (values === undefined) continue
    if (!Array.isArray(values) || values.some((value) => typeof value !== "string" || value.length === 0)) {
      return refuse(`${key} must be an array of non-empty strings`)
    }
    if (values.length === 0) return refuse(`empty ${key} keep nothing: leave ${key} out to keep every event`)
  }
  const partition: unknown = filter.partition
  if (partition === undefined) return undefined
  const { member, of } = (typeof partition === "object" && partition !== null ? partition : {}) as Record<string, unknown>
  if (!Number.isSafeInteger(of) || (of as number) < 1 || !Number.isSafeInteger(member) || (member as number) < 0 || (member as number) >= (of as number)) {
    return refuse(`partition must be { member, of } with integers 0 <= member < of, got ${describe(partition)}`)
  }
  return undefined
}

/** `ReadAllOptions` settled: the range, its direction and filter; a backwards read starts at the end by default. */
export const settleReadAll = (options: ReadAllOptions | undefined): LogRange | InvalidArgument => {
  const direction = options?.direction ?? "forwards"
  if (direction !== "forwards" && direction !== "backwards") {
    return new InvalidArgument({ operation: "readAll", argument: "direction", reason: `must be "forwards" or "backwards", got ${describe(direction)}` })
  }
  const fromPosition = options?.fromPosition ?? (direction === "forwards" ? 0n : endOfLog)
  const invalid = checkPosition("readAll", "fromPosition", fromPosition) ?? checkFilter("readAll", options?.filter)
  if (invalid !== undefined) return invalid
  const range = settleLogRange("readAll", fromPosition, options)
  if (range instanceof InvalidArgument) return range
  return { ...range, direction, ...filterOf(options?.filter) }
}

/** A checked filter's fields, as a `LogRange` carries them. */
export const filterOf = (filter: LogFilter | undefined): Pick<LogRange, "categories" | "types" | "partition"> => ({
  categories: filter?.categories,
  types: filter?.types,
  partition: filter?.partition === undefined ? undefined : { member: filter.partition.member, of: filter.partition.of }
})

/** `LogPageOptions` settled: a forwards range of one page after `after`. */
export const settleLogPage = (operation: string, options: LogPageOptions | undefined): LogRange | InvalidArgument => {
  const after = options?.after ?? 0n
  const limit = options?.limit ?? defaultChunkSize
  const invalid = checkPosition(operation, "after", after) ?? checkInteger(operation, "limit", limit, 1) ??
    checkFilter(operation, options?.filter)
  if (invalid !== undefined) return invalid
  return { fromPosition: after + 1n, limit, chunkSize: limit, ...filterOf(options?.filter) }
}


/** A condition with its defaults filled in. */
export const settleCondition = (condition: AppendCondition | undefined): SettledCondition | undefined =>
  condition === undefined
    ? undefined
    : { failIfEventsMatch: condition.failIfEventsMatch, after: condition.after ?? 0n, token: condition.token }

/**
 * The checks of `appendMany`: at least one append, each stream once, every
 * stream id, expected version and event as `append` checks them, an event id
 * once in the whole call, and the condition.
 */
export const settleAppends = (
  appends: ReadonlyArray<StreamAppend>,
  options: AppendManyOptions | undefined
): Effect.Effect<ReadonlyArray<PendingAppend>, InvalidArgument | InvalidEvent | InvalidStreamId> =>
  Effect.gen(function*() {
    const refuse = (argument: string, reason: string) => new InvalidArgument({ operation: "appendMany", argument, reason })
    if (!Array.isArray(appends) || appends.length === 0) return yield* refuse("appends", "give at least one { streamId, events, expectedVersion }")
    const condition = options?.condition
    if (condition !== undefined) {
      const invalid = checkQuery("appendMany", "condition.failIfEventsMatch", condition.failIfEventsMatch) ??
        checkPosition("appendMany", "condition.after", condition.after ?? 0n)
      if (invalid !== undefined) return yield* invalid
    }
    const streams = new Set<string>()
    const ids = new Set<string>()
    const pending: Array<PendingAppend> = []
    for (let i = 0; i < appends.length; i++) {
      const { events, expectedVersion, streamId } = appends[i]!
      const invalid = checkStreamId(streamId) ?? checkExpectedVersion("appendMany", expectedVersion)
      if (invalid !== undefined) return yield* invalid
      if (streams.has(streamId)) return yield* refuse(`appends[${i}].streamId`, `stream ${streamId} appears twice: give each stream once`)
      streams.add(streamId)
      if (!Array.isArray(events)) return yield* refuse(`appends[${i}].events`, "must be an array of events")
      const settled = yield* settleEvents(streamId, events, options?.metadata)
      for (let index = 0; index < settled.length; index++) {
        const eventId = settled[index]!.eventId
        if (ids.has(eventId)) {
          return yield* new InvalidEvent({ streamId, index, reason: `event id ${eventId} appears twice in the call` })
        }
        ids.add(eventId)
      }
      pending.push({ streamId, events: settled, expectedVersion })
    }
    return pending
  })
