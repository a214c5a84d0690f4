/**
 * The CLI as a process against the real PostgreSQL (a schema of its own per
 * store, dropped afterwards): `copy` round-trips file → PostgreSQL → file
 * keeping every event's id, type, data, metadata, tags, version and order,
 * resumably; the other commands read PostgreSQL like any store.
 */
import { rmSync } from "node:fs"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import Pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Event } from "chronicle"
import { EventId, EventStore, ExpectedVersion, FileEventStore, StreamId } from "chronicle"
import { PostgresEventStore } from "chronicle/postgres"
import { tempDirectory } from "../support/filesystem.js"
import { databaseUrl, postgresAvailable, uniqueSchema } from "../support/postgres.js"
import { allEvents, cli, content, hasStackTrace, seedAccounts, start, waitFor, withFileStore } from "./support.js"

const withPostgres = <A, E>(schema: string, effect: Effect.Effect<A, E, EventStore.EventStore>): Promise<A> =>
  Effect.runPromise(effect.pipe(Effect.provide(PostgresEventStore.layerFromUrl({ url: databaseUrl, schema, maxConnections: 2 }))))

// each test starts CLI processes (node + tsx): on a loaded machine that takes far longer than 30 s
describe.runIf(postgresAvailable())("chronicle CLI against PostgreSQL", { timeout: 180_000 }, () => {
  const schemas = { copy: uniqueSchema("cli_copy"), tail: uniqueSchema("cli_tail"), bench: uniqueSchema("cli_bench") }
  const pgStore = (schema: string) => {
    const url = new URL(databaseUrl)
    url.searchParams.set("schema", schema)
    return url.toString()
  }
  const directories: Array<string> = []
  const temp = (label: string) => {
    const directory = tempDirectory(`cli-pg-${label}`)
    directories.push(directory)
    return directory
  }
  let source: string
  let events: ReadonlyArray<Event.StoredEvent>
  const closed = StreamId.unsafeMake("account", "closed")

  beforeAll(async () => {
    source = temp("source")
    const course = StreamId.unsafeMake("subscription", "c1/s7")
    events = await withFileStore(source, Effect.gen(function*() {
      yield* seedAccounts
      yield* EventStore.append(course, [
        { eventId: EventId.unsafeGenerate(), type: "StudentSubscribedToCourse", data: { courseId: "c1", studentId: "s7", at: { room: "B 12", seats: [1, 2] } }, tags: ["course:c1", "student:s7"], schemaVersion: 2 },
        { eventId: EventId.unsafeGenerate(), type: "StudentUnsubscribedFromCourse", data: { courseId: "c1", studentId: "s7" }, metadata: { correlationId: "c-1", causationId: "x", nested: { ünïcode: "✓", n: null } }, tags: ["course:c1", "student:s7"] }
      ], { expectedVersion: ExpectedVersion.NoStream })
      yield* EventStore.append(closed, [{ type: "AccountOpened", data: { owner: "Old", currency: "EUR" } }], { expectedVersion: ExpectedVersion.NoStream })
      yield* EventStore.deleteStream(closed)
      return yield* allEvents
    }))
  })

  afterAll(async () => {
    for (const directory of directories) rmSync(directory, { recursive: true, force: true })
    const pool = new Pg.Pool({ connectionString: databaseUrl, max: 1 })
    for (const schema of Object.values(schemas)) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await pool.end()
  })

  it("copy: file → PostgreSQL (in two runs: the second resumes) → file, with every event's content byte for byte, in order", async () => {
    const target = pgStore(schemas.copy)
    const first = await cli(["copy", "--from", `file:${source}`, "--to", target, "--limit", "4"])
    expect(first.code).toBe(0)
    expect(first.stdout).toMatch(/^copied 4 events \(0 already there\) in 2 streams from file:.* to postgres:.*; stopped at position 4 of 9: run again to continue\n$/)
    const rest = await cli(["copy", "--from", `file:${source}`, "--to", target, "--json"])
    expect(rest.code).toBe(0)
    expect(JSON.parse(rest.stdout)).toMatchObject({ resumedAfter: "4", events: 5, appended: 5, alreadyPresent: 0, tombstones: 1, complete: true })

    const back = temp("back")
    const returned = await cli(["copy", "--from", target, "--to", `file:${back}`, "--json"])
    expect(returned.code).toBe(0)
    expect(JSON.parse(returned.stdout)).toMatchObject({ resumedAfter: "0", events: 9, appended: 9, tombstones: 1, complete: true })

    const inPostgres = await withPostgres(schemas.copy, Effect.zip(allEvents, EventStore.isDeleted(closed)))
    const inFile = await Effect.runPromise(Effect.zip(allEvents, EventStore.isDeleted(closed)).pipe(
      Effect.provide(FileEventStore.layer({ directory: back }).pipe(Layer.provide(NodeContext.layer)))
    ))
    expect(inPostgres[0].map(content)).toEqual(events.map(content))
    expect(inFile[0].map(content)).toEqual(events.map(content))
    expect([inPostgres[1], inFile[1]]).toEqual([true, true])

    // a re-run from the start recognises every event and writes none
    const again = await cli(["copy", "--from", `file:${source}`, "--to", target, "--restart", "--json"])
    expect(JSON.parse(again.stdout)).toMatchObject({ events: 9, appended: 0, alreadyPresent: 9 })
  })

  describe.concurrent("on the copied store", () => {
    it("stats --json: counts, and the size of the tables (pg_total_relation_size)", async ({ expect }) => {
      const run = await cli(["stats", "--store", pgStore(schemas.copy), "--json"])
      expect(run.code).toBe(0)
      const stats = JSON.parse(run.stdout)
      expect(stats).toMatchObject({ events: 9, streams: 4, size: { kind: "in tables" } })
      expect(stats.store).not.toContain("?schema=chronicle")
      const parts = Object.fromEntries(stats.size.parts.map((part: { name: string; bytes: number }) => [part.name, part.bytes]))
      expect(parts.events).toBeGreaterThan(0)
      expect(parts.streams).toBeGreaterThan(0)
      expect(stats.size.bytes).toBe(stats.size.parts.reduce((sum: number, part: { bytes: number }) => sum + part.bytes, 0))
    })

    it("export --format jsonl: the events as copied, one per line", async ({ expect }) => {
      const run = await cli(["export", "--store", pgStore(schemas.copy), "--format", "jsonl"])
      expect(run.code).toBe(0)
      const lines = run.stdout.trim().split("\n").map((line) => JSON.parse(line))
      expect(lines.map((line) => content({ ...line, globalPosition: BigInt(line.globalPosition), recordedAt: new Date(line.recordedAt) }))).toEqual(
        events.map(content)
      )
    })

    it("read and replay a stream", async ({ expect }) => {
      const [read, replay] = await Promise.all([
        cli(["read", "account-alan", "--store", pgStore(schemas.copy)]),
        cli(["replay", "account-alan", "--store", pgStore(schemas.copy), "--decider", "examples/BankAccount.ts", "--final"])
      ])
      expect(read.code).toBe(0)
      expect(read.stdout).toMatch(/^\s+1\s+\d+\s+\S+\s+AccountOpened\s+\{"owner":"Alan","currency":"GBP"\}$/m)
      expect(read.stdout).toMatch(/^\s+2\s+\d+\s+\S+\s+MoneyDeposited\s+\{"amount":2000\}$/m)
      expect(replay.code).toBe(0)
      expect(replay.stdout).toContain("state at version 2\nstatus: open\nowner: Alan\ncurrency: GBP\nbalance: 2000\n")
    })

    it("validate: the names of the tagged events pass; the deleted stream still counts", async ({ expect }) => {
      const run = await cli(["validate", "--store", pgStore(schemas.copy), "--json"])
      expect(run.code).toBe(0)
      expect(JSON.parse(run.stdout)).toMatchObject({ events: 9, streams: 4, errors: 0, warnings: 0 })
    })
  })

  it("tail --from-start --limit: the log so far, then live appends, then it stops", async () => {
    const store = pgStore(schemas.tail)
    const stream = StreamId.unsafeMake("tail", "t1")
    await withPostgres(schemas.tail, EventStore.append(stream, [{ type: "TailStarted", data: { n: 0 } }], { expectedVersion: ExpectedVersion.NoStream }))
    const child = start(["tail", "--store", store, "--from-start", "--limit", "3", "--json"])
    let stdout = ""
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    let stderr = ""
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
    await waitFor(() => stdout, (text) => text.includes("TailStarted"))
    await withPostgres(schemas.tail, EventStore.append(stream, [
      { type: "TailAppended", data: { n: 1 } },
      { type: "TailAppended", data: { n: 2 } }
    ], { expectedVersion: 1 }))
    expect(await exited).toBe(0)
    const lines = stdout.trim().split("\n").map((line) => JSON.parse(line))
    expect(lines.map((line) => [line.streamVersion, line.type, line.data.n])).toEqual([[1, "TailStarted", 0], [2, "TailAppended", 1], [3, "TailAppended", 2]])
    expect(stderr).toContain("following postgres://")
  })

  it("bench: a table of workloads with p50/p95/p99", async () => {
    const run = await cli(["bench", "--store", pgStore(schemas.bench), "--appends", "30", "--streams", "3", "--concurrency", "3"])
    expect(run.code).toBe(0)
    const lines = run.stdout.trim().split("\n")
    expect(lines[0]).toMatch(/^WORKLOAD\s+OPS\s+EVENTS\s+SECONDS\s+OPS\/S\s+EVENTS\/S\s+P50 MS\s+P95 MS\s+P99 MS$/)
    expect(lines.slice(1).map((line) => line.split(/\s{2,}/)[0])).toEqual(["write", "read", "read-all", "concurrent x3"])
    expect(run.stderr).toContain(`bench: writing streams bench-`)
  })

  it("an unreachable server or a schema without a store: one line, exit 1", async () => {
    const [unreachable, empty] = await Promise.all([
      cli(["stats", "--store", "postgres://postgres@127.0.0.1:1/nowhere"]),
      cli(["streams", "--store", pgStore("no_such_schema")])
    ])
    expect(unreachable.code).toBe(1)
    expect(unreachable.stderr).toMatch(/^chronicle: cannot open store postgres:\/\/postgres@127\.0\.0\.1:1\/nowhere\?schema=chronicle: .*ECONNREFUSED.*\n$/)
    expect(empty.code).toBe(1)
    expect(empty.stderr).toBe(`chronicle: no store at ${pgStore("no_such_schema")}: the schema no_such_schema has no chronicle tables\n`)
    for (const run of [unreachable, empty]) expect(hasStackTrace(run.stderr)).toBe(false)
  })
})
