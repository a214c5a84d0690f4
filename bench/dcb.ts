/**
 * Benchmarks Dynamic Consistency Boundaries: conditional appends under
 * concurrency and reads by query over a large log, on PostgreSQL (chronicle's
 * production store), with the memory and filesystem stores for comparison.
 *
 * 1. Writes, 16 concurrent writers, each workload on a fresh, empty store
 *    (each writer appends 1-event batches to its own stream with
 *    `ExpectedVersion.Any`, as `DecisionHandler` does):
 *    - `decide, disjoint tags`: each writer owns a tag and loops read by
 *      query (the whole tag, from position 0, as `DecisionHandler.load` does)
 *      then appends one event carrying the tag, on the condition that nothing
 *      matching `Query.tagged(tag)` came after the last position it read.
 *      A tag is retired after 100 events (the writer moves on to a fresh one),
 *      so reads stay those of a real entity: 0 to 99 events, ~50 on average.
 *      No other writer touches the tag, so every `AppendConditionFailed` is
 *      counted, and those on the writer's own previous event (committed, but
 *      not yet readable by its query) counted apart. The same again reading
 *      with `queryForDecision` (what `DecisionHandler` reads with: the
 *      condition carries the store's consistency token);
 *    - `append only, disjoint tags`: the same appends without the read; the
 *      condition's `after` is the position of the writer's own previous append;
 *    - `decide, one hot tag`: all 16 writers decide on ONE tag: read, append
 *      on the condition, and on `AppendConditionFailed` read again and retry
 *      at once until it goes through. Successful appends/s, failures per
 *      success, the latency of a whole decision (with its retries) and how
 *      many decisions took more than 6 attempts (`DecisionHandler`'s default
 *      schedule would have given up on them). The hot tag too is retired
 *      after 100 successful appends. With `query`, and with `queryForDecision`;
 *    - for reference, unconditional appends: untagged, tagged with the
 *      writer's own tag, and tagged with its own tag plus one tag shared by
 *      all 16 writers (shared advisory locks on the same key).
 *    Each workload: an untimed warm-up slice, then a timed one (10 s on
 *    PostgreSQL, 3 s on the others; `--quick`: 0.8 s and 0.3 s). On PostgreSQL,
 *    `pg_stat_activity` is sampled every 20 ms during the timed slice: the
 *    mean number of the store's sessions per state and wait event says
 *    where the time goes (queued on a tag's advisory lock, inside a
 *    transaction waiting for the client's next statement, flushing WAL).
 * 2. Reads by query over a seeded log: 1,000,000 events (`--quick`: 100,000),
 *    10,000 courses × 100 events (`--quick`: 1,000 × 100), interleaved over
 *    the log (event i is event i ÷ courses of course i mod courses, so a
 *    course's events are spread over the whole log: the worst case for
 *    locality), 4 types, tagged `course:<n>` (and `student:<m>`, ~94 events
 *    a student), appended in batches of 1,000. Then p50/p95/p99 of `query`
 *    (collected to the end, as a decision reads) for: one course's tag (100
 *    matches; also read by `queryForDecision`), a type + tag item, an OR of a course item and a student item,
 *    a tag no event carries (a new entity), a type-only item with
 *    `limit: 1000` (no index serves types: a scan), and one full read of a
 *    type-only item (events/s). Random courses and students per run; each
 *    series after 10 untimed runs (3 with `--quick`), and cut short after
 *    10 s (0.5 s) once it has 10 runs.
 * 3. What the condition check costs on that log, one writer, one append at a
 *    time: unconditional appends (untagged; tagged with a 100-event course),
 *    conditional appends on a course with 100 events (`after` = the course's
 *    last position, read untimed beforehand, 50 courses per query), and
 *    conditional appends on a fresh tag (`after` = 0: the first decision of
 *    a new entity).
 * 4. On PostgreSQL only: `decide, disjoint tags` again over the seeded log
 *    (with `query`, and with `queryForDecision`).
 *
 * PostgreSQL lives in the schema `bench_dcb`, dropped at the start and,
 * unless `--keep` (to run EXPLAIN against it afterwards), at the end; it is
 * VACUUM ANALYZEd after seeding. The filesystem store lives in temporary
 * directories (fsync on, its default, for the writes; off for seeding),
 * deleted afterwards.
 *
 * Run: npm run bench:dcb                     (a table, and bench/results/dcb.json; ~7 minutes)
 *      npx tsx bench/dcb.ts --quick          (~30 s smoke run: 100,000 events, short slices)
 *      npx tsx bench/dcb.ts --json           (the JSON on stdout instead of the table)
 *      npx tsx bench/dcb.ts --only=postgres  (one store: memory, filesystem or postgres)
 *      npx tsx bench/dcb.ts --keep           (leave the schema bench_dcb behind, for EXPLAIN)
 *
 * DATABASE_URL overrides postgres://postgres@127.0.0.1:5432/test. The benchmark
 * drops a schema, so it refuses any host but the loopback.
 */
import { mkdir, writeFile } from "node:fs/promises"
import os from "node:os"
import { fileURLToPath } from "node:url"
import { NodeContext } from "@effect/platform-node"
import { Chunk, Effect, Either, Layer, ManagedRuntime, Stream } from "effect"
import pg from "pg"
import { EventStore, ExpectedVersion, FileEventStore, MemoryEventStore, Query, StreamId } from "chronicle"
import { PostgresEventStore } from "chronicle/postgres"
import type { Event } from "chronicle"
import {
  assertLoopback,
  databaseUrl,
  decimal,
  integer,
  percentile,
  perSecond,
  progressLog,
  table,
  timed,
  timedPromise,
  withAdmin,
  withTempDirectory
} from "./support.js"

