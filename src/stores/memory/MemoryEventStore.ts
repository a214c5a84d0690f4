/**
 * An in-memory event store: the whole contract, nothing persisted. For tests
 * and for trying things out. Payloads are serialised on append (so what is
 * stored is what a durable store would store, and oversized or non-JSON events
 * fail the same way) and handed out deep-frozen.
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { PendingEvent, StoredEvent } from "../../Event.js"
import * as EventStore from "../../EventStore.js"
import * as ExpectedVersion from "../../ExpectedVersion.js"
import * as Query from "../../Query.js"
import { planAppend, planAppendMany } from "../../internal/appendPlan.js"
import { defaultMaxEventBytes, type SerializedEvent, serializeEvent } from "../../internal/serialize.js"
import type { TagIndex } from "../../internal/tagIndex.js"
import { addTags, matchingSlots } from "../../internal/tagIndex.js"
import { keeps } from "../../internal/logFilter.js"
import type { StreamId } from "../../StreamId.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryEventStoreOptions {
  /** Largest accepted event (UTF-8 bytes of data plus metadata); default 1 MiB. */
  readonly maxEventBytes?: number | undefined
}

const deepFreeze = <A>(value: A): A => {
  // Object.isFrozen holds of every primitive and of null: only unfrozen objects and arrays get past it
  if (!Object.isFrozen(value)) {
    Object.freeze(value)
    for (const key of Object.keys(value as object)) deepFreeze((value as Record<string, unknown>)[key])
  }
  return value
}

/**
 * Lazily emits `count` items of `items` starting at index `start`, stepping by
 * `step` (1 or -1), `chunkSize` at a time.
 */
const slices = <A>(
  items: ReadonlyArray<A>,
  start: number,
  count: number,
  step: 1 | -1,
  chunkSize: number
): Stream.Stream<A> =>
  Stream.unfoldChunk(0, (emitted) => {
    if (emitted >= count) return Option.none()
    const size = Math.min(chunkSize, count - emitted)
    const out = new Array<A>(size)
    for (let i = 0; i < size; i++) out[i] = items[start + step * (emitted + i)]!
    return Option.some([Chunk.unsafeFromArray(out), emitted + size])
  })

