/**
 * The filesystem store's writer within one process: an append finding the
 * lease held and nobody committing commits at once in its own fiber; appends
 * arriving meanwhile wait and are committed in groups, one write each. Either
 * way an acknowledged append is in the log once, where it was acknowledged,
 * an interrupted one is there whole or not at all, and a lease let go while
 * idle is taken anew (with what another process wrote meanwhile) by the next append.
 */
import { existsSync, rmSync } from "node:fs"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, ConfigProvider, Context, Deferred, Effect, Either, Exit, Fiber, Layer, Scope, Stream } from "effect"
import { EventStore, FileEventStore, StreamId } from "chronicle"
import { events } from "../contract/EventStoreContract.js"
import { tempDirectory } from "../support/filesystem.js"
import { hookSyncs, hookSyncWrites } from "../support/syncWrites.js"

/** Opens a store over `directory`, as a process of its own would. */
const openStore = (directory: string, options: Omit<FileEventStore.FileEventStoreOptions, "directory"> = {}) =>
  FileEventStore.make({ ...options, directory }).pipe(Effect.provide(NodeContext.layer))

/** A fresh directory, removed when the scope closes. */
const freshDirectory = (label: string) =>
  Effect.acquireRelease(
    Effect.sync(() => tempDirectory(label)),
    (directory) => Effect.sync(() => rmSync(directory, { recursive: true, force: true }))
  )

/** Counts this process's writes to the log while the scope is open. */
const countingLogWrites = (directory: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const count = { writes: 0 }
      const unhook = hookSyncWrites({ after: (path) => path === join(directory, "events.jsonl") ? count.writes++ : undefined })
      return { count, unhook }
    }),
    ({ unhook }) => Effect.sync(unhook)
  ).pipe(Effect.map(({ count }) => count))

/** Counts this process's syncs of the log while the scope is open: on the event loop, and on the thread pool. */
const countingLogSyncs = (directory: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const count = { onEventLoop: 0, onThreadPool: 0 }
      const unhook = hookSyncs({
        before: (path, onEventLoop) => {
          if (path !== join(directory, "events.jsonl")) return
          if (onEventLoop) count.onEventLoop++
          else count.onThreadPool++
        }
      })
      return { count, unhook }
    }),
    ({ unhook }) => Effect.sync(unhook)
  ).pipe(Effect.map(({ count }) => count))

/** Appends one event at a time to `streamId`, at versions `from` + 1 up to `to`. */
const appendOneAtATime = (store: EventStore.EventStoreService, streamId: StreamId.StreamId, from: number, to: number) =>
  Effect.forEach(
    Array.from({ length: to - from }, (_, i) => from + i),
    (version) => store.append(streamId, events(1), { expectedVersion: version === 0 ? "NoStream" : version }),
    { discard: true }
  )

const readLog = (store: Effect.Effect.Success<ReturnType<typeof openStore>>) =>
  Effect.map(Stream.runCollect(store.readAll()), Chunk.toReadonlyArray)