// settings ----------------------------------------------------------------------

const argv = process.argv.slice(2)
const quick = argv.includes("--quick")
const asJson = argv.includes("--json")
const keep = argv.includes("--keep")
const only = argv.find((arg) => arg.startsWith("--only="))?.slice("--only=".length)

const pgSchema = "bench_dcb"
const writers = 16
/** The writers' connections, and a few for the notifier and the reads. */
const maxConnections = 20
const resultsFile = fileURLToPath(new URL("./results/dcb.json", import.meta.url))

/** Events a tag carries before its writer(s) move on to a fresh one. */
const eventsPerTag = 100
const courses = quick ? 1_000 : 10_000
const eventsPerCourse = 100
const seedEventCount = courses * eventsPerCourse
/** As many students as courses: each gets ~94 events (those of the student types). */
const students = courses
const seedBatchSize = 1_000
/** A decision gives up (the bench dies) after this many failed conditions in a row. */
const maxAttempts = 10_000

type StoreName = "memory" | "filesystem" | "postgres"

/** Per store: the write slices and how many times each read and append is measured. */
const plans: Record<StoreName, { warmupMillis: number; sliceMillis: number; queryRuns: number; scanRuns: number; checkAppends: number }> = quick
  ? {
    postgres: { warmupMillis: 150, sliceMillis: 800, queryRuns: 40, scanRuns: 10, checkAppends: 40 },
    memory: { warmupMillis: 100, sliceMillis: 300, queryRuns: 20, scanRuns: 5, checkAppends: 20 },
    filesystem: { warmupMillis: 100, sliceMillis: 300, queryRuns: 20, scanRuns: 5, checkAppends: 20 }
  }
  : {
    postgres: { warmupMillis: 1_000, sliceMillis: 10_000, queryRuns: 300, scanRuns: 30, checkAppends: 300 },
    memory: { warmupMillis: 500, sliceMillis: 3_000, queryRuns: 100, scanRuns: 20, checkAppends: 100 },
    filesystem: { warmupMillis: 500, sliceMillis: 3_000, queryRuns: 100, scanRuns: 20, checkAppends: 100 }
  }
/** Untimed runs before each measured series. */
const warmupRuns = quick ? 3 : 10
/** A measured series of reads or appends stops early after this long (but not before `minimumRuns`). */
const seriesBudgetMillis = quick ? 500 : 10_000
const minimumRuns = 10

/** Whether a series begun at `started` with `done` runs out of `planned` goes on. */
const goesOn = (started: number, done: number, planned: number) =>
  done < planned && (done < minimumRuns || performance.now() - started < seriesBudgetMillis)

const log = progressLog(asJson)

// measuring ---------------------------------------------------------------------

interface Latency {
  readonly count: number
  readonly p50: number
  readonly p95: number
  readonly p99: number
  readonly max: number
}

const latencyOf = (millis: ReadonlyArray<number>): Latency => {
  const sorted = [...millis].sort((a, b) => a - b)
  return sorted.length === 0
    ? { count: 0, p50: Number.NaN, p95: Number.NaN, p99: Number.NaN, max: Number.NaN }
    : {
      count: sorted.length,
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
      p99: percentile(sorted, 99),
      max: sorted.at(-1)!
    }
}

const random = (below: number) => Math.floor(Math.random() * below)

// the model: courses and students ---------------------------------------------------

const courseTag = (course: number) => `course:${course}`
const studentTag = (student: number) => `student:${student}`

const subscriptionTypes = ["StudentSubscribed", "StudentUnsubscribed"] as const
const courseTypes = ["CourseDefined", "CourseCapacityChanged", ...subscriptionTypes] as const

/** The `i`-th seeded event: event `i ÷ courses` of course `i mod courses`. */
const seedEvent = (i: number): Event.NewEvent => {
  const course = i % courses
  const seq = Math.floor(i / courses)
  // 7919 is prime: a course's 100 events go to 100 students, and each student gets one event per seq
  const student = (course + seq * 7919) % students
  const phase = (seq + course) % 20
  if (seq === 0) return { type: "CourseDefined", data: { courseId: course, capacity: 30 }, tags: [courseTag(course)] }
  if (phase === 10) return { type: "CourseCapacityChanged", data: { courseId: course, capacity: 30 + seq }, tags: [courseTag(course)] }
  return {
    type: phase % 5 === 4 ? "StudentUnsubscribed" : "StudentSubscribed",
    data: { courseId: course, studentId: student },
    tags: [courseTag(course), studentTag(student)]
  }
}

/** One subscription event a writer decides on `tag`. */
const decided = (tag: string, writer: number): Event.NewEvent => ({
  type: "StudentSubscribed",
  data: { courseId: tag, studentId: writer },
  tags: [tag]
})

/** Reads every event matching `query` (as a decision does): how many, and the last one's position. */
const readAll = (query: Query.Query) =>
  Effect.gen(function*() {
    let count = 0
    let position = 0n
    yield* EventStore.query(query).pipe(
      Stream.runForEachChunk((chunk) =>
        Effect.sync(() => {
          count += chunk.length
          const last = Chunk.last(chunk)
          if (last._tag === "Some") position = last.value.globalPosition
        })
      )
    )
    return { count, position }
  })

/** Reads at most `limit` events matching `query`: how many. */
const readSome = (query: Query.Query, limit: number) => Stream.runCount(EventStore.query(query, { limit }))

