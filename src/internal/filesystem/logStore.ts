/**
 * The filesystem event store's state in one process: the open log, its
 * in-memory index, deletions, erasures and void stretches, and catching up
 * with what other processes appended (sealing a torn tail under the lock).
 * The writer (`writing.ts`), deletion (`deleting.ts`) and reads
 * (`reading.ts`) work on it.
 */
import * as NodeFs from "node:fs"
import { basename } from "node:path"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as EventStore from "../../EventStore.js"
import type { StreamId } from "../../StreamId.js"
import { readBuffer, readBytes, readRunLimit, syncDirectory } from "./io.js"
import { decodeTombstones, encodeSeal, Erasures, scan, type VoidSpan } from "./logFormat.js"
import { addEntry, emptyIndex, type Index, withoutStreams } from "./logIndex.js"
import type { ReadingStore, View } from "./reading.js"
import * as WriterLease from "./writerLease.js"

/** Where the store lives and how it writes. */
export interface LogStoreSettings {
  readonly directory: string
  readonly logPath: string
  readonly lockPath: string
  /** The file a process waiting for the write lock touches to ask its holder to let go. */
  readonly wantedPath: string
  /** How long the write lock is kept after this process's last write, in ms. */
  readonly lockIdleMs: number
  /** `tombstones.jsonl` of stores written before tombstones went into the log. */
  readonly tombstonesPath: string
  /** `fsync` before an append returns. */
  readonly durable: boolean
  /** With `durable`: an append without company may `fsync` on the event loop, committing in one synchronous step. */
  readonly syncOnEventLoop: boolean
  /** After how long a lock whose holder stopped refreshing it is taken over, in ms. */
  readonly staleMs: number
  /** Largest accepted event, UTF-8 bytes of data plus metadata. */
  readonly maxEventBytes: number
  /** Open the log for reading only: never create, write, seal or lock anything. */
  readonly readOnly: boolean
  /** The permissions of files the store creates (before the umask). */
  readonly fileMode: number
  /** The index checkpoint (`checkpoint.ts`). */
  readonly checkpointPath: string
}

/**
 * A semaphore of one permit that tells whether the permit is taken: a
 * synchronous step (which nothing else can interleave with) may index
 * without taking it, if nobody holds it.
 */
export interface IndexingPermit {
  readonly withPermits: (permits: 1) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Whether a fiber holds the permit: it may be amid a scan, suspended in a read. */
  readonly taken: () => boolean
}

/** A fresh indexing permit. */
export const makeIndexingPermit = Effect.map(Effect.makeSemaphore(1), (semaphore): IndexingPermit => {
  let taken = false
  const markTaken = Effect.sync(() => {
    taken = true
  })
  const release = Effect.sync(() => {
    taken = false
  })
  return {
    withPermits: (permits) => (self) =>
      // the flag set inside the ensuring: an interruption can land before it or after its release, never between
      semaphore.withPermits(permits)(Effect.ensuring(Effect.zipRight(markTaken, self), release)),
    taken: () => taken
  }
})

