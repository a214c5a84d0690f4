/**
 * An opt-in cache of aggregates for command handlers. With it, a handler
 * keeps each aggregate's state and version after a command, and the next
 * command on that stream reads only the events appended since (by anyone, in
 * any process), instead of the whole stream. It stays correct under
 * concurrent writers: the tail read brings the state up to date, and the
 * append's expected version refuses a decision on a stale one (the handler
 * then catches up and decides again).
 *
 * Provide the layer and every `CommandHandler` in its scope uses it (unless
 * made with `cache: false`). Entries are keyed by store, decider, codec and
 * stream, and evicted least recently used first, bounded by entries and, if
 * given, by bytes (estimated as twice a state's JSON length; a state without
 * JSON is not cached).
 *
 * @example
 * const program = accounts.handle(streamId, { _tag: "Deposit", amount: 100 }).pipe(
 *   Effect.provide(AggregateCache.layer({ maxEntries: 10_000 }))
 * )
 *
 * @since 0.2.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { CacheStats } from "./internal/aggregateCache.js"
import { LruAggregates } from "./internal/aggregateCache.js"
import { InvalidArgument } from "./EventStore.js"

/**
 * Bounds of the cache.
 *
 * @since 0.2.0
 * @category options
 */
export interface AggregateCacheOptions {
  /** At most this many aggregates. */
  readonly maxEntries: number
  /** At most about this many bytes of state (twice the JSON length of each); unbounded if not given. */
  readonly maxBytes?: number | undefined
}

/**
 * How the cache fared: hits and misses of command handlers' lookups,
 * evictions, and what it holds now.
 *
 * @since 0.2.0
 * @category models
 */
export type Stats = CacheStats

/**
 * The cache: an LRU of aggregates keyed by store, decider, codec and stream.
 *
 * @since 0.2.0
 * @category models
 */
export interface AggregateCacheService {
  /** Internal: what command handlers read and write. */
  readonly entries: LruAggregates
  /** Hits, misses, evictions, entries and bytes so far. */
  readonly stats: Effect.Effect<Stats>
}

/**
 * The AggregateCache service.
 *
 * @since 0.2.0
 * @category services
 */
export class AggregateCache extends Context.Tag("chronicle/AggregateCache")<AggregateCache, AggregateCacheService>() {}

/**
 * A new, empty cache; fails with `InvalidArgument` on bounds that are not
 * positive integers.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: AggregateCacheOptions): Effect.Effect<AggregateCacheService, InvalidArgument> =>
  Effect.suspend(() => {
    const { maxBytes, maxEntries } = options
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      return Effect.fail(new InvalidArgument({ operation: "AggregateCache.make", argument: "maxEntries", reason: `must be a positive integer, got ${maxEntries}` }))
    }
    if (maxBytes !== undefined && (!Number.isSafeInteger(maxBytes) || maxBytes < 1)) {
      return Effect.fail(new InvalidArgument({ operation: "AggregateCache.make", argument: "maxBytes", reason: `must be a positive integer, got ${maxBytes}` }))
    }
    const entries = new LruAggregates(maxEntries, maxBytes)
    return Effect.succeed({ entries, stats: Effect.sync(() => entries.stats()) })
  })

/**
 * A cache for the command handlers of the program it is provided to.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: AggregateCacheOptions): Layer.Layer<AggregateCache, InvalidArgument> =>
  Layer.effect(AggregateCache, make(options))

/**
 * `layer` with its bounds read from `Config`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<AggregateCacheOptions>
): Layer.Layer<AggregateCache, InvalidArgument | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))

/**
 * The stats of the cache in context.
 *
 * @since 0.2.0
 * @category accessors
 */
export const stats: Effect.Effect<Stats, never, AggregateCache> = Effect.flatMap(AggregateCache, (cache) => cache.stats)