const appendOne = (streamId: StreamId.StreamId, event: Event.NewEvent, condition?: EventStore.AppendCondition) =>
  EventStore.append(streamId, [event], condition === undefined
    ? { expectedVersion: ExpectedVersion.Any }
    : { expectedVersion: ExpectedVersion.Any, condition })

// write workloads -----------------------------------------------------------------

/** What one writer saw during a slice. */
interface WriterLog {
  successes: number
  conditionFailures: number
  /** Failures on the writer's own previous event: committed, but not yet readable by its query. */
  ownEventFailures: number
  readonly appendMillis: Array<number>
  readonly readMillis: Array<number>
  readonly decisionMillis: Array<number>
  readonly attempts: Array<number>
}

const newWriterLog = (): WriterLog => ({
  successes: 0,
  conditionFailures: 0,
  ownEventFailures: 0,
  appendMillis: [],
  readMillis: [],
  decisionMillis: [],
  attempts: []
})

/** What the writers of one slice share: the hot tag's generation and its successes. */
interface Shared {
  generation: number
  successes: number
}

type WriterLoop = (
  prefix: string,
  writer: number,
  deadline: number,
  shared: Shared,
  out: WriterLog
) => Effect.Effect<void, EventStore.AppendError, EventStore.EventStore>

interface WriteWorkload {
  readonly key: string
  readonly label: string
  readonly conditional: boolean
  readonly writer: WriterLoop
}

const writerStream = (prefix: string, writer: number) => StreamId.unsafeMake("dcb", `${prefix}-w${writer}`)

const isConditionFailure = (error: EventStore.AppendError): error is EventStore.AppendConditionFailed =>
  error._tag === "AppendConditionFailed"

/** How a decision reads its query: how many events matched, and the condition to append on. */
type DecisionReader = (
  query: Query.Query
) => Effect.Effect<{ readonly count: number; readonly condition: EventStore.AppendCondition }, EventStore.ReadError, EventStore.EventStore>

/** `EventStore.query` to the end; the condition's `after` is the last event's position. */
const viaQuery: DecisionReader = (query) =>
  Effect.map(readAll(query), (read) => ({ count: read.count, condition: { failIfEventsMatch: query, after: read.position } }))

/** `queryForDecision` (what `DecisionHandler` reads with): the condition carries the store's consistency token. */
const viaQueryForDecision: DecisionReader = (query) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    Effect.map(store.queryForDecision(query), (read) => ({ count: read.events.length, condition: read.condition })))

/** Read the writer's tag, append on the condition; a fresh tag every `eventsPerTag` events. */
const decideDisjoint = (reader: DecisionReader): WriterLoop => (prefix, writer, deadline, _shared, out) =>
  Effect.gen(function*() {
    const streamId = writerStream(prefix, writer)
    let generation = 0
    let lastOwn = -1n
    while (performance.now() < deadline) {
      const tag = `course:${prefix}-w${writer}-${generation}`
      const query = Query.tagged(tag)
      const start = performance.now()
      const read = yield* reader(query)
      const readDone = performance.now()
      const result = yield* Effect.either(appendOne(streamId, decided(tag, writer), read.condition))
      const done = performance.now()
      if (Either.isLeft(result)) {
        if (!isConditionFailure(result.left)) return yield* result.left
        out.conditionFailures++
        if (result.left.position === lastOwn) out.ownEventFailures++
        continue
      }
      lastOwn = result.right.globalPositions[0]!
      out.successes++
      out.readMillis.push(readDone - start)
      out.appendMillis.push(done - readDone)
      out.decisionMillis.push(done - start)
      if (read.count + 1 >= eventsPerTag) generation++
    }
  })

/** Conditional appends without reads: `after` is the writer's own previous append. */
const appendDisjoint: WriterLoop = (prefix, writer, deadline, _shared, out) =>
  Effect.gen(function*() {
    const streamId = writerStream(prefix, writer)
    const tag = `course:${prefix}-w${writer}`
    const query = Query.tagged(tag)
    let after = 0n
    while (performance.now() < deadline) {
      const start = performance.now()
      const result = yield* Effect.either(appendOne(streamId, decided(tag, writer), { failIfEventsMatch: query, after }))
      const done = performance.now()
      if (Either.isLeft(result)) {
        if (!isConditionFailure(result.left)) return yield* result.left
        out.conditionFailures++
        after = result.left.position
        continue
      }
      out.successes++
      out.appendMillis.push(done - start)
      after = result.right.globalPositions[0]!
    }
  })

/** All writers decide on one tag; a failed condition means read again and retry at once. */
const decideHot = (reader: DecisionReader): WriterLoop => (prefix, writer, deadline, shared, out) =>
  Effect.gen(function*() {
    const streamId = writerStream(prefix, writer)
    while (performance.now() < deadline) {
      const start = performance.now()
      for (let attempt = 1;; attempt++) {
        const tag = `course:${prefix}-hot-${shared.generation}`
        const query = Query.tagged(tag)
        const readStart = performance.now()
        const read = yield* reader(query)
        const readDone = performance.now()
        out.readMillis.push(readDone - readStart)
        const result = yield* Effect.either(appendOne(streamId, decided(tag, writer), read.condition))
        const done = performance.now()
        out.appendMillis.push(done - readDone)
        if (Either.isRight(result)) {
          out.successes++
          out.decisionMillis.push(done - start)
          out.attempts.push(attempt)
          shared.successes++
          if (shared.successes % eventsPerTag === 0) shared.generation++
          break
        }
        if (!isConditionFailure(result.left)) return yield* result.left
        out.conditionFailures++
        if (attempt >= maxAttempts) return yield* Effect.dieMessage(`writer ${writer} failed ${attempt} conditions in a row`)
      }
    }
  })

