/**
 * Helpers for the filesystem store's fencing tests: store instances that
 * behave as separate processes (each with its own index), stalling writer
 * and deleter processes, and the checks every reader's view must pass.
 */
import { spawn } from "node:child_process"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { expect } from "@effect/vitest"
import { Chunk, Context, Effect, Layer, Stream } from "effect"
import { EventStore, FileEventStore } from "chronicle"
import type { Event, StreamId } from "chronicle"
import { events } from "../contract/EventStoreContract.js"

const writerScript = join(import.meta.dirname, "stallingWriter.ts")
const deleterScript = join(import.meta.dirname, "stallingDeleter.ts")

/** The store with a short stale time (2 s), so tests take stalled holders' locks over quickly. */
export const openStore = (directory: string) =>
  FileEventStore.layer({ directory, lockStaleMs: 2000 }).pipe(Layer.provide(NodeContext.layer))

/** The log file of a store directory. */
export const logOf = (directory: string) => join(directory, FileEventStore.logFileName)

/** Opens a store instance in the current scope (another process, as far as the log is concerned: its own index). */
export const instance = (directory: string) =>
  Effect.map(Layer.build(openStore(directory)), (context) => Context.get(context, EventStore.EventStore))

/** The whole global log as a store instance reads it. */
export const readAllOf = (store: EventStore.EventStoreService) =>
  store.readAll().pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

/** A stream as a store instance reads it. */
export const readOf = (store: EventStore.EventStoreService, streamId: StreamId.StreamId) =>
  store.read(streamId).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

/** Positions unique and increasing, versions contiguous per stream, every acknowledged id there, in its stream. */
export const expectHolds = (log: ReadonlyArray<Event.StoredEvent>, acknowledged: ReadonlyMap<string, StreamId.StreamId>) => {
  const positions = log.map((e) => e.globalPosition)
  expect(positions, "global positions out of order").toEqual([...positions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)))
  expect(new Set(positions).size, "duplicate global positions").toBe(positions.length)
  const versions = new Map<string, Array<number>>()
  for (const e of log) versions.set(e.streamId, [...(versions.get(e.streamId) ?? []), e.streamVersion])
  for (const [streamId, seen] of versions) expect(seen, `versions of ${streamId}`).toEqual(seen.map((_, i) => i + 1))
  const stored = new Map(log.map((e) => [e.eventId as string, e.streamId]))
  for (const [id, streamId] of acknowledged) expect(stored.get(id), `acknowledged event ${id} of ${streamId}`).toBe(streamId)
}

/** Appends `n` events to a stream at its current version and records their ids as acknowledged. */
export const appendTo = (
  store: EventStore.EventStoreService,
  streamId: StreamId.StreamId,
  n: number,
  acknowledged: Map<string, StreamId.StreamId>
) =>
  Effect.gen(function*() {
    const batch = events(n)
    yield* store.append(streamId, batch, { expectedVersion: yield* store.streamVersion(streamId) })
    for (const e of batch) acknowledged.set(String(e.eventId), streamId)
  })

/** Streams laid out so the erased one's events sit in several separate stretches of the log, between its neighbours'; returns its ids. */
export const interleaved = (
  store: EventStore.EventStoreService,
  erased: StreamId.StreamId,
  neighbours: ReadonlyArray<StreamId.StreamId>,
  acknowledged: Map<string, StreamId.StreamId>
) =>
  Effect.gen(function*() {
    const erasedIds: Array<string> = []
    for (let round = 0; round < 4; round++) {
      const batch = events(1 + (round % 2))
      yield* store.append(erased, batch, { expectedVersion: yield* store.streamVersion(erased) })
      erasedIds.push(...batch.map((e) => String(e.eventId)))
      yield* appendTo(store, neighbours[round % neighbours.length]!, 1 + ((round + 1) % 2), acknowledged)
    }
    return erasedIds
  })

/** What a stalling writer process printed of one append. */
export interface WriterOutcome {
  readonly ids: ReadonlyArray<string>
  readonly version?: number
  readonly failed?: { readonly _tag: string; readonly message: string }
}

/** What a stalling deleter process printed of its deletion (nothing when it was killed). */
export interface DeleterOutcome {
  readonly deleted?: boolean
  readonly failed?: { readonly _tag: string; readonly message: string }
}

/** Runs a support script as a process; `stalled` resolves once it has printed that it stops itself. */
const startStalling = <A>(script: string, args: ReadonlyArray<string>, outcome: (text: string, signal: NodeJS.Signals | null) => A) => {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args])
  let text = ""
  let errors = ""
  let onStall: () => void = () => {}
  const stalled = new Promise<void>((resolve) => {
    onStall = resolve
  })
  child.stdout.on("data", (data: Buffer) => {
    text += data.toString()
    if (text.includes("{\"stalling\":true}")) onStall()
  })
  child.stderr.on("data", (data: Buffer) => {
    errors += data.toString()
  })
  const exited = new Promise<A>((resolve, reject) => {
    child.on("exit", (code, signal) => {
      if (code !== 0 && signal !== "SIGKILL") reject(new Error(`${script} exited with ${code ?? signal}: ${errors}\n${text}`))
      else resolve(outcome(text, signal))
    })
  })
  // a process that never reaches its stall fails the test instead of hanging it
  const neverStalled = exited.then(() => {
    throw new Error(`${script} exited before it stalled: ${text}`)
  })
  return { child, stalled: Promise.race([stalled, neverStalled]), exited }
}

/** A writer process appending `appends` batches to one stream; it stops itself inside its last write. */
export const startStallingWriter = (directory: string, streamId: string, appends: number, seed: number) =>
  startStalling(
    writerScript,
    [directory, streamId, String(appends), "3", String(seed)],
    (text): ReadonlyArray<WriterOutcome> =>
      text.split("\n").filter((line) => line.startsWith("{\"ids\"")).map((line) => JSON.parse(line) as WriterOutcome)
  )

/** A deleter process: it stops itself before the `stallBefore`-th write of its deletion. */
export const startStallingDeleter = (directory: string, streamId: string, erase: boolean, stallBefore: number) =>
  startStalling(
    deleterScript,
    [directory, streamId, erase ? "1" : "0", String(stallBefore)],
    (text, signal): DeleterOutcome | undefined =>
      signal === "SIGKILL"
        ? undefined
        : JSON.parse(text.split("\n").find((line) => line.startsWith("{\"deleted\"") || line.startsWith("{\"failed\""))!) as DeleterOutcome
  )
