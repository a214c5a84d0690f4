/**
 * The embedded stores side by side (issue 20): chronicle's filesystem store
 * (`FileEventStore`, through its public API: bench/embedded-chronicle.ts), raw
 * SQLite through better-sqlite3 (bench/sqlite/raw.ts) and Emmett's SQLite
 * event store (bench/sqlite/emmett.ts), in one run whose rounds alternate the
 * three (the order rotates every round), each in fresh directories under the
 * OS temp directory. `os.loadavg()` is printed at the start and end of every
 * round; figures are medians over the rounds with their range.
 *
 * - appends with the exact expected version, fsync on (SQLite: WAL,
 *   `synchronous=FULL`) and off (`synchronous=NORMAL`): 1 writer with 1 event
 *   per append, 16 writers on 16 streams with 1 event per append, 1 writer
 *   with 100-event appends (events/s). Concurrent writers are 16 async
 *   callers in one process: chronicle's group commit may serve them together;
 *   better-sqlite3 is synchronous, so raw SQLite runs their transactions one
 *   at a time between turns of the event loop; Emmett opens a connection per
 *   append (its default for a file database) and waits on SQLite's lock;
 * - loads of a 10,000-event account (the time to read and fold it: chronicle
 *   through `CommandHandler.load` with its Schema codec, Emmett through
 *   `aggregateStream`, raw SQLite by iterating a prepared statement and
 *   `JSON.parse`), p50 per round;
 * - a 1,000,000-event account, seeded once per store (appends of 1,000,
 *   fsync off): bytes per event (the store's directory after closing it),
 *   then per round and store, each in a fresh child process: the open (ms
 *   from before the store's module is imported to the first read, the
 *   stream's last event; the child has already loaded Effect and pg through
 *   bench/support.ts) and a full replay (events/s, peak RSS growth over the
 *   RSS of the open store).
 *
 * better-sqlite3 and Emmett's SQLite store build native code, so they live in
 * the bench-only package bench/sqlite (not a workspace: `npm ci` at the root
 * and CI do not install it, and the root tsconfig excludes it). Install them
 * once (python3, make and g++ compile them; bench/sqlite/.npmrc points
 * node-gyp at the installed Node headers):
 *
 *   npm --prefix bench/sqlite ci
 *
 * Run: npm run bench:embedded                  (a table; ~5 minutes on a quiet machine)
 *      npx tsx bench/embedded.ts --quick       (smoke run, under 2 minutes, small sizes)
 *      npx tsx bench/embedded.ts --json        (a JSON object on stdout instead of the table)
 * Type-check the bench-only part: npx tsc --noEmit -p bench/sqlite
 */
