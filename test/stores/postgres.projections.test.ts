/**
 * The read side on PostgreSQL: live delivery through LISTEN/NOTIFY, exactly
 * once in order under concurrent (and slow) writers, read models that commit
 * with their checkpoint (exactly-once effect, even when the process is
 * killed), and inline projections inside the append's transaction.
 */
import { spawn } from "node:child_process"
import { join } from "node:path"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Layer, Option, Ref, Schedule, Stream } from "effect"
import type { Event } from "chronicle"
import { CheckpointStore, EventStore, Projection, ProjectionRunner, StreamId } from "chronicle"
import { PostgresCheckpointStore, PostgresEventStore } from "chronicle/postgres"
import { events, newEvent } from "../contract/EventStoreContract.js"
import { databaseUrl, dropSchemaAfter, postgresAvailable, uniqueSchema } from "../support/postgres.js"
import { eventually, pause } from "../support/time.js"

const workerScript = join(import.meta.dirname, "../support/projectionWorker.ts")

/** A store (own pool), its checkpoint store and the SqlClient, in `schema`. */
const stores = (schema: string, options: { readonly notify?: boolean; readonly maxConnections?: number } = {}) =>
  PostgresCheckpointStore.layer({ schema }).pipe(
    Layer.provideMerge(
      PostgresEventStore.layerFromUrl({ schema, url: databaseUrl, maxConnections: options.maxConnections ?? 16, notify: options.notify })
    )
  )

const withSchema = (label: string, options: { readonly notify?: boolean; readonly maxConnections?: number } = {}) => {
  const schema = uniqueSchema(label)
  return { schema, layer: dropSchemaAfter(schema).pipe(Layer.provideMerge(stores(schema, options))) }
}

const take = <R>(stream: Stream.Stream<Event.StoredEvent, EventStore.ReadError, R>, count: number) =>
  stream.pipe(
    Stream.take(count),
    Stream.runCollect,
    Effect.map(Chunk.toReadonlyArray),
    Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error(`timed out waiting for ${count} events`) })
  )

/** Follows `stream` in the background until it has `count` events; `seen` shows them as they come. */
const following = <R>(stream: Stream.Stream<Event.StoredEvent, EventStore.ReadError, R>, count: number) =>
  Effect.gen(function*() {
    const seen = yield* Ref.make<ReadonlyArray<Event.StoredEvent>>([])
    const fiber = yield* Effect.fork(take(stream.pipe(Stream.tap((event) => Ref.update(seen, (all) => [...all, event]))), count))
    return { seen, fiber }
  })

/**
 * Appends (`write`), then waits until the subscriber has `count` events. A
 * subscriber's LISTEN gives no sign of when it is active, so a notification
 * sent before may be lost: the write is repeated every 2 s (another signal).
 * The deadline, 45 s, is below the tests' one-minute poll: what arrives in
 * time came through a notification (or the subscriber's first read).
 */
const signalUntilSeen = <E, R>(seen: Ref.Ref<ReadonlyArray<Event.StoredEvent>>, count: number, write: Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 45_000
    let written = 0
    while ((yield* Ref.get(seen)).length < count) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`${count} events were not delivered before the poll`))
      if (Date.now() - written > 2_000) {
        yield* write
        written = Date.now()
      }
      yield* pause(20)
    }
  })

/**
 * Waits until global readers see the log up to `position`: PostgreSQL shows an
 * event to them once every transaction that began before it has ended.
 */
const visibleUpTo = (position: bigint) =>
  eventually(
    Effect.map(EventStore.readAll({ fromPosition: position, limit: 1 }).pipe(Stream.runCollect), Chunk.isNonEmpty),
    `global readers see position ${position}`
  )

/** Counts each stream's events in `<schema>.totals`, then fails when `failAfterWriting` says so. */
const countingTotals = (schema: string, failAfterWriting: (event: Event.StoredEvent) => boolean) =>
  Projection.make({
    name: "totals",
    handle: (event: Event.StoredEvent) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(
          `INSERT INTO "${schema}".totals VALUES ($1, 1) ON CONFLICT (stream_id) DO UPDATE SET events = totals.events + 1`,
          [event.streamId]
        )
        if (failAfterWriting(event)) return yield* Effect.fail(new Error("crash after writing"))
      })
  })