/** The log as this process knows it. */
export interface LogStore extends LogStoreSettings {
  readonly fs: FileSystem.FileSystem
  /** The open log; replaced when an earlier version of the store compacted the log (renamed a new file into place). */
  log: FileSystem.File
  /** The inode of `log`: a file at `logPath` with another one is a log renamed into place. */
  logIno: number
  index: Index
  /** Called after each commit of this process. */
  readonly watchers: Set<() => void>
  /** Deleted streams and their version when deleted: from the log's tombstones (and `tombstones.jsonl` of older stores). */
  readonly deleted: Map<StreamId, number>
  /** Deleted streams known only from `tombstones.jsonl`, not yet from a tombstone in the log: a writer moves them there. */
  readonly legacy: Map<StreamId, number>
  /** The log's erased byte ranges, from its valid erasing tombstones. */
  readonly erasures: Erasures
  /** Void stretches holding a stream's lines (fenced-off appends, sealed torn ones), by offset: erasure overwrites them too. */
  readonly voids: Map<number, VoidSpan>
  /**
   * One fiber at a time indexes the log: the writer (taking the tail and
   * adding its own entries) and readers catching up. Two scans of the same
   * bytes would index them twice.
   */
  readonly indexing: IndexingPermit
  /** The store's scope: a log reopened later stays open as long as the store. */
  readonly scope: Scope.Scope
  readonly fail: (operation: string, error: unknown) => EventStore.StoreError
  /** The cross-process write lock, kept while this process keeps writing. */
  readonly lease: WriterLease.WriterLease
  /** How much of the log the checkpoint on disk covers (0: none known), and the log's block CRCs known so far. */
  readonly checkpoint: { covered: number; blocks: Array<number>; writing: boolean }
  /** One writer of the checkpoint at a time; erasure takes it to remove the checkpoint. */
  readonly checkpointing: Effect.Semaphore
  /** Done once the log below a loaded checkpoint checked out; failed with the damage found there. Writes wait for it. */
  readonly verified: Deferred.Deferred<void, EventStore.StoreError>
}

const inodeOf = (file: FileSystem.File) => Effect.try(() => NodeFs.fstatSync(file.fd).ino)

/** Opens the log (creating the directory and the log if needed) with an empty index. */
export const open = (fs: FileSystem.FileSystem, settings: LogStoreSettings) =>
  Effect.gen(function*() {
    const fail = (operation: string, error: unknown) =>
      new EventStore.StoreError({
        operation,
        reason: `${settings.directory}: ${error instanceof Error ? error.message : String(error)}`,
        cause: error
      })
    if (settings.readOnly && !(yield* fs.exists(settings.logPath).pipe(Effect.mapError((e) => fail("open", e))))) {
      return yield* new EventStore.StoreError({
        operation: "open",
        reason: `${settings.directory}: no event log here (no ${basename(settings.logPath)}); a store opened read-only never creates one`
      })
    }
    if (!settings.readOnly) yield* fs.makeDirectory(settings.directory, { recursive: true }).pipe(Effect.mapError((e) => fail("open", e)))
    const created = !settings.readOnly && !(yield* fs.exists(settings.logPath).pipe(Effect.mapError((e) => fail("open", e))))
    const log = yield* fs.open(settings.logPath, { flag: settings.readOnly ? "r" : "a+", mode: settings.fileMode }).pipe(
      Effect.mapError((e) => fail("open", e))
    )
    if (created && settings.durable) yield* syncDirectory(fs, settings.directory)
    const store: LogStore = {
      ...settings,
      fs,
      log,
      logIno: yield* inodeOf(log).pipe(Effect.mapError((e) => fail("open", e))),
      index: emptyIndex(),
      watchers: new Set(),
      deleted: new Map(),
      legacy: new Map(),
      erasures: new Erasures(),
      voids: new Map(),
      indexing: yield* makeIndexingPermit,
      scope: yield* Effect.scope,
      fail,
      checkpoint: { covered: 0, blocks: [], writing: false },
      checkpointing: yield* Effect.makeSemaphore(1),
      verified: yield* Deferred.make<void, EventStore.StoreError>(),
      lease: yield* WriterLease.make({
        directory: settings.directory,
        lockPath: settings.lockPath,
        wantedPath: settings.wantedPath,
        fileMode: settings.fileMode,
        staleMs: settings.staleMs,
        idleMs: settings.lockIdleMs,
        onFailure: (error) => fail("lock", error)
      })
    }
    return store
  })

/** The error of a holder whose lock was taken over while it stalled: its write landed nowhere valid. */
export const fenced = (store: LogStore, operation: string) =>
  new EventStore.StoreError({
    operation,
    reason: `${store.directory}: the write lock was lost (another process took it over while this one stalled past ${store.staleMs} ms); ` +
      "the write was fenced off and nothing of it was stored"
  })

