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
import os from "node:os"
import { Effect } from "effect"
import { EventId, EventStore, ExpectedVersion, MemoryEventStore, StreamId } from "chronicle"
import type { Event } from "chronicle"
import { accountStreamId, loadRepeatedly, seedAccount } from "./accounts.js"
import {
  decimal,
  integer,
  loadTable,
  mebibytes,
  perSecond,
  summarizeLoads,
  table,
  timed,
  withPeakRssEffect
} from "./support.js"
import type { LoadPlan, LoadResult } from "./support.js"

const singleAppendCount = 20_000
const batchAppendCount = 500
const batchSize = 100
const appendWarmupCount = 2_000
const seedBatchSize = 1_000

const loadPlans: ReadonlyArray<LoadPlan> = [
  { eventCount: 100, warmupRuns: 20, runs: 50 },
  { eventCount: 10_000, warmupRuns: 5, runs: 20 }
]
const largeLoadPlan: LoadPlan = { eventCount: 1_000_000, warmupRuns: 0, runs: 3 }

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
  yield* appendBatches(StreamId.unsafeMake("warmup", "appends"), depositBatches(appendWarmupCount, 1))
  const single = yield* measureAppends("single event", StreamId.unsafeMake("account", "single"), singleAppendCount, 1)
  const batched = yield* measureAppends(`batch of ${batchSize}`, StreamId.unsafeMake("account", "batched"), batchAppendCount, batchSize)
  return [single, batched]
}).pipe(Effect.provide(MemoryEventStore.layer()))

// loading -----------------------------------------------------------------------

const seededAccount = (eventCount: number) =>
  Effect.gen(function*() {
    const streamId = accountStreamId(eventCount)
    const { millis } = yield* timed(seedAccount(streamId, eventCount, seedBatchSize))
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
    const { value: millis, rss } = yield* withPeakRssEffect(loadRepeatedly(streamId, eventCount, runs))
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
