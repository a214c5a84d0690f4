/**
 * Group commit on PostgreSQL: concurrent appends of one process share a
 * round trip and a transaction, and each still gets exactly the outcome it
 * would have had alone.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Stream } from "effect"
import { EventId, EventStore, StreamId } from "chronicle"
import { events, newEvent } from "../contract/EventStoreContract.js"
import { postgresAvailable, storeLayer } from "../support/postgres.js"

const transactionOf = (position: bigint) => position >> 16n

describe.runIf(postgresAvailable())("PostgreSQL group commit", () => {
  it.live("concurrent appends to many streams share transactions, each with its own versions and positions", () =>
    Effect.gen(function*() {
      const run = `${process.pid}-${Date.now()}`
      const results = yield* Effect.all(
        Array.from({ length: 48 }, (_, i) => EventStore.append(StreamId.unsafeMake("group", `${run}-${i}`), events(1 + (i % 3)), { expectedVersion: "NoStream" })),
        { concurrency: "unbounded" }
      )
      const positions = results.flatMap((r) => r.globalPositions)
      expect(new Set(positions).size).toBe(positions.length)
      results.forEach((r, i) => expect(r.streamVersion).toBe(1 + (i % 3)))
      const transactions = new Set(positions.map(transactionOf))
      expect(transactions.size).toBeLessThan(results.length)
      for (let i = 0; i < results.length; i++) {
        const read = yield* EventStore.read(StreamId.unsafeMake("group", `${run}-${i}`)).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
        expect(read.map((e) => e.globalPosition)).toEqual(results[i]!.globalPositions)
      }
    }).pipe(Effect.provide(storeLayer("group_many", { maxConnections: 8 }))), 60_000)

  it.live("in one burst: a conflict, a duplicate id and a deleted stream fail alone; the rest are written", () =>
    Effect.gen(function*() {
      const run = `${process.pid}-${Date.now()}`
      const existing = newEvent("Existing")
      yield* EventStore.append(StreamId.unsafeMake("group", `${run}-taken`), [existing], { expectedVersion: "NoStream" })
      yield* EventStore.append(StreamId.unsafeMake("group", `${run}-versioned`), events(2), { expectedVersion: "NoStream" })
      yield* EventStore.append(StreamId.unsafeMake("group", `${run}-gone`), events(1), { expectedVersion: "NoStream" })
      yield* EventStore.deleteStream(StreamId.unsafeMake("group", `${run}-gone`))
      const burst = [
        EventStore.append(StreamId.unsafeMake("group", `${run}-a`), events(2), { expectedVersion: "NoStream" }),
        EventStore.append(StreamId.unsafeMake("group", `${run}-versioned`), events(1), { expectedVersion: 1 }),
        EventStore.append(StreamId.unsafeMake("group", `${run}-b`), [newEvent("Dup", {}, { eventId: existing.eventId! })], { expectedVersion: "Any" }),
        EventStore.append(StreamId.unsafeMake("group", `${run}-gone`), events(1), { expectedVersion: "Any" }),
        EventStore.append(StreamId.unsafeMake("group", `${run}-c`), events(3), { expectedVersion: "Any" }),
        ...Array.from({ length: 12 }, (_, i) => EventStore.append(StreamId.unsafeMake("group", `${run}-more-${i}`), events(1), { expectedVersion: "NoStream" }))
      ]
      const outcomes = yield* Effect.all(burst.map(Effect.either), { concurrency: "unbounded" })
      const tags = outcomes.map((o) => (Either.isRight(o) ? "ok" : o.left._tag))
      expect(tags.slice(0, 5)).toEqual(["ok", "ConcurrencyConflict", "DuplicateEventId", "StreamDeleted", "ok"])
      expect(tags.slice(5).every((t) => t === "ok")).toBe(true)
      expect(yield* EventStore.streamVersion(StreamId.unsafeMake("group", `${run}-versioned`))).toBe(2)
      expect(yield* EventStore.streamVersion(StreamId.unsafeMake("group", `${run}-b`))).toBe(0)
      expect(yield* EventStore.streamVersion(StreamId.unsafeMake("group", `${run}-c`))).toBe(3)
    }).pipe(Effect.provide(storeLayer("group_faults", { maxConnections: 8 }))), 60_000)

  it.live("appends to one stream in one burst apply in order, each checked against the version before it", () =>
    Effect.gen(function*() {
      const streamId = StreamId.unsafeMake("group", `${process.pid}-${Date.now()}-one`)
      const outcomes = yield* Effect.all(
        Array.from({ length: 10 }, (_, i) => Effect.either(EventStore.append(streamId, [newEvent("Step", { i })], { expectedVersion: i }))),
        { concurrency: "unbounded" }
      )
      const written = outcomes.filter(Either.isRight).length
      const read = yield* EventStore.read(streamId).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      expect(read.length).toBe(written)
      expect(read.map((e) => e.streamVersion)).toEqual(Array.from({ length: written }, (_, i) => i + 1))
      // a re-send of the same ids after the burst is recognised, not written again
      const again = yield* EventStore.append(streamId, [{ ...read[0]!, eventId: read[0]!.eventId as EventId.EventId }], { expectedVersion: 0 })
      expect(again.globalPositions).toEqual([read[0]!.globalPosition])
    }).pipe(Effect.provide(storeLayer("group_one", { maxConnections: 8 }))), 60_000)
})