import { fork } from "node:child_process"
import { existsSync, readdirSync, statSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import type { EmbeddedContender, EmbeddedStore } from "./embedded-store.js"
import {
  decimal,
  integer,
  mebibytes,
  percentile,
  perSecond,
  progressLog,
  resultOfChild,
  startRssSampler,
  table,
  timedPromise,
  summarize,
  withTempDirectory
} from "./support.js"
import type { RssSample, Summary } from "./support.js"

// settings ----------------------------------------------------------------------

const argv = process.argv.slice(2)
const quick = argv.includes("--quick")
const asJson = argv.includes("--json")

const concurrentWriters = 16
const batchSize = 100
const seedBatchSize = 1_000

const plan = quick
  ? {
    appendRounds: 2,
    appendWarmupMillis: 100,
    appendSliceMillis: 400,
    loadRounds: 2,
    loadEventCount: 10_000,
    loadWarmupRuns: 1,
    loadRuns: 3,
    largeRounds: 2,
    largeEventCount: 20_000
  }
  : {
    appendRounds: 5,
    appendWarmupMillis: 300,
    appendSliceMillis: 1_500,
    loadRounds: 5,
    loadEventCount: 10_000,
    loadWarmupRuns: 2,
    loadRuns: 7,
    largeRounds: 3,
    largeEventCount: 1_000_000
  }

const log = progressLog(asJson)

// the contenders ------------------------------------------------------------------

const contenderKeys = ["chronicle", "emmett", "sqlite"] as const
type ContenderKey = typeof contenderKeys[number]

const contenderNames: Record<ContenderKey, string> = {
  chronicle: "chronicle",
  emmett: "Emmett SQLite",
  sqlite: "raw SQLite"
}

/** Module paths, imported by a computed specifier: the root tsc never resolves the bench-only packages. */
const contenderModules: Record<ContenderKey, string> = {
  chronicle: "./embedded-chronicle.ts",
  emmett: "./sqlite/emmett.ts",
  sqlite: "./sqlite/raw.ts"
}

const benchDirectory = path.dirname(fileURLToPath(import.meta.url))
const sqlitePackageDirectory = path.join(benchDirectory, "sqlite")

const importContender = async (key: ContenderKey): Promise<EmbeddedContender> => {
  const module: { default: EmbeddedContender } = await import(new URL(contenderModules[key], import.meta.url).href)
  return module.default
}

const assertSqlitePackageInstalled = () => {
  const needed = ["better-sqlite3", "@event-driven-io/emmett-sqlite"]
  const missing = needed.filter((name) => !existsSync(path.join(sqlitePackageDirectory, "node_modules", name)))
  if (missing.length > 0) {
    throw new Error(
      `bench/embedded.ts needs the bench-only packages (${missing.join(", ")} missing): npm --prefix bench/sqlite ci`
    )
  }
}

/** The contenders in a different order each round, so none always runs first or last. */
const rotation = (round: number): ReadonlyArray<ContenderKey> =>
  contenderKeys.map((_, i) => contenderKeys[(i + round) % contenderKeys.length]!)

// summaries ---------------------------------------------------------------------

type PerContender<A> = Record<ContenderKey, Array<A>>
const perContender = <A>(): PerContender<A> => ({ chronicle: [], emmett: [], sqlite: [] })

interface LoadAverageMark {
  readonly stage: string
  readonly round: number
  readonly start: ReadonlyArray<number>
  readonly end: ReadonlyArray<number>
}

const loadAverages: Array<LoadAverageMark> = []
const formatLoad = (load: ReadonlyArray<number>) => load.map((l) => l.toFixed(2)).join(" ")

/** Runs one round, printing and recording the load average at its start and end. */
const round = async <A>(stage: string, index: number, rounds: number, run: () => Promise<A>): Promise<A> => {
  const start = os.loadavg()
  log(`${stage}, round ${index + 1}/${rounds}: load average ${formatLoad(start)}`)
  const value = await run()
  const end = os.loadavg()
  log(`${stage}, round ${index + 1}/${rounds} done: load average ${formatLoad(end)}`)
  loadAverages.push({ stage, round: index + 1, start, end })
  return value
}

const withStore = async <A>(key: ContenderKey, directory: string, fsync: boolean, use: (store: EmbeddedStore) => Promise<A>) => {
  const store = await (await importContender(key)).open(directory, fsync)
  try {
    return await use(store)
  } finally {
    await store.close()
  }
}

// appending ---------------------------------------------------------------------

interface AppendWorkload {
  readonly key: string
  readonly label: string
  readonly writers: number
  readonly size: number
  readonly fsync: boolean
}

const appendWorkloads: ReadonlyArray<AppendWorkload> = [true, false].flatMap((fsync) => [
  { key: "single-1", label: "1 writer, 1 event per append, appends/s", writers: 1, size: 1, fsync },
  { key: `single-${concurrentWriters}`, label: `${concurrentWriters} writers, 1 event per append, appends/s`, writers: concurrentWriters, size: 1, fsync },
  { key: `batch-1`, label: `1 writer, ${batchSize}-event appends, events/s`, writers: 1, size: batchSize, fsync }
])

const workloadName = (workload: AppendWorkload) => `${workload.key}-fsync-${workload.fsync ? "on" : "off"}`

interface WriterStream {
  readonly stream: string
  version: number
}

interface AppendSlice {
  readonly appends: number
  readonly millis: number
  readonly latencies: ReadonlyArray<number>
}

/** Every writer appends to its stream with the exact expected version until the slice ends. */
const appendSlice = async (store: EmbeddedStore, streams: ReadonlyArray<WriterStream>, size: number, millis: number) => {
  const { value: latencies, millis: elapsed } = await timedPromise(async () => {
    const deadline = performance.now() + millis
    const perWriter = await Promise.all(streams.map(async (writer) => {
      const latencies: Array<number> = []
      while (performance.now() < deadline) {
        const start = performance.now()
        writer.version = await store.append(writer.stream, writer.version, size)
        latencies.push(performance.now() - start)
      }
      return latencies
    }))
    return perWriter.flat()
  })
  const result: AppendSlice = { appends: latencies.length, millis: elapsed, latencies }
  return result
}

interface AppendRun {
  readonly appendsPerSecond: number
  readonly eventsPerSecond: number
  readonly latencyP50Millis: number
  readonly latencyP99Millis: number
}

const appendRound = (key: ContenderKey, fsync: boolean) =>
  withTempDirectory(`embedded-${key}-appends`, (directory) =>
    withStore(key, directory, fsync, async (store) => {
      const runs = new Map<string, AppendRun>()
      for (const workload of appendWorkloads.filter((w) => w.fsync === fsync)) {
        const streams = Array.from({ length: workload.writers }, (_, w): WriterStream => ({
          stream: `${workload.key}-w${w}`,
          version: 0
        }))
        await appendSlice(store, streams, workload.size, plan.appendWarmupMillis)
        const slice = await appendSlice(store, streams, workload.size, plan.appendSliceMillis)
        const sorted = [...slice.latencies].sort((a, b) => a - b)
        runs.set(workloadName(workload), {
          appendsPerSecond: perSecond(slice.appends, slice.millis),
          eventsPerSecond: perSecond(slice.appends * workload.size, slice.millis),
          latencyP50Millis: percentile(sorted, 50),
          latencyP99Millis: percentile(sorted, 99)
        })
      }
      return runs
    }))

const appendStage = async () => {
  const runs = new Map<string, PerContender<AppendRun>>(appendWorkloads.map((w) => [workloadName(w), perContender()]))
  for (let index = 0; index < plan.appendRounds; index++) {
    await round("appends", index, plan.appendRounds, async () => {
      for (const key of rotation(index)) {
        for (const fsync of [true, false]) {
          log(`  ${contenderNames[key]}, fsync ${fsync ? "on" : "off"}`)
          for (const [name, run] of await appendRound(key, fsync)) runs.get(name)![key].push(run)
        }
      }
    })
  }
  return runs
}

// loading -----------------------------------------------------------------------

const loadStream = "loaded"

/** Loads the stream `times` times; each load's milliseconds. */
const loadTimes = async (store: EmbeddedStore, eventCount: number, times: number) => {
  const millis: Array<number> = []
  for (let run = 0; run < times; run++) {
    const { value: version, millis: elapsed } = await timedPromise(() => store.load(loadStream))
    if (version !== eventCount) throw new Error(`loaded version ${version}, expected ${eventCount}`)
    millis.push(elapsed)
  }
  return millis
}

interface LoadRound {
  readonly p50: number
  readonly runs: ReadonlyArray<number>
}

/** The 10,000-event account in each store, all three open through every round. */
const loadStage = () =>
  withTempDirectory("embedded-loads", async (root) => {
    const stores = new Map<ContenderKey, EmbeddedStore>()
    const results = perContender<LoadRound>()
    try {
      for (const key of contenderKeys) {
        log(`loads: seeding ${integer(plan.loadEventCount)} events into ${contenderNames[key]}`)
        const store = await (await importContender(key)).open(path.join(root, key), false)
        stores.set(key, store)
        await store.seed(loadStream, plan.loadEventCount, seedBatchSize)
      }
      for (let index = 0; index < plan.loadRounds; index++) {
        await round(`loads of ${integer(plan.loadEventCount)} events`, index, plan.loadRounds, async () => {
          for (const key of rotation(index)) {
            const store = stores.get(key)!
            await loadTimes(store, plan.loadEventCount, plan.loadWarmupRuns)
            const runs = await loadTimes(store, plan.loadEventCount, plan.loadRuns)
            results[key].push({ p50: percentile([...runs].sort((a, b) => a - b), 50), runs })
          }
        })
      }
      return results
    } finally {
      for (const store of stores.values()) await store.close()
    }
  })

// the large account, in child processes -----------------------------------------------

const largeStream = "large"
const childFlag = "--child"

interface OpenResult {
  /** From before the contender's module is imported to the first read answered. */
  readonly toFirstReadMillis: number
  readonly importMillis: number
  readonly openMillis: number
  readonly firstReadMillis: number
  /** Since the child process started (Node, tsx, the bench's own imports included). */
  readonly sinceProcessStartMillis: number
}

interface ReplayResult {
  readonly millis: number
  readonly eventsPerSecond: number
  readonly rss: RssSample
}

type ChildResult = OpenResult | ReplayResult

const openInChild = async (key: ContenderKey, directory: string, eventCount: number): Promise<OpenResult> => {
  const start = performance.now()
  const contender = await importContender(key)
  const imported = performance.now()
  const store = await contender.open(directory, false)
  const opened = performance.now()
  const version = await store.readLast(largeStream, eventCount)
  const read = performance.now()
  await store.close()
  if (version !== eventCount) throw new Error(`${key}: the last event read is at version ${version}, expected ${eventCount}`)
  return {
    toFirstReadMillis: read - start,
    importMillis: imported - start,
    openMillis: opened - imported,
    firstReadMillis: read - opened,
    sinceProcessStartMillis: read
  }
}

const replayInChild = async (key: ContenderKey, directory: string, eventCount: number): Promise<ReplayResult> => {
  const store = await (await importContender(key)).open(directory, false)
  try {
    const sampler = await startRssSampler()
    const { value: version, millis } = await timedPromise(() => store.load(largeStream))
    const rss = await sampler.stop()
    if (version !== eventCount) throw new Error(`${key}: replayed to version ${version}, expected ${eventCount}`)
    return { millis, eventsPerSecond: perSecond(eventCount, millis), rss }
  } finally {
    await store.close()
  }
}

/** In a child: `--child open|replay <contender> <directory> <eventCount>`; the result goes back over IPC. */
const runChild = async (args: ReadonlyArray<string>) => {
  const [task, key, directory, count] = args as [string, ContenderKey, string, string]
  const eventCount = Number(count)
  const result: ChildResult = task === "open"
    ? await openInChild(key, directory, eventCount)
    : await replayInChild(key, directory, eventCount)
  process.send!(result)
}

const inChild = <A extends ChildResult>(task: "open" | "replay", key: ContenderKey, directory: string, eventCount: number) =>
  resultOfChild<A>(
    fork(fileURLToPath(import.meta.url), [childFlag, task, key, directory, String(eventCount)], {
      stdio: ["ignore", "ignore", "pipe", "ipc"]
    }),
    `the ${task} process of ${key}`
  )

const directoryBytes = (directory: string): number =>
  readdirSync(directory, { withFileTypes: true }).reduce((total, entry) => {
    const entryPath = path.join(directory, entry.name)
    return total + (entry.isDirectory() ? directoryBytes(entryPath) : statSync(entryPath).size)
  }, 0)

interface SeedResult {
  readonly millis: number
  readonly eventsPerSecond: number
  readonly bytes: number
  readonly bytesPerEvent: number
}

const largeStage = () =>
  withTempDirectory("embedded-large", async (root) => {
    const eventCount = plan.largeEventCount
    const seeds = {} as Record<ContenderKey, SeedResult>
    for (const key of contenderKeys) {
      log(`${integer(eventCount)} events: seeding ${contenderNames[key]} (appends of ${integer(seedBatchSize)}, fsync off)`)
      const directory = path.join(root, key)
      const { millis } = await timedPromise(() =>
        withStore(key, directory, false, (store) => store.seed(largeStream, eventCount, seedBatchSize))
      )
      const bytes = directoryBytes(directory)
      seeds[key] = { millis, eventsPerSecond: perSecond(eventCount, millis), bytes, bytesPerEvent: bytes / eventCount }
    }
    const opens = perContender<OpenResult>()
    const replays = perContender<ReplayResult>()
    for (let index = 0; index < plan.largeRounds; index++) {
      await round(`${integer(eventCount)} events, open and replay`, index, plan.largeRounds, async () => {
        for (const key of rotation(index)) {
          const directory = path.join(root, key)
          log(`  ${contenderNames[key]}: open in a fresh process`)
          opens[key].push(await inChild<OpenResult>("open", key, directory, eventCount))
          log(`  ${contenderNames[key]}: replay in a fresh process`)
          replays[key].push(await inChild<ReplayResult>("replay", key, directory, eventCount))
        }
      })
    }
    return { eventCount, seeds, opens, replays }
  })

// reporting ---------------------------------------------------------------------

interface Row {
  readonly label: string
  readonly unit: "rate" | "millis" | "bytes" | "mebibytes"
  readonly better: "higher" | "lower"
  readonly spreads: Record<ContenderKey, Summary>
}

const formatValue = (row: Row, value: number) => {
  switch (row.unit) {
    case "rate":
    case "bytes":
      return integer(value)
    case "millis":
      return decimal(value)
    case "mebibytes":
      return mebibytes(value)
  }
}

const formatSpread = (row: Row, s: Summary) =>
  s.rounds.length > 1
    ? `${formatValue(row, s.median)} (${formatValue(row, s.min)}–${formatValue(row, s.max)})`
    : formatValue(row, s.median)

/** chronicle against raw SQLite: the ratio of medians for a rate, "n× raw" for a time or a size. */
const ratioToRaw = (row: Row) => {
  const ratio = row.spreads.chronicle.median / row.spreads.sqlite.median
  return row.better === "higher" ? ratio.toFixed(2) : `${ratio.toFixed(2)}× raw`
}

const rowsOf = (
  appends: Map<string, PerContender<AppendRun>>,
  loads: PerContender<LoadRound>,
  large: Awaited<ReturnType<typeof largeStage>>
): ReadonlyArray<Row> => {
  const over = <A>(runs: PerContender<A>, pick: (a: A) => number): Record<ContenderKey, Summary> => ({
    chronicle: summarize(runs.chronicle.map(pick)),
    emmett: summarize(runs.emmett.map(pick)),
    sqlite: summarize(runs.sqlite.map(pick))
  })
  const appendRows = appendWorkloads.map((workload): Row => ({
    label: `${workload.label} (fsync ${workload.fsync ? "on" : "off"})`,
    unit: "rate",
    better: "higher",
    spreads: over(appends.get(workloadName(workload))!, (run) => workload.size === 1 ? run.appendsPerSecond : run.eventsPerSecond)
  }))
  const seeds = over(
    { chronicle: [large.seeds.chronicle], emmett: [large.seeds.emmett], sqlite: [large.seeds.sqlite] },
    (seed) => seed.bytesPerEvent
  )
  const n = integer(large.eventCount)
  return [
    ...appendRows,
    { label: `load ${integer(plan.loadEventCount)} events, p50 ms`, unit: "millis", better: "lower", spreads: over(loads, (l) => l.p50) },
    { label: `replay ${n} events, events/s`, unit: "rate", better: "higher", spreads: over(large.replays, (r) => r.eventsPerSecond) },
    { label: `replay ${n} events, peak RSS growth`, unit: "mebibytes", better: "lower", spreads: over(large.replays, (r) => r.rss.growth) },
    { label: `open a ${n}-event store, ms to first read (import included)`, unit: "millis", better: "lower", spreads: over(large.opens, (o) => o.toFirstReadMillis) },
    { label: `  of which the import, ms`, unit: "millis", better: "lower", spreads: over(large.opens, (o) => o.importMillis) },
    { label: `  of which open + first read, ms`, unit: "millis", better: "lower", spreads: over(large.opens, (o) => o.openMillis + o.firstReadMillis) },
    { label: "bytes per event", unit: "bytes", better: "lower", spreads: seeds },
    {
      label: `seed ${n} events (appends of ${integer(seedBatchSize)}, fsync off), events/s`,
      unit: "rate",
      better: "higher",
      spreads: over(
        { chronicle: [large.seeds.chronicle], emmett: [large.seeds.emmett], sqlite: [large.seeds.sqlite] },
        (seed) => seed.eventsPerSecond
      )
    }
  ]
}

/** The goals of issue 20, each against the medians of this run. */
const goalsOf = (rows: ReadonlyArray<Row>, large: Awaited<ReturnType<typeof largeStage>>) => {
  const byLabel = (prefix: string) => rows.find((row) => row.label.startsWith(prefix))!
  const ratio = (prefix: string) => {
    const row = byLabel(prefix)
    return row.spreads.chronicle.median / row.spreads.sqlite.median
  }
  const chronicleMedian = (prefix: string) => byLabel(prefix).spreads.chronicle.median
  const n = integer(large.eventCount)
  return [
    { goal: "1 writer, fsync on ≥ 0.8 of raw FULL", value: ratio("1 writer, 1 event per append, appends/s (fsync on)"), met: (v: number) => v >= 0.8 },
    { goal: "1 writer, fsync off ≥ 0.5 of raw NORMAL", value: ratio("1 writer, 1 event per append, appends/s (fsync off)"), met: (v: number) => v >= 0.5 },
    { goal: "16 writers, fsync on ≥ raw", value: ratio(`${concurrentWriters} writers, 1 event per append, appends/s (fsync on)`), met: (v: number) => v >= 1 },
    { goal: "16 writers, fsync off ≥ raw", value: ratio(`${concurrentWriters} writers, 1 event per append, appends/s (fsync off)`), met: (v: number) => v >= 1 },
    { goal: "load 10,000 events ≤ 2× raw (time ratio)", value: ratio(`load ${integer(plan.loadEventCount)} events`), met: (v: number) => v <= 2 },
    { goal: `replay ${n} events ≥ raw's rate`, value: ratio(`replay ${n} events, events/s`), met: (v: number) => v >= 1 },
    { goal: "replay RSS growth ≤ 50 MiB (MiB)", value: chronicleMedian(`replay ${n} events, peak RSS growth`) / 2 ** 20, met: (v: number) => v <= 50 },
    // the open the goal is about (index checkpoint plus the tail since); the import, which tsx compiles
    // from src/ here and is mostly Effect's own modules, is reported beside it
    { goal: `open a ${n}-event store + first read ≤ 200 ms (ms)`, value: chronicleMedian("  of which open + first read"), met: (v: number) => v <= 200 }
  ].map(({ goal, value, met }) => ({ goal, value, met: met(value) }))
}

const main = async () => {
  assertSqlitePackageInstalled()
  const started = performance.now()
  const startLoad = os.loadavg()
  log(`embedded stores${quick ? " (quick)" : ""}: load average ${formatLoad(startLoad)}, ${os.cpus().length} CPUs, temp ${os.tmpdir()}`)
  const appends = await appendStage()
  const loads = await loadStage()
  const large = await largeStage()
  const rows = rowsOf(appends, loads, large)
  const goals = goalsOf(rows, large)
  const endLoad = os.loadavg()
  const report = {
    node: process.version,
    cpus: os.cpus().length,
    quick,
    tmpdir: os.tmpdir(),
    plan,
    loadAverage: { start: startLoad, end: endLoad, rounds: loadAverages },
    rows: rows.map((row) => ({ label: row.label, better: row.better, ...row.spreads })),
    goals,
    appends: Object.fromEntries(appends),
    loads,
    large,
    totalMillis: performance.now() - started
  }
  if (asJson) {
    console.log(JSON.stringify(report, null, 2))
    return
  }
  console.log(`\nEmbedded stores, ${plan.appendRounds} append rounds, ${plan.loadRounds} load rounds, ${plan.largeRounds} open/replay rounds; medians (min–max)`)
  console.log(`load average at start ${formatLoad(startLoad)}, at end ${formatLoad(endLoad)}; per round:`)
  for (const mark of loadAverages) console.log(`  ${mark.stage} ${mark.round}: ${formatLoad(mark.start)} → ${formatLoad(mark.end)}`)
  console.log("")
  console.log(table(
    ["workload", "chronicle", "Emmett SQLite", "raw SQLite", "chronicle / raw"],
    rows.map((row) => [
      row.label,
      formatSpread(row, row.spreads.chronicle),
      formatSpread(row, row.spreads.emmett),
      formatSpread(row, row.spreads.sqlite),
      ratioToRaw(row)
    ])
  ))
  console.log("")
  console.log(table(["goal (issue 20)", "this run", "met"], goals.map((g) => [g.goal, g.value.toFixed(2), g.met ? "yes" : "no"])))
  console.log(`\ntotal ${(report.totalMillis / 1000).toFixed(0)} s`)
}

const childAt = argv.indexOf(childFlag)
if (childAt >= 0) {
  await runChild(argv.slice(childAt + 1))
} else {
  await main()
}
