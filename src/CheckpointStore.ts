/**
 * The CheckpointStore port: where each named reader of the global log
 * (projection, process manager, forwarder) got to. A reader saves the global
 * position of the last event it handled, and resumes after it.
 *
 * @since 0.1.0
 */
import { Context, Effect } from "effect"
import type { Option } from "effect"
import { StoreError } from "./EventStore.js"

/**
 * The operations of a checkpoint store.
 *
 * @since 0.1.0
 * @category models
 */
export interface CheckpointStoreService {
  /** The position saved under `name`, if any. */
  readonly load: (name: string) => Effect.Effect<Option.Option<bigint>, StoreError>
  /** Saves `position` under `name`. */
  readonly save: (name: string, position: bigint) => Effect.Effect<void, StoreError>
  /** Forgets the checkpoint of `name` (a rebuild starts from the beginning). */
  readonly remove: (name: string) => Effect.Effect<void, StoreError>
  /**
   * Runs `effect` so that the `save`s inside it take effect with it or not at
   * all. On PostgreSQL it is one database transaction, which your own queries
   * on the same `SqlClient` join: a read model and its checkpoint commit
   * together (exactly-once effect). Elsewhere it just runs `effect`.
   */
  readonly transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StoreError, R>
}

/**
 * The CheckpointStore service.
 *
 * @since 0.1.0
 * @category services
 */
export class CheckpointStore extends Context.Tag("chronicle/CheckpointStore")<CheckpointStore, CheckpointStoreService>() {}

const invalid = (operation: string, reason: string) => Effect.fail(new StoreError({ operation, reason }))

/**
 * Builds the service from a store's operations, adding name and position
 * checks and a span per operation.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (name: string, service: CheckpointStoreService): CheckpointStoreService => {
  const span = (operation: string, checkpoint: string) =>
    Effect.withSpan(`CheckpointStore.${operation}`, {
      kind: "client",
      captureStackTrace: false,
      attributes: { "chronicle.store": name, "chronicle.checkpoint": checkpoint }
    })
  const checked = <A>(operation: string, checkpoint: string, effect: Effect.Effect<A, StoreError>) =>
    typeof checkpoint !== "string" || checkpoint.length === 0
      ? invalid(operation, "a checkpoint name must be a non-empty string")
      : effect.pipe(span(operation, checkpoint))
  return {
    load: (checkpoint) => checked("loadCheckpoint", checkpoint, service.load(checkpoint)),
    save: (checkpoint, position) =>
      typeof position !== "bigint" || position < 0n
        ? invalid("saveCheckpoint", `a checkpoint position must be a bigint >= 0, got ${String(position)}`)
        : checked("saveCheckpoint", checkpoint, service.save(checkpoint, position)),
    remove: (checkpoint) => checked("removeCheckpoint", checkpoint, service.remove(checkpoint)),
    transaction: service.transaction
  }
}

/**
 * Loads a checkpoint through the CheckpointStore in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const load = (name: string): Effect.Effect<Option.Option<bigint>, StoreError, CheckpointStore> =>
  Effect.flatMap(CheckpointStore, (store) => store.load(name))

/**
 * Saves a checkpoint through the CheckpointStore in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const save = (name: string, position: bigint): Effect.Effect<void, StoreError, CheckpointStore> =>
  Effect.flatMap(CheckpointStore, (store) => store.save(name, position))
