/**
 * Benchmarks the filesystem event store (`FileEventStore`), each stage in a
 * fresh directory under the OS temp directory, deleted when the stage ends:
 *
 * - append throughput with `fsync` on and off: single-event appends with an
 *   exact expected version from 1 writer and from 16 concurrent fibers on 16
 *   streams (which the store's group commit serves with one write and one
 *   fsync per group), and appends of 100 events (events/s) from 1 and 16;
 * - aggregate load time through `CommandHandler.load` for bank accounts of
 *   100 and 10,000 events (p50/p95/p99 after a warm-up);
 * - a 1,000,000-event account: seeding (appends of 1,000 events, fsync off),
 *   the log's size, opening the store over it (the index is rebuilt from the
 *   log: time, peak RSS growth, retained heap; each open in a fresh child
 *   process, so memory freed earlier cannot hide what the open takes), and
 *   full replays through `CommandHandler.load` (events/s, peak RSS growth).
 *
 * Run: npm run bench:filesystem                  (a table)
 *      npx tsx bench/filesystem.ts --quick       (short smoke run, no 1,000,000-event account)
 *      npx tsx bench/filesystem.ts --json        (a JSON object on stdout instead of the table)
 */
import { fork } from "node:child_process"
import { statSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer, ManagedRuntime } from "effect"
import { EventStore, ExpectedVersion, FileEventStore, StreamId } from "chronicle"
import type { Event } from "chronicle"
import { accountStreamId, loadRepeatedly, seedAccount } from "./accounts.js"
import {
  appendWorkloads,
  decimal,
  integer,
  loadTable,
  mebibytes,
  percentile,
  perSecond,
  progressLog,
  startRssSampler,
  summarizeLoads,
  table,
  timed,
  resultOfChild,
  timedPromise,
  withPeakRss,
  withTempDirectory
} from "./support.js"
import type { LoadPlan, LoadResult, RssSample } from "./support.js"

// settings ----------------------------------------------------------------------

const argv = process.argv.slice(2)
const quick = argv.includes("--quick")
const asJson = argv.includes("--json")

const concurrentWriters = 16
const batchSize = 100
const seedBatchSize = 1_000
const largeEventCount = 1_000_000
const largeReplayRuns = 3
const openRuns = quick ? 0 : 2

/** Per append workload and fsync setting: an untimed warm-up slice, then a timed one. */
const appendPlan = quick ? { warmupMillis: 100, sliceMillis: 500 } : { warmupMillis: 300, sliceMillis: 2_000 }

const loadPlans: ReadonlyArray<LoadPlan> = quick
  ? [{ eventCount: 100, warmupRuns: 10, runs: 40 }, { eventCount: 10_000, warmupRuns: 2, runs: 8 }]
  : [{ eventCount: 100, warmupRuns: 30, runs: 200 }, { eventCount: 10_000, warmupRuns: 5, runs: 40 }]

const log = progressLog(asJson)

// stores in temporary directories -------------------------------------------------

const storeLayer = (directory: string, fsync: boolean) =>
  FileEventStore.layer({ directory, fsync }).pipe(Layer.provide(NodeContext.layer))

type StoreRuntime = ManagedRuntime.ManagedRuntime<EventStore.EventStore, EventStore.StoreError>

/** Opens the store in `directory` (builds its layer: the index is rebuilt from the log); resolves when it is open. */
const openStore = async (directory: string, fsync: boolean) => {
  const runtime: StoreRuntime = ManagedRuntime.make(storeLayer(directory, fsync))
  const { millis } = await timedPromise(() => runtime.runPromise(Effect.void))
  return { runtime, openMillis: millis }
}

const withStore = async <A>(directory: string, fsync: boolean, use: (runtime: StoreRuntime) => Promise<A>) => {
  const { runtime } = await openStore(directory, fsync)
  try {
    return await use(runtime)
  } finally {
    await runtime.dispose()
  }
}

const logSize = (directory: string) => statSync(path.join(directory, FileEventStore.logFileName)).size

// appending ---------------------------------------------------------------------

/** One writer's stream and the version it last saw there. */
interface WriterStream {
  readonly streamId: StreamId.StreamId
  version: number
}

