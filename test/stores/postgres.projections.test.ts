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
import { Chunk, Effect, Fiber, Layer, Option, Schedule, Stream } from "effect"
import type { Event } from "chronicle"
import { CheckpointStore, EventStore, PostgresCheckpointStore, PostgresEventStore, Projection, ProjectionRunner, StreamId } from "chronicle"
import { events, newEvent } from "../contract/EventStoreContract.js"
import { databaseUrl, dropSchemaAfter, postgresAvailable, uniqueSchema } from "../support/postgres.js"
import { pause } from "../support/time.js"

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

describe.runIf(postgresAvailable())("PostgreSQL read side", () => {
  it.live("live delivery comes through LISTEN/NOTIFY: well before the (here one minute) poll", () => {
    const { layer } = withSchema("notify")
    return Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const head = yield* store.headPosition
      const subscriber = yield* Effect.fork(take(store.subscribe({ after: head, pollInterval: "60 seconds" }), 3))
      for (let i = 0; i < 3; i++) {
        yield* pause(100)
        yield* store.append(StreamId.make("notify", `s${i}`), [newEvent("Pinged")], { expectedVersion: "NoStream" })
      }
      const started = performance.now()
      const seen = yield* Fiber.join(subscriber)
      expect(seen.map((e) => e.type)).toEqual(["Pinged", "Pinged", "Pinged"])
      expect(performance.now() - started).toBeLessThan(10_000)
    }).pipe(Effect.provide(layer))
  }, 60_000)

  it.live("a subscriber on another pool (as in another process) is woken by the writer's notification", () => {
    const { layer, schema } = withSchema("notify_other")
    return Effect.gen(function*() {
      const other = yield* Layer.build(PostgresEventStore.layerFromUrl({ schema, url: databaseUrl, maxConnections: 2 }))
      const reader = Option.getOrThrow(Option.fromNullable(other.unsafeMap.get(EventStore.EventStore.key))) as EventStore.EventStoreService
      const subscriber = yield* Effect.fork(take(reader.subscribe({ pollInterval: "60 seconds" }), 2))
      yield* pause(200)
      yield* EventStore.append(StreamId.make("notify", "x"), events(2), { expectedVersion: "NoStream" })
      expect((yield* Fiber.join(subscriber)).map((e) => e.streamVersion)).toEqual([1, 2])
    }).pipe(Effect.scoped, Effect.provide(layer))
  }, 60_000)

  it.live("without notifications, polling still delivers every event", () => {
    const { layer } = withSchema("poll", { notify: false })
    return Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const subscriber = yield* Effect.fork(take(store.subscribe({ pollInterval: "50 millis" }), 4))
      yield* pause(100)
      yield* store.append(StreamId.make("poll", "x"), events(4), { expectedVersion: "NoStream" })
      expect((yield* Fiber.join(subscriber)).length).toBe(4)
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
          const append = store.append(StreamId.make("order", `w${w}-s${i % 4}`), batch, { expectedVersion: "Any" }).pipe(
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
      const projection = Projection.make({
        name: "totals",
        handle: (event: Event.StoredEvent) =>
          Effect.gen(function*() {
            yield* sql.unsafe(
              `INSERT INTO "${schema}".totals VALUES ($1, 1) ON CONFLICT (stream_id) DO UPDATE SET events = totals.events + 1`,
              [event.streamId]
            )
            // fail after writing, in the middle of the batch, twice
            if (++handled % 7 === 0 && failuresLeft > 0) {
              failuresLeft--
              return yield* Effect.fail(new Error("crash mid-batch"))
            }
          })
      })
      yield* store.append(StreamId.make("acct", "a"), events(12), { expectedVersion: "NoStream" })
      yield* store.append(StreamId.make("acct", "b"), events(8), { expectedVersion: "NoStream" })
      const reached = yield* ProjectionRunner.catchUp(projection, { batchSize: 10, retry: Schedule.recurs(3) })
      expect(failuresLeft).toBe(0)
      const rows = yield* sql.unsafe<{ stream_id: string; events: number }>(`SELECT stream_id, events FROM "${schema}".totals ORDER BY stream_id`)
      expect(rows.map((r) => [r.stream_id, r.events])).toEqual([["acct-a", 12], ["acct-b", 8]])
      expect(yield* CheckpointStore.load("totals")).toEqual(Option.some(reached))
    }).pipe(Effect.provide(layer))
  }, 60_000)

  it.live("killed mid-run (SIGKILL) and restarted, a transactional projection applies every event exactly once", () => {
    const { layer, schema } = withSchema("crash")
    const runWorker = (mode: "run" | "catchUp", killAfterMs?: number) =>
      Effect.async<number | null>((resume) => {
        const child = spawn(process.execPath, ["--import", "tsx", workerScript, databaseUrl, schema, mode, "1"], {
          stdio: ["ignore", "ignore", "pipe"]
        })
        let stderr = ""
        child.stderr.on("data", (chunk) => (stderr += String(chunk)))
        const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), killAfterMs)
        child.on("exit", (code, signal) => {
          clearTimeout(timer)
          if (code !== 0 && signal !== "SIGKILL") console.error(stderr)
          resume(Effect.succeed(signal === "SIGKILL" ? null : code))
        })
      })
    return Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      yield* sql.unsafe(`CREATE TABLE "${schema}".seen (position bigint PRIMARY KEY, applied int NOT NULL)`)
      const total = 1500
      for (let s = 0; s < 30; s++) {
        yield* store.append(StreamId.make("crash", `s${s}`), events(total / 30), { expectedVersion: "NoStream" })
        yield* store.append(StreamId.make("other", `s${s}`), events(2), { expectedVersion: "NoStream" })
      }
      const progress: Array<number> = []
      for (const killAfter of [1800, 2400, 2100]) {
        expect(yield* runWorker("run", killAfter)).toBe(null)
        const [row] = yield* sql.unsafe<{ n: string }>(`SELECT count(*)::text AS n FROM "${schema}".seen`)
        progress.push(Number(row!.n))
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
      const account = StreamId.make("account", "inline")
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
