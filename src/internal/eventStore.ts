/**
 * The EventStore service built around a store's driver: input checks,
 * defaults, spans, metrics and the subscription loop, the same for every store.
 */
import * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import type {
  AppendError,
  AppendResult,
  ConcurrencyConflict,
  DecisionRead,
  Driver,
  EventStoreService,
  FoldPage,
  LogPage,
  LogRange,
  ReadError,
  ReadOptions,
  StoreError,
  StreamRange,
  SubscribeOptions
} from "../EventStore.js"
import { defaultChunkSize, defaultPollInterval, InvalidArgument, InvalidEvent } from "../EventStore.js"
import * as ExpectedVersion from "../ExpectedVersion.js"
import * as Metrics from "../Metrics.js"
import * as Query from "../Query.js"
import { InvalidStreamId, type StreamId } from "../StreamId.js"
import {
  checkExpectedVersion,
  checkInteger,
  checkPosition,
  checkQuery,
  checkStreamId,
  settleEventsNow,
  checkFilter,
  filterOf,
  settleLogPage,
  settleLogRange,
  settleAppends,
  settleCondition,
  settleRange,
  settleReadAll
} from "./eventStoreInput.js"

/** The span options of a store operation: a client span tagged with the store's name. */
const storeSpan = (store: string, attributes: Record<string, unknown> = {}) => ({
  kind: "client" as const,
  captureStackTrace: false,
  attributes: { "chronicle.store": store, ...attributes }
})

/**
 * A counter tagged with the store, updated in place with the fiber's metric
 * labels. The same label array each time finds the registry's hook in its
 * cache; `Metric.tagged` builds (and hashes) a new key on every update.
 */
const storeCounter = (metric: Metric.Metric.Counter<number>, store: string) => {
  const own: ReadonlyArray<MetricLabel.MetricLabel> = [MetricLabel.make("store", store)]
  const withFiberLabels = new WeakMap<ReadonlyArray<MetricLabel.MetricLabel>, ReadonlyArray<MetricLabel.MetricLabel>>()
  return (amount: number, labels: ReadonlyArray<MetricLabel.MetricLabel>) => {
    let tags = own
    if (labels.length > 0) {
      tags = withFiberLabels.get(labels) ?? Arr.union(own, labels)
      withFiberLabels.set(labels, tags)
    }
    metric.unsafeUpdate(amount, tags)
  }
}

/**
 * One forwards page of `range` from the driver, with how far it looked; a
 * driver without `readLogPage` reads it with `readAll`, up to its last event.
 */
const pageOf = (driver: Driver) => (range: LogRange): Effect.Effect<LogPage, StoreError> =>
  driver.readLogPage !== undefined
    ? driver.readLogPage(range)
    : Effect.map(Stream.runCollect(driver.readAll(range)), (chunk) => {
      const events = Chunk.toReadonlyArray(chunk)
      return { events, through: events.at(-1)?.globalPosition ?? range.fromPosition - 1n }
    })

