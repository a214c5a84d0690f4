import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import * as ConsumerGroup from "../ConsumerGroup.js"
import * as EventStore from "../EventStore.js"
import * as Metrics from "../Metrics.js"
import * as Projection from "../Projection.js"
import * as ProjectionRunner from "../ProjectionRunner.js"

interface RunningLane {
  readonly generation: bigint
  readonly fiber: Fiber.RuntimeFiber<void, never>
}

const invalid = (reason: string) =>
  Effect.fail(new EventStore.InvalidArgument({ operation: "ConsumerGroup", argument: "options", reason }))

/** One member of a group: heartbeat, fair share, a lane per held partition. */
export const runGroup = <E, R>(projection: Projection.Projection<E, R>, options: ConsumerGroup.GroupOptions) =>
  Effect.gen(function*() {
    const partitions = options.partitions ?? 16
    if (!Number.isSafeInteger(partitions) || partitions < 1) return yield* invalid(`partitions must be an integer >= 1, got ${partitions}`)
    const store = yield* ConsumerGroup.ConsumerGroupStore
    const group = options.group ?? Projection.checkpointName(projection)
    const member = options.member ?? crypto.randomUUID()
    const ttl = Duration.decode(options.leaseTtl ?? "10 seconds")
    const every = options.heartbeat === undefined ? Duration.unsafeDivide(ttl, 3) : Duration.decode(options.heartbeat)
    const idle = options.idleInTransactionTimeout === undefined ? ttl : Duration.decode(options.idleInTransactionTimeout)
    const tagged = <T extends Metric.Metric<any, any, any>>(metric: T) => Metric.tagged(metric, "group", group) as T
    const owned = tagged(Metrics.consumerGroupPartitions)
    const rebalances = tagged(Metrics.consumerGroupRebalances)

    yield* store.join(group, partitions)
    yield* Effect.addFinalizer(() => Effect.ignore(store.leave(group, member)))
    const lanes = new Map<number, RunningLane>()
    const failed = yield* Deferred.make<never, ProjectionRunner.RunError | EventStore.StoreError>()
    const scope = yield* Effect.scope
    yield* Effect.addFinalizer(() => Effect.forEach(lanes.values(), (lane) => Fiber.interrupt(lane.fiber), { discard: true }))

    const stop = (partition: number) => {
      const lane = lanes.get(partition)
      lanes.delete(partition)
      return lane === undefined ? Effect.void : Fiber.interrupt(lane.fiber)
    }
    const begin = (lease: ConsumerGroup.Lease) =>
      ProjectionRunner.run(projection, {
        ...options,
        partition: { member: lease.partition, of: partitions },
        fence: store.fence(group, member, lease),
        begin: store.limitIdle(idle)
      }).pipe(
        // a partition lost or moved, or a lane the store failed, is the heartbeat's business: it restarts the lane if the lease is still held
        Effect.catchTags({
          PartitionLost: () => Effect.void,
          CheckpointMoved: () => Effect.void,
          StoreError: (error) => Effect.logWarning(`chronicle: consumer group ${group} lane ${lease.partition} failed; it restarts at the next heartbeat`, error)
        }),
        Effect.catchAll((error) => Deferred.fail(failed, error)),
        Effect.asVoid,
        Effect.forkIn(scope),
        Effect.map((fiber) => lanes.set(lease.partition, { generation: lease.generation, fiber }))
      )

    const beat = Effect.gen(function*() {
      const view = yield* store.heartbeat(group, member, ttl)
      const held = new Map(view.owned.map((lease) => [lease.partition, lease.generation]))
      for (const [partition, lane] of lanes) {
        if (lane.fiber.unsafePoll() !== null) lanes.delete(partition)
        else if (held.get(partition) !== lane.generation) yield* stop(partition)
      }
      const share = ConsumerGroup.fairShare(partitions, view.members, member)
      const extra = [...view.owned].sort((a, b) => b.partition - a.partition).slice(0, Math.max(0, view.owned.length - share))
      for (const lease of extra) {
        yield* stop(lease.partition)
        yield* store.release(group, member, lease)
        held.delete(lease.partition)
      }
      const claimed = held.size < share ? yield* store.claim(group, member, ttl, share - held.size) : []
      for (const lease of claimed) held.set(lease.partition, lease.generation)
      for (const [partition, generation] of held) {
        if (lanes.get(partition)?.generation !== generation) yield* begin({ partition, generation })
      }
      if (extra.length + claimed.length > 0) yield* Metric.incrementBy(rebalances, extra.length + claimed.length)
      yield* Metric.set(owned, lanes.size)
    }).pipe(
      Effect.withSpan("ConsumerGroup.heartbeat", { captureStackTrace: false, attributes: { "chronicle.group": group, "chronicle.member": member } })
    )

    // a failed heartbeat is tried again at the next one; the leases outlive a few misses
    yield* beat.pipe(
      Effect.catchAll((error) => Effect.logWarning(`chronicle: consumer group ${group} heartbeat failed`, error)),
      Effect.repeat(Schedule.spaced(every)),
      Effect.forkIn(scope)
    )
    return yield* Deferred.await(failed)
  }).pipe(
    Effect.scoped,
    Effect.withSpan("ConsumerGroup.run", { attributes: { "chronicle.projection": projection.name } })
  )