/** Unconditional appends, tagged with `tagsOf(prefix, writer)`. */
const appendPlain = (tagsOf: (prefix: string, writer: number) => ReadonlyArray<string>): WriterLoop =>
(prefix, writer, deadline, _shared, out) =>
  Effect.gen(function*() {
    const streamId = writerStream(prefix, writer)
    const tags = tagsOf(prefix, writer)
    const event: Event.NewEvent = { type: "StudentSubscribed", data: { courseId: prefix, studentId: writer }, tags }
    while (performance.now() < deadline) {
      const start = performance.now()
      yield* appendOne(streamId, event)
      out.appendMillis.push(performance.now() - start)
      out.successes++
    }
  })

const writeWorkloads: ReadonlyArray<WriteWorkload> = [
  {
    key: "decide-disjoint",
    label: "decide (query + conditional append), disjoint tags",
    conditional: true,
    writer: decideDisjoint(viaQuery)
  },
  {
    key: "decide-disjoint-qfd",
    label: "decide (queryForDecision + append), disjoint tags",
    conditional: true,
    writer: decideDisjoint(viaQueryForDecision)
  },
  { key: "append-disjoint", label: "conditional append only, disjoint tags", conditional: true, writer: appendDisjoint },
  { key: "decide-hot", label: "decide (query), ONE hot tag, retry on failure", conditional: true, writer: decideHot(viaQuery) },
  {
    key: "decide-hot-qfd",
    label: "decide (queryForDecision), ONE hot tag, retry",
    conditional: true,
    writer: decideHot(viaQueryForDecision)
  },
  { key: "plain-untagged", label: "unconditional append, untagged", conditional: false, writer: appendPlain(() => []) },
  {
    key: "plain-tagged",
    label: "unconditional append, own tag",
    conditional: false,
    writer: appendPlain((prefix, writer) => [`course:${prefix}-w${writer}`])
  },
  {
    key: "plain-tagged-shared",
    label: "unconditional append, own tag + 1 shared",
    conditional: false,
    writer: appendPlain((prefix, writer) => [`course:${prefix}-w${writer}`, `tenant:${prefix}`])
  }
]

interface WriteResult {
  readonly store: StoreName
  readonly workload: string
  readonly label: string
  readonly onSeededLog: boolean
  readonly writers: number
  readonly millis: number
  /** Successful appends. */
  readonly appends: number
  readonly appendsPerSecond: number
  readonly conditionFailures: number
  /** Of those, failures on the writer's own previous event (committed, not yet readable by its query). */
  readonly ownEventFailures: number
  readonly failuresPerSuccess: number
  /** Every append attempt, successful or not. */
  readonly append: Latency
  /** Reads by query (every attempt's). */
  readonly read: Latency | null
  /** Read + append of a successful decision, retries included. */
  readonly decision: Latency | null
  /** Attempts per successful decision (the hot tag). */
  readonly attempts: Latency | null
  /** Decisions that took more than 6 attempts: `DecisionHandler`'s default schedule (5 retries) would have given up. */
  readonly decisionsOverSixAttempts: number
  /** PostgreSQL: what the store's sessions were doing during the timed slice. */
  readonly sessions: SessionSample | null
}

type StoreRuntime = ManagedRuntime.ManagedRuntime<EventStore.EventStore, EventStore.StoreError>

let slices = 0

const writeSlice = (runtime: StoreRuntime, workload: WriteWorkload, millis: number) =>
  runtime.runPromise(Effect.gen(function*() {
    const prefix = `${workload.key}-${++slices}`
    const shared: Shared = { generation: 0, successes: 0 }
    const logs = Array.from({ length: writers }, newWriterLog)
    const start = performance.now()
    const deadline = start + millis
    yield* Effect.forEach(logs, (out, writer) => workload.writer(prefix, writer, deadline, shared, out), {
      concurrency: "unbounded",
      discard: true
    })
    return { logs, millis: performance.now() - start }
  }).pipe(Effect.orDie))

/** Runs one write workload on `runtime`: a warm-up slice, then the timed one (PostgreSQL: sampling its sessions). */
const measureWrites = async (
  store: StoreName,
  runtime: StoreRuntime,
  workload: WriteWorkload,
  onSeededLog: boolean
): Promise<WriteResult> => {
  const plan = plans[store]
  log(`${store}: ${workload.label}${onSeededLog ? ", over the seeded log" : ""} (${writers} writers, ${plan.sliceMillis / 1000} s)`)
  await writeSlice(runtime, workload, plan.warmupMillis)
  const sampler = store === "postgres" ? await startSessionSampler() : undefined
  const { logs, millis } = await writeSlice(runtime, workload, plan.sliceMillis).finally(() => sampler?.stop())
  const sessions = sampler === undefined ? null : await sampler.stop()
  const appends = logs.reduce((sum, l) => sum + l.successes, 0)
  const conditionFailures = logs.reduce((sum, l) => sum + l.conditionFailures, 0)
  const all = (pick: (l: WriterLog) => ReadonlyArray<number>) => logs.flatMap(pick)
  const read = all((l) => l.readMillis)
  const decision = all((l) => l.decisionMillis)
  const attempts = all((l) => l.attempts)
  return {
    store,
    workload: workload.key,
    label: workload.label,
    onSeededLog,
    writers,
    millis,
    appends,
    appendsPerSecond: perSecond(appends, millis),
    conditionFailures,
    ownEventFailures: logs.reduce((sum, l) => sum + l.ownEventFailures, 0),
    failuresPerSuccess: appends === 0 ? Number.NaN : conditionFailures / appends,
    append: latencyOf(all((l) => l.appendMillis)),
    read: read.length === 0 ? null : latencyOf(read),
    decision: decision.length === 0 ? null : latencyOf(decision),
    attempts: attempts.length === 0 ? null : latencyOf(attempts),
    decisionsOverSixAttempts: attempts.filter((n) => n > 6).length,
    sessions
  }
}

