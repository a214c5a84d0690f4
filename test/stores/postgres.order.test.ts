/**
 * The global-order guarantee on PostgreSQL: a reader following readAll from
 * its own checkpoint sees every event exactly once, in order, while many
 * writers commit out of order and some hold their transactions open.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import type { Event } from "chronicle"
import { EventStore, StreamId } from "chronicle"
import { events } from "../contract/EventStoreContract.js"
import { postgresAvailable, storeLayer } from "../support/postgres.js"
import { pause } from "../support/time.js"

describe.runIf(postgresAvailable())("PostgresEventStore global order", () => {
  it.live("a checkpointing reader never skips an event committed late by a slower writer", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const writers = 12
      const appendsPerWriter = 20
      const written = new Set<string>()
      let writing = writers

      const writer = (w: number) =>
        Effect.forEach(Array.from({ length: appendsPerWriter }, (_, i) => i), (i) => {
          const batch = events(1 + ((w + i) % 3))
          const streamId = StreamId.unsafeMake("order", `w${w}-s${i % 4}`)
          const append = EventStore.append(streamId, batch, { expectedVersion: "Any" }).pipe(
            Effect.tap(() => batch.forEach((e) => written.add(e.eventId!)))
          )
          // every third append holds its transaction open after inserting: it commits after later xids
          return i % 3 === w % 3
            ? sql.withTransaction(Effect.zipLeft(append, pause(10 + ((w * 7 + i * 13) % 60))))
            : append
        }, { discard: true }).pipe(Effect.ensuring(Effect.sync(() => writing--)))

      const seen: Array<Event.StoredEvent> = []
      const reader = Effect.gen(function*() {
        let checkpoint = 0n
        const deadline = Date.now() + 60_000
        while (Date.now() < deadline) {
          const done = writing === 0
          const page = yield* EventStore.readAll({ fromPosition: checkpoint, chunkSize: 50 }).pipe(
            Stream.runCollect,
            Effect.map(Chunk.toReadonlyArray)
          )
          seen.push(...page)
          if (page.length > 0) checkpoint = page.at(-1)!.globalPosition + 1n
          if (done && page.length === 0 && seen.length >= written.size) return
          yield* pause(3)
        }
      })

      yield* Effect.all([Effect.all(Array.from({ length: writers }, (_, w) => writer(w)), { concurrency: "unbounded" }), reader], {
        concurrency: "unbounded"
      })

      const ids = seen.map((e) => e.eventId as string)
      expect(new Set(ids).size).toBe(ids.length)
      expect([...ids].sort()).toEqual([...written].sort())
      for (let i = 1; i < seen.length; i++) {
        expect(seen[i]!.globalPosition > seen[i - 1]!.globalPosition).toBe(true)
      }
    }).pipe(Effect.provide(storeLayer("order", { maxConnections: 16 }))), 90_000)
})
