/**
 * Benchmarks chronicle's PostgreSQL store against Emmett's
 * (`@event-driven-io/emmett-postgresql`), in one process, on one database:
 *
 * - appends/s of single-event appends with an exact expected version, from 1
 *   and from 16 concurrent writers (each writer on its own stream);
 * - events/s of 100-event appends, from 1 and from 16 writers;
 * - aggregate load time (p50/p95/p99) of bank accounts of 100 and 10,000
 *   events: chronicle's `CommandHandler.load`, Emmett's `aggregateStream`
 *   with the same `evolve` and initial state over the same event shapes;
 * - a 1,000,000-event account: seeding time (appends of 1,000 events) and a
 *   full replay (events/s, peak RSS growth). Emmett reads a whole stream into
 *   memory, so its replay runs in a child process that is killed after 60 s
 *   and whose running out of memory cannot take the benchmark down.
 *
 * The two stores take turns (append workloads in alternating rounds, loads
 * run by run) so that noise on the machine hits both alike. Each store lives
 * in its own PostgreSQL schema (`bench_chronicle`, `bench_emmett`), dropped
 * at the start and, unless `--keep`, at the end.
 *
 * Run: npm run bench:postgres                 (a table, and bench/results/postgres.json)
 *      npx tsx bench/postgres.ts --quick      (short smoke run, no 1,000,000-event account)
 *      npx tsx bench/postgres.ts --json       (the JSON on stdout instead of the table)
 *
 * DATABASE_URL overrides postgres://postgres@127.0.0.1:5432/test. The benchmark
 * drops schemas, so it refuses any host but the loopback.
 */
import { fork } from "node:child_process"
import { mkdir, readFile, writeFile } from "node:fs/promises"
import os from "node:os"
import { fileURLToPath } from "node:url"
import type { PostgresEventStore } from "@event-driven-io/emmett-postgresql"
import { Effect, ManagedRuntime } from "effect"
import pg from "pg"
import { EventStore, ExpectedVersion, StreamId } from "chronicle"
import { PostgresEventStore as ChroniclePostgres } from "chronicle/postgres"
import { AccountEvents, BankAccount } from "../examples/BankAccount.js"
import type { AccountEvent, AccountState } from "../examples/BankAccount.js"
import { accounts, historyBatches, seedAccount } from "./accounts.js"
import { makeEmmettStore as makeEmmettStoreIn } from "./emmett.js"
import {
  appendWorkloads,
  assertLoopback,
  databaseUrl,
  percentile,
  perSecond,
  progressLog,
  summarizeLoads,
  table,
  timedPromise,
  withAdmin,
  withPeakRss
} from "./support.js"
import type { AppendWorkload, LoadPlan, LoadResult, RssSample } from "./support.js"

// settings ----------------------------------------------------------------------

const argv = process.argv.slice(2)
const quick = argv.includes("--quick")
const asJson = argv.includes("--json")
const keep = argv.includes("--keep")

const chronicleSchema = "bench_chronicle"
const emmettSchema = "bench_emmett"
const maxConnections = 20
const resultsFile = fileURLToPath(new URL("./results/postgres.json", import.meta.url))

const concurrentWriters = 16
const batchSize = 100
const seedBatchSize = 1_000
const largeEventCount = 1_000_000
const emmettReplayTimeoutMillis = 60_000

/** Each store gets `rounds × sliceMillis` per append workload, after an untimed warm-up slice. */
const appendPlan = quick
  ? { rounds: 1, sliceMillis: 500, warmupMillis: 200 }
  : { rounds: 3, sliceMillis: 1_500, warmupMillis: 500 }

const loadPlans: ReadonlyArray<LoadPlan> = quick
  ? [{ eventCount: 100, warmupRuns: 10, runs: 40 }, { eventCount: 10_000, warmupRuns: 2, runs: 8 }]
  : [{ eventCount: 100, warmupRuns: 30, runs: 200 }, { eventCount: 10_000, warmupRuns: 5, runs: 40 }]
const largeReplayRuns = 3

