/**
 * Benchmarks loading a long-lived aggregate through a snapshot against a full
 * replay, on each store (memory, filesystem, PostgreSQL):
 *
 * 1. seeds a 1,000,000-event bank account: the first 999,899 events in
 *    appends of 1,000 (the filesystem store with fsync off), then the last 101
 *    as `Deposit` commands through a handler whose snapshot policy snapshots
 *    the state at version 999,900; so the store holds a snapshot 100 events
 *    behind the head, taken the way an application would take it;
 * 2. loads the account ~50 times through a handler WITH snapshots (the
 *    snapshot, then the 100 events after it: p50/p95/p99) and 3 times through
 *    one WITHOUT (a full replay: events/s), sampling peak RSS on a worker
 *    thread during each.
 *
 * The filesystem store lives in a temporary directory, deleted at the end;
 * PostgreSQL in the schema `bench_snapshots`, dropped at the start and the end
 * (DATABASE_URL overrides postgres://postgres@127.0.0.1:5432/test; loopback only).
 *
 * Run: npm run bench:snapshots                  (a table)
 *      npx tsx bench/snapshots.ts --quick       (~30 s smoke run: 100,000 events)
 *      npx tsx bench/snapshots.ts --json        (a JSON object on stdout instead of the table)
 */
import os from "node:os"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer, ManagedRuntime, Option, Schema } from "effect"
import { CommandHandler, EventStore, FileEventStore, FileSnapshotStore, MemoryEventStore, MemorySnapshotStore, SnapshotPolicy, SnapshotStore } from "chronicle"
import { PostgresEventStore, PostgresSnapshotStore } from "chronicle/postgres"
import type { EventCodec, StreamId } from "chronicle"
import { AccountEvents, BankAccount } from "../examples/BankAccount.js"
import type { AccountEvent, AccountState } from "../examples/BankAccount.js"
import { accounts, accountStreamId, loadRepeatedlyWith, seedAccount } from "./accounts.js"
import type { AccountLoader } from "./accounts.js"
import {
  assertLoopback,
  databaseUrl,
  decimal,
  integer,
  mebibytes,
  progressLog,
  summarizeLoads,
  table,
  timed,
  withAdmin,
  withPeakRssEffect,
  withTempDirectory
} from "./support.js"
import type { LoadResult, RssSample } from "./support.js"

// settings ----------------------------------------------------------------------

const argv = process.argv.slice(2)
const quick = argv.includes("--quick")
const asJson = argv.includes("--json")

const eventCount = quick ? 100_000 : 1_000_000
/** The snapshot sits this many events behind the head. */
const eventsAfterSnapshot = 100
const snapshotVersion = eventCount - eventsAfterSnapshot
const seedBatchSize = 1_000
const snapshotLoads = quick ? { warmupRuns: 10, runs: 30 } : { warmupRuns: 10, runs: 50 }
const replayRuns = 3
const pgSchema = "bench_snapshots"

/** The targets this bench reports against. */
const targets = {
  /** p50 of a load through the snapshot, on PostgreSQL and the filesystem. */
  snapshotLoadP50Millis: 10,
  /** A full replay from the in-memory store. */
  memoryReplayEventsPerSecond: 500_000,
  /**
   * "Flat" RSS during that replay: under 32 MiB of peak growth. Keeping even
   * 32 bytes per event of a 1,000,000-event stream would take about 30 MiB.
   */
  memoryReplayRssGrowthBytes: 32 * 2 ** 20
}

const log = progressLog(asJson)

// the account and its handlers -----------------------------------------------------

type Stores = EventStore.EventStore | SnapshotStore.SnapshotStore
type LoadError = EventStore.ReadError | EventCodec.DecodeError

/** The account's state as snapshots store it. */
const AccountStateSchema = Schema.Struct({
  status: Schema.Literal("unopened", "open", "closed"),
  owner: Schema.String,
  currency: Schema.String,
  balance: Schema.Number
})

