/**
 * Interleavings on PostgreSQL that used to break a guarantee, replayed
 * deterministically: another session holds a row or a table lock so that a
 * writer is parked at the worst moment, a second writer commits meanwhile,
 * and the log is checked once both are done.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Context, Deferred, Effect, Either, Fiber, Layer, Stream } from "effect"
import Pg from "pg"
import type { Event } from "chronicle"
import { EventId, EventStore, Query, StreamId } from "chronicle"
import { PostgresEventStore } from "chronicle/postgres"
import { databaseUrl, postgresAvailable, uniqueSchema } from "../support/postgres.js"
import { pause } from "../support/time.js"

const newEvent = (type: string, tags: ReadonlyArray<string> = []): Event.NewEvent => ({
  eventId: EventId.unsafeGenerate(),
  type,
  data: {},
  tags
})

/** A store instance with a pool of its own, as another process would have. */
const instance = (schema: string, applicationName: string) =>
  Effect.map(
    Layer.build(PostgresEventStore.layerFromUrl({ url: databaseUrl, schema, maxConnections: 8, applicationName })),
    (context) => Context.get(context, EventStore.EventStore)
  )

/** A plain session outside chronicle, to hold locks with. */
const session = Effect.acquireRelease(
  Effect.promise(async () => {
    const client = new Pg.Client({ connectionString: databaseUrl, application_name: "chronicle-test-holder" })
    await client.connect()
    return client
  }),
  (client) => Effect.promise(() => client.end().catch(() => undefined))
)

const query = (client: Pg.Client, text: string, values: ReadonlyArray<unknown> = []) =>
  Effect.promise(() => client.query(text, values as Array<unknown>))

/** Backends of `applicationName` waiting on a lock now (a fresh view: inside a transaction it is cached). */
const lockWaiters = (observer: Pg.Client, applicationName: string) =>
  Effect.map(
    query(
      observer,
      `SELECT pg_stat_clear_snapshot(), (SELECT count(*)::int FROM pg_stat_activity
         WHERE application_name = $1 AND state = 'active' AND wait_event_type = 'Lock') AS n`,
      [applicationName]
    ),
    ({ rows }) => (rows[0] as { n: number }).n
  )

/** Waits (with a generous bound) until `count` backends of `applicationName` wait on a lock. */
const waitingOnLocks = (observer: Pg.Client, applicationName: string, count = 1) =>
  Effect.gen(function*() {
    for (let i = 0; i < 3000; i++) {
      if ((yield* lockWaiters(observer, applicationName)) >= count) return
      yield* pause(10)
    }
    const { rows } = yield* query(
      observer,
      `SELECT pg_stat_clear_snapshot(), (SELECT json_agg(json_build_object('state', state, 'wait', wait_event, 'query', left(query, 60)))
         FROM pg_stat_activity WHERE application_name = $1) AS backends`,
      [applicationName]
    )
    return yield* Effect.dieMessage(`fewer than ${count} backends of ${applicationName} waited on a lock: ${JSON.stringify(rows)}`)
  })

/** Waits until `fiber` is done or a backend of `applicationName` waits on a lock. */
const doneOrWaiting = <A, E>(observer: Pg.Client, applicationName: string, fiber: Fiber.RuntimeFiber<A, E>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 3000 && fiber.unsafePoll() === null; i++) {
      if ((yield* lockWaiters(observer, applicationName)) > 0) return
      yield* pause(10)
    }
  })

const readStream = (store: EventStore.EventStoreService, streamId: StreamId.StreamId) =>
  store.read(streamId, {}).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

const expectStreamOrder = (events: ReadonlyArray<Event.StoredEvent>) => {
  const versions = events.map((e) => e.streamVersion)
  expect(versions).toEqual(versions.map((_, i) => i + 1))
  for (let i = 1; i < events.length; i++) {
    expect(
      events[i]!.globalPosition > events[i - 1]!.globalPosition,
      `v${events[i]!.streamVersion} at ${events[i]!.globalPosition} after v${events[i - 1]!.streamVersion} at ${events[i - 1]!.globalPosition}`
    ).toBe(true)
  }
}