/**
 * Builds an empty in-memory store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: MemoryEventStoreOptions = {}): Effect.Effect<EventStore.EventStoreService> =>
  Effect.sync(() => {
    const maxBytes = options.maxEventBytes ?? defaultMaxEventBytes
    /** The global log; erased events leave holes (positions may have gaps). */
    const log: Array<StoredEvent | undefined> = []
    const streams = new Map<StreamId, Array<StoredEvent>>()
    const byId = new Map<string, StoredEvent>()
    /** Deleted streams and their version when deleted. */
    const tombstones = new Map<StreamId, number>()
    const watchers = new Set<() => void>()
    const tagged: TagIndex = new Map()

    /** The events from slot `from` up to `end` that match `query`, in order, at most `limit`: by tag where the query has tags. */
    const matching = (query: Query.Query, from: number, end: number, limit: number): Array<StoredEvent> =>
      matchingSlots(tagged, query, from, end, limit, (slot) => {
        const event = log[slot]
        return event !== undefined && Query.matches(query, event)
      }).map((slot) => log[slot]!)

    /** The first event after `condition.after` matching its query, if any. */
    const firstMatch = (condition: EventStore.SettledCondition) =>
      matching(condition.failIfEventsMatch, Math.min(Number(condition.after), log.length), log.length, 1)[0]

    const append = (
      streamId: StreamId,
      events: ReadonlyArray<PendingEvent>,
      expected: ExpectedVersion.ExpectedVersion,
      condition: EventStore.SettledCondition | undefined
    ) =>
      Effect.clockWith((clock) =>
        Effect.suspend((): Effect.Effect<EventStore.AppendResult, EventStore.AppendError> => {
          const stream = streams.get(streamId)
          const currentVersion = stream?.length ?? 0
          const plan = planAppend(streamId, events, expected, currentVersion, (id) => byId.get(id))
          if (Either.isRight(plan) && plan.right._tag === "AlreadyStored") return Effect.succeed(plan.right.result)
          if (tombstones.has(streamId)) return Effect.fail(new EventStore.StreamDeleted({ streamId }))
          if (Either.isLeft(plan)) return Effect.fail(plan.left)
          const conflicting = condition === undefined ? undefined : firstMatch(condition)
          if (conflicting !== undefined) {
            return Effect.fail(
              new EventStore.AppendConditionFailed({
                streamId,
                query: condition!.failIfEventsMatch,
                after: condition!.after,
                position: conflicting.globalPosition
              })
            )
          }

          const serialized = serializeAll(streamId, events)
          if (Either.isLeft(serialized)) return Effect.fail(serialized.left)
          const result = store(streamId, events, serialized.right, new Date(clock.unsafeCurrentTimeMillis()))
          if (events.length > 0) for (const onChange of watchers) onChange()
          return Effect.succeed(result)
        })
      )

    const serializeAll = (
      streamId: StreamId,
      events: ReadonlyArray<PendingEvent>
    ): Either.Either<Array<SerializedEvent>, EventStore.EventTooLarge | EventStore.InvalidEvent> => {
      const serialized: Array<SerializedEvent> = []
      for (let i = 0; i < events.length; i++) {
        const result = serializeEvent(streamId, i, events[i]!, maxBytes)
        if (Either.isLeft(result)) return Either.left(result.left)
        serialized.push(result.right)
      }
      return Either.right(serialized)
    }

    /** Stores checked, serialised events at the end of the log. */
    const store = (
      streamId: StreamId,
      events: ReadonlyArray<PendingEvent>,
      serialized: ReadonlyArray<{ readonly data: string; readonly metadata: string }>,
      recordedAt: Date
    ): EventStore.AppendResult => {
      const stream = streams.get(streamId)
      const currentVersion = stream?.length ?? 0
      const target = stream ?? []
      const globalPositions: Array<bigint> = []
      for (let i = 0; i < events.length; i++) {
        const event = events[i]!
        const stored: StoredEvent = deepFreeze({
          eventId: event.eventId,
          type: event.type,
          streamId,
          streamVersion: currentVersion + i + 1,
          globalPosition: BigInt(log.length + 1),
          recordedAt,
          schemaVersion: event.schemaVersion,
          data: JSON.parse(serialized[i]!.data),
          metadata: JSON.parse(serialized[i]!.metadata),
          tags: [...event.tags]
        })
        addTags(tagged, log.length, stored.tags)
        log.push(stored)
        target.push(stored)
        byId.set(stored.eventId, stored)
        globalPositions.push(stored.globalPosition)
      }
      if (stream === undefined && target.length > 0) streams.set(streamId, target)
      return { streamId, streamVersion: target.length, globalPositions }
    }

    const appendMany = (appends: ReadonlyArray<EventStore.PendingAppend>, condition: EventStore.SettledCondition | undefined) =>
      Effect.clockWith((clock) =>
        Effect.suspend((): Effect.Effect<ReadonlyArray<EventStore.AppendResult>, EventStore.AppendError> => {
          const plan = planAppendMany(
            appends,
            (streamId) => streams.get(streamId)?.length ?? 0,
            (streamId) => tombstones.has(streamId),
            (id) => byId.get(id)
          )
          if (Either.isLeft(plan)) return Effect.fail(plan.left)
          if (plan.right._tag === "AlreadyStored") return Effect.succeed(plan.right.results)
          const conflicting = condition === undefined ? undefined : firstMatch(condition)
          if (conflicting !== undefined) {
            return Effect.fail(
              new EventStore.AppendConditionFailed({
                streamId: appends[0]!.streamId,
                query: condition!.failIfEventsMatch,
                after: condition!.after,
                position: conflicting.globalPosition
              })
            )
          }
          const serialized: Array<Array<SerializedEvent>> = []
          for (const { events, streamId } of appends) {
            const result = serializeAll(streamId, events)
            if (Either.isLeft(result)) return Effect.fail(result.left)
            serialized.push(result.right)
          }
          const recordedAt = new Date(clock.unsafeCurrentTimeMillis())
          const results = appends.map(({ events, streamId }, i) => store(streamId, events, serialized[i]!, recordedAt))
          if (results.some((result) => result.globalPositions.length > 0)) for (const onChange of watchers) onChange()
          return Effect.succeed(results)
        })
      )

    const read = (streamId: StreamId, range: EventStore.StreamRange) =>
      Stream.suspend(() => {
        const events = streams.get(streamId) ?? []
        const low = range.fromVersion
        const high = Math.min(range.toVersion, events.length)
        const count = Math.max(0, Math.min(range.limit, high - low + 1))
        return range.direction === "forwards"
          ? slices(events, low - 1, count, 1, range.chunkSize)
          : slices(events, high - 1, count, -1, range.chunkSize)
      })

    /** Each stream's partition hash, computed once. */
    const hashes = new Map<string, number>()

    const readAll = (range: EventStore.LogRange) =>
      Stream.suspend(() => {
        const end = log.length
        const kept = keeps(range, hashes)
        const backwards = range.direction === "backwards"
        // log[i] holds position i + 1 (erased events leave holes)
        const first = range.fromPosition > BigInt(end) ? end + 1 : Number(range.fromPosition)
        const start = backwards ? Math.min(first, end) - 1 : Math.max(first, 1) - 1
        return Stream.unfoldChunk({ next: start, remaining: range.limit }, ({ next, remaining }) => {
          const out: Array<StoredEvent> = []
          let i = next
          const wanted = Math.min(range.chunkSize, remaining)
          while ((backwards ? i >= 0 : i < end) && out.length < wanted) {
            const event = log[backwards ? i-- : i++]
            if (event !== undefined && (kept === undefined || kept(event.streamId, event.type))) out.push(event)
          }
          return out.length === 0
            ? Option.none()
            : Option.some([Chunk.unsafeFromArray(out), { next: i, remaining: remaining - out.length }])
        })
      })

    const readLogPage = (range: EventStore.LogRange) =>
      Effect.sync((): EventStore.LogPage => {
        const end = log.length
        const kept = keeps(range, hashes)
        const events: Array<StoredEvent> = []
        let i = Math.max(1, Number(range.fromPosition > BigInt(end) ? end + 1 : range.fromPosition)) - 1
        while (i < end && events.length < range.limit) {
          const event = log[i++]
          if (event !== undefined && (kept === undefined || kept(event.streamId, event.type))) events.push(event)
        }
        // log[i - 1] holds position i: the page looked at every position up to i
        const through = events.length === range.limit ? events.at(-1)!.globalPosition : BigInt(i)
        return { events, through: through < range.fromPosition - 1n ? range.fromPosition - 1n : through }
      })

    // bounded by the log as it is when the read starts: later appends are not part of it
    const query = (query: Query.Query, range: EventStore.QueryRange) =>
      Stream.suspend(() => {
        const end = log.length
        return Stream.unfoldChunk({ next: Math.min(Number(range.after), end), remaining: range.limit }, ({ next, remaining }) => {
          const out = matching(query, next, end, Math.min(range.chunkSize, remaining))
          return out.length === 0
            ? Option.none()
            : Option.some([
              Chunk.unsafeFromArray(out),
              { next: Number(out.at(-1)!.globalPosition), remaining: remaining - out.length }
            ])
        })
      })

    const deleteStream = (streamId: StreamId, expected: ExpectedVersion.ExpectedVersion, erase: boolean) =>
      Effect.suspend(() => {
        const stream = streams.get(streamId)
        const version = stream?.length ?? tombstones.get(streamId) ?? 0
        if (!tombstones.has(streamId)) {
          if (!ExpectedVersion.matches(expected, version)) {
            return Effect.fail(new EventStore.ConcurrencyConflict({ streamId, expected, actual: version }))
          }
          tombstones.set(streamId, version)
        }
        if (erase && stream !== undefined) {
          for (const event of stream) {
            log[Number(event.globalPosition) - 1] = undefined
            byId.delete(event.eventId)
          }
          streams.delete(streamId)
        }
        return Effect.void
      })

    return EventStore.make({
      name: "memory",
      append,
      appendMany,
      read,
      readAll,
      readLogPage,
      query,
      headPosition: Effect.sync(() => {
        let last = log.length
        while (last > 0 && log[last - 1] === undefined) last--
        return BigInt(last)
      }),
      watch: (onChange) =>
        Effect.acquireRelease(
          Effect.sync(() => watchers.add(onChange)),
          () => Effect.sync(() => watchers.delete(onChange))
        ),
      pollInterval: "1 second",
      readPage: (streamId, page) =>
        Effect.sync(() => {
          const events = streams.get(streamId) ?? []
          const from = Math.max(1, page.fromVersion)
          const to = Math.min(page.toVersion, events.length, from + page.limit - 1)
          return from > to ? [] : events.slice(from - 1, to)
        }),
      streamVersion: (streamId) => Effect.sync(() => streams.get(streamId)?.length ?? tombstones.get(streamId) ?? 0),
      deleteStream,
      isDeleted: (streamId) => Effect.sync(() => tombstones.has(streamId))
    })
  })

/**
 * A fresh, empty in-memory store each time the layer is built.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: MemoryEventStoreOptions = {}): Layer.Layer<EventStore.EventStore> =>
  Layer.effect(EventStore.EventStore, make(options))

/**
 * `layer` with its options read from `Config`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<MemoryEventStoreOptions>
): Layer.Layer<EventStore.EventStore, ConfigError.ConfigError> => Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