/** chronicle's targets on this kind of machine (2 cores). */
const targets = {
  load100P50Millis: 2,
  load10kP50Millis: 30,
  replayEventsPerSecond: 150_000,
  batchedEventsPerSecond: 50_000,
  concurrentSingleAppendsPerSecond: 5_000
}

// the two stores behind one shape ---------------------------------------------------

/** One writer's stream and the version it last saw there. */
interface WriterStream {
  readonly name: string
  version: number
}

interface Store {
  readonly name: "chronicle" | "emmett"
  /** Appends `size` deposits per append until `deadline`, with the exact expected version; returns the appends made. */
  readonly appendUntil: (stream: WriterStream, size: number, deadline: number) => Promise<number>
  /** Appends the account's history events, in appends of `seedBatchSize`. */
  readonly seed: (streamName: string, eventCount: number) => Promise<void>
  /** Loads the account; resolves with its version. */
  readonly load: (streamName: string) => Promise<number>
  readonly close: () => Promise<void>
}

/** An event as both stores take it: `{ type, data }`, the same shapes for both. */
interface PlainEvent {
  readonly type: string
  readonly data: Record<string, unknown>
}

/** An account event as chronicle's codec encodes it. */
const plainEvent = (event: AccountEvent): PlainEvent => {
  const encoded = AccountEvents.encode(event)
  if (encoded._tag === "Left") throw encoded.left
  return { type: encoded.right.type, data: encoded.right.data as Record<string, unknown> }
}

const deposits = (size: number): Array<PlainEvent> =>
  Array.from({ length: size }, () => ({ type: "MoneyDeposited", data: { amount: 100 } }))

// chronicle -----------------------------------------------------------------------

const makeChronicle = async (): Promise<Store> => {
  const runtime = ManagedRuntime.make(
    ChroniclePostgres.layerFromUrl({ url: databaseUrl, schema: chronicleSchema, maxConnections })
  )
  await runtime.runPromise(Effect.void) // builds the pool and migrates the schema

  const appendUntil = (stream: WriterStream, size: number, deadline: number) =>
    runtime.runPromise(Effect.gen(function*() {
      const streamId = StreamId.unsafeParse(stream.name)
      let appends = 0
      while (performance.now() < deadline) {
        const result = yield* EventStore.append(streamId, deposits(size), {
          expectedVersion: ExpectedVersion.exact(stream.version)
        })
        stream.version = result.streamVersion
        appends++
      }
      return appends
    }))

  const seed = (streamName: string, eventCount: number) =>
    runtime.runPromise(seedAccount(StreamId.unsafeParse(streamName), eventCount, seedBatchSize))

  const load = (streamName: string) =>
    runtime.runPromise(Effect.map(accounts.load(StreamId.unsafeParse(streamName)), (loaded) => loaded.version))

  return { name: "chronicle", appendUntil, seed, load, close: () => runtime.dispose() }
}

// Emmett ------------------------------------------------------------------------

const makeEmmettStore = () => makeEmmettStoreIn(emmettSchema, maxConnections)

/** BankAccount's own `evolve` and initial state, over Emmett's `{ type, data }` events. */
const emmettEvolve = (state: AccountState, event: PlainEvent): AccountState =>
  BankAccount.evolve(state, { _tag: event.type, ...event.data } as AccountEvent)

const emmettLoad = async (store: PostgresEventStore, streamName: string) => {
  const result = await store.aggregateStream<AccountState, PlainEvent>(streamName, {
    evolve: emmettEvolve,
    initialState: () => BankAccount.initialState
  })
  return Number(result.currentStreamVersion)
}

const makeEmmett = async (): Promise<Store> => {
  const { store, pool } = makeEmmettStore()
  await store.schema.migrate()

  const appendUntil = async (stream: WriterStream, size: number, deadline: number) => {
    let appends = 0
    while (performance.now() < deadline) {
      const result = await store.appendToStream(stream.name, deposits(size), {
        expectedStreamVersion: BigInt(stream.version)
      })
      stream.version = Number(result.nextExpectedStreamVersion)
      appends++
    }
    return appends
  }

  const seed = async (streamName: string, eventCount: number) => {
    for (const { version, events } of historyBatches(eventCount, seedBatchSize)) {
      await store.appendToStream(streamName, events.map(plainEvent), { expectedStreamVersion: BigInt(version) })
    }
  }

  return {
    name: "emmett",
    appendUntil,
    seed,
    load: (streamName) => emmettLoad(store, streamName),
    close: async () => {
      await store.close()
      await pool.end()
    }
  }
}

