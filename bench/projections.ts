/**
 * Benchmarks reading the global log: projections catching up, and live
 * subscriptions, on each store (memory, filesystem, PostgreSQL):
 *
 * 1. catch-up: seeds 1,000,000 small events over 500 streams (appends of
 *    1,000; the filesystem store with fsync off, its log flushed afterwards;
 *    PostgreSQL vacuumed and checkpointed afterwards), then reads them all
 *    - raw: `readAll` and `subscribe` from 0 (`Stream.take` of the log), no
 *      handler, no checkpoints;
 *    - through `ProjectionRunner.catchUp` of a projection keeping per-stream
 *      counters in a Map, with batches of 100 and of 1,000 events (each batch
 *      handled and checkpointed in one checkpoint-store transaction);
 *    - through `ProjectionRunner.start` (the background runner, which catches
 *      up through `subscribe`) with batches of 100, timed until its handler
 *      has seen the last event;
 *    reporting events/s, where the time goes (reading, or inside the
 *    checkpoint transactions) and the peak RSS growth during each (sampled
 *    on a worker thread; it counts garbage V8 has not collected yet). An
 *    untimed catch-up then measures what the runner really keeps: the live
 *    heap after full collections during the run, against before it;
 * 2. live delivery: a subscriber follows the log from its head in the
 *    background while writers append single events, each carrying its send
 *    time (`performance.now()`, taken just before the append); the subscriber
 *    records receive time minus send time, so the figure includes the append's
 *    own commit. One writer at a steady 200/s, and 8 writers at 100/s each
 *    (Poisson arrivals, so appends overlap): delivery must stay in global
 *    order and complete, so it includes waiting for slower transactions.
 *    p50/p95/p99/max per store. The filesystem store is reopened with fsync
 *    on (its default) for this part; PostgreSQL wakes subscribers by
 *    LISTEN/NOTIFY, with 500 ms polling as the fallback, so a p99 near 500 ms
 *    would mean notifications are lost.
 *
 * The filesystem store lives in a temporary directory, deleted at the end;
 * PostgreSQL in the schema `bench_projections`, dropped at the start and the
 * end (DATABASE_URL overrides postgres://postgres@127.0.0.1:5432/test;
 * loopback only).
 *
 * Run: npm run bench:projections                  (a table, and bench/results/projections.json)
 *      npx tsx bench/projections.ts --quick       (~30 s smoke run: 100,000 events, fewer samples)
 *      npx tsx bench/projections.ts --json        (the JSON on stdout instead of the table)
 */
import { closeSync, fsyncSync, openSync } from "node:fs"
import { mkdir, writeFile } from "node:fs/promises"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import v8 from "node:v8"
import vm from "node:vm"
import { NodeContext } from "@effect/platform-node"
import { Chunk, Deferred, Duration, Effect, Fiber, Layer, ManagedRuntime, Stream } from "effect"
import pg from "pg"
import { CheckpointStore, EventStore, ExpectedVersion, FileCheckpointStore, FileEventStore, MemoryCheckpointStore, MemoryEventStore, Projection, ProjectionRunner, StreamId } from "chronicle"
import { PostgresCheckpointStore, PostgresEventStore } from "chronicle/postgres"
import type { Event } from "chronicle"
import {
  assertLoopback,
  databaseUrl,
  decimal,
  integer,
  mebibytes,
  percentile,
  perSecond,
  progressLog,
  table,
  timed,
  timedPromise,
  withAdmin,
  withPeakRssEffect,
  withTempDirectory
} from "./support.js"
import type { RssSample } from "./support.js"

// settings ----------------------------------------------------------------------

const argv = process.argv.slice(2)
const quick = argv.includes("--quick")
const asJson = argv.includes("--json")

const eventCount = quick ? 100_000 : 1_000_000
const seedBatchSize = 1_000
/** Appends go round-robin over this many streams (fewer when there are fewer appends). */
const streamCount = 500
const catchUpBatchSizes = [100, 1_000] as const
/** The timed projection runs, in order. */
const projectionRuns: ReadonlyArray<readonly ["catchUp" | "start", number]> = [
  ...catchUpBatchSizes.map((b) => ["catchUp", b] as const),
  ["start", 100]
]
/** Batches of the untimed retention check (smaller batches: more runner turns to leak from). */
const retentionBatchSize = quick ? 1_000 : 100
/** Chunk size of the raw `readAll` and `subscribe` reads. */
const rawChunkSize = 1_000
const pgSchema = "bench_projections"
const resultsFile = fileURLToPath(new URL("./results/projections.json", import.meta.url))

interface LatencyPlan {
  readonly key: string
  readonly writers: number
  /** Appends per second of each writer. */
  readonly ratePerWriter: number
  /** `steady`: evenly spaced; `poisson`: exponential gaps of the same mean, so writers overlap. */
  readonly arrivals: "steady" | "poisson"
  /** Measured events, over all writers. */
  readonly samples: number
}