describe.runIf(postgresAvailable())("PostgresEventStore interleavings", () => {
  it.live("given a group of appends parked on a row lock, when another instance appends to one of its streams meanwhile, then each stream's versions still rise with its global positions", () =>
    Effect.gen(function*() {
      const schema = uniqueSchema("interleave_group")
      const one = yield* instance(schema, `${schema}_1`)
      const two = yield* instance(schema, `${schema}_2`)
      const a = StreamId.unsafeMake("acct", "a")
      const b = StreamId.unsafeMake("acct", "b")
      yield* one.append(a, [newEvent("Opened")], { expectedVersion: "NoStream" })
      yield* one.append(b, [newEvent("Opened")], { expectedVersion: "NoStream" })

      const holder = yield* session
      yield* query(holder, "BEGIN")
      yield* query(holder, `UPDATE "${schema}".streams SET version = version WHERE stream_id = $1`, [a])
      // one lone append parks on row a; then a group holding both streams parks behind it
      const lone = yield* one.append(a, [newEvent("Deposited")], { expectedVersion: "Any" }).pipe(Effect.fork)
      yield* waitingOnLocks(holder, `${schema}_1`, 1)
      const parked = yield* Effect.forEach(
        [a, b, a, b, a, b],
        (streamId) => one.append(streamId, [newEvent("Deposited")], { expectedVersion: "Any" }),
        { concurrency: "unbounded" }
      ).pipe(Effect.fork)
      yield* waitingOnLocks(holder, `${schema}_1`, 2)
      // it commits at once, or waits for the group that holds stream b (as it must now)
      const meanwhile = yield* two.append(b, [newEvent("Deposited")], { expectedVersion: "Any" }).pipe(Effect.fork)
      yield* doneOrWaiting(holder, `${schema}_2`, meanwhile)
      yield* query(holder, "COMMIT")
      yield* Fiber.join(lone)
      yield* Fiber.join(parked)
      yield* Fiber.join(meanwhile)

      expectStreamOrder(yield* readStream(two, a))
      expectStreamOrder(yield* readStream(two, b))
      const log = yield* two.readAll({ fromPosition: 0n, chunkSize: 100, limit: Number.MAX_SAFE_INTEGER }).pipe(
        Stream.runCollect,
        Effect.map(Chunk.toReadonlyArray)
      )
      for (const streamId of [a, b]) expect(log.filter((e) => e.streamId === streamId).map((e) => e.streamVersion)).toEqual(
        log.filter((e) => e.streamId === streamId).map((_, i) => i + 1)
      )
    }).pipe(Effect.scoped), 60_000)

  it.live("given a caller's transaction that took its id early, when a later transaction appends to the stream first, then the early one's append is refused or lands after it", () =>
    Effect.gen(function*() {
      const schema = uniqueSchema("interleave_tx")
      const ctx = yield* Layer.build(PostgresEventStore.layerFromUrl({ url: databaseUrl, schema, maxConnections: 8, applicationName: `${schema}_1` }))
      const store = Context.get(ctx, EventStore.EventStore)
      const sql = Context.get(ctx, SqlClient.SqlClient)
      const other = yield* instance(schema, `${schema}_2`)
      const a = StreamId.unsafeMake("acct", "a")
      yield* store.append(a, [newEvent("Opened")], { expectedVersion: "NoStream" })

      const holder = yield* session
      const idTaken = yield* Deferred.make<void>()
      const go = yield* Deferred.make<void>()
      const early = yield* Effect.gen(function*() {
        // the caller's transaction writes first (its id is taken now), then appends
        yield* sql`SELECT pg_current_xact_id()`
        yield* Deferred.succeed(idTaken, undefined)
        yield* Deferred.await(go)
        return yield* store.append(a, [newEvent("Deposited")], { expectedVersion: "Any" })
      }).pipe(sql.withTransaction, Effect.either, Effect.fork)
      yield* Deferred.await(idTaken)
      // a later transaction holds the stream while the early one waits for it
      yield* query(holder, "BEGIN")
      yield* query(holder, `SELECT pg_current_xact_id()`)
      yield* query(holder, `UPDATE "${schema}".streams SET version = version WHERE stream_id = $1`, [a])
      const late = yield* other.append(a, [newEvent("Deposited")], { expectedVersion: "Any" }).pipe(Effect.fork)
      yield* waitingOnLocks(holder, `${schema}_2`, 1)
      yield* Deferred.succeed(go, undefined)
      yield* doneOrWaiting(holder, `${schema}_1`, early)
      yield* query(holder, "COMMIT")
      yield* Fiber.join(late)
      const outcome = yield* Fiber.join(early)
      // the late append committed first: placing the early one now would put v3 below v2
      expect(Either.isLeft(outcome) && outcome.left._tag).toBe("TransactionConflict")
      expectStreamOrder(yield* readStream(other, a))
    }).pipe(Effect.scoped), 60_000)

  it.live("given a tagged append parked after taking its id, when a types-only conditional append runs meanwhile, then the condition never holds with a matching event below it", () =>
    Effect.gen(function*() {
      const schema = uniqueSchema("interleave_dcb")
      const one = yield* instance(schema, `${schema}_1`)
      const two = yield* instance(schema, `${schema}_2`)
      const w = StreamId.unsafeMake("course", "w")
      const c = StreamId.unsafeMake("course", "c")
      yield* one.append(w, [newEvent("Defined", ["course:1"])], { expectedVersion: "NoStream" })
      const matching = Query.make(Query.item(["Subscribed"]))
      const decision = yield* two.queryForDecision(matching)

      const holder = yield* session
      yield* query(holder, "BEGIN")
      yield* query(holder, `UPDATE "${schema}".streams SET version = version WHERE stream_id = $1`, [w])
      const tagged = yield* one.append(w, [newEvent("Subscribed", ["course:1"])], { expectedVersion: "Any" }).pipe(Effect.fork)
      yield* waitingOnLocks(holder, `${schema}_1`, 1)
      const conditional = yield* two.append(c, [newEvent("Subscribed")], {
        expectedVersion: "Any",
        condition: decision.condition
      }).pipe(Effect.either, Effect.fork)
      // the conditional append either finishes or parks behind the tagged one
      yield* doneOrWaiting(holder, `${schema}_2`, conditional)
      yield* query(holder, "COMMIT")
      yield* Fiber.join(tagged)
      const outcome = yield* Fiber.join(conditional)

      const log = yield* two.readAll({ fromPosition: 0n, chunkSize: 100, limit: Number.MAX_SAFE_INTEGER }).pipe(
        Stream.runCollect,
        Effect.map(Chunk.toReadonlyArray)
      )
      if (Either.isRight(outcome)) {
        const at = outcome.right.globalPositions[0]!
        const violating = log.filter((e) =>
          e.streamId === w && Query.matches(matching, e) && e.globalPosition > (decision.condition.after ?? 0n) && e.globalPosition < at
        )
        expect(violating.map((e) => `${e.type}@${e.globalPosition}`), `conditional append at ${at}`).toEqual([])
      }
      // the tagged append holds the table from before it takes its id: the conditional one waits and sees it
      expect(Either.isLeft(outcome) && outcome.left._tag).toBe("AppendConditionFailed")
    }).pipe(Effect.scoped), 60_000)
})

