/**
 * Benchmarks a consumer group on PostgreSQL: one transactional projection
 * (a row per event id, with how often it was applied and when, committed with
 * the partition's checkpoint) over a seeded log, run by 1, 2 and 4 worker
 * processes (`test/support/groupWorker.ts`, 8 partitions, batches of 500 read
 * events), in interleaved rounds:
 *
 * 1. catch-up rate: events / (last applied_at - first applied_at), so process
 *    start-up and joining are not counted;
 * 2. live latency: with the workers caught up, one writer appends single
 *    events at 100/s for 10 s; latency = applied_at - the event's recorded
 *    time (both database clock), p50/p99;
 * 3. rebalance (own schema, 3 workers, writers at ~200/s): one worker is
 *    SIGKILLed; time until its partitions are held by the others, then every
 *    written event id must be in the read model exactly once.
 *
 *   npx tsx bench/scale.ts [--events 200000] [--rounds 3]
 *
 * Prints the load average with every figure: this machine is shared.
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import os from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { EventStore, StreamId } from "../src/index.js"
import { PostgresEventStore } from "../src/postgres.js"
import { assertLoopback, databaseUrl, decimal, integer, summarize, table, withAdmin } from "./support.js"

const argument = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`)
  return at === -1 ? fallback : Number(process.argv[at + 1])
}
const eventCount = argument("events", 200_000)
const rounds = argument("rounds", 3)
const partitions = 8
const load = () => os.loadavg().map((n) => n.toFixed(2)).join(" ")
const log = (message: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${message} (load ${load()})`)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const worker = join(import.meta.dirname, "../test/support/groupWorker.ts")

assertLoopback(databaseUrl, "bench/scale.ts")

const storeIn = (schema: string) => PostgresEventStore.layerFromUrl({ url: databaseUrl, schema, maxConnections: 8 })

const run = <A, E>(schema: string, effect: Effect.Effect<A, E, EventStore.EventStore>) =>
  Effect.runPromise(effect.pipe(Effect.provide(storeIn(schema)), Effect.scoped) as Effect.Effect<A, E>)

const appendSingles = (streams: number, label: string, perSecond: number, seconds: number) =>
  Effect.forEach(Array.from({ length: perSecond * seconds }, (_, i) => i), (i) =>
    Effect.zipRight(
      EventStore.append(StreamId.unsafeMake("grp", `${label}${i % streams}`), [{ type: "Counted", data: { i } }], { expectedVersion: "Any" }),
      Effect.sleep(1000 / perSecond)
    ), { discard: true })

const prepare = async (schema: string) => {
  await withAdmin(async (db) => {
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  })
  await run(schema, EventStore.headPosition)
  await withAdmin((db) =>
    db.query(`CREATE TABLE "${schema}".seen (event_id uuid PRIMARY KEY, applied int NOT NULL, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())`)
  )
}

const reset = (schema: string) =>
  withAdmin(async (db) => {
    await db.query(`TRUNCATE "${schema}".seen`)
    await db.query(`DELETE FROM "${schema}".checkpoints`)
    await db.query(`DELETE FROM "${schema}".group_partitions`)
    await db.query(`DELETE FROM "${schema}".group_members`)
  })

const query = <T>(text: string, values: ReadonlyArray<unknown> = []) => withAdmin(async (db) => (await db.query(text, [...values])).rows as Array<T>)

const applied = async (schema: string) =>
  (await query<{ rows: number; max: number }>(`SELECT count(*)::int AS rows, coalesce(max(applied), 0) AS max FROM "${schema}".seen`))[0]!

const waitUntil = async (what: string, check: () => Promise<boolean>, timeoutMs = 1_800_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(250)
  }
}

const spawnWorkers = (schema: string, names: ReadonlyArray<string>) =>
  names.map((name) => spawn(process.execPath, ["--import", "tsx", worker, databaseUrl, schema, name, "0", String(partitions), "3000", "500"], { stdio: "ignore" }))

const killAll = (children: ReadonlyArray<ChildProcess>) =>
  Promise.all(children.map((child) =>
    child.exitCode !== null || child.signalCode !== null ? undefined : new Promise((resolve) => {
      child.on("exit", resolve)
      child.kill("SIGKILL")
    })
  ))

interface Figures {
  readonly rate: number
  readonly p50: number
  readonly p99: number
}

/** Catch-up and live figures with `workers` processes; `logSize` is the number of `grp` events in the log. */
const measure = async (schema: string, workers: number, round: number, logSize: number): Promise<Figures> => {
  await reset(schema)
  const children = spawnWorkers(schema, Array.from({ length: workers }, (_, i) => `w${i}`))
  try {
    await waitUntil("catch-up", async () => (await applied(schema)).rows >= logSize)
    const [span] = await query<{ ms: number }>(
      `SELECT (extract(epoch FROM max(applied_at) - min(applied_at)) * 1000)::float8 AS ms FROM "${schema}".seen`
    )
    const rate = (logSize * 1000) / span!.ms
    const head = await run(schema, EventStore.headPosition)
    await run(schema, appendSingles(50, `live${round}-${workers}-`, 100, 10))
    await waitUntil("live events", async () => (await applied(schema)).rows >= logSize + 1000)
    const [latency] = await query<{ p50: number; p99: number }>(
      `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99
         FROM (SELECT extract(epoch FROM s.applied_at)::float8 * 1000 - e.recorded_ms AS ms
                 FROM "${schema}".seen s JOIN "${schema}".events e ON e.event_id = s.event_id WHERE e.global_position > $1) AS l`,
      [head.toString()]
    )
    const check = await applied(schema)
    if (check.max !== 1 || check.rows !== logSize + 1000) throw new Error(`${check.rows} of ${logSize + 1000} events applied, one ${check.max} times`)
    return { rate, p50: latency!.p50, p99: latency!.p99 }
  } finally {
    await killAll(children)
  }
}