const workloads = appendWorkloads(concurrentWriters, batchSize)

interface AppendResult {
  readonly key: string
  readonly fsync: boolean
  readonly writers: number
  readonly eventsPerAppend: number
  readonly appends: number
  readonly events: number
  readonly millis: number
  readonly appendsPerSecond: number
  readonly eventsPerSecond: number
  /** Latency of one append, as its writer saw it. */
  readonly latencyP50Millis: number
  readonly latencyP99Millis: number
}

/** Deposits without ids: the store gives each a UUIDv7, as it would an application's. */
const deposits = (size: number): Array<Event.NewEvent> =>
  Array.from({ length: size }, () => ({ type: "MoneyDeposited", data: { amount: 100 } }))

/** Appends `size` deposits per append with the exact expected version until `deadline`; returns each append's latency. */
const appendUntil = (stream: WriterStream, size: number, deadline: number) =>
  Effect.gen(function*() {
    const latencies: Array<number> = []
    while (performance.now() < deadline) {
      const start = performance.now()
      const result = yield* EventStore.append(stream.streamId, deposits(size), {
        expectedVersion: ExpectedVersion.exact(stream.version)
      })
      latencies.push(performance.now() - start)
      stream.version = result.streamVersion
    }
    return latencies
  })

const appendSlice = (streams: ReadonlyArray<WriterStream>, size: number, millis: number) =>
  timed(Effect.gen(function*() {
    const deadline = performance.now() + millis
    const latencies = yield* Effect.forEach(streams, (stream) => appendUntil(stream, size, deadline), {
      concurrency: "unbounded"
    })
    return latencies.flat()
  }))

const appendStage = (fsync: boolean) =>
  withTempDirectory(`appends-fsync-${fsync ? "on" : "off"}`, (directory) =>
    withStore(directory, fsync, async (runtime) => {
      const results: Array<AppendResult> = []
      for (const workload of workloads) {
        log(`appends, fsync ${fsync ? "on" : "off"}: ${workload.writers} writer(s), ${workload.size} event(s) per append`)
        const streams = Array.from({ length: workload.writers }, (_, w): WriterStream => ({
          streamId: StreamId.unsafeMake("account", `${workload.key}-w${w}`),
          version: 0
        }))
        await runtime.runPromise(appendSlice(streams, workload.size, appendPlan.warmupMillis))
        const { value: latencies, millis } = await runtime.runPromise(
          appendSlice(streams, workload.size, appendPlan.sliceMillis)
        )
        const sorted = latencies.sort((a, b) => a - b)
        const appends = latencies.length
        results.push({
          key: workload.key,
          fsync,
          writers: workload.writers,
          eventsPerAppend: workload.size,
          appends,
          events: appends * workload.size,
          millis,
          appendsPerSecond: perSecond(appends, millis),
          eventsPerSecond: perSecond(appends * workload.size, millis),
          latencyP50Millis: percentile(sorted, 50),
          latencyP99Millis: percentile(sorted, 99)
        })
      }
      return results
    }))

// loading -----------------------------------------------------------------------

/** Loads read the log; fsync only matters to the seeding, so it is off. */
const loadStage = ({ eventCount, runs, warmupRuns }: LoadPlan) =>
  withTempDirectory(`load-${eventCount}`, (directory) =>
    withStore(directory, false, async (runtime) => {
      log(`loads: ${integer(eventCount)} events`)
      const streamId = accountStreamId(eventCount)
      await runtime.runPromise(seedAccount(streamId, eventCount, seedBatchSize))
      await runtime.runPromise(loadRepeatedly(streamId, eventCount, warmupRuns))
      return summarizeLoads(eventCount, await runtime.runPromise(loadRepeatedly(streamId, eventCount, runs)))
    }))

// the 1,000,000-event account ---------------------------------------------------------

interface OpenResult {
  readonly millis: number
  /** RSS while the store opened. */
  readonly rss: RssSample
  /** RSS once open, after a full GC. */
  readonly rssAfterOpen: number
  /** Heap the open store keeps (its index), after a full GC: heap used after the open minus before. */
  readonly retainedHeap: number
  readonly streamVersion: number
}

