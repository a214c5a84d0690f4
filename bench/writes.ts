/**
 * The write path side by side, in one run: chronicle's PostgreSQL store,
 * Emmett's (`@event-driven-io/emmett-postgresql`) and raw node-postgres, in
 * interleaved rounds (the order turns every round), each in its own schema
 * (`bench_w_chronicle`, `bench_w_emmett`, `bench_w_raw`), dropped at start
 * and end. Per workload: the median rate over rounds and its range (min–max)
 * per library, chronicle/Emmett and chronicle/raw, and the load average
 * before and after.
 *
 * - appends: 1 writer on a new stream each append, 1 writer on one existing
 *   stream, 16 writers each on its own stream, 100-event batches from 1 and 16;
 * - hot stream: 16 writers on one stream, (a) append with the version they last
 *   saw, on a conflict take the actual version and retry, (b) deposits through
 *   each library's command handler (chronicle's also with `coalesce: false`,
 *   in the same rounds); checks nothing is lost (successes + the opening event
 *   = stream length) and that every successful command's id is stored once;
 * - aggregate cache: accounts of ~100 events, deposits on random accounts from
 *   16 fibers: chronicle without cache, with `AggregateCache` (hit rate), and
 *   Emmett's command handler; on PostgreSQL and on the filesystem store;
 * - client CPU per append (`process.cpuUsage()`), single appends, 1 writer.
 *
 * Raw node-postgres: tables `streams (stream_id pk, version)` and `events
 * (global_position bigserial pk, stream_id, version, type, data jsonb,
 * event_id uuid default gen_random_uuid(), unique (stream_id, version))`; one
 * named prepared statement per append: CTEs that create the stream row (expected
 * 0, `ON CONFLICT DO NOTHING`) or move its version from the expected one (an
 * `UPDATE ... WHERE version = $expected`), feeding the insert of the events
 * (`unnest` of types and data). No row inserted means a conflict; only then a
 * second named statement reads the actual version.
 *
 * Run: npm run bench:writes              (table + bench/results/writes.json)
 *      npx tsx bench/writes.ts --quick   (smoke run, < 2 min)
 *      npx tsx bench/writes.ts --contended  (a CPU burner child process runs alongside)
 *      npx tsx bench/writes.ts --hot        (the two hot-stream workloads and their checks only; no JSON)
 *      npx tsx bench/writes.ts --cpu [--baseline DIR | --baseline name=DIR,name=DIR]
 *        client CPU per single append only, in interleaved rounds (no JSON); with --baseline, other
 *        checkouts' src (DIR/src, DIR/node_modules a link to this one's) run in the same rounds, each on
 *        a schema of its own: before/after side by side
 *      npx tsx bench/writes.ts --server     (no JSON)
 *        what one append costs PostgreSQL itself: chronicle's append statement sent by raw node-postgres
 *        as a named prepared statement with a pre-built batch ("chronicle fn"), next to chronicle and
 *        raw node-postgres, 1 writer, new and existing stream, in interleaved rounds
 */
import { fork } from "node:child_process"
import { mkdir, writeFile } from "node:fs/promises"
import os from "node:os"
import path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { CommandHandler as EmmettCommandHandler } from "@event-driven-io/emmett"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer, ManagedRuntime, Schedule, Stream } from "effect"
import pg from "pg"
import { v7 as uuidv7 } from "uuid"
import { AggregateCache, CommandHandler, EventStore, ExpectedVersion, FileEventStore, StreamId } from "chronicle"
import { PostgresEventStore as ChroniclePostgres } from "chronicle/postgres"
import { AccountEvents, BankAccount } from "../examples/BankAccount.js"
import type { AccountEvent, AccountState } from "../examples/BankAccount.js"
import { makeEmmettStore } from "./emmett.js"
import { assertLoopback, databaseUrl, progressLog, summarize, table, withAdmin, withTempDirectory } from "./support.js"
import type { Summary } from "./support.js"

// settings ----------------------------------------------------------------------

const argv = process.argv.slice(2)
const quick = argv.includes("--quick")
const contended = argv.includes("--contended")
const hotOnly = argv.includes("--hot")
const cpuOnly = argv.includes("--cpu")
const serverOnly = argv.includes("--server")
const baselineIndex = argv.indexOf("--baseline")
/** `--baseline DIR` or `--baseline name=DIR,name=DIR`: other checkouts run in the same rounds. */
const baselines = baselineIndex === -1 ? [] : (argv[baselineIndex + 1] ?? "").split(",").map((entry, i) => {
  const [name, dir] = entry.includes("=") ? entry.split("=") as [string, string] : [i === 0 ? "baseline" : `baseline${i + 1}`, entry]
  return { name, dir, schema: `bench_w_base_${name.replace(/\W/g, "_").toLowerCase()}` }
})
const burnerFlag = "--cpu-burner"

