/**
 * Checkpoint compare-and-set across processes, under an adversary: racing
 * savers in several OS processes, stopped (SIGSTOP) at random moments in the
 * middle of a save, resumed later, or killed (SIGKILL) and replaced. The
 * checker: every acknowledged move went from where the checkpoint was, so
 * no two processes ever moved it from the same position (each move is one
 * up: no `next` is acknowledged twice), and the final checkpoint is at least
 * every acknowledged one.
 *
 * On PostgreSQL, several runner processes of one transactional projection
 * run side by side over the same log, stalled and resumed at random: each
 * event is applied to the read model exactly once.
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { join } from "node:path"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { CheckpointStore, EventStore, FileCheckpointStore, StreamId } from "chronicle"
import { PostgresCheckpointStore, PostgresEventStore } from "chronicle/postgres"
import { NodeContext } from "@effect/platform-node"
import { events } from "../contract/EventStoreContract.js"
import { prng, runSeed } from "../history/workload.js"
import { waitFor } from "../history/processes.js"
import { tempDirectory } from "../support/filesystem.js"
import { databaseUrl, dropSchemaAfter, postgresAvailable, uniqueSchema } from "../support/postgres.js"
import { pause } from "../support/time.js"

const onCi = process.env.CI === "true"

interface Racer {
  readonly child: ChildProcess
  readonly moves: Array<bigint>
  readonly stderr: () => string
  readonly exited: Promise<void>
}

const spawnWorker = (script: string, args: ReadonlyArray<string>): Racer => {
  const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "../support", script), ...args], {
    stdio: ["pipe", "pipe", "pipe"]
  })
  const moves: Array<bigint> = []
  let pending = ""
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk
    const lines = pending.split("\n")
    pending = lines.pop()!
    for (const line of lines) if (line.startsWith("ok ")) moves.push(BigInt(line.slice(3)))
  })
  let stderr = ""
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
  // "close", not "exit": the last lines a racer wrote may still be in the pipe when it exits
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()))
  return { child, moves, stderr: () => stderr, exited }
}

const isLive = (racer: Racer) => racer.child.exitCode === null && racer.child.signalCode === null

/**
 * Asks every live racer to stop after the move in hand (closes its stdin),
 * and kills those still running after a minute; answers how many had to be
 * killed (each may have moved the checkpoint without saying so).
 */
const stopGracefully = async (racers: ReadonlyArray<Racer>): Promise<number> => {
  const running = racers.filter(isLive)
  for (const racer of running) {
    racer.child.kill("SIGCONT")
    racer.child.stdin!.end()
  }
  const deadline = new Promise<"late">((resolve) => setTimeout(() => resolve("late"), 60_000).unref())
  let killed = 0
  for (const racer of running) {
    if ((await Promise.race([racer.exited.then(() => "done" as const), deadline])) === "late") {
      racer.child.kill("SIGKILL")
      await racer.exited
      killed++
    }
  }
  return killed
}

const stopAll = (racers: ReadonlyArray<Racer>) =>
  Promise.all(racers.map((racer) => {
    racer.child.kill("SIGCONT")
    racer.child.kill("SIGKILL")
    return racer.exited
  }))

