/**
 * Named subscriptions to the global log: where to start (the beginning, the
 * current end, a position, or the subscription's checkpoint) and checkpoints
 * to resume from. Delivery is at least once: save the checkpoint after
 * handling, and a restart redelivers only what was not yet checkpointed.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type * as Duration from "effect/Duration"
import * as CheckpointStore from "./CheckpointStore.js"
import type { StoredEvent } from "./Event.js"
import * as EventStore from "./EventStore.js"

/**
 * Where a subscription starts: the first event of the log, the current end
 * (only new events), after a given position, or after the subscription's
 * saved checkpoint (the beginning when it has none).
 *
 * @since 0.1.0
 * @category models
 */
export type From = "start" | "end" | "checkpoint" | { readonly after: bigint }

/**
 * @since 0.1.0
 * @category models
 */
export interface SubscribeOptions {
  /** The subscription's name: the key of its checkpoint. */
  readonly name: string
  /** Default `"checkpoint"`. */
  readonly from?: From | undefined
  readonly chunkSize?: number | undefined
  readonly pollInterval?: Duration.DurationInput | undefined
}

/**
 * The global position a subscription starts after.
 *
 * @since 0.1.0
 * @category constructors
 */
export const startingPoint = (
  name: string,
  from: From
): Effect.Effect<bigint, EventStore.StoreError, EventStore.EventStore | CheckpointStore.CheckpointStore> =>
  from === "start"
    ? Effect.succeed(0n)
    : from === "end"
    ? EventStore.headPosition
    : from === "checkpoint"
    ? Effect.map(CheckpointStore.load(name), Option.getOrElse(() => 0n))
    : Effect.succeed(from.after)

/**
 * Follows the global log from `options.from`: the events after it in global
 * order, then live, forever.
 *
 * @since 0.1.0
 * @category constructors
 */
export const subscribe = (
  options: SubscribeOptions
): Stream.Stream<StoredEvent, EventStore.ReadError, EventStore.EventStore | CheckpointStore.CheckpointStore> =>
  Stream.unwrap(
    Effect.map(startingPoint(options.name, options.from ?? "checkpoint"), (after) =>
      EventStore.subscribe({ after, chunkSize: options.chunkSize, pollInterval: options.pollInterval }))
  )

/**
 * Saves that the subscription `name` has handled `event` (and all before it).
 *
 * @since 0.1.0
 * @category combinators
 */
export const commit = (
  name: string,
  event: StoredEvent
): Effect.Effect<void, EventStore.StoreError, CheckpointStore.CheckpointStore> =>
  CheckpointStore.save(name, event.globalPosition)