const schemas = { chronicle: "bench_w_chronicle", emmett: "bench_w_emmett", raw: "bench_w_raw" } as const
type Lib = string
const maxConnections = 20
const writers = 16
const batchSize = 100
const plan = quick
  ? { rounds: 2, sliceMillis: 400, warmupMillis: 150, accounts: 100, accountEvents: 100, cpuAppends: 1_000 }
  : { rounds: 6, sliceMillis: 1_500, warmupMillis: 500, accounts: 1_000, accountEvents: 100, cpuAppends: 10_000 }
const resultsFile = fileURLToPath(new URL("./results/writes.json", import.meta.url))
const log = progressLog(false)

const deposits = (size: number) => Array.from({ length: size }, () => ({ type: "MoneyDeposited", data: { amount: 100 } }))
const opened = { type: "AccountOpened", data: { owner: "bench", currency: "EUR" } }

// one shape over the three --------------------------------------------------------

/** Appends `events` with the exact expected version; resolves with the new version, or `{ conflict: actual }`. */
type Append = (stream: string, expected: number, events: ReadonlyArray<{ type: string; data: Record<string, unknown> }>) =>
  Promise<number | { conflict: number | undefined }>

interface Writer {
  readonly lib: Lib
  readonly append: Append
  readonly close: () => Promise<void>
}

const retrySchedule = Schedule.exponential("1 millis", 1.5).pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(200)),
  Schedule.upTo("30 seconds")
)
const chronicleAccounts = CommandHandler.make(BankAccount, { codec: AccountEvents, retry: retrySchedule, cache: false })
/** The same without coalescing: every command on its own, conflicts retried (catching up, not reloading). */
const uncoalescedAccounts = CommandHandler.make(BankAccount, { codec: AccountEvents, retry: retrySchedule, cache: false, coalesce: false })
const cachedAccounts = CommandHandler.make(BankAccount, { codec: AccountEvents, retry: retrySchedule })

const chronicleLayer = Layer.merge(
  ChroniclePostgres.layerFromUrl({ url: databaseUrl, schema: schemas.chronicle, maxConnections }),
  AggregateCache.layer({ maxEntries: 2_000 })
)

const makeChronicle = async () => {
  const runtime = ManagedRuntime.make(chronicleLayer)
  await runtime.runPromise(Effect.void)
  const append: Append = (stream, expected, events) =>
    runtime.runPromise(
      EventStore.append(StreamId.unsafeParse(stream), events as never, { expectedVersion: ExpectedVersion.exact(expected) }).pipe(
        Effect.map((r) => r.streamVersion as number | { conflict: number | undefined }),
        Effect.catchTag("ConcurrencyConflict", (c) => Effect.succeed({ conflict: c.actual }))
      )
    )
  return { lib: "chronicle" as const, append, runtime, close: () => runtime.dispose() }
}

/** Another checkout's chronicle (`--baseline DIR`), loaded from its sources into this process, on its own schema. */
const makeBaseline = async ({ dir, name, schema }: (typeof baselines)[number]): Promise<Writer> => {
  const index = (await import(pathToFileURL(path.resolve(dir, "src/index.ts")).href)) as typeof import("chronicle")
  const postgres = (await import(pathToFileURL(path.resolve(dir, "src/postgres.ts")).href)) as typeof import("chronicle/postgres")
  const runtime = ManagedRuntime.make(
    postgres.PostgresEventStore.layerFromUrl({ url: databaseUrl, schema, maxConnections })
  )
  await runtime.runPromise(Effect.void)
  const append: Append = (stream, expected, events) =>
    runtime.runPromise(
      index.EventStore.append(index.StreamId.unsafeParse(stream), events as never, {
        expectedVersion: index.ExpectedVersion.exact(expected)
      }).pipe(
        Effect.map((r) => r.streamVersion as number | { conflict: number | undefined }),
        Effect.catchTag("ConcurrencyConflict", (c) => Effect.succeed({ conflict: c.actual }))
      )
    )
  return { lib: name, append, close: () => runtime.dispose() }
}

/**
 * chronicle's own append statement (as its store sends it, notification
 * included) sent by raw node-postgres as a named prepared statement, its
 * batch built by hand: what the database costs without chronicle's client.
 */
