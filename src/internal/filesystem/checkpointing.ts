/**
 * Loading, verifying, writing and removing the filesystem store's index
 * checkpoint (format in `checkpoint.ts`). Written off the append path, in
 * the background, atomically (temporary file, fsync, rename); never by a
 * read-only store.
 */
import * as NodeFs from "node:fs"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Scope from "effect/Scope"
import * as EventStore from "../../EventStore.js"
import * as Metrics from "../../Metrics.js"
import { blockCrc, blocksOf, blockSize, type CheckpointFile, close, type Covered, encode, load as loadCheckpoint, reusableBlocks, snapshotOf } from "./checkpoint.js"
import { syncDirectory } from "./io.js"
import { Erasures } from "./logFormat.js"
import { emptyIndex } from "./logIndex.js"
import { type LogStore, makeIndexingPermit, scanTail } from "./logStore.js"

/** New log, in bytes, after which the checkpoint is written again: max(8 MiB, a quarter of what it covers). */
const dueAfter = (covered: number) => Math.max(8 * blockSize, covered / 4)

const openCheckpoint = (path: string) =>
  Effect.try((): CheckpointFile => ({ fd: NodeFs.openSync(path, "r"), closed: false })).pipe(Effect.option)

/**
 * Lets I/O callbacks run before going on (`yieldNow` alone resumes from a
 * microtask: a loop of them starves reads waiting on the thread pool).
 */
const yieldToIo = Effect.async<void>((resume) => {
  const timer = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(timer))
})

/**
 * Loads the checkpoint into the store when it checks out, and starts
 * verifying the log below it in the background; otherwise (or without one)
 * leaves the store as it is, for a full scan. `verified` is done either way.
 */
export const load = (store: LogStore) =>
  Effect.gen(function*() {
    const file = yield* openCheckpoint(store.checkpointPath)
    if (file._tag === "Some") yield* Scope.addFinalizer(store.scope, Effect.sync(() => close(file.value)))
    const logSize = NodeFs.fstatSync(store.log.fd).size
    const covered = file._tag === "Some"
      ? yield* Effect.try(() => loadCheckpoint(file.value, store.log.fd, logSize)).pipe(Effect.orElseSucceed(() => undefined))
      : undefined
    if (covered === undefined) {
      if (file._tag === "Some") yield* Metric.increment(Metrics.filesystemCheckpointsIgnored)
      return yield* Deferred.succeed(store.verified, undefined)
    }
    store.index = covered.index
    for (const [streamId, version] of covered.deleted) {
      if (!store.deleted.has(streamId)) store.deleted.set(streamId, version)
      store.legacy.delete(streamId)
    }
    for (const [streamId, ranges] of covered.erasures) store.erasures.add(streamId, ranges)
    for (const span of covered.voids) store.voids.set(span.from, span)
    store.checkpoint.covered = covered.index.size
    yield* Metric.increment(Metrics.filesystemCheckpointsLoaded)
    yield* Deferred.complete(store.verified, verify(store, covered)).pipe(Effect.forkIn(store.scope))
  }).pipe(Effect.withSpan("chronicle.filesystem.loadCheckpoint"))

/**
 * Reads the checkpoint's event ids and checks the log below the size it
 * covers against its block CRCs, a block at a time, letting reads go first.
 * A block that differs (an erasure overwrote lines there, or damage) sends
 * the check to the full scan of the log, which reports damage as an open
 * does.
 */
const verify = (store: LogStore, { blocks, ids, index }: Covered) =>
  Effect.gen(function*() {
    const size = index.size
    for (;;) {
      yield* yieldToIo
      const step = yield* Effect.try(() => ids.next()).pipe(Effect.mapError((e) => store.fail("open", e)))
      if (step.done === true) {
        index.ids.offer(step.value)
        break
      }
    }
    const buffer = Buffer.allocUnsafe(blockSize)
    const known: Array<number> = []
    let intact = true
    for (let block = 0; block < blocksOf(size) && intact; block++) {
      const crc = yield* Effect.try(() => blockCrc(store.log.fd, size, block, buffer)).pipe(Effect.mapError((e) => store.fail("open", e)))
      intact = crc === blocks[block]
      known.push(crc)
      yield* yieldToIo
    }
    if (intact) {
      if (store.checkpoint.blocks.length === 0) store.checkpoint.blocks = known
      return
    }
    yield* Metric.increment(Metrics.filesystemCheckpointFullScans)
    yield* scanTail({
      ...store,
      index: emptyIndex(),
      deleted: new Map(),
      legacy: new Map(),
      erasures: new Erasures(),
      voids: new Map(),
      indexing: yield* makeIndexingPermit
    }, false, "open")
  }).pipe(Effect.withSpan("chronicle.filesystem.verifyCheckpoint"))