/** Snapshots the state exactly at `snapshotVersion`, never otherwise. */
const snapshotPolicy = SnapshotPolicy.when<AccountEvent, AccountState>(({ version }) => version === snapshotVersion)

const snapshottingAccounts = CommandHandler.make(BankAccount, {
  codec: AccountEvents,
  snapshots: { schema: AccountStateSchema, version: 1, policy: snapshotPolicy }
})

/** The history is the opening and one-cent deposits: the balance is one cent per event after the first. */
const checkBalance = (loaded: CommandHandler.Loaded<AccountState>) =>
  loaded.state.balance === loaded.version - 1
    ? Effect.succeed(loaded)
    : Effect.dieMessage(`loaded a balance of ${loaded.state.balance} at version ${loaded.version}`)

/** A load through the snapshot; dies unless it started from the snapshot at `snapshotVersion`. */
const loadViaSnapshot: AccountLoader<LoadError, Stores> = (streamId) =>
  Effect.flatMap(snapshottingAccounts.load(streamId), (loaded) =>
    Option.exists(loaded.snapshot, (snapshot) => snapshot.version === snapshotVersion)
      ? checkBalance(loaded)
      : Effect.dieMessage(`the load did not start from the snapshot at version ${snapshotVersion}`))

/** A full replay through a handler without snapshots. */
const loadByReplay: AccountLoader<LoadError, EventStore.EventStore> = (streamId) =>
  Effect.flatMap(accounts.load(streamId), checkBalance)

// the stores --------------------------------------------------------------------

type StoreRuntime = ManagedRuntime.ManagedRuntime<Stores, EventStore.StoreError>
type StoreName = "memory" | "filesystem" | "postgres"

