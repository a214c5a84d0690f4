/**
 * Reads of the filesystem store side by side (issue 20, lean reads): this
 * tree's store, the store of another tree's `src` (`--base DIR`, e.g. a
 * worktree of main: `git worktree add --detach ../base main`, then
 * `--base ../base/src`), raw SQLite (bench/sqlite/raw.ts) and raw SQLite's
 * rows decoded by chronicle's codec and folded by the same decider as
 * chronicle's loads (what the domain costs, apart from the store), in
 * interleaved rounds whose order rotates. Every measurement runs in a fresh child process
 * (`bench/embedded-chronicle.ts` and `raw.ts` are the contenders, as in
 * `bench/embedded.ts`); the base's child resolves `chronicle` to the base's
 * `src` through a tsconfig of its own (`TSX_TSCONFIG_PATH`). Both chronicle
 * contenders read the same store directory (same log format).
 *
 * - load the 10,000-event account (`CommandHandler.load`; raw SQLite: a
 *   prepared statement and `JSON.parse`), p50 of 7 runs after 2 warm-ups;
 * - replay the 1,000,000-event account the same way: events/s and peak RSS
 *   growth over the open store's RSS.
 *
 * Each also reports its CPU time (user + system): on a shared machine it
 * moves less than the wall time.
 *
 * `os.loadavg()` is printed at the start and end of every round.
 *
 *   npx tsx bench/embedded-reads.ts --base /work/base-reads/src [--rounds 3] [--events 1000000]
 *
 * One child by hand (a profile of a replay of a store seeded before):
 *
 *   npx tsx bench/embedded-reads.ts --child seed chronicle DIR
 *   node --import tsx --cpu-prof bench/embedded-reads.ts --child replay chronicle DIR
 */
