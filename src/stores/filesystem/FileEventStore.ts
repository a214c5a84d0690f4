/**
 * The filesystem event store: chronicle's embedded default. Events live in
 * one append-only log of JSON lines under a directory (`./.chronicle` by
 * default), each line with a CRC32 so damage is detected, not guessed.
 *
 * - **Index**: stream → log offsets and event id → position, rebuilt from the
 *   log (or its checkpoint) when the store opens and kept current as the log grows (also by other
 *   processes), so a stream read never scans the store.
 * - **Index checkpoint** (`index.chk`): the index as binary columns up to
 *   some log size, written in the background (temporary file, fsync, rename)
 *   by writing processes; an open loads it and scans only the log after it.
 *   One that does not check out is ignored (full scan). The log below it is
 *   checked against its per-MiB CRCs in the background, and the first write
 *   waits for that check: damage there fails it as a full scan at open would.
 * - **Across processes**: an exclusive lock (`proper-lockfile`, stale locks of
 *   crashed holders are taken over) around catch-up + version check + write,
 *   kept as a lease while this process keeps writing (let go when idle or
 *   when another process asks).
 * - **Fencing**: a holder that merely stalled past the stale time (a long GC
 *   pause, a frozen VM) loses the lock without knowing it, so the log itself
 *   decides: each append's first line carries `at`, the offset its writer
 *   planned it at (the log's end as that writer saw it: the fencing token).
 *   The log only grows (O_APPEND, never truncated), so an append that starts
 *   anywhere else was planned against a log that has grown since: it is void
 *   for every reader (this process, others, a fresh open). The writer reads
 *   its bytes back after the write (and fsync): not there, its append fails
 *   with a `StoreError` ("the write lock was lost … nothing of it was
 *   stored"). Versions and positions of valid appends are therefore always
 *   planned against everything valid before them. Deletions are fenced the
 *   same way (below).
 * - **Within a process**: an append finding the write lock held and no
 *   commit in flight commits at once in its caller's fiber, whole or not at
 *   all even if interrupted; appends arriving meanwhile queue to one writer
 *   fiber that commits whatever has queued in one write and one `fsync`
 *   (group commit).
 * - **Durability**: `fsync` of the log (and of the directory when the log is
 *   created) before an append returns, unless `fsync: false`. While appends
 *   come one at a time, each commits in one synchronous step with its
 *   `fsync` on the event loop, as SQLite does: the process does nothing else
 *   for the `fsync`'s time (`syncOnEventLoop: false` keeps every `fsync` on
 *   the thread pool). One commit in 16 syncs on the thread pool all the same,
 *   and once appends queue behind a commit, commits go through the thread
 *   pool, grouping what arrives during each `fsync`, until 4 in a row were
 *   alone.
 * - **Recovery**: trailing bytes of a torn write, or an append missing its
 *   last lines, are left out by readers and sealed off (a seal line voiding
 *   them; never cut off, which a stalled holder could do to a newer holder's
 *   appends) when the next writer takes the lock; a damaged complete line is a
 *   `StoreError` naming file and offset, never skipped.
 * - **Deletion**: a tombstone is a line of the log (no global position),
 *   written under the lock after the version check and fenced like an
 *   append: it carries `at` and is read back, so a deleter that stalled while
 *   another process appended to the stream fails, and its tombstone is void.
 *   A valid tombstone makes later appends to the stream fail with
 *   `StreamDeleted`. The tombstones in `tombstones.jsonl` of older stores
 *   move into the log when a writer opens the store.
 * - **Erasure** never moves a byte: the erasing tombstone lists the byte
 *   ranges of the stream's lines, and once it is durable and read back valid
 *   those lines are overwritten in place with filler lines of the same
 *   length. They sit below the tombstone and never change otherwise, so a
 *   stalled eraser overwrites nothing of anyone else's. A line in those ranges
 *   reads as erased whatever it holds (an overwrite cut short by a crash);
 *   erasing again finishes the job. The ranges include the stream's bytes in
 *   void regions too (a fenced-off append, a sealed torn one): nothing of an
 *   erased stream stays readable in the file. An append of the stream that
 *   turns void after the erasure is erased by erasing again. Readers drop the
 *   stream's entries when they meet the tombstone, and a reader that meets a
 *   line mid-overwrite looks again rather than calling the log damaged;
 *   erased positions are never handed out again.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as EventStore from "../../EventStore.js"
import { defaultMaxEventBytes } from "../../internal/serialize.js"
import * as Checkpointing from "../../internal/filesystem/checkpointing.js"
import { deleteStream, moveLegacyTombstones } from "../../internal/filesystem/deleting.js"
import { watchDirectory } from "../../internal/filesystem/io.js"
import { streamVersionOf } from "../../internal/filesystem/logIndex.js"
import { catchUp, open, readingOf, readLegacyTombstones, viewOf } from "../../internal/filesystem/logStore.js"
import { foldPayloadPage, readLog, readLogPage, readPayloadPage, readQuery, readStream } from "../../internal/filesystem/reading.js"
import { startWriter } from "../../internal/filesystem/writing.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface FileEventStoreOptions {
  /** The store's directory; default `./.chronicle`. */
  readonly directory?: string | undefined
  /** `fsync` before an append returns; default true. Off trades durability on power loss for speed. */
  readonly fsync?: boolean | undefined
  /**
   * With `fsync`, whether an append that finds no other append under way
   * may `fsync` on the event loop (default true): it commits in one
   * synchronous step, as SQLite does, and nothing else in the process runs
   * until the disk is done (about 0.2 ms on a local SSD; tens of ms on some
   * network volumes). Appends that come together are committed in groups,
   * one `fsync` each on the thread pool, whatever this says. False: every
   * `fsync` runs on the thread pool and the event loop runs on meanwhile, at
   * the cost of fewer single appends per second.
   */
  readonly syncOnEventLoop?: boolean | undefined
  /** Largest accepted event (UTF-8 bytes of data plus metadata); default 1 MiB. */
  readonly maxEventBytes?: number | undefined
  /** After how long a lock whose holder stopped refreshing it is taken over, in ms; default 5,000 (minimum 2,000). */
  readonly lockStaleMs?: number | undefined
  /**
   * How long the write lock is kept after this process's last write, in ms;
   * default 10. Held, the next commit skips taking it (a directory created
   * and removed); another process that wants it asks, and gets it at the
   * end of the current commit.
   */
  readonly lockIdleMs?: number | undefined
  /**
   * Open for reading only (default false): the log is opened read-only, so
   * a read-only directory or mount works, and nothing is ever created,
   * written, sealed or locked; a directory without a log is a `StoreError`.
   * Appends and deletions fail with a `StoreError`. Other processes'
   * appends are still seen.
   */
  readonly readOnly?: boolean | undefined
  /**
   * The permissions of the files the store creates (the log, `write.wanted`),
   * before the process's umask; default `0o666`, i.e. readable by everyone
   * under the usual umask 022. Give `0o600` to keep events to their owner.
   */
  readonly fileMode?: number | undefined
}