const latencyPlans: ReadonlyArray<LatencyPlan> = [
  { key: "1-writer", writers: 1, ratePerWriter: 200, arrivals: "steady", samples: quick ? 400 : 2_000 },
  { key: "8-writers", writers: 8, ratePerWriter: 100, arrivals: "poisson", samples: quick ? 800 : 4_000 }
]
/** Untimed events before each latency run (one writer, same pace): the subscription and JIT settle. */
const latencyWarmupEvents = 50
/** Latencies at or above this look like a poll, not a wake-up. */
const pollLikeMillis = 400
/** How long the subscriber may lag behind the last append before the run is called failed. */
const deliveryDeadlineMillis = 30_000

/** This bench's own yardsticks. */
const targets = {
  /** "Flat": keeping even 16 bytes per event of a 1,000,000-event log would take about 15 MiB. */
  retainedHeapBytes: 16 * 2 ** 20,
  /** Live delivery on PostgreSQL should be a wake-up by notification, far from the 500 ms poll. */
  postgresLiveP99Millis: 100
}

const log = progressLog(asJson)

// the workload ------------------------------------------------------------------

interface CounterData {
  readonly by: number
}

const counterStream = (index: number) => StreamId.unsafeMake("counter", String(index))

const counterEvents = (first: number, size: number): Array<Event.NewEvent> => {
  const events = new Array<Event.NewEvent>(size)
  for (let i = 0; i < size; i++) events[i] = { type: "CounterIncremented", data: { by: 1 + ((first + i) % 5) } }
  return events
}

/** Appends `eventCount` counter events, `seedBatchSize` per append, round-robin over the streams. */
const seed = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  const appends = Math.ceil(eventCount / seedBatchSize)
  const streams = Math.min(streamCount, appends)
  const versions = new Array<number>(streams).fill(0)
  let total = 0
  for (let a = 0; a < appends; a++) {
    const s = a % streams
    const size = Math.min(seedBatchSize, eventCount - a * seedBatchSize)
    const result = yield* store.append(counterStream(s), counterEvents(a * seedBatchSize, size), {
      expectedVersion: ExpectedVersion.exact(versions[s]!)
    })
    versions[s] = result.streamVersion
    for (let i = 0; i < size; i++) total += 1 + ((a * seedBatchSize + i) % 5)
  }
  return { streams, total }
})

// the stores --------------------------------------------------------------------

type Stores = EventStore.EventStore | CheckpointStore.CheckpointStore
type StoreRuntime = ManagedRuntime.ManagedRuntime<Stores, EventStore.StoreError>
type StoreName = "memory" | "filesystem" | "postgres"

interface StoreUnderTest {
  readonly name: StoreName
  readonly where: string
  /**
   * Runs `run` with a fresh, empty store, cleaned up afterwards. `bulk` is
   * the store for seeding and catching up; `live` the same store as it is
   * run for live delivery (for the filesystem: reopened with fsync on).
   */
  readonly use: <A>(run: (phases: Phases) => Promise<A>) => Promise<A>
  /** Starts watching for other sessions' transactions that can hold back what readers see (PostgreSQL). */
  readonly watchOthers?: (() => Promise<() => Promise<OtherTransactions>>) | undefined
}

interface Phases {
  readonly bulk: <B>(run: (runtime: StoreRuntime) => Promise<B>) => Promise<B>
  /** After seeding, before the timed reads: lets the seeding's own writes land (page cache, WAL, vacuum). */
  readonly settle: () => Promise<void>
  readonly live: <B>(run: (runtime: StoreRuntime) => Promise<B>) => Promise<B>
}

const withRuntime = async <A>(layer: Layer.Layer<Stores, EventStore.StoreError>, run: (runtime: StoreRuntime) => Promise<A>) => {
  const runtime: StoreRuntime = ManagedRuntime.make(layer)
  try {
    await runtime.runPromise(Effect.void) // builds the stores: opens, connects, migrates
    return await run(runtime)
  } finally {
    await runtime.dispose()
  }
}

/** Both phases on one runtime. */
const samePhases = (runtime: StoreRuntime, settle: () => Promise<void>): Phases => ({
  bulk: (run) => run(runtime),
  settle,
  live: (run) => run(runtime)
})

const memoryStore: StoreUnderTest = {
  name: "memory",
  where: "in process",
  use: (run) =>
    withRuntime(Layer.merge(MemoryEventStore.layer(), MemoryCheckpointStore.layer()), (runtime) => run(samePhases(runtime, async () => {})))
}

/** Milliseconds the filesystem store took to reopen over the seeded log (the index is rebuilt). */
let filesystemReopenMillis: number | null = null

const filesystemLayer = (directory: string, fsync: boolean) =>
  Layer.merge(FileEventStore.layer({ directory, fsync }), FileCheckpointStore.layer({ directory })).pipe(
    Layer.provide(NodeContext.layer)
  )

