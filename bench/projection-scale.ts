/**
 * One projection over the global log on PostgreSQL, split over 1, 2 and 4
 * worker processes (`partition: { member, of }`): how fast they catch up, and
 * how late they project live events.
 *
 * The store holds `--events` events (default 200,000) over `--streams`
 * streams (default 1,000), appended in 100-event batches by 16 writers. Per
 * worker count, in rounds that turn the order, a fresh projection (its own
 * name, so its own checkpoints) writes every event id into a read model in
 * its checkpoint's transaction (`bench/support/scaleWorker.ts`):
 *
 * - catch-up: from spawning the workers until the read model holds every
 *   event; events/s (process start included: shown apart);
 * - live: then a writer appends single events at `--rate` per second for
 *   `--seconds`, each carrying its send time; latency = applied - sent, p50
 *   and p99 over all of them, once all are in;
 * - exactly once: every event id applied once (checked each round).
 *
 * Run: npx tsx bench/projection-scale.ts [--events 1000000] [--streams 1000]
 *        [--workers 1,2,4] [--rounds 2] [--rate 200] [--seconds 10] [--batch 500]
 */
import { spawn } from "node:child_process"
import os from "node:os"
import { fileURLToPath } from "node:url"
import { Effect, Fiber } from "effect"
import { EventStore, StreamId } from "../src/index.js"
import { PostgresEventStore } from "../src/postgres.js"
import { assertLoopback, databaseUrl, decimal, integer, summarize, table, withAdmin } from "./support.js"

const argument = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`)
  return at === -1 ? fallback : process.argv[at + 1]!
}
const positive = (name: string, fallback: number) => {
  const value = Number(argument(name, String(fallback)))
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`)
  return value
}

const totalEvents = positive("events", 200_000)
const streamCount = positive("streams", 1_000)
const workerCounts = argument("workers", "1,2,4").split(",").map(Number)
const rounds = positive("rounds", 2)
const rate = positive("rate", 200)
const seconds = positive("seconds", 10)
const batchSize = positive("batch", 500)
const schema = "bench_scale"

assertLoopback(databaseUrl, "projection-scale")