const makeChronicleFunction = (): Writer => {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: maxConnections })
  const s = schemas.chronicle
  const text = `SELECT version::text, base::text, deleted, stored::text, CASE WHEN base IS NOT NULL THEN pg_notify('chronicle_${s}', 'append') END FROM ${s}.append_stream_explained($1, $2, $3, $4, $5::json)`
  const append: Append = async (stream, expected, events) => {
    const batch = `[${events.map((e) => `{"event_id":"${uuidv7()}","type":${JSON.stringify(e.type)},"schema_version":1,"data":${JSON.stringify(e.data)},"metadata":{}}`).join(",")}]`
    const r = await pool.query({
      name: "chronicle-fn-append",
      text,
      values: [stream, expected === 0 ? "nostream" : "exact", expected === 0 ? null : expected, events.length, batch],
      rowMode: "array"
    })
    const row = r.rows[0] as Array<unknown>
    return row[1] == null ? { conflict: row[0] == null ? 0 : Number(row[0]) } : Number(row[0])
  }
  return { lib: "chronicle fn", append, close: () => pool.end() }
}

/** Emmett on its own pool (see bench/emmett.ts). */
const makeEmmett = async () => {
  const { pool, store } = makeEmmettStore(schemas.emmett, maxConnections)
  await store.schema.migrate()
  const append: Append = async (stream, expected, events) => {
    try {
      const r = await store.appendToStream(stream, events as never, {
        expectedStreamVersion: expected === 0 ? "STREAM_DOES_NOT_EXIST" : BigInt(expected)
      })
      return Number(r.nextExpectedStreamVersion)
    } catch (error) {
      const current = (error as { current?: unknown }).current
      if ((error as Error).name?.includes("Conflict") || current !== undefined) {
        return { conflict: current === undefined || current === null ? undefined : Number(current) }
      }
      throw error
    }
  }
  return {
    lib: "emmett" as const,
    append,
    store,
    close: async () => {
      await store.close()
      await pool.end()
    }
  }
}

const rawDdl = `
CREATE TABLE streams (stream_id text PRIMARY KEY, version bigint NOT NULL);
CREATE TABLE events (
  global_position bigserial PRIMARY KEY,
  stream_id text NOT NULL,
  version bigint NOT NULL,
  type text NOT NULL,
  data jsonb NOT NULL,
  event_id uuid NOT NULL DEFAULT gen_random_uuid(),
  recorded_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (stream_id, version)
)`

/** The stream row is created (expected 0) or moved from expected to expected + n, or nothing happens; the events follow it. */
const rawAppendSql = `
WITH created AS (
  INSERT INTO streams (stream_id, version) SELECT $1, $3::bigint WHERE $2::bigint = 0
  ON CONFLICT (stream_id) DO NOTHING RETURNING version
), moved AS (
  UPDATE streams SET version = $3::bigint WHERE stream_id = $1 AND version = $2::bigint AND $2::bigint > 0 RETURNING version
), s AS (SELECT version FROM created UNION ALL SELECT version FROM moved)
INSERT INTO events (stream_id, version, type, data)
SELECT $1, $2::bigint + e.i, e.type, e.data FROM s, unnest($4::text[], $5::jsonb[]) WITH ORDINALITY AS e(type, data, i)`

const makeRaw = async () => {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: maxConnections, options: `-c search_path=${schemas.raw}` })
  const append: Append = async (stream, expected, events) => {
    const r = await pool.query({
      name: "raw-append",
      text: rawAppendSql,
      values: [stream, expected, expected + events.length, events.map((e) => e.type), events.map((e) => JSON.stringify(e.data))]
    })
    if (r.rowCount === events.length) return expected + events.length
    const v = await pool.query<{ version: string }>({ name: "raw-version", text: "SELECT version FROM streams WHERE stream_id = $1", values: [stream] })
    return { conflict: v.rows[0] === undefined ? 0 : Number(v.rows[0].version) }
  }
  const length = async (stream: string) =>
    Number((await pool.query<{ n: string }>("SELECT count(*) AS n FROM events WHERE stream_id = $1", [stream])).rows[0]!.n)
  return { lib: "raw" as const, append, length, close: () => pool.end() }
}

// measuring ---------------------------------------------------------------------


interface WorkloadResult {
  readonly workload: string
  readonly unit: string
  readonly loadBefore: ReadonlyArray<number>
  readonly loadAfter: ReadonlyArray<number>
  readonly results: Partial<Record<string, Summary>>
  readonly notes: ReadonlyArray<string>
}