/** Each workload on a fresh, empty store, so that no workload reads what an earlier one wrote. */
const writeStage = async (store: StoreUnderTest): Promise<Array<WriteResult>> => {
  const results: Array<WriteResult> = []
  for (const workload of writeWorkloads) {
    results.push(await store.use("writes", (runtime) => measureWrites(store.name, runtime, workload, false)))
  }
  return results
}

// PostgreSQL sessions -------------------------------------------------------------

const applicationName = "chronicle-bench-dcb"
const sessionSampleMillis = 20

/**
 * What the store's sessions were doing, sampled from `pg_stat_activity`:
 * the mean number of sessions per state and wait event (`active CPU`: running;
 * `idle in transaction Client:ClientRead`: inside a transaction, waiting for
 * the client's next statement; `active Lock:advisory`: queued for a tag's lock).
 */
interface SessionSample {
  readonly samples: number
  readonly meanSessions: Readonly<Record<string, number>>
}

const startSessionSampler = async () => {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  const counts = new Map<string, number>()
  let samples = 0
  let running = true
  const loop = (async () => {
    while (running) {
      const { rows } = await client.query<{ what: string; n: number }>(
        `SELECT state || ' ' || coalesce(wait_event_type || ':' || wait_event, 'CPU') AS what, count(*)::int AS n
         FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle' GROUP BY 1`,
        [applicationName]
      )
      samples++
      for (const row of rows) counts.set(row.what, (counts.get(row.what) ?? 0) + row.n)
      await new Promise((resolve) => setTimeout(resolve, sessionSampleMillis))
    }
  })()
  let result: SessionSample | undefined
  const stop = async (): Promise<SessionSample> => {
    if (result === undefined) {
      running = false
      await loop
      await client.end()
      const sorted = [...counts].sort((a, b) => b[1] - a[1])
      result = { samples, meanSessions: Object.fromEntries(sorted.map(([what, n]) => [what, n / Math.max(1, samples)])) }
    }
    return result
  }
  return { stop }
}

// seeding -------------------------------------------------------------------------

interface SeedResult {
  readonly store: StoreName
  readonly events: number
  readonly millis: number
  readonly eventsPerSecond: number
}

const seed = (store: StoreName) =>
  timed(Effect.gen(function*() {
    for (let batch = 0; batch * seedBatchSize < seedEventCount; batch++) {
      const first = batch * seedBatchSize
      const size = Math.min(seedBatchSize, seedEventCount - first)
      const events = Array.from({ length: size }, (_, k) => seedEvent(first + k))
      yield* EventStore.append(StreamId.unsafeMake("seed", String(batch)), events, { expectedVersion: ExpectedVersion.NoStream })
      if (batch % 100 === 99) log(`${store}: seeded ${integer(first + size)} events`)
    }
  }))

// reads by query --------------------------------------------------------------------

interface QueryWorkload {
  readonly key: string
  readonly label: string
  /** A fresh query per run. */
  readonly query: () => Query.Query
  readonly limit?: number
  /** Read with `queryForDecision` rather than `query`. */
  readonly decision?: boolean
  readonly scan: boolean
}

const queryWorkloads: ReadonlyArray<QueryWorkload> = [
  {
    key: "tag",
    label: "one course's tag",
    query: () => Query.tagged(courseTag(random(courses))),
    scan: false
  },
  {
    key: "tag+type",
    label: "type StudentSubscribed + course tag",
    query: () => Query.make(Query.item(["StudentSubscribed"], [courseTag(random(courses))])),
    scan: false
  },
  {
    key: "or",
    label: "course item OR student item",
    query: () =>
      Query.or(
        Query.make(Query.item(courseTypes, [courseTag(random(courses))])),
        Query.make(Query.item(subscriptionTypes, [studentTag(random(students))]))
      ),
    scan: false
  },
  {
    key: "tag-qfd",
    label: "one course's tag, by queryForDecision",
    query: () => Query.tagged(courseTag(random(courses))),
    decision: true,
    scan: false
  },
  {
    key: "absent-tag",
    label: "a tag no event carries",
    query: () => Query.tagged(`course:new-${random(1_000_000_000)}`),
    scan: false
  },
  {
    key: "type-limit",
    label: "type CourseCapacityChanged (5%), limit 1,000",
    query: () => Query.make(Query.item(["CourseCapacityChanged"])),
    limit: 1_000,
    scan: true
  }
]

interface QueryResult {
  readonly store: StoreName
  readonly query: string
  readonly label: string
  readonly limit: number | null
  /** Events returned, on average over the runs. */
  readonly meanMatches: number
  readonly latency: Latency
}

interface ScanResult {
  readonly store: StoreName
  readonly label: string
  readonly matches: number
  readonly millis: number
  readonly matchesPerSecond: number
  /** The seeded log's events gone through per second. */
  readonly logEventsPerSecond: number
}

