/**
 * chronicle: Effect-native event sourcing.
 *
 * @since 0.1.0
 */

/** Runs commands against deciders over an EventStore, retrying conflicts. */
export * as CommandHandler from "./CommandHandler.js"
/** Aggregates as pure functions: initialState, decide, evolve. */
export * as Decider from "./Decider.js"
/** Given-When-Then specifications for deciders. */
export * as DeciderSpec from "./DeciderSpec.js"
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
/** The in-memory snapshot store. */
export * as MemorySnapshotStore from "./stores/memory/MemorySnapshotStore.js"
/** The PostgreSQL event store. */
export * as PostgresEventStore from "./stores/postgres/PostgresEventStore.js"
/** The PostgreSQL snapshot store. */
export * as PostgresSnapshotStore from "./stores/postgres/PostgresSnapshotStore.js"
/** The filesystem event store: the embedded default. */
export * as FileEventStore from "./stores/filesystem/FileEventStore.js"
/** The filesystem snapshot store. */
export * as FileSnapshotStore from "./stores/filesystem/FileSnapshotStore.js"