// appending ---------------------------------------------------------------------

interface AppendRun {
  readonly appends: number
  readonly events: number
  readonly millis: number
}

interface AppendResult extends AppendRun {
  readonly appendsPerSecond: number
  readonly eventsPerSecond: number
}

const workloads = appendWorkloads(concurrentWriters, batchSize)

const appendSlice = async (store: Store, streams: ReadonlyArray<WriterStream>, size: number, millis: number) => {
  const start = performance.now()
  const deadline = start + millis
  const counts = await Promise.all(streams.map((stream) => store.appendUntil(stream, size, deadline)))
  const appends = counts.reduce((a, b) => a + b, 0)
  const run: AppendRun = { appends, events: appends * size, millis: performance.now() - start }
  return run
}

const summarizeAppends = (runs: ReadonlyArray<AppendRun>): AppendResult => {
  const appends = runs.reduce((sum, run) => sum + run.appends, 0)
  const events = runs.reduce((sum, run) => sum + run.events, 0)
  const millis = runs.reduce((sum, run) => sum + run.millis, 0)
  return { appends, events, millis, appendsPerSecond: perSecond(appends, millis), eventsPerSecond: perSecond(events, millis) }
}

/** Alternating rounds: chronicle then Emmett, Emmett then chronicle, and so on. */
const appendStage = async (stores: ReadonlyArray<Store>, workload: AppendWorkload) => {
  const streams = new Map(stores.map((store) => [
    store.name,
    Array.from({ length: workload.writers }, (_, w): WriterStream => ({
      name: `account-${workload.key}-w${w}`,
      version: 0
    }))
  ]))
  for (const store of stores) await appendSlice(store, streams.get(store.name)!, workload.size, appendPlan.warmupMillis)
  const runs = new Map<string, Array<AppendRun>>(stores.map((store) => [store.name, []]))
  for (let round = 0; round < appendPlan.rounds; round++) {
    const order = round % 2 === 0 ? stores : [...stores].reverse()
    for (const store of order) {
      runs.get(store.name)!.push(await appendSlice(store, streams.get(store.name)!, workload.size, appendPlan.sliceMillis))
    }
  }
  return Object.fromEntries(stores.map((store) => [store.name, summarizeAppends(runs.get(store.name)!)]))
}

// loading -----------------------------------------------------------------------

const loadOnce = async (store: Store, streamName: string, eventCount: number) => {
  const { value: version, millis } = await timedPromise(() => store.load(streamName))
  if (version !== eventCount) throw new Error(`${store.name} loaded version ${version} of ${streamName}, expected ${eventCount}`)
  return millis
}

/** Run by run, the stores taking turns (and turns about who goes first). */
const loadStage = async (stores: ReadonlyArray<Store>, { eventCount, runs, warmupRuns }: LoadPlan) => {
  const streamName = `account-load-${eventCount}`
  for (const store of stores) await store.seed(streamName, eventCount)
  const millis = new Map<string, Array<number>>(stores.map((store) => [store.name, []]))
  for (let run = 0; run < warmupRuns + runs; run++) {
    const order = run % 2 === 0 ? stores : [...stores].reverse()
    for (const store of order) {
      const elapsed = await loadOnce(store, streamName, eventCount)
      if (run >= warmupRuns) millis.get(store.name)!.push(elapsed)
    }
  }
  return Object.fromEntries(stores.map((store) => [store.name, summarizeLoads(eventCount, millis.get(store.name)!)]))
}

// the 1,000,000-event account ------------------------------------------------------------

const largeStreamName = `account-replay-${largeEventCount}`

interface ReplayResult {
  readonly status: "ok"
  readonly eventCount: number
  readonly runs: ReadonlyArray<number>
  readonly p50Millis: number
  readonly eventsPerSecondAtP50: number
  readonly rss: RssSample
  readonly where: string
}

interface ReplayUnavailable {
  readonly status: "n/a"
  readonly reason: string
}