const load = () => os.loadavg().map((n) => n.toFixed(2)).join(" ")
const log = (message: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${message}`)

const Store = PostgresEventStore.layerFromUrl({ url: databaseUrl, schema, maxConnections: 16 })

const eventsOf = (count: number, sentAt?: number) =>
  Array.from({ length: count }, (_, i) => ({
    type: "Counted",
    data: { n: i },
    ...(sentAt === undefined ? {} : { metadata: { sentAt } })
  }))

const seed = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  const batches = Math.ceil(totalEvents / 100)
  let done = 0
  yield* Effect.forEach(
    Array.from({ length: batches }, (_, i) => i),
    (i) =>
      Effect.andThen(
        store.append(
          StreamId.unsafeMake("scale", `s${i % streamCount}`),
          eventsOf(Math.min(100, totalEvents - i * 100)),
          { expectedVersion: "Any" }
        ),
        () => {
          done++
          if (done % 1000 === 0) log(`seeded ${integer(done * 100)} events`)
        }
      ),
    { concurrency: 16, discard: true }
  )
})

const liveWrites = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  const count = rate * seconds
  const interval = 1000 / rate
  const start = performance.now()
  const appends: Array<Fiber.RuntimeFiber<unknown, unknown>> = []
  for (let i = 0; i < count; i++) {
    const due = start + i * interval
    const wait = due - performance.now()
    if (wait > 0) yield* Effect.sleep(wait)
    appends.push(
      yield* Effect.fork(store.append(
        StreamId.unsafeMake("scale", `s${Math.floor(Math.random() * streamCount)}`),
        eventsOf(1, Date.now()),
        { expectedVersion: "Any" }
      ))
    )
  }
  yield* Fiber.joinAll(appends)
  return count
})

interface Worker {
  readonly started: Promise<number>
  readonly stop: () => Promise<void>
  readonly stderr: () => string
}

const startWorker = (name: string, member: number, of: number): Worker => {
  const script = fileURLToPath(new URL("./support/scaleWorker.ts", import.meta.url))
  const spawnedAt = performance.now()
  const child = spawn(process.execPath, ["--import", "tsx", script, databaseUrl, schema, name, `${member}/${of}`, String(batchSize)], {
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stderr = ""
  child.stderr.on("data", (chunk) => void (stderr += String(chunk)))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const started = new Promise<number>((resolve, reject) => {
    child.stdout.on("data", (chunk) => {
      if (String(chunk).includes("started")) resolve(performance.now() - spawnedAt)
    })
    child.once("exit", (code) => reject(new Error(`worker ${member}/${of} exited with ${code}: ${stderr}`)))
  })
  return {
    started,
    stop: async () => {
      child.kill("SIGTERM")
      await exited
    },
    stderr: () => stderr
  }
}

const query = <A>(text: string, values: ReadonlyArray<unknown> = []) =>
  withAdmin(async (client) => (await client.query(text, [...values])).rows as Array<A>)

const countSeen = async () => Number((await query<{ n: string }>(`SELECT count(*)::text AS n FROM ${schema}.seen`))[0]!.n)

const waitForSeen = async (target: number) => {
  for (;;) {
    const seen = await countSeen()
    if (seen >= target) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

interface Round {
  readonly workers: number
  readonly catchUpPerSecond: number
  readonly startMillis: number
  readonly p50: number
  readonly p99: number
  readonly doubles: number
}

/** Events in the log: the seeded ones and every earlier round's live ones. */
let logSize = totalEvents

const runRound = async (workers: number, round: number): Promise<Round> => {
  await query(`TRUNCATE ${schema}.seen`)
  const name = `scale-r${round}-w${workers}`
  const started = performance.now()
  const members = Array.from({ length: workers }, (_, member) => startWorker(name, member, workers))
  const startMillis = Math.max(...await Promise.all(members.map((member) => member.started)))
  await waitForSeen(logSize)
  const catchUpMillis = performance.now() - started
  const caughtUp = logSize
  log(`${workers} worker(s): caught up on ${integer(logSize)} events in ${decimal(catchUpMillis / 1000)} s (load ${load()})`)
  const liveFrom = new Date()
  const live = await Effect.runPromise(Effect.provide(liveWrites, Store))
  await waitForSeen(logSize + live)
  const [latency] = await query<{ p50: number; p99: number; doubles: string }>(
    `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
            (SELECT count(*) FROM ${schema}.seen WHERE applied <> 1)::text AS doubles
     FROM (SELECT extract(epoch FROM applied_at - sent_at) * 1000 AS ms FROM ${schema}.seen WHERE sent_at >= $1) AS l`,
    [liveFrom]
  )
  logSize += live
  await Promise.all(members.map((member) => member.stop()))
  for (const member of members) {
    if (member.stderr().trim().length > 0) log(`worker stderr: ${member.stderr().slice(0, 500)}`)
  }
  return {
    workers,
    catchUpPerSecond: (caughtUp * 1000) / catchUpMillis,
    startMillis,
    p50: latency!.p50,
    p99: latency!.p99,
    doubles: Number(latency!.doubles)
  }
}

const main = async () => {
  log(`projection scale: ${integer(totalEvents)} events over ${integer(streamCount)} streams, workers ${workerCounts.join("/")}, ${rounds} rounds, ${os.cpus().length} cores, load ${load()}`)
  await query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  await Effect.runPromise(Effect.provide(seed, Store))
  await query(`CREATE TABLE ${schema}.seen (event_id uuid PRIMARY KEY, applied int NOT NULL, sent_at timestamptz, applied_at timestamptz NOT NULL)`)
  const results: Array<Round> = []
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? workerCounts : [...workerCounts].reverse()
    for (const workers of order) results.push(await runRound(workers, round))
  }
  const rows = workerCounts.map((workers) => {
    const mine = results.filter((result) => result.workers === workers)
    const rate = summarize(mine.map((result) => result.catchUpPerSecond))
    const p50 = summarize(mine.map((result) => result.p50))
    const p99 = summarize(mine.map((result) => result.p99))
    const start = summarize(mine.map((result) => result.startMillis))
    return [
      String(workers),
      `${integer(rate.median)} (${integer(rate.min)}–${integer(rate.max)})`,
      `${decimal(p50.median)} (${decimal(p50.min)}–${decimal(p50.max)})`,
      `${decimal(p99.median)} (${decimal(p99.min)}–${decimal(p99.max)})`,
      integer(start.median),
      String(mine.reduce((sum, result) => sum + result.doubles, 0))
    ]
  })
  console.log(table(["workers", "catch-up events/s", "live p50 ms", "live p99 ms", "process start ms", "applied twice"], rows))
  console.log(`load average at the end: ${load()}`)
  await query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
}

main().then(() => process.exit(0), (error: unknown) => {
  console.error(error)
  process.exit(1)
})

