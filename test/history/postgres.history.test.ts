/**
 * The PostgreSQL store under a randomized concurrent workload, its history
 * and final log (the events table, read with SQL) checked by the history
 * checker. Writers: fibers on two store instances of this process (separate
 * pools, as separate processes would have) and two OS processes. Faults, at
 * random moments:
 * - another session holds a stream's row in an open transaction for a while
 *   (`UPDATE streams SET version = version`), so appends to it wait and
 *   commit late, while appends elsewhere go on;
 * - a backend of the store's pools is terminated mid-statement
 *   (`pg_terminate_backend`, found by application_name);
 * and DCB decisions on tagged, typed and types-only (and match-all) queries
 * run throughout, and every client deletes (and erases) doomed streams that
 * the others still append to; a terminated backend may be a delete's.
 */
import { SqlClient } from "@effect/sql"
import { rmSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer } from "effect"
import Pg from "pg"
import { EventId, EventStore, StreamId } from "chronicle"
import { PostgresEventStore } from "chronicle/postgres"
import { tempDirectory } from "../support/filesystem.js"
import { databaseUrl, postgresAvailable, uniqueSchema } from "../support/postgres.js"
import { check, summarize } from "./checker.js"
import { memoryRecorder, merge, now, readHistoryFile } from "./history.js"
import type { Worker } from "./processes.js"
import { startWorker } from "./processes.js"
import { postgresLog, postgresTombstones, prng, runClient, runSeed, runStats, sized, testTimeout } from "./workload.js"

/**
 * Streams s0…s5 and who writes them: the held stream s0 sorts first, so a
 * group commit that includes it waits on it before anything else; instance b
 * never writes s0, so it keeps writing s1 and s2 while a's group waits.
 */
const streams = ["s0", "s1", "s2", "s3", "s4", "s5"]
const homes = {
  a: ["s0", "s1", "s2", "s3"],
  b: ["s1", "s2", "s4", "s5"],
  p1: ["s0", "s3", "s4", "s5"],
  p2: ["s1", "s2", "s3", "s5"]
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.runIf(postgresAvailable())("PostgreSQL store: history check", () => {
  it.live("two store instances and two processes, with rows held open, backends terminated and DCB decisions: no violations", () =>
    Effect.gen(function*() {
      const seed = runSeed("postgres")
      const random = prng(seed)
      const started = Date.now()
      const schema = uniqueSchema("history")
      const tag = `${process.pid}_${Date.now().toString(36)}`
      const app = (name: string) => `chist_${tag}_${name}`
      const instance = (name: string) =>
        PostgresEventStore.layerFromUrl({ url: databaseUrl, schema, maxConnections: 6, applicationName: app(name) })
      const contextA = yield* Layer.build(instance("a"))
      const a = Context.get(contextA, EventStore.EventStore)
      const sql = Context.get(contextA, SqlClient.SqlClient)
      yield* Effect.addFinalizer(() => Effect.ignore(sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)))
      const b = Context.get(yield* Layer.build(instance("b")), EventStore.EventStore)

      const recorder = memoryRecorder()
      // every stream exists before the faults begin (a held row needs a row)
      for (const stream of streams) {
        const eventId = EventId.unsafeGenerate()
        const base = { id: `setup:${stream}`, process: "main", client: "setup" }
        recorder.record({ ...base, time: now(), type: "invoke", op: { f: "append", stream, events: [{ id: eventId, type: "Opened", tags: [] }], expected: "NoStream" } })
        const result = yield* a.append(StreamId.unsafeParse(stream), [{ eventId, type: "Opened", data: {} }], { expectedVersion: "NoStream" })
        recorder.record({ ...base, time: now(), type: "ok", value: { f: "append", version: result.streamVersion, positions: result.globalPositions } })
      }

      const directory = tempDirectory("history-pg")
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true })))
      const workers: Array<Worker> = (["p1", "p2"] as const).map((name) =>
        startWorker({
          store: "postgres",
          url: databaseUrl,
          schema,
          applicationName: app(name),
          maxConnections: 6,
          process: name,
          clients: 4,
          ops: sized(100),
          seed,
          streams: homes[name],
          run: `${name}-`,
          historyFile: join(directory, `history-${name}.jsonl`),
          doomed: "d-",
          timeoutMs: 60_000
        })
      )

      let stopped = false
      const clients = yield* Effect.fork(Effect.all(
        (["a", "b"] as const).flatMap((name) =>
          Array.from({ length: 5 }, (_, c) =>
            runClient(name === "a" ? a : b, recorder, {
              seed,
              process: "main",
              client: `${name}/c${c}`,
              streams: homes[name],
              run: `${name}-`,
              ops: 1_000_000,
              timeoutMs: 60_000,
              doomed: "d-",
              stop: () => stopped
            }))
        ),
        { concurrency: "unbounded", discard: true }
      ))

      // the faults, until the processes are done and enough of them happened
      const faults = { holds: 0, terminated: 0 }
      const wanted = sized(8, 5)
      yield* Effect.promise(async () => {
        await Promise.all(workers.map((w) => w.ready))
        const session = new Pg.Client({ connectionString: databaseUrl, application_name: `chfault_${tag}` })
        await session.connect()
        let done = false
        void Promise.all(workers.map((w) => w.exited)).then(() => void (done = true))
        try {
          while (!done || faults.holds < wanted) {
            const held = random.chance(0.7) ? "s0" : random.pick(streams)
            await session.query("BEGIN")
            await session.query(`UPDATE "${schema}".streams SET version = version WHERE stream_id = $1`, [held])
            await pause(random.int(200, 600))
            if (random.chance(0.5)) {
              const killed = await session.query(
                `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
                  WHERE application_name LIKE $1 AND state = 'active' AND (query ILIKE '%append%' OR query ILIKE '%deleted_at%')
                  ORDER BY random() LIMIT 1`,
                [`chist\\_${tag}\\_%`]
              )
              faults.terminated += killed.rowCount ?? 0
            }
            await session.query("COMMIT")
            faults.holds++
            await pause(random.int(50, 300))
          }
        } finally {
          await session.end()
        }
      })
      stopped = true
      yield* Fiber.join(clients)
      const exits = yield* Effect.promise(() => Promise.all(workers.map((w) => w.exited)))
      workers.forEach((w, i) => expect(exits[i], `${w.config.process}: ${w.stderr()}`).toBe("0"))

      const history = merge(recorder.entries, ...workers.map((w) => readHistoryFile(w.config.historyFile)))
      const log = yield* postgresLog(schema).pipe(Effect.provideService(SqlClient.SqlClient, sql))
      const tombstones = yield* postgresTombstones(schema).pipe(Effect.provideService(SqlClient.SqlClient, sql))
      const violations = check(history, log, { tombstones })
      console.log(
        `[history postgres] ${faults.holds} rows held, ${faults.terminated} backends terminated; ${runStats(history)}; ${log.length} events in the log, ${tombstones.length} streams deleted; ${
          Date.now() - started
        } ms\n${summarize(violations, 4)}`
      )
      expect(violations, summarize(violations, 10)).toEqual([])
    }).pipe(Effect.scoped), testTimeout)
})