const openChildFlag = "--open-child"

declare const gc: (() => void) | undefined
const collectGarbage = () => {
  if (typeof gc === "function") gc()
}

/** In the child: open the store in the directory given, once, and report. */
const openChild = async (directory: string) => {
  collectGarbage()
  const heapBefore = process.memoryUsage().heapUsed
  const sampler = await startRssSampler()
  const { runtime, openMillis } = await openStore(directory, false)
  const rss = await sampler.stop()
  try {
    collectGarbage()
    const result: OpenResult = {
      millis: openMillis,
      rss,
      rssAfterOpen: process.memoryUsage.rss(),
      retainedHeap: process.memoryUsage().heapUsed - heapBefore,
      streamVersion: await runtime.runPromise(EventStore.streamVersion(accountStreamId(largeEventCount)))
    }
    process.send!(result)
  } finally {
    await runtime.dispose()
  }
}

/** Opens the store in a fresh process (with `--expose-gc`, to measure what the index retains). */
const openInChild = (directory: string): Promise<OpenResult> =>
  resultOfChild(
    fork(fileURLToPath(import.meta.url), [openChildFlag, directory], {
      execArgv: [...process.execArgv, "--expose-gc"],
      stdio: ["ignore", "ignore", "pipe", "ipc"]
    }),
    "the open process"
  )

interface LargeResult {
  readonly eventCount: number
  readonly seedMillis: number
  readonly seedEventsPerSecond: number
  readonly logBytes: number
  /** Opens in fresh child processes. */
  readonly opens: ReadonlyArray<OpenResult>
  /** The open in the benchmark process, before the replays (its heap already held a 1M-event index while seeding). */
  readonly openInProcessMillis: number
  readonly replay: LoadResult
  readonly replayRss: RssSample
}

const largeStage = () =>
  withTempDirectory("large", async (directory) => {
    const streamId = accountStreamId(largeEventCount)
    log(`${integer(largeEventCount)} events: seeding (appends of ${integer(seedBatchSize)}, fsync off)`)
    const { millis: seedMillis } = await withStore(
      directory,
      false,
      (runtime) => timedPromise(() => runtime.runPromise(seedAccount(streamId, largeEventCount, seedBatchSize)))
    )
    const logBytes = logSize(directory)
    const opens: Array<OpenResult> = []
    for (let run = 0; run < openRuns; run++) {
      log(`${integer(largeEventCount)} events: opening the store in a child process (${run + 1}/${openRuns})`)
      const open = await openInChild(directory)
      if (open.streamVersion !== largeEventCount) {
        throw new Error(`the reopened store has the account at version ${open.streamVersion}, expected ${largeEventCount}`)
      }
      opens.push(open)
    }
    log(`${integer(largeEventCount)} events: opening in this process, ${largeReplayRuns} full replays`)
    const { runtime, openMillis } = await openStore(directory, false)
    try {
      const { value: runs, rss } = await withPeakRss(() =>
        runtime.runPromise(loadRepeatedly(streamId, largeEventCount, largeReplayRuns))
      )
      const result: LargeResult = {
        eventCount: largeEventCount,
        seedMillis,
        seedEventsPerSecond: perSecond(largeEventCount, seedMillis),
        logBytes,
        opens,
        openInProcessMillis: openMillis,
        replay: summarizeLoads(largeEventCount, runs),
        replayRss: rss
      }
      return result
    } finally {
      await runtime.dispose()
    }
  })

// reporting ---------------------------------------------------------------------

interface Report {
  readonly node: string
  readonly cpus: number
  readonly quick: boolean
  readonly tmpdir: string
  readonly settings: {
    readonly appendPlan: typeof appendPlan
    readonly loadPlans: ReadonlyArray<LoadPlan>
    readonly largeEventCount: number | null
    readonly seedBatchSize: number
  }
  readonly appends: ReadonlyArray<AppendResult>
  readonly loads: ReadonlyArray<LoadResult>
  readonly large: LargeResult | null
  readonly peakRssOfProcess: number
  readonly totalMillis: number
}

