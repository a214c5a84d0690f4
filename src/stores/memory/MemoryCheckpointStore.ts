/**
 * An in-memory checkpoint store: for tests, and beside the in-memory event store.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as CheckpointStore from "../../CheckpointStore.js"

/**
 * Builds an empty store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<CheckpointStore.CheckpointStoreService> = Effect.sync(() => {
  const positions = new Map<string, bigint>()
  return CheckpointStore.make("memory", {
    load: (name) => Effect.sync(() => Option.fromNullable(positions.get(name))),
    save: (name, position) => Effect.sync(() => void positions.set(name, position)),
    compareAndSet: (name, change) =>
      Effect.suspend(() => {
        const actual = Option.fromNullable(positions.get(name))
        if (!Option.getEquivalence((a: bigint, b: bigint) => a === b)(actual, change.expected)) {
          return Effect.fail(CheckpointStore.moved(name, change, actual))
        }
        positions.set(name, change.next)
        return Effect.void
      }),
    remove: (name) => Effect.sync(() => void positions.delete(name)),
    transaction: (effect) => effect
  })
})

/**
 * A fresh, empty store each time the layer is built.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (): Layer.Layer<CheckpointStore.CheckpointStore> => Layer.effect(CheckpointStore.CheckpointStore, make)
