/**
 * The filesystem store's index checkpoint (`index.chk`): an open loads it and
 * scans only the log after it, reads the same as a full scan, and detects
 * damage below it before the first write; a checkpoint that does not check
 * out is ignored.
 */
import { spawn } from "node:child_process"
import { closeSync, cpSync, existsSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from "node:fs"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Metric, Stream } from "effect"
import fc from "fast-check"
import { EventId, FileEventStore, Metrics, StreamId } from "chronicle"
import type { Event, EventStore } from "chronicle"
import { tempDirectory } from "../support/filesystem.js"

const open = (directory: string, options: Omit<FileEventStore.FileEventStoreOptions, "directory"> = {}) =>
  FileEventStore.make({ ...options, directory }).pipe(Effect.provide(NodeContext.layer))
const logOf = (directory: string) => join(directory, FileEventStore.logFileName)
const checkpointOf = (directory: string) => join(directory, FileEventStore.indexCheckpointFileName)
const loaded = Metric.value(Metrics.filesystemCheckpointsLoaded).pipe(Effect.map((state) => state.count))
const ignored = Metric.value(Metrics.filesystemCheckpointsIgnored).pipe(Effect.map((state) => state.count))

const batch = (n: number, padding = 100) =>
  Array.from({ length: n }, (_, i) => ({
    eventId: EventId.unsafeGenerate(),
    type: i % 2 === 0 ? "Opened" : "Noted",
    tags: i % 3 === 0 ? [`tag-${i % 2}`] : [],
    data: { i, padding: "x".repeat(padding) }
  }))

/** Everything a reader sees: the global log, each stream, versions, deletions, a tag query. */
const everything = (store: EventStore.EventStoreService, streams: ReadonlyArray<StreamId.StreamId>) =>
  Effect.gen(function*() {
    const plain = (e: Event.StoredEvent) => ({ ...e, globalPosition: String(e.globalPosition) })
    const all = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll())).map(plain)
    const perStream = []
    for (const streamId of streams) {
      perStream.push({
        streamId,
        events: Chunk.toReadonlyArray(yield* Stream.runCollect(store.read(streamId))).map(plain),
        version: yield* store.streamVersion(streamId),
        deleted: yield* store.isDeleted(streamId)
      })
    }
    const tagged = Chunk.toReadonlyArray(yield* Stream.runCollect(store.query({ items: [{ types: [], tags: ["tag-0"] }] }))).map(plain)
    return { all, perStream, tagged, head: String(yield* store.headPosition) }
  })

/** A store of `events` events (~300 bytes each) in one stream, closed (so its checkpoint is written). */
const seeded = (label: string, events: number) =>
  Effect.gen(function*() {
    const directory = tempDirectory(label)
    const streamId = StreamId.unsafeMake("seeded", "a")
    yield* Effect.scoped(Effect.gen(function*() {
      const store = yield* open(directory)
      for (let n = 0; n < events; n += 10) yield* store.append(streamId, batch(10), { expectedVersion: n })
    }))
    expect(existsSync(checkpointOf(directory))).toBe(true)
    return { directory, streamId }
  })

/** Reads everything of `directory` as a full scan does (its checkpoint moved away in a copy). */
const fullScanOf = (directory: string, streams: ReadonlyArray<StreamId.StreamId>) =>
  Effect.gen(function*() {
    const copy = tempDirectory("fullscan")
    cpSync(directory, copy, { recursive: true })
    rmSync(checkpointOf(copy), { force: true })
    const seen = yield* Effect.scoped(Effect.flatMap(open(copy, { readOnly: true }), (store) => everything(store, streams)))
    rmSync(copy, { recursive: true, force: true })
    return seen
  })

const lineOffsets = (directory: string) => {
  const bytes = readFileSync(logOf(directory))
  const offsets = [0]
  for (let i = 0; i < bytes.length - 1; i++) if (bytes[i] === 0x0a) offsets.push(i + 1)
  return offsets
}