interface LargeResult {
  readonly seedMillis: number
  readonly replay: ReplayResult | ReplayUnavailable
}

const chronicleLarge = async (chronicle: Store): Promise<LargeResult> => {
  const { millis: seedMillis } = await timedPromise(() => chronicle.seed(largeStreamName, largeEventCount))
  const { value: runs, rss } = await withPeakRss(async () => {
    const runs: Array<number> = []
    for (let run = 0; run < largeReplayRuns; run++) runs.push(await loadOnce(chronicle, largeStreamName, largeEventCount))
    return runs
  })
  const p50 = percentile([...runs].sort((a, b) => a - b), 50)
  return {
    seedMillis,
    replay: {
      status: "ok",
      eventCount: largeEventCount,
      runs,
      p50Millis: p50,
      eventsPerSecondAtP50: perSecond(largeEventCount, p50),
      rss,
      where: "benchmark process"
    }
  }
}

const replayChildFlag = "--emmett-replay-child"

/** In the child: one warm-up load of the 10,000-event account, then one replay of the large one. */
const emmettReplayChild = async () => {
  const { store, pool } = makeEmmettStore()
  try {
    await emmettLoad(store, "account-load-10000")
    const { value: millis, rss } = await withPeakRss(async () => {
      const { value: version, millis } = await timedPromise(() => emmettLoad(store, largeStreamName))
      if (version !== largeEventCount) throw new Error(`emmett loaded version ${version}, expected ${largeEventCount}`)
      return millis
    })
    const result: ReplayResult = {
      status: "ok",
      eventCount: largeEventCount,
      runs: [millis],
      p50Millis: millis,
      eventsPerSecondAtP50: perSecond(largeEventCount, millis),
      rss,
      where: "child process"
    }
    process.send!(result)
  } finally {
    await store.close()
    await pool.end()
  }
}

const emmettReplayInChild = (): Promise<ReplayResult | ReplayUnavailable> =>
  new Promise((resolve) => {
    const child = fork(fileURLToPath(import.meta.url), [replayChildFlag], {
      stdio: ["ignore", "ignore", "pipe", "ipc"]
    })
    let stderr = ""
    let result: ReplayResult | undefined
    let timedOut = false
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4_000)
    })
    child.on("message", (message) => {
      result = message as ReplayResult
    })
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, emmettReplayTimeoutMillis)
    child.on("exit", (code, signal) => {
      clearTimeout(timer)
      if (result !== undefined) return resolve(result)
      const reason = timedOut
        ? `no result within ${emmettReplayTimeoutMillis / 1000} s`
        : /heap out of memory|Allocation failed/i.test(stderr)
        ? "ran out of memory: it reads the whole stream into one array"
        : `the replay process exited (${signal ?? code}): ${stderr.trim().split("\n").slice(-3).join(" / ")}`
      resolve({ status: "n/a", reason })
    })
  })

const emmettLarge = async (emmett: Store): Promise<LargeResult> => {
  const { millis: seedMillis } = await timedPromise(() => emmett.seed(largeStreamName, largeEventCount))
  return { seedMillis, replay: await emmettReplayInChild() }
}

// reporting ---------------------------------------------------------------------

type PerStore<A> = Record<string, A>

interface Report {
  readonly node: string
  readonly cpus: number
  readonly postgres: string
  readonly emmettVersion: string
  readonly quick: boolean
  readonly settings: {
    readonly maxConnections: number
    readonly appendPlan: typeof appendPlan
    readonly loadPlans: ReadonlyArray<LoadPlan>
    readonly largeEventCount: number | null
    readonly seedBatchSize: number
  }
  readonly appends: Record<string, PerStore<AppendResult>>
  readonly loads: Record<string, PerStore<LoadResult>>
  readonly large: PerStore<LargeResult> | null
  readonly rows: ReadonlyArray<Row>
  readonly totalMillis: number
}

interface Row {
  readonly workload: string
  readonly unit: string
  readonly chronicle: number | string
  readonly emmett: number | string
  /** chronicle ÷ Emmett; higher is better for rates, lower for times and memory */
  readonly ratio: number | null
  readonly better: "higher" | "lower" | null
  readonly target: string | null
  readonly meetsTarget: boolean | null
}