/** A slice: `run(deadline)` does work until the deadline and returns how many units. Rounds alternate the order. */
const interleaved = async (
  workload: string,
  unit: string,
  runners: ReadonlyArray<{ readonly name: string; readonly run: (deadline: number) => Promise<number> }>,
  notes: Array<string> = []
): Promise<WorkloadResult> => {
  log(`${workload}`)
  const loadBefore = os.loadavg()
  for (const r of runners) await r.run(performance.now() + plan.warmupMillis)
  const rates = new Map<string, Array<number>>(runners.map((r) => [r.name, []]))
  for (let round = 0; round < plan.rounds; round++) {
    const order = round % 2 === 0 ? runners : [...runners].reverse()
    const rotated = [...order.slice(round % order.length), ...order.slice(0, round % order.length)]
    for (const r of rotated) {
      const start = performance.now()
      const units = await r.run(start + plan.sliceMillis)
      rates.get(r.name)!.push((units * 1000) / (performance.now() - start))
    }
  }
  return {
    workload,
    unit,
    loadBefore,
    loadAfter: os.loadavg(),
    results: Object.fromEntries([...rates].map(([name, r]) => [name, summarize(r)])),
    notes
  }
}

const parallel = async (n: number, one: (i: number) => Promise<number>) =>
  (await Promise.all(Array.from({ length: n }, (_, i) => one(i)))).reduce((a, b) => a + b, 0)

let streamSeq = 0
const fresh = (label: string) => `${label}-${process.pid}-${++streamSeq}`

/** Writers, each on its own stream (kept across slices), appending `size` events until the deadline. */
const ownStreams = (w: Writer, count: number, size: number, newStreamEachAppend: boolean) => {
  const streams = Array.from({ length: count }, () => ({ name: fresh(`acct-${w.lib}`), version: 0 }))
  return async (deadline: number) =>
    parallel(count, async (i) => {
      const s = streams[i]!
      let appends = 0
      while (performance.now() < deadline) {
        if (newStreamEachAppend) {
          s.name = fresh(`new-${w.lib}`)
          s.version = 0
        }
        const r = await w.append(s.name, s.version, deposits(size))
        if (typeof r !== "number") throw new Error(`${w.lib}: unexpected conflict on its own stream`)
        s.version = r
        appends++
      }
      return appends * size
    })
}

/** One hot stream: 16 writers, append with the last version seen, on conflict take the actual one and retry. */
const hotStore = (w: Writer, counters: { ok: number; streams: Array<string> }) => async (deadline: number) => {
  const stream = fresh(`hot-${w.lib}`)
  counters.streams.push(stream)
  const first = await w.append(stream, 0, [opened])
  if (typeof first !== "number") throw new Error("opening a new stream conflicted")
  return parallel(writers, async () => {
    let version = first
    let ok = 0
    while (performance.now() < deadline) {
      const r = await w.append(stream, version, deposits(1))
      if (typeof r === "number") {
        version = r
        ok++
      } else version = r.conflict ?? version
    }
    counters.ok += ok
    return ok
  })
}

// the run ---------------------------------------------------------------------------

const emmettEvolve = (state: AccountState, event: { type: string; data: Record<string, unknown> }): AccountState =>
  BankAccount.evolve(state, { _tag: event.type, ...event.data } as AccountEvent)
const emmettDeposit = (state: AccountState) => {
  if (state.status !== "open") throw new Error(`account ${state.status}`)
  return { type: "MoneyDeposited", data: { amount: 1 } }
}
const emmettHandle = EmmettCommandHandler<AccountState, { type: string; data: Record<string, unknown> }>({
  evolve: emmettEvolve,
  initialState: () => BankAccount.initialState,
  retry: { onVersionConflict: { retries: 200, minTimeout: 1, maxTimeout: 100, factor: 1.5, randomize: true } }
})

const cpuPerAppend = async (w: Writer) => {
  const stream = fresh(`cpu-${w.lib}`)
  let version = 0
  const before = process.cpuUsage()
  const start = performance.now()
  for (let i = 0; i < plan.cpuAppends; i++) {
    const r = await w.append(stream, version, deposits(1))
    if (typeof r !== "number") throw new Error("conflict")
    version = r
  }
  const cpu = process.cpuUsage(before)
  return { microsPerAppend: (cpu.user + cpu.system) / plan.cpuAppends, wallMillis: performance.now() - start }
}