describe.runIf(postgresAvailable())("PostgreSQL read side", () => {
  it.live("live delivery comes through LISTEN/NOTIFY: well before the (here one minute) poll", () => {
    const { layer } = withSchema("notify")
    return Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const head = yield* store.headPosition
      const { seen, fiber } = yield* following(store.subscribe({ after: head, pollInterval: "60 seconds" }), 3)
      // the first event may come with the subscriber's first read; each later one only with a notification
      for (let n = 1; n <= 3; n++) {
        yield* signalUntilSeen(seen, n, store.append(StreamId.unsafeMake("notify", `s${n}`), [newEvent("Pinged")], { expectedVersion: "Any" }))
      }
      expect((yield* Fiber.join(fiber)).map((e) => e.type)).toEqual(["Pinged", "Pinged", "Pinged"])
    }).pipe(Effect.provide(layer))
  }, 90_000)

  it.live("a subscriber on another pool (as in another process) is woken by the writer's notification", () => {
    const { layer, schema } = withSchema("notify_other")
    return Effect.gen(function*() {
      const other = yield* Layer.build(PostgresEventStore.layerFromUrl({ schema, url: databaseUrl, maxConnections: 2 }))
      const reader = Option.getOrThrow(Option.fromNullable(other.unsafeMap.get(EventStore.EventStore.key))) as EventStore.EventStoreService
      const { seen, fiber } = yield* following(reader.subscribe({ pollInterval: "60 seconds" }), 3)
      yield* signalUntilSeen(seen, 1, EventStore.append(StreamId.unsafeMake("notify", "x"), events(1), { expectedVersion: "Any" }))
      yield* signalUntilSeen(seen, 3, EventStore.append(StreamId.unsafeMake("notify", "x"), events(2), { expectedVersion: "Any" }))
      expect((yield* Fiber.join(fiber)).map((e) => e.streamVersion)).toEqual([1, 2, 3])
    }).pipe(Effect.scoped, Effect.provide(layer))
  }, 90_000)

  it.live("without notifications, polling still delivers every event", () => {
    const { layer } = withSchema("poll", { notify: false })
    return Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const { seen, fiber } = yield* following(store.subscribe({ pollInterval: "50 millis" }), 4)
      yield* store.append(StreamId.unsafeMake("poll", "x"), events(1), { expectedVersion: "NoStream" })
      yield* eventually(Effect.map(Ref.get(seen), (all) => all.length >= 1), "the subscriber has the first event")
      // the subscriber is live now: the next ones can only come with a poll
      yield* store.append(StreamId.unsafeMake("poll", "x"), events(3), { expectedVersion: 1 })
      expect((yield* Fiber.join(fiber)).map((e) => e.streamVersion)).toEqual([1, 2, 3, 4])
    }).pipe(Effect.provide(layer))
  }, 60_000)

  it.live("a live subscriber sees every event exactly once, in order, while writers commit out of order and hold transactions open", () => {
    const { layer } = withSchema("sub_order", { maxConnections: 16 })
    return Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      const writers = 12
      const appendsPerWriter = 20
      const written: Array<string> = []
      const total = Array.from({ length: writers }, (_, w) =>
        Array.from({ length: appendsPerWriter }, (_, i) => 1 + ((w + i) % 3)).reduce((a, b) => a + b, 0)).reduce((a, b) => a + b, 0)
      const subscriber = yield* Effect.fork(take(store.subscribe({ chunkSize: 17 }), total))
      const writer = (w: number) =>
        Effect.forEach(Array.from({ length: appendsPerWriter }, (_, i) => i), (i) => {
          const batch = events(1 + ((w + i) % 3))
          const append = store.append(StreamId.unsafeMake("order", `w${w}-s${i % 4}`), batch, { expectedVersion: "Any" }).pipe(
            Effect.tap(() => batch.forEach((e) => written.push(e.eventId!)))
          )
          // every third append holds its transaction open after inserting: it commits after later ones
          return i % 3 === w % 3 ? sql.withTransaction(Effect.zipLeft(append, pause(10 + ((w * 7 + i * 13) % 60)))) : append
        }, { discard: true })
      yield* Effect.all(Array.from({ length: writers }, (_, w) => writer(w)), { concurrency: "unbounded" })
      const seen = yield* Fiber.join(subscriber)
      const ids = seen.map((e) => e.eventId as string)
      expect(new Set(ids).size).toBe(total)
      expect([...ids].sort()).toEqual([...written].sort())
      for (let i = 1; i < seen.length; i++) expect(seen[i]!.globalPosition > seen[i - 1]!.globalPosition).toBe(true)
    }).pipe(Effect.provide(layer))
  }, 90_000)

  it.live("a read model and its checkpoint commit together: a batch that fails half-way is applied exactly once", () => {
    const { layer, schema } = withSchema("exactly_once")
    return Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      yield* sql.unsafe(`CREATE TABLE "${schema}".totals (stream_id text PRIMARY KEY, events int NOT NULL)`)
      let failuresLeft = 2
      let handled = 0
      // fail after writing, in the middle of the batch, twice
      const projection = countingTotals(schema, () => {
        if (++handled % 7 !== 0 || failuresLeft === 0) return false
        failuresLeft--
        return true
      })
      yield* store.append(StreamId.unsafeMake("acct", "a"), events(12), { expectedVersion: "NoStream" })
      yield* store.append(StreamId.unsafeMake("acct", "b"), events(8), { expectedVersion: "NoStream" })
      const reached = yield* ProjectionRunner.catchUp(projection, { batchSize: 10, retry: Schedule.recurs(3) })
      expect(failuresLeft).toBe(0)
      const rows = yield* sql.unsafe<{ stream_id: string; events: number }>(`SELECT stream_id, events FROM "${schema}".totals ORDER BY stream_id`)
      expect(rows.map((r) => [r.stream_id, r.events])).toEqual([["acct-a", 12], ["acct-b", 8]])
      expect(yield* CheckpointStore.load("totals")).toEqual(Option.some(reached))
    }).pipe(Effect.provide(layer))
  }, 60_000)

  it.live("a handler that keeps failing parks the projection: its batch's read-model writes and its checkpoint roll back together", () => {
    const { layer, schema } = withSchema("park_rollback")
    return Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      yield* sql.unsafe(`CREATE TABLE "${schema}".totals (stream_id text PRIMARY KEY, events int NOT NULL)`)
      const projection = countingTotals(schema, (event) => event.type === "Poison")
      const a = yield* store.append(StreamId.unsafeMake("acct", "a"), events(10), { expectedVersion: "NoStream" })
      const b = yield* store.append(StreamId.unsafeMake("acct", "b"), [...events(4), newEvent("Poison")], { expectedVersion: "NoStream" })
      yield* visibleUpTo(b.globalPositions[4]!)
      // two batches: a's ten events, then b's five, whose last one always fails
      const parked = yield* Effect.flip(ProjectionRunner.catchUp(projection, { batchSize: 10, retry: Schedule.recurs(2) }))
      expect(parked).toMatchObject({ _tag: "ProjectionParked", position: b.globalPositions[4] })
      const rows = yield* sql.unsafe<{ stream_id: string; events: number }>(`SELECT stream_id, events FROM "${schema}".totals ORDER BY stream_id`)
      expect(rows.map((r) => [r.stream_id, r.events])).toEqual([["acct-a", 10]])
      expect(yield* CheckpointStore.load("totals")).toEqual(Option.some(a.globalPositions[9]!))
    }).pipe(Effect.provide(layer))
  }, 60_000)

  it.live("killed mid-run (SIGKILL) and restarted, a transactional projection applies every event exactly once", () => {
    const { layer, schema } = withSchema("crash")
    /** Runs the worker; with `killOnProgress`, SIGKILLs it as soon as it has committed a batch beyond `from` rows. */
    const runWorker = (mode: "run" | "catchUp", killOnProgress?: { readonly from: number }) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const child = spawn(process.execPath, ["--import", "tsx", workerScript, databaseUrl, schema, mode, "1"], {
          stdio: ["ignore", "ignore", "pipe"]
        })
        let stderr = ""
        child.stderr.on("data", (chunk) => (stderr += String(chunk)))
        const exited = Effect.async<number | null>((resume) => {
          child.on("exit", (code, signal) => {
            if (code !== 0 && signal !== "SIGKILL") console.error(stderr)
            resume(Effect.succeed(signal === "SIGKILL" ? null : code))
          })
        })
        if (killOnProgress !== undefined) {
          // the kill waits for progress, not for a time: a loaded machine may take seconds to start the worker
          yield* eventually(
            Effect.map(seenRows(sql), (n) => n > killOnProgress.from || child.exitCode !== null),
            "the worker has committed a batch",
            60_000
          )
          child.kill("SIGKILL")
        }
        return yield* exited
      })
    const seenRows = (sql: SqlClient.SqlClient) =>
      Effect.map(sql.unsafe<{ n: string }>(`SELECT count(*)::text AS n FROM "${schema}".seen`), (rows) => Number(rows[0]!.n))
    return Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      yield* sql.unsafe(`CREATE TABLE "${schema}".seen (position bigint PRIMARY KEY, applied int NOT NULL)`)
      const total = 1500
      for (let s = 0; s < 30; s++) {
        yield* store.append(StreamId.unsafeMake("crash", `s${s}`), events(total / 30), { expectedVersion: "NoStream" })
        yield* store.append(StreamId.unsafeMake("other", `s${s}`), events(2), { expectedVersion: "NoStream" })
      }
      const progress: Array<number> = [0]
      for (let run = 0; run < 3; run++) {
        expect(yield* runWorker("run", { from: progress.at(-1)! })).toBe(null)
        progress.push(yield* seenRows(sql))
      }
      expect(yield* runWorker("catchUp")).toBe(0)
      const [summary] = yield* sql.unsafe<{ rows: string; max: number }>(
        `SELECT count(*)::text AS rows, coalesce(max(applied), 0) AS max FROM "${schema}".seen`
      )
      // the kills landed mid-run: some progress each time, not all of it
      expect(progress.some((n) => n > 0 && n < total)).toBe(true)
      expect(Number(summary!.rows)).toBe(total)
      expect(summary!.max).toBe(1)
      expect(yield* CheckpointStore.load("crash-totals")).toEqual(Option.some(yield* store.headPosition))
    }).pipe(Effect.provide(layer))
  }, 120_000)

  it.live("inline: the read model is written in the append's transaction; a failing handler rolls the append back", () => {
    const { layer, schema } = withSchema("inline")
    const balances = Projection.make({
      name: "balances",
      eventTypes: ["Deposited"],
      handle: (event: Event.StoredEvent) =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const amount = (event.data as { amount: number }).amount
          if (amount < 0) return yield* Effect.fail(new Error("negative deposit"))
          yield* sql.unsafe(
            `INSERT INTO "${schema}".balances VALUES ($1, $2) ON CONFLICT (stream_id) DO UPDATE SET balance = balances.balance + $2`,
            [event.streamId, amount]
          )
        })
    })
    return Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      yield* sql.unsafe(`CREATE TABLE "${schema}".balances (stream_id text PRIMARY KEY, balance int NOT NULL)`)
      const balance = Effect.map(sql.unsafe<{ balance: number }>(`SELECT balance FROM "${schema}".balances`), (rows) => rows[0]?.balance)
      const account = StreamId.unsafeMake("account", "inline")
      yield* store.append(account, [newEvent("Deposited", { amount: 30 }), newEvent("Noted")], { expectedVersion: "NoStream" })
      expect(yield* balance).toBe(30)
      const failed = yield* Effect.flip(store.append(account, [newEvent("Deposited", { amount: 5 }), newEvent("Deposited", { amount: -1 })], {
        expectedVersion: 2
      }))
      expect(failed._tag).toBe("StoreError")
      expect(failed.message).toMatch(/inline projection balances failed/)
      expect(yield* store.streamVersion(account)).toBe(2)
      expect(yield* balance).toBe(30)
    }).pipe(Effect.provide(ProjectionRunner.inline(balances).pipe(Layer.provideMerge(layer))))
  }, 60_000)
})
