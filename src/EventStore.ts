/**
 * The EventStore port: append to and read from streams, and read the whole
 * store in global order. Stores (memory, filesystem, PostgreSQL) provide it as
 * a `Layer`; swapping a store is swapping that Layer.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as Duration from "effect/Duration"
import type * as Scope from "effect/Scope"
import type { EventMetadata, EventPayload, NewEvent, PendingEvent, StoredEvent } from "./Event.js"
import * as ExpectedVersion from "./ExpectedVersion.js"
import * as Query from "./Query.js"
import { InvalidStreamId, StreamId } from "./StreamId.js"
import * as internal from "./internal/eventStore.js"

// ---------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------

/**
 * The stream was not at the version the writer expected. Nothing of the batch
 * was stored.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConcurrencyConflict extends Schema.TaggedError<ConcurrencyConflict>()("ConcurrencyConflict", {
  streamId: StreamId,
  expected: ExpectedVersion.ExpectedVersion,
  actual: Schema.Number
}) {
  override get message() {
    return `Concurrency conflict on stream ${this.streamId}: expected version ${
      ExpectedVersion.format(this.expected)
    }, actual ${this.actual}`
  }
}

/**
 * An event id of the batch is already stored, and the batch is not a re-send
 * of the append that stored it. Nothing of the batch was stored.
 *
 * A batch whose ids are all stored, in batch order, as consecutive versions
 * `v + 1 …` of this stream is a re-send (a retry after a lost reply): it
 * succeeds again, without writing, when the expected version accepts `v`
 * (stores keep no batch boundaries: any run of the stream's events counts).
 * Any other stored id fails the batch with this error, whatever the expected
 * version (a version that matches never surfaces as a conflict): a partial
 * re-send (`[e1, e2, e3]` after `[e1, e2]`), a batch mixing stored and new
 * ids, a stored batch re-sent with an expected version its append could not
 * have had, an id stored elsewhere in this stream or in another stream.
 * `eventId` is the batch's first event (in batch order) that is stored, and
 * `existingStreamId`, `existingVersion`, `existingPosition` say where.
 *
 * @since 0.1.0
 * @category errors
 */
export class DuplicateEventId extends Schema.TaggedError<DuplicateEventId>()("DuplicateEventId", {
  streamId: StreamId,
  eventId: Schema.String,
  existingStreamId: StreamId,
  existingVersion: Schema.Number,
  existingPosition: Schema.BigIntFromSelf
}) {
  override get message() {
    return `Event ${this.eventId} appended to ${this.streamId} is already stored as ${this.existingStreamId}@${this.existingVersion} (global position ${this.existingPosition})`
  }
}

/**
 * An event's serialised form exceeds the store's size limit. Nothing of the
 * batch was stored.
 *
 * @since 0.1.0
 * @category errors
 */
export class EventTooLarge extends Schema.TaggedError<EventTooLarge>()("EventTooLarge", {
  streamId: StreamId,
  eventId: Schema.String,
  type: Schema.String,
  size: Schema.Number,
  limit: Schema.Number
}) {
  override get message() {
    return `Event ${this.eventId} (${this.type}) for ${this.streamId} is ${this.size} bytes, over the limit of ${this.limit}`
  }
}

/**
 * An event that cannot be stored as given: an empty type, a payload that is
 * not JSON, an id repeated within the batch, or text no store can keep: U+0000
 * (NUL) or a lone UTF-16 surrogate in its data, metadata, tags or type (every
 * store refuses them, though memory and files could hold them, so that all
 * stores behave alike). `path` names the field when one is at fault
 * (`data.items[1].name`, `metadata.tenant`, `tags[0]`, `type`). Nothing of
 * the batch was stored.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidEvent extends Schema.TaggedError<InvalidEvent>()("InvalidEvent", {
  streamId: Schema.String,
  index: Schema.Number,
  reason: Schema.String,
  path: Schema.optional(Schema.String)
}) {
  override get message() {
    return `Invalid event #${this.index} for ${this.streamId}: ${this.reason}`
  }
}

/**
 * The stream was deleted (tombstoned): it takes no more events. Nothing of
 * the batch was stored.
 *
 * @since 0.1.0
 * @category errors
 */