/** Client CPU per single append in interleaved rounds: `plan.cpuAppends` appends per library in all. */
const cpuRounds = async (libs: ReadonlyArray<Writer>) => {
  const rounds = quick ? 2 : 5
  const per = Math.ceil(plan.cpuAppends / rounds)
  const streams = new Map(libs.map((w) => [w.lib, { name: fresh(`cpu-${w.lib}`), version: 0 }]))
  const micros = new Map<string, Array<number>>(libs.map((w) => [w.lib, []]))
  const loadBefore = os.loadavg()
  for (const w of libs) await w.append(fresh(`warm-${w.lib}`), 0, deposits(1))
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? libs : [...libs].reverse()
    for (const w of [...order.slice(round % order.length), ...order.slice(0, round % order.length)]) {
      const s = streams.get(w.lib)!
      const before = process.cpuUsage()
      for (let i = 0; i < per; i++) {
        const r = await w.append(s.name, s.version, deposits(1))
        if (typeof r !== "number") throw new Error(`${w.lib}: conflict`)
        s.version = r
      }
      const cpu = process.cpuUsage(before)
      micros.get(w.lib)!.push((cpu.user + cpu.system) / per)
    }
  }
  return {
    workload: `client CPU per single append (${rounds} rounds of ${per} appends, 1 writer, existing stream)`,
    unit: "µs/append",
    loadBefore,
    loadAfter: os.loadavg(),
    results: Object.fromEntries([...micros].map(([lib, m]) => [lib, summarize(m)])),
    notes: []
  } satisfies WorkloadResult
}

const dropAll = (client: pg.Client) =>
  client.query([...Object.values(schemas), ...baselines.map((b) => b.schema)].map((s) => `DROP SCHEMA IF EXISTS ${s} CASCADE`).join("; "))