/**
 * The name of the log file in the store's directory.
 *
 * @since 0.1.0
 * @category constants
 */
export const logFileName = "events.jsonl"

/**
 * The name of the file of deleted streams written by earlier versions
 * (tombstones now go into the log); read, and its tombstones moved into the
 * log when a writer opens the store.
 *
 * @since 0.1.0
 * @category constants
 */
export const tombstonesFileName = "tombstones.jsonl"


/**
 * The name of the index checkpoint in the store's directory: the index of
 * the log up to some size, so an open scans only the log after it. Written
 * in the background; a file that does not check out is ignored.
 *
 * @since 0.2.0
 * @category constants
 */
export const indexCheckpointFileName = "index.chk"

/**
 * Opens (creating it if needed) the store in a directory, recovers its log,
 * and starts its writer. The store closes with the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: FileEventStoreOptions = {}
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const directory = path.resolve(options.directory ?? ".chronicle")
    const store = yield* open(fs, {
      directory,
      logPath: path.join(directory, logFileName),
      lockPath: path.join(directory, "write.lock"),
      wantedPath: path.join(directory, "write.wanted"),
      lockIdleMs: Math.max(1, options.lockIdleMs ?? 10),
      tombstonesPath: path.join(directory, tombstonesFileName),
      durable: options.fsync !== false,
      syncOnEventLoop: options.syncOnEventLoop !== false,
      staleMs: Math.max(2000, options.lockStaleMs ?? 5000),
      maxEventBytes: options.maxEventBytes ?? defaultMaxEventBytes,
      readOnly: options.readOnly === true,
      fileMode: options.fileMode ?? 0o666,
      checkpointPath: path.join(directory, indexCheckpointFileName)
    })
    yield* readLegacyTombstones(store)
    yield* Checkpointing.load(store)
    // index the log without the lock (others keep appending); a torn tail is sealed under the lock before the next write
    yield* catchUp(store, false, "open")
    yield* moveLegacyTombstones(store)
    const { append, appendMany } = yield* startWriter(store)
    yield* Effect.addFinalizer(() => Checkpointing.write(store))
    const reading = readingOf(store)
    /** Each stream's partition hash, computed once. */
    const hashes = new Map<string, number>()
    const upToDate = catchUp(store, false)

    return EventStore.make({
      name: "filesystem",
      append,
      appendMany,
      read: readStream(reading),
      readAll: readLog(reading, hashes),
      readLogPage: readLogPage(reading, hashes),
      query: readQuery(reading),
      // the last readable event; erased positions past it are never handed out again all the same (index.head)
      headPosition: Effect.map(upToDate, () => BigInt(store.index.count === 0 ? 0 : store.index.positionOf.get(store.index.count - 1))),
      watch: (onChange) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            store.watchers.add(onChange)
            return watchDirectory(directory, logFileName, onChange)
          }),
          (watcher) =>
            Effect.sync(() => {
              store.watchers.delete(onChange)
              watcher?.close()
            })
        ),
      pollInterval: "1 second",
      readPage: (streamId, page) =>
        Effect.flatMap(upToDate, () => readPayloadPage(reading, viewOf(store), streamId, page)),
      foldPage: (streamId, page, step) =>
        Effect.flatMap(upToDate, () => foldPayloadPage(reading, viewOf(store), streamId, page, step)),
      streamVersion: (streamId) => Effect.map(upToDate, () => streamVersionOf(store.index, streamId, store.index.count)),
      deleteStream: deleteStream(store),
      isDeleted: (streamId) => Effect.map(upToDate, () => store.deleted.has(streamId))
    })
  })