export class StreamDeleted extends Schema.TaggedError<StreamDeleted>()("StreamDeleted", {
  streamId: Schema.String
}) {
  override get message() {
    return `Stream ${this.streamId} is deleted: it takes no more events`
  }
}

/**
 * A conditional append found an event matching its condition's query after
 * the condition's position: the decision was made on stale information.
 * Nothing of the batch was stored; read again and decide again.
 *
 * @since 0.1.0
 * @category errors
 */
export class AppendConditionFailed extends Schema.TaggedError<AppendConditionFailed>()("AppendConditionFailed", {
  streamId: Schema.String,
  query: Query.Query,
  after: Schema.BigIntFromSelf,
  position: Schema.BigIntFromSelf
}) {
  override get message() {
    return `Append to ${this.streamId} refused: event at position ${this.position} matches ${
      Query.format(this.query)
    } after position ${this.after}`
  }
}

/**
 * The store itself failed: I/O, a lost connection, a corrupt file. The
 * operation names what was attempted.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  operation: Schema.String,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message() {
    return `Event store ${this.operation} failed: ${this.reason}`
  }
}

/**
 * An append made inside a database transaction that took its id before a
 * concurrent append committed (it wrote something else first): storing it now
 * would place its events before that append in the global log, which readers
 * may already have passed. Nothing was stored; roll the transaction back and
 * run it again. Appending before the transaction's other writes avoids it.
 *
 * @since 0.1.0
 * @category errors
 */
export class TransactionConflict extends Schema.TaggedError<TransactionConflict>()("TransactionConflict", {
  streamId: Schema.String
}) {
  override get message() {
    return `Append to ${this.streamId} refused: the enclosing transaction took its id before a concurrent append committed; retry the transaction`
  }
}

/**
 * An argument the operation does not accept: a negative or fractional
 * version, limit, chunk size or position, an expected version that is no
 * version, a query without items or with an item whose type and tag lists are
 * both empty. Refused before any store sees the call, the same on every
 * store; nothing was read or written.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidArgument extends Schema.TaggedError<InvalidArgument>()("InvalidArgument", {
  operation: Schema.String,
  argument: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `Invalid argument ${this.argument} to ${this.operation}: ${this.reason}`
  }
}

/**
 * Every way a read can fail: a bad argument or stream id, or the store itself.
 *
 * @since 0.1.0
 * @category errors
 */
export type ReadError = InvalidArgument | InvalidStreamId | StoreError

/**
 * Every way an append can fail.
 *
 * @since 0.1.0
 * @category errors
 */
export type AppendError =
  | AppendConditionFailed
  | ConcurrencyConflict
  | DuplicateEventId
  | EventTooLarge
  | InvalidArgument
  | InvalidEvent
  | InvalidStreamId
  | StreamDeleted
  | StoreError
  | TransactionConflict

// ---------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface AppendOptions {
  /** The version the stream must be at for the append to go through. */
  readonly expectedVersion: ExpectedVersion.ExpectedVersion
  /** Metadata merged into every event's metadata (an event's own fields win). */
  readonly metadata?: EventMetadata | undefined
  /**
   * Dynamic Consistency Boundary: append only if no event matching
   * `failIfEventsMatch` was stored after `after`; else fail with
   * `AppendConditionFailed`, storing nothing. Checked atomically with the write.
   */
  readonly condition?: AppendCondition | undefined
}

/**
 * The condition of a conditional append (the DCB specification's append
 * condition): fail if any event matching `failIfEventsMatch` is stored after
 * position `after` (exclusive; default 0: anywhere in the log). The batch's
 * own events never trip its own condition.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppendCondition {
  readonly failIfEventsMatch: Query.Query
  readonly after?: bigint | undefined
  /**
   * What the decision's read saw, as the store that made it describes it
   * (from `queryForDecision`; PostgreSQL: the read's snapshot). With it, the
   * condition fails on any matching event the read did not see, even one
   * below `after` that committed late: positions that are not commit-ordered
   * need it. Leave it out when building a condition by hand.
   */
  readonly token?: string | undefined
}

/**
 * What a decision read returns: the matching events, in global order, and
 * the append condition that fails if anything matching was stored that the
 * read did not see.
 *
 * @since 0.1.0
 * @category models
 */
export interface DecisionRead {
  readonly events: ReadonlyArray<StoredEvent>
  readonly condition: AppendCondition
}

