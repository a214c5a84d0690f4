/**
 * Helpers shared by the benchmarks: timing, percentiles, load summaries, the
 * append workloads, a peak-RSS sampler on a worker thread, temporary
 * directories, the loopback PostgreSQL the benches may drop schemas in,
 * progress lines and plain-text tables.
 */
import type { ChildProcess } from "node:child_process"
import { once } from "node:events"
import { mkdtempSync, rmSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { Worker } from "node:worker_threads"
import { Effect } from "effect"
import pg from "pg"

// measuring ---------------------------------------------------------------------

/** Runs an effect and returns its value with the wall time it took. */
export const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = performance.now()
    const value = yield* effect
    return { value, millis: performance.now() - start }
  })

/** Runs a promise-returning function and returns its value with the wall time it took. */
export const timedPromise = async <A>(run: () => Promise<A>) => {
  const start = performance.now()
  const value = await run()
  return { value, millis: performance.now() - start }
}

/** The nearest-rank percentile of ascending `sorted` values. */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!

/** A figure over interleaved rounds: its median and the range it came from. */
export interface Summary {
  readonly median: number
  readonly min: number
  readonly max: number
  readonly rounds: ReadonlyArray<number>
}

/** The median and range of the figures of several rounds. */
export const summarize = (rounds: ReadonlyArray<number>): Summary => {
  const sorted = [...rounds].sort((a, b) => a - b)
  return { median: percentile(sorted, 50), min: sorted[0]!, max: sorted[sorted.length - 1]!, rounds }
}

export const perSecond = (count: number, millis: number) => (count * 1000) / millis

/** How many aggregate loads to run, after how many untimed ones. */
export interface LoadPlan {
  readonly eventCount: number
  readonly warmupRuns: number
  readonly runs: number
}

export interface LoadResult {
  readonly eventCount: number
  readonly runs: ReadonlyArray<number>
  readonly p50: number
  readonly p95: number
  readonly p99: number
  readonly eventsPerSecondAtP50: number
}

export const summarizeLoads = (eventCount: number, runs: ReadonlyArray<number>): LoadResult => {
  const sorted = [...runs].sort((a, b) => a - b)
  const p50 = percentile(sorted, 50)
  return {
    eventCount,
    runs,
    p50,
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    eventsPerSecondAtP50: perSecond(eventCount, p50)
  }
}

// append workloads --------------------------------------------------------------

/** Appends of `size` events, each of `writers` writers on its own stream; `key` names it in reports and streams. */
export interface AppendWorkload {
  readonly key: string
  readonly writers: number
  readonly size: number
}

/** Single-event appends and appends of `batchSize` events, each from 1 writer and from `concurrentWriters`. */
export const appendWorkloads = (concurrentWriters: number, batchSize: number): ReadonlyArray<AppendWorkload> => [
  { key: "single-1", writers: 1, size: 1 },
  { key: `single-${concurrentWriters}`, writers: concurrentWriters, size: 1 },
  { key: "batch-1", writers: 1, size: batchSize },
  { key: `batch-${concurrentWriters}`, writers: concurrentWriters, size: batchSize }
]

// resident memory -----------------------------------------------------------------

const rssSampleMillis = 10

/**
 * Samples RSS on a worker thread: a fiber busy on the main thread starves that
 * thread's timers, but the worker's keep running. RSS is per process.
 */
const rssSamplerSource = `
const { workerData, parentPort } = require("node:worker_threads")
const [peak, samples] = [new Float64Array(workerData, 0, 1), new Float64Array(workerData, 8, 1)]
const sample = () => {
  peak[0] = Math.max(peak[0], process.memoryUsage.rss())
  samples[0]++
}
sample()
parentPort.postMessage("sampling")
setInterval(sample, ${rssSampleMillis})
`

/** Resident memory while something ran: before it, the highest seen, the difference, how many samples. */
export interface RssSample {
  readonly baseline: number
  readonly peak: number
  readonly growth: number
  readonly samples: number
}

