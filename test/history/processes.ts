/**
 * Worker processes of the history tests: spawn one (`node --import tsx
 * worker.ts`), wait until its store is open, signal it, wait for it to end.
 */
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
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
