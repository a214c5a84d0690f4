/**
 * Durability of the filesystem store, seen through the `FileSystem` service
 * it writes with (and `fs.writeSync`, `fs.fdatasync` and `fs.fdatasyncSync`, which its writer appends and syncs with): with `fsync` (the default) an append returns only after the
 * log was synced, and the directory is synced when the log is created; an
 * erasure syncs its tombstone before it overwrites the erased lines, and those
 * before it returns; with `fsync: false` nothing is synced.
 */
import { FileSystem, Path } from "@effect/platform"
import { NodeFileSystem, NodePath } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Layer, Stream } from "effect"
import { EventStore, FileEventStore, StreamId } from "chronicle"
import { events } from "../contract/EventStoreContract.js"
import { removeAfter, tempDirectory } from "../support/filesystem.js"
import { hookSyncs, hookSyncWrites } from "../support/syncWrites.js"

/** What the store did to a file, in the order it did it. */
interface Call {
  readonly op: "write" | "sync" | "returned"
  readonly path: string
}

/**
 * The node `FileSystem`, recording every write and sync on the files the
 * store opens, and every synchronous write of this process while it is in
 * use; `failSync` makes the sync of matching paths fail.
 */
const recordingFileSystem = (calls: Array<Call>, failSync: (path: string) => boolean = () => false) =>
  Layer.scopedDiscard(Effect.acquireRelease(
    Effect.sync(() => {
      const unhookWrites = hookSyncWrites({ after: (path) => calls.push({ op: "write", path }) })
      const unhookSyncs = hookSyncs({
        before: (path) => {
          calls.push({ op: "sync", path })
          if (failSync(path)) throw new Error(`sync of ${path} failed (on purpose)`)
        }
      })
      return () => {
        unhookSyncs()
        unhookWrites()
      }
    }),
    (unhook) => Effect.sync(unhook)
  )).pipe(Layer.merge(Layer.effect(
    FileSystem.FileSystem,
    Effect.map(FileSystem.FileSystem, (fs): FileSystem.FileSystem => ({
      ...fs,
      open: (path, options) =>
        Effect.map(fs.open(path, options), (file) =>
          new Proxy(file, {
            get: (target, property) => {
              if (property === "sync") {
                return Effect.suspend(() => {
                  calls.push({ op: "sync", path })
                  return failSync(path)
                    ? Effect.fail(new Error(`sync of ${path} failed (on purpose)`)) as unknown as typeof target.sync
                    : target.sync
                })
              }
              if (property === "write" || property === "writeAll") {
                const write = target[property] as (buffer: Uint8Array) => Effect.Effect<unknown, unknown>
                return (buffer: Uint8Array) => Effect.zipLeft(write.call(target, buffer), Effect.sync(() => calls.push({ op: "write", path })))
              }
              const value = Reflect.get(target, property, target) as unknown
              return typeof value === "function" ? (value as (...args: Array<unknown>) => unknown).bind(target) : value
            }
          }))
    }))
  ))).pipe(Layer.provide(NodeFileSystem.layer))

const storeIn = (
  directory: string,
  calls: Array<Call>,
  options: { readonly fsync?: boolean; readonly syncOnEventLoop?: boolean; readonly failSync?: (path: string) => boolean } = {}
) =>
  Layer.merge(FileEventStore.layer({ directory, fsync: options.fsync, syncOnEventLoop: options.syncOnEventLoop }), removeAfter(directory)).pipe(
    Layer.provide(Layer.merge(recordingFileSystem(calls, options.failSync), NodePath.layer))
  )

const returned = (calls: Array<Call>) => Effect.sync(() => calls.push({ op: "returned", path: "" }))

/** The calls on one path, as `op` strings, with the "returned" markers kept in place. */
const on = (calls: ReadonlyArray<Call>, path: string) =>
  calls.filter((call) => call.path === path || call.op === "returned").map((call) => call.op)