/**
 * An `AppendCondition` with every field settled, as a driver receives it.
 *
 * @since 0.1.0
 * @category models
 */
export interface SettledCondition {
  readonly failIfEventsMatch: Query.Query
  readonly after: bigint
  readonly token: string | undefined
}

/**
 * Which events matching a query to read: those after `after` (exclusive), at
 * most `limit`, in global order.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueryOptions {
  readonly after?: bigint | undefined
  readonly limit?: number | undefined
  readonly chunkSize?: number | undefined
}

/**
 * `QueryOptions` with every field settled, as a driver receives them.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueryRange {
  readonly after: bigint
  readonly limit: number
  readonly chunkSize: number
}

/**
 * What a successful append reports: the stream's version after it and the
 * global positions of the events, in batch order.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppendResult {
  readonly streamId: StreamId
  readonly streamVersion: number
  readonly globalPositions: ReadonlyArray<bigint>
}

/**
 * One stream's share of an `appendMany` call: its events and the version it
 * must be at, checked like `append`'s.
 *
 * @since 0.2.0
 * @category models
 */
export interface StreamAppend {
  readonly streamId: StreamId
  readonly events: ReadonlyArray<NewEvent>
  readonly expectedVersion: ExpectedVersion.ExpectedVersion
}

/**
 * The options of an `appendMany` call, over the whole call: metadata merged
 * into every event's, and one append condition (the call's own events never
 * trip it).
 *
 * @since 0.2.0
 * @category models
 */
export interface AppendManyOptions {
  readonly metadata?: EventMetadata | undefined
  readonly condition?: AppendCondition | undefined
}

/**
 * A `StreamAppend` with its events settled, as a driver receives it.
 *
 * @since 0.2.0
 * @category models
 */
export interface PendingAppend {
  readonly streamId: StreamId
  readonly events: ReadonlyArray<PendingEvent>
  readonly expectedVersion: ExpectedVersion.ExpectedVersion
}

/**
 * Which part of a stream to read. `fromVersion` and `toVersion` bound the
 * range (both inclusive) whatever the direction; `backwards` starts at the top
 * of the range; `limit` caps how many events come back.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadOptions {
  readonly fromVersion?: number | undefined
  readonly toVersion?: number | undefined
  readonly direction?: Direction | undefined
  readonly limit?: number | undefined
  /** Events fetched per chunk (a store may cap it). */
  readonly chunkSize?: number | undefined
  /** A deleted stream's events: `read` them (default: its history stays readable) or `hide` them. */
  readonly deleted?: "read" | "hide" | undefined
}

/**
 * A page of a stream, forwards: versions `fromVersion` to `toVersion`
 * (inclusive), at most `limit` events.
 *
 * @since 0.1.0
 * @category models
 */
export interface Page {
  readonly fromVersion: number
  readonly toVersion: number
  readonly limit: number
}

/**
 * How to delete a stream.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeleteOptions {
  /** The version the stream must be at; default `Any`. */
  readonly expectedVersion?: ExpectedVersion.ExpectedVersion | undefined
  /**
   * Also remove the stream's events from the store (stream reads, the global
   * log, the event-id index): for retention rules and erasure requests. The
   * tombstone stays, so the stream id cannot be reused.
   */
  readonly erase?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export type Direction = "forwards" | "backwards"

/**
 * Which events of the global log a read or subscription keeps: those of
 * streams in one of `categories` (`StreamId.category`: the part of the id
 * before its first `-`), of one of `types`, and of streams in `partition`.
 * An absent field keeps all; several given, an event must pass each.
 * Filtering happens in the store (PostgreSQL serves categories from an
 * index and partitions from each stream's stored hash; the filesystem store
 * from its in-memory index): skipped events are never decoded or sent.
 *
 * @since 0.2.0
 * @category models
 */
export interface LogFilter {
  readonly categories?: ReadonlyArray<string> | undefined
  readonly types?: ReadonlyArray<string> | undefined
  /** Only the streams of this partition: `StreamId.partitionOf(streamId, of) === member`. */
  readonly partition?: Partition | undefined
}

/**
 * One of `of` partitions of the global log by stream (`StreamId.partitionOf`):
 * integers, `0 <= member < of`. Every stream, so every event, is in exactly
 * one partition of `of`.
 *
 * @since 0.2.0
 * @category models
 */