const row = (
  workload: string,
  unit: string,
  better: "higher" | "lower",
  chronicle: number | string,
  emmett: number | string,
  target?: number
): Row => ({
  workload,
  unit,
  chronicle,
  emmett,
  ratio: typeof chronicle === "number" && typeof emmett === "number" ? chronicle / emmett : null,
  better,
  target: target === undefined ? null : `${better === "higher" ? ">=" : "<="} ${target.toLocaleString("en-US")}`,
  meetsTarget: target === undefined || typeof chronicle !== "number"
    ? null
    : better === "higher" ? chronicle >= target : chronicle <= target
})

const replayValue = (replay: LargeResult["replay"], pick: (r: ReplayResult) => number) =>
  replay.status === "ok" ? pick(replay) : `n/a (${replay.reason})`

const rowsOf = (report: Omit<Report, "rows" | "totalMillis">): Array<Row> => {
  const rows: Array<Row> = []
  const a = report.appends
  rows.push(
    row("append 1 event, 1 writer", "appends/s", "higher", a["single-1"]!["chronicle"]!.appendsPerSecond, a["single-1"]!["emmett"]!.appendsPerSecond),
    row(
      `append 1 event, ${concurrentWriters} writers`,
      "appends/s",
      "higher",
      a[`single-${concurrentWriters}`]!["chronicle"]!.appendsPerSecond,
      a[`single-${concurrentWriters}`]!["emmett"]!.appendsPerSecond,
      targets.concurrentSingleAppendsPerSecond
    ),
    row(
      `append ${batchSize} events, 1 writer`,
      "events/s",
      "higher",
      a["batch-1"]!["chronicle"]!.eventsPerSecond,
      a["batch-1"]!["emmett"]!.eventsPerSecond,
      targets.batchedEventsPerSecond
    ),
    row(
      `append ${batchSize} events, ${concurrentWriters} writers`,
      "events/s",
      "higher",
      a[`batch-${concurrentWriters}`]!["chronicle"]!.eventsPerSecond,
      a[`batch-${concurrentWriters}`]!["emmett"]!.eventsPerSecond,
      targets.batchedEventsPerSecond
    )
  )
  for (const [eventCount, loads] of Object.entries(report.loads)) {
    const c = loads["chronicle"]!
    const e = loads["emmett"]!
    const label = `load ${Number(eventCount).toLocaleString("en-US")} events`
    const target = Number(eventCount) === 100 ? targets.load100P50Millis : Number(eventCount) === 10_000 ? targets.load10kP50Millis : undefined
    rows.push(
      row(`${label} p50`, "ms", "lower", c.p50, e.p50, target),
      row(`${label} p95`, "ms", "lower", c.p95, e.p95),
      row(`${label} p99`, "ms", "lower", c.p99, e.p99)
    )
  }
  const large = report.large
  const label = `${largeEventCount.toLocaleString("en-US")} events`
  if (large === null) {
    rows.push(row(`replay ${label}`, "events/s", "higher", "skipped (--quick)", "skipped (--quick)"))
  } else {
    const c = large["chronicle"]!
    const e = large["emmett"]!
    rows.push(
      row(`seed ${label} (appends of ${seedBatchSize.toLocaleString("en-US")})`, "s", "lower", c.seedMillis / 1000, e.seedMillis / 1000),
      row(
        `replay ${label}, full`,
        "events/s",
        "higher",
        replayValue(c.replay, (r) => r.eventsPerSecondAtP50),
        replayValue(e.replay, (r) => r.eventsPerSecondAtP50),
        targets.replayEventsPerSecond
      ),
      row(
        `replay ${label}, peak RSS growth`,
        "MiB",
        "lower",
        replayValue(c.replay, (r) => r.rss.growth / 2 ** 20),
        replayValue(e.replay, (r) => r.rss.growth / 2 ** 20)
      )
    )
  }
  rows.push(row(`load ${label} through a snapshot`, "ms", "lower", "see npm run bench:snapshots", "n/a (no snapshots)"))
  return rows
}

