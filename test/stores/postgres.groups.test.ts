/**
 * Consumer groups on PostgreSQL: members share the partitions fairly, a
 * joining member takes its share, an expired member's partitions move and
 * its late commits are fenced (`PartitionLost`), a stalled (SIGSTOP) member
 * resumed after a takeover commits nothing, and 3 member processes with one
 * SIGKILLed while writers run apply every event exactly once.
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { join } from "node:path"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Layer, Option, Scope } from "effect"
import { CheckpointStore, ConsumerGroup, EventStore, Projection, ProjectionRunner, StreamId } from "chronicle"
import { PostgresCheckpointStore, PostgresConsumerGroupStore, PostgresEventStore } from "chronicle/postgres"
import { events } from "../contract/EventStoreContract.js"
import { databaseUrl, dropSchemaAfter, postgresAvailable, uniqueSchema } from "../support/postgres.js"
import { countingSeen } from "../support/seenProjection.js"
import { eventually } from "../support/time.js"

const withSchema = (label: string) => {
  const schema = uniqueSchema(label)
  const layer = dropSchemaAfter(schema).pipe(
    Layer.provideMerge(
      Layer.mergeAll(PostgresCheckpointStore.layer({ schema }), PostgresConsumerGroupStore.layer({ schema })).pipe(
        Layer.provideMerge(PostgresEventStore.layerFromUrl({ schema, url: databaseUrl, maxConnections: 16 }))
      )
    )
  )
  return { schema, layer }
}

/** Counts every `grp` event in `<schema>.seen`, by event id, in the checkpoint's transaction. */
const counting = (schema: string) => countingSeen(schema, "grp")

const createSeen = (schema: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`CREATE TABLE "${schema}".seen (event_id uuid PRIMARY KEY, applied int NOT NULL)`))

const summary = (schema: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe<{ rows: number; max: number }>(`SELECT count(*)::int AS rows, coalesce(max(applied), 0) AS max FROM "${schema}".seen`)).pipe(
      Effect.map((rows) => rows[0]!)
    )

/** Partitions held per member (members holding none are absent). */
const holdings = (schema: string, group: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe<{ owner: string; n: number }>(
      `SELECT owner, count(*)::int AS n FROM "${schema}".group_partitions WHERE group_name = $1 AND owner IS NOT NULL GROUP BY owner ORDER BY owner`,
      [group]
    )).pipe(Effect.map((rows) => Object.fromEntries(rows.map((row) => [row.owner, row.n]))))

const same = (a: Record<string, number>, b: Record<string, number>) => JSON.stringify(a) === JSON.stringify(b)