export interface Partition {
  readonly member: number
  readonly of: number
}

/**
 * What `readLogPage` reads: the events kept by `filter` after `after`, at most
 * `limit` of them.
 *
 * @since 0.2.0
 * @category models
 */
export interface LogPageOptions {
  /** Default `0n`: from the start. */
  readonly after?: bigint | undefined
  /** Default 1000. */
  readonly limit?: number | undefined
  readonly filter?: LogFilter | undefined
}

/**
 * One page of a filtered read of the global log: `events` in global order,
 * and `through`, how far the store looked: every event the filter keeps with
 * a position up to `through` is in `events` (or at or before the read's
 * `after`), and none can still appear there. The next page reads after
 * `through`, so a reader whose filter keeps little moves on over the events
 * it skips; `through` never goes back below the read's `after`.
 *
 * @since 0.2.0
 * @category models
 */
export interface LogPage {
  readonly events: ReadonlyArray<StoredEvent>
  readonly through: bigint
}

/**
 * Which part of the global log to read. Forwards (the default): events at
 * `fromPosition` (inclusive, default `0n`) and after, oldest first.
 * Backwards: events at `fromPosition` (default: the end of the log) and
 * before, newest first: `readAll({ direction: "backwards", limit: 50 })` is
 * the last 50 events. At most `limit` events, kept by `filter`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadAllOptions {
  readonly fromPosition?: bigint | undefined
  readonly limit?: number | undefined
  readonly chunkSize?: number | undefined
  /** @since 0.2.0 */
  readonly direction?: Direction | undefined
  /** @since 0.2.0 */
  readonly filter?: LogFilter | undefined
}

/**
 * Where a subscription starts and how it waits for new events.
 *
 * @since 0.1.0
 * @category models
 */
export interface SubscribeOptions {
  /** Deliver the events after this global position (a checkpoint); default `0n`: from the start. */
  readonly after?: bigint | undefined
  /** Events fetched per read; default 1000. */
  readonly chunkSize?: number | undefined
  /**
   * How long to wait for a change signal before reading again anyway: the
   * fallback when a signal is lost (another process without notifications, a
   * dropped listener connection). Default: the store's own.
   */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** Deliver only the events this keeps (categories, types, partition); the others are skipped in the store. @since 0.2.0 */
  readonly filter?: LogFilter | undefined
}

/**
 * `ReadOptions` with every field settled, as a driver receives them.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamRange {
  readonly fromVersion: number
  readonly toVersion: number
  readonly direction: Direction
  readonly limit: number
  readonly chunkSize: number
}

/**
 * `ReadAllOptions` with every field settled, as a driver receives them.
 *
 * @since 0.1.0
 * @category models
 */
export interface LogRange {
  /** The first position read: the lowest forwards, the highest backwards. */
  readonly fromPosition: bigint
  readonly limit: number
  readonly chunkSize: number
  /** Absent: forwards. */
  readonly direction?: Direction | undefined
  /** The categories and types kept; each absent or non-empty. */
  readonly categories?: ReadonlyArray<string> | undefined
  readonly types?: ReadonlyArray<string> | undefined
  /** The partition kept, checked (`0 <= member < of`); absent keeps all. @since 0.2.0 */
  readonly partition?: Partition | undefined
}

/**
 * The end of the log, as a backwards read's default start.
 *
 * @since 0.2.0
 * @category constants
 */
export const endOfLog: bigint = 2n ** 63n - 1n

/**
 * The default number of events per chunk when reading.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultChunkSize = 1000

// ---------------------------------------------------------------------------
// service
// ---------------------------------------------------------------------------

/**
 * Reads one page of a stream's payloads (as `readPage`), handing each to
 * `step` as it is decoded, in version order, instead of returning the page:
 * nothing of the page outlives its step, so a long fold leaves no garbage
 * to promote. `step` returns false to stop there (that payload counts);
 * succeeds with how many payloads `step` took. `step` runs inside the read
 * (a page is decoded in one synchronous pass over the store's read buffer):
 * it must not throw or use the store, and when the read then fails (a
 * damaged line further on), what it folded is to be dropped. A store whose
 * driver has one folds loads through it (`CommandHandler`); the span
 * `EventStore.foldPage` covers the fold too.
 *
 * @since 0.2.0
 * @category models
 */