const measureQuery = (store: StoreName, workload: QueryWorkload) =>
  Effect.gen(function*() {
    const runs = workload.scan ? plans[store].scanRuns : plans[store].queryRuns
    const once = () =>
      workload.decision === true
        ? Effect.map(viaQueryForDecision(workload.query()), (read) => read.count)
        : workload.limit === undefined
        ? Effect.map(readAll(workload.query()), (read) => read.count)
        : readSome(workload.query(), workload.limit)
    for (let run = 0; run < warmupRuns; run++) yield* once()
    const millis: Array<number> = []
    let matches = 0
    const started = performance.now()
    while (goesOn(started, millis.length, runs)) {
      const { value, millis: elapsed } = yield* timed(once())
      millis.push(elapsed)
      matches += value
    }
    const result: QueryResult = {
      store,
      query: workload.key,
      label: workload.label,
      limit: workload.limit ?? null,
      meanMatches: matches / millis.length,
      latency: latencyOf(millis)
    }
    return result
  })

const fullScan = (store: StoreName) =>
  Effect.gen(function*() {
    const label = "type CourseCapacityChanged (5%), every match"
    const { value: read, millis } = yield* timed(readAll(Query.make(Query.item(["CourseCapacityChanged"]))))
    const result: ScanResult = {
      store,
      label,
      matches: read.count,
      millis,
      matchesPerSecond: perSecond(read.count, millis),
      logEventsPerSecond: perSecond(seedEventCount, millis)
    }
    return result
  })

// the condition check's cost ---------------------------------------------------------

interface CheckResult {
  readonly store: StoreName
  readonly kind: string
  readonly label: string
  readonly latency: Latency
}

/** `count` distinct courses, at random. */
const distinctCourses = (count: number) => {
  const picked = new Set<number>()
  while (picked.size < Math.min(count, courses)) picked.add(random(courses))
  return [...picked]
}

/** The tags of `courses` with the position of each one's last event, read 50 courses per query. */
const lastPositionsOf = (picked: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    const last = new Map<string, bigint>()
    for (let i = 0; i < picked.length; i += 50) {
      const tags = picked.slice(i, i + 50).map(courseTag)
      const wanted = new Set(tags)
      yield* EventStore.query(Query.or(...tags.map((tag) => Query.tagged(tag)))).pipe(
        Stream.runForEach((event) =>
          Effect.sync(() => {
            for (const tag of event.tags) if (wanted.has(tag)) last.set(tag, event.globalPosition)
          })
        )
      )
    }
    return picked.map(courseTag).map((tag) => ({ tag, position: last.get(tag) ?? 0n }))
  })

/** One writer, one append at a time, on seeded courses (random) or fresh tags. */
const measureChecks = (store: StoreName) =>
  Effect.gen(function*() {
    const appends = plans[store].checkAppends
    const streamId = StreamId.unsafeMake("dcb", `check-${store}`)
    // the courses' last positions, read (untimed) at the first warm-up run, so that no slow read runs just before a timed append
    let hundredEventCourses: ReadonlyArray<{ readonly tag: string; readonly position: bigint }> | undefined
    let used = 0
    const kinds: ReadonlyArray<{
      readonly kind: string
      readonly label: string
      readonly once: (run: number) => Effect.Effect<number, EventStore.AppendError, EventStore.EventStore>
    }> = [
      {
        kind: "untagged",
        label: "unconditional, untagged",
        once: () => Effect.map(timed(appendOne(streamId, { type: "StudentSubscribed", data: { courseId: "none" } })), (t) => t.millis)
      },
      {
        kind: "unconditional",
        label: "unconditional, tagged with a 100-event course",
        once: () => {
          const tag = courseTag(random(courses))
          return Effect.map(timed(appendOne(streamId, decided(tag, 0))), (t) => t.millis)
        }
      },
      {
        kind: "condition-100",
        label: "condition on a 100-event course, after its last event",
        once: () =>
          Effect.gen(function*() {
            hundredEventCourses ??= yield* lastPositionsOf(distinctCourses(warmupRuns + appends))
            const next = hundredEventCourses[used++]
            if (next === undefined) return yield* Effect.dieMessage("ran out of courses read for the condition check")
            const query = Query.tagged(next.tag)
            const { millis } = yield* timed(appendOne(streamId, decided(next.tag, 0), { failIfEventsMatch: query, after: next.position }))
            return millis
          })
      },
      {
        kind: "condition-fresh",
        label: "condition on a fresh tag, after 0",
        once: (run) => {
          const tag = `course:fresh-${store}-${run}-${random(1_000_000_000)}`
          return Effect.map(
            timed(appendOne(streamId, decided(tag, 0), { failIfEventsMatch: Query.tagged(tag), after: 0n })),
            (t) => t.millis
          )
        }
      }
    ]
    const results: Array<CheckResult> = []
    for (const { kind, label, once } of kinds) {
      for (let run = 0; run < warmupRuns; run++) yield* once(-1 - run)
      const millis: Array<number> = []
      const started = performance.now()
      while (goesOn(started, millis.length, appends)) millis.push(yield* once(millis.length))
      results.push({ store, kind, label, latency: latencyOf(millis) })
    }
    return results
  })

// the stores --------------------------------------------------------------------

interface StoreUnderTest {
  readonly name: StoreName
  readonly where: string
  /** A fresh, empty store for the writes; a seeding-friendly one for the reads (filesystem: fsync off). */
  readonly use: <A>(purpose: "writes" | "reads", run: (runtime: StoreRuntime) => Promise<A>) => Promise<A>
}

