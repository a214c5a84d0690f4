/**
 * The workload of the history tests: clients (one fiber each) that drive an
 * EventStore with a seeded random mix of appends (exact, NoStream,
 * StreamExists, Any), re-sends of earlier batches (same ids, same expected
 * version), stream reads, version reads, log reads, queries and DCB decisions
 * (a `queryForDecision` read, then an append on its condition, or a hand-built
 * condition from a plain query), recording every operation in a history.
 *
 * Deletions (when the client is given `doomed`): besides its own streams,
 * every operation goes now and then to a doomed stream, `<doomed><k>` for k
 * in a window of three that moves on every `doomedPeriod` operations, so
 * clients append to a stream while it is young and delete it (a few % of the
 * operations: expected version from a recent read, `Any`, a stale one, some
 * with `erase`) once it is the oldest in their window, while others still
 * append to it and re-send batches to it; `isDeleted` reads too. Now and then
 * a delete reserves a stream that never existed, and the client then tries to
 * create it. The client's own streams are never deleted, so the other checks
 * keep their power.
 *
 * Also: the seed (printed, replayable), the size knobs (CI or soak) and the
 * readers of each store's final log.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { SqlClient } from "@effect/sql"
import { Cause, Chunk, Effect, Exit, Option, Stream } from "effect"
import type { Event } from "chronicle"
import { EventId, EventStore, FileEventStore, Query, StreamId } from "chronicle"
import { decodeLine, scan } from "../../src/internal/filesystem/logFormat.js"
import type { ConditionSpec, Entry, EventSpec, Expected, FinalTombstone, LogEvent, Op, Recorder, SeenEvent, Value } from "./history.js"
import { errorData, now } from "./history.js"

// ---------------------------------------------------------------------------
// seeds and sizes
// ---------------------------------------------------------------------------

/** The run's seed: CHRONICLE_HISTORY_SEED when set (to replay a run), else a fresh one. Printed either way. */
export const runSeed = (label: string): number => {
  const given = process.env.CHRONICLE_HISTORY_SEED
  const seed = given !== undefined && given !== "" ? Number(given) >>> 0 : (Math.random() * 2 ** 32) >>> 0
  console.log(`[history ${label}] seed ${seed} (replay: CHRONICLE_HISTORY_SEED=${seed})`)
  return seed
}

/** Whether this is a soak run (`npm run soak`): more operations, longer faults. */
export const soak = process.env.CHRONICLE_SOAK === "1"

/** Scales a CI-sized count for a soak run. */
export const sized = (ci: number, soakFactor = 10): number => (soak ? ci * soakFactor : ci)

/** A small, fast, seeded PRNG (mulberry32). */
export const prng = (seed: number) => {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (min: number, max: number) => min + Math.floor(next() * (max - min + 1)),
    pick: <A>(items: ReadonlyArray<A>): A => items[Math.floor(next() * items.length)]!,
    chance: (p: number) => next() < p
  }
}
export type Prng = ReturnType<typeof prng>

/** A seed for one client, derived from the run's seed and the client's name. */
export const clientSeed = (seed: number, client: string): number => {
  let h = seed >>> 0
  for (let i = 0; i < client.length; i++) h = Math.imul(h ^ client.charCodeAt(i), 0x01000193) >>> 0
  return h
}

// ---------------------------------------------------------------------------
// the clients
// ---------------------------------------------------------------------------

/** How often each kind of operation comes up (relative weights). */
export interface Mix {
  readonly exact: number
  readonly noStream: number
  readonly streamExists: number
  readonly any: number
  readonly resend: number
  readonly read: number
  readonly version: number
  readonly readAll: number
  readonly query: number
  readonly decide: number
  readonly handCondition: number
  /** A delete of a doomed stream (only with `doomed`). */
  readonly delete: number
  /** An `isDeleted` read of a doomed stream (only with `doomed`). */
  readonly isDeleted: number
}

export const defaultMix: Mix = {
  exact: 18,
  noStream: 6,
  streamExists: 6,
  any: 16,
  resend: 10,
  read: 8,
  version: 4,
  readAll: 4,
  query: 4,
  decide: 14,
  handCondition: 4,
  delete: 2,
  isDeleted: 1
}