export type FoldPage<E> = (
  streamId: StreamId,
  page: Page,
  step: (payload: EventPayload) => boolean
) => Effect.Effect<number, E>

/**
 * The operations of an event store.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventStoreService {
  /** Appends `events` to `streamId` atomically if the stream is at `expectedVersion`. */
  readonly append: (
    streamId: StreamId,
    events: ReadonlyArray<NewEvent>,
    options: AppendOptions
  ) => Effect.Effect<AppendResult, AppendError>
  /**
   * Appends to several streams atomically, each checked against its own
   * expected version: all are stored or none is. The events of the call are
   * contiguous in the global log, in call order (each stream's in its own
   * order); the results come in call order. A refusal names the first stream
   * of the call that failed (`ConcurrencyConflict`, `StreamDeleted`,
   * `DuplicateEventId`), and nothing was stored. A stream may appear only
   * once per call and an event id only once; a re-send of a whole stored
   * call succeeds again without writing, a call mixing stored and new
   * batches fails with `DuplicateEventId`.
   *
   * @since 0.2.0
   */
  readonly appendMany: (
    appends: ReadonlyArray<StreamAppend>,
    options?: AppendManyOptions
  ) => Effect.Effect<ReadonlyArray<AppendResult>, AppendError>
  /** Streams the events of one stream, in chunks. A missing stream reads as empty. */
  readonly read: (streamId: StreamId, options?: ReadOptions) => Stream.Stream<StoredEvent, ReadError>
  /** Like `read`, but only what folding needs of each event: cheaper on some stores. */
  readonly readPayloads: (streamId: StreamId, options?: ReadOptions) => Stream.Stream<EventPayload, ReadError>
  /**
   * One page of `readPayloads`, forwards: at most `limit` events from
   * `fromVersion` to `toVersion`. Folding page by page skips the cost of a
   * `Stream` when a stream is short.
   */
  readonly readPage: (streamId: StreamId, page: Page) => Effect.Effect<ReadonlyArray<EventPayload>, ReadError>
  /** Streams every event of the store in global order, in chunks. */
  readonly readAll: (options?: ReadAllOptions) => Stream.Stream<StoredEvent, ReadError>
  /**
   * Streams the events matching `query` (by type and tags, across streams),
   * in global order, in chunks: what a DCB decision reads. The position of
   * the last one is the `after` of the append condition that follows.
   */
  readonly query: (query: Query.Query, options?: QueryOptions) => Stream.Stream<StoredEvent, ReadError>
  /**
   * Reads every event matching `query` for a decision, with the condition to
   * append the decision's events on. Unlike `query`, it shows every event
   * committed before it (your own appends included) even while an older
   * transaction is still open on PostgreSQL; the condition's token covers
   * what it could not see. Loads all matches into memory: for decision
   * models, not for scans.
   */
  readonly queryForDecision: (query: Query.Query) => Effect.Effect<DecisionRead, ReadError>
  /**
   * Follows the global log: the events after `options.after` in global order,
   * then each new event as it becomes readable, forever. An event committed
   * late by a slower concurrent writer is never skipped: it is delivered, in
   * order, once every event before it is.
   */
  readonly subscribe: (options?: SubscribeOptions) => Stream.Stream<StoredEvent, ReadError>
  /**
   * One page of the global log after `options.after`, kept by
   * `options.filter`, with how far the store looked (`LogPage.through`):
   * what a reader of a filtered log (a partition of a projection) checkpoints
   * when the page holds none of its events.
   *
   * @since 0.2.0
   */
  readonly readLogPage: (options?: LogPageOptions) => Effect.Effect<LogPage, ReadError>
  /**
   * `subscribe` in pages: each page's events, and how far the store looked
   * (`LogPage.through`). A page comes when there are new events or when
   * `through` moved on over events the filter skips (then `events` is
   * empty), so a filtered follower knows it is up to date.
   *
   * @since 0.2.0
   */
  readonly subscribePages: (options?: SubscribeOptions) => Stream.Stream<LogPage, ReadError>
  /** The global position of the last readable event: `0n` for an empty store. */
  readonly headPosition: Effect.Effect<bigint, StoreError>
  /** The current version of a stream: 0 when it has no events. */
  readonly streamVersion: (streamId: StreamId) => Effect.Effect<number, InvalidStreamId | StoreError>
  /**
   * Deletes a stream: a tombstone makes later appends fail with
   * `StreamDeleted`; with `erase`, its events are removed too. Deleting a
   * deleted stream again succeeds (erasing it if asked).
   */
  readonly deleteStream: (
    streamId: StreamId,
    options?: DeleteOptions
  ) => Effect.Effect<void, ConcurrencyConflict | InvalidArgument | InvalidStreamId | StoreError>
  /** Whether a stream was deleted. */
  readonly isDeleted: (streamId: StreamId) => Effect.Effect<boolean, InvalidStreamId | StoreError>
}