/** The error of a write to a store opened read-only. */
export const readOnlyError = (store: LogStore, operation: string) =>
  new EventStore.StoreError({ operation, reason: `${store.directory}: the store was opened read-only` })

/** Runs `effect` holding the store's cross-process write lock; a read-only store fails instead. */
export const withLock = <A, E, R>(store: LogStore, effect: Effect.Effect<A, E, R>) =>
  store.readOnly ? Effect.fail(readOnlyError(store, "write")) : store.lease.use(() => effect)

/** The log and index as they are now. */
export const viewOf = (store: LogStore): View => ({ count: store.index.count, size: store.index.size, index: store.index, log: store.log })

/** What reads need of the store. */
export const readingOf = (store: LogStore): ReadingStore => ({
  logPath: store.logPath,
  buffer: readBuffer(),
  erasures: store.erasures,
  fail: store.fail,
  catchUp: () => catchUp(store, false),
  now: () => viewOf(store)
})

/** Reads `tombstones.jsonl`, which stores written before tombstones went into the log may have. */
export const readLegacyTombstones = (store: LogStore) =>
  Effect.gen(function*() {
    const text = yield* store.fs.readFileString(store.tombstonesPath).pipe(
      Effect.map(Option.some),
      Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "NotFound", () => Effect.succeedNone)
    )
    if (Option.isNone(text)) return
    const decoded = decodeTombstones(text.value)
    if ("damagedLine" in decoded) {
      return yield* new EventStore.StoreError({
        operation: "read",
        reason: `${store.tombstonesPath} is damaged at line ${decoded.damagedLine} (checksum mismatch)`
      })
    }
    for (const tombstone of decoded) {
      if (store.deleted.has(tombstone.streamId)) continue
      store.deleted.set(tombstone.streamId, tombstone.version)
      store.legacy.set(tombstone.streamId, tombstone.version)
    }
  }).pipe(Effect.mapError((e) => (e instanceof EventStore.StoreError ? e : store.fail("read", e))))

/**
 * Opens the log anew with an empty index: an earlier version of the store
 * erased streams by renaming a compacted log into place.
 */
const reopen = (store: LogStore) =>
  Effect.gen(function*() {
    // the old handle stays open until the store closes: reads in flight keep using it
    store.log = yield* store.fs.open(store.logPath, { flag: store.readOnly ? "r" : "a+", mode: store.fileMode }).pipe(Scope.extend(store.scope))
    store.logIno = yield* inodeOf(store.log)
    store.index = emptyIndex()
    store.erasures.clear()
    store.voids.clear()
    store.legacy.clear()
    yield* readLegacyTombstones(store)
  })

/**
 * The size of the log at its path, reopening it first when the file there
 * is no longer the one we have open (compacted by an earlier version).
 */
const currentSize = (store: LogStore) =>
  Effect.gen(function*() {
    // one stat of the path, asked synchronously: when the file there is ours, its size is our file's
    const onDisk = yield* Effect.try({ try: () => NodeFs.statSync(store.logPath, { bigint: false }), catch: (error) => store.fail("read", error) })
    if (onDisk.ino !== store.logIno) yield* reopen(store)
    return onDisk.size
  })

/**
 * Whether the log was renamed away under us (compacted by an earlier
 * version), and how long the log is; both unknown: replaced. One `stat` of
 * the path, asked synchronously (cheaper than a trip through the thread
 * pool): when the file there is ours, its size is our file's.
 */
export const logStateNow = (store: LogStore): { readonly replaced: boolean; readonly size: number } => {
  try {
    const onDisk = NodeFs.statSync(store.logPath, { bigint: false })
    return { replaced: onDisk.ino !== store.logIno, size: onDisk.size }
  } catch {
    return { replaced: true, size: -1 }
  }
}

/**
 * Indexes what other writers appended since we last looked; the caller holds
 * `indexing`. With the lock held (`repair`), a torn tail is sealed off;
 * without it, an incomplete tail is a write in progress and is left alone.
 */
