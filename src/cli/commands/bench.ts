/**
 * `chronicle bench`: measures the chosen store under three workloads, with
 * latency percentiles (p50/p95/p99) and throughput:
 *
 * - `write`: one writer appending batches to its streams, one after another;
 * - `read`: reading those streams back whole, one after another, then the
 *   global log from the first event written (`read-all`);
 * - `concurrent`: `--concurrency` writers appending at once, each to its own
 *   stream (group commit and pool contention show here).
 *
 * It writes real events (streams `bench-<run>-…`): point it at a scratch
 * store or `memory:`.
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as EventId from "../../EventId.js"
import * as ExpectedVersion from "../../ExpectedVersion.js"
import { defaultMaxEventBytes } from "../../internal/serialize.js"
import * as StreamId from "../../StreamId.js"
import * as CliError from "../CliError.js"
import * as CommonOptions from "../CommonOptions.js"
import * as Output from "../Output.js"
import * as Progress from "../Progress.js"
import * as Stores from "../Stores.js"

const appends = Options.integer("appends").pipe(Options.withDefault(1000), Options.withDescription("Appends per write workload (default 1000)."))
const batch = Options.integer("batch").pipe(Options.withDefault(1), Options.withDescription("Events per append (default 1)."))
const streams = Options.integer("streams").pipe(Options.withDefault(10), Options.withDescription("Streams the write workload spreads over (default 10)."))
const concurrency = Options.integer("concurrency").pipe(Options.withDefault(8), Options.withDescription("Writers in the concurrent workload (default 8)."))
/** The largest `--size`: the stores' event limit less the rest of a bench event's data (`{"n":…,"pad":"…"}`). */
const maxSize = defaultMaxEventBytes - 64
const size = Options.integer("size").pipe(Options.withDefault(100), Options.withDescription("Payload bytes per event (default 100)."))

/**
 * The figures of one workload.
 *
 * @category models
 */
export interface Result {
  readonly workload: string
  readonly operations: number
  readonly events: number
  readonly seconds: number
  readonly operationsPerSecond: number
  readonly eventsPerSecond: number
  readonly p50Ms: number
  readonly p95Ms: number
  readonly p99Ms: number
}

/**
 * The `p`-th percentile (0..100) of sorted values, by nearest rank.
 *
 * @category statistics
 */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!

const summarize = (workload: string, latencies: Array<number>, events: number, elapsedMs: number): Result => {
  const sorted = latencies.sort((a, b) => a - b)
  const seconds = elapsedMs / 1000
  const round = (n: number) => Math.round(n * 1000) / 1000
  return {
    workload,
    operations: sorted.length,
    events,
    seconds: round(seconds),
    operationsPerSecond: Math.round(sorted.length / seconds),
    eventsPerSecond: Math.round(events / seconds),
    p50Ms: round(percentile(sorted, 50)),
    p95Ms: round(percentile(sorted, 95)),
    p99Ms: round(percentile(sorted, 99))
  }
}

const timed = <A, E>(effect: Effect.Effect<A, E>, latencies: Array<number>) =>
  Effect.suspend(() => {
    const started = performance.now()
    return Effect.tap(effect, () => Effect.sync(() => latencies.push(performance.now() - started)))
  })

/**
 * The `bench` command.
 *
 * @category commands
 */
