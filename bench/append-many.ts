/**
 * Atomic appends across streams against the same events as single appends:
 * 16 writers, each on streams of its own, appending 1 event to each of k
 * streams (k = 2 and 10) either in one `appendMany` call or in k `append`
 * calls one after another (not atomic). On the memory, filesystem and
 * PostgreSQL stores; interleaved rounds (the order turns every round), each a
 * time slice per workload; per workload the median events/s over rounds and
 * its range, and appendMany/single. The load average is printed before and after.
 *
 * Run: npm run bench:many              (memory, filesystem, postgres)
 *      npx tsx bench/append-many.ts --quick   (smoke run)
 *      npx tsx bench/append-many.ts --only=postgres
 */
import os from "node:os"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer, ManagedRuntime } from "effect"
import { EventId, EventStore, FileEventStore, MemoryEventStore, StreamId } from "chronicle"
import { PostgresEventStore } from "chronicle/postgres"
import { assertLoopback, databaseUrl, decimal, integer, progressLog, summarize, table, withAdmin, withTempDirectory } from "./support.js"
import type { Summary } from "./support.js"

const argv = process.argv.slice(2)
const quick = argv.includes("--quick")
const only = argv.find((arg) => arg.startsWith("--only="))?.slice("--only=".length)
const writers = 16
const fanouts = [2, 10] as const
const plan = quick ? { rounds: 2, sliceMillis: 400, warmupMillis: 100 } : { rounds: 6, sliceMillis: 2_000, warmupMillis: 300 }
const pgSchema = "bench_many"
const log = progressLog(false)

type Mode = "appendMany" | "single"
interface Workload {
  readonly key: string
  readonly mode: Mode
  readonly k: number
}
const workloads: ReadonlyArray<Workload> = fanouts.flatMap((k) => [
  { key: `appendMany ${k}x1`, mode: "appendMany" as const, k },
  { key: `${k} single appends`, mode: "single" as const, k }
])

const event = () => ({ eventId: EventId.unsafeGenerate(), type: "Moved", data: { amount: 1 } })

let run = 0
/** Events appended by `writers` fibers in `millis` ms, each on k streams of its own. */
const slice = (workload: Workload, millis: number) =>
  Effect.gen(function*() {
    run++
    const deadline = performance.now() + millis
    const counts = yield* Effect.forEach(Array.from({ length: writers }, (_, w) => w), (w) =>
      Effect.gen(function*() {
        const streams = Array.from({ length: workload.k }, (_, s) => StreamId.unsafeMake("many", `${run}-${w}-${s}`))
        let appended = 0
        while (performance.now() < deadline) {
          if (workload.mode === "appendMany") {
            yield* EventStore.appendMany(streams.map((streamId) => ({ streamId, events: [event()], expectedVersion: "Any" as const })))
          } else {
            for (const streamId of streams) yield* EventStore.append(streamId, [event()], { expectedVersion: "Any" })
          }
          appended += workload.k
        }
        return appended
      }), { concurrency: writers })
    return (counts.reduce((a, b) => a + b, 0) * 1000) / millis
  })

const measure = async (name: string, layer: Layer.Layer<EventStore.EventStore, unknown>) => {
  const runtime = ManagedRuntime.make(layer)
  try {
    const rates = new Map<string, Array<number>>(workloads.map((w) => [w.key, []]))
    for (const workload of workloads) await runtime.runPromise(slice(workload, plan.warmupMillis))
    for (let round = 0; round < plan.rounds; round++) {
      const order = workloads.map((_, i) => workloads[(i + round) % workloads.length]!)
      for (const workload of order) rates.get(workload.key)!.push(await runtime.runPromise(slice(workload, plan.sliceMillis)))
      log(`${name}: round ${round + 1}/${plan.rounds}`)
    }
    return new Map([...rates].map(([key, values]) => [key, summarize(values)]))
  } finally {
    await runtime.dispose()
  }
}

const dropSchema = () => withAdmin((client) => client.query(`DROP SCHEMA IF EXISTS ${pgSchema} CASCADE`))

const stores: ReadonlyArray<{ readonly name: string; readonly run: () => Promise<Map<string, Summary>> }> = [
  { name: "memory", run: () => measure("memory", MemoryEventStore.layer()) },
  {
    name: "filesystem",
    run: () =>
      withTempDirectory("many", (directory) =>
        measure("filesystem", FileEventStore.layer({ directory }).pipe(Layer.provide(NodeContext.layer))))
  },
  {
    name: "postgres",
    run: async () => {
      assertLoopback(databaseUrl, "bench/append-many.ts")
      await dropSchema()
      try {
        return await measure("postgres", PostgresEventStore.layerFromUrl({ url: databaseUrl, schema: pgSchema, maxConnections: 20 }))
      } finally {
        await dropSchema()
      }
    }
  }
]

const loadAverage = () => os.loadavg().map((n) => n.toFixed(2)).join(" ")

const main = async () => {
  console.log(`load average before: ${loadAverage()} (${os.cpus().length} CPUs); ${writers} writers, ${plan.rounds} rounds of ${plan.sliceMillis} ms`)
  const rows: Array<Array<string>> = []
  for (const store of stores.filter((s) => only === undefined || s.name === only)) {
    const results = await store.run()
    for (const k of fanouts) {
      const many = results.get(`appendMany ${k}x1`)!
      const single = results.get(`${k} single appends`)!
      const range = (s: Summary) => `${integer(s.median)} (${integer(s.min)}–${integer(s.max)})`
      rows.push([`${store.name}, ${k} streams x 1 event`, range(many), range(single), `${decimal(many.median / single.median)}x`])
    }
  }
  console.log(table(["store, call", "appendMany events/s", "single appends events/s", "many/single"], rows))
  console.log(`load average after: ${loadAverage()}`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