describe("FileEventStore writer", () => {
  it.live("given 32 fibers appending at once to one stream, then they are committed in groups (fewer writes than appends), and each acknowledged append is in the log once, at the version and position it was acknowledged with", () =>
    Effect.gen(function*() {
      const directory = yield* freshDirectory("writer-groups")
      // fsync on: an inline commit suspends in its sync, and the appends arriving meanwhile queue
      const store = yield* openStore(directory)
      const shared = StreamId.unsafeMake("writer", "shared")
      // the lease is held and ready: the first append of the burst commits inline, the others queue behind it
      yield* store.append(shared, events(1), { expectedVersion: "NoStream" })
      const writes = yield* countingLogWrites(directory)
      const acknowledged = yield* Effect.forEach(
        Array.from({ length: 32 }, (_, fiber) => fiber),
        (fiber) =>
          Effect.forEach(Array.from({ length: 5 }, (_, i) => i), () => {
            const batch = events(1, `Fiber${fiber}`)
            return Effect.map(store.append(shared, batch, { expectedVersion: "Any" }), (result) => ({ fiber, result, eventId: batch[0]!.eventId }))
          }),
        { concurrency: "unbounded" }
      ).pipe(Effect.map((perFiber) => perFiber.flat()))

      expect(writes.writes, "log writes for 160 appends").toBeLessThan(160)
      expect(writes.writes).toBeGreaterThan(0)
      const log = yield* readLog(store)
      expect(log.length).toBe(161)
      expect(log.map((e) => e.streamVersion)).toEqual(log.map((_, i) => i + 1))
      for (const { eventId, result } of acknowledged) {
        const found = log.filter((e) => e.eventId === eventId)
        expect(found.length, `event ${eventId}`).toBe(1)
        expect(found[0]!.streamVersion).toBe(result.streamVersion)
        expect(found[0]!.globalPosition).toBe(result.globalPositions[0])
      }
      // each fiber's appends in the order it made them
      for (let fiber = 0; fiber < 32; fiber++) {
        const versions = acknowledged.filter((a) => a.fiber === fiber).map((a) => a.result.streamVersion)
        expect(versions).toEqual([...versions].sort((a, b) => a - b))
        expect(log.filter((e) => e.type === `Fiber${fiber}`).map((e) => e.streamVersion)).toEqual(versions)
      }
    }).pipe(Effect.scoped))

  it.live.each([true, false])("given appends interrupted by their callers at every point of an inline commit (fsync on the event loop: %s), then each is in the log whole or not at all, the writer goes on, and a fresh open reads the same log", (syncOnEventLoop) =>
    Effect.gen(function*() {
      const directory = yield* freshDirectory("writer-interrupted")
      const streamId = StreamId.unsafeMake("writer", "interrupted")
      const store = yield* openStore(directory, { syncOnEventLoop })
      yield* store.append(streamId, events(1), { expectedVersion: "NoStream" })
      // on the thread pool, the commit suspends in the sync, between its write and its read-back; on the event loop, it is one step
      for (let round = 0; round < 40; round++) {
        const fiber = yield* Effect.fork(store.append(streamId, events(2, "Pair"), { expectedVersion: "Any" }))
        for (let i = 0; i < round % 4; i++) yield* Effect.yieldNow()
        yield* Fiber.interrupt(fiber)
        const version = yield* store.streamVersion(streamId)
        const next = yield* Effect.either(store.append(streamId, events(1), { expectedVersion: version }))
        expect(Either.isRight(next), `round ${round}: ${JSON.stringify(Either.isLeft(next) ? next.left : "")}`).toBe(true)
      }

      const log = yield* readLog(store)
      expect(log.map((e) => e.streamVersion)).toEqual(log.map((_, i) => i + 1))
      // an interrupted batch of two: both its events, one after the other, or neither
      log.forEach((e, i) => {
        if (e.type !== "Pair") return
        const other = (e.data as { i: number }).i === 0 ? log[i + 1] : log[i - 1]
        expect(other?.type, `the other half of the pair at version ${e.streamVersion}`).toBe("Pair")
      })
      expect(log.length).toBeGreaterThanOrEqual(41)
      const reopened = yield* openStore(directory)
      expect((yield* readLog(reopened)).map((e) => e.eventId)).toEqual(log.map((e) => e.eventId))
    }).pipe(Effect.scoped))

  it.live.each([true, false])("given a writer whose lease lapsed while idle and another process that appended meanwhile (fsync %s), when the first appends again, then it takes the lease anew and has caught up first, and its next append commits at once", (fsync) =>
    Effect.gen(function*() {
      const directory = yield* freshDirectory("writer-idle")
      const streamId = StreamId.unsafeMake("writer", "idle")
      const first = yield* openStore(directory, { lockIdleMs: 5, fsync })
      const second = yield* openStore(directory, { lockIdleMs: 5, fsync })
      const lock = join(directory, "write.lock")
      yield* first.append(streamId, events(1), { expectedVersion: "NoStream" })
      yield* first.append(streamId, events(1), { expectedVersion: 1 })
      // the lease lapses after 5 ms without a write: wait for its lock to go
      while (existsSync(lock)) yield* Effect.sleep("2 millis")
      yield* second.append(streamId, events(1), { expectedVersion: 2 })
      const third = yield* Effect.either(first.append(streamId, events(1), { expectedVersion: 3 }))
      expect(Either.isRight(third), JSON.stringify(Either.isLeft(third) ? third.left : "")).toBe(true)
      const fourth = yield* Effect.either(first.append(streamId, events(1), { expectedVersion: 4 }))
      expect(Either.isRight(fourth), JSON.stringify(Either.isLeft(fourth) ? fourth.left : "")).toBe(true)
      for (const store of [first, second]) {
        expect((yield* readLog(store)).map((e) => e.streamVersion)).toEqual([1, 2, 3, 4, 5])
      }
    }).pipe(Effect.scoped))

  it.live("given appends queued behind a commit, when the store is closed while the writer fiber commits their group, then every one of them completes (stored, or failed as closed), none waits forever", () =>
    Effect.gen(function*() {
      const directory = yield* freshDirectory("close")
      const scope = yield* Scope.make()
      const store = yield* Scope.extend(openStore(directory, { fsync: true, syncOnEventLoop: false }), scope)
      // the lease taken and held: of the 16 below, the first commits at once, the others queue to the writer fiber
      yield* store.append(StreamId.unsafeMake("account", "close-first"), events(1), { expectedVersion: "NoStream" })
      const groupSyncing = yield* Deferred.make<void>()
      let syncs = 0
      const unhook = hookSyncs({
        before: (path) => {
          if (path === join(directory, "events.jsonl") && ++syncs === 2) Deferred.unsafeDone(groupSyncing, Exit.void)
        }
      })
      yield* Effect.addFinalizer(() => Effect.sync(unhook))
      const appends = yield* Effect.forEach(
        Array.from({ length: 16 }, (_, i) => StreamId.unsafeMake("account", `close-${i}`)),
        (streamId) => Effect.fork(store.append(streamId, events(1), { expectedVersion: "NoStream" }))
      )
      yield* Deferred.await(groupSyncing)
      yield* Scope.close(scope, Exit.void)
      const outcomes = yield* Effect.forEach(appends, (fiber) => Fiber.await(fiber))
      expect(outcomes.filter(Exit.isSuccess).length).toBeGreaterThanOrEqual(2)
      for (const outcome of outcomes) {
        if (Exit.isFailure(outcome)) expect(Cause.squash(outcome.cause)).toMatchObject({ _tag: "StoreError" })
      }
    }).pipe(Effect.scoped))

  it.live("given one writer appending one event at a time with fsync, then each append is synced before it returns, on the event loop but for one in 16 (on the thread pool, to see whether appends come together), and each is in the log where it was acknowledged", () =>
    Effect.gen(function*() {
      const directory = yield* freshDirectory("writer-alone")
      const streamId = StreamId.unsafeMake("writer", "alone")
      const store = yield* openStore(directory)
      yield* store.append(streamId, events(1), { expectedVersion: "NoStream" })
      const syncs = yield* countingLogSyncs(directory)
      const acknowledged: Array<number> = []
      for (let version = 1; version <= 64; version++) {
        const before = syncs.onEventLoop + syncs.onThreadPool
        acknowledged.push((yield* store.append(streamId, events(1), { expectedVersion: version })).streamVersion)
        expect(syncs.onEventLoop + syncs.onThreadPool, `syncs once append ${version + 1} returned`).toBe(before + 1)
      }

      expect(syncs.onThreadPool).toBe(4)
      expect(syncs.onEventLoop).toBe(60)
      expect(acknowledged).toEqual(Array.from({ length: 64 }, (_, i) => i + 2))
      expect((yield* readLog(store)).map((e) => e.streamVersion)).toEqual(Array.from({ length: 65 }, (_, i) => i + 1))
    }).pipe(Effect.scoped))

  it.live.each([
    { setting: "syncOnEventLoop: false", open: (directory: string) => openStore(directory, { syncOnEventLoop: false }) },
    {
      setting: "CHRONICLE_SYNC_ON_EVENT_LOOP=false",
      open: (directory: string) =>
        Layer.build(FileEventStore.layerConfig(FileEventStore.environment).pipe(
          Layer.provide(NodeContext.layer),
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["CHRONICLE_DIR", directory], ["CHRONICLE_SYNC_ON_EVENT_LOOP", "false"]]))))
        )).pipe(Effect.map(Context.get(EventStore.EventStore)))
    }
  ])("given $setting (an option, or the environment read by layerConfig(environment)), then every append's fsync runs on the thread pool", ({ open }) =>
    Effect.gen(function*() {
      const directory = yield* freshDirectory("writer-thread-pool")
      const streamId = StreamId.unsafeMake("writer", "pool")
      const store = yield* open(directory)
      const syncs = yield* countingLogSyncs(directory)
      yield* appendOneAtATime(store, streamId, 0, 20)

      expect(syncs).toEqual({ onEventLoop: 0, onThreadPool: 20 })
    }).pipe(Effect.scoped))

  it.live("given a writer committing on the event loop (appends one at a time), when 16 fibers append at once, again and again, then their appends are committed in groups (far fewer fsyncs than appends), and once they stop, a lone writer commits on the event loop again", () =>
    Effect.gen(function*() {
      const directory = yield* freshDirectory("writer-company")
      const store = yield* openStore(directory)
      const lone = StreamId.unsafeMake("writer", "lone")
      yield* appendOneAtATime(store, lone, 0, 20)
      const syncs = yield* countingLogSyncs(directory)
      yield* Effect.forEach(
        Array.from({ length: 16 }, (_, fiber) => StreamId.unsafeMake("writer", `fiber${fiber}`)),
        (streamId) =>
          Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) =>
            store.append(streamId, events(1), { expectedVersion: i === 0 ? "NoStream" : i }), { discard: true }),
        { concurrency: "unbounded", discard: true }
      )

      expect(syncs.onEventLoop + syncs.onThreadPool, "fsyncs for 320 appends of 16 fibers").toBeLessThan(100)
      const before = syncs.onEventLoop
      yield* appendOneAtATime(store, lone, 20, 40)
      expect(syncs.onEventLoop - before, "of 20 lone appends after the burst, synced on the event loop").toBeGreaterThanOrEqual(12)
      const log = yield* readLog(store)
      expect(log.length).toBe(360)
      for (let fiber = 0; fiber < 16; fiber++) {
        expect(log.filter((e) => e.streamId === `writer-fiber${fiber}`).map((e) => e.streamVersion)).toEqual(
          Array.from({ length: 20 }, (_, i) => i + 1)
        )
      }
    }).pipe(Effect.scoped))
})