export const command = Command.make(
  "bench",
  { store: CommonOptions.store, json: CommonOptions.json, appends, batch, streams, concurrency, size },
  (options) =>
    Effect.gen(function*() {
      for (const [name, value] of [["appends", options.appends], ["batch", options.batch], ["streams", options.streams], ["concurrency", options.concurrency]] as const) {
        if (value < 1) return yield* CliError.usage(`--${name} must be >= 1, got ${value}`)
      }
      if (options.size < 0 || options.size > maxSize) {
        return yield* CliError.usage(`--size must be between 0 and ${maxSize} (an event holds at most 1 MiB of data and metadata), got ${options.size}`)
      }
      yield* Stores.withStore(options.store, "write", (store) =>
        Effect.gen(function*() {
          const events = store.events
          const run = Date.now().toString(36)
          const pad = "x".repeat(options.size)
          const batchOf = (n: number) =>
            Array.from({ length: options.batch }, (_, i) => ({ eventId: EventId.unsafeGenerate(), type: "BenchEventRecorded", data: { n: n * options.batch + i, pad } }))
          const stream = (kind: string, i: number) => StreamId.unsafeMake("bench", `${run}-${kind}-${i}`)
          const results: Array<Result> = []
          const total = options.appends * 2 + options.streams + 1
          const progress = Progress.make({ label: `bench on ${store.label}`, unit: "operations", total })
          let done = 0
          const tick = Effect.suspend(() => progress.update(++done))
          const notes = Output.styleFor(process.stderr)
          if (!options.json) yield* Output.stderr.write(notes.dim(`bench: writing streams bench-${run}-* to ${store.label}\n`))

          // write: one writer, streams round-robin, each append at the version it expects
          const firstPosition = (yield* events.headPosition) + 1n
          const versions = new Array<number>(options.streams).fill(0)
          const writeLatencies: Array<number> = []
          let started = performance.now()
          for (let n = 0; n < options.appends; n++) {
            const i = n % options.streams
            yield* timed(events.append(stream("w", i), batchOf(n), { expectedVersion: ExpectedVersion.exact(versions[i]!) }), writeLatencies)
            versions[i]! += options.batch
            yield* tick
          }
          results.push(summarize("write", writeLatencies, options.appends * options.batch, performance.now() - started))

          // read: every stream whole, then the global log from the first event written
          const readLatencies: Array<number> = []
          let read = 0
          started = performance.now()
          for (let i = 0; i < options.streams; i++) {
            read += yield* timed(Stream.runCount(events.read(stream("w", i))), readLatencies)
            yield* tick
          }
          results.push(summarize("read", readLatencies, read, performance.now() - started))
          const allLatencies: Array<number> = []
          started = performance.now()
          const all = yield* timed(Stream.runCount(events.readAll({ fromPosition: firstPosition })), allLatencies)
          yield* tick
          results.push(summarize("read-all", allLatencies, all, performance.now() - started))

          // concurrent: writers at once, each on its own stream
          const concurrentLatencies: Array<number> = []
          const writers = options.concurrency
          started = performance.now()
          yield* Effect.forEach(
            Array.from({ length: writers }, (_, w) => w),
            (w) =>
              Effect.gen(function*() {
                let version = 0
                for (let n = w; n < options.appends; n += writers) {
                  yield* timed(events.append(stream("c", w), batchOf(n), { expectedVersion: ExpectedVersion.exact(version) }), concurrentLatencies)
                  version += options.batch
                  yield* tick
                }
              }),
            { concurrency: "unbounded", discard: true }
          )
          results.push(summarize(`concurrent x${writers}`, concurrentLatencies, options.appends * options.batch, performance.now() - started))
          yield* progress.finish

          if (options.json) {
            return yield* Output.line(Output.json({ store: store.label, batch: options.batch, eventBytes: options.size, results }, 2))
          }
          const styles = Output.style()
          const ms = (n: number) => n.toFixed(n < 10 ? 2 : 1)
          yield* Output.line(Output.table(results, [
            { header: "WORKLOAD", cell: (r) => r.workload, style: styles.cyan },
            { header: "OPS", cell: (r) => Output.count(r.operations), align: "right" },
            { header: "EVENTS", cell: (r) => Output.count(r.events), align: "right" },
            { header: "SECONDS", cell: (r) => r.seconds.toFixed(2), align: "right" },
            { header: "OPS/S", cell: (r) => Output.count(r.operationsPerSecond), align: "right" },
            { header: "EVENTS/S", cell: (r) => Output.count(r.eventsPerSecond), align: "right" },
            { header: "P50 MS", cell: (r) => ms(r.p50Ms), align: "right" },
            { header: "P95 MS", cell: (r) => ms(r.p95Ms), align: "right" },
            { header: "P99 MS", cell: (r) => ms(r.p99Ms), align: "right" }
          ], styles))
        }))
    })
).pipe(Command.withDescription("Benchmark the store: write, read and concurrent-append workloads; p50/p95/p99 latency and throughput."))
