/**
 * The filesystem store across OS processes sharing one directory, under
 * faults, its history and final log (the log file, read line by line)
 * checked by the history checker (the clients delete and erase doomed
 * streams too, so tombstones and erasures meet both faults):
 * - writers killed with SIGKILL mid-operation (their in-flight operation is
 *   unknown: stored wholly or not at all) and replaced;
 * - a writer stopped (SIGSTOP) while it holds the directory lock, for longer
 *   than the lock's stale time, so another process takes the lock over, then
 *   resumed (SIGCONT).
 */
import { rmSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { FileEventStore } from "chronicle"
import { tempDirectory } from "../support/filesystem.js"
import { check, summarize } from "./checker.js"
import { merge, readHistoryFile } from "./history.js"
import type { Worker } from "./processes.js"
import { completedOps, isStopped, startWorker, waitFor } from "./processes.js"
import type { WorkerConfig } from "./worker.js"
import { fileLog, prng, runSeed, runStats, sized, testTimeout } from "./workload.js"

const lockStaleMs = 2000
const streams = ["f-0", "f-1", "f-2", "f-3"]
/** Writers busy writing: appends outweigh reads, so the lock is rarely free. */
const appendHeavy = { read: 3, version: 2, readAll: 2, query: 2 }
/**
 * Writers that (nearly) only write, with big events: a writer then catches up
 * on what the others wrote under the lock itself, so a stop while it holds
 * the lock most likely lands between its look at the log and its write.
 * Deletes come more often than elsewhere, so that some are stopped holding
 * the lock in their turn.
 */
const writers = { read: 0, version: 1, readAll: 0, query: 0, decide: 1, handCondition: 0, delete: 6 }

const fleet = (label: string, directory: string, seed: number) => {
  let n = 0
  const workers: Array<Worker> = []
  const start = (ops: number, extra: Partial<WorkerConfig> = {}) => {
    const name = `${label}${++n}`
    const worker = startWorker({
      store: "filesystem",
      directory,
      lockStaleMs,
      // no fsync: what is written reaches the page cache, which survives SIGKILL; the locked section is the write itself
      fsync: false,
      process: name,
      clients: 3,
      ops,
      seed,
      streams,
      run: `${name}-`,
      historyFile: join(directory, `history-${name}.jsonl`),
      mix: appendHeavy,
      doomed: "f-d-",
      timeoutMs: 60_000,
      ...extra
    })
    workers.push(worker)
    return worker
  }
  const verdict = (started: number) => {
    const history = merge(...workers.map((w) => readHistoryFile(w.config.historyFile)))
    const log = fileLog(directory)
    const violations = check(history, log.events, { tombstones: log.tombstones })
    console.log(
      `[history filesystem ${label}] ${workers.length} processes; ${runStats(history)}; ${log.events.length} events in the log, ${log.tombstones.length} streams deleted; ${
        Date.now() - started
      } ms\n${
        log.problems.length > 0 ? `log problems: ${log.problems.join("; ")}\n` : ""
      }${summarize(violations, 5)}`
    )
    return { violations, problems: log.problems }
  }
  return { workers, start, verdict }
}

const logSize = (directory: string) => {
  try {
    return statSync(join(directory, FileEventStore.logFileName)).size
  } catch {
    return 0
  }
}

describe("filesystem store across processes: history check", () => {
  it("writers killed with SIGKILL mid-operation and replaced: every acknowledged append stored once, the unknown ones wholly or not at all", async () => {
    const seed = runSeed("filesystem-kill")
    const random = prng(seed)
    const started = Date.now()
    const directory = tempDirectory("history-kill")
    const { workers, start, verdict } = fleet("k", directory, seed)
    const ops = sized(80)
    const killed = new Set<Worker>()
    for (let i = 0; i < 3; i++) start(ops)
    await Promise.all(workers.map((w) => w.ready))
    for (let kill = 0; kill < sized(2, 6); kill++) {
      await Promise.all(workers.map((w) => w.ready.catch(() => {})))
      const live = workers.filter((w) => !killed.has(w) && w.child.exitCode === null)
      if (live.length === 0) break
      const victim = random.pick(live)
      const done = completedOps(victim)
      // kill it in the middle of its work: after it has made some progress, a random moment later
      await waitFor(`${victim.config.process} to make progress`, () => completedOps(victim) >= done + random.int(5, 25) || victim.child.exitCode !== null)
      await new Promise((resolve) => setTimeout(resolve, random.int(0, 30)))
      killed.add(victim)
      victim.child.kill("SIGKILL")
      await victim.exited
      start(Math.ceil(ops / 2))
    }
    const exits = await Promise.all(workers.map((w) => w.exited))
    workers.forEach((w, i) => {
      if (!killed.has(w)) expect(exits[i], `${w.config.process}: ${w.stderr()}`).toBe("0")
    })
    const { violations, problems } = verdict(started)
    expect(problems).toEqual([])
    expect(violations, summarize(violations, 10)).toEqual([])
    rmSync(directory, { recursive: true, force: true })
  }, testTimeout)

  it("a lock holder stopped (SIGSTOP) past the lock's stale time, then resumed: no version or position is written twice", async () => {
    const seed = runSeed("filesystem-stall")
    const random = prng(seed)
    const started = Date.now()
    const directory = tempDirectory("history-stall")
    const stopFile = join(directory, "stop")
    const { workers, start, verdict } = fleet("s", directory, seed)
    for (let i = 0; i < 3; i++) start(1_000_000, { stopFile, paddingBytes: 30_000, mix: writers })
    await Promise.all(workers.map((w) => w.ready))
    await waitFor("the writers to get going", () => workers.every((w) => completedOps(w) > 20))
    const wanted = sized(6, 3)
    let stalls = 0
    let probes = 0
    for (; stalls < wanted && probes < 200; probes++) {
      const suspect = random.pick(workers)
      const stoppedSince = Date.now()
      suspect.child.kill("SIGSTOP")
      // a write of its own may still land until every one of its threads has stopped: look from then on
      await waitFor(`${suspect.config.process} to stop`, () => isStopped(suspect.child.pid!))
      const stoppedAt = logSize(directory)
      // while it holds the lock, nobody else can write: the log stands still
      const others = await waitFor("another writer to write", () => logSize(directory) > stoppedAt, 300, 5).then(() => true, () => false)
      if (others) {
        suspect.child.kill("SIGCONT")
        continue
      }
      // the lock goes stale; another process takes it over and writes
      await waitFor("another process to take the stale lock over", () => logSize(directory) > stoppedAt, 30_000, 10)
      // only a takeover of a stale lock takes that long: the log stood still because the suspect held the lock
      const held = Date.now() - stoppedSince >= lockStaleMs * 0.9
      const takenOver = logSize(directory)
      await waitFor("the new holder to write some more", () => logSize(directory) > takenOver + 2000, 5_000, 10).catch(() => {})
      const before = completedOps(suspect)
      suspect.child.kill("SIGCONT")
      if (!held) continue
      stalls++
      await waitFor("the resumed writer to make progress", () => completedOps(suspect) > before, 30_000).catch(() => {})
      // enough: the log already shows the damage (the checker below says what it is)
      const positions = fileLog(directory).events.map((e) => e.position)
      if (new Set(positions).size < positions.length) break
    }
    writeFileSync(stopFile, "")
    const exits = await Promise.all(workers.map((w) => w.exited))
    workers.forEach((w, i) => expect(exits[i], `${w.config.process}: ${w.stderr()}`).toBe("0"))
    console.log(`[history filesystem s] ${stalls} lock holders stalled past the stale time (${probes} probes)`)
    expect(stalls).toBeGreaterThan(0)
    const { violations, problems } = verdict(started)
    expect(problems).toEqual([])
    expect(violations, summarize(violations, 10)).toEqual([])
    rmSync(directory, { recursive: true, force: true })
  }, testTimeout)
})