/**
 * The EventStore service.
 *
 * @since 0.1.0
 * @category services
 */
export class EventStore extends Context.Tag("chronicle/EventStore")<EventStore, EventStoreService>() {}

/**
 * What a store implements: the operations on settled inputs. `make` adds input
 * validation, defaults, spans and metrics around it, the same for every store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Driver {
  /** A short name for spans and metrics: `memory`, `filesystem`, `postgres`. */
  readonly name: string
  readonly append: (
    streamId: StreamId,
    events: ReadonlyArray<PendingEvent>,
    expectedVersion: ExpectedVersion.ExpectedVersion,
    condition: SettledCondition | undefined
  ) => Effect.Effect<AppendResult, AppendError>
  /** All of `appends` or none, on settled inputs (distinct streams and event ids, at least one append). @since 0.2.0 */
  readonly appendMany: (
    appends: ReadonlyArray<PendingAppend>,
    condition: SettledCondition | undefined
  ) => Effect.Effect<ReadonlyArray<AppendResult>, AppendError>
  readonly read: (streamId: StreamId, range: StreamRange) => Stream.Stream<StoredEvent, StoreError>
  readonly query: (query: Query.Query, range: QueryRange) => Stream.Stream<StoredEvent, StoreError>
  /** A decision read with a consistency token, where positions alone do not tell what a read saw. */
  readonly queryForDecision?: ((query: Query.Query) => Effect.Effect<DecisionRead, StoreError>) | undefined
  /** A cheaper `read` for folding, when the store has one; `read` serves otherwise. */
  readonly readPayloads?: ((streamId: StreamId, range: StreamRange) => Stream.Stream<EventPayload, StoreError>) | undefined
  /** A page of payloads in one go, when the store can do that cheaply; `readPayloads` serves otherwise. */
  readonly readPage?: ((streamId: StreamId, page: Page) => Effect.Effect<ReadonlyArray<EventPayload>, StoreError>) | undefined
  /**
   * `readPage` folding as it decodes (see `FoldPage`), when the store
   * decodes synchronously. Loads fold through it on the service `make`
   * builds; a copy of that service (one that wraps `readPage`, say) loads
   * through its `readPage`.
   */
  readonly foldPage?: FoldPage<StoreError> | undefined
  readonly readAll: (range: LogRange) => Stream.Stream<StoredEvent, StoreError>
  /**
   * One forwards page of `range` (at most `range.limit` events from
   * `range.fromPosition`), with how far the store looked. Without it, a page
   * is read with `readAll` and reaches its last event. @since 0.2.0
   */
  readonly readLogPage?: ((range: LogRange) => Effect.Effect<LogPage, StoreError>) | undefined
  readonly headPosition: Effect.Effect<bigint, StoreError>
  /**
   * Calls `onChange` whenever new events may have become readable, until the
   * scope closes; registered when the effect completes. Without it, and to
   * cover a lost signal, subscriptions poll every `pollInterval`.
   */
  readonly watch?: ((onChange: () => void) => Effect.Effect<void, never, Scope.Scope>) | undefined
  /** How often subscriptions read when no signal arrives; default 500 ms. */
  readonly pollInterval?: Duration.DurationInput | undefined
  readonly streamVersion: (streamId: StreamId) => Effect.Effect<number, StoreError>
  readonly deleteStream: (
    streamId: StreamId,
    expectedVersion: ExpectedVersion.ExpectedVersion,
    erase: boolean
  ) => Effect.Effect<void, ConcurrencyConflict | StoreError>
  readonly isDeleted: (streamId: StreamId) => Effect.Effect<boolean, StoreError>
}