const appendTable = (appends: ReadonlyArray<AppendResult>) =>
  table(
    ["append", "fsync", "writers", "appends", "events", "appends/s", "events/s", "p50 ms", "p99 ms"],
    appends.map((a) => [
      a.eventsPerAppend === 1 ? "single event" : `batch of ${a.eventsPerAppend}`,
      a.fsync ? "on" : "off",
      String(a.writers),
      integer(a.appends),
      integer(a.events),
      integer(a.appendsPerSecond),
      integer(a.eventsPerSecond),
      decimal(a.latencyP50Millis),
      decimal(a.latencyP99Millis)
    ])
  )

const largeTable = (large: LargeResult, peakRssOfProcess: number) => {
  const opens = large.opens
  const each = <A>(pick: (open: OpenResult) => A, format: (a: A) => string) => opens.map((o) => format(pick(o))).join(", ")
  const seconds = (millis: number) => `${(millis / 1000).toFixed(2)} s`
  return table([`${integer(large.eventCount)}-event account`, "value"], [
    [`seeding (appends of ${integer(seedBatchSize)}, fsync off)`, `${seconds(large.seedMillis)} (${integer(large.seedEventsPerSecond)} events/s)`],
    ["log size", `${mebibytes(large.logBytes)} (${integer(large.logBytes / large.eventCount)} bytes/event)`],
    [`open, fresh process (${opens.length} runs)`, each((o) => o.millis, seconds)],
    ["  events indexed/s", each((o) => perSecond(large.eventCount, o.millis), integer)],
    ["  RSS before open", each((o) => o.rss.baseline, mebibytes)],
    ["  peak RSS during open", each((o) => o.rss.peak, mebibytes)],
    ["  peak RSS growth during open", each((o) => o.rss.growth, mebibytes)],
    ["  RSS once open (after GC)", each((o) => o.rssAfterOpen, mebibytes)],
    ["  heap retained by the open store", each((o) => o.retainedHeap, mebibytes)],
    ["open, in the benchmark process", seconds(large.openInProcessMillis)],
    [`full replay (${large.replay.runs.length} runs)`, large.replay.runs.map(seconds).join(", ")],
    ["  events/s (p50)", integer(large.replay.eventsPerSecondAtP50)],
    ["  RSS before replay", mebibytes(large.replayRss.baseline)],
    ["  peak RSS during replay", mebibytes(large.replayRss.peak)],
    ["  peak RSS growth during replay", mebibytes(large.replayRss.growth)],
    ["  RSS samples during replay", String(large.replayRss.samples)],
    ["peak RSS of the benchmark process", mebibytes(peakRssOfProcess)]
  ])
}

const formatReport = (report: Report) =>
  [
    `chronicle filesystem store, node ${report.node}, ${report.cpus} cpus, in ${report.tmpdir}${report.quick ? " (--quick)" : ""}`,
    "",
    appendTable(report.appends),
    "",
    loadTable(report.large === null ? report.loads : [...report.loads, report.large.replay]),
    "",
    report.large === null
      ? `${integer(largeEventCount)}-event account: skipped (--quick)`
      : largeTable(report.large, report.peakRssOfProcess),
    "",
    `total ${(report.totalMillis / 1000).toFixed(0)} s`
  ].join("\n")

// the run -------------------------------------------------------------------------

const benchmark = async (): Promise<Report> => {
  const started = performance.now()
  const appends = [...await appendStage(true), ...await appendStage(false)]
  const loads: Array<LoadResult> = []
  for (const plan of loadPlans) loads.push(await loadStage(plan))
  const large = quick ? null : await largeStage()
  return {
    node: process.version,
    cpus: os.availableParallelism(),
    quick,
    tmpdir: os.tmpdir(),
    settings: { appendPlan, loadPlans, largeEventCount: quick ? null : largeEventCount, seedBatchSize },
    appends,
    loads,
    large,
    peakRssOfProcess: process.resourceUsage().maxRSS * 1024,
    totalMillis: performance.now() - started
  }
}

const main = async () => {
  const report = await benchmark()
  console.log(asJson ? JSON.stringify(report, null, 2) : formatReport(report))
}

const openChildAt = argv.indexOf(openChildFlag)

;(openChildAt >= 0 ? openChild(argv[openChildAt + 1]!) : main()).catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
