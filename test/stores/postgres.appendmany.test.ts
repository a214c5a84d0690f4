import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { EventStore, StreamId } from "chronicle"
import { appendManyContract } from "../contract/AppendManyContract.js"
import { freshStream, newEvent } from "../contract/EventStoreContract.js"
import { postgresAvailable, storeLayer } from "../support/postgres.js"
import { pause } from "../support/time.js"

describe.runIf(postgresAvailable())("PostgresEventStore appendMany", () => {
  appendManyContract("postgres, own pool", storeLayer("appendmany"))
  appendManyContract("postgres over a PgClient", storeLayer("appendmany_client", { via: "client" }))

  layer(storeLayer("appendmany_locks", { maxConnections: 16 }), { timeout: "120 seconds" })("lock order", (it) => {
    it.effect("calls over the same streams in every order, 8 at a time: no deadlock, each call contiguous in the log", () =>
      Effect.gen(function*() {
        const streams = [freshStream("lock"), freshStream("lock"), freshStream("lock")]
        const orders = [[0, 1, 2], [2, 1, 0], [1, 0, 2], [2, 0, 1]]
        const writers = 8
        const calls = 25
        yield* Effect.forEach(Array.from({ length: writers }, (_, w) => w), (w) =>
          Effect.forEach(Array.from({ length: calls }, (_, c) => c), (c) =>
            EventStore.appendMany(orders[(w + c) % orders.length]!.map((s) => ({
              streamId: streams[s]!,
              events: [newEvent("Locked", { call: `${w}-${c}` })],
              expectedVersion: "Any" as const
            })))), { concurrency: writers, discard: true })
        expect(yield* Effect.forEach(streams, EventStore.streamVersion)).toEqual([writers * calls, writers * calls, writers * calls])
        let log: ReadonlyArray<{ readonly streamId: StreamId.StreamId; readonly data: unknown }> = []
        for (let attempt = 0; attempt < 500 && log.length < 3 * writers * calls; attempt++) {
          if (attempt > 0) yield* pause(20)
          log = Chunk.toReadonlyArray(yield* Stream.runCollect(EventStore.readAll())).filter((e) => streams.includes(e.streamId))
        }
        expect(log.length).toBe(3 * writers * calls)
        for (let i = 0; i < log.length; i += 3) {
          const call = (log[i]!.data as { call: string }).call
          expect([1, 2].map((k) => (log[i + k]!.data as { call: string }).call)).toEqual([call, call])
        }
      }))
  })
})