export interface ClientConfig {
  readonly seed: number
  /** The clock's name: one per OS process. */
  readonly process: string
  readonly client: string
  /** The streams this client appends to and reads (shared with other clients for contention). */
  readonly streams: ReadonlyArray<string>
  /** A prefix for the fresh streams of NoStream appends. */
  readonly run: string
  readonly ops: number
  readonly mix?: Partial<Mix> | undefined
  /** Event types and tags to draw from. */
  readonly types?: ReadonlyArray<string> | undefined
  readonly tags?: ReadonlyArray<string> | undefined
  /** After how long an operation is given up as unknown, in ms; default 30,000. */
  readonly timeoutMs?: number | undefined
  /** Up to how many bytes of padding each event's data carries; default none. */
  readonly paddingBytes?: number | undefined
  /** The prefix of the streams that clients delete (shared by all clients); none without it. */
  readonly doomed?: string | undefined
  /** After how many operations a client's window of doomed streams moves on; default 25. */
  readonly doomedPeriod?: number | undefined
  /** Stop early once this returns true (checked between operations). */
  readonly stop?: (() => boolean) | undefined
}

export const defaultTypes = ["Opened", "Reserved", "Noted"]
export const defaultTags = ["k:1", "k:2", "k:3"]

/** The queries decisions are made on: tagged, typed and tagged, types only, and match-all. */
const decisionQueries = (tags: ReadonlyArray<string>): ReadonlyArray<{ readonly query: Query.Query; readonly weight: number }> => [
  { query: Query.tagged(tags[0]!), weight: 3 },
  { query: Query.make(Query.item(["Reserved"], [tags[1] ?? tags[0]!])), weight: 3 },
  { query: Query.make(Query.item(["Reserved"])), weight: 4 },
  { query: Query.make(Query.item(["Reserved"], [tags[0]!]), Query.item(["Opened"])), weight: 2 },
  { query: Query.all, weight: 1 }
]

export const seenOf = (e: Event.StoredEvent): SeenEvent => ({
  id: e.eventId,
  stream: e.streamId,
  version: e.streamVersion,
  position: e.globalPosition,
  type: e.type,
  tags: e.tags
})

const collect = <A, E>(stream: Stream.Stream<A, E>) => Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

/**
 * One client: `ops` operations one after another, each recorded (invoke
 * before it is sent, then ok / fail / info).
 */