const filesystemStore: StoreUnderTest = {
  name: "filesystem",
  where: os.tmpdir(),
  // seeding and catch-up with the event log's fsync off (reads never sync; checkpoints keep their default, fsync on);
  // live delivery reopens the same directory with fsync on, the store's default
  use: (run) =>
    withTempDirectory("projections", (directory) =>
      run({
        bulk: (use) => withRuntime(filesystemLayer(directory, false), use),
        // the log was written without fsync: flush it, so its writeback does not land in the timed reads
        settle: async () => {
          const descriptor = openSync(path.join(directory, FileEventStore.logFileName), "r")
          try {
            fsyncSync(descriptor)
          } finally {
            closeSync(descriptor)
          }
        },
        live: async (use) => {
          const started = performance.now()
          return withRuntime(filesystemLayer(directory, true), (runtime) => {
            filesystemReopenMillis = performance.now() - started
            return use(runtime)
          })
        }
      }))
}

const dropSchema = () => withAdmin((client) => client.query(`DROP SCHEMA IF EXISTS ${pgSchema} CASCADE`))

/** The application name of the bench's own PostgreSQL sessions, so that the others can be told apart. */
const pgApplicationName = "chronicle-bench-projections"

/**
 * Other sessions' transactions that hold a transaction id, sampled every
 * 20 ms. PostgreSQL readers see only positions below the snapshot's xmin,
 * which is cluster-wide: while any such transaction is open (in any
 * database), the events of appends that started after it stay invisible, and
 * when it ends nothing notifies the subscribers: they see them at their next
 * poll, unless another append's notification comes first.
 */
interface OtherTransactions {
  readonly samples: number
  /** Samples that saw at least one. */
  readonly samplesWithSome: number
  /** The most seen at once. */
  readonly most: number
}

