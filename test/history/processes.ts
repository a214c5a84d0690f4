/**
 * Worker processes of the history tests: spawn one (`node --import tsx
 * worker.ts`), wait until its store is open, signal it, wait for it to end.
 */
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import type { Entry } from "./history.js"
import { readHistoryFile } from "./history.js"
import type { WorkerConfig } from "./worker.js"

const workerScript = join(import.meta.dirname, "worker.ts")

export interface Worker {
  readonly config: WorkerConfig
  readonly child: ChildProcess
  /** Resolves once the store is open in the worker. */
  readonly ready: Promise<void>
  /** Resolves with the exit code (or signal) when the process ends. */
  readonly exited: Promise<string>
  /** What the worker wrote to stderr (for failures). */
  readonly stderr: () => string
}

export const startWorker = (config: WorkerConfig): Worker => {
  const child = spawn(process.execPath, ["--import", "tsx", workerScript, JSON.stringify(config)], {
    cwd: join(import.meta.dirname, "../.."),
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stderr = ""
  child.stderr!.on("data", (data: Buffer) => void (stderr += data.toString()))
  const exited = new Promise<string>((resolve) => child.on("exit", (code, signal) => resolve(signal ?? String(code))))
  const ready = new Promise<void>((resolve, reject) => {
    let out = ""
    child.stdout!.on("data", (data: Buffer) => {
      out += data.toString()
      if (out.includes("ready\n")) resolve()
    })
    void exited.then((how) => reject(new Error(`worker ${config.process} ended (${how}) before it was ready: ${stderr}`)))
  })
  ready.catch(() => {})
  return { config, child, ready, exited, stderr: () => stderr }
}

/** Waits until `condition` holds, polling every `everyMs`; fails after `timeoutMs` (a generous bound, not a schedule). */
export const waitFor = async (what: string, condition: () => boolean, timeoutMs = 60_000, everyMs = 10): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/** The entries a worker has recorded so far (none when its file does not exist yet). */
export const historyOf = (worker: Worker): Array<Entry> =>
  existsSync(worker.config.historyFile) ? readHistoryFile(worker.config.historyFile) : []

/** How many operations a worker has completed so far (cheap: counts lines that complete one). */
export const completedOps = (worker: Worker): number => {
  if (!existsSync(worker.config.historyFile)) return 0
  const text = readFileSync(worker.config.historyFile, "utf8")
  let count = 0
  for (let at = text.indexOf("\"type\":\"ok\""); at !== -1; at = text.indexOf("\"type\":\"ok\"", at + 1)) count++
  return count
}

/**
 * The scheduler state of every thread of a process, from /proc/<pid>/task/<tid>/stat
 * (`R` running, `S` sleeping, `D` in an uninterruptible wait such as a disk write, `T`
 * stopped, ...); empty when the process is gone. Linux only.
 */
export const threadStates = (pid: number): Array<string> => {
  const tasks = `/proc/${pid}/task`
  let tids: Array<string>
  try {
    tids = readdirSync(tasks)
  } catch {
    return []
  }
  return tids.flatMap((tid) => {
    try {
      // pid (comm) state ...: comm may hold spaces and parentheses, the state follows its last ")"
      const stat = readFileSync(`${tasks}/${tid}/stat`, "utf8")
      return [stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3)]
    } catch {
      return [] // the thread ended meanwhile
    }
  })
}

/**
 * Whether a process is stopped (SIGSTOP) in all its threads, not only its main one: a
 * stop reaches each thread on its own, and a node process writes files from its libuv
 * pool threads, so until every thread is stopped a write of its own may still land.
 */
export const isStopped = (pid: number): boolean => {
  const states = threadStates(pid)
  return states.length > 0 && states.every((state) => state === "T" || state === "t")
}