export const runClient = (store: EventStore.EventStoreService, recorder: Recorder, config: ClientConfig): Effect.Effect<void> =>
  Effect.gen(function*() {
    const random = prng(clientSeed(config.seed, config.client))
    const doomed = config.doomed
    const mix = { ...defaultMix, ...config.mix, ...(doomed === undefined ? { delete: 0, isDeleted: 0 } : {}) }
    const kinds = Object.entries(mix) as Array<[keyof Mix, number]>
    const total = kinds.reduce((sum, [, w]) => sum + w, 0)
    const types = config.types ?? defaultTypes
    const tags = config.tags ?? defaultTags
    const queries = decisionQueries(tags)
    const queryWeight = queries.reduce((sum, q) => sum + q.weight, 0)
    const timeoutMs = config.timeoutMs ?? 30_000
    const known = new Map<string, number>()
    const sent: Array<{ readonly stream: string; readonly events: ReadonlyArray<Event.NewEvent>; readonly expected: Expected }> = []
    const positions: Array<bigint> = []
    let n = 0

    const pickKind = (): keyof Mix => {
      let roll = random.next() * total
      for (const [kind, weight] of kinds) {
        roll -= weight
        if (roll < 0) return kind
      }
      return kinds[0]![0]
    }
    const pickQuery = (): Query.Query => {
      let roll = random.next() * queryWeight
      for (const q of queries) {
        roll -= q.weight
        if (roll < 0) return q.query
      }
      return queries[0]!.query
    }
    const newEvent = (type: string, eventTags: ReadonlyArray<string>): Event.NewEvent => ({
      eventId: EventId.unsafeGenerate(),
      type,
      data: config.paddingBytes === undefined ? { client: config.client, n } : { client: config.client, n, padding: "x".repeat(random.int(0, config.paddingBytes)) },
      tags: eventTags
    })
    const randomEvents = (): Array<Event.NewEvent> =>
      Array.from({ length: random.chance(0.7) ? 1 : random.int(2, 3) }, () => {
        const eventTags = random.chance(0.4) ? [] : random.chance(0.7) ? [random.pick(tags)] : [tags[0]!, random.pick(tags.slice(1))]
        return newEvent(random.pick(types), [...new Set(eventTags)])
      })
    /** Events that match a query's first item, so a decision's own append is one the condition is about. */
    const matchingEvents = (query: Query.Query): Array<Event.NewEvent> => {
      const item = query.items[0] ?? {}
      const type = item.types !== undefined && item.types.length > 0 ? random.pick(item.types) : random.pick(types)
      return [newEvent(type, [...(item.tags ?? []), ...(random.chance(0.3) ? [random.pick(tags)] : [])].filter((t, i, all) => all.indexOf(t) === i))]
    }
    const specs = (events: ReadonlyArray<Event.NewEvent>): Array<EventSpec> =>
      events.map((e) => ({ id: e.eventId!, type: e.type, tags: e.tags ?? [] }))
    const learn = (events: ReadonlyArray<SeenEvent>) => {
      for (const e of events) {
        if ((known.get(e.stream) ?? 0) < e.version) known.set(e.stream, e.version)
        positions.push(e.position)
      }
      if (positions.length > 200) positions.splice(0, positions.length - 100)
    }

    /** Records the operation around `effect`: invoke, then ok, fail (a refusal) or info (unknown). */
    const perform = <A, E>(op: Op, effect: Effect.Effect<A, E>, value: (a: A) => Value) =>
      Effect.gen(function*() {
        const id = `${config.client}:${++n}`
        const base = { id, process: config.process, client: config.client }
        recorder.record({ ...base, time: now(), type: "invoke", op })
        const exit = yield* Effect.exit(Effect.timeoutFail(effect, { duration: timeoutMs, onTimeout: () => "timeout" as const }))
        if (Exit.isSuccess(exit)) {
          recorder.record({ ...base, time: now(), type: "ok", value: value(exit.value) })
          return Option.some(exit.value)
        }
        const failure = Cause.failureOption(exit.cause)
        if (Option.isSome(failure) && failure.value !== "timeout") {
          recorder.record({ ...base, time: now(), type: "fail", error: errorData(failure.value) })
        } else {
          recorder.record({ ...base, time: now(), type: "info", reason: Option.isSome(failure) ? "timed out" : Cause.pretty(exit.cause) })
        }
        return Option.none<A>()
      })

    const appendOp = (stream: string, events: ReadonlyArray<Event.NewEvent>, expected: Expected, condition?: ConditionSpec) =>
      perform(
        { f: "append", stream, events: specs(events), expected, ...(condition === undefined ? {} : { condition }) },
        store.append(StreamId.unsafeParse(stream), events, {
          expectedVersion: expected,
          ...(condition === undefined ? {} : { condition: { failIfEventsMatch: condition.query, after: condition.after } })
        }),
        (r): Value => ({ f: "append", version: r.streamVersion, positions: r.globalPositions })
      ).pipe(Effect.tap((result) =>
        Effect.sync(() => {
          if (Option.isSome(result)) {
            known.set(stream, Math.max(known.get(stream) ?? 0, result.value.streamVersion))
            positions.push(...result.value.globalPositions)
          }
          if (condition === undefined) {
            sent.push({ stream, events, expected })
            if (sent.length > 30) sent.shift()
          }
        })
      ))

    const plainAppend = (expected: Expected, stream: string) => appendOp(stream, randomEvents(), expected)

    const knownPosition = () => (positions.length === 0 ? 0n : random.pick(positions))

    const period = config.doomedPeriod ?? 25
    /** A doomed stream of the window at operation `i`: the oldest (to delete) or any of the three. */
    const doomedStream = (i: number, oldest: boolean) => `${doomed}${Math.floor(i / period) + (oldest ? 0 : random.int(0, 2))}`

    for (let i = 0; i < config.ops && !(config.stop?.() ?? false); i++) {
      const kind = pickKind()
      const stream = doomed !== undefined && random.chance(0.15) ? doomedStream(i, false) : random.pick(config.streams)
      switch (kind) {
        case "exact": {
          if (random.chance(0.3)) {
            yield* perform({ f: "version", stream }, store.streamVersion(StreamId.unsafeParse(stream)), (version): Value => ({ f: "version", version })).pipe(
              Effect.tap((v) => Effect.sync(() => Option.isSome(v) && known.set(stream, v.value)))
            )
          }
          yield* plainAppend(known.get(stream) ?? 0, stream)
          break
        }
        case "noStream":
          yield* plainAppend("NoStream", random.chance(0.5) ? `${config.run}fresh-${config.client}-${n}` : stream)
          break
        case "streamExists":
          yield* plainAppend("StreamExists", random.chance(0.2) ? `${config.run}fresh-${config.client}-${n}` : stream)
          break
        case "any":
          yield* plainAppend("Any", stream)
          break
        case "resend": {
          const batch = sent.length === 0 ? undefined : random.chance(0.5) ? sent.at(-1) : random.pick(sent)
          if (batch === undefined) yield* plainAppend("Any", stream)
          else yield* appendOp(batch.stream, batch.events, batch.expected)
          break
        }
        case "read":
          yield* perform({ f: "read", stream }, collect(store.read(StreamId.unsafeParse(stream))), (events): Value => ({ f: "read", events: events.map(seenOf) })).pipe(
            Effect.tap((r) => Effect.sync(() => Option.isSome(r) && learn(r.value.map(seenOf))))
          )
          break
        case "version":
          yield* perform({ f: "version", stream }, store.streamVersion(StreamId.unsafeParse(stream)), (version): Value => ({ f: "version", version }))
          break
        case "readAll": {
          const from = random.chance(0.3) ? 1n : knownPosition()
          const limit = random.int(20, 150)
          yield* perform({ f: "readAll", from, limit }, collect(store.readAll({ fromPosition: from, limit })), (events): Value => ({ f: "readAll", events: events.map(seenOf) }))
          break
        }
        case "query": {
          const query = pickQuery()
          const after = random.chance(0.5) ? 0n : knownPosition()
          const limit = random.int(20, 150)
          yield* perform({ f: "query", query, after, limit }, collect(store.query(query, { after, limit })), (events): Value => ({ f: "query", events: events.map(seenOf) }))
          break
        }
        case "decide": {
          const query = pickQuery()
          const read = yield* perform({ f: "decide", query }, store.queryForDecision(query), (r): Value => ({
            f: "decide",
            events: r.events.map(seenOf),
            after: r.condition.after ?? 0n
          }))
          if (Option.isNone(read)) break
          const condition = read.value.condition
          const target = random.chance(0.5) ? `${config.run}fresh-${config.client}-${n}` : stream
          const events = matchingEvents(query)
          const expected: Expected = target === stream ? "Any" : "NoStream"
          yield* perform(
            {
              f: "append",
              stream: target,
              events: specs(events),
              expected,
              condition: { query, after: condition.after ?? 0n, seen: read.value.events.map((e) => e.eventId) }
            },
            store.append(StreamId.unsafeParse(target), events, { expectedVersion: expected, condition }),
            (r): Value => ({ f: "append", version: r.streamVersion, positions: r.globalPositions })
          )
          break
        }
        case "handCondition": {
          const query = pickQuery()
          const read = yield* perform({ f: "query", query, after: 0n, limit: 100_000 }, collect(store.query(query)), (events): Value => ({
            f: "query",
            events: events.map(seenOf)
          }))
          if (Option.isNone(read)) break
          yield* appendOp(stream, matchingEvents(query), "Any", { query, after: read.value.at(-1)?.globalPosition ?? 0n })
          break
        }
        case "delete": {
          const reserve = random.chance(0.1)
          const target = reserve ? `${config.run}fresh-${config.client}-${n}` : doomedStream(i, true)
          if (!reserve && random.chance(0.3)) {
            yield* perform({ f: "version", stream: target }, store.streamVersion(StreamId.unsafeParse(target)), (version): Value => ({ f: "version", version })).pipe(
              Effect.tap((v) => Effect.sync(() => Option.isSome(v) && known.set(target, v.value)))
            )
          }
          const version = known.get(target) ?? 0
          const roll = random.next()
          const expected: Expected = roll < 0.4
            ? version
            : roll < 0.7
            ? "Any"
            : roll < 0.85
            ? Math.max(0, version - random.int(1, 3))
            : random.pick(["NoStream", "StreamExists"] as const)
          const erase = random.chance(0.4)
          yield* perform(
            { f: "delete", stream: target, expected, erase },
            store.deleteStream(StreamId.unsafeParse(target), { expectedVersion: expected, erase }),
            (): Value => ({ f: "delete" })
          )
          // a reserved id cannot be taken
          if (reserve) yield* plainAppend("NoStream", target)
          break
        }
        case "isDeleted": {
          const target = doomedStream(i, random.chance(0.5))
          yield* perform({ f: "isDeleted", stream: target }, store.isDeleted(StreamId.unsafeParse(target)), (deleted): Value => ({ f: "isDeleted", deleted }))
          break
        }
      }
    }
  })