/**
 * The store as a Layer; needs `FileSystem` and `Path` (e.g. `NodeContext.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: FileEventStoreOptions = {}
): Layer.Layer<EventStore.EventStore, EventStore.StoreError, FileSystem.FileSystem | Path.Path> =>
  Layer.scoped(EventStore.EventStore, make(options))

/**
 * The settings read from the environment: `CHRONICLE_DIR` (default
 * `./.chronicle`), `CHRONICLE_FSYNC` and `CHRONICLE_SYNC_ON_EVENT_LOOP`
 * (both default true); give it to
 * `layerConfig`, or build your own `Config`.
 *
 * @since 0.2.0
 * @category layers
 */
export const environment: Config.Config<FileEventStoreOptions> = Config.all({
  directory: Config.string("CHRONICLE_DIR").pipe(Config.withDefault(".chronicle")),
  fsync: Config.boolean("CHRONICLE_FSYNC").pipe(Config.withDefault(true)),
  syncOnEventLoop: Config.boolean("CHRONICLE_SYNC_ON_EVENT_LOOP").pipe(Config.withDefault(true))
})

/**
 * `layer` with its options read from `Config`, like `PgClient.layerConfig`.
 *
 * @example
 * FileEventStore.layerConfig(FileEventStore.environment)
 * FileEventStore.layerConfig({ directory: Config.string("EVENTS_DIR"), fsync: Config.succeed(true) })
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<FileEventStoreOptions>
): Layer.Layer<EventStore.EventStore, EventStore.StoreError | ConfigError.ConfigError, FileSystem.FileSystem | Path.Path> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