describe("FileEventStore fsync", () => {
  it.live.each([true, false])("with fsync (the default), the directory is synced when the log is created and the log before each append returns (fsync on the event loop: %s)", (syncOnEventLoop) => {
    const directory = tempDirectory("fsync-on")
    const calls: Array<Call> = []
    return Effect.gen(function*() {
      const path = yield* Path.Path
      const log = path.join(directory, FileEventStore.logFileName)
      const opened = calls.length
      expect(calls.slice(0, opened)).toContainEqual({ op: "sync", path: directory })
      calls.length = 0
      for (let i = 0; i < 3; i++) {
        yield* EventStore.append(StreamId.unsafeMake("fsync", "a"), events(2), { expectedVersion: i === 0 ? "NoStream" : i * 2 })
        yield* returned(calls)
      }
      // each append: written, then synced, then returned
      expect(on(calls, log)).toEqual(["write", "sync", "returned", "write", "sync", "returned", "write", "sync", "returned"])
    }).pipe(Effect.provide(Layer.merge(storeIn(directory, calls, { syncOnEventLoop }), NodePath.layer)))
  })

  it.live("with fsync, erasing a stream syncs its tombstone before overwriting the stream's lines in place, and those before it returns", () => {
    const directory = tempDirectory("fsync-erase")
    const calls: Array<Call> = []
    return Effect.gen(function*() {
      const path = yield* Path.Path
      const log = path.join(directory, FileEventStore.logFileName)
      const streamId = StreamId.unsafeMake("fsync", "erased")
      yield* EventStore.append(streamId, events(2), { expectedVersion: "NoStream" })
      yield* EventStore.append(StreamId.unsafeMake("fsync", "kept"), events(1), { expectedVersion: "NoStream" })
      calls.length = 0
      yield* EventStore.deleteStream(streamId, { expectedVersion: 2, erase: true })
      yield* returned(calls)
      // the tombstone written and synced; then the erased lines (one stretch) overwritten and synced; nothing renamed
      expect(on(calls, log)).toEqual(["write", "sync", "write", "sync", "returned"])
      expect(calls.filter((call) => call.path !== log && call.op !== "returned")).toEqual([])
    }).pipe(Effect.provide(Layer.merge(storeIn(directory, calls), NodePath.layer)))
  })

  it.live("with fsync, an append whose log sync fails fails with a StoreError; it is stored whole or not at all, and a re-send settles it", () => {
    const directory = tempDirectory("fsync-fail")
    const calls: Array<Call> = []
    let failing = false
    const failSync = (path: string) => failing && path.endsWith(FileEventStore.logFileName)
    return Effect.gen(function*() {
      const streamId = StreamId.unsafeMake("fsync", "failing")
      yield* EventStore.append(streamId, events(1), { expectedVersion: "NoStream" })
      failing = true
      const batch = events(2)
      const outcome = yield* Effect.either(EventStore.append(streamId, batch, { expectedVersion: 1 }))
      expect(outcome._tag, "an append whose sync failed must fail").toBe("Left")
      if (Either.isRight(outcome)) return
      expect(outcome.left._tag).toBe("StoreError")
      expect(outcome.left.message).toMatch(/sync of .* failed \(on purpose\)/)
      failing = false
      // the bytes may have reached the file: an unknown outcome, whole or not at all, like a lost reply
      expect([1, 3]).toContain(yield* EventStore.streamVersion(streamId))
      const resent = yield* EventStore.append(streamId, batch, { expectedVersion: 1 })
      expect(resent.streamVersion).toBe(3)
      const ids = yield* EventStore.read(streamId).pipe(Stream.map((e) => e.eventId), Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      expect(ids.slice(1)).toEqual(batch.map((e) => e.eventId))
    }).pipe(Effect.provide(storeIn(directory, calls, { failSync })))
  })

  it.live("with fsync: false, nothing is synced, and a sync that would fail does not matter", () => {
    const directory = tempDirectory("fsync-off")
    const calls: Array<Call> = []
    return Effect.gen(function*() {
      const streamId = StreamId.unsafeMake("fsync", "off")
      yield* EventStore.append(streamId, events(2), { expectedVersion: "NoStream" })
      yield* EventStore.append(StreamId.unsafeMake("fsync", "other"), events(1), { expectedVersion: "NoStream" })
      yield* EventStore.deleteStream(streamId, { expectedVersion: 2, erase: true })
      expect(calls.filter((call) => call.op === "write").length).toBeGreaterThan(0)
      expect(calls.filter((call) => call.op === "sync")).toEqual([])
    }).pipe(Effect.provide(storeIn(directory, calls, { fsync: false, failSync: () => true })))
  })
})
