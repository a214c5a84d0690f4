/**
 * Reading one partition of the log on PostgreSQL, page by page, as a
 * partitioned runner or consumer-group lane does (`readLogPage` with
 * `filter.partition`, pages of 500), against reading the whole log
 * (`readAll`, and unfiltered pages), over `--events` events (default
 * 200,000) in 2,000 streams; `--rounds` interleaved rounds.
 *
 *   npx tsx bench/partition-pages.ts [--events 200000] [--rounds 2]
 */
import os from "node:os"
import { Effect, Stream } from "effect"
import { EventStore, StreamId } from "../src/index.js"
import { PostgresEventStore } from "../src/postgres.js"
import { assertLoopback, databaseUrl, withAdmin } from "./support.js"

const argument = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`)
  return at === -1 ? fallback : Number(process.argv[at + 1])
}
const eventCount = argument("events", 200_000)
const rounds = argument("rounds", 2)
const schema = "bench_partition_pages"
const load = () => os.loadavg().map((n) => n.toFixed(2)).join(" ")

assertLoopback(databaseUrl, "bench/partition-pages.ts")

const pagesOf = (store: EventStore.EventStoreService, filter: EventStore.LogFilter | undefined) =>
  Effect.gen(function*() {
    let after = 0n
    let count = 0
    for (;;) {
      const page = yield* store.readLogPage({ after, limit: 500, filter })
      count += page.events.length
      after = page.through
      if (page.events.length < 500) return count
    }
  })

const timed = <E, R>(label: string, effect: Effect.Effect<number, E, R>) =>
  Effect.gen(function*() {
    const start = performance.now()
    const count = yield* effect
    console.log(`${label}: ${(performance.now() - start).toFixed(0)} ms for ${count} events (load ${load()})`)
  })

const main = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  yield* Effect.forEach(Array.from({ length: eventCount / 100 }, (_, i) => i), (i) =>
    store.append(StreamId.unsafeMake("grp", `s${i % 2000}`), Array.from({ length: 100 }, (_, n) => ({ type: "Counted", data: { n } })), {
      expectedVersion: "Any"
    }), { concurrency: 8, discard: true })
  yield* Effect.promise(() => withAdmin((db) => db.query(`VACUUM ANALYZE "${schema}".events`)))
  for (let round = 1; round <= rounds; round++) {
    console.log(`round ${round}`)
    yield* timed("  readAll, whole log", Stream.runCount(store.readAll({ chunkSize: 500 })))
    yield* timed("  pages, whole log", pagesOf(store, undefined))
    yield* timed("  pages, partition 0/2", pagesOf(store, { partition: { member: 0, of: 2 } }))
    yield* timed("  pages, partition 0/4", pagesOf(store, { partition: { member: 0, of: 4 } }))
  }
})

withAdmin((db) => db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`))
  .then(() => Effect.runPromise(main.pipe(Effect.provide(PostgresEventStore.layerFromUrl({ url: databaseUrl, schema, maxConnections: 8 })), Effect.scoped)))
  .then(() => withAdmin((db) => db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)))
  .then(() => process.exit(0), (error: unknown) => {
    console.error(error)
    process.exit(1)
  })