interface StoreUnderTest {
  readonly name: StoreName
  /** Where its data lives, for the report. */
  readonly where: string
  /** Runs `use` with a fresh, empty store (event store and snapshot store), cleaned up afterwards. */
  readonly use: <A>(run: (runtime: StoreRuntime) => Promise<A>) => Promise<A>
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

const memoryStore: StoreUnderTest = {
  name: "memory",
  where: "in process",
  use: (run) => withRuntime(Layer.merge(MemoryEventStore.layer(), MemorySnapshotStore.layer()), run)
}

const filesystemStore: StoreUnderTest = {
  name: "filesystem",
  where: os.tmpdir(),
  // events with fsync off (seeding speed; loads never sync); the one snapshot is synced as by default
  use: (run) =>
    withTempDirectory("snapshots", (directory) =>
      withRuntime(
        Layer.merge(FileEventStore.layer({ directory, fsync: false }), FileSnapshotStore.layer({ directory })).pipe(
          Layer.provide(NodeContext.layer)
        ),
        run
      ))
}

const dropSchema = () => withAdmin((client) => client.query(`DROP SCHEMA IF EXISTS ${pgSchema} CASCADE`))

const postgresStore: StoreUnderTest = {
  name: "postgres",
  where: `schema ${pgSchema}`,
  use: async (run) => {
    assertLoopback(databaseUrl, "bench/snapshots.ts")
    await dropSchema()
    try {
      return await withRuntime(
        PostgresSnapshotStore.layer({ schema: pgSchema }).pipe(
          Layer.provideMerge(PostgresEventStore.layerFromUrl({ url: databaseUrl, schema: pgSchema }))
        ),
        run
      )
    } finally {
      await dropSchema()
    }
  }
}

const stores: ReadonlyArray<StoreUnderTest> = [memoryStore, filesystemStore, postgresStore]

// the run for one store ---------------------------------------------------------------

interface StoreResult {
  readonly store: StoreName
  readonly where: string
  readonly eventCount: number
  readonly snapshotVersion: number
  /** Appending the first `snapshotVersion - 1` events. */
  readonly seedMillis: number
  /** The `Deposit` that took the snapshot: a full replay of the history so far, an append, the snapshot. */
  readonly snapshottingCommandMillis: number
  /** The last `eventsAfterSnapshot` deposits, each loading from the snapshot. */
  readonly remainingCommandsMillis: number
  readonly viaSnapshot: LoadResult & { readonly rss: RssSample }
  readonly fullReplay: LoadResult & { readonly rss: RssSample }
}

/** Seeds the account: bulk appends up to just before the snapshot, then commands through the snapshotting handler. */
const seed = (streamId: StreamId.StreamId) =>
  Effect.gen(function*() {
    const { millis: seedMillis } = yield* timed(seedAccount(streamId, snapshotVersion - 1, seedBatchSize))
    const deposit = { _tag: "Deposit", amount: 1 } as const
    const { value: first, millis: snapshottingCommandMillis } = yield* timed(snapshottingAccounts.handle(streamId, deposit))
    if (first.streamVersion !== snapshotVersion) {
      return yield* Effect.dieMessage(`the snapshotting command wrote version ${first.streamVersion}, expected ${snapshotVersion}`)
    }
    const stored = yield* Effect.flatMap(SnapshotStore.SnapshotStore, (store) => store.load(streamId))
    if (!Option.exists(stored, (snapshot) => snapshot.version === snapshotVersion)) {
      return yield* Effect.dieMessage(`no snapshot at version ${snapshotVersion} after the snapshotting command`)
    }
    const { millis: remainingCommandsMillis } = yield* timed(Effect.gen(function*() {
      for (let version = snapshotVersion; version < eventCount; version++) {
        yield* snapshottingAccounts.handle(streamId, deposit)
      }
    }))
    return { seedMillis, snapshottingCommandMillis, remainingCommandsMillis }
  })

const measure = (streamId: StreamId.StreamId) =>
  Effect.gen(function*() {
    yield* loadRepeatedlyWith(loadViaSnapshot, streamId, eventCount, snapshotLoads.warmupRuns)
    const viaSnapshot = yield* withPeakRssEffect(loadRepeatedlyWith(loadViaSnapshot, streamId, eventCount, snapshotLoads.runs))
    log(`  via snapshot: p50 ${decimal(summarizeLoads(eventsAfterSnapshot, viaSnapshot.value).p50)} ms; ${replayRuns} full replays`)
    const fullReplay = yield* withPeakRssEffect(loadRepeatedlyWith(loadByReplay, streamId, eventCount, replayRuns))
    return {
      viaSnapshot: { ...summarizeLoads(eventsAfterSnapshot, viaSnapshot.value), rss: viaSnapshot.rss },
      fullReplay: { ...summarizeLoads(eventCount, fullReplay.value), rss: fullReplay.rss }
    }
  })

const runStore = (store: StoreUnderTest): Promise<StoreResult> =>
  store.use(async (runtime) => {
    const streamId = accountStreamId(eventCount)
    log(`${store.name}: seeding ${integer(eventCount)} events, snapshot at ${integer(snapshotVersion)}`)
    const seeded = await runtime.runPromise(seed(streamId))
    log(`${store.name}: seeded in ${(seeded.seedMillis / 1000).toFixed(1)} s; ${snapshotLoads.runs} loads via the snapshot`)
    const measured = await runtime.runPromise(measure(streamId))
    return { store: store.name, where: store.where, eventCount, snapshotVersion, ...seeded, ...measured }
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
  readonly quick: boolean
  readonly settings: {
    readonly eventCount: number
    readonly snapshotVersion: number
    readonly seedBatchSize: number
    readonly snapshotLoads: typeof snapshotLoads
    readonly replayRuns: number
  }
  readonly results: ReadonlyArray<StoreResult>
  readonly targets: ReadonlyArray<Check>
  readonly peakRssOfProcess: number
  readonly totalMillis: number
}

const checksOf = (results: ReadonlyArray<StoreResult>): Array<Check> => {
  const checks: Array<Check> = []
  for (const r of results) {
    if (r.store === "memory") {
      checks.push(
        {
          target: `memory: full replay >= ${integer(targets.memoryReplayEventsPerSecond)} events/s`,
          measured: `${integer(r.fullReplay.eventsPerSecondAtP50)} events/s`,
          met: r.fullReplay.eventsPerSecondAtP50 >= targets.memoryReplayEventsPerSecond
        },
        {
          target: `memory: flat RSS during full replay (growth < ${mebibytes(targets.memoryReplayRssGrowthBytes)})`,
          measured: mebibytes(r.fullReplay.rss.growth),
          met: r.fullReplay.rss.growth < targets.memoryReplayRssGrowthBytes
        }
      )
    } else {
      checks.push({
        target: `${r.store}: load via snapshot p50 <= ${targets.snapshotLoadP50Millis} ms`,
        measured: `p50 ${decimal(r.viaSnapshot.p50)} ms (p99 ${decimal(r.viaSnapshot.p99)} ms)`,
        met: r.viaSnapshot.p50 <= targets.snapshotLoadP50Millis
      })
    }
  }
  return checks
}

const seconds = (millis: number) => `${(millis / 1000).toFixed(2)} s`

const resultsTable = (results: ReadonlyArray<StoreResult>) =>
  table(
    [
      "store",
      "snapshot p50 ms",
      "p95 ms",
      "p99 ms",
      "RSS growth",
      "no snapshot ms (p50)",
      "events/s",
      "RSS growth",
      "speed-up (p50)"
    ],
    results.map((r) => [
      r.store,
      decimal(r.viaSnapshot.p50),
      decimal(r.viaSnapshot.p95),
      decimal(r.viaSnapshot.p99),
      mebibytes(r.viaSnapshot.rss.growth),
      integer(r.fullReplay.p50),
      integer(r.fullReplay.eventsPerSecondAtP50),
      mebibytes(r.fullReplay.rss.growth),
      `${integer(r.fullReplay.p50 / r.viaSnapshot.p50)}x`
    ])
  )

const seedingTable = (results: ReadonlyArray<StoreResult>) =>
  table(
    [
      "store",
      `seed ${integer(snapshotVersion - 1)} events`,
      "snapshotting command",
      `last ${eventsAfterSnapshot} commands`,
      "full replays",
      "RSS before replays"
    ],
    results.map((r) => [
      r.store,
      seconds(r.seedMillis),
      seconds(r.snapshottingCommandMillis),
      `${integer(r.remainingCommandsMillis)} ms`,
      r.fullReplay.runs.map(seconds).join(", "),
      mebibytes(r.fullReplay.rss.baseline)
    ])
  )

const formatReport = (report: Report) =>
  [
    `chronicle snapshots: a ${integer(eventCount)}-event account, snapshot at ${integer(snapshotVersion)}; node ${report.node}, ${report.cpus} cpus${
      report.quick ? " (--quick)" : ""
    }`,
    `via snapshot: ${snapshotLoads.runs} loads (after ${snapshotLoads.warmupRuns} untimed) of the snapshot + ${eventsAfterSnapshot} events; ` +
    `no snapshot: ${replayRuns} full replays; RSS growth = peak during the runs minus before them`,
    "",
    resultsTable(report.results),
    "",
    seedingTable(report.results),
    "",
    table(["target", "measured", ""], report.targets.map((c) => [c.target, c.measured, c.met ? "ok" : "MISSED"])),
    "",
    `peak RSS of the process ${mebibytes(report.peakRssOfProcess)}; total ${(report.totalMillis / 1000).toFixed(0)} s`
  ].join("\n")

// the run -------------------------------------------------------------------------

const benchmark = async (): Promise<Report> => {
  const started = performance.now()
  const results: Array<StoreResult> = []
  for (const store of stores) results.push(await runStore(store))
  return {
    node: process.version,
    cpus: os.availableParallelism(),
    quick,
    settings: { eventCount, snapshotVersion, seedBatchSize, snapshotLoads, replayRuns },
    results,
    targets: checksOf(results),
    peakRssOfProcess: process.resourceUsage().maxRSS * 1024,
    totalMillis: performance.now() - started
  }
}

benchmark().then(
  (report) => console.log(asJson ? JSON.stringify(report, null, 2) : formatReport(report)),
  (error: unknown) => {
    console.error(error)
    process.exitCode = 1
  }
)