/**
 * How often a subscription reads when the store sends no change signal.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultPollInterval: Duration.DurationInput = "500 millis"

/**
 * Builds the EventStore service from a store driver: validates and settles
 * inputs (event ids, metadata, read ranges), and wraps every operation in a
 * span named after it, feeding the append and conflict metrics.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (driver: Driver): EventStoreService => internal.make(driver)

// ---------------------------------------------------------------------------
// accessors
// ---------------------------------------------------------------------------

/**
 * Appends through the EventStore in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const append = (
  streamId: StreamId,
  events: ReadonlyArray<NewEvent>,
  options: AppendOptions
): Effect.Effect<AppendResult, AppendError, EventStore> =>
  Effect.flatMap(EventStore, (store) => store.append(streamId, events, options))

/**
 * Appends to several streams atomically through the EventStore in context.
 *
 * @example
 * ```ts
 * import { EventStore, ExpectedVersion, StreamId } from "chronicle"
 *
 * const transfer = EventStore.appendMany([
 *   { streamId: StreamId.unsafeMake("account", "1"), events: [{ type: "Withdrawn", data: { amount: 10 } }], expectedVersion: 3 },
 *   { streamId: StreamId.unsafeMake("account", "2"), events: [{ type: "Deposited", data: { amount: 10 } }], expectedVersion: ExpectedVersion.Any }
 * ])
 * ```
 *
 * @since 0.2.0
 * @category accessors
 */
export const appendMany = (
  appends: ReadonlyArray<StreamAppend>,
  options?: AppendManyOptions
): Effect.Effect<ReadonlyArray<AppendResult>, AppendError, EventStore> =>
  Effect.flatMap(EventStore, (store) => store.appendMany(appends, options))

/**
 * Reads a stream through the EventStore in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const read = (
  streamId: StreamId,
  options?: ReadOptions
): Stream.Stream<StoredEvent, ReadError, EventStore> =>
  Stream.unwrap(Effect.map(EventStore, (store) => store.read(streamId, options)))

/**
 * Deletes a stream through the EventStore in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const deleteStream = (
  streamId: StreamId,
  options?: DeleteOptions
): Effect.Effect<void, ConcurrencyConflict | InvalidArgument | InvalidStreamId | StoreError, EventStore> =>
  Effect.flatMap(EventStore, (store) => store.deleteStream(streamId, options))

/**
 * Whether a stream was deleted, through the EventStore in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const isDeleted = (streamId: StreamId): Effect.Effect<boolean, InvalidStreamId | StoreError, EventStore> =>
  Effect.flatMap(EventStore, (store) => store.isDeleted(streamId))

/**
 * Reads what folding needs of a stream's events through the EventStore in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const readPayloads = (
  streamId: StreamId,
  options?: ReadOptions
): Stream.Stream<EventPayload, ReadError, EventStore> =>
  Stream.unwrap(Effect.map(EventStore, (store) => store.readPayloads(streamId, options)))

/**
 * Reads the global log through the EventStore in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const readAll = (options?: ReadAllOptions): Stream.Stream<StoredEvent, ReadError, EventStore> =>
  Stream.unwrap(Effect.map(EventStore, (store) => store.readAll(options)))

/**
 * A stream's version through the EventStore in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const streamVersion = (streamId: StreamId): Effect.Effect<number, InvalidStreamId | StoreError, EventStore> =>
  Effect.flatMap(EventStore, (store) => store.streamVersion(streamId))

/**
 * Follows the global log through the EventStore in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const subscribe = (options?: SubscribeOptions): Stream.Stream<StoredEvent, ReadError, EventStore> =>
  Stream.unwrap(Effect.map(EventStore, (store) => store.subscribe(options)))

/**
 * The global position of the last readable event, through the EventStore in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const headPosition: Effect.Effect<bigint, StoreError, EventStore> = Effect.flatMap(
  EventStore,
  (store) => store.headPosition
)

/**
 * Reads the events matching a query through the EventStore in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const query = (query: Query.Query, options?: QueryOptions): Stream.Stream<StoredEvent, ReadError, EventStore> =>
  Stream.unwrap(Effect.map(EventStore, (store) => store.query(query, options)))
