/** A counter aggregate and stores that count what loading reads: the fixtures of the snapshot tests. */
import { Effect, Layer, Schema, Stream } from "effect"
import { Decider, EventCodec, EventStore, MemoryEventStore, MemorySnapshotStore } from "chronicle"
import type { StreamId } from "chronicle"

export const Ticked = Schema.TaggedStruct("Ticked", { by: Schema.Int })
export const Stopped = Schema.TaggedStruct("Stopped", {})
export const TickEvent = Schema.Union(Ticked, Stopped)
export type TickEvent = typeof TickEvent.Type
export const codec = EventCodec.make(TickEvent)

export const TickState = Schema.Struct({ total: Schema.Int, ticks: Schema.Int, stopped: Schema.Boolean })
export type TickState = typeof TickState.Type

export const Counter = Decider.make({
  initialState: { total: 0, ticks: 0, stopped: false } as TickState,
  decide: (command: { readonly by: number } | "stop", _state: TickState) =>
    Effect.succeed<ReadonlyArray<TickEvent>>(command === "stop" ? [Stopped.make({})] : [Ticked.make({ by: command.by })]),
  evolve: (state: TickState, event: TickEvent): TickState =>
    event._tag === "Ticked"
      ? { ...state, total: state.total + event.by, ticks: state.ticks + 1 }
      : { ...state, stopped: true }
})

/** An EventStore that counts the events it hands out for folding (by stream or by page). */
export const counting = (counter: { read: number }) =>
  Layer.effect(
    EventStore.EventStore,
    Effect.map(EventStore.EventStore, (store) => ({
      ...store,
      readPayloads: (streamId: StreamId.StreamId, options?: EventStore.ReadOptions) =>
        store.readPayloads(streamId, options).pipe(Stream.tap(() => Effect.sync(() => counter.read++))),
      readPage: (streamId: StreamId.StreamId, page: EventStore.Page) =>
        store.readPage(streamId, page).pipe(Effect.tap((events) => Effect.sync(() => (counter.read += events.length))))
    }))
  ).pipe(Layer.provide(MemoryEventStore.layer()))

export const stores = (counter = { read: 0 }) => Layer.merge(counting(counter), MemorySnapshotStore.layer())
