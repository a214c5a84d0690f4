/**
 * Benchmarks the in-memory event store:
 *
 * - append throughput (appends/s, events/s) for single-event appends with an
 *   exact expected version and for batches of 100 events;
 * - aggregate load time through `CommandHandler.load` for bank accounts of
 *   100, 10,000 and 1,000,000 events (p50/p95/p99 after a warm-up);
 * - peak RSS and RSS growth while loading the 1,000,000-event account.
 *
 * Run: npx tsx bench/memory.ts           (a table; or npm run bench)
 *      npx tsx bench/memory.ts --json    (a JSON object)
 */
import { once } from "node:events"
import os from "node:os"
import { Worker } from "node:worker_threads"
import { Effect } from "effect"
import { CommandHandler, EventCodec, EventId, EventStore, ExpectedVersion, MemoryEventStore, StreamId } from "chronicle"
import type { Event } from "chronicle"
import { AccountEvents, AccountOpened, BankAccount, MoneyDeposited } from "../examples/BankAccount.js"
import type { AccountEvent } from "../examples/BankAccount.js"

const singleAppendCount = 20_000
const batchAppendCount = 500
const batchSize = 100
const appendWarmupCount = 2_000
const seedBatchSize = 1_000
const rssSampleMillis = 10

interface LoadPlan {
  readonly eventCount: number
  readonly warmupRuns: number
  readonly runs: number
}

const loadPlans: ReadonlyArray<LoadPlan> = [
  { eventCount: 100, warmupRuns: 20, runs: 50 },
  { eventCount: 10_000, warmupRuns: 5, runs: 20 }
]
const largeLoadPlan: LoadPlan = { eventCount: 1_000_000, warmupRuns: 0, runs: 3 }

// measuring ---------------------------------------------------------------------

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = performance.now()
    const value = yield* effect
    return { value, millis: performance.now() - start }
  })

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!

const perSecond = (count: number, millis: number) => (count * 1000) / millis

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

const startRssSampler = Effect.promise(async () => {
  const shared = new SharedArrayBuffer(16)
  const worker = new Worker(rssSamplerSource, { eval: true, workerData: shared })
  worker.unref()
  await once(worker, "message")
  const [peak, samples] = [new Float64Array(shared, 0, 1), new Float64Array(shared, 8, 1)]
  const baseline = process.memoryUsage.rss()
  peak[0] = baseline
  samples[0] = 0
  return { worker, baseline, peak, samples }
})

const withPeakRss = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    startRssSampler,
    (sampler) =>
      Effect.map(effect, (value) => ({
        value,
        rss: {
          baseline: sampler.baseline,
          peak: Math.max(sampler.peak[0]!, process.memoryUsage.rss()),
          samples: sampler.samples[0]!
        }
      })),
    (sampler) => Effect.promise(() => sampler.worker.terminate())
  )

// appending ---------------------------------------------------------------------

const deposit = (): Event.NewEvent => ({
  eventId: EventId.unsafeGenerate(),
  type: "MoneyDeposited",
  data: { amount: 100 }
})

const depositBatches = (batches: number, size: number) =>
  Array.from({ length: batches }, () => Array.from({ length: size }, deposit))

const appendBatches = (streamId: StreamId.StreamId, batches: ReadonlyArray<ReadonlyArray<Event.NewEvent>>) =>
  Effect.gen(function*() {
    let version = 0
    for (const events of batches) {
      const result = yield* EventStore.append(streamId, events, { expectedVersion: ExpectedVersion.exact(version) })
      version = result.streamVersion
    }
  })

interface AppendResult {
  readonly name: string
  readonly appends: number
  readonly events: number
  readonly millis: number
  readonly appendsPerSecond: number
  readonly eventsPerSecond: number
}

const measureAppends = (name: string, streamId: StreamId.StreamId, batchCount: number, size: number) =>
  Effect.gen(function*() {
    const batches = depositBatches(batchCount, size)
    const { millis } = yield* timed(appendBatches(streamId, batches))
    const result: AppendResult = {
      name,
      appends: batchCount,
      events: batchCount * size,
      millis,
      appendsPerSecond: perSecond(batchCount, millis),
      eventsPerSecond: perSecond(batchCount * size, millis)
    }
    return result
  })

const appendStage = Effect.gen(function*() {
  yield* appendBatches(StreamId.make("warmup", "appends"), depositBatches(appendWarmupCount, 1))
  const single = yield* measureAppends("single event", StreamId.make("account", "single"), singleAppendCount, 1)
  const batched = yield* measureAppends(`batch of ${batchSize}`, StreamId.make("account", "batched"), batchAppendCount, batchSize)
  return [single, batched]
}).pipe(Effect.provide(MemoryEventStore.layer()))

// loading -----------------------------------------------------------------------

const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents })

const accountOpened = AccountOpened.make({ owner: "Ada Lovelace", currency: "EUR" })
const oneCentDeposited = MoneyDeposited.make({ amount: 1 })

const accountHistoryEvent = (version: number): AccountEvent => version === 0 ? accountOpened : oneCentDeposited

const seedAccount = (streamId: StreamId.StreamId, eventCount: number) =>
  Effect.gen(function*() {
    for (let version = 0; version < eventCount; version += seedBatchSize) {
      const size = Math.min(seedBatchSize, eventCount - version)
      const events = Array.from({ length: size }, (_, i) => accountHistoryEvent(version + i))
      const encoded = yield* EventCodec.encodeAll(AccountEvents, events)
      yield* EventStore.append(streamId, encoded, { expectedVersion: ExpectedVersion.exact(version) })
    }
  })