const rebalance = async (schema: string, round: number) => {
  await reset(schema)
  const children = spawnWorkers(schema, ["a", "b", "c"])
  try {
    await waitUntil("3 members holding partitions", async () =>
      (await query<{ n: number }>(`SELECT count(DISTINCT owner)::int AS n FROM "${schema}".group_partitions WHERE owner IS NOT NULL`))[0]!.n === 3)
    const writing = run(schema, appendSingles(50, `rb${round}-`, 200, 12))
    await sleep(4000)
    const killedAt = Date.now()
    children[1]!.kill("SIGKILL")
    await waitUntil("b's partitions moved", async () =>
      (await query<{ n: number }>(
        `SELECT count(*)::int AS n FROM "${schema}".group_partitions WHERE owner IS NOT NULL AND owner <> 'b'`
      ))[0]!.n === partitions, 120_000)
    const moved = Date.now() - killedAt
    await writing
    const total = (await query<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".events WHERE split_part(stream_id, '-', 1) = 'grp'`))[0]!.n
    await waitUntil("every event applied", async () => (await applied(schema)).rows >= total)
    const check = await applied(schema)
    return { moved, total, rows: check.rows, max: check.max }
  } finally {
    await killAll(children)
  }
}

const main = async () => {
  log(`seeding ${integer(eventCount)} events over 1,000 streams`)
  const schema = "bench_scale"
  await prepare(schema)
  await run(
    schema,
    Effect.forEach(Array.from({ length: eventCount / 1000 }, (_, i) => i), (i) =>
      EventStore.append(
        StreamId.unsafeMake("grp", `s${i % 1000}`),
        Array.from({ length: 1000 }, (_, n) => ({ type: "Counted", data: { n } })),
        { expectedVersion: "Any" }
      ), { discard: true, concurrency: 4 })
  )
  await withAdmin((db) => db.query(`VACUUM ANALYZE "${schema}".events`))
  const results = new Map<number, Array<Figures>>([[1, []], [2, []], [4, []]])
  // the live events stay in the log: later rounds catch up over them too
  let logSize = eventCount
  for (let round = 0; round < rounds; round++) {
    const order = [1, 2, 4].map((_, i, all) => all[(i + round) % all.length]!)
    for (const workers of order) {
      const figures = await measure(schema, workers, round, logSize)
      logSize += 1000
      results.get(workers)!.push(figures)
      log(`round ${round + 1}, ${workers} worker(s): ${integer(figures.rate)} events/s, live p50 ${decimal(figures.p50)} ms, p99 ${decimal(figures.p99)} ms`)
    }
  }
  const rebalanceSchema = "bench_scale_rebalance"
  await prepare(rebalanceSchema)
  const moves: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    const result = await rebalance(rebalanceSchema, round)
    if (result.rows !== result.total || result.max !== 1) {
      throw new Error(`rebalance lost or doubled events: ${result.rows} of ${result.total} applied, max ${result.max}`)
    }
    moves.push(result.moved)
    log(`rebalance round ${round + 1}: partitions moved after ${result.moved} ms; ${result.rows} of ${result.total} events applied once each`)
  }
  const cell = (values: ReadonlyArray<number>, format: (n: number) => string) => {
    const s = summarize(values)
    return `${format(s.median)} (${format(s.min)}–${format(s.max)})`
  }
  console.log(`\nconsumer group, ${integer(eventCount)} seeded events, ${partitions} partitions, ${rounds} interleaved rounds, load ${load()}`)
  console.log(table(
    ["workers", "catch-up events/s", "live p50 ms", "live p99 ms"],
    [1, 2, 4].map((w) => {
      const figures = results.get(w)!
      return [String(w), cell(figures.map((f) => f.rate), integer), cell(figures.map((f) => f.p50), decimal), cell(figures.map((f) => f.p99), decimal)]
    })
  ))
  console.log(`rebalance (3 workers, lease 3 s, one SIGKILLed): partitions moved after ${cell(moves, integer)} ms; every event applied once`)
  await withAdmin(async (db) => {
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await db.query(`DROP SCHEMA IF EXISTS "${rebalanceSchema}" CASCADE`)
  })
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