const benchmark = async () => {
  assertLoopback(databaseUrl, "bench/writes.ts")
  const started = performance.now()
  await withAdmin(async (client) => {
    await dropAll(client)
    await client.query(`CREATE SCHEMA ${schemas.emmett}; CREATE SCHEMA ${schemas.raw}; SET search_path = ${schemas.raw}; ${rawDdl}`)
  })
  const burner = contended ? fork(fileURLToPath(import.meta.url), [burnerFlag], { stdio: "ignore" }) : undefined
  if (burner) log(`contended: a CPU burner child process (pid ${burner.pid}) spins for the whole run`)
  const chronicle = await makeChronicle()
  const emmett = await makeEmmett()
  const raw = await makeRaw()
  const others: Array<Writer> = []
  for (const b of baselines) others.push(await makeBaseline(b))
  const direct = serverOnly ? makeChronicleFunction() : undefined
  const all: ReadonlyArray<Writer> = [chronicle, emmett, raw]
  const results: Array<WorkloadResult> = []
  const each = (f: (w: Writer) => (deadline: number) => Promise<number>) => all.map((w) => ({ name: w.lib, run: f(w) }))
  const done = (checks: ReadonlyArray<string> = [], cpu: Record<string, { microsPerAppend: number; wallMillis: number }> = {}) => ({
    node: process.version,
    cpus: os.availableParallelism(),
    quick,
    contended,
    plan,
    results,
    checks,
    cpu,
    totalMillis: performance.now() - started
  })
  try {
    if (cpuOnly) {
      results.push(await cpuRounds([chronicle, ...others, emmett, raw]))
      return done()
    }
    if (serverOnly && direct !== undefined) {
      const three = [chronicle, direct, raw]
      const runs = (f: (w: Writer) => (deadline: number) => Promise<number>) => three.map((w) => ({ name: w.lib, run: f(w) }))
      results.push(await interleaved("append 1 event, 1 writer, new stream", "appends/s", runs((w) => ownStreams(w, 1, 1, true))))
      results.push(await interleaved("append 1 event, 1 writer, existing stream", "appends/s", runs((w) => ownStreams(w, 1, 1, false))))
      results.push(await interleaved(`append ${batchSize} events, 1 writer`, "events/s", runs((w) => ownStreams(w, 1, batchSize, false))))
      results.push(await cpuRounds(three))
      return done()
    }
    if (!hotOnly) {
      results.push(await interleaved("append 1 event, 1 writer, new stream", "appends/s", each((w) => ownStreams(w, 1, 1, true))))
      results.push(await interleaved("append 1 event, 1 writer, existing stream", "appends/s", each((w) => ownStreams(w, 1, 1, false))))
      results.push(await interleaved(`append 1 event, ${writers} writers, existing streams`, "appends/s", each((w) => ownStreams(w, writers, 1, false))))
      results.push(await interleaved(`append ${batchSize} events, 1 writer`, "events/s", each((w) => ownStreams(w, 1, batchSize, false))))
      results.push(await interleaved(`append ${batchSize} events, ${writers} writers`, "events/s", each((w) => ownStreams(w, writers, batchSize, false))))
    }

    // hot stream, store level
    const hot = new Map(all.map((w) => [w.lib, { ok: 0, streams: [] as Array<string> }]))
    const hotResult = await interleaved(`hot stream, ${writers} writers: append + retry on conflict`, "appends/s", each((w) => hotStore(w, hot.get(w.lib)!)))
    results.push(hotResult)

    // hot stream, command handlers
    const counters = () => ({ ok: 0, failed: 0, streams: [] as Array<string> })
    const chCounters = { chronicle: counters(), uncoalesced: counters(), emmett: counters() }
    let commandSeq = 0
    const succeeded = new Set<string>()
    const chronicleHot = (handler: typeof chronicleAccounts, lib: "chronicle" | "uncoalesced") => async (deadline: number) => {
      const stream = fresh(`hotch-${lib}`)
      chCounters[lib].streams.push(stream)
      await chronicle.append(stream, 0, [opened])
      const id = StreamId.unsafeParse(stream)
      return parallel(writers, async (writer) => {
        let ok = 0
        while (performance.now() < deadline) {
          const commandId = `${stream}/${writer}/${++commandSeq}`
          const exit = await chronicle.runtime.runPromiseExit(
            handler.handle(id, { _tag: "Deposit", amount: 1 }, { metadata: { causationId: commandId } })
          )
          if (exit._tag === "Success") {
            ok++
            succeeded.add(commandId)
          } else chCounters[lib].failed++
        }
        chCounters[lib].ok += ok
        return ok
      })
    }
    const emmettHot = async (deadline: number) => {
      const stream = fresh("hotch-emmett")
      chCounters.emmett.streams.push(stream)
      await emmett.append(stream, 0, [opened])
      return parallel(writers, async () => {
        let ok = 0
        while (performance.now() < deadline) {
          try {
            await emmettHandle(emmett.store, stream, emmettDeposit)
            ok++
          } catch {
            chCounters.emmett.failed++
          }
        }
        chCounters.emmett.ok += ok
        return ok
      })
    }
    const handlers = await interleaved(`hot stream, ${writers} writers: deposits through the command handler`, "commands/s", [
      { name: "chronicle", run: chronicleHot(chronicleAccounts, "chronicle") },
      { name: "uncoalesced", run: chronicleHot(uncoalescedAccounts, "uncoalesced") },
      { name: "emmett", run: emmettHot }
    ])
    const { uncoalesced, ...shown } = handlers.results
    results.push({
      ...handlers,
      results: shown,
      notes: [
        `chronicle with coalesce: false (each command on its own, conflicts retried) ${cell(uncoalesced)} commands/s in the same rounds: coalesced/uncoalesced ${ratio(shown["chronicle"], uncoalesced)}, uncoalesced/Emmett ${ratio(uncoalesced, shown["emmett"])}`
      ]
    })

    // nothing lost
    const chronicleLength = async (s: string) =>
      Number(await chronicle.runtime.runPromise(
        Effect.map(chronicleAccounts.load(StreamId.unsafeParse(s)), (l) => l.version)
      ))
    const emmettLength = async (s: string) => (await emmett.store.readStream(s)).events.length
    const lengths = { chronicle: chronicleLength, uncoalesced: chronicleLength, emmett: emmettLength, raw: raw.length }
    const checks: Array<string> = []
    for (const [lib, c] of hot) {
      let total = 0
      for (const s of c.streams) total += await lengths[lib as keyof typeof lengths](s)
      checks.push(`store-level hot stream ${lib}: ${c.ok} successes + ${c.streams.length} opening events = ${c.ok + c.streams.length}, streams hold ${total}: ${total === c.ok + c.streams.length ? "ok" : "LOST/EXTRA"}`)
    }
    for (const lib of ["chronicle", "uncoalesced", "emmett"] as const) {
      const c = chCounters[lib]
      let total = 0
      for (const s of c.streams) total += await lengths[lib](s)
      checks.push(`command-handler hot stream ${lib}: ${c.ok} successes (${c.failed} failed) + ${c.streams.length} opening events = ${c.ok + c.streams.length}, streams hold ${total}: ${total === c.ok + c.streams.length ? "ok" : "LOST/EXTRA"}`)
    }
    const stored = new Map<string, number>()
    for (const s of [...chCounters.chronicle.streams, ...chCounters.uncoalesced.streams]) {
      const events = await chronicle.runtime.runPromise(Stream.runCollect(EventStore.read(StreamId.unsafeParse(s))))
      for (const event of events) {
        const id = event.metadata?.["causationId"]
        if (typeof id === "string") stored.set(id, (stored.get(id) ?? 0) + 1)
      }
    }
    const twice = [...stored.values()].filter((n) => n > 1).length
    const missing = [...succeeded].filter((id) => stored.get(id) !== 1).length
    const unanswered = [...stored.keys()].filter((id) => !succeeded.has(id)).length
    checks.push(`command-handler hot stream chronicle (both): ${succeeded.size} command ids succeeded, ${stored.size} stored; ${twice} stored twice, ${missing} successes not stored once, ${unanswered} stored but not reported a success: ${twice + missing + unanswered === 0 ? "ok" : "LOST/EXTRA"}`)
    for (const line of checks) log(line)
    const cpu: Record<string, { microsPerAppend: number; wallMillis: number }> = {}
    if (hotOnly) return done(checks, cpu)

    // aggregate cache, PostgreSQL
    log(`seeding ${plan.accounts} accounts of ${plan.accountEvents} events (chronicle, Emmett)`)
    const history = [opened, ...deposits(plan.accountEvents - 1)]
    const cacheAccounts = Array.from({ length: plan.accounts }, (_, i) => `cacheacct-${process.pid}-${i}`)
    for (const name of cacheAccounts) {
      await chronicle.append(name, 0, history)
      await emmett.append(name, 0, history)
    }
    const randomAccount = () => cacheAccounts[Math.floor(Math.random() * cacheAccounts.length)]!
    const chronicleCommands = (handler: typeof chronicleAccounts) => (deadline: number) =>
      parallel(writers, async () => {
        let ok = 0
        while (performance.now() < deadline) {
          await chronicle.runtime.runPromise(handler.handle(StreamId.unsafeParse(randomAccount()), { _tag: "Deposit", amount: 1 }))
          ok++
        }
        return ok
      })
    const emmettCommands = (deadline: number) =>
      parallel(writers, async () => {
        let ok = 0
        while (performance.now() < deadline) {
          await emmettHandle(emmett.store, randomAccount(), emmettDeposit)
          ok++
        }
        return ok
      })
    const statsBefore = await chronicle.runtime.runPromise(AggregateCache.stats)
    const cacheResult = await interleaved(
      `PostgreSQL: ${plan.accounts} accounts of ~${plan.accountEvents} events, deposits on random accounts, ${writers} fibers`,
      "commands/s",
      [
        { name: "chronicle", run: chronicleCommands(chronicleAccounts) },
        { name: "chronicle+cache", run: chronicleCommands(cachedAccounts) },
        { name: "emmett", run: emmettCommands }
      ]
    )
    const statsAfter = await chronicle.runtime.runPromise(AggregateCache.stats)
    const hits = statsAfter.hits - statsBefore.hits
    const misses = statsAfter.misses - statsBefore.misses
    results.push({ ...cacheResult, notes: [`cache hit rate ${((100 * hits) / Math.max(1, hits + misses)).toFixed(1)}% (${hits} hits, ${misses} misses; maxEntries 2,000)`] })

    // aggregate cache, filesystem
    const fsResult = await withTempDirectory("writes", async (directory) => {
      const runtime = ManagedRuntime.make(
        Layer.merge(FileEventStore.layer({ directory }), AggregateCache.layer({ maxEntries: 2_000 })).pipe(Layer.provide(NodeContext.layer))
      )
      try {
        log(`seeding ${plan.accounts} accounts on the filesystem store`)
        for (const name of cacheAccounts) {
          await runtime.runPromise(EventStore.append(StreamId.unsafeParse(name), history as never, { expectedVersion: ExpectedVersion.exact(0) }))
        }
        const fsCommands = (handler: typeof chronicleAccounts) => (deadline: number) =>
          parallel(writers, async () => {
            let ok = 0
            while (performance.now() < deadline) {
              await runtime.runPromise(handler.handle(StreamId.unsafeParse(randomAccount()), { _tag: "Deposit", amount: 1 }))
              ok++
            }
            return ok
          })
        const before = await runtime.runPromise(AggregateCache.stats)
        const r = await interleaved(
          `filesystem: ${plan.accounts} accounts of ~${plan.accountEvents} events, deposits on random accounts, ${writers} fibers`,
          "commands/s",
          [{ name: "chronicle", run: fsCommands(chronicleAccounts) }, { name: "chronicle+cache", run: fsCommands(cachedAccounts) }]
        )
        const after = await runtime.runPromise(AggregateCache.stats)
        const h = after.hits - before.hits
        const m = after.misses - before.misses
        return { ...r, notes: [`cache hit rate ${((100 * h) / Math.max(1, h + m)).toFixed(1)}% (${h} hits, ${m} misses)`] }
      } finally {
        await runtime.dispose()
      }
    })
    results.push(fsResult)

    // client CPU per append
    log(`client CPU: ${plan.cpuAppends} single appends each`)
    for (const w of all) cpu[w.lib] = await cpuPerAppend(w)

    return done(checks, cpu)
  } finally {
    burner?.kill("SIGKILL")
    for (const other of others) await other.close()
    await direct?.close()
    await chronicle.close()
    await emmett.close()
    await raw.close()
    await withAdmin(dropAll)
  }
}

