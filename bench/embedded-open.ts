/**
 * Opening a large filesystem store: open + first read (a stream's last
 * event) (a) from the index checkpoint (`index.chk`, then only the log
 * after it is scanned) and (b) with the checkpoint removed (the whole log
 * scanned and checksummed), in interleaved rounds. The store is built once.
 *
 *   npx tsx bench/embedded-open.ts --events 1000000 --rounds 5
 *
 * `--directory DIR` keeps the store in DIR and reuses it on the next run (it
 * is built only when DIR holds no log; a checkpoint this version cannot read
 * is rewritten first); `--no-full-scan` leaves out the full-scan rounds.
 *
 * Prints medians with their ranges, `os.loadavg()` at start and end, and the
 * sizes of the log and the checkpoint.
 */
import { existsSync, mkdirSync, renameSync, statSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { NodeContext } from "@effect/platform-node"
import { Chunk, Effect, Stream } from "effect"
import { EventId, FileEventStore, StreamId } from "../src/index.js"
import { summarize, withTempDirectory } from "./support.js"

const argument = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`)
  return at === -1 ? fallback : Number(process.argv[at + 1])
}
const events = argument("events", 1_000_000)
const rounds = argument("rounds", 5)
const keptDirectory = process.argv.includes("--directory") ? process.argv[process.argv.indexOf("--directory") + 1] : undefined
const fullScans = !process.argv.includes("--no-full-scan")
const streams = 10_000
const perAppend = 100

const bench = (directory: string) => {
const checkpoint = path.join(directory, FileEventStore.indexCheckpointFileName)
const aside = `${checkpoint}.aside`
const open = (readOnly: boolean) => FileEventStore.make({ directory, fsync: false, readOnly }).pipe(Effect.provide(NodeContext.layer))

const build = Effect.scoped(Effect.gen(function*() {
  const store = yield* open(false)
  for (let n = 0; n < events; n += perAppend) {
    const streamId = StreamId.unsafeMake("account", String((n / perAppend) % streams))
    const batch = Array.from({ length: Math.min(perAppend, events - n) }, (_, i) => ({
      eventId: EventId.unsafeGenerate(),
      type: i % 2 === 0 ? "MoneyDeposited" : "MoneyWithdrawn",
      data: { amount: (n + i) % 1000, note: "a deposit of some size" }
    }))
    yield* store.append(streamId, batch, { expectedVersion: "Any" })
    if (n % 100_000 === 0) process.stderr.write(`built ${n} events\n`)
  }
}))

/** Open + first read, read-only (so no round writes a checkpoint), in ms. */
const openAndRead = Effect.scoped(Effect.gen(function*() {
  const start = performance.now()
  const store = yield* open(true)
  const last = yield* Stream.runCollect(store.read(StreamId.unsafeMake("account", "7"), { direction: "backwards", limit: 1 }))
  if (Chunk.size(last) !== 1) throw new Error("the first read found nothing")
  return performance.now() - start
}))

const program = Effect.gen(function*() {
  const startLoad = os.loadavg()
  if (existsSync(path.join(directory, FileEventStore.logFileName))) {
    console.log(`reusing the store in ${directory} ...`)
    // a writing open and close writes the checkpoint again when it did not check out (an older format)
    yield* Effect.scoped(open(false))
  } else {
    console.log(`building a ${events}-event store in ${directory} ...`)
    yield* build
  }
  const logBytes = statSync(path.join(directory, FileEventStore.logFileName)).size
  const checkpointBytes = statSync(checkpoint).size
  const withCheckpoint: Array<number> = []
  const fullScan: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    withCheckpoint.push(yield* openAndRead)
    if (fullScans) {
      renameSync(checkpoint, aside)
      fullScan.push(yield* openAndRead)
      renameSync(aside, checkpoint)
    }
    console.log(`round ${round + 1}: checkpoint ${withCheckpoint.at(-1)!.toFixed(0)} ms${fullScans ? `, full scan ${fullScan.at(-1)!.toFixed(0)} ms` : ""}, load ${os.loadavg()[0]!.toFixed(2)}`)
  }
  const show = (label: string, rounds: ReadonlyArray<number>) => {
    const s = summarize(rounds)
    console.log(`${label}: median ${s.median.toFixed(0)} ms (range ${s.min.toFixed(0)}–${s.max.toFixed(0)})`)
  }
  console.log(`\n${events} events; log ${(logBytes / 2 ** 20).toFixed(1)} MiB, checkpoint ${(checkpointBytes / 2 ** 20).toFixed(1)} MiB`)
  show("open + first read, from the checkpoint", withCheckpoint)
  if (fullScans) show("open + first read, full scan (no checkpoint)", fullScan)
  console.log(`load average (1, 5, 15 min): start ${startLoad.map((l) => l.toFixed(2)).join(", ")}; end ${os.loadavg().map((l) => l.toFixed(2)).join(", ")}; ${os.cpus().length} cores`)
})

return program
}

if (keptDirectory === undefined) await withTempDirectory("open", (directory) => Effect.runPromise(bench(directory)))
else {
  mkdirSync(keptDirectory, { recursive: true })
  await Effect.runPromise(bench(keptDirectory))
}
