/**
 * CPU per single append (1 event, fsync off) of the filesystem store against
 * the memory store (what the `EventStore` façade and the caller's
 * `runPromise` cost alone), each append awaited in a plain loop: the figures
 * behind "what stands in the way" of issue 20's single-append goal. `SRC` is
 * a chronicle `src/` directory (default this checkout's), to compare with
 * another version.
 *
 *   npx tsx bench/append-cost.ts [SRC]
 */
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer, ManagedRuntime } from "effect"

const src = path.resolve(process.argv[2] ?? path.join(path.dirname(new URL(import.meta.url).pathname), "..", "src"))
const { EventStore, ExpectedVersion, FileEventStore, MemoryEventStore, StreamId } = await import(path.join(src, "index.ts"))

/** Runs `append` `n` times after a warm-up; prints CPU and wall time per call. */
const measure = async (name: string, append: (version: number) => Promise<unknown>, n: number) => {
  let version = 0
  for (; version < 2000; version++) await append(version)
  const cpu = process.cpuUsage()
  const start = performance.now()
  for (let i = 0; i < n; i++, version++) await append(version)
  const { system, user } = process.cpuUsage(cpu)
  process.stdout.write(
    `${name}: ${((user + system) / n).toFixed(1)} µs CPU, ${((performance.now() - start) * 1000 / n).toFixed(1)} µs wall per append\n`
  )
}

const streamId = StreamId.unsafeMake("account", "a")
const appendWith = (runtime: ManagedRuntime.ManagedRuntime<unknown, unknown>) => (version: number) =>
  runtime.runPromise(
    EventStore.append(streamId, [{ type: "MoneyDeposited", data: { amount: 1 } }], { expectedVersion: ExpectedVersion.exact(version) })
  )

process.stdout.write(`${src}, load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}\n`)
const directory = fs.mkdtempSync(path.join(os.tmpdir(), "append-cost-"))
const file = ManagedRuntime.make(FileEventStore.layer({ directory, fsync: false }).pipe(Layer.provide(NodeContext.layer)))
await file.runPromise(Effect.void)
await measure("filesystem, fsync off", appendWith(file), 10_000)
await file.dispose()
fs.rmSync(directory, { recursive: true, force: true })
const memory = ManagedRuntime.make(MemoryEventStore.layer())
await measure("memory", appendWith(memory), 10_000)
await memory.dispose()
process.stdout.write(`load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}\n`)