const withRuntime = async <A>(layer: Layer.Layer<EventStore.EventStore, EventStore.StoreError>, run: (runtime: StoreRuntime) => Promise<A>) => {
  const runtime: StoreRuntime = ManagedRuntime.make(layer)
  try {
    await runtime.runPromise(Effect.void) // builds the store: opens, connects, migrates
    return await run(runtime)
  } finally {
    await runtime.dispose()
  }
}

const dropSchema = () => withAdmin((client) => client.query(`DROP SCHEMA IF EXISTS ${pgSchema} CASCADE`))

const memoryStore: StoreUnderTest = {
  name: "memory",
  where: "in process",
  use: (_purpose, run) => withRuntime(MemoryEventStore.layer(), run)
}

const filesystemStore: StoreUnderTest = {
  name: "filesystem",
  where: os.tmpdir(),
  use: (purpose, run) =>
    withTempDirectory(`dcb-${purpose}`, (directory) =>
      withRuntime(
        FileEventStore.layer({ directory, fsync: purpose === "writes" }).pipe(Layer.provide(NodeContext.layer)),
        run
      ))
}

const postgresStore: StoreUnderTest = {
  name: "postgres",
  where: `schema ${pgSchema}`,
  use: async (_purpose, run) => {
    await dropSchema()
    try {
      return await withRuntime(PostgresEventStore.layerFromUrl({ url: databaseUrl, schema: pgSchema, maxConnections, applicationName }), run)
    } finally {
      if (!keep) await dropSchema()
    }
  }
}

const vacuumAnalyze = () => withAdmin((client) => client.query(`VACUUM ANALYZE ${pgSchema}.events`))

const pgTableSize = () =>
  withAdmin(async (client) => {
    const { rows } = await client.query<{ table: string; index: string }>(
      `SELECT pg_size_pretty(pg_table_size('${pgSchema}.events')) AS table,
              pg_size_pretty(pg_indexes_size('${pgSchema}.events')) AS index`
    )
    return rows[0]!
  })

// the run for one store ---------------------------------------------------------------

interface StoreReport {
  readonly store: StoreName
  readonly where: string
  readonly writes: ReadonlyArray<WriteResult>
  readonly seed: SeedResult
  readonly queries: ReadonlyArray<QueryResult>
  readonly scan: ScanResult
  readonly checks: ReadonlyArray<CheckResult>
  readonly size: { readonly table: string; readonly index: string } | null
}

const runStore = async (store: StoreUnderTest): Promise<StoreReport> => {
  const writes = await writeStage(store)
  const rest = await store.use("reads", async (runtime) => {
    log(`${store.name}: seeding ${integer(seedEventCount)} events (${integer(courses)} courses × ${eventsPerCourse}), appends of ${integer(seedBatchSize)}`)
    const seeded = await runtime.runPromise(seed(store.name))
    const seedResult: SeedResult = {
      store: store.name,
      events: seedEventCount,
      millis: seeded.millis,
      eventsPerSecond: perSecond(seedEventCount, seeded.millis)
    }
    log(`${store.name}: seeded in ${(seeded.millis / 1000).toFixed(1)} s`)
    let size: StoreReport["size"] = null
    if (store.name === "postgres") {
      const { millis } = await timedPromise(vacuumAnalyze)
      log(`postgres: VACUUM ANALYZE in ${(millis / 1000).toFixed(1)} s`)
      size = await pgTableSize()
    }
    const queries: Array<QueryResult> = []
    for (const workload of queryWorkloads) {
      log(`${store.name}: query ${workload.label}`)
      queries.push(await runtime.runPromise(measureQuery(store.name, workload)))
    }
    log(`${store.name}: a full type-only read`)
    const scan = await runtime.runPromise(fullScan(store.name))
    log(`${store.name}: the condition check's cost`)
    const checks = await runtime.runPromise(measureChecks(store.name))
    const seededWrites: Array<WriteResult> = []
    if (store.name === "postgres") {
      for (const workload of writeWorkloads.filter((w) => w.key === "decide-disjoint" || w.key === "decide-disjoint-qfd")) {
        seededWrites.push(await measureWrites(store.name, runtime, workload, true))
      }
    }
    return { seed: seedResult, size, queries, scan, checks, seededWrites }
  })
  return {
    store: store.name,
    where: store.where,
    writes: [...writes, ...rest.seededWrites],
    seed: rest.seed,
    queries: rest.queries,
    scan: rest.scan,
    checks: rest.checks,
    size: rest.size
  }
}

// reporting ---------------------------------------------------------------------

interface Report {
  readonly node: string
  readonly cpus: number
  readonly postgres: string | null
  readonly quick: boolean
  readonly settings: {
    readonly writers: number
    readonly maxConnections: number
    readonly eventsPerTag: number
    readonly seedEventCount: number
    readonly courses: number
    readonly students: number
    readonly seedBatchSize: number
    readonly plans: typeof plans
    readonly warmupRuns: number
    readonly seriesBudgetMillis: number
  }
  readonly stores: ReadonlyArray<StoreReport>
  readonly totalMillis: number
}

const ms = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? "" : decimal(n))

