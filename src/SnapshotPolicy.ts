/**
 * When to take a snapshot: policies are values (predicates over what just
 * happened to a stream) that compose with `any` and `all`. The command
 * handler asks its policy after every successful append.
 *
 * @example
 * const policy = SnapshotPolicy.any(
 *   SnapshotPolicy.everyEvents(500),
 *   SnapshotPolicy.onEventTypes("AccountClosed")
 * )
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import type { StreamId } from "./StreamId.js"

/**
 * What a policy sees after an append.
 *
 * @since 0.1.0
 * @category models
 */
export interface SnapshotContext<E, S> {
  readonly streamId: StreamId
  /** The stream's version after the append. */
  readonly version: number
  /** The state after the append. */
  readonly state: S
  /** The events the append wrote. */
  readonly events: ReadonlyArray<E>
  /** The snapshot the state was loaded from, or the last one taken, if any. */
  readonly lastSnapshot: Option.Option<{ readonly version: number; readonly takenAt: Date }>
  readonly now: Date
}

/**
 * Whether to snapshot now.
 *
 * @since 0.1.0
 * @category models
 */
export type SnapshotPolicy<E = unknown, S = unknown> = (context: SnapshotContext<E, S>) => boolean

/**
 * Snapshot once `n` events have been appended since the last snapshot (or
 * since the stream began).
 *
 * @since 0.1.0
 * @category constructors
 */
export const everyEvents = (n = 100): SnapshotPolicy => {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`SnapshotPolicy.everyEvents needs a positive integer, got ${n}`)
  return ({ lastSnapshot, version }) => version - Option.match(lastSnapshot, { onNone: () => 0, onSome: (s) => s.version }) >= n
}

/**
 * Snapshot when at least `interval` has passed since the last snapshot; a
 * stream without one is snapshotted at its first append.
 *
 * @since 0.1.0
 * @category constructors
 */
export const afterTime = (interval: Duration.DurationInput): SnapshotPolicy => {
  const millis = Duration.toMillis(interval)
  return ({ lastSnapshot, now }) =>
    Option.match(lastSnapshot, { onNone: () => true, onSome: (s) => now.getTime() - s.takenAt.getTime() >= millis })
}

/**
 * Snapshot when the append wrote an event of one of these types (a terminal
 * state, say).
 *
 * @since 0.1.0
 * @category constructors
 */
export const onEventTypes = <Tag extends string>(...types: ReadonlyArray<Tag>): SnapshotPolicy<{ readonly _tag: string }> => {
  const wanted = new Set<string>(types)
  return ({ events }) => events.some((event) => wanted.has(event._tag))
}

/**
 * Snapshot when a predicate of your own says so.
 *
 * @since 0.1.0
 * @category constructors
 */
export const when = <E, S>(predicate: (context: SnapshotContext<E, S>) => boolean): SnapshotPolicy<E, S> => predicate

/**
 * Never snapshot (loading still uses snapshots that exist).
 *
 * @since 0.1.0
 * @category constructors
 */
export const never: SnapshotPolicy = () => false

/**
 * Snapshot when any of the policies says so.
 *
 * @since 0.1.0
 * @category combinators
 */
export const any = <E, S>(...policies: ReadonlyArray<SnapshotPolicy<E, S>>): SnapshotPolicy<E, S> => (context) =>
  policies.some((policy) => policy(context))

/**
 * Snapshot when all of the policies say so.
 *
 * @since 0.1.0
 * @category combinators
 */
export const all = <E, S>(...policies: ReadonlyArray<SnapshotPolicy<E, S>>): SnapshotPolicy<E, S> => (context) =>
  policies.every((policy) => policy(context))
