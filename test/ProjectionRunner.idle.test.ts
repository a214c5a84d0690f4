/**
 * A partitioned runner whose partition gets none of the events notes that it
 * moved on over the others' events now and then (at most once a second), as
 * Effect's Clock tells: a TestClock drives it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Queue, Stream, TestClock } from "effect"
import { CheckpointStore, EventStore, MemoryCheckpointStore, MemoryEventStore, Projection, ProjectionRunner } from "chronicle"

/**
 * The memory stores, but the live log is the pages the test hands over one
 * at a time (`feed` returns once the runner asks for the next: it is done
 * with the page), and every checkpoint written is noted in `written`.
 */
const scriptedStores = Effect.gen(function*() {
  const pages = yield* Queue.unbounded<EventStore.LogPage>()
  const pulled = yield* Queue.unbounded<void>()
  const written: Array<bigint> = []
  const layer = Layer.merge(
    Layer.effect(
      EventStore.EventStore,
      Effect.map(EventStore.EventStore, (store): EventStore.EventStoreService => ({
        ...store,
        subscribePages: () => Stream.repeatEffect(Effect.zipRight(Queue.offer(pulled, undefined), Queue.take(pages)))
      }))
    ).pipe(Layer.provide(MemoryEventStore.layer())),
    Layer.effect(
      CheckpointStore.CheckpointStore,
      Effect.map(CheckpointStore.CheckpointStore, (store): CheckpointStore.CheckpointStoreService => ({
        ...store,
        save: (name, position) => Effect.tap(store.save(name, position), () => void written.push(position)),
        compareAndSet: (name, change) => Effect.tap(store.compareAndSet(name, change), () => void written.push(change.next))
      }))
    ).pipe(Layer.provide(MemoryCheckpointStore.layer()))
  )
  /** A page of the others' events only, up to `through`, once the runner is done with it. */
  const feedOthers = (through: bigint) => Effect.zipRight(Queue.offer(pages, { events: [], through }), Queue.take(pulled))
  return { layer, written, feedOthers, following: Queue.take(pulled) }
})

describe("ProjectionRunner, a partition that gets no events", () => {
  it.effect("given a member whose partition gets none of the events, when the others' events come, then it notes its checkpoint at most once a second of the Clock", () =>
    Effect.gen(function*() {
      const { feedOthers, following, layer, written } = yield* scriptedStores
      yield* Effect.gen(function*() {
        yield* ProjectionRunner.start(Projection.make({ name: "idle", handle: () => Effect.void }), { partition: { member: 0, of: 2 } })
        yield* following
        yield* feedOthers(1n)
        yield* feedOthers(2n)
        yield* TestClock.adjust("999 millis")
        yield* feedOthers(3n)
        yield* TestClock.adjust("1 millis")
        yield* feedOthers(4n)
        yield* feedOthers(5n)
        expect(written).toEqual([1n, 4n])
      }).pipe(Effect.scoped, Effect.provide(layer))
    }))
})