const followLog = (driver: Driver, options: SubscribeOptions | undefined): Stream.Stream<LogPage, ReadError> => {
  const after = options?.after ?? 0n
  const chunkSize = options?.chunkSize ?? defaultChunkSize
  const invalid = checkPosition("subscribe", "after", after) ?? checkInteger("subscribe", "chunkSize", chunkSize, 1) ??
    checkFilter("subscribe", options?.filter)
  if (invalid !== undefined) return Stream.fail(invalid)
  const filter = filterOf(options?.filter)
  const pollInterval = Duration.decode(options?.pollInterval ?? driver.pollInterval ?? defaultPollInterval)
  const delivered = Metric.tagged(Metrics.subscriptionEvents, "store", driver.name)
  const readPage = pageOf(driver)
  return Stream.unwrapScoped(Effect.gen(function*() {
    const changed = yield* Queue.sliding<void>(1)
    if (driver.watch !== undefined) yield* driver.watch(() => Queue.unsafeOffer(changed, undefined))
    let cursor = after
    /**
     * A signal whose events were not readable yet (on PostgreSQL: held back
     * behind an older transaction, whose end sends no signal): look again
     * soon, backing off towards the poll interval.
     */
    let retryIn = -1
    const pollMillis = Duration.toMillis(pollInterval)
    // A signal that arrives during a read stays queued, so no change is slept through.
    const next = Effect.gen(function*() {
      const signals = yield* Queue.takeAll(changed)
      if (Chunk.isNonEmpty(signals)) retryIn = 5
      const page = yield* readPage({ fromPosition: cursor + 1n, limit: chunkSize, chunkSize, ...filter })
      const moved = page.through > cursor
      if (moved) cursor = page.through
      if (page.events.length > 0) {
        retryIn = -1
        yield* Metric.incrementBy(delivered, page.events.length)
        return Chunk.of(page)
      }
      // a filtered page that moved on over skipped events is news too (where a follower stands), but no reason to hurry
      const wait = retryIn === -1 ? pollMillis : Math.min(retryIn, pollMillis)
      retryIn = retryIn === -1 || retryIn >= pollMillis ? -1 : retryIn * 2
      const woken = yield* Effect.timeoutOption(Queue.take(changed), Duration.millis(wait))
      if (woken._tag === "Some") retryIn = 5
      return moved ? Chunk.of(page) : Chunk.empty<LogPage>()
    })
    return Stream.repeatEffectChunk(next)
  })).pipe(
    Stream.withSpan("EventStore.subscribe", storeSpan(driver.name, { "chronicle.after": String(after) }))
  )
}

/**
 * The `foldPage` of services built by `make` around a driver that has one,
 * by the service object: a copy of the service (say one that wraps
 * `readPage`) has none, and loads through its `readPage`.
 */
const foldPages = new WeakMap<EventStoreService, FoldPage<ReadError>>()

/** The service's `foldPage`, if it is one `make` built around a driver that folds as it decodes. */
export const foldPageOf = (service: EventStoreService): FoldPage<ReadError> | undefined => foldPages.get(service)

/** The driver's `foldPage` with the service's checks and span. */
const checkedFoldPage = (driver: Driver, foldPage: FoldPage<StoreError>): FoldPage<ReadError> => (streamId, page, step) => {
  const range = checkStreamId(streamId) ??
    settleRange("foldPage", { ...page, direction: "forwards", chunkSize: Math.max(1, page.limit) })
  if (range instanceof InvalidArgument || range instanceof InvalidStreamId) return Effect.fail(range)
  return foldPage(streamId, page, step).pipe(
    Effect.withSpan("EventStore.foldPage", storeSpan(driver.name, { "chronicle.stream_id": streamId, "chronicle.from_version": page.fromVersion }))
  )
}

export const make = (driver: Driver): EventStoreService => {
  const service = makeService(driver)
  if (driver.foldPage !== undefined) foldPages.set(service, checkedFoldPage(driver, driver.foldPage))
  return service
}

