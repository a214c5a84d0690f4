/**
 * chronicle: Effect-native event sourcing. The core: events, deciders, the
 * command and decision handlers, projections and subscriptions, the memory and
 * filesystem stores. It needs only `effect` and `@effect/platform`; the
 * PostgreSQL stores (`chronicle/postgres`), NATS (`chronicle/nats`), TOON
 * (`chronicle/toon`) and the test kits (`chronicle/testing`) are entries of
 * their own, so this one never loads `pg`, the NATS client or the TOON encoder.
 *
 * @since 0.1.0
 */

/** An opt-in LRU of aggregates: command handlers read only the events after the state they kept. */
export * as AggregateCache from "./AggregateCache.js"
/** The CheckpointStore service: where each named reader of the global log got to. */
export * as CheckpointStore from "./CheckpointStore.js"
/** Runs commands against deciders over an EventStore, retrying conflicts. */
export * as CommandHandler from "./CommandHandler.js"
/** Runs commands against Dynamic Consistency Boundaries: query, decide, conditional append. */
export * as DecisionHandler from "./DecisionHandler.js"
/** Decision models: state built from the events matching a query. */
export * as DecisionModel from "./DecisionModel.js"
/** Aggregates as pure functions: initialState, decide, evolve. */
export * as Decider from "./Decider.js"
/** Event envelopes: NewEvent, StoredEvent, EventMetadata. */
export * as Event from "./Event.js"
/** Schema-typed events to and from stored JSON. */
export * as EventCodec from "./EventCodec.js"
/** UUIDv7 event ids. */
export * as EventId from "./EventId.js"
/** The EventStore service, its errors and options. */
export * as EventStore from "./EventStore.js"
/** Expected versions for optimistic concurrency. */
export * as ExpectedVersion from "./ExpectedVersion.js"
/** Process managers (sagas): react to events with commands, propagating correlation ids. */
export * as ProcessManager from "./ProcessManager.js"
/** Projections: read models built from the global log. */
export * as Projection from "./Projection.js"
/** Runs projections: in the background, to the end of the log, rebuilt, or inline. */
export * as ProjectionRunner from "./ProjectionRunner.js"
/** Consumer groups: a projection split over workers that come and go, by leases in the store. */
export * as ConsumerGroup from "./ConsumerGroup.js"
/** Queries by event type and tags, for Dynamic Consistency Boundaries. */
export * as Query from "./Query.js"
/** Named subscriptions to the global log, with checkpoints. */
export * as Subscription from "./Subscription.js"
/** The metrics chronicle records. */
export * as Metrics from "./Metrics.js"
/** When to take snapshots: composable policies. */
export * as SnapshotPolicy from "./SnapshotPolicy.js"
/** The SnapshotStore service: the latest snapshot per stream. */
export * as SnapshotStore from "./SnapshotStore.js"
/** Branded `category-id` stream ids. */
export * as StreamId from "./StreamId.js"
/** Upcasters: evolve stored events to today's schemas on read. */
export * as Upcaster from "./Upcaster.js"
/** The in-memory event store. */
export * as MemoryEventStore from "./stores/memory/MemoryEventStore.js"
/** The in-memory checkpoint store. */
export * as MemoryCheckpointStore from "./stores/memory/MemoryCheckpointStore.js"
/** The in-memory snapshot store. */
export * as MemorySnapshotStore from "./stores/memory/MemorySnapshotStore.js"
/** The filesystem event store: the embedded default. */
export * as FileEventStore from "./stores/filesystem/FileEventStore.js"
/** The filesystem checkpoint store. */
export * as FileCheckpointStore from "./stores/filesystem/FileCheckpointStore.js"
/** The filesystem snapshot store. */
export * as FileSnapshotStore from "./stores/filesystem/FileSnapshotStore.js"
