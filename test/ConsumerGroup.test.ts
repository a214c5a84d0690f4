/**
 * A consumer group member over the memory stores and a group store that
 * grants every partition: what the member does with its lanes, apart from
 * any database.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { ConsumerGroup, EventStore, MemoryCheckpointStore, MemoryEventStore, Projection, StreamId } from "chronicle"
import { events } from "./contract/EventStoreContract.js"
import { eventually } from "./support/time.js"

/** A group store with one member in mind: every partition is free for it, leases never expire. */
const grantingGroups = Layer.sync(ConsumerGroup.ConsumerGroupStore, (): ConsumerGroup.ConsumerGroupStoreService => {
  const held = new Map<number, bigint>()
  let partitions = 0
  return {
    join: (_group, count) => Effect.sync(() => void (partitions = count)),
    heartbeat: (_group, member) =>
      Effect.sync(() => ({ members: [member], owned: [...held].map(([partition, generation]) => ({ partition, generation })) })),
    claim: (_group, _member, _ttl, count) =>
      Effect.sync(() => {
        const taken: Array<ConsumerGroup.Lease> = []
        for (let partition = 0; partition < partitions && taken.length < count; partition++) {
          if (held.has(partition)) continue
          held.set(partition, 1n)
          taken.push({ partition, generation: 1n })
        }
        return taken
      }),
    release: (_group, _member, lease) => Effect.sync(() => void held.delete(lease.partition)),
    leave: () => Effect.sync(() => held.clear()),
    fence: () => Effect.void,
    limitIdle: () => Effect.void
  }
})

/** The memory EventStore, whose first `failures` page reads fail with a StoreError (a connection ended under them). */
const failingReads = (failures: number) =>
  Layer.effect(
    EventStore.EventStore,
    Effect.map(EventStore.EventStore, (store): EventStore.EventStoreService => ({
      ...store,
      readLogPage: (options) =>
        failures-- > 0
          ? Effect.fail(new EventStore.StoreError({ operation: "readAll", reason: "Connection terminated due to idle-in-transaction timeout" }))
          : store.readLogPage(options)
    }))
  ).pipe(Layer.provide(MemoryEventStore.layer()))

describe("ConsumerGroup", () => {
  it.live("given lanes whose store reads fail, the member keeps running: each lane starts again at the next heartbeat and handles every event once", () =>
    Effect.gen(function*() {
      yield* Effect.forEach([0, 1, 2, 3], (s) => EventStore.append(StreamId.unsafeMake("acct", `s${s}`), events(5), { expectedVersion: "NoStream" }))
      const handled: Array<string> = []
      const projection = Projection.make({ name: "counted", handle: (event) => Effect.sync(() => void handled.push(event.eventId)) })
      const member = yield* ConsumerGroup.start(projection, { partitions: 2, leaseTtl: "3 seconds", heartbeat: "50 millis", pollInterval: "50 millis" })
      const running = (count: number) =>
        Effect.sync(() => {
          if (member.unsafePoll() !== null) throw new Error("the member stopped")
          return handled.length === count
        })
      yield* eventually(running(20), "the 20 events are handled")
      yield* Effect.forEach([0, 1, 2, 3], (s) => EventStore.append(StreamId.unsafeMake("acct", `s${s}`), events(1), { expectedVersion: 5 }))
      yield* eventually(running(24), "the 4 later events are handled")
      expect(new Set(handled).size).toBe(24)
      yield* Fiber.interrupt(member)
    }).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(failingReads(3), MemoryCheckpointStore.layer(), grantingGroups))))
})
