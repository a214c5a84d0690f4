/**
 * Consumer groups: one projection split over workers that come and go. The
 * log is divided into a fixed number of partitions (by stream,
 * `StreamId.partitionOf`, the same split as `ProjectionRunner`'s
 * `partition: { member, of }`); live members hold leases on them, renewed
 * by a heartbeat, and share them out fairly. When a member dies its leases
 * expire and the others take its partitions; when one joins, the others
 * release their extra ones to it.
 *
 * Each owned partition runs as a lane: in global order, with its own
 * checkpoint (`name#p/P`). Taking a partition bumps its generation, and
 * every batch's checkpoint transaction checks owner and generation first:
 * an old owner that stalled past its lease fails with `PartitionLost`
 * instead of committing. Projections that write their read model in the
 * checkpoint's transaction get an exactly-once effect across rebalances.
 *
 * @example
 * import { ConsumerGroup } from "chronicle"
 * import { PostgresConsumerGroupStore } from "chronicle/postgres"
 * // in each worker process:
 * ConsumerGroup.run(Balances, { partitions: 16, leaseTtl: "10 seconds" })
 *   .pipe(Effect.provide(PostgresConsumerGroupStore.layer({ schema: "billing" })))
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import type { StoreError } from "./EventStore.js"
import { runGroup } from "./internal/consumerGroup.js"
import type * as Projection from "./Projection.js"
import type * as ProjectionRunner from "./ProjectionRunner.js"

/**
 * A member's hold on one partition: taking it bumps `generation`, which
 * fences every earlier holder.
 *
 * @since 0.2.0
 * @category models
 */
export interface Lease {
  readonly partition: number
  readonly generation: bigint
}

/**
 * What a heartbeat sees: the live members of the group (sorted) and the
 * leases this member still holds.
 *
 * @since 0.2.0
 * @category models
 */
export interface Membership {
  readonly members: ReadonlyArray<string>
  readonly owned: ReadonlyArray<Lease>
}

/**
 * A member no longer holds a partition (another took it after its lease
 * expired, or it released it): nothing was committed, and its lane stops.
 *
 * @since 0.2.0
 * @category errors
 */
export class PartitionLost extends Schema.TaggedError<PartitionLost>()("PartitionLost", {
  group: Schema.String,
  partition: Schema.Number,
  member: Schema.String,
  generation: Schema.BigIntFromSelf
}) {
  override get message() {
    return `Member ${JSON.stringify(this.member)} of group ${JSON.stringify(this.group)} lost partition ${this.partition} (generation ${this.generation})`
  }
}

/**
 * Where a group's members and leases live. All of it is database time and
 * row locks: no broker, no coordinator.
 *
 * @since 0.2.0
 * @category models
 */
export interface ConsumerGroupStoreService {
  /** Creates the group's `partitions` partitions, unowned; fails when the group exists with another count. */
  readonly join: (group: string, partitions: number) => Effect.Effect<void, StoreError>
  /** Renews the member's own lease and those of its partitions; returns who is live and what it still holds. */
  readonly heartbeat: (group: string, member: string, ttl: Duration.Duration) => Effect.Effect<Membership, StoreError>
  /** Takes up to `count` free or expired partitions, each with a new generation. */
  readonly claim: (group: string, member: string, ttl: Duration.Duration, count: number) => Effect.Effect<ReadonlyArray<Lease>, StoreError>
  /** Gives a partition back (when the member holds it with that generation). */
  readonly release: (group: string, member: string, lease: Lease) => Effect.Effect<void, StoreError>
  /** Gives every partition back and forgets the member. */
  readonly leave: (group: string, member: string) => Effect.Effect<void, StoreError>
  /**
   * Fails with `PartitionLost` unless the member still holds the lease; run
   * inside the checkpoint's transaction, it holds the lease row until commit
   * so that a takeover waits for the commit or the commit sees the takeover.
   */
  readonly fence: (group: string, member: string, lease: Lease) => Effect.Effect<void, PartitionLost | StoreError>
  /**
   * Run first inside a lane's checkpoint transaction: the database ends the
   * transaction (and its session) once it sits idle longer than `timeout`, so
   * a member stopped mid-batch does not hold the read model's rows, and the
   * member taking its partition over, past its lease. On PostgreSQL:
   * `SET LOCAL idle_in_transaction_session_timeout`.
   */
  readonly limitIdle: (timeout: Duration.Duration) => Effect.Effect<void, StoreError>
}

/**
 * The consumer group store service.
 *
 * @since 0.2.0
 * @category services
 */
export class ConsumerGroupStore extends Context.Tag("chronicle/ConsumerGroupStore")<ConsumerGroupStore, ConsumerGroupStoreService>() {}

/**
 * How many partitions `member` should hold: an even split over the live
 * members, the first ones (in sorted order) taking one more each when it
 * does not divide.
 *
 * @since 0.2.0
 * @category combinators
 */
export const fairShare = (partitions: number, members: ReadonlyArray<string>, member: string): number => {
  const index = Math.max(0, members.indexOf(member))
  const count = Math.max(1, members.length)
  return Math.floor(partitions / count) + (index < partitions % count ? 1 : 0)
}

/**
 * @since 0.2.0
 * @category models
 */
export interface GroupOptions extends Omit<ProjectionRunner.RunOptions, "partition" | "fence" | "begin"> {
  /** The group's name; default the projection's checkpoint name. */
  readonly group?: string | undefined
  /** This worker's name in the group; default a random one. */
  readonly member?: string | undefined
  /** Partitions of the log; every member of a group must agree. Default 16. */
  readonly partitions?: number | undefined
  /** How long a lease lasts without a heartbeat; default 10 seconds. */
  readonly leaseTtl?: Duration.DurationInput | undefined
  /** Time between heartbeats; default a third of `leaseTtl`. */
  readonly heartbeat?: Duration.DurationInput | undefined
  /**
   * How long a lane's checkpoint transaction may sit idle (between two of its
   * statements) before the database ends it; default `leaseTtl`. A handler
   * that waits longer than this inside a batch has its batch rolled back and
   * retried.
   */
  readonly idleInTransactionTimeout?: Duration.DurationInput | undefined
}

/**
 * Runs `projection` as a member of its consumer group until interrupted:
 * heartbeats, takes its fair share of the partitions, and runs a lane per
 * partition it holds. Interrupting it finishes the batches in hand and
 * releases its partitions. Fails when a lane parks; a lane the store
 * fails (a lost connection, a pool timeout) is logged as a warning and
 * started again at the next heartbeat. Give it the `SqlClient` the
 * checkpoint store uses, so the fence joins the checkpoint's transaction.
 *
 * @since 0.2.0
 * @category runners
 */
export const run = <E, R>(
  projection: Projection.Projection<E, R>,
  options: GroupOptions = {}
): Effect.Effect<never, ProjectionRunner.RunError | StoreError, R | ProjectionRunner.Requirements | ConsumerGroupStore> =>
  runGroup(projection, options)

/**
 * Starts `run` in the background for the life of the scope.
 *
 * @since 0.2.0
 * @category runners
 */
export const start = <E, R>(
  projection: Projection.Projection<E, R>,
  options: GroupOptions = {}
): Effect.Effect<
  Fiber.RuntimeFiber<never, ProjectionRunner.RunError | StoreError>,
  never,
  R | ProjectionRunner.Requirements | ConsumerGroupStore | Scope.Scope
> => Effect.forkScoped(run(projection, options))
