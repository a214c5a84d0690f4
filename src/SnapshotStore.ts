/**
 * The SnapshotStore port: keeps the latest snapshot of a stream's state, so
 * an aggregate with a long history loads from the snapshot plus the events
 * after it. State is JSON here (the caller encodes it with the decider's state
 * Schema); `stateSchemaVersion` says which shape it has.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { StoreError } from "./EventStore.js"
import type { StreamId } from "./StreamId.js"

/**
 * A snapshot: the state of a stream after the event at `version`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot {
  readonly streamId: StreamId
  readonly version: number
  readonly state: unknown
  readonly stateSchemaVersion: number
  readonly takenAt: Date
}

/**
 * A snapshot to save; the store stamps `takenAt`.
 *
 * @since 0.1.0
 * @category models
 */
export type NewSnapshot = Omit<Snapshot, "takenAt">

/**
 * The operations of a snapshot store.
 *
 * @since 0.1.0
 * @category models
 */
export interface SnapshotStoreService {
  /**
   * Keeps `snapshot` as the stream's latest, unless the stored one is of a
   * later version (concurrent snapshotters never move a stream backwards).
   */
  readonly save: (snapshot: NewSnapshot) => Effect.Effect<void, StoreError>
  /** The latest snapshot of a stream, if any. */
  readonly load: (streamId: StreamId) => Effect.Effect<Option.Option<Snapshot>, StoreError>
  /** Forgets a stream's snapshot. */
  readonly remove: (streamId: StreamId) => Effect.Effect<void, StoreError>
}

/**
 * The SnapshotStore service.
 *
 * @since 0.1.0
 * @category services
 */
export class SnapshotStore extends Context.Tag("chronicle/SnapshotStore")<SnapshotStore, SnapshotStoreService>() {}

/**
 * Validates a snapshot before a store keeps it: a non-negative integer
 * version, a positive state schema version, JSON state.
 *
 * @since 0.1.0
 * @category constructors
 */
export const validate = (snapshot: NewSnapshot): Effect.Effect<string, StoreError> =>
  Effect.suspend(() => {
    const invalid = (reason: string) =>
      Effect.fail(new StoreError({ operation: "saveSnapshot", reason: `invalid snapshot of ${snapshot.streamId}: ${reason}` }))
    if (!Number.isSafeInteger(snapshot.version) || snapshot.version < 0) {
      return invalid(`the version must be a non-negative integer, got ${snapshot.version}`)
    }
    if (!Number.isSafeInteger(snapshot.stateSchemaVersion) || snapshot.stateSchemaVersion < 1) {
      return invalid(`the state schema version must be a positive integer, got ${snapshot.stateSchemaVersion}`)
    }
    let json: string | undefined
    try {
      json = JSON.stringify(snapshot.state)
    } catch {
      json = undefined
    }
    return json === undefined ? invalid("the state is not JSON-serialisable") : Effect.succeed(json)
  })

/**
 * Wraps a snapshot store's operations in spans named after them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (name: string, service: SnapshotStoreService): SnapshotStoreService => {
  const span = (operation: string, attributes: Record<string, unknown>) =>
    Effect.withSpan(`SnapshotStore.${operation}`, {
      captureStackTrace: false,
      attributes: { "chronicle.store": name, ...attributes }
    })
  return {
    save: (snapshot) =>
      service.save(snapshot).pipe(span("save", { "chronicle.stream_id": snapshot.streamId, "chronicle.version": snapshot.version })),
    load: (streamId) => service.load(streamId).pipe(span("load", { "chronicle.stream_id": streamId })),
    remove: (streamId) => service.remove(streamId).pipe(span("remove", { "chronicle.stream_id": streamId }))
  }
}