const makeService = (driver: Driver): EventStoreService => {
  const readWith = <A>(
    name: string,
    operation: string,
    read: (streamId: StreamId, range: StreamRange) => Stream.Stream<A, StoreError>,
    streamId: StreamId,
    options: ReadOptions | undefined
  ): Stream.Stream<A, ReadError> => {
    const range = checkStreamId(streamId) ?? settleRange(operation, options)
    if (range instanceof InvalidArgument || range instanceof InvalidStreamId) return Stream.fail(range)
    const events = options?.deleted === "hide"
      ? Stream.unwrap(Effect.map(driver.isDeleted(streamId), (deleted) => (deleted ? Stream.empty : read(streamId, range))))
      : read(streamId, range)
    return events.pipe(
      Stream.withSpan(name, storeSpan(driver.name, { "chronicle.stream_id": streamId, "chronicle.direction": range.direction }))
    )
  }
  const eventsAppended = Metric.tagged(Metrics.eventsAppended, "store", driver.name)
  const conflicts = Metric.tagged(Metrics.concurrencyConflicts, "store", driver.name)
  const conditionFailures = Metric.tagged(Metrics.appendConditionFailures, "store", driver.name)
  const appendManyCalls = Metric.tagged(Metrics.appendManyCalls, "store", driver.name)
  const appendCount = storeCounter(Metrics.appends, driver.name)
  const eventCount = storeCounter(Metrics.eventsAppended, driver.name)
  const conflictCount = storeCounter(Metrics.concurrencyConflicts, driver.name)
  const conditionFailureCount = storeCounter(Metrics.appendConditionFailures, driver.name)
  return {
    append: (streamId, events, options) =>
      Effect.withFiberRuntime<AppendResult, AppendError>((fiber) => {
        const condition = options.condition
        const invalid = checkStreamId(streamId) ?? checkExpectedVersion("append", options.expectedVersion) ?? (condition === undefined
          ? undefined
          : checkQuery("append", "condition.failIfEventsMatch", condition.failIfEventsMatch) ??
            checkPosition("append", "condition.after", condition.after ?? 0n))
        if (invalid !== undefined) return Effect.fail(invalid)
        const pending = settleEventsNow(streamId, events, options.metadata)
        if (pending instanceof InvalidEvent) return Effect.fail(pending)
        const labels = fiber.getFiberRef(FiberRef.currentMetricLabels)
        return Effect.matchCauseEffect(driver.append(streamId, pending, options.expectedVersion, settleCondition(condition)), {
          onSuccess: (result) => {
            appendCount(1, labels)
            eventCount(result.globalPositions.length, labels)
            return Effect.succeed(result)
          },
          onFailure: (cause) => {
            const failure = Cause.failureOption(cause)
            if (failure._tag === "Some") {
              if (failure.value._tag === "ConcurrencyConflict") conflictCount(1, labels)
              else if (failure.value._tag === "AppendConditionFailed") conditionFailureCount(1, labels)
            }
            return Effect.failCause(cause)
          }
        })
      }).pipe(
        Effect.withSpan(
          "EventStore.append",
          storeSpan(driver.name, {
            "chronicle.stream_id": streamId,
            "chronicle.event_count": events.length,
            "chronicle.expected_version": String(options.expectedVersion)
          })
        )
      ),
    appendMany: (appends, options) =>
      settleAppends(appends, options).pipe(
        Effect.flatMap((pending) => driver.appendMany(pending, settleCondition(options?.condition))),
        Effect.tap((results) =>
          Effect.zipRight(
            Metric.increment(appendManyCalls),
            Metric.incrementBy(eventsAppended, results.reduce((sum, result) => sum + result.globalPositions.length, 0))
          )
        ),
        Effect.tapErrorTag("ConcurrencyConflict", () => Metric.increment(conflicts)),
        Effect.tapErrorTag("AppendConditionFailed", () => Metric.increment(conditionFailures)),
        Effect.withSpan(
          "EventStore.appendMany",
          storeSpan(driver.name, {
            "chronicle.stream_ids": Array.isArray(appends) ? appends.map((append) => append.streamId) : [],
            "chronicle.stream_count": Array.isArray(appends) ? appends.length : 0,
            "chronicle.event_count": Array.isArray(appends) ? appends.reduce((sum, append) => sum + (append.events?.length ?? 0), 0) : 0
          })
        )
      ),
    read: (streamId, options) => readWith("EventStore.read", "read", driver.read, streamId, options),
    readPayloads: (streamId, options) =>
      readWith("EventStore.readPayloads", "readPayloads", driver.readPayloads ?? driver.read, streamId, options),
    readPage: (streamId, page) => {
      const range = checkStreamId(streamId) ??
        settleRange("readPage", { ...page, direction: "forwards", chunkSize: Math.max(1, page.limit) })
      if (range instanceof InvalidArgument || range instanceof InvalidStreamId) return Effect.fail(range)
      const read = driver.readPage !== undefined
        ? driver.readPage(streamId, page)
        : Stream.runCollect((driver.readPayloads ?? driver.read)(streamId, range)).pipe(
          Effect.map((chunk) => Chunk.toReadonlyArray(chunk))
        )
      return read.pipe(
        Effect.withSpan("EventStore.readPage", storeSpan(driver.name, { "chronicle.stream_id": streamId, "chronicle.from_version": page.fromVersion }))
      )
    },
    readLogPage: (options) => {
      const range = settleLogPage("readLogPage", options)
      return range instanceof InvalidArgument ? Effect.fail(range) : pageOf(driver)(range).pipe(
        Effect.withSpan("EventStore.readLogPage", storeSpan(driver.name, { "chronicle.from_position": String(range.fromPosition) }))
      )
    },
    subscribePages: (options) => followLog(driver, options),
    readAll: (options) => {
      const range = settleReadAll(options)
      return range instanceof InvalidArgument ? Stream.fail(range) : driver.readAll(range).pipe(
        Stream.withSpan(
          "EventStore.readAll",
          storeSpan(driver.name, { "chronicle.from_position": String(range.fromPosition), "chronicle.direction": range.direction ?? "forwards" })
        )
      )
    },
    query: (query, options) => {
      const after = options?.after ?? 0n
      const range = checkQuery("query", "query", query) ?? checkPosition("query", "after", after) ??
        settleLogRange("query", after + 1n, options)
      if (range instanceof InvalidArgument) return Stream.fail(range)
      return driver.query(query, { after: range.fromPosition - 1n, limit: range.limit, chunkSize: range.chunkSize }).pipe(
        Stream.withSpan(
          "EventStore.query",
          storeSpan(driver.name, { "chronicle.query": Query.format(query), "chronicle.after": String(range.fromPosition - 1n) })
        )
      )
    },
    queryForDecision: (query) => {
      const invalid = checkQuery("queryForDecision", "query", query)
      if (invalid !== undefined) return Effect.fail(invalid)
      const read = driver.queryForDecision !== undefined
        ? driver.queryForDecision(query)
        : Effect.map(
          Stream.runCollect(driver.query(query, { after: 0n, limit: Number.MAX_SAFE_INTEGER, chunkSize: defaultChunkSize })),
          (chunk): DecisionRead => {
            const events = Chunk.toReadonlyArray(chunk)
            return { events, condition: { failIfEventsMatch: query, after: events.at(-1)?.globalPosition ?? 0n } }
          }
        )
      return read.pipe(
        Effect.withSpan("EventStore.queryForDecision", storeSpan(driver.name, { "chronicle.query": Query.format(query) }))
      )
    },
    subscribe: (options) => Stream.mapConcat(followLog(driver, options), (page) => page.events),
    headPosition: driver.headPosition.pipe(
      Effect.withSpan("EventStore.headPosition", storeSpan(driver.name))
    ),
    streamVersion: (streamId) =>
      Effect.suspend((): Effect.Effect<number, InvalidStreamId | StoreError> => {
        const invalid = checkStreamId(streamId)
        return invalid === undefined ? driver.streamVersion(streamId) : Effect.fail(invalid)
      }).pipe(
        Effect.withSpan("EventStore.streamVersion", storeSpan(driver.name, { "chronicle.stream_id": streamId }))
      ),
    deleteStream: (streamId, options) =>
      Effect.suspend((): Effect.Effect<void, ConcurrencyConflict | InvalidArgument | InvalidStreamId | StoreError> => {
        const expected = options?.expectedVersion ?? ExpectedVersion.Any
        const invalid = checkStreamId(streamId) ?? checkExpectedVersion("deleteStream", expected)
        return invalid === undefined ? driver.deleteStream(streamId, expected, options?.erase === true) : Effect.fail(invalid)
      }).pipe(
        Effect.withSpan(
          "EventStore.deleteStream",
          storeSpan(driver.name, { "chronicle.stream_id": streamId, "chronicle.erase": options?.erase === true })
        )
      ),
    isDeleted: (streamId) =>
      Effect.suspend((): Effect.Effect<boolean, InvalidStreamId | StoreError> => {
        const invalid = checkStreamId(streamId)
        return invalid === undefined ? driver.isDeleted(streamId) : Effect.fail(invalid)
      }).pipe(
        Effect.withSpan("EventStore.isDeleted", storeSpan(driver.name, { "chronicle.stream_id": streamId }))
      )
  }
}