const writesTable = (stores: ReadonlyArray<StoreReport>) =>
  table(
    [
      "store",
      "workload (16 writers)",
      "appends/s",
      "cond. failed",
      "on own event",
      "failed/success",
      "append p50",
      "p99",
      "read p50",
      "p99",
      "decision p50",
      "p99",
      "max attempts"
    ],
    stores.flatMap((s) =>
      s.writes.map((w) => [
        s.store,
        `${w.label}${w.onSeededLog ? `, over ${integer(seedEventCount)} events` : ""}`,
        integer(w.appendsPerSecond),
        w.workload.startsWith("plain") ? "-" : integer(w.conditionFailures),
        w.workload.startsWith("plain") ? "-" : integer(w.ownEventFailures),
        w.workload.startsWith("plain") ? "-" : decimal(w.failuresPerSuccess),
        ms(w.append.p50),
        ms(w.append.p99),
        ms(w.read?.p50),
        ms(w.read?.p99),
        ms(w.decision?.p50),
        ms(w.decision?.p99),
        w.attempts === null ? "" : `${integer(w.attempts.max)} (${integer(w.decisionsOverSixAttempts)} > 6)`
      ])
    )
  )

/** PostgreSQL: the mean number of the store's sessions per state and wait event, the top ones. */
const sessionsTable = (stores: ReadonlyArray<StoreReport>) =>
  table(
    ["workload (postgres)", "mean sessions: state and wait event (sampled every 20 ms)"],
    stores.flatMap((s) =>
      s.writes.flatMap((w) =>
        w.sessions === null ? [] : [[
          `${w.workload}${w.onSeededLog ? " (seeded)" : ""}`,
          Object.entries(w.sessions.meanSessions)
            .filter(([, n]) => n >= 0.05)
            .slice(0, 5)
            .map(([what, n]) => `${what} ${n.toFixed(1)}`)
            .join("; ")
        ]]
      )
    )
  )

const queriesTable = (stores: ReadonlyArray<StoreReport>) =>
  table(
    ["store", `query over ${integer(seedEventCount)} events`, "matches", "runs", "p50 ms", "p95 ms", "p99 ms"],
    stores.flatMap((s) => [
      ...s.queries.map((q) => [
        s.store,
        q.label,
        decimal(q.meanMatches),
        String(q.latency.count),
        ms(q.latency.p50),
        ms(q.latency.p95),
        ms(q.latency.p99)
      ]),
      [
        s.store,
        `${s.scan.label}: ${integer(s.scan.logEventsPerSecond)} log events/s`,
        integer(s.scan.matches),
        "1",
        ms(s.scan.millis),
        "",
        ""
      ]
    ])
  )

const checksTable = (stores: ReadonlyArray<StoreReport>) =>
  table(
    ["store", "one append at a time (1 writer)", "appends", "p50 ms", "p95 ms", "p99 ms"],
    stores.flatMap((s) =>
      s.checks.map((c) => [s.store, c.label, String(c.latency.count), ms(c.latency.p50), ms(c.latency.p95), ms(c.latency.p99)])
    )
  )

const seedTable = (stores: ReadonlyArray<StoreReport>) =>
  table(
    ["store", "seed", "seconds", "events/s", "table + indexes"],
    stores.map((s) => [
      s.store,
      `${integer(s.seed.events)} events, appends of ${integer(seedBatchSize)}`,
      decimal(s.seed.millis / 1000),
      integer(s.seed.eventsPerSecond),
      s.size === null ? "" : `${s.size.table} + ${s.size.index}`
    ])
  )

const formatReport = (report: Report) =>
  [
    `chronicle DCB: conditional appends and reads by query; node ${report.node}, ${report.cpus} cpus${
      report.postgres === null ? "" : `, PostgreSQL ${report.postgres}`
    }${report.quick ? " (--quick)" : ""}`,
    `writes: ${writers} writers on a fresh store, 1 event per append, own stream, ExpectedVersion.Any; latencies in ms; ` +
    `a decision reads its tag from 0 (tags retired after ${eventsPerTag} events)`,
    "",
    writesTable(report.stores),
    "",
    sessionsTable(report.stores),
    "",
    queriesTable(report.stores),
    "",
    checksTable(report.stores),
    "",
    seedTable(report.stores),
    "",
    `total ${(report.totalMillis / 1000).toFixed(0)} s; JSON in bench/results/dcb.json`
  ].join("\n")

// the run -------------------------------------------------------------------------

const allStores: ReadonlyArray<StoreUnderTest> = [postgresStore, memoryStore, filesystemStore]

const benchmark = async (): Promise<Report> => {
  const started = performance.now()
  const stores = only === undefined ? allStores : allStores.filter((store) => store.name === only)
  if (stores.length === 0) throw new Error(`--only=${only}: expected memory, filesystem or postgres`)
  let postgres: string | null = null
  if (stores.includes(postgresStore)) {
    assertLoopback(databaseUrl, "bench/dcb.ts")
    postgres = await withAdmin(async (client) =>
      (await client.query<{ server_version: string }>("SHOW server_version")).rows[0]!.server_version
    )
  }
  const reports: Array<StoreReport> = []
  for (const store of stores) reports.push(await runStore(store))
  return {
    node: process.version,
    cpus: os.availableParallelism(),
    postgres,
    quick,
    settings: {
      writers,
      maxConnections,
      eventsPerTag,
      seedEventCount,
      courses,
      students,
      seedBatchSize,
      plans,
      warmupRuns,
      seriesBudgetMillis
    },
    stores: reports,
    totalMillis: performance.now() - started
  }
}

const main = async () => {
  const report = await benchmark()
  await mkdir(fileURLToPath(new URL("./results/", import.meta.url)), { recursive: true })
  const json = JSON.stringify(report, (_key, value: unknown) => (typeof value === "bigint" ? String(value) : value), 2)
  await writeFile(resultsFile, json + "\n")
  console.log(asJson ? json : formatReport(report))
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