describe.runIf(postgresAvailable())("PostgresEventStore horizon", () => {
  const strangers = [
    { where: "in another database", database: "postgres", statement: "SELECT pg_current_xact_id()" },
    { where: "in this database, writing elsewhere", database: undefined, statement: "SELECT pg_current_xact_id()" }
  ]
  for (const stranger of strangers) {
    it.live(`given a transaction with an id left open ${stranger.where}, when a store appends, then its readers see the append at once`, () =>
      Effect.gen(function*() {
        const schema = uniqueSchema("horizon")
        const store = yield* instance(schema, `${schema}_1`)
        const url = new URL(databaseUrl)
        if (stranger.database !== undefined) url.pathname = `/${stranger.database}`
        const idle = yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const client = new Pg.Client({ connectionString: url.toString() })
            await client.connect()
            return client
          }),
          (client) => Effect.promise(() => client.end().catch(() => undefined))
        )
        yield* query(idle, "BEGIN")
        yield* query(idle, stranger.statement)

        const streamId = StreamId.unsafeMake("acct", "h")
        const { globalPositions } = yield* store.append(streamId, [newEvent("Opened"), newEvent("Deposited")], { expectedVersion: "NoStream" })
        const log = yield* store.readAll({ fromPosition: 0n, chunkSize: 1, limit: Number.MAX_SAFE_INTEGER }).pipe(
          Stream.runCollect,
          Effect.map(Chunk.toReadonlyArray)
        )
        expect(log.map((e) => e.globalPosition)).toEqual(globalPositions)
        expect(yield* store.headPosition).toBe(globalPositions[1])
        const found = yield* store.query(Query.make(Query.item(["Deposited"])), {}).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
        expect(found.map((e) => e.globalPosition)).toEqual([globalPositions[1]])
        yield* query(idle, "ROLLBACK")
      }).pipe(Effect.scoped), 60_000)
  }

  it.live("given an append held open in a caller's transaction, when another commits after it, then readers wait for the first", () =>
    Effect.gen(function*() {
      const schema = uniqueSchema("horizon_hold")
      const ctx = yield* Layer.build(PostgresEventStore.layerFromUrl({ url: databaseUrl, schema, maxConnections: 8 }))
      const store = Context.get(ctx, EventStore.EventStore)
      const sql = Context.get(ctx, SqlClient.SqlClient)
      const appended = yield* Deferred.make<bigint>()
      const release = yield* Deferred.make<void>()
      const held = yield* store.append(StreamId.unsafeMake("acct", "held"), [newEvent("Opened")], { expectedVersion: "Any" }).pipe(
        Effect.tap((result) => Deferred.succeed(appended, result.globalPositions[0]!)),
        Effect.zipLeft(Deferred.await(release)),
        sql.withTransaction,
        Effect.fork
      )
      const first = yield* Deferred.await(appended)
      const later = yield* store.append(StreamId.unsafeMake("acct", "later"), [newEvent("Opened")], { expectedVersion: "Any" })
      expect(later.globalPositions[0]! > first).toBe(true)
      const before = yield* store.readAll({ fromPosition: 0n }).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      expect(before).toEqual([])
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(held)
      const after = yield* store.readAll({ fromPosition: 0n }).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      expect(after.map((e) => e.globalPosition)).toEqual([first, later.globalPositions[0]!])
    }).pipe(Effect.scoped), 60_000)
})
