/**
 * A client process of the history tests: opens its own store (filesystem or
 * PostgreSQL), runs `clients` workload fibers against it and records every
 * operation to its own history file (JSON lines, written before each
 * operation is sent, so a SIGKILL leaves the in-flight one as unknown).
 *
 *   node --import tsx test/history/worker.ts '<WorkerConfig as JSON>'
 *
 * Prints `ready` once the store is open; stops when its operations are done
 * or when `stopFile` exists.
 */
import { existsSync } from "node:fs"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { EventStore, FileEventStore } from "chronicle"
import { PostgresEventStore } from "chronicle/postgres"
import { fileRecorder } from "./history.js"
import type { Mix } from "./workload.js"
import { runClient } from "./workload.js"
import { runWorkerProgram } from "../support/process.js"

export interface WorkerConfig {
  readonly store: "filesystem" | "postgres"
  readonly directory?: string | undefined
  readonly lockStaleMs?: number | undefined
  readonly fsync?: boolean | undefined
  readonly url?: string | undefined
  readonly schema?: string | undefined
  readonly applicationName?: string | undefined
  readonly maxConnections?: number | undefined
  readonly process: string
  readonly clients: number
  readonly ops: number
  readonly seed: number
  readonly streams: ReadonlyArray<string>
  readonly run: string
  readonly historyFile: string
  readonly stopFile?: string | undefined
  readonly mix?: Partial<Mix> | undefined
  readonly timeoutMs?: number | undefined
  readonly paddingBytes?: number | undefined
  readonly doomed?: string | undefined
}

const config = JSON.parse(process.argv[2] ?? "{}") as WorkerConfig

const storeLayer: Layer.Layer<EventStore.EventStore, unknown> = config.store === "filesystem"
  ? FileEventStore.layer({ directory: config.directory, lockStaleMs: config.lockStaleMs, fsync: config.fsync }).pipe(Layer.provide(NodeContext.layer))
  : PostgresEventStore.layerFromUrl({
    url: config.url!,
    schema: config.schema,
    migrate: false,
    maxConnections: config.maxConnections ?? 8,
    applicationName: config.applicationName
  })

const recorder = fileRecorder(config.historyFile)
const stopFile = config.stopFile

const program = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  process.stdout.write("ready\n")
  yield* Effect.all(
    Array.from({ length: config.clients }, (_, c) =>
      runClient(store, recorder, {
        seed: config.seed,
        process: config.process,
        client: `${config.process}/c${c}`,
        streams: config.streams,
        run: config.run,
        ops: config.ops,
        mix: config.mix,
        timeoutMs: config.timeoutMs,
        paddingBytes: config.paddingBytes,
        doomed: config.doomed,
        stop: stopFile === undefined ? undefined : () => existsSync(stopFile)
      })),
    { concurrency: "unbounded", discard: true }
  )
})

runWorkerProgram(program.pipe(Effect.provide(storeLayer)))