const loadOnce = (streamId: StreamId.StreamId, eventCount: number) =>
  Effect.gen(function*() {
    const { value: loaded, millis } = yield* timed(accounts.load(streamId))
    if (loaded.version !== eventCount) {
      return yield* Effect.dieMessage(`loaded version ${loaded.version}, expected ${eventCount}`)
    }
    return millis
  })

const loadRepeatedly = (streamId: StreamId.StreamId, eventCount: number, times: number) =>
  Effect.gen(function*() {
    const millis: Array<number> = []
    for (let run = 0; run < times; run++) millis.push(yield* loadOnce(streamId, eventCount))
    return millis
  })

interface LoadResult {
  readonly eventCount: number
  readonly runs: ReadonlyArray<number>
  readonly p50: number
  readonly p95: number
  readonly p99: number
  readonly eventsPerSecondAtP50: number
}

const summarizeLoads = (eventCount: number, runs: ReadonlyArray<number>): LoadResult => {
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

const seededAccount = (eventCount: number) =>
  Effect.gen(function*() {
    const streamId = StreamId.make("account", `loaded-${eventCount}`)
    const { millis } = yield* timed(seedAccount(streamId, eventCount))
    return { streamId, seedMillis: millis }
  })

const loadStage = ({ eventCount, runs, warmupRuns }: LoadPlan) =>
  Effect.gen(function*() {
    const { streamId } = yield* seededAccount(eventCount)
    yield* loadRepeatedly(streamId, eventCount, warmupRuns)
    return summarizeLoads(eventCount, yield* loadRepeatedly(streamId, eventCount, runs))
  }).pipe(Effect.provide(MemoryEventStore.layer()))

interface MemoryResult {
  readonly seedMillis: number
  readonly rssBeforeLoad: number
  readonly peakRssDuringLoad: number
  readonly rssGrowthDuringLoad: number
  readonly rssSamplesDuringLoad: number
}

const largeLoadStage = ({ eventCount, runs, warmupRuns }: LoadPlan) =>
  Effect.gen(function*() {
    const { streamId, seedMillis } = yield* seededAccount(eventCount)
    yield* loadRepeatedly(streamId, eventCount, warmupRuns)
    const { value: millis, rss } = yield* withPeakRss(loadRepeatedly(streamId, eventCount, runs))
    const memory: MemoryResult = {
      seedMillis,
      rssBeforeLoad: rss.baseline,
      peakRssDuringLoad: rss.peak,
      rssGrowthDuringLoad: rss.peak - rss.baseline,
      rssSamplesDuringLoad: rss.samples
    }
    return { load: summarizeLoads(eventCount, millis), memory }
  }).pipe(Effect.provide(MemoryEventStore.layer()))

// reporting ---------------------------------------------------------------------

interface Report {
  readonly node: string
  readonly cpus: number
  readonly appends: ReadonlyArray<AppendResult>
  readonly loads: ReadonlyArray<LoadResult>
  readonly memory: MemoryResult & { readonly peakRssOfProcess: number }
}

const benchmark = Effect.gen(function*() {
  const appends = yield* appendStage
  const loads = yield* Effect.forEach(loadPlans, loadStage)
  const large = yield* largeLoadStage(largeLoadPlan)
  const report: Report = {
    node: process.version,
    cpus: os.availableParallelism(),
    appends,
    loads: [...loads, large.load],
    memory: { ...large.memory, peakRssOfProcess: process.resourceUsage().maxRSS * 1024 }
  }
  return report
})

const integer = (n: number) => Math.round(n).toLocaleString("en-US")
const decimal = (n: number) => n.toFixed(n < 10 ? 2 : 1)
const mebibytes = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => row[column]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, column) => column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)).join("  ")
  return [line(header), widths.map((width) => "-".repeat(width)).join("  "), ...rows.map(line)].join("\n")
}

const appendTable = (appends: ReadonlyArray<AppendResult>) =>
  table(
    ["append", "appends", "events", "ms", "appends/s", "events/s"],
    appends.map((a) => [
      a.name,
      integer(a.appends),
      integer(a.events),
      decimal(a.millis),
      integer(a.appendsPerSecond),
      integer(a.eventsPerSecond)
    ])
  )

const loadTable = (loads: ReadonlyArray<LoadResult>) =>
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

const memoryTable = (memory: Report["memory"]) =>
  table([`${integer(largeLoadPlan.eventCount)}-event account`, "value"], [
    [`seeding (appends of ${integer(seedBatchSize)})`, `${integer(memory.seedMillis)} ms`],
    ["RSS before load", mebibytes(memory.rssBeforeLoad)],
    ["peak RSS during load", mebibytes(memory.peakRssDuringLoad)],
    ["RSS growth during load", mebibytes(memory.rssGrowthDuringLoad)],
    ["RSS samples during load", String(memory.rssSamplesDuringLoad)],
    ["peak RSS of the process", mebibytes(memory.peakRssOfProcess)]
  ])

const formatReport = (report: Report) =>
  [
    `chronicle in-memory store, node ${report.node}, ${report.cpus} cpus`,
    "",
    appendTable(report.appends),
    "",
    loadTable(report.loads),
    "",
    memoryTable(report.memory)
  ].join("\n")

const asJson = process.argv.includes("--json")

Effect.runPromise(benchmark).then(
  (report) => console.log(asJson ? JSON.stringify(report, null, 2) : formatReport(report)),
  (error: unknown) => {
    console.error(error)
    process.exitCode = 1
  }
)