/** Whether another session's transaction has written to `<schema>.seen` and not ended: a batch in flight. */
const openBatch = (schema: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks WHERE relation = '"${schema}".seen'::regclass AND mode = 'RowExclusiveLock' AND pid <> pg_backend_pid()`
    )).pipe(Effect.map((rows) => rows[0]!.n > 0))

const appendTo = (streams: number, perStream: number, label: string) =>
  Effect.forEach(
    Array.from({ length: streams }, (_, s) => s),
    (s) => EventStore.append(StreamId.unsafeMake("grp", `${label}${s}`), events(perStream), { expectedVersion: "Any" }),
    { discard: true }
  )

const fast = { partitions: 8, leaseTtl: "1500 millis", heartbeat: "100 millis", pollInterval: "100 millis", batchSize: 20 } as const

const member = <E, R>(projection: Projection.Projection<E, R>, name: string, scope: Scope.Scope) =>
  ConsumerGroup.start(projection, { ...fast, member: name }).pipe(Scope.extend(scope))

describe.runIf(postgresAvailable())("PostgreSQL consumer groups", () => {
  it.live("given two members, they hold half the partitions each and apply every event once", () => {
    const { layer, schema } = withSchema("groups_split")
    return Effect.gen(function*() {
      yield* createSeen(schema)
      const projection = counting(schema)
      yield* appendTo(24, 10, "s")
      const scope = yield* Scope.make()
      yield* member(projection, "a", scope)
      yield* member(projection, "b", scope)
      yield* eventually(Effect.map(holdings(schema, "group-seen"), (held) => same(held, { a: 4, b: 4 })), "a and b hold 4 partitions each")
      yield* appendTo(24, 5, "s")
      yield* eventually(Effect.map(summary(schema), (s) => s.rows === 24 * 15), "every event is applied")
      expect(yield* summary(schema)).toEqual({ rows: 24 * 15, max: 1 })
      yield* Scope.close(scope, Exit.void)
      // leaving gives the partitions back
      expect(yield* holdings(schema, "group-seen")).toEqual({})
    }).pipe(Effect.provide(layer))
  }, 60_000)

  it.live("given one member holding every partition, when a second joins, then the first releases half to it and nothing is applied twice", () => {
    const { layer, schema } = withSchema("groups_join")
    return Effect.gen(function*() {
      yield* createSeen(schema)
      const projection = counting(schema)
      const scope = yield* Scope.make()
      yield* member(projection, "a", scope)
      yield* eventually(Effect.map(holdings(schema, "group-seen"), (held) => same(held, { a: 8 })), "a holds all 8 partitions")
      yield* appendTo(16, 10, "s")
      yield* member(projection, "b", scope)
      yield* appendTo(16, 10, "t")
      yield* eventually(Effect.map(holdings(schema, "group-seen"), (held) => same(held, { a: 4, b: 4 })), "b took its share")
      yield* appendTo(16, 10, "u")
      yield* eventually(Effect.map(summary(schema), (s) => s.rows === 480), "every event is applied")
      expect(yield* summary(schema)).toEqual({ rows: 480, max: 1 })
      yield* Scope.close(scope, Exit.void)
    }).pipe(Effect.provide(layer))
  }, 60_000)

  it.live("given a member whose lease expired, another takes its partitions and the old owner's late checkpoint write fails with PartitionLost", () => {
    const { layer, schema } = withSchema("groups_fence")
    return Effect.gen(function*() {
      yield* createSeen(schema)
      const projection = counting(schema)
      const groups = yield* ConsumerGroup.ConsumerGroupStore
      const ttl = Duration.millis(300)
      yield* groups.join("g", 2)
      yield* groups.heartbeat("g", "a", ttl)
      const old = yield* groups.claim("g", "a", ttl, 2)
      expect(old.map((lease) => lease.partition)).toEqual([0, 1])
      yield* appendTo(10, 3, "s")
      // a stops beating; once its leases expire, b takes them
      yield* eventually(Effect.map(groups.claim("g", "b", Duration.seconds(30), 2), (taken) => taken.length === 2), "b took both partitions")
      const late = (lease: ConsumerGroup.Lease) =>
        ProjectionRunner.catchUp(projection, { partition: { member: lease.partition, of: 2 }, fence: groups.fence("g", "a", lease) })
      const lost = yield* Effect.flip(late(old[0]!))
      expect(lost).toBeInstanceOf(ConsumerGroup.PartitionLost)
      expect(lost).toMatchObject({ group: "g", partition: 0, member: "a", generation: old[0]!.generation })
      expect(yield* summary(schema)).toEqual({ rows: 0, max: 0 })
      expect(yield* CheckpointStore.load("group-seen#0/2")).toEqual(Option.none())
      // a takes partition 1 back after b gives it up: its lane of the first generation is still fenced
      yield* groups.release("g", "b", { partition: 1, generation: old[1]!.generation + 1n })
      const again = yield* groups.claim("g", "a", ttl, 1)
      expect(again).toEqual([{ partition: 1, generation: old[1]!.generation + 2n }])
      expect(yield* Effect.flip(late(old[1]!))).toBeInstanceOf(ConsumerGroup.PartitionLost)
      yield* late(again[0]!)
      expect((yield* summary(schema)).max).toBe(1)
    }).pipe(Effect.provide(layer))
  }, 60_000)

  it.live("given a group of 4 partitions, a member with another count is refused and changes nothing", () => {
    const { layer, schema } = withSchema("groups_shape")
    return Effect.gen(function*() {
      const groups = yield* ConsumerGroup.ConsumerGroupStore
      yield* groups.join("g", 4)
      const refused = yield* Effect.flip(groups.join("g", 6))
      expect(refused).toMatchObject({ _tag: "StoreError", operation: "joinConsumerGroup" })
      expect(refused.message).toMatch(/has 4 partitions, not 6/)
      yield* groups.join("g", 4)
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql.unsafe<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".group_partitions WHERE group_name = 'g'`)
      expect(rows[0]!.n).toBe(4)
    }).pipe(Effect.provide(layer))
  }, 60_000)

  describe("member processes", () => {
    interface Worker {
      readonly child: ChildProcess
      readonly stderr: () => string
      readonly exited: Promise<void>
    }
    /**
     * A member process, with no session settings of its own: the group bounds
     * its lanes' transactions (idle at most a lease), or a stalled member's open
     * batch would hold the read model's rows, and its successor with them,
     * until it resumes.
     */
    const spawnMember = (schema: string, name: string, delayMs: number, ttlMs: number): Worker => {
      const child = spawn(
        process.execPath,
        ["--import", "tsx", join(import.meta.dirname, "../support/groupWorker.ts"), databaseUrl, schema, name, String(delayMs), "8", String(ttlMs)],
        { stdio: ["ignore", "ignore", "pipe"] }
      )
      let stderr = ""
      child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
      const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()))
      return { child, stderr: () => stderr, exited }
    }
    /** A worker's stderr without node-postgres's warning about concurrent LISTENs on its one listening client (one per lane). */
    const problems = (worker: Worker) =>
      worker.stderr().split("\n").filter((line) => line !== "" && !/DeprecationWarning: Calling client\.query\(\)|--trace-deprecation/.test(line))
    const stopAll = (workers: ReadonlyArray<Worker>) =>
      Effect.promise(() =>
        Promise.all(workers.map((worker) => {
          worker.child.kill("SIGCONT")
          worker.child.kill("SIGKILL")
          return worker.exited
        }))
      )

    it.live("given 3 member processes and writers running, when one is killed (SIGKILL), then its partitions move and every event is applied exactly once", () => {
      const { layer, schema } = withSchema("groups_kill")
      return Effect.gen(function*() {
        yield* createSeen(schema)
        const workers = ["a", "b", "c"].map((name) => spawnMember(schema, name, 1, 2000))
        yield* eventually(Effect.map(holdings(schema, "group-seen"), (held) => Object.keys(held).length === 3), "3 members hold partitions", 90_000)
        let written = 0
        const writers = yield* Effect.fork(
          Effect.forEach(Array.from({ length: 30 }, (_, round) => round), (round) =>
            Effect.tap(appendTo(20, 5, `r${round}-`), () => (written += 100)), { discard: true })
        )
        yield* eventually(Effect.map(summary(schema), (s) => s.rows >= 600), "the members have applied 600 events", 90_000)
        workers[1]!.child.kill("SIGKILL")
        yield* Effect.promise(() => workers[1]!.exited)
        yield* Fiber.join(writers)
        yield* eventually(Effect.map(holdings(schema, "group-seen"), (held) => same(held, { a: 4, c: 4 })), "b's partitions moved to a and c", 90_000)
        yield* eventually(Effect.map(summary(schema), (s) => s.rows === written), "every event is applied", 90_000)
        expect(yield* summary(schema)).toEqual({ rows: 3000, max: 1 })
        yield* stopAll(workers)
        for (const worker of [workers[0]!, workers[2]!]) expect(problems(worker)).toEqual([])
      }).pipe(Effect.provide(layer))
    }, 240_000)

    it.live("given a member stalled (SIGSTOP) mid-batch past its lease, when it resumes after the takeover, then it commits nothing twice", () => {
      const { layer, schema } = withSchema("groups_stall")
      return Effect.gen(function*() {
        yield* createSeen(schema)
        yield* appendTo(40, 25, "s")
        // slow handlers: a batch of 50 takes ~250 ms, mostly inside its transaction
        const stalled = spawnMember(schema, "a", 5, 1500)
        // whatever happens, never leave a stopped process behind (it would hold the schema's drop)
        yield* Effect.addFinalizer(() => Effect.sync(() => void (stalled.child.kill("SIGCONT"), stalled.child.kill("SIGKILL"))))
        yield* eventually(Effect.map(summary(schema), (s) => s.rows >= 100), "a has applied 100 events", 90_000)
        // stop a inside a batch: its transaction has written rows of the read model and not committed
        yield* eventually(
          Effect.gen(function*() {
            if (!(yield* openBatch(schema))) return false
            stalled.child.kill("SIGSTOP")
            if (yield* openBatch(schema)) return true
            stalled.child.kill("SIGCONT")
            return false
          }),
          "a is stopped inside an open batch",
          90_000
        )
        const other = spawnMember(schema, "b", 0, 1500)
        // a's open batch holds its rows (and maybe its partition's row) until PostgreSQL ends it, a lease later:
        // only then can b take all 8 partitions and apply every event while a is still stopped
        yield* eventually(Effect.map(holdings(schema, "group-seen"), (held) => same(held, { b: 8 })), "b took all 8 partitions", 90_000)
        yield* eventually(Effect.map(summary(schema), (s) => s.rows === 1000), "b applied every event, a still stopped", 90_000)
        stalled.child.kill("SIGCONT")
        // a comes back: its late batch is fenced; then it heartbeats and takes half back, under new generations
        yield* eventually(Effect.map(holdings(schema, "group-seen"), (held) => same(held, { a: 4, b: 4 })), "a took its share back", 90_000)
        yield* appendTo(40, 5, "t")
        yield* eventually(Effect.map(summary(schema), (s) => s.rows === 1200), "every event is applied", 90_000)
        expect(yield* summary(schema)).toEqual({ rows: 1200, max: 1 })
        yield* stopAll([stalled, other])
        expect(problems(other)).toEqual([])
      }).pipe(Effect.scoped, Effect.provide(layer))
    }, 240_000)
  })
})