describe("checkpoint compare-and-set across processes", () => {
  it("given 4 filesystem savers racing, stopped mid-save and resumed, or killed and replaced, then no position is moved from twice", async () => {
    const seed = runSeed("checkpoint-cas-filesystem")
    const random = prng(seed)
    const directory = tempDirectory("checkpoint-cas")
    const name = "contended"
    const racers: Array<Racer> = []
    const spawnRacer = () => racers.push(spawnWorker("checkpointWorker.ts", [directory, name]))
    const live = () => racers.filter(isLive)
    const acknowledged = () => racers.reduce((n, racer) => n + racer.moves.length, 0)
    let killedAtTheEnd = 0
    try {
      for (let i = 0; i < 4; i++) spawnRacer()
      await waitFor("the racers to move the checkpoint", () => acknowledged() >= 20, 120_000)
      for (let round = 0; round < 12; round++) {
        const victim = random.pick(live())
        const before = acknowledged()
        if (random.chance(0.25)) {
          victim.child.kill("SIGKILL")
          await victim.exited
          spawnRacer()
        } else {
          // stopped at a random moment of its loop: often between reading the checkpoint and linking its record
          await pause(random.int(0, 15))
          victim.child.kill("SIGSTOP")
          await waitFor("the others to move on while it is stopped", () => acknowledged() >= before + 10, 120_000)
          victim.child.kill("SIGCONT")
        }
        await waitFor("progress after the fault", () => acknowledged() >= before + 15, 120_000)
      }
      killedAtTheEnd = await stopGracefully(racers)
    } finally {
      await stopAll(racers)
    }
    for (const racer of racers) expect(racer.stderr(), "a racer failed").toBe("")
    const moves = racers.flatMap((racer) => racer.moves)
    const final = await Effect.runPromise(
      CheckpointStore.load(name).pipe(
        Effect.provide(FileCheckpointStore.layer({ directory }).pipe(Layer.provide(NodeContext.layer)))
      )
    )
    const top = Option.getOrThrow(final)
    const twice = moves.filter((next, i) => moves.indexOf(next) !== i)
    expect(twice, `moves acknowledged twice (seed ${seed})`).toEqual([])
    expect(moves.every((next) => next <= top)).toBe(true)
    // a killed saver may have moved it without saying so: at most one silent move per kill
    expect(Number(top) - moves.length).toBeLessThanOrEqual(racers.length - 4 + killedAtTheEnd)
    expect(moves.length).toBeGreaterThan(150)
  }, 300_000)

  describe.runIf(postgresAvailable() || onCi)("on PostgreSQL", () => {
    const schema = uniqueSchema("cas_processes")
    const stores = dropSchemaAfter(schema).pipe(
      Layer.provideMerge(
        PostgresCheckpointStore.layer({ schema }).pipe(
          Layer.provideMerge(PostgresEventStore.layerFromUrl({ url: databaseUrl, schema, maxConnections: 4 }))
        )
      )
    )

    it.live("given 3 runner processes of one transactional projection, stalled and resumed at random, then every event is applied once", () =>
      Effect.gen(function*() {
        const seed = runSeed("checkpoint-cas-postgres")
        const random = prng(seed)
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore.EventStore
        yield* sql.unsafe(`CREATE TABLE "${schema}".seen (position bigint PRIMARY KEY, applied int NOT NULL)`)
        const total = 1200
        for (let s = 0; s < 24; s++) {
          yield* store.append(StreamId.unsafeMake("crash", `s${s}`), events(total / 24), { expectedVersion: "NoStream" })
        }
        const seenRows = Effect.map(sql.unsafe<{ n: string }>(`SELECT count(*)::text AS n FROM "${schema}".seen`), (rows) => Number(rows[0]!.n))
        const runners: Array<Racer> = []
        const spawnRunner = () => runners.push(spawnWorker("projectionWorker.ts", [databaseUrl, schema, "run", "1"]))
        const live = () => runners.filter((runner) => runner.child.exitCode === null && runner.child.signalCode === null)
        const rows = () => Effect.runPromise(Effect.provideService(seenRows, SqlClient.SqlClient, sql))
        yield* Effect.promise(async () => {
          for (let i = 0; i < 3; i++) spawnRunner()
          for (let round = 0; round < 40 && (await rows()) < total; round++) {
            // a runner that lost the checkpoint to another stops: a supervisor starts it again
            while (live().length < 3) spawnRunner()
            const victim = random.pick(live())
            victim.child.kill("SIGSTOP")
            await pause(random.int(20, 300))
            victim.child.kill("SIGCONT")
            await pause(random.int(0, 200))
          }
          while (live().length < 1) spawnRunner()
        })
        yield* Effect.promise(() => waitForAsync(rows, total))
        yield* Effect.promise(() => stopAll(runners))
        const [summary] = yield* sql.unsafe<{ rows: string; max: number }>(
          `SELECT count(*)::text AS rows, coalesce(max(applied), 0) AS max FROM "${schema}".seen`
        )
        expect(Number(summary!.rows)).toBe(total)
        expect(summary!.max, `an event applied twice (seed ${seed})`).toBe(1)
        const lost = /Checkpoint "crash-totals" moved/
        const stopped = runners.filter((runner) => lost.test(runner.stderr())).length
        console.log(`[checkpoint-cas-postgres] ${runners.length} runners started, ${stopped} stopped on CheckpointMoved`)
        // a runner ends only by losing the checkpoint to another (or by our kill at the end)
        for (const runner of runners) if (!lost.test(runner.stderr())) expect(runner.stderr()).toBe("")
      }).pipe(Effect.provide(stores)), 300_000)

    it.live("given 3 member processes of one partitioned projection, one killed (SIGKILL) mid-run and restarted, then every event is applied once", () => {
      const partitioned = uniqueSchema("partition_processes")
      const layer = dropSchemaAfter(partitioned).pipe(
        Layer.provideMerge(
          PostgresCheckpointStore.layer({ schema: partitioned }).pipe(
            Layer.provideMerge(PostgresEventStore.layerFromUrl({ url: databaseUrl, schema: partitioned, maxConnections: 4 }))
          )
        )
      )
      return Effect.gen(function*() {
        const seed = runSeed("partitioned-postgres")
        const random = prng(seed)
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore.EventStore
        yield* sql.unsafe(`CREATE TABLE "${partitioned}".seen (position bigint PRIMARY KEY, applied int NOT NULL)`)
        const total = 1500
        for (let s = 0; s < 30; s++) {
          yield* store.append(StreamId.unsafeMake("crash", `s${s}`), events(total / 30), { expectedVersion: "NoStream" })
        }
        const rows = () =>
          Effect.runPromise(
            Effect.map(sql.unsafe<{ n: string }>(`SELECT count(*)::text AS n FROM "${partitioned}".seen`), (r) => Number(r[0]!.n))
          )
        const member = (i: number) => spawnWorker("projectionWorker.ts", [databaseUrl, partitioned, "run", "2", `${i}/3`])
        const members = [0, 1, 2].map(member)
        const victim = random.int(0, 2)
        yield* Effect.promise(async () => {
          const killAt = random.int(100, 600)
          await waitForAsync(rows, killAt)
          members[victim]!.child.kill("SIGKILL")
          await members[victim]!.exited
          members.push(member(victim))
          await waitForAsync(rows, total)
        })
        // every member goes on to the head, also past a last batch with none of its own events
        const head = yield* store.headPosition
        const atHead = Effect.gen(function*() {
          let count = 0
          for (const i of [0, 1, 2]) {
            if (Option.getOrElse(yield* CheckpointStore.load(`crash-totals#${i}/3`), () => 0n) === head) count++
          }
          return count
        })
        const context = yield* Effect.context<CheckpointStore.CheckpointStore>()
        yield* Effect.promise(() => waitForAsync(() => Effect.runPromise(Effect.provide(atHead, context)), 3))
        yield* Effect.promise(() => stopAll(members))
        const [summary] = yield* sql.unsafe<{ rows: string; max: number }>(
          `SELECT count(*)::text AS rows, coalesce(max(applied), 0) AS max FROM "${partitioned}".seen`
        )
        expect(Number(summary!.rows)).toBe(total)
        expect(summary!.max, `an event applied twice (seed ${seed})`).toBe(1)
        for (const worker of members) expect(worker.stderr()).toBe("")
        for (const i of [0, 1, 2]) expect(yield* CheckpointStore.load(`crash-totals#${i}/3`)).toEqual(Option.some(head))
      }).pipe(Effect.provide(layer))
    }, 300_000)
  })
})

/** Waits until `count()` reaches `target`, asking every 50 ms (up to 4 minutes). */
const waitForAsync = async (count: () => Promise<number>, target: number) => {
  const deadline = Date.now() + 240_000
  while ((await count()) < target) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${target} rows`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