describe("FileEventStore index checkpoint", () => {
  type Op =
    | { readonly _tag: "append"; readonly stream: number; readonly n: number }
    | { readonly _tag: "delete"; readonly stream: number; readonly erase: boolean }
    | { readonly _tag: "reopen" }
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ _tag: fc.constant("append" as const), stream: fc.nat(3), n: fc.integer({ min: 1, max: 4 }) }) },
    { weight: 1, arbitrary: fc.record({ _tag: fc.constant("delete" as const), stream: fc.nat(3), erase: fc.boolean() }) },
    { weight: 2, arbitrary: fc.constant({ _tag: "reopen" as const }) }
  )

  it.live("given random appends, deletions, erasures and reopenings, a store opened from any checkpoint taken on the way (plus the log after it) reads the same as a full scan (property)", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 24 }), async (ops) => {
          const directory = tempDirectory("chk-prop")
          const streams = [0, 1, 2, 3].map((k) => StreamId.unsafeMake("prop", `s${k}`))
          const taken: Array<Buffer> = []
          try {
            await Effect.runPromise(Effect.gen(function*() {
              let rest = ops
              while (rest.length > 0) {
                const cut = rest.findIndex((o) => o._tag === "reopen")
                const now = cut === -1 ? rest : rest.slice(0, cut)
                rest = cut === -1 ? [] : rest.slice(cut + 1)
                yield* Effect.scoped(Effect.gen(function*() {
                  const store = yield* open(directory)
                  for (const o of now) {
                    if (o._tag === "reopen") continue
                    const streamId = streams[o.stream]!
                    const version = yield* store.streamVersion(streamId)
                    if (o._tag === "append") yield* Effect.either(store.append(streamId, batch(o.n, 40), { expectedVersion: version }))
                    else yield* Effect.either(store.deleteStream(streamId, { expectedVersion: version, erase: o.erase }))
                  }
                }))
                if (existsSync(checkpointOf(directory))) taken.push(readFileSync(checkpointOf(directory)))
              }
              const expected = yield* fullScanOf(directory, streams)
              for (const checkpoint of taken) {
                writeFileSync(checkpointOf(directory), checkpoint)
                const before = yield* loaded
                const seen = yield* Effect.scoped(Effect.flatMap(open(directory, { readOnly: true }), (store) => everything(store, streams)))
                expect(seen).toEqual(expected)
                // the last checkpoint taken covers the whole log: it is loaded, not ignored
                if (checkpoint === taken.at(-1)) expect(yield* loaded).toBe(before + 1)
              }
            }))
          } finally {
            rmSync(directory, { recursive: true, force: true })
          }
        }),
        { numRuns: 25 }
      )
    ), 120_000)

  it.live("given a checkpoint written before an erasure, when opened with it, then the erased stream stays erased and the rest reads as a full scan", () =>
    Effect.gen(function*() {
      const { directory, streamId } = yield* seeded("chk-erase", 60)
      const other = StreamId.unsafeMake("seeded", "b")
      const before = readFileSync(checkpointOf(directory))
      yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* open(directory)
        const erasedIds = Chunk.toReadonlyArray(yield* Stream.runCollect(store.read(streamId))).map((e) => String(e.eventId))
        yield* store.append(other, batch(3), { expectedVersion: "NoStream" })
        yield* store.deleteStream(streamId, { expectedVersion: 60, erase: true })
        // no checkpoint on disk holds the erased stream's entries any more (a crash now leaves none behind)
        const onDisk = existsSync(checkpointOf(directory)) ? readFileSync(checkpointOf(directory)) : Buffer.alloc(0)
        expect(erasedIds.filter((id) => onDisk.includes(Buffer.from(id)))).toEqual([])
      }))
      writeFileSync(checkpointOf(directory), before)
      const seen = yield* Effect.scoped(Effect.flatMap(open(directory), (store) => everything(store, [streamId, other])))
      expect(seen.perStream[0]!.events).toEqual([])
      expect(seen.perStream[1]!.events.length).toBe(3)
      expect(seen).toEqual(yield* fullScanOf(directory, [streamId, other]))
      expect(readFileSync(logOf(directory)).includes(Buffer.from("\"i\":1,\"padding\""))).toBe(true)
      rmSync(directory, { recursive: true, force: true })
    }))

  it.live("given a flipped byte in the log below the checkpoint, when the store is opened, then the first write fails with the damage (file and offset) and nothing is written", () =>
    Effect.gen(function*() {
      const { directory, streamId } = yield* seeded("chk-flip", 200)
      const target = lineOffsets(directory)[3]!
      const fd = openSync(logOf(directory), "r+")
      const original = readFileSync(logOf(directory))[target + 60]!
      writeSync(fd, Buffer.from([original ^ 0x01]), 0, 1, target + 60)
      closeSync(fd)
      const size = statSync(logOf(directory)).size
      const before = yield* loaded
      const error = yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* open(directory)
        // opened from the checkpoint: the damage is found by the verification, before any write
        expect(yield* loaded).toBe(before + 1)
        return yield* Effect.flip(store.append(streamId, batch(1), { expectedVersion: 200 }))
      }))
      expect(error._tag).toBe("StoreError")
      expect(error.message).toContain(logOf(directory))
      expect(error.message).toContain(`damaged at byte ${target}`)
      expect(statSync(logOf(directory)).size).toBe(size)
      rmSync(directory, { recursive: true, force: true })
    }))

  it.live("given a torn append after the checkpoint's end, when opened from the checkpoint, then the torn bytes are left out and sealed off, and new appends follow", () =>
    Effect.gen(function*() {
      const { directory, streamId } = yield* seeded("chk-torn", 40)
      yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* open(directory)
        yield* store.append(streamId, batch(2), { expectedVersion: 40 })
      }))
      const before = readFileSync(checkpointOf(directory))
      const full = statSync(logOf(directory)).size
      yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* open(directory)
        yield* store.append(streamId, batch(3), { expectedVersion: 42 })
      }))
      truncateSync(logOf(directory), statSync(logOf(directory)).size - 25)
      writeFileSync(checkpointOf(directory), before)
      expect(statSync(logOf(directory)).size).toBeGreaterThan(full)
      const versions = yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* open(directory)
        const survived = Chunk.toReadonlyArray(yield* Stream.runCollect(store.read(streamId)))
        expect(survived.length).toBe(42)
        yield* store.append(streamId, batch(1), { expectedVersion: 42 })
        return Chunk.toReadonlyArray(yield* Stream.runCollect(store.read(streamId))).map((e) => e.streamVersion)
      }))
      expect(versions).toEqual(Array.from({ length: 43 }, (_, i) => i + 1))
      rmSync(directory, { recursive: true, force: true })
    }))

  it.live("given a checkpoint whose event id column is damaged (a flipped byte), when opened, then it is loaded all the same, the ids are read from the log, and a re-sent append is recognized", () =>
    Effect.gen(function*() {
      const { directory, streamId } = yield* seeded("chk-ids", 30)
      const sent = batch(4)
      yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* open(directory)
        yield* store.append(streamId, sent, { expectedVersion: 30 })
      }))
      const checkpoint = readFileSync(checkpointOf(directory))
      // the ids column ends 4 bytes before the file (its CRC): flip a byte of the last id, one of `sent`
      const last = String(sent[3]!.eventId)
      expect(checkpoint.subarray(checkpoint.length - 4 - 36, checkpoint.length - 4).toString("latin1")).toBe(last)
      checkpoint[checkpoint.length - 4 - 10] = checkpoint[checkpoint.length - 4 - 10]! ^ 0x01
      writeFileSync(checkpointOf(directory), checkpoint)
      const size = statSync(logOf(directory)).size
      const expected = yield* fullScanOf(directory, [streamId])
      const before = yield* loaded
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* open(directory)
        const seen = yield* everything(store, [streamId])
        const again = yield* store.append(streamId, sent, { expectedVersion: 30 })
        return { seen, again, version: yield* store.streamVersion(streamId) }
      }))
      expect(yield* loaded).toBe(before + 1)
      expect(outcome.seen).toEqual(expected)
      expect(outcome.again.streamVersion).toBe(34)
      expect(outcome.version).toBe(34)
      expect(statSync(logOf(directory)).size).toBe(size)
      rmSync(directory, { recursive: true, force: true })
    }))

  const damaged: ReadonlyArray<readonly [string, (checkpoint: Buffer, directory: string) => Buffer]> = [
    ["with a flipped byte before its event ids", (checkpoint) => {
      const copy = Buffer.from(checkpoint)
      // the front part: header and columns (a flipped id is read from the log instead: see above)
      const at = copy.readDoubleLE(16) >> 1
      copy[at] = copy[at]! ^ 0x20
      return copy
    }],
    ["truncated", (checkpoint) => checkpoint.subarray(0, checkpoint.length >> 1)],
    ["of another format version", (checkpoint) => {
      const copy = Buffer.from(checkpoint)
      copy.writeUInt32LE(99, 8)
      return copy
    }],
    ["empty", () => Buffer.alloc(0)],
    ["of another store", (_, directory) => readFileSync(checkpointOf(join(directory, "..", `${directory.split("/").at(-1)}-foreign`)))]
  ]
  for (const [what, damage] of damaged) {
    it.live(`given a checkpoint ${what}, when the store is opened, then it is ignored and the store reads as a full scan`, () =>
      Effect.gen(function*() {
        const { directory, streamId } = yield* seeded("chk-bad", 30)
        const foreign = `${directory}-foreign`
        cpSync(directory, foreign, { recursive: true })
        yield* Effect.scoped(Effect.gen(function*() {
          const store = yield* open(foreign)
          yield* store.append(streamId, batch(5), { expectedVersion: 30 })
        }))
        yield* Effect.scoped(Effect.gen(function*() {
          const store = yield* open(directory)
          yield* store.append(StreamId.unsafeMake("seeded", "b"), batch(7), { expectedVersion: "NoStream" })
        }))
        writeFileSync(checkpointOf(directory), damage(readFileSync(checkpointOf(directory)), directory))
        const before = yield* ignored
        const streams = [streamId, StreamId.unsafeMake("seeded", "b")]
        const seen = yield* Effect.scoped(Effect.flatMap(open(directory, { readOnly: true }), (store) => everything(store, streams)))
        expect(yield* ignored).toBe(before + 1)
        expect(seen.perStream.map((s) => s.version)).toEqual([30, 7])
        expect(seen).toEqual(yield* fullScanOf(directory, streams))
        rmSync(directory, { recursive: true, force: true })
        rmSync(foreign, { recursive: true, force: true })
      }))
  }

  it.live("given a checkpoint covering more than the log (the log cut short by hand), when the store is opened, then it is ignored and the log reads as it is", () =>
    Effect.gen(function*() {
      const { directory, streamId } = yield* seeded("chk-cut", 50)
      truncateSync(logOf(directory), lineOffsets(directory)[20]!)
      const before = yield* ignored
      const versions = yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* open(directory)
        yield* store.append(streamId, batch(1), { expectedVersion: 20 })
        return Chunk.toReadonlyArray(yield* Stream.runCollect(store.read(streamId))).map((e) => e.streamVersion)
      }))
      expect(yield* ignored).toBe(before + 1)
      expect(versions).toEqual(Array.from({ length: 21 }, (_, i) => i + 1))
      rmSync(directory, { recursive: true, force: true })
    }))

  it.live("given a store opened from its checkpoint, when an append already stored is sent again, then it is recognised by its event ids and not stored twice", () =>
    Effect.gen(function*() {
      const { directory, streamId } = yield* seeded("chk-ids", 20)
      const again = batch(2)
      const first = yield* Effect.scoped(Effect.flatMap(open(directory), (store) => store.append(streamId, again, { expectedVersion: 20 })))
      const before = yield* loaded
      const { second, version } = yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* open(directory)
        const second = yield* store.append(streamId, again, { expectedVersion: "Any" })
        return { second, version: yield* store.streamVersion(streamId) }
      }))
      expect(yield* loaded).toBe(before + 1)
      expect(second).toEqual(first)
      expect(version).toBe(22)
      rmSync(directory, { recursive: true, force: true })
    }))

  it.live("given a store whose checkpoint is format 2 (fixtures/checkpoint-format2: 3 streams of tagged events, one soft-deleted, one more after), when opened, then the checkpoint is ignored and the store reads as written; a writer's close rewrites it in format 3, which the next open loads", () =>
    Effect.gen(function*() {
      const directory = tempDirectory("chk-format2")
      cpSync(join(import.meta.dirname, "fixtures", "checkpoint-format2"), directory, { recursive: true })
      expect(readFileSync(checkpointOf(directory)).readUInt32LE(8)).toBe(2)
      const streams = ["a", "b", "c", "d"].map((name) => StreamId.unsafeMake("account", name))
      const seen = () => Effect.scoped(Effect.flatMap(open(directory, { readOnly: true }), (store) => everything(store, streams)))
      const [ignoredBefore, loadedBefore] = [yield* ignored, yield* loaded]
      const first = yield* seen()
      expect([yield* ignored, yield* loaded]).toEqual([ignoredBefore + 1, loadedBefore])
      expect(first.perStream.map((s) => [s.version, s.deleted])).toEqual([[12, false], [12, true], [12, false], [1, false]])
      expect(first.perStream.map((s) => s.events.length)).toEqual([12, 12, 12, 1])
      expect(first.tagged.map((e) => e.streamId)).toEqual(Array.from({ length: 4 }, () => ["account-a", "account-b", "account-c"]).flat())
      expect(first.head).toBe("37")
      yield* Effect.scoped(open(directory))
      expect(readFileSync(checkpointOf(directory)).readUInt32LE(8)).toBe(3)
      const second = yield* seen()
      // ignored by the writer too, which rewrote it; loaded by the last open
      expect([yield* ignored, yield* loaded]).toEqual([ignoredBefore + 2, loadedBefore + 1])
      expect(second).toEqual(first)
      rmSync(directory, { recursive: true, force: true })
    }))

  it.live("given a store opened read-only, when it is read and closed, then it writes no checkpoint", () =>
    Effect.gen(function*() {
      const { directory, streamId } = yield* seeded("chk-ro", 20)
      rmSync(checkpointOf(directory))
      yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* open(directory, { readOnly: true })
        expect(yield* store.streamVersion(streamId)).toBe(20)
      }))
      expect(existsSync(checkpointOf(directory))).toBe(false)
      rmSync(directory, { recursive: true, force: true })
    }))

  it.live("given three writer processes (one killed with SIGKILL) appending ~100 KiB events to one store, checkpointing in the background as they go, then a store opened from the last checkpoint holds every acknowledged event once, in order, as a full scan does", () =>
    Effect.gen(function*() {
      const directory = tempDirectory("chk-procs")
      const script = join(import.meta.dirname, "..", "support", "fileWriter.ts")
      const streamId = StreamId.unsafeMake("shared", "stream")
      const run = (appends: number, kill: boolean) =>
        new Promise<Array<string>>((resolve, reject) => {
          const child = spawn(process.execPath, ["--import", "tsx", script, directory, streamId, String(appends), "3", "200000"])
          let text = ""
          child.stdout.on("data", (data: Buffer) => {
            text += data.toString()
            // killed once it has acknowledged a few appends (checkpoints of the others are due by then)
            if (kill && text.split("\n").length > 12) child.kill("SIGKILL")
          })
          child.on("exit", (code, signal) => {
            if (code !== 0 && signal !== "SIGKILL") reject(new Error(`writer exited with ${code ?? signal}`))
            const complete = text.slice(0, text.lastIndexOf("\n") + 1).split("\n").filter((line) => line !== "")
            resolve(complete.flatMap((line) => (JSON.parse(line) as { ids: Array<string> }).ids))
          })
        })
      const acknowledged = (yield* Effect.promise(() => Promise.all([run(30, false), run(30, false), run(60, true)]))).flat()
      expect(existsSync(checkpointOf(directory))).toBe(true)
      const before = yield* loaded
      const seen = yield* Effect.scoped(Effect.flatMap(open(directory), (store) => everything(store, [streamId])))
      expect(yield* loaded).toBe(before + 1)
      const ids = seen.perStream[0]!.events.map((e) => String(e.eventId))
      expect(new Set(ids).size).toBe(ids.length)
      for (const id of acknowledged) expect(ids).toContain(id)
      expect(seen.perStream[0]!.events.map((e) => e.streamVersion)).toEqual(ids.map((_, i) => i + 1))
      expect(seen).toEqual(yield* fullScanOf(directory, [streamId]))
      rmSync(directory, { recursive: true, force: true })
    }), 120_000)
})