/**
 * Writes the checkpoint of the index as it is now, if it covers more than
 * the one on disk: temporary file, fsync, rename. Only once the log below a
 * loaded checkpoint checked out.
 */
export const write = (store: LogStore) =>
  store.checkpointing.withPermits(1)(Effect.gen(function*() {
    const verified = yield* Deferred.poll(store.verified)
    if (store.readOnly || verified._tag === "None" || (yield* Effect.either(verified.value))._tag === "Left") return
    const snapshot = snapshotOf(store.index, store.deleted, store.erasures, store.voids)
    if (snapshot.size <= store.checkpoint.covered) return
    const fd = store.log.fd
    const blocks = store.checkpoint.blocks.slice(0, reusableBlocks(store.checkpoint.blocks, snapshot.size))
    const buffer = Buffer.allocUnsafe(blockSize)
    while (blocks.length < blocksOf(snapshot.size)) {
      blocks.push(blockCrc(fd, snapshot.size, blocks.length, buffer))
      yield* yieldToIo
    }
    const bytes = encode(snapshot, fd, blocks)
    const temporary = `${store.checkpointPath}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
    yield* Effect.tryPromise({ try: async () => {
      const file = await NodeFs.promises.open(temporary, "w", store.fileMode)
      try {
        await file.writeFile(bytes)
        await file.sync()
      } finally {
        await file.close()
      }
      await NodeFs.promises.rename(temporary, store.checkpointPath)
    }, catch: (error) => error }).pipe(Effect.tapError(() => Effect.promise(() => NodeFs.promises.rm(temporary, { force: true }))))
    yield* syncDirectory(store.fs, store.directory)
    store.checkpoint.covered = snapshot.size
    // only whole blocks stay: the last one grows
    store.checkpoint.blocks = blocks.slice(0, reusableBlocks(blocks, snapshot.size))
    yield* Metric.increment(Metrics.filesystemCheckpointsWritten)
  })).pipe(
    // the directory went away (removed with the store still open): nothing to keep
    Effect.catchIf((error) => (error as NodeJS.ErrnoException).code === "ENOENT", () => Effect.void),
    Effect.catchAllCause((cause) => Effect.logWarning(`chronicle: could not write the index checkpoint ${store.checkpointPath}`, cause)),
    Effect.withSpan("chronicle.filesystem.writeCheckpoint")
  )

/** Writes the checkpoint in the background when enough log was added since the last one. */
export const writeIfDue = (store: LogStore) =>
  !checkpointDue(store)
    ? Effect.void
    : Effect.sync(() => {
      store.checkpoint.writing = true
    }).pipe(
      Effect.zipRight(write(store)),
      Effect.ensuring(Effect.sync(() => {
        store.checkpoint.writing = false
      })),
      // forked from a commit that cannot be interrupted, it still can
      Effect.interruptible,
      Effect.forkIn(store.scope),
      Effect.asVoid
    )

/** Whether a checkpoint write is due (and none is under way). */
export const checkpointDue = (store: LogStore) =>
  !store.readOnly && !store.checkpoint.writing && store.index.size - store.checkpoint.covered >= dueAfter(store.checkpoint.covered)

/**
 * Removes the checkpoint (an erasure is under way: the checkpoint holds the
 * erased stream's entries), so none written before the erasure survives it.
 */
export const remove = (store: LogStore) =>
  store.checkpointing.withPermits(1)(Effect.gen(function*() {
    yield* Effect.tryPromise(() => NodeFs.promises.rm(store.checkpointPath, { force: true })).pipe(
      Effect.mapError((e) => store.fail("deleteStream", e))
    )
    store.checkpoint.covered = 0
    store.checkpoint.blocks = []
  })).pipe(Effect.withSpan("chronicle.filesystem.removeCheckpoint"))

/** Waits until the log below a loaded checkpoint checked out; fails with the damage found there. */
export const awaitVerified = (store: LogStore): Effect.Effect<void, EventStore.StoreError> => Deferred.await(store.verified)