export const scanTail = (
  store: LogStore,
  repair: boolean,
  operation: "open" | "read" = "read"
): Effect.Effect<void, EventStore.StoreError> =>
  Effect.gen(function*() {
    // entries past `count` are our own append in flight (we hold the lock: nobody else writes)
    if (store.index.offsets.length > store.index.count) return
    let size = yield* currentSize(store)
    if (size <= store.index.size) return
    let offset = store.index.size
    let window = readRunLimit * 4
    let torn: number | undefined
    while (offset < size) {
      const bytes = yield* readBytes(store.log, offset, Math.min(window, size - offset))
      const atEnd = offset + bytes.length >= size
      const result = scan(bytes, offset, atEnd, store.erasures)
      if (result.damaged !== undefined) {
        // a line being overwritten by an erasure whose tombstone was written after we sized the log: look again
        const grown = Number((yield* store.log.stat).size)
        if (grown > size) {
          size = grown
          continue
        }
        return yield* new EventStore.StoreError({
          operation,
          reason: `${store.logPath} is damaged at byte ${result.damaged.offset} (${
            result.damaged.problem === "checksum" ? "checksum mismatch" : "not a log line"
          }); the store will not skip it: restore the file or cut it at that offset`
        })
      }
      const index = store.index
      for (const { entry, offset: at } of result.lines) {
        // an erased stream's lines, whole yet (its erasure cut short), stay out
        if (store.erasures.has(entry.streamId)) continue
        addEntry(index, entry.streamId, entry.eventId, at, entry.globalPosition, entry.type, entry.tags)
        index.head = Math.max(index.head, entry.globalPosition)
      }
      for (const span of result.voids) store.voids.set(span.from, span)
      index.count = index.offsets.length
      index.size = offset + result.consumed
      const gone = new Set<StreamId>()
      for (const tombstone of result.tombstones) {
        if (!store.deleted.has(tombstone.streamId)) store.deleted.set(tombstone.streamId, tombstone.version)
        store.legacy.delete(tombstone.streamId)
        index.head = Math.max(index.head, tombstone.position)
        if (tombstone.erase && index.streams.has(tombstone.streamId)) gone.add(tombstone.streamId)
        // its overwrite changes blocks whose CRCs we may know
        if (tombstone.erase) store.checkpoint.blocks = []
      }
      // readers holding the old index keep it; lines of it overwritten meanwhile read as erased
      if (gone.size > 0) store.index = withoutStreams(index, gone)
      if (result.torn !== undefined) {
        torn = result.torn
        break
      }
      if (result.consumed === 0) {
        if (atEnd) break
        window *= 2
      }
      offset += result.consumed
    }
    if (repair && torn !== undefined) {
      yield* sealTail(store, torn, size)
      yield* scanTail(store, false)
    }
  }).pipe(Effect.mapError((e) => (e instanceof EventStore.StoreError ? e : store.fail("read", e))))

/**
 * Seals off a torn tail (bytes `from` up to `size`) with a seal line. It is
 * never cut off: a holder that stalled here past the stale time would cut
 * off the appends of the process that took its lock over. A seal that did
 * not land right at `size` is void, and so is this holder's hold.
 */
const sealTail = (store: LogStore, from: number, size: number) =>
  Effect.gen(function*() {
    const last = yield* readBytes(store.log, size - 1, 1)
    const lead = last[0] === 0x0a ? "" : "\n"
    const record = Buffer.from(lead + encodeSeal({ from, at: size + lead.length }))
    yield* Effect.logWarning(`chronicle: sealing off a torn append of ${size - from} bytes at byte ${from} of ${store.logPath}`)
    yield* store.log.writeAll(record)
    if (store.durable) yield* store.log.sync
    const landed = yield* readBytes(store.log, size, record.length)
    if (!landed.equals(record)) return yield* fenced(store, "append")
  })

/** Indexes what was appended since, taking the indexing permit. */
export const catchUp = (store: LogStore, repair: boolean, operation: "open" | "read" = "read") =>
  store.indexing.withPermits(1)(scanTail(store, repair, operation))