// ---------------------------------------------------------------------------
// final logs
// ---------------------------------------------------------------------------

/** The whole log through the store itself (the memory store). */
export const storeLog = (store: EventStore.EventStoreService): Effect.Effect<Array<LogEvent>, EventStore.ReadError> =>
  Effect.map(collect(store.readAll()), (events) => events.map(seenOf))

/** The deleted streams among `streams`, through the store itself (the memory store): `isDeleted`, and the version it keeps. */
export const storeTombstones = (
  store: EventStore.EventStoreService,
  streams: Iterable<string>
): Effect.Effect<Array<FinalTombstone>, EventStore.StoreError | StreamId.InvalidStreamId> =>
  Effect.gen(function*() {
    const out: Array<FinalTombstone> = []
    for (const stream of streams) {
      const id = StreamId.unsafeParse(stream)
      if (yield* store.isDeleted(id)) out.push({ stream, version: yield* store.streamVersion(id) })
    }
    return out
  })

/** Every stream an operation of the history names. */
export const streamsOf = (history: ReadonlyArray<Entry>): Set<string> =>
  new Set(history.flatMap((e) => (e.type === "invoke" && "stream" in e.op ? [e.op.stream] : [])))

/**
 * The filesystem store's log read straight from its file with the log
 * format's own scan (fenced and sealed-off appends are void there, as for
 * every reader), not through the store's index: every valid append,
 * duplicates and all, and every valid tombstone (the first of a stream gives
 * its version and position; any erasing one marks it erased). Lines in the
 * ranges of valid erasing tombstones are left out, as for every reader;
 * other lines of an erased stream are kept (they should not be there). A
 * damaged line is returned as a problem.
 */