const watchOtherTransactions = async (): Promise<() => Promise<OtherTransactions>> => {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  let stopped = false
  const counts = { samples: 0, samplesWithSome: 0, most: 0 }
  const loop = (async () => {
    while (!stopped) {
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() AND application_name <> $1`,
        [pgApplicationName]
      )
      const n = rows[0]?.n ?? 0
      counts.samples++
      if (n > 0) counts.samplesWithSome++
      counts.most = Math.max(counts.most, n)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()
  return async () => {
    stopped = true
    await loop.finally(() => client.end())
    return counts
  }
}

const postgresStore: StoreUnderTest = {
  name: "postgres",
  where: `schema ${pgSchema}`,
  watchOthers: watchOtherTransactions,
  use: async (run) => {
    assertLoopback(databaseUrl, "bench/projections.ts")
    await dropSchema()
    try {
      return await withRuntime(
        PostgresCheckpointStore.layer({ schema: pgSchema }).pipe(
          Layer.provideMerge(
            PostgresEventStore.layerFromUrl({ url: databaseUrl, schema: pgSchema, applicationName: pgApplicationName })
          )
        ),
        // as a long-lived database would be: vacuumed (autovacuum would otherwise start mid-run) and checkpointed
        (runtime) =>
          run(samePhases(runtime, () =>
            withAdmin(async (client) => {
              await client.query(`VACUUM (ANALYZE) ${pgSchema}.events`)
              await client.query("CHECKPOINT")
            })))
      )
    } finally {
      await dropSchema()
    }
  }
}

const stores: ReadonlyArray<StoreUnderTest> = [memoryStore, filesystemStore, postgresStore]

// catching up ---------------------------------------------------------------------

interface ReadResult {
  readonly label: string
  readonly batchSize: number
  readonly events: number
  readonly millis: number
  readonly eventsPerSecond: number
  readonly rss: RssSample
  /** For catch-ups: where the time went, as seen through the checkpoint store. */
  readonly breakdown?: Breakdown | undefined
}

/**
 * A catch-up's time split by the checkpoint store's view of it: each batch is
 * handled inside `transaction` (on PostgreSQL BEGIN, the handler, the
 * checkpoint's INSERT, COMMIT), which ends with `save`; the rest of the wall
 * time is spent reading the log (and in the runner between batches).
 */
interface Breakdown {
  readonly batches: number
  readonly transactionMillis: number
  readonly saveMillis: number
  readonly outsideTransactionsMillis: number
}

/** The checkpoint store in context, timing its `transaction`s and `save`s into `into`. */
const timingCheckpoints = (into: { batches: number; transactionMillis: number; saveMillis: number }) =>
  Effect.map(CheckpointStore.CheckpointStore, (inner): CheckpointStore.CheckpointStoreService => {
    const time = <A, E, R>(effect: Effect.Effect<A, E, R>, record: (millis: number) => void) =>
      Effect.suspend(() => {
        const start = performance.now()
        return Effect.ensuring(effect, Effect.sync(() => record(performance.now() - start)))
      })
    return {
      ...inner,
      save: (name, position) => time(inner.save(name, position), (millis) => void (into.saveMillis += millis)),
      transaction: (effect) =>
        time(inner.transaction(effect), (millis) => {
          into.batches++
          into.transactionMillis += millis
        })
    }
  })

/** An untimed read of the start of the log: JIT, caches and connections warm before the timed reads. */
const warmUpReads = Effect.flatMap(EventStore.EventStore, (store) =>
  Stream.runDrain(store.readAll({ limit: Math.min(eventCount, 100_000), chunkSize: rawChunkSize })))

/** Reads the whole log as a raw stream (no handler, no checkpoints), counting events chunk by chunk. */
const rawRead = (label: string, events: (store: EventStore.EventStoreService) => Stream.Stream<Event.StoredEvent, EventStore.ReadError>) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    let count = 0
    let last = 0n
    const run = events(store).pipe(
      Stream.runForEachChunk((chunk) =>
        Effect.sync(() => {
          count += chunk.length
          const tail = Chunk.last(chunk)
          if (tail._tag === "Some") last = tail.value.globalPosition
        })
      )
    )
    const { value: { millis }, rss } = yield* withPeakRssEffect(timed(run))
    const head = yield* store.headPosition
    if (count !== eventCount || last !== head) {
      return yield* Effect.dieMessage(`${label} read ${count} events up to ${last}; expected ${eventCount} up to ${head}`)
    }
    const result: ReadResult = { label, batchSize: rawChunkSize, events: count, millis, eventsPerSecond: perSecond(count, millis), rss }
    return result
  })

interface Counter {
  events: number
  total: number
  version: number
}

/**
 * How a projection is run over the whole log: `catchUp` (reads with `readAll`
 * and returns at the end), or `start` (the background runner, which catches
 * up through `subscribe` in chunks of `batchSize`; timed until its handler has
 * seen the last event, then stopped).
 */
type RunMode = "catchUp" | "start"

const readLabel = (mode: RunMode, batchSize: number) => `${mode}, batches of ${batchSize}`

/** Runs a fresh counters projection from the start with batches of `batchSize`; checks what it built. */
const projectWith = (mode: RunMode, batchSize: number, seeded: { readonly streams: number; readonly total: number }) =>
  Effect.gen(function*() {
    const counters = new Map<string, Counter>()
    let outOfOrder = 0
    let handled = 0
    const caughtUp = yield* Deferred.make<void>()
    const projection = Projection.make({
      name: `counters-${mode}-${batchSize}`,
      handle: (event) =>
        Effect.suspend(() => {
          const { by } = event.data as CounterData
          const counter = counters.get(event.streamId)
          if (counter === undefined) {
            if (event.streamVersion !== 1) outOfOrder++
            counters.set(event.streamId, { events: 1, total: by, version: event.streamVersion })
          } else {
            if (event.streamVersion !== counter.version + 1) outOfOrder++
            counter.events++
            counter.total += by
            counter.version = event.streamVersion
          }
          return ++handled === eventCount ? Deferred.succeed(caughtUp, undefined) : Effect.void
        })
    })
    const head = yield* EventStore.headPosition
    const spent = { batches: 0, transactionMillis: 0, saveMillis: 0 }
    const checkpoints = yield* timingCheckpoints(spent)
    const drive = mode === "catchUp"
      ? Effect.asVoid(ProjectionRunner.catchUp(projection, { batchSize }))
      : Effect.scoped(Effect.gen(function*() {
        const runner = yield* ProjectionRunner.start(projection, { batchSize })
        yield* Effect.raceFirst(Deferred.await(caughtUp), Fiber.join(runner))
      }))
    const { value: { millis }, rss } = yield* withPeakRssEffect(timed(drive)).pipe(
      Effect.provideService(CheckpointStore.CheckpointStore, checkpoints)
    )
    const position = yield* Effect.map(CheckpointStore.load(projection.name), (saved) => saved._tag === "Some" ? saved.value : -1n)
    let events = 0
    let total = 0
    for (const counter of counters.values()) {
      events += counter.events
      total += counter.total
    }
    if (position !== head || events !== eventCount || total !== seeded.total || counters.size !== seeded.streams || outOfOrder > 0) {
      return yield* Effect.dieMessage(
        `${readLabel(mode, batchSize)}: checkpoint at ${position} of ${head}: ${events} events, total ${total}, ` +
          `${counters.size} streams, ${outOfOrder} out of order; expected ${eventCount}, ${seeded.total}, ${seeded.streams}`
      )
    }
    const result: ReadResult = {
      label: readLabel(mode, batchSize),
      batchSize,
      events,
      millis,
      eventsPerSecond: perSecond(events, millis),
      rss,
      breakdown: { ...spent, outsideTransactionsMillis: millis - spent.transactionMillis }
    }
    if (spent.batches < Math.ceil(eventCount / batchSize)) {
      return yield* Effect.dieMessage(`${readLabel(mode, batchSize)} ran ${spent.batches} checkpoint transactions`)
    }
    return result
  })

v8.setFlagsFromString("--expose-gc")
/** A full garbage collection (V8's `gc`, exposed at run time). */
const collectGarbage = vm.runInNewContext("gc") as () => void

/** The heap in use after a full collection: what is still referenced. */
const liveHeap = () => {
  collectGarbage()
  return process.memoryUsage().heapUsed
}

interface RetentionResult {
  readonly batchSize: number
  /** Live heap before the catch-up. */
  readonly before: number
  /** The most live heap seen at the `samples` points during it. */
  readonly maxDuring: number
  readonly after: number
  readonly samples: number
  /** `maxDuring - before`: what the runner keeps while it streams. */
  readonly growth: number
}

/**
 * Peak RSS growth counts garbage V8 has not collected yet. This untimed
 * catch-up measures what is actually kept: the live heap after a full
 * collection, 10 times during the run (from inside the handler), against
 * before it.
 */
const retentionCheck = (batchSize: number) =>
  Effect.gen(function*() {
    const every = Math.max(1, Math.floor(eventCount / 10))
    let handled = 0
    let samples = 0
    const before = liveHeap()
    let maxDuring = before
    const projection = Projection.make({
      name: `retention-${batchSize}`,
      handle: () =>
        Effect.sync(() => {
          if (++handled % every === 0) {
            maxDuring = Math.max(maxDuring, liveHeap())
            samples++
          }
        })
    })
    yield* ProjectionRunner.catchUp(projection, { batchSize })
    if (handled !== eventCount) return yield* Effect.dieMessage(`the retention check handled ${handled} events`)
    const result: RetentionResult = { batchSize, before, maxDuring, after: liveHeap(), samples, growth: maxDuring - before }
    return result
  })

// live delivery -------------------------------------------------------------------

/** What each live event carries. */
interface PingData {
  /** `performance.now()` just before the append. */
  readonly sent: number
  /** The writer: -1 for the warm-up. */
  readonly w: number
  readonly seq: number
}

interface LatencyResult {
  readonly key: string
  readonly writers: number
  readonly ratePerWriter: number
  readonly arrivals: LatencyPlan["arrivals"]
  readonly samples: number
  /** Measured events over the writers' wall time. */
  readonly achievedPerSecond: number
  /** Append to delivery, ms. */
  readonly p50: number
  readonly p95: number
  readonly p99: number
  readonly max: number
  readonly mean: number
  /** Deliveries that took `pollLikeMillis` or longer. */
  readonly pollLike: number
  /** How long the appends themselves took (send to the append's return), ms. */
  readonly appendP50: number
  readonly appendP99: number
  /** From the append's return to the subscriber's receipt, ms (negative: delivered before the append returned). */
  readonly afterReturnP50: number
  readonly afterReturnP99: number
  /** PostgreSQL: other sessions' open transactions seen during the run. */
  readonly otherTransactions?: OtherTransactions | undefined
}

const sorted = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)

/** One writer's appends of single events at its pace; records each append's duration. */
const writer = (
  store: EventStore.EventStoreService,
  streamId: StreamId.StreamId,
  w: number,
  count: number,
  ratePerSecond: number,
  arrivals: LatencyPlan["arrivals"],
  /** Called with each append's send and return times. */
  record: (seq: number, sent: number, returned: number) => void
) =>
  Effect.gen(function*() {
    const gap = 1000 / ratePerSecond
    let due = performance.now()
    let version = 0
    for (let seq = 0; seq < count; seq++) {
      due += arrivals === "steady" ? gap : -Math.log(1 - Math.random()) * gap
      const wait = due - performance.now()
      if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
      const sent = performance.now()
      const data: PingData = { sent, w, seq }
      const result = yield* store.append(streamId, [{ type: "Ping", data }], { expectedVersion: ExpectedVersion.exact(version) })
      record(seq, sent, performance.now())
      version = result.streamVersion
    }
  })

const measureLatency = (plan: LatencyPlan) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const head = yield* store.headPosition
    const perWriter = Math.ceil(plan.samples / plan.writers)
    const measured = perWriter * plan.writers
    const latencies: Array<number> = []
    const nextSeq = new Array<number>(plan.writers).fill(0)
    const receivedAt = Array.from({ length: plan.writers }, () => new Array<number>(perWriter).fill(Number.NaN))
    const problems: Array<string> = []
    let delivered = 0
    let lastPosition = head
    const subscriber = store.subscribe({ after: head }).pipe(
      Stream.take(latencyWarmupEvents + measured),
      Stream.runForEach((event) =>
        Effect.sync(() => {
          const received = performance.now()
          const data = event.data as PingData
          delivered++
          if (event.globalPosition <= lastPosition && problems.length < 5) {
            problems.push(`position ${event.globalPosition} delivered after ${lastPosition}`)
          }
          lastPosition = event.globalPosition
          if (data.w < 0) return
          if (data.seq !== nextSeq[data.w] && problems.length < 5) {
            problems.push(`writer ${data.w}: event ${data.seq} delivered when ${nextSeq[data.w]} was due`)
          }
          nextSeq[data.w] = data.seq + 1
          latencies.push(received - data.sent)
          receivedAt[data.w]![data.seq] = received
        })
      )
    )
    const fiber = yield* Effect.fork(subscriber)
    yield* Effect.sleep("250 millis") // the subscription registers its listener and reads to the (empty) end
    const runId = `${plan.key}-${Date.now()}`
    yield* writer(store, StreamId.unsafeMake("ping", `${runId}-warmup`), -1, latencyWarmupEvents, 200, "steady", () => {})
    const appendMillis: Array<number> = []
    const returnedAt = Array.from({ length: plan.writers }, () => new Array<number>(perWriter).fill(Number.NaN))
    const recordFor = (w: number) => (seq: number, sent: number, returned: number) => {
      appendMillis.push(returned - sent)
      returnedAt[w]![seq] = returned
    }
    const { millis } = yield* timed(Effect.forEach(
      Array.from({ length: plan.writers }, (_, w) => w),
      (w) => writer(store, StreamId.unsafeMake("ping", `${runId}-w${w}`), w, perWriter, plan.ratePerWriter, plan.arrivals, recordFor(w)),
      { concurrency: "unbounded", discard: true }
    ))
    const finished = yield* Fiber.join(fiber).pipe(Effect.timeoutOption(Duration.millis(deliveryDeadlineMillis)))
    if (finished._tag === "None") {
      yield* Fiber.interrupt(fiber)
      return yield* Effect.dieMessage(
        `${plan.key}: ${delivered} of ${latencyWarmupEvents + measured} events delivered ${deliveryDeadlineMillis / 1000} s after the last append`
      )
    }
    if (problems.length > 0) return yield* Effect.dieMessage(`${plan.key}: delivery out of order: ${problems.join("; ")}`)
    const byLatency = sorted(latencies)
    const byAppend = sorted(appendMillis)
    const byAfterReturn = sorted(receivedAt.flatMap((received, w) => received.map((at, seq) => at - returnedAt[w]![seq]!)))
    const result: LatencyResult = {
      key: plan.key,
      writers: plan.writers,
      ratePerWriter: plan.ratePerWriter,
      arrivals: plan.arrivals,
      samples: latencies.length,
      achievedPerSecond: perSecond(measured, millis),
      p50: percentile(byLatency, 50),
      p95: percentile(byLatency, 95),
      p99: percentile(byLatency, 99),
      max: byLatency.at(-1)!,
      mean: latencies.reduce((a, b) => a + b, 0) / latencies.length,
      pollLike: latencies.filter((l) => l >= pollLikeMillis).length,
      appendP50: percentile(byAppend, 50),
      appendP99: percentile(byAppend, 99),
      afterReturnP50: percentile(byAfterReturn, 50),
      afterReturnP99: percentile(byAfterReturn, 99)
    }
    return result
  })

// the run for one store -----------------------------------------------------------

interface StoreResult {
  readonly store: StoreName
  readonly where: string
  readonly eventCount: number
  readonly streams: number
  readonly seedMillis: number
  /** Flushing the filesystem store's log; VACUUM (ANALYZE) and CHECKPOINT on PostgreSQL. */
  readonly settleMillis: number
  readonly reads: ReadonlyArray<ReadResult>
  readonly retention: RetentionResult
  readonly latency: ReadonlyArray<LatencyResult>
  /** The filesystem store's reopen (index rebuild) before the live part. */
  readonly reopenMillis: number | null
}

const runStore = (store: StoreUnderTest): Promise<StoreResult> =>
  store.use(async ({ bulk, live, settle }) => {
    const bulkPart = await bulk(async (runtime) => {
      log(`${store.name}: seeding ${integer(eventCount)} events`)
      const { value: seeded, millis: seedMillis } = await runtime.runPromise(timed(seed))
      const { millis: settleMillis } = await timedPromise(settle)
      log(
        `${store.name}: seeded in ${(seedMillis / 1000).toFixed(1)} s (${
          integer(perSecond(eventCount, seedMillis))
        } events/s), settled in ${(settleMillis / 1000).toFixed(1)} s; raw reads`
      )
      await runtime.runPromise(warmUpReads)
      const reads: Array<ReadResult> = []
      reads.push(await runtime.runPromise(rawRead("readAll", (s) => s.readAll({ chunkSize: rawChunkSize }))))
      reads.push(await runtime.runPromise(rawRead(
        "subscribe from 0, take(N)",
        (s) => s.subscribe({ after: 0n, chunkSize: rawChunkSize }).pipe(Stream.take(eventCount))
      )))
      for (const [mode, batchSize] of projectionRuns) {
        log(`${store.name}: ${readLabel(mode, batchSize)}`)
        reads.push(await runtime.runPromise(projectWith(mode, batchSize, seeded)))
      }
      log(`${store.name}: retention check (catchUp, batches of ${retentionBatchSize}, full GCs)`)
      const retention = await runtime.runPromise(retentionCheck(retentionBatchSize))
      return { streams: seeded.streams, seedMillis, settleMillis, reads, retention }
    })
    const latency = await live(async (runtime) => {
      const results: Array<LatencyResult> = []
      for (const plan of latencyPlans) {
        log(`${store.name}: live delivery, ${plan.writers} writer(s) at ${plan.ratePerWriter}/s each, ${plan.samples} samples`)
        const stopWatching = await store.watchOthers?.()
        const measured = await runtime.runPromise(measureLatency(plan))
        const result: LatencyResult = stopWatching === undefined ? measured : { ...measured, otherTransactions: await stopWatching() }
        log(`  p50 ${decimal(result.p50)} ms, p99 ${decimal(result.p99)} ms, max ${decimal(result.max)} ms`)
        results.push(result)
      }
      return results
    })
    return {
      store: store.name,
      where: store.where,
      eventCount,
      ...bulkPart,
      latency,
      reopenMillis: store.name === "filesystem" ? filesystemReopenMillis : null
    }
  })

// reporting ---------------------------------------------------------------------

interface Check {
  readonly target: string
  readonly measured: string
  readonly met: boolean
}

interface Report {
  readonly node: string
  readonly cpus: number
  readonly postgres: string
  readonly quick: boolean
  /** 1-minute load averages at the start and the end: other work on the machine skews everything here. */
  readonly loadAverage: { readonly start: number; readonly end: number }
  readonly settings: {
    readonly eventCount: number
    readonly seedBatchSize: number
    readonly streamCount: number
    readonly projectionRuns: typeof projectionRuns
    readonly retentionBatchSize: number
    readonly rawChunkSize: number
    readonly latencyPlans: ReadonlyArray<LatencyPlan>
    readonly latencyWarmupEvents: number
  }
  readonly results: ReadonlyArray<StoreResult>
  readonly targets: ReadonlyArray<Check>
  readonly peakRssOfProcess: number
  readonly totalMillis: number
}

const checksOf = (results: ReadonlyArray<StoreResult>): Array<Check> => {
  const checks: Array<Check> = []
  for (const r of results) {
    checks.push({
      target: `${r.store}: the runner streams: live heap kept during a catch-up < ${mebibytes(targets.retainedHeapBytes)}`,
      measured: `${mebibytes(r.retention.growth)} (peak RSS growth up to ${
        mebibytes(Math.max(...r.reads.filter((read) => read.breakdown !== undefined).map((read) => read.rss.growth)))
      }, uncollected garbage included)`,
      met: r.retention.growth < targets.retainedHeapBytes
    })
    if (r.store === "postgres") {
      for (const l of r.latency) {
        checks.push({
          target: `postgres: live p99 <= ${targets.postgresLiveP99Millis} ms, ${l.key} (woken by NOTIFY, not the 500 ms poll)`,
          measured: `p99 ${decimal(l.p99)} ms, ${l.pollLike} deliveries >= ${pollLikeMillis} ms`,
          met: l.p99 <= targets.postgresLiveP99Millis
        })
      }
    }
  }
  return checks
}

const seconds = (millis: number) => `${(millis / 1000).toFixed(1)} s`

const readOf = (r: StoreResult, label: string) => r.reads.find((read) => read.label === label)!

const throughputTable = (results: ReadonlyArray<StoreResult>) =>
  table(
    [
      "store",
      "seed",
      "readAll ev/s",
      "subscribe ev/s",
      ...projectionRuns.flatMap(([mode, b]) => [`${mode} b${b} ev/s`, "RSS growth"]),
      "heap kept"
    ],
    results.map((r) => [
      r.store,
      seconds(r.seedMillis),
      integer(readOf(r, "readAll").eventsPerSecond),
      integer(readOf(r, "subscribe from 0, take(N)").eventsPerSecond),
      ...projectionRuns.flatMap(([mode, b]) => {
        const read = readOf(r, readLabel(mode, b))
        return [integer(read.eventsPerSecond), mebibytes(read.rss.growth)]
      }),
      mebibytes(r.retention.growth)
    ])
  )

const breakdownTable = (results: ReadonlyArray<StoreResult>) =>
  table(
    ["store", "runner", "batch", "batches", "wall s", "outside batches s", "in transactions s", "of which save s", "ms per batch"],
    results.flatMap((r) =>
      r.reads.flatMap((read) => {
        const b = read.breakdown
        if (b === undefined) return []
        return [[
          r.store,
          read.label.split(",")[0]!,
          integer(read.batchSize),
          integer(b.batches),
          decimal(read.millis / 1000),
          decimal(b.outsideTransactionsMillis / 1000),
          decimal(b.transactionMillis / 1000),
          decimal(b.saveMillis / 1000),
          decimal(read.millis / b.batches)
        ]]
      })
    )
  )

const latencyTable = (results: ReadonlyArray<StoreResult>) =>
  table(
    [
      "store",
      "writers",
      "rate/s",
      "samples",
      "p50 ms",
      "p95 ms",
      "p99 ms",
      "max ms",
      `>= ${pollLikeMillis} ms`,
      "append p50",
      "append p99",
      "after return p50",
      "p99",
      "others' xacts"
    ],
    results.flatMap((r) =>
      r.latency.map((l) => [
        r.store,
        String(l.writers),
        integer(l.achievedPerSecond),
        integer(l.samples),
        decimal(l.p50),
        decimal(l.p95),
        decimal(l.p99),
        decimal(l.max),
        String(l.pollLike),
        decimal(l.appendP50),
        decimal(l.appendP99),
        decimal(l.afterReturnP50),
        decimal(l.afterReturnP99),
        l.otherTransactions === undefined
          ? "-"
          : `${(100 * l.otherTransactions.samplesWithSome / Math.max(1, l.otherTransactions.samples)).toFixed(0)}% (max ${l.otherTransactions.most})`
      ])
    )
  )

const formatReport = (report: Report) => {
  const filesystem = report.results.find((r) => r.store === "filesystem")
  return [
    `chronicle projections and subscriptions: ${integer(eventCount)} events over ${
      integer(report.results[0]?.streams ?? 0)
    } streams (appends of ${integer(seedBatchSize)}); PostgreSQL ${report.postgres}; node ${report.node}, ${report.cpus} cpus, ` +
    `load average ${report.loadAverage.start.toFixed(1)} at the start, ${report.loadAverage.end.toFixed(1)} at the end${
      report.quick ? " (--quick)" : ""
    }`,
    "",
    `Reading the whole log, events/s. readAll, subscribe: raw reads in chunks of ${rawChunkSize}, no handler. catchUp: ProjectionRunner.catchUp`,
    "of a per-stream-counters projection, each batch handled and checkpointed in one transaction; start: the background runner",
    "from the start (it catches up through subscribe). RSS growth: peak during the run minus before it, uncollected garbage",
    `included; heap kept: live heap after full GCs during an untimed catchUp (batches of ${retentionBatchSize}) minus before it.`,
    "",
    throughputTable(report.results),
    "",
    "Where the runners' time goes: outside batches = reading the log (and the runner between batches); in transactions =",
    "handling a batch and saving its checkpoint (PostgreSQL: BEGIN, handler, INSERT, COMMIT; FileCheckpointStore: a file",
    "written, fsynced and renamed into place).",
    "",
    breakdownTable(report.results),
    "",
    "Live delivery, ms: send time (just before the append) to the subscriber's receipt; single-event appends; subscriber from",
    `the head. 1 writer: steady pace; 8 writers: Poisson arrivals each; rate/s achieved over all writers. append: the append's`,
    `own duration; after return: from the append's return to the receipt. Filesystem with fsync on${
      filesystem?.reopenMillis != null ? ` (reopened over the seeded log in ${seconds(filesystem.reopenMillis)})` : ""
    }.`,
    "others' xacts (PostgreSQL): share of 20 ms samples in which other sessions (other apps, other databases of the cluster)",
    "held an open transaction id. Readers only see positions below the cluster-wide snapshot xmin, so such a transaction holds",
    "back delivery, and its end sends no notification: the subscriber sees the events at its next poll (500 ms).",
    "",
    latencyTable(report.results),
    "",
    table(["target", "measured", ""], report.targets.map((c) => [c.target, c.measured, c.met ? "ok" : "MISSED"])),
    "",
    `peak RSS of the process ${mebibytes(report.peakRssOfProcess)}; total ${(report.totalMillis / 1000).toFixed(0)} s; JSON in bench/results/projections.json`
  ].join("\n")
}

// the run -------------------------------------------------------------------------

const benchmark = async (): Promise<Report> => {
  const started = performance.now()
  const loadAtStart = os.loadavg()[0]!
  assertLoopback(databaseUrl, "bench/projections.ts")
  const postgres = await withAdmin(async (client) =>
    (await client.query<{ server_version: string }>("SHOW server_version")).rows[0]!.server_version
  )
  const results: Array<StoreResult> = []
  for (const store of stores) results.push(await runStore(store))
  return {
    node: process.version,
    cpus: os.availableParallelism(),
    postgres,
    quick,
    loadAverage: { start: loadAtStart, end: os.loadavg()[0]! },
    settings: {
      eventCount,
      seedBatchSize,
      streamCount,
      projectionRuns,
      retentionBatchSize,
      rawChunkSize,
      latencyPlans,
      latencyWarmupEvents
    },
    results,
    targets: checksOf(results),
    peakRssOfProcess: process.resourceUsage().maxRSS * 1024,
    totalMillis: performance.now() - started
  }
}

const main = async () => {
  const report = await benchmark()
  await mkdir(fileURLToPath(new URL("./results/", import.meta.url)), { recursive: true })
  const json = JSON.stringify(report, null, 2)
  await writeFile(resultsFile, json + "\n")
  console.log(asJson ? json : formatReport(report))
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
