/**
 * Single-append throughput of the filesystem store against raw SQLite (issue
 * 20), the part of `bench/embedded.ts` that the append path's levers move,
 * in interleaved rounds (the order rotates every round): 1 writer and 16
 * writers, 1 event per append, fsync on (SQLite: WAL, `synchronous=FULL`)
 * and off (`synchronous=NORMAL`). `--base DIR` adds a copy of chronicle's
 * `src/` (say `git archive HEAD~1 src | tar -x -C .bench-base`) as a third
 * contender, to measure a change side by side with what it changes. Prints
 * `os.loadavg()` before and after, medians and ranges over the rounds.
 *
 *   npx tsx bench/embedded-append.ts [--rounds 5] [--millis 1500] [--base .bench-base/src]
 *
 * `--driver MILLIS on|off [--base DIR]` only appends (chronicle, 1 writer)
 * for that long and prints the rate and the CPU time per append: a process to
 * run under `strace -f -c` or
 * `node --cpu-prof`.
 */
import os from "node:os"
import path from "node:path"
import type { EmbeddedContender, EmbeddedStore } from "./embedded-store.js"
import { decimal, integer, perSecond, summarize, table, withTempDirectory } from "./support.js"

const argv = process.argv.slice(2)
const option = (name: string) => {
  const at = argv.indexOf(name)
  return at === -1 ? undefined : argv[at + 1]
}

/** A contender built from a chronicle source tree, through its public modules only. */
const chronicleFrom = async (src: string): Promise<EmbeddedContender> => {
  const { NodeContext } = await import("@effect/platform-node")
  const { Effect, Layer, ManagedRuntime } = await import("effect")
  const root = path.resolve(src)
  const { EventStore, ExpectedVersion, FileEventStore, StreamId } = await import(path.join(root, "index.ts"))
  return {
    name: src,
    open: async (directory, fsync) => {
      const runtime = ManagedRuntime.make(FileEventStore.layer({ directory, fsync }).pipe(Layer.provide(NodeContext.layer)))
      await runtime.runPromise(Effect.void)
      const store: EmbeddedStore = {
        append: (stream, version, size) =>
          runtime.runPromise(Effect.map(
            EventStore.append(
              StreamId.unsafeMake("account", stream),
              Array.from({ length: size }, () => ({ type: "MoneyDeposited", data: { amount: 1 } })),
              { expectedVersion: ExpectedVersion.exact(version) }
            ),
            (result: { streamVersion: number }) => result.streamVersion
          )),
        seed: () => Promise.reject(new Error("not here")),
        load: () => Promise.reject(new Error("not here")),
        readLast: () => Promise.reject(new Error("not here")),
        close: () => runtime.dispose()
      }
      return store
    }
  }
}

/** Each writer appends to its own stream until the time is up; `versions` are the streams' versions, kept across calls. */
const appendFor = async (store: EmbeddedStore, versions: Array<number>, millis: number) => {
  const deadline = performance.now() + millis
  const start = performance.now()
  const counts = await Promise.all(versions.map(async (_, w) => {
    let count = 0
    while (performance.now() < deadline) {
      versions[w] = await store.append(`w${w}`, versions[w]!, 1)
      count++
    }
    return count
  }))
  return perSecond(counts.reduce((a, b) => a + b, 0), performance.now() - start)
}

const srcDirectory = path.join(path.dirname(new URL(import.meta.url).pathname), "..", "src")

const driver = async (millis: number, fsync: boolean) => {
  const chronicle = await chronicleFrom(option("--base") ?? srcDirectory)
  await withTempDirectory("append-driver", async (directory) => {
    const store = await chronicle.open(directory, fsync)
    const versions = [0]
    const cpu = process.cpuUsage()
    const rate = await appendFor(store, versions, millis)
    const { system, user } = process.cpuUsage(cpu)
    await store.close()
    // CPU per append moves less than the rate with the machine shared
    process.stdout.write(`${integer(rate)} appends/s, ${integer((user + system) / versions[0]!)} µs CPU per append\n`)
  })
}

const compare = async () => {
  const rounds = Number(option("--rounds") ?? 5)
  const millis = Number(option("--millis") ?? 1500)
  const base = option("--base")
  const contenders: Array<EmbeddedContender> = [await chronicleFrom(srcDirectory)]
  if (base !== undefined) contenders.push(await chronicleFrom(base))
  contenders.push((await import(new URL("./sqlite/raw.ts", import.meta.url).href) as { default: EmbeddedContender }).default)
  const names = ["chronicle", ...(base === undefined ? [] : [`base (${base})`]), "raw SQLite"]
  const workloads = [1, 16].flatMap((writers) => [true, false].map((fsync) => ({ writers, fsync })))
  const figures = workloads.map(() => contenders.map((): Array<number> => []))
  const before = os.loadavg()
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < contenders.length; i++) {
      const c = (i + round) % contenders.length
      for (const [w, { fsync, writers }] of workloads.entries()) {
        await withTempDirectory("append", async (directory) => {
          const store = await contenders[c]!.open(directory, fsync)
          const versions = Array.from({ length: writers }, () => 0)
          await appendFor(store, versions, 300)
          figures[w]![c]!.push(await appendFor(store, versions, millis))
          await store.close()
        })
      }
    }
    process.stderr.write(`round ${round + 1}/${rounds}, load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}\n`)
  }
  const after = os.loadavg()
  const cell = (rates: ReadonlyArray<number>) => {
    const { max, median, min } = summarize(rates)
    return `${integer(median)} (${integer(min)}–${integer(max)})`
  }
  const sqlite = contenders.length - 1
  process.stdout.write(table(
    ["appends/s, 1 event each", ...names, "chronicle / raw"],
    workloads.map(({ fsync, writers }, w) => [
      `${writers} writer${writers > 1 ? "s" : ""}, fsync ${fsync ? "on" : "off"}`,
      ...figures[w]!.map(cell),
      decimal(summarize(figures[w]![0]!).median / summarize(figures[w]![sqlite]!).median)
    ])
  ))
  process.stdout.write(
    `\n\n${rounds} rounds of ${millis} ms; load average ${before.map((l) => l.toFixed(2)).join(" ")} before, ${
      after.map((l) => l.toFixed(2)).join(" ")
    } after\n`
  )
}

const driverAt = argv.indexOf("--driver")
await (driverAt === -1 ? compare() : driver(Number(argv[driverAt + 1]), argv[driverAt + 2] !== "off"))
