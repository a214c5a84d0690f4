import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Metrics from "../Metrics.js"
import * as SnapshotPolicy from "../SnapshotPolicy.js"
import * as SnapshotStore from "../SnapshotStore.js"
import type { StreamId } from "../StreamId.js"

/** How a command handler snapshots its aggregate's state. */
export interface SnapshotOptions<E, S> {
  /** The state's Schema: snapshots hold the state in its encoded (JSON) form. */
  readonly schema: Schema.Schema<S, any, never>
  /** The version of the state's shape; a snapshot of another version is not used. Default 1. */
  readonly version?: number | undefined
  /** When to snapshot after an append; default every 100 events. */
  readonly policy?: SnapshotPolicy.SnapshotPolicy<E, S> | undefined
}

/** A snapshot found usable for a load. */
export interface Usable<S> {
  readonly state: S
  readonly version: number
  readonly takenAt: Date
}

/** Counts and logs a snapshot that a load did not use: the aggregate is replayed instead. */
export const ignored = (streamId: StreamId, why: string): Effect.Effect<void> =>
  Effect.zipRight(
    // Stryker disable next-line StringLiteral: a log message
    Effect.logWarning(`chronicle: ignoring the snapshot of ${streamId} (${why}); replaying`),
    Metric.increment(Metrics.snapshotsIgnored)
  )

/**
 * Forgets a snapshot of a version the stream never reached, so the snapshot
 * taken after the replay replaces it (a save never moves a stream's snapshot
 * backwards). Best effort, like every snapshot write.
 */
export const discard = (streamId: StreamId): Effect.Effect<void, never, SnapshotStore.SnapshotStore> =>
  Effect.flatMap(SnapshotStore.SnapshotStore, (store) => store.remove(streamId)).pipe(
    // Stryker disable next-line StringLiteral: a log message
    Effect.catchAll((error) => Effect.logWarning(`chronicle: could not remove the snapshot of ${streamId}: ${error.message}`))
  )

/**
 * The latest snapshot, if it is usable for a load that stops at `toVersion`.
 * One that cannot be loaded (a damaged file, say), of another state schema
 * version, or whose state does not decode is ignored: logged, counted, replayed past.
 */
export const find = <E, S>(
  options: SnapshotOptions<E, S>,
  streamId: StreamId,
  toVersion: number
): Effect.Effect<{ readonly usable: Option.Option<Usable<S>>; readonly rejected: boolean }, never, SnapshotStore.SnapshotStore> =>
  Effect.gen(function*() {
    const store = yield* SnapshotStore.SnapshotStore
    const rejected = { usable: Option.none<Usable<S>>(), rejected: true }
    const loaded = yield* Effect.either(store.load(streamId))
    if (Either.isLeft(loaded)) {
      // Stryker disable next-line StringLiteral: a log message
      return yield* Effect.as(ignored(streamId, `it cannot be loaded: ${loaded.left.message}`), rejected)
    }
    const found = loaded.right
    if (Option.isNone(found) || found.value.version > toVersion) return { usable: Option.none(), rejected: false }
    const snapshot = found.value
    const expected = options.version ?? 1
    // Stryker disable next-line StringLiteral: a log message
    const reject = (why: string) => Effect.as(ignored(streamId, `at version ${snapshot.version}: ${why}`), rejected)
    if (snapshot.stateSchemaVersion !== expected) {
      // Stryker disable next-line StringLiteral: a log message
      return yield* reject(`state schema version ${snapshot.stateSchemaVersion}, expected ${expected}`)
    }
    const state = Schema.decodeUnknownEither(options.schema)(snapshot.state)
    if (Either.isLeft(state)) {
      // Stryker disable next-line StringLiteral: a log message
      return yield* reject(`its state does not decode: ${ParseResult.TreeFormatter.formatErrorSync(state.left)}`)
    }
    return {
      usable: Option.some({ state: state.right, version: snapshot.version, takenAt: snapshot.takenAt }),
      rejected: false
    }
  })

/**
 * Saves a snapshot of `state` at `version`. Never fails: a snapshot is an
 * optimisation, so errors are logged and counted.
 */
export const save = <E, S>(
  options: SnapshotOptions<E, S>,
  streamId: StreamId,
  state: S,
  version: number
): Effect.Effect<boolean, never, SnapshotStore.SnapshotStore> =>
  Effect.gen(function*() {
    const store = yield* SnapshotStore.SnapshotStore
    const encoded = yield* Schema.encode(options.schema)(state)
    yield* store.save({ streamId, version, state: encoded, stateSchemaVersion: options.version ?? 1 })
    yield* Metric.increment(Metrics.snapshotsTaken)
    return true
  }).pipe(
    Effect.catchAllCause((cause) =>
      Effect.as(
        Effect.zipRight(
          // Stryker disable next-line StringLiteral: a log message
          Effect.logWarning(`chronicle: could not snapshot ${streamId} at version ${version}: ${Cause.pretty(cause)}`),
          Metric.increment(Metrics.snapshotFailures)
        ),
        false
      )
    ),
    // Stryker disable all: tracing only (span name and attributes), no behaviour
    Effect.withSpan("CommandHandler.snapshot", {
      captureStackTrace: false,
      attributes: { "chronicle.stream_id": streamId, "chronicle.version": version }
    })
    // Stryker restore all
  )

/** Applies the policy after an append and snapshots when it says so: the snapshot taken, if one was. */
export const afterAppend = <E, S>(
  options: SnapshotOptions<E, S>,
  context: Omit<SnapshotPolicy.SnapshotContext<E, S>, "now">
): Effect.Effect<Option.Option<{ readonly version: number; readonly takenAt: Date }>, never, SnapshotStore.SnapshotStore> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const policy = options.policy ?? (SnapshotPolicy.everyEvents(100) as SnapshotPolicy.SnapshotPolicy<E, S>)
    // Stryker disable next-line BooleanLiteral: equivalent: set by the policy, or unread when it throws
    let take = false
    try {
      take = policy({ ...context, now: new Date(now) })
    } catch (error) {
      return Effect.as(
        Effect.zipRight(
          // Stryker disable next-line StringLiteral: a log message
          Effect.logWarning(`chronicle: the snapshot policy of ${context.streamId} threw: ${String(error)}`),
          Metric.increment(Metrics.snapshotFailures)
        ),
        Option.none()
      )
    }
    if (!take) return Effect.succeed(Option.none())
    return Effect.map(
      save(options, context.streamId, context.state, context.version),
      (saved) => saved ? Option.some({ version: context.version, takenAt: new Date(now) }) : Option.none()
    )
  })
