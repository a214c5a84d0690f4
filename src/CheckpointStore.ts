/**
 * The CheckpointStore port: where each named reader of the global log
 * (projection, process manager, forwarder) got to. A reader saves the global
 * position of the last event it handled, and resumes after it.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { StoreError } from "./EventStore.js"

/**
 * A compare-and-set save found the checkpoint somewhere other than where the
 * saver expected it: another runner of the same reader moved it (or removed
 * it for a rebuild). Nothing was saved; a runner that gets this stops instead
 * of applying events twice. `null` stands for "no checkpoint".
 *
 * @since 0.2.0
 * @category errors
 */
export class CheckpointMoved extends Schema.TaggedError<CheckpointMoved>()("CheckpointMoved", {
  name: Schema.String,
  expected: Schema.NullOr(Schema.BigIntFromSelf),
  actual: Schema.NullOr(Schema.BigIntFromSelf)
}) {
  override get message() {
    return `Checkpoint ${JSON.stringify(this.name)} moved: expected ${this.expected ?? "none"}, found ${
      this.actual ?? "none"
    } (another runner of it is active, or it was removed)`
  }
}

/**
 * A compare-and-set change of a checkpoint: from `expected` (`Option.none()`:
 * there is none yet) to `next`.
 *
 * @since 0.2.0
 * @category models
 */
export interface CheckpointChange {
  readonly expected: Option.Option<bigint>
  readonly next: bigint
}

/**
 * The operations of a checkpoint store.
 *
 * @since 0.1.0
 * @category models
 */
export interface CheckpointStoreService {
  /** The position saved under `name`, if any. */
  readonly load: (name: string) => Effect.Effect<Option.Option<bigint>, StoreError>
  /** Saves `position` under `name`, wherever it was (for tools; runners use `compareAndSet`). */
  readonly save: (name: string, position: bigint) => Effect.Effect<void, StoreError>
  /**
   * Moves the checkpoint of `name` from `change.expected` to `change.next`,
   * or fails with `CheckpointMoved` (saving nothing) when it is elsewhere.
   * Atomic against every other save, remove and compare-and-set, from any
   * process; inside `transaction` on PostgreSQL, a refusal rolls back with it.
   */
  readonly compareAndSet: (name: string, change: CheckpointChange) => Effect.Effect<void, CheckpointMoved | StoreError>
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
 * The `CheckpointMoved` a store reports when `name` holds `actual` instead of
 * `change.expected`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const moved = (name: string, change: CheckpointChange, actual: Option.Option<bigint>): CheckpointMoved =>
  new CheckpointMoved({ name, expected: Option.getOrNull(change.expected), actual: Option.getOrNull(actual) })

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
  const checked = <A, E>(operation: string, checkpoint: string, effect: Effect.Effect<A, E>) =>
    typeof checkpoint !== "string" || checkpoint.length === 0
      ? invalid(operation, "a checkpoint name must be a non-empty string")
      : effect.pipe(span(operation, checkpoint))
  const badPosition = (position: unknown) => typeof position !== "bigint" || position < 0n
  return {
    load: (checkpoint) => checked("loadCheckpoint", checkpoint, service.load(checkpoint)),
    save: (checkpoint, position) =>
      badPosition(position)
        ? invalid("saveCheckpoint", `a checkpoint position must be a bigint >= 0, got ${String(position)}`)
        : checked("saveCheckpoint", checkpoint, service.save(checkpoint, position)),
    compareAndSet: (checkpoint, change) =>
      badPosition(change?.next) || !Option.isOption(change.expected) || Option.exists(change.expected, badPosition)
        ? invalid(
          "compareAndSetCheckpoint",
          `a checkpoint change needs expected: Option<bigint >= 0> and next: bigint >= 0, got ${
            Option.isOption(change?.expected) ? Option.match(change.expected, { onNone: () => "none", onSome: String }) : typeof change?.expected
          } → ${String(change?.next)}`
        )
        : checked("compareAndSetCheckpoint", checkpoint, service.compareAndSet(checkpoint, change)),
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

/**
 * Moves a checkpoint from `change.expected` to `change.next` through the
 * CheckpointStore in context, or fails with `CheckpointMoved`.
 *
 * @since 0.2.0
 * @category accessors
 */
export const compareAndSet = (
  name: string,
  change: CheckpointChange
): Effect.Effect<void, CheckpointMoved | StoreError, CheckpointStore> =>
  Effect.flatMap(CheckpointStore, (store) => store.compareAndSet(name, change))