export const fileLog = (
  directory: string
): { readonly events: Array<LogEvent>; readonly tombstones: Array<FinalTombstone>; readonly problems: Array<string> } => {
  const bytes = readFileSync(join(directory, FileEventStore.logFileName))
  const scanned = scan(bytes, 0)
  const events: Array<LogEvent> = []
  const problems: Array<string> = []
  for (const line of scanned.lines) {
    const decoded = decodeLine(bytes.toString("utf8", line.offset, line.offset + line.length).replace(/\n$/, ""))
    if (typeof decoded === "string") problems.push(`byte ${line.offset}: ${decoded}`)
    else events.push(seenOf(decoded.event))
  }
  if (scanned.damaged !== undefined) problems.push(`byte ${scanned.damaged.offset}: ${scanned.damaged.problem}`)
  const tombstones = new Map<string, FinalTombstone>()
  for (const t of scanned.tombstones) {
    const known = tombstones.get(t.streamId)
    tombstones.set(
      t.streamId,
      known === undefined
        ? { stream: t.streamId, version: t.version, erased: t.erase, position: BigInt(t.position) }
        : { ...known, erased: known.erased === true || t.erase }
    )
  }
  return { events, tombstones: [...tombstones.values()], problems }
}

/** The PostgreSQL store's events table, read with SQL: the ground truth, whatever the store's readers do. */
export const postgresLog = (schema: string): Effect.Effect<Array<LogEvent>, unknown, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ p: string; s: string; v: string; id: string; t: string; g: ReadonlyArray<string> | null }>(
      `SELECT global_position::text AS p, stream_id AS s, stream_version::text AS v, event_id::text AS id, type AS t, tags AS g
         FROM "${schema}".events ORDER BY global_position`
    )
    return rows.map((row) => ({
      id: row.id,
      stream: row.s,
      version: Number(row.v),
      position: BigInt(row.p),
      type: row.t,
      tags: row.g ?? []
    }))
  })

/** The PostgreSQL store's deleted streams (`streams.deleted_at`) and their versions, read with SQL. */
export const postgresTombstones = (schema: string): Effect.Effect<Array<FinalTombstone>, unknown, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ s: string; v: string }>(
      `SELECT stream_id AS s, version::text AS v FROM "${schema}".streams WHERE deleted_at IS NOT NULL`
    )
    return rows.map((row) => ({ stream: row.s, version: Number(row.v) }))
  })

/** One line about a run: operations by kind and outcome. */
export const runStats = (history: ReadonlyArray<Entry>): string => {
  const kinds = new Map<string, string>()
  const counts = new Map<string, number>()
  const done = new Map<string, string>()
  for (const entry of history) {
    if (entry.type === "invoke") {
      const op = entry.op
      kinds.set(entry.id, op.f === "append" && op.condition !== undefined ? "append+condition" : op.f === "delete" && op.erase ? "delete+erase" : op.f)
    } else {
      const fenced = entry.type === "fail" && String(entry.error.reason).includes("the write lock was lost")
      done.set(entry.id, entry.type === "fail" ? `${entry.error.tag}${fenced ? "(fenced)" : ""}` : entry.type)
    }
  }
  for (const [id, kind] of kinds) {
    const outcome = done.get(id) ?? "unknown"
    counts.set(`${kind} ${outcome}`, (counts.get(`${kind} ${outcome}`) ?? 0) + 1)
  }
  return `${kinds.size} operations: ${[...counts].sort().map(([k, n]) => `${k}=${n}`).join(", ")}`
}

/** A test's time limit: generous for CI, much longer for a soak. */
export const testTimeout = soak ? 1_800_000 : 240_000