import { fork } from "node:child_process"
import { writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import type { EmbeddedContender, EmbeddedStore } from "./embedded-store.js"
import type { RssSample } from "./support.js"
import { decimal, integer, mebibytes, percentile, perSecond, resultOfChild, startRssSampler, summarize, table, timedPromise, withTempDirectory } from "./support.js"

const argv = process.argv.slice(2)
const option = (name: string) => {
  const at = argv.indexOf(`--${name}`)
  return at === -1 ? undefined : argv[at + 1]
}
const rounds = Number(option("rounds") ?? 3)
const largeCount = Number(option("events") ?? 1_000_000)
const baseSource = option("base")
const loadCount = 10_000
const seedBatchSize = 1_000
const loadWarmups = 2
const loadRuns = 7

const benchDirectory = path.dirname(fileURLToPath(import.meta.url))
const modules = { chronicle: "./embedded-chronicle.ts", sqlite: "./sqlite/raw.ts", "sqlite-codec": "./sqlite/raw.ts" } as const
type ModuleKey = keyof typeof modules

interface Contender {
  readonly name: string
  readonly module: ModuleKey
  /** The tsconfig the child runs under (the base's maps `chronicle` elsewhere). */
  readonly tsconfig?: string | undefined
}

type Task = "seed" | "load" | "replay"
interface LoadResult {
  readonly p50: number
  /** CPU time (user + system) of the median load, ms: moves less than wall time on a shared machine. */
  readonly cpuP50: number
}
interface ReplayResult {
  readonly eventsPerSecond: number
  /** CPU time per replayed event, µs. */
  readonly cpuPerEvent: number
  readonly rss: RssSample
}

/** CPU time (user + system) since `since`, ms. */
const cpuMillis = (since: NodeJS.CpuUsage) => {
  const { system, user } = process.cpuUsage(since)
  return (user + system) / 1000
}

// in a child -----------------------------------------------------------------------

/**
 * Raw SQLite's rows folded as chronicle's load folds them: each decoded by
 * the bench account's codec (Schema) and evolved by its decider, so that
 * chronicle's figures can be told apart into the store's part and the
 * domain's.
 */
const withCodec = (store: EmbeddedStore): EmbeddedStore => ({
  ...store,
  load: async (stream) => {
    const { AccountEvents, BankAccount } = await import("../examples/BankAccount.js")
    const { Either } = await import("effect")
    const streamId = `account-${stream}` as never
    let state = BankAccount.initialState
    let version = 0
    for (const row of store.rows!(stream)) {
      version++
      const decoded = AccountEvents.decodeEvents({ streamId, streamVersion: version, type: row.type, schemaVersion: 1, data: JSON.parse(row.data) })
      if (Either.isLeft(decoded)) throw decoded.left
      for (const event of decoded.right) state = BankAccount.evolve(state, event)
    }
    if (state.status !== "open") throw new Error(`${stream} was never opened`)
    return version
  }
})

const runChild = async ([task, key, directory]: ReadonlyArray<string>) => {
  const contender: { default: EmbeddedContender } = await import(new URL(modules[key as ModuleKey], import.meta.url).href)
  const opened = await contender.default.open(directory!, false)
  const store = key === "sqlite-codec" ? withCodec(opened) : opened
  try {
    switch (task as Task) {
      case "seed":
        await store.seed("loaded", loadCount, seedBatchSize)
        await store.seed("large", largeCount, seedBatchSize)
        return {}
      case "load": {
        const millis: Array<number> = []
        const cpu: Array<number> = []
        for (let run = 0; run < loadWarmups + loadRuns; run++) {
          const since = process.cpuUsage()
          const { value, millis: elapsed } = await timedPromise(() => store.load("loaded"))
          const used = cpuMillis(since)
          if (value !== loadCount) throw new Error(`loaded version ${value}, expected ${loadCount}`)
          if (run >= loadWarmups) {
            millis.push(elapsed)
            cpu.push(used)
          }
        }
        const byTime = (a: number, b: number) => a - b
        return { p50: percentile(millis.sort(byTime), 50), cpuP50: percentile(cpu.sort(byTime), 50) } satisfies LoadResult
      }
      case "replay": {
        const sampler = await startRssSampler()
        const since = process.cpuUsage()
        const { value, millis } = await timedPromise(() => store.load("large"))
        const used = cpuMillis(since)
        const rss = await sampler.stop()
        if (value !== largeCount) throw new Error(`replayed to version ${value}, expected ${largeCount}`)
        return { eventsPerSecond: perSecond(largeCount, millis), cpuPerEvent: (used * 1000) / largeCount, rss } satisfies ReplayResult
      }
    }
  } finally {
    await store.close()
  }
}

const inChild = <A>(task: Task, contender: Contender, directory: string) =>
  resultOfChild<A>(
    fork(fileURLToPath(import.meta.url), [...argv, "--child", task, contender.module, directory], {
      stdio: ["ignore", "ignore", "pipe", "ipc"],
      env: contender.tsconfig === undefined ? process.env : { ...process.env, TSX_TSCONFIG_PATH: contender.tsconfig }
    }),
    `${contender.name} ${task}`
  )

// the run ----------------------------------------------------------------------------

const formatLoad = () => os.loadavg().map((l) => l.toFixed(2)).join(" ")

const main = (root: string) => async () => {
  const contenders: Array<Contender> = [{ name: "this tree", module: "chronicle" }]
  if (baseSource !== undefined) {
    const tsconfig = path.join(root, "tsconfig.base.json")
    writeFileSync(tsconfig, JSON.stringify({
      extends: path.join(benchDirectory, "..", "tsconfig.json"),
      compilerOptions: { paths: { chronicle: [path.join(path.resolve(baseSource), "index.ts")] } }
    }))
    contenders.push({ name: `base (${baseSource})`, module: "chronicle", tsconfig })
  }
  contenders.push({ name: "raw SQLite", module: "sqlite" }, { name: "raw SQLite + chronicle's codec and decider", module: "sqlite-codec" })
  const directoryOf = (contender: Contender) => path.join(root, contender.module === "sqlite-codec" ? "sqlite" : contender.module)
  console.log(`embedded reads: ${rounds} rounds, load ${integer(loadCount)}, replay ${integer(largeCount)}; load average ${formatLoad()}, ${os.cpus().length} CPUs`)
  for (const contender of contenders.filter((c) => c.tsconfig === undefined && c.module !== "sqlite-codec")) {
    const { millis } = await timedPromise(() => inChild("seed", contender, directoryOf(contender)))
    console.log(`seeded ${contender.name} in ${(millis / 1000).toFixed(1)} s`)
  }
  const loads = contenders.map((): Array<LoadResult> => [])
  const replays = contenders.map((): Array<ReplayResult> => [])
  for (let round = 0; round < rounds; round++) {
    console.log(`round ${round + 1}/${rounds}: load average ${formatLoad()}`)
    for (let k = 0; k < contenders.length; k++) {
      const at = (k + round) % contenders.length
      const contender = contenders[at]!
      const load = await inChild<LoadResult>("load", contender, directoryOf(contender))
      const replay = await inChild<ReplayResult>("replay", contender, directoryOf(contender))
      loads[at]!.push(load)
      replays[at]!.push(replay)
      console.log(
        `  ${contender.name}: load p50 ${decimal(load.p50)} ms (CPU ${decimal(load.cpuP50)} ms), replay ${integer(replay.eventsPerSecond)} ev/s (CPU ${
          decimal(replay.cpuPerEvent)
        } µs/event), RSS +${mebibytes(replay.rss.growth)}`
      )
    }
    console.log(`round ${round + 1}/${rounds} done: load average ${formatLoad()}`)
  }
  const spread = (values: ReadonlyArray<number>, format: (n: number) => string) => {
    const s = summarize(values)
    return `${format(s.median)} (${format(s.min)}–${format(s.max)})`
  }
  console.log("")
  console.log(table(
    [
      "contender",
      `load ${integer(loadCount)}, p50 ms`,
      "its CPU ms",
      `replay ${integer(largeCount)}, events/s`,
      "its CPU µs/event",
      "replay peak RSS growth"
    ],
    contenders.map((contender, i) => [
      contender.name,
      spread(loads[i]!.map((l) => l.p50), decimal),
      spread(loads[i]!.map((l) => l.cpuP50), decimal),
      spread(replays[i]!.map((r) => r.eventsPerSecond), integer),
      spread(replays[i]!.map((r) => r.cpuPerEvent), decimal),
      spread(replays[i]!.map((r) => r.rss.growth), mebibytes)
    ])
  ))
  console.log(`medians (min–max) over ${rounds} rounds; load average at the end ${formatLoad()}`)
}

const childAt = argv.indexOf("--child")
if (childAt >= 0) {
  // by hand (say under `node --cpu-prof`), without a parent: the result on stdout
  const result = await runChild(argv.slice(childAt + 1))
  if (process.send === undefined) console.log(JSON.stringify(result))
  else process.send(result)
} else {
  await withTempDirectory("embedded-reads", (root) => main(root)())
}
