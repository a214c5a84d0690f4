/**
 * The global-order guarantee on PostgreSQL: a reader following readAll from
 * its own checkpoint sees every event exactly once, in order, while many
 * writers commit out of order and some hold their transactions open.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import type { Event } from "chronicle"
import { EventStore } from "chronicle"
import { lateCommitWriters } from "../support/lateCommits.js"
import { postgresAvailable, storeLayer } from "../support/postgres.js"
import { pause } from "../support/time.js"

describe.runIf(postgresAvailable())("PostgresEventStore global order", () => {
  it.live("a checkpointing reader never skips an event committed late by a slower writer", () =>
    Effect.gen(function*() {
      const writers = lateCommitWriters("order")

      const seen: Array<Event.StoredEvent> = []
      const reader = Effect.gen(function*() {
        let checkpoint = 0n
        const deadline = Date.now() + 60_000
        while (Date.now() < deadline) {
          const done = writers.done()
          const page = yield* EventStore.readAll({ fromPosition: checkpoint, chunkSize: 50 }).pipe(
            Stream.runCollect,
            Effect.map(Chunk.toReadonlyArray)
          )
          seen.push(...page)
          if (page.length > 0) checkpoint = page.at(-1)!.globalPosition + 1n
          if (done && page.length === 0 && seen.length >= writers.written.size) return
          yield* pause(3)
        }
      })

      yield* Effect.all([writers.run, reader], { concurrency: "unbounded" })

      const ids = seen.map((e) => e.eventId as string)
      expect(new Set(ids).size).toBe(ids.length)
      expect([...ids].sort()).toEqual([...writers.written].sort())
      for (let i = 1; i < seen.length; i++) {
        expect(seen[i]!.globalPosition > seen[i - 1]!.globalPosition).toBe(true)
      }
    }).pipe(Effect.provide(storeLayer("order", { maxConnections: 16 }))), 90_000)
})