// reporting ---------------------------------------------------------------------

const fmt = (n: number) => n >= 1000 ? Math.round(n).toLocaleString("en-US") : n.toFixed(n < 10 ? 2 : 1)
const cell = (s: Summary | undefined) => s === undefined ? "–" : `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`
const ratio = (a: Summary | undefined, b: Summary | undefined) => a && b ? `${(a.median / b.median).toFixed(2)}x` : "–"
const loads = (l: ReadonlyArray<number>) => l.map((x) => x.toFixed(2)).join(" ")

/** The columns of `--baseline` and `--server`. */
const extra = [
  ...baselines.map((b) => ({ lib: b.name, title: b.name })),
  ...serverOnly ? [{ lib: "chronicle fn", title: "chronicle fn" }] : []
]

const format = (report: Awaited<ReturnType<typeof benchmark>>) => [
  `chronicle vs Emmett vs raw node-postgres, node ${report.node}, ${report.cpus} cpus${report.quick ? " (--quick)" : ""}${
    report.contended ? ", CPU CONTENDED (a busy-loop child process ran alongside)" : ""
  }`,
  `${plan.rounds} interleaved rounds of ${plan.sliceMillis} ms per library; median (min–max) over rounds; load average 1/5/15 min`,
  "",
  table(
    ["workload", "unit", "chronicle", ...extra.map((e) => e.title), "chronicle+cache", "Emmett", "raw pg", "chr/Emmett", "chr/raw", ...extra.map((e) => `${e.title}/raw`), "cache/Emmett", "load before", "load after"],
    report.results.map((r) => [
      r.workload,
      r.unit,
      cell(r.results["chronicle"]),
      ...extra.map((e) => cell(r.results[e.lib])),
      cell(r.results["chronicle+cache"]),
      cell(r.results["emmett"]),
      cell(r.results["raw"]),
      ratio(r.results["chronicle"], r.results["emmett"]),
      ratio(r.results["chronicle"], r.results["raw"]),
      ...extra.map((e) => ratio(r.results[e.lib], r.results["raw"])),
      ratio(r.results["chronicle+cache"], r.results["emmett"]),
      loads(r.loadBefore),
      loads(r.loadAfter)
    ])
  ),
  "",
  ...report.results.flatMap((r) => r.notes.map((n) => `${r.workload}: ${n}`)),
  ...report.checks,
  ...hotOnly || cpuOnly || serverOnly ? [] : [`client CPU per single append (${plan.cpuAppends} appends, 1 writer): ${
    Object.entries(report.cpu).map(([lib, c]) => `${lib} ${c.microsPerAppend.toFixed(0)} µs`).join(", ")
  }`],
  `total ${(report.totalMillis / 1000).toFixed(0)} s${hotOnly || cpuOnly || serverOnly ? "" : "; JSON in bench/results/writes.json"}`
].join("\n")

const main = async () => {
  const report = await benchmark()
  if (hotOnly || cpuOnly || serverOnly) return console.log(format(report))
  await mkdir(fileURLToPath(new URL("./results/", import.meta.url)), { recursive: true })
  await writeFile(resultsFile, JSON.stringify(report, null, 2) + "\n")
  console.log(format(report))
}

if (process.argv.includes(burnerFlag)) {
  for (;;) {
    // a busy loop: contends for a core until killed
  }
} else {
  main().catch((error: unknown) => {
    console.error(error)
    process.exitCode = 1
  })
}
