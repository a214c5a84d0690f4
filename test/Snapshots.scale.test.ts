/**
 * A 1,000,000-event stream loaded by reading only the events after its
 * snapshot. A scale test (about 15 s): kept out of the mutation-testing suite,
 * whose smaller snapshot tests pin the same logic.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Event } from "chronicle"
import { CommandHandler, EventStore, SnapshotPolicy, SnapshotStore, StreamId } from "chronicle"
import { codec, Counter, stores, TickState } from "./support/ticks.js"

describe("a 1,000,000-event aggregate", () => {
  it.effect("loads through its snapshot reading only the events after it (counted through the store)", () => {
    const counter = { read: 0 }
    return Effect.gen(function*() {
      const streamId = StreamId.unsafeMake("counter", "million")
      const batch: Array<Event.NewEvent> = Array.from({ length: 10_000 }, () => ({ type: "Ticked", data: { by: 1 } }))
      for (let version = 0; version < 1_000_000; version += batch.length) {
        yield* EventStore.append(streamId, batch, { expectedVersion: version })
      }
      const snapshots = yield* SnapshotStore.SnapshotStore
      yield* snapshots.save({
        streamId,
        version: 999_990,
        state: { total: 999_990, ticks: 999_990, stopped: false },
        stateSchemaVersion: 1
      })
      counter.read = 0
      const ticks = CommandHandler.make(Counter, { codec, snapshots: { schema: TickState, policy: SnapshotPolicy.never } })
      const loaded = yield* ticks.load(streamId)
      expect(loaded.version).toBe(1_000_000)
      expect(loaded.state).toEqual({ total: 1_000_000, ticks: 1_000_000, stopped: false })
      expect(counter.read).toBe(10)
    }).pipe(Effect.provide(stores(counter)))
  }, 120_000)
})