/** Starts sampling RSS; `stop` ends it and says what it saw. */
export const startRssSampler = async () => {
  const shared = new SharedArrayBuffer(16)
  const worker = new Worker(rssSamplerSource, { eval: true, workerData: shared })
  worker.unref()
  await once(worker, "message")
  const [peak, samples] = [new Float64Array(shared, 0, 1), new Float64Array(shared, 8, 1)]
  const baseline = process.memoryUsage.rss()
  peak[0] = baseline
  samples[0] = 0
  let result: RssSample | undefined
  const stop = async (): Promise<RssSample> => {
    if (result === undefined) {
      const top = Math.max(peak[0]!, process.memoryUsage.rss())
      result = { baseline, peak: top, growth: top - baseline, samples: samples[0]! }
      await worker.terminate()
    }
    return result
  }
  return { stop }
}

/** Runs `run` while sampling RSS. */
export const withPeakRss = async <A>(run: () => Promise<A>): Promise<{ value: A; rss: RssSample }> => {
  const sampler = await startRssSampler()
  try {
    const value = await run()
    return { value, rss: await sampler.stop() }
  } finally {
    await sampler.stop()
  }
}

/** Runs an effect while sampling RSS. */
export const withPeakRssEffect = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.promise(startRssSampler),
    (sampler) =>
      Effect.flatMap(effect, (value) => Effect.map(Effect.promise(sampler.stop), (rss) => ({ value, rss }))),
    (sampler) => Effect.promise(sampler.stop)
  )

// child processes -------------------------------------------------------------------

/** The one message a forked child sends back, once it has exited; a child that exits without one rejects with its stderr's tail. */
export const resultOfChild = <A>(child: ChildProcess, what: string) =>
  new Promise<A>((resolve, reject) => {
    let stderr = ""
    let result: A | undefined
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4_000)
    })
    child.on("message", (message) => {
      result = message as A
    })
    child.on("exit", (code, signal) =>
      result !== undefined ? resolve(result) : reject(new Error(`${what} exited (${signal ?? code}): ${stderr.trim()}`)))
  })

// temporary directories -------------------------------------------------------------

const liveDirectories = new Set<string>()
process.on("exit", () => {
  for (const directory of liveDirectories) rmSync(directory, { recursive: true, force: true })
})

/** Runs `use` with a fresh directory under the OS temp directory, deleted afterwards (also on exit). */
export const withTempDirectory = async <A>(label: string, use: (directory: string) => Promise<A>): Promise<A> => {
  const directory = mkdtempSync(path.join(os.tmpdir(), `chronicle-bench-${label}-`))
  liveDirectories.add(directory)
  try {
    return await use(directory)
  } finally {
    rmSync(directory, { recursive: true, force: true })
    liveDirectories.delete(directory)
  }
}

// PostgreSQL ----------------------------------------------------------------------

/** The benches' database: DATABASE_URL, or the local test database. */
export const databaseUrl = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"

/** The benches drop schemas: they refuse any host but the loopback. */
export const assertLoopback = (url: string, bench: string) => {
  const host = new URL(url).hostname
  if (host !== "127.0.0.1" && host !== "localhost" && host !== "[::1]") {
    throw new Error(`${bench} drops schemas: it only runs against a loopback database, not ${host}`)
  }
}

/** Runs `use` with a plain client of the benches' database (for DDL), closed afterwards. */
export const withAdmin = async <A>(use: (client: pg.Client) => Promise<A>) => {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end()
  }
}

// reporting ---------------------------------------------------------------------

/** Progress lines on stderr with the time of day; none when `quiet` (JSON output). */
export const progressLog = (quiet: boolean) => (message: string) => {
  if (!quiet) console.error(`[${new Date().toISOString().slice(11, 19)}] ${message}`)
}


export const integer = (n: number) => Math.round(n).toLocaleString("en-US")
export const decimal = (n: number) => n.toFixed(n < 10 ? 2 : 1)
export const mebibytes = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`

/** A plain-text table: the first column left-aligned, the others right-aligned. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => row[column]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, column) => column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)).join("  ")
  return [line(header), widths.map((width) => "-".repeat(width)).join("  "), ...rows.map(line)].join("\n")
}

/** Load summaries, a row each: events, runs, p50/p95/p99 and events/s at p50. */
export const loadTable = (loads: ReadonlyArray<LoadResult>) =>
  table(
    ["load events", "runs", "p50 ms", "p95 ms", "p99 ms", "events/s (p50)"],
    loads.map((l) => [
      integer(l.eventCount),
      String(l.runs.length),
      decimal(l.p50),
      decimal(l.p95),
      decimal(l.p99),
      integer(l.eventsPerSecondAtP50)
    ])
  )
