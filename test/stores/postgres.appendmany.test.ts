import { SqlClient } from "@effect/sql"
import { describe, expect, it, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Fiber, Stream } from "effect"
import { EventStore, StreamId } from "chronicle"
import { appendManyContract } from "../contract/AppendManyContract.js"
import { events, freshStream, newEvent } from "../contract/EventStoreContract.js"
import { postgresAvailable, storeLayer } from "../support/postgres.js"
import { pause } from "../support/time.js"

/** Terminates the backends of `applicationName` running `append_many`. */
const killActive = (applicationName: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe<{ readonly killed: boolean }>(
      `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
       WHERE application_name = $1 AND state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%append_many%'`,
      [applicationName]
    )).pipe(Effect.map((rows) => rows.filter((row) => row.killed).length))

const versionsOf = (streams: ReadonlyArray<StreamId.StreamId>) => Effect.forEach(streams, EventStore.streamVersion)

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

  const app = `chronicle-many-faults-${process.pid}`
  it.live("a backend killed mid-call leaves all of it or none, and a re-send of the call writes it once", () =>
    Effect.gen(function*() {
      let kills = 0
      for (let round = 0; round < 12 && (round < 4 || kills < 2); round++) {
        const streams = [freshStream("killed"), freshStream("killed")]
        const call = streams.map((streamId) => ({ streamId, events: events(15_000), expectedVersion: "NoStream" as const }))
        const running = yield* Effect.fork(Effect.either(EventStore.appendMany(call)))
        let killed = 0
        while (killed === 0 && running.unsafePoll() === null) killed = yield* killActive(app)
        kills += killed
        const outcome = yield* Fiber.join(running)
        if (Either.isLeft(outcome)) expect(outcome.left._tag).toBe("StoreError")
        const afterFault = yield* versionsOf(streams)
        expect([[0, 0], [15_000, 15_000]]).toContainEqual(afterFault)
        const resent = yield* EventStore.appendMany(call)
        expect(resent.map((r) => r.streamVersion)).toEqual([15_000, 15_000])
        expect(yield* versionsOf(streams)).toEqual([15_000, 15_000])
      }
      expect(kills).toBeGreaterThan(0)
    }).pipe(Effect.provide(storeLayer("appendmany_faults", { applicationName: app }))), 180_000)
})
