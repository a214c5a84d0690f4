/**
 * Benchmarks a catch-up read of the global log on the primary against the
 * same read through a streaming replica (`readReplica`): seeds 200,000 small
 * events over 200 streams (appends of 1,000) in the schema `bench_replica`,
 * waits until the replica has replayed them, then reads them all with
 * `readAll` from position 0 (pages of 1,000), alternating primary and replica
 * in each round. Reports events/s, median and range over the rounds.
 *
 * Needs the standby: `test/support/replica.sh start` (127.0.0.1:5433).
 * DATABASE_URL and REPLICA_URL override the defaults (loopback only).
 *
 * Run: flock /work/notes/bench.lock npx tsx bench/replica.ts [--events 200000] [--rounds 5]
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, Redacted, Stream } from "effect"
import { EventStore, StreamId } from "chronicle"
import { PostgresEventStore } from "chronicle/postgres"
import { perSecond, summarize, timed } from "./support.js"

const argument = (name: string, fallback: number) => {
  const at = process.argv.indexOf(name)
  return at === -1 ? fallback : Number(process.argv[at + 1])
}
const eventCount = argument("--events", 200_000)
const rounds = argument("--rounds", 5)
const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const replicaUrl = process.env.REPLICA_URL ?? "postgres://postgres@127.0.0.1:5433/test"
const schema = "bench_replica"

const count = (store: EventStore.EventStoreService) =>
  Stream.runCount(store.readAll({ fromPosition: 0n, chunkSize: 1000 }))

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  const primary = Context.get(yield* Layer.build(PostgresEventStore.layerFromUrl({ url, schema })), EventStore.EventStore)
  const viaReplica = Context.get(
    yield* Layer.build(PostgresEventStore.layerFromUrl({ url, schema, migrate: false, readReplica: { url: replicaUrl } })),
    EventStore.EventStore
  )
  const streams = 200
  for (let i = 0; i < eventCount / 1000; i++) {
    const events = Array.from({ length: 1000 }, (_, n) => ({ type: "Ticked", data: { i, n } }))
    yield* primary.append(StreamId.unsafeMake("bench", `s${i % streams}`), events, { expectedVersion: "Any" })
  }
  yield* sql.unsafe(`VACUUM ANALYZE ${schema}.events`)
  // the first read through the replica waits for its replay of the seed; not counted
  const seeded = yield* count(viaReplica)
  if (seeded !== eventCount) return yield* Effect.dieMessage(`read ${seeded} events, expected ${eventCount}`)
  yield* count(primary)

  const primaryRates: Array<number> = []
  const replicaRates: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    for (const [store, rates] of round % 2 === 0
      ? [[primary, primaryRates], [viaReplica, replicaRates]] as const
      : [[viaReplica, replicaRates], [primary, primaryRates]] as const) {
      const { millis, value } = yield* timed(count(store))
      if (value !== eventCount) return yield* Effect.dieMessage(`read ${value} events, expected ${eventCount}`)
      rates.push(perSecond(eventCount, millis))
    }
  }
  yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  const show = (name: string, rates: ReadonlyArray<number>) => {
    const s = summarize(rates)
    console.log(`${name}: median ${Math.round(s.median)} events/s (range ${Math.round(s.min)}–${Math.round(s.max)}) over ${rates.length} rounds`)
  }
  console.log(`readAll of ${eventCount} events from 0, pages of 1,000, interleaved rounds`)
  show("primary", primaryRates)
  show("replica", replicaRates)
})

Effect.runPromise(
  program.pipe(Effect.scoped, Effect.provide(PgClient.layer({ url: Redacted.make(url) })))
).catch((error) => {
  console.error(error)
  process.exit(1)
})
