/**
 * The process helpers of the history tests: a process counts as stopped
 * (SIGSTOP) only once every one of its threads is, since its threads stop
 * one by one and a node process writes files from threads other than its
 * main one.
 */
import { spawn } from "node:child_process"
import { describe, expect, it } from "vitest"
import { isStopped, threadStates, waitFor } from "./processes.js"

/** A node process whose main thread sleeps while a worker thread spins. */
const spinning = () => {
  const child = spawn(process.execPath, [
    "-e",
    `const { Worker } = require("node:worker_threads")
     new Worker("for (;;) {}", { eval: true }).on("online", () => console.log("spinning"))
     setInterval(() => {}, 1000)`
  ], { stdio: ["ignore", "pipe", "inherit"] })
  const online = new Promise<void>((resolve) => child.stdout.on("data", () => resolve()))
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()))
  return { child, online, exited }
}

describe.runIf(process.platform === "linux")("history test processes", () => {
  it("a process is stopped only when all its threads are: running, stopped by SIGSTOP, running again after SIGCONT", async () => {
    const { child, exited, online } = spinning()
    try {
      await online
      const pid = child.pid!
      // threads differ: the worker runs while the main thread sleeps, so the main thread alone tells little
      await waitFor("the worker thread to run", () => threadStates(pid).includes("R"))
      expect(threadStates(pid).length).toBeGreaterThan(1)
      expect(isStopped(pid)).toBe(false)

      child.kill("SIGSTOP")
      await waitFor("every thread to stop", () => isStopped(pid))
      expect(threadStates(pid).every((state) => state === "T" || state === "t")).toBe(true)

      child.kill("SIGCONT")
      await waitFor("the threads to run again", () => threadStates(pid).includes("R"))
      expect(isStopped(pid)).toBe(false)
    } finally {
      child.kill("SIGKILL")
      await exited
    }
  })

  it("a process that is gone has no threads and is not stopped", async () => {
    const { child, exited, online } = spinning()
    await online
    const pid = child.pid!
    child.kill("SIGKILL")
    await exited
    expect(threadStates(pid)).toEqual([])
    expect(isStopped(pid)).toBe(false)
  })
})
