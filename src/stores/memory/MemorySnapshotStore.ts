/**
 * An in-memory snapshot store, for tests. State is kept as JSON text, as a
 * durable store would keep it.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as SnapshotStore from "../../SnapshotStore.js"
import type { StreamId } from "../../StreamId.js"

interface Kept {
  readonly streamId: StreamId
  readonly version: number
  readonly state: string
  readonly stateSchemaVersion: number
  readonly takenAt: number
}

/**
 * Builds an empty in-memory snapshot store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<SnapshotStore.SnapshotStoreService> = Effect.sync(() => {
  const kept = new Map<StreamId, Kept>()
  return SnapshotStore.make("memory", {
    save: (snapshot) =>
      Effect.flatMap(SnapshotStore.validate(snapshot), (state) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.sync(() => {
            const current = kept.get(snapshot.streamId)
            if (current !== undefined && current.version > snapshot.version) return
            kept.set(snapshot.streamId, {
              streamId: snapshot.streamId,
              version: snapshot.version,
              state,
              stateSchemaVersion: snapshot.stateSchemaVersion,
              takenAt: now
            })
          }))),
    load: (streamId) =>
      Effect.sync(() =>
        Option.map(Option.fromNullable(kept.get(streamId)), (k) => ({
          streamId: k.streamId,
          version: k.version,
          state: JSON.parse(k.state) as unknown,
          stateSchemaVersion: k.stateSchemaVersion,
          takenAt: new Date(k.takenAt)
        }))
      ),
    remove: (streamId) => Effect.sync(() => void kept.delete(streamId))
  })
})

/**
 * A fresh, empty in-memory snapshot store each time the layer is built.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (): Layer.Layer<SnapshotStore.SnapshotStore> => Layer.effect(SnapshotStore.SnapshotStore, make)
