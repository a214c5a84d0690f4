/* global process, console */
/**
 * What importing chronicle costs, built (`npm run build` first): in a fresh
 * `node` process each, (a) `await import("<root>/dist/index.js")` and (b)
 * that import plus opening a small filesystem store (10 events) and reading
 * one event, read-only; rounds interleave the builds given. Wall time and
 * CPU time (user + system, all threads) from before the import. Then one process
 * each under bench/support/moduleCount.mjs: the modules (a) and (b) load, by
 * package (ESM modules: CommonJS ones a package requires are not seen).
 *
 *   flock /tmp/bench.lock node bench/import-cost.mjs --runs 10 ROOT [ROOT…]
 *
 * A ROOT is a checkout with dist/ built and node_modules/. Plain node, no
 * tsx: its loader would be timed too. Prints medians with ranges and
 * `uptime` at start and end.
 */
import { execFileSync, execSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { pathToFileURL } from "node:url"

const at = process.argv.indexOf("--runs")
const runs = at === -1 ? 10 : Number(process.argv[at + 1])
const roots = process.argv.slice(2).filter((arg, i, all) => arg !== "--runs" && all[i - 1] !== "--runs").map((root) => path.resolve(root))
if (roots.length === 0) throw new Error("usage: node bench/import-cost.mjs [--runs N] ROOT [ROOT…]")
const counter = pathToFileURL(path.join(import.meta.dirname, "support", "moduleCount.mjs")).href

const entry = (root) => pathToFileURL(path.join(root, "dist", "index.js")).href

/** The program a child runs: prints the ms it took, from before the import to the end, and the CPU ms it used (user + system). */
const program = (root, directory, mode) => `
const start = performance.now()
const cpu = process.cpuUsage()
const { EventStore, FileEventStore, StreamId } = await import(${JSON.stringify(entry(root))})
if (${JSON.stringify(mode)} !== "import") {
  const Effect = await import("effect/Effect")
  const Layer = await import("effect/Layer")
  const Stream = await import("effect/Stream")
  const Chunk = await import("effect/Chunk")
  const NodeContext = await import("@effect/platform-node/NodeContext")
  const store = FileEventStore.layer({ directory: ${JSON.stringify(directory)}, readOnly: ${mode === "open"} }).pipe(Layer.provide(NodeContext.layer))
  const stream = StreamId.unsafeMake("account", "1")
  const program = ${mode === "open"}
    ? Effect.flatMap(EventStore.EventStore, (s) => Stream.runCollect(s.read(stream, { direction: "backwards", limit: 1 })))
    : Effect.flatMap(EventStore.EventStore, (s) => s.append(stream, Array.from({ length: 10 }, (_, i) => ({ type: "Deposited", data: { amount: i } })), { expectedVersion: "Any" }))
  const result = await Effect.runPromise(Effect.provide(program, store))
  if (${mode === "open"} && Chunk.size(result) !== 1) throw new Error("the read found nothing")
}
const used = process.cpuUsage(cpu)
process.stdout.write((performance.now() - start) + " " + (used.user + used.system) / 1000 + "\\n")
`

/** Wall and CPU ms of one fresh process. */
const child = (root, directory, mode) =>
  execFileSync(process.execPath, ["--input-type=module", "-e", program(root, directory, mode)], { cwd: root, encoding: "utf8" })
    .split("\n")[0].split(" ").map(Number)

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
const summary = (values) => `median ${median(values).toFixed(0)} ms (${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)})`

const directory = mkdtempSync(path.join(os.tmpdir(), "chronicle-import-cost-"))
try {
  child(roots[0], directory, "write")
  console.log(`uptime at start: ${execSync("uptime", { encoding: "utf8" }).trim()}`)
  const times = new Map(roots.map((root) => [root, { import: [], open: [] }]))
  for (let run = 0; run < runs; run++) {
    for (const root of roots) {
      times.get(root).import.push(child(root, directory, "import"))
      times.get(root).open.push(child(root, directory, "open"))
    }
  }
  console.log(`uptime at end:   ${execSync("uptime", { encoding: "utf8" }).trim()}`)
  for (const root of roots) {
    const { import: imports, open } = times.get(root)
    console.log(`\n${root} (${runs} runs, interleaved)`)
    for (const [what, samples] of [["import(\"dist/index.js\")", imports], ["import + open a 10-event store + read 1 event", open]]) {
      console.log(`  ${what}: wall ${summary(samples.map(([wall]) => wall))}, CPU ${summary(samples.map(([, cpu]) => cpu))}`)
    }
    for (const mode of ["import", "open"]) {
      const counted = execFileSync(process.execPath, ["--import", counter, "--input-type=module", "-e", program(root, directory, mode)], {
        cwd: root,
        encoding: "utf8"
      })
      const lines = counted.split("\n").filter((line) => line.startsWith("modules") || /^\S+ \d+$/.test(line))
      console.log(`  modules loaded (${mode}): ${lines.join(", ")}`)
    }
  }
} finally {
  rmSync(directory, { recursive: true, force: true })
}