const formatNumber = (n: number) =>
  Math.abs(n) >= 1000 ? Math.round(n).toLocaleString("en-US") : n.toFixed(Math.abs(n) < 10 ? 2 : 1)

const formatCell = (value: number | string) => typeof value === "number" ? formatNumber(value) : value

const formatReport = (report: Report) =>
  [
    `chronicle vs Emmett ${report.emmettVersion} on PostgreSQL ${report.postgres}, node ${report.node}, ${report.cpus} cpus${
      report.quick ? " (--quick)" : ""
    }`,
    `pools of ${report.settings.maxConnections} connections each; ratio = chronicle / Emmett (rates: higher is better; ms, s, MiB: lower is better)`,
    "",
    table(
      ["workload", "unit", "chronicle", "Emmett", "ratio", "chronicle target"],
      report.rows.map((r) => [
        r.workload,
        r.unit,
        formatCell(r.chronicle),
        formatCell(r.emmett),
        r.ratio === null ? "" : `${r.ratio.toFixed(2)}x`,
        r.target === null ? "" : `${r.target} ${r.meetsTarget ? "ok" : "MISSED"}`
      ])
    ),
    "",
    `total ${(report.totalMillis / 1000).toFixed(0)} s; JSON in bench/results/postgres.json`
  ].join("\n")

// setup and the run ---------------------------------------------------------------

const dropSchemas = (client: pg.Client) =>
  client.query(`DROP SCHEMA IF EXISTS ${chronicleSchema} CASCADE; DROP SCHEMA IF EXISTS ${emmettSchema} CASCADE`)

const emmettPackageVersion = async () => {
  const url = new URL("../node_modules/@event-driven-io/emmett-postgresql/package.json", import.meta.url)
  return (JSON.parse(await readFile(url, "utf8")) as { version: string }).version
}

const log = progressLog(asJson)

const benchmark = async (): Promise<Report> => {
  const started = performance.now()
  assertLoopback(databaseUrl, "bench/postgres.ts")
  const postgres = await withAdmin(async (client) => {
    await dropSchemas(client)
    await client.query(`CREATE SCHEMA ${emmettSchema}`)
    return (await client.query<{ server_version: string }>("SHOW server_version")).rows[0]!.server_version
  })
  const chronicle = await makeChronicle()
  const emmett = await makeEmmett()
  const stores = [chronicle, emmett]
  try {
    const appends: Record<string, PerStore<AppendResult>> = {}
    for (const workload of workloads) {
      log(`appends: ${workload.writers} writer(s), ${workload.size} event(s) per append`)
      appends[workload.key] = await appendStage(stores, workload)
    }
    const loads: Record<string, PerStore<LoadResult>> = {}
    for (const plan of loadPlans) {
      log(`loads: ${plan.eventCount} events`)
      loads[String(plan.eventCount)] = await loadStage(stores, plan)
    }
    let large: PerStore<LargeResult> | null = null
    if (!quick) {
      log(`${largeEventCount} events: chronicle (seed, ${largeReplayRuns} replays)`)
      const c = await chronicleLarge(chronicle)
      log(`${largeEventCount} events: Emmett (seed, 1 replay in a child process)`)
      const e = await emmettLarge(emmett)
      large = { chronicle: c, emmett: e }
    }
    const partial = {
      node: process.version,
      cpus: os.availableParallelism(),
      postgres,
      emmettVersion: await emmettPackageVersion(),
      quick,
      settings: {
        maxConnections,
        appendPlan,
        loadPlans,
        largeEventCount: quick ? null : largeEventCount,
        seedBatchSize
      },
      appends,
      loads,
      large
    }
    return { ...partial, rows: rowsOf(partial), totalMillis: performance.now() - started }
  } finally {
    await chronicle.close()
    await emmett.close()
    if (!keep) await withAdmin(dropSchemas)
  }
}

const main = async () => {
  const report = await benchmark()
  await mkdir(fileURLToPath(new URL("./results/", import.meta.url)), { recursive: true })
  await writeFile(resultsFile, JSON.stringify(report, null, 2) + "\n")
  console.log(asJson ? JSON.stringify(report, null, 2) : formatReport(report))
}

;(process.argv.includes(replayChildFlag) ? emmettReplayChild() : main()).catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
