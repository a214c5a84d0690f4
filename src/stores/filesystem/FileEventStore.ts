/**
 * The filesystem event store: chronicle's embedded default. Events live in
 * one append-only log of JSON lines under a directory (`./.chronicle` by
 * default), each line with a CRC32 so damage is detected, not guessed.
 *
 * - **Index**: stream → log offsets and event id → position, rebuilt from the
 *   log when the store opens and kept current as the log grows (also by other
 *   processes), so a stream read never scans the store.
 * - **Across processes**: an exclusive lock (`proper-lockfile`, stale locks of
 *   crashed holders are taken over) around catch-up + version check + write.
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
 * - **Within a process**: appends queue to one writer fiber that commits
 *   whatever has queued in one write and one `fsync` (group commit).
 * - **Durability**: `fsync` of the log (and of the directory when the log is
 *   created) before an append returns, unless `fsync: false`.
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
 *   `StreamDeleted`. `tombstones.jsonl` of older stores is still read.
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
import { FileSystem, Path } from "@effect/platform"
import { Cause, Chunk, Clock, Config, type ConfigError, Deferred, Effect, Either, Layer, Option, Queue, Scope } from "effect"
import type { PendingEvent } from "../../Event.js"
import * as EventStore from "../../EventStore.js"
import * as ExpectedVersion from "../../ExpectedVersion.js"
import { planAppend } from "../../internal/appendPlan.js"
import { defaultMaxEventBytes, serializeEvent } from "../../internal/serialize.js"
import { addEntry, emptyIndex, firstSlotAtOrAfter, matchingEntries, rollback, streamVersionOf, withoutStreams } from "../../internal/filesystem/logIndex.js"
import type { StreamId } from "../../StreamId.js"
import { withDirectoryLock } from "../../internal/filesystem/directoryLock.js"
import { eraseInPlace, rangesOf } from "../../internal/filesystem/erasing.js"
import { readLog, readPositions, readQuery, type ReadingStore, readStream, type View } from "../../internal/filesystem/reading.js"
import { readBytes, readRunLimit, syncDirectory, watchDirectory } from "../../internal/filesystem/io.js"
import type { VoidSpan } from "../../internal/filesystem/logFormat.js"
import {
  decodeTombstones,
  encodeLine,
  encodeLogTombstone,
  encodeSeal,
  Erasures,
  mergeRanges,
  scan,
  voidOf
} from "../../internal/filesystem/logFormat.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface FileEventStoreOptions {
  /** The store's directory; default `./.chronicle`. */
  readonly directory?: string | undefined
  /** `fsync` before an append returns; default true. Off trades durability on power loss for speed. */
  readonly fsync?: boolean | undefined
  /** Largest accepted event (UTF-8 bytes of data plus metadata); default 1 MiB. */
  readonly maxEventBytes?: number | undefined
  /** After how long a lock whose holder stopped refreshing it is taken over, in ms; default 5,000 (minimum 2,000). */
  readonly lockStaleMs?: number | undefined
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
 * (tombstones now go into the log); still read.
 *
 * @since 0.1.0
 * @category constants
 */
export const tombstonesFileName = "tombstones.jsonl"

interface Pending {
  readonly streamId: StreamId
  readonly events: ReadonlyArray<PendingEvent>
  readonly expected: ExpectedVersion.ExpectedVersion
  readonly condition: EventStore.SettledCondition | undefined
  readonly done: Deferred.Deferred<EventStore.AppendResult, EventStore.AppendError>
}

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
    const logPath = path.join(directory, logFileName)
    const lockPath = path.join(directory, "write.lock")
    const tombstonesPath = path.join(directory, tombstonesFileName)
    const maxBytes = options.maxEventBytes ?? defaultMaxEventBytes
    const durable = options.fsync !== false
    const stale = Math.max(2000, options.lockStaleMs ?? 5000)
    const fail = (operation: string, error: unknown) =>
      new EventStore.StoreError({
        operation,
        reason: `${directory}: ${error instanceof Error ? error.message : String(error)}`,
        cause: error
      })

    yield* fs.makeDirectory(directory, { recursive: true }).pipe(Effect.mapError((e) => fail("open", e)))
    const created = !(yield* fs.exists(logPath).pipe(Effect.mapError((e) => fail("open", e))))
    const layerScope = yield* Effect.scope
    /** The open log and its index; both are replaced when an earlier version of the store compacted the log (renamed a new file into place). */
    let log = yield* fs.open(logPath, { flag: "a+" }).pipe(Effect.mapError((e) => fail("open", e)))
    if (created && durable) yield* syncDirectory(fs, directory)

    let index = emptyIndex()
    const watchers = new Set<() => void>()
    /** Deleted streams and their version when deleted: from the log's tombstones (and `tombstones.jsonl` of older stores). */
    const deleted = new Map<StreamId, number>()
    /** The log's erased byte ranges, from its valid erasing tombstones. */
    const erasures = new Erasures()
    /** Void stretches holding a stream's lines (fenced-off appends, sealed torn ones), by offset: erasure overwrites them too. */
    const voids = new Map<number, VoidSpan>()

    /** Reads `tombstones.jsonl`, which stores written before tombstones went into the log may have. */
    const legacyTombstones = Effect.gen(function*() {
      const text = yield* fs.readFileString(tombstonesPath).pipe(
        Effect.map(Option.some),
        Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "NotFound", () => Effect.succeedNone)
      )
      if (Option.isNone(text)) return
      const decoded = decodeTombstones(text.value)
      if ("damagedLine" in decoded) {
        return yield* new EventStore.StoreError({
          operation: "read",
          reason: `${tombstonesPath} is damaged at line ${decoded.damagedLine} (checksum mismatch)`
        })
      }
      for (const tombstone of decoded) if (!deleted.has(tombstone.streamId)) deleted.set(tombstone.streamId, tombstone.version)
    }).pipe(Effect.mapError((e) => (e instanceof EventStore.StoreError ? e : fail("read", e))))

    /**
     * Opens the log anew with an empty index: an earlier version of the store
     * erased streams by renaming a compacted log into place.
     */
    const reopen = Effect.gen(function*() {
      // the old handle stays open until the store closes: reads in flight keep using it
      log = yield* fs.open(logPath, { flag: "a+" }).pipe(Scope.extend(layerScope))
      index = emptyIndex()
      erasures.clear()
      voids.clear()
      yield* legacyTombstones
    })

    /**
     * The size of the log at its path, reopening it first when the file there
     * is no longer the one we have open (compacted by an earlier version).
     */
    const currentSize = Effect.gen(function*() {
      const [onDisk, mine] = yield* Effect.all([fs.stat(logPath), log.stat])
      if (Option.getOrUndefined(onDisk.ino) === Option.getOrUndefined(mine.ino)) return Number(mine.size)
      yield* reopen
      return Number(onDisk.size)
    })

    /**
     * Indexes what other writers appended since we last looked. With the lock
     * held (`repair`), a torn tail is cut off; without it, an incomplete tail
     * is a write in progress and is left alone.
     */
    const scanTail = (repair: boolean, operation: "open" | "read" = "read"): Effect.Effect<void, EventStore.StoreError> =>
      Effect.gen(function*() {
        // entries past `count` are our own append in flight (we hold the lock: nobody else writes)
        if (index.offsets.length > index.count) return
        let size = yield* currentSize
        if (size <= index.size) return
        let offset = index.size
        let window = readRunLimit * 4
        let torn: number | undefined
        while (offset < size) {
          const bytes = yield* readBytes(log, offset, Math.min(window, size - offset))
          const atEnd = offset + bytes.length >= size
          const result = scan(bytes, offset, atEnd, erasures)
          if (result.damaged !== undefined) {
            // a line being overwritten by an erasure whose tombstone was written after we sized the log: look again
            const grown = Number((yield* log.stat).size)
            if (grown > size) {
              size = grown
              continue
            }
            return yield* new EventStore.StoreError({
              operation,
              reason: `${logPath} is damaged at byte ${result.damaged.offset} (${
                result.damaged.problem === "checksum" ? "checksum mismatch" : "not a log line"
              }); the store will not skip it: restore the file or cut it at that offset`
            })
          }
          for (const { entry, offset: at } of result.lines) {
            // an erased stream's lines, whole yet (its erasure cut short), stay out
            if (erasures.has(entry.streamId)) continue
            addEntry(index, entry.streamId, entry.eventId, at, entry.globalPosition, entry.type, entry.tags)
            index.head = Math.max(index.head, entry.globalPosition)
          }
          for (const span of result.voids) voids.set(span.from, span)
          index.count = index.offsets.length
          index.size = offset + result.consumed
          const gone = new Set<StreamId>()
          for (const tombstone of result.tombstones) {
            if (!deleted.has(tombstone.streamId)) deleted.set(tombstone.streamId, tombstone.version)
            index.head = Math.max(index.head, tombstone.position)
            if (tombstone.erase && index.streams.has(tombstone.streamId)) gone.add(tombstone.streamId)
          }
          // readers holding the old index keep it; lines of it overwritten meanwhile read as erased
          if (gone.size > 0) index = withoutStreams(index, gone)
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
          yield* sealTail(torn, size)
          yield* scanTail(false)
        }
      }).pipe(Effect.mapError((e) => (e instanceof EventStore.StoreError ? e : fail("read", e))))

    /**
     * Seals off a torn tail (bytes `from` up to `size`) with a seal line. It is
     * never cut off: a holder that stalled here past the stale time would cut
     * off the appends of the process that took its lock over. A seal that did
     * not land right at `size` is void, and so is this holder's hold.
     */
    const sealTail = (from: number, size: number) =>
      Effect.gen(function*() {
        const last = yield* readBytes(log, size - 1, 1)
        const lead = last[0] === 0x0a ? "" : "\n"
        const record = Buffer.from(lead + encodeSeal({ from, at: size + lead.length }))
        yield* Effect.logWarning(`chronicle: sealing off a torn append of ${size - from} bytes at byte ${from} of ${logPath}`)
        yield* log.writeAll(record)
        if (durable) yield* log.sync
        const landed = yield* readBytes(log, size, record.length)
        if (!landed.equals(record)) return yield* fenced("append")
      })

    /** The error of a holder whose lock was taken over while it stalled: its write landed nowhere valid. */
    const fenced = (operation: string) =>
      new EventStore.StoreError({
        operation,
        reason: `${directory}: the write lock was lost (another process took it over while this one stalled past ${stale} ms); ` +
          "the write was fenced off and nothing of it was stored"
      })

    /**
     * One fiber at a time indexes the log: the writer (taking the tail and
     * adding its own entries) and readers catching up. Two scans of the same
     * bytes would index them twice.
     */
    const indexing = yield* Effect.makeSemaphore(1)
    const catchUp = (repair: boolean, operation: "open" | "read" = "read") => indexing.withPermits(1)(scanTail(repair, operation))

    const withLock = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      withDirectoryLock({ directory, lockPath, staleMs: stale }, (error) => fail("lock", error), effect)

    yield* legacyTombstones
    // index the log without the lock (others keep appending); a torn tail is sealed under the lock before the next write
    yield* catchUp(false, "open")

    const queue = yield* Queue.unbounded<Pending>()

    /** Whether the log was renamed away under us (compacted by an earlier version), and how long our open file is; both unknown: replaced. */
    const logState = Effect.suspend(() => Effect.all([fs.stat(logPath), log.stat])).pipe(
      Effect.map(([onDisk, mine]) => ({
        replaced: Option.getOrUndefined(onDisk.ino) !== Option.getOrUndefined(mine.ino),
        size: Number(mine.size)
      })),
      Effect.orElseSucceed(() => ({ replaced: true, size: -1 }))
    )

    /** Refusals that depend on the log's state (not on the input alone). */
    const judged = new Set(["ConcurrencyConflict", "AppendConditionFailed", "DuplicateEventId", "StreamDeleted"])

    /** Commits a group of queued appends: one lock, one write, one fsync. */
    const commit = (group: ReadonlyArray<Pending>) =>
      Effect.gen(function*() {
        const now = new Date(yield* Clock.currentTimeMillis).toISOString()
        const outcomes = yield* withLock(Effect.gen(function*() {
          // plan under the indexing permit; once our entries are in, readers leave the tail to us
          const { start, chunks, bytes, outcomes, spans } = yield* indexing.withPermits(1)(Effect.gen(function*() {
            yield* scanTail(true)
            const start = index.offsets.length
            const chunks: Array<string> = []
            let bytes = index.size
            /** The byte span each append is planned at, and which outcome it is. */
            const spans: Array<{ readonly outcome: number; readonly from: number; readonly to: number }> = []
            const outcomes: Array<Either.Either<EventStore.AppendResult, EventStore.AppendError>> = []
            for (const pending of group) {
              const { condition, events, expected, streamId } = pending
              const current = streamVersionOf(index, streamId)
              const plan = planAppend(streamId, events, expected, current, (id) => {
                const at = index.ids.get(id)
                return at === undefined ? undefined : {
                  streamId: index.streamOf[at]!,
                  streamVersion: index.versionOf[at]!,
                  globalPosition: BigInt(index.positionOf[at]!)
                }
              })
              if (Either.isRight(plan) && plan.right._tag === "AlreadyStored") {
                outcomes.push(Either.right(plan.right.result))
                continue
              }
              if (deleted.has(streamId)) {
                outcomes.push(Either.left(new EventStore.StreamDeleted({ streamId })))
                continue
              }
              if (Either.isLeft(plan)) {
                outcomes.push(Either.left(plan.left))
                continue
              }
              // the whole index: events planned earlier in this group count too
              const end = index.offsets.length
              const conflicting = condition === undefined
                ? -1
                : matchingEntries(index, condition.failIfEventsMatch, firstSlotAtOrAfter(index, condition.after + 1n, end), end, 1)[0] ?? -1
              if (conflicting !== -1) {
                outcomes.push(Either.left(
                  new EventStore.AppendConditionFailed({
                    streamId,
                    query: condition!.failIfEventsMatch,
                    after: condition!.after,
                    position: BigInt(index.positionOf[conflicting]!)
                  })
                ))
                continue
              }
              const serialized = []
              let rejected: EventStore.AppendError | undefined
              for (let i = 0; i < events.length && rejected === undefined; i++) {
                const result = serializeEvent(streamId, i, events[i]!, maxBytes)
                if (Either.isLeft(result)) rejected = result.left
                else serialized.push(result.right)
              }
              if (rejected !== undefined) {
                outcomes.push(Either.left(rejected))
                continue
              }
              const positions: Array<bigint> = []
              const from = bytes
              for (let i = 0; i < events.length; i++) {
                const position = Math.max(index.head, index.positionOf.at(-1) ?? 0) + 1
                // the first line says where the append must start: anywhere else, it is void
                const line = encodeLine(events[i]!, serialized[i]!, streamId, current + i + 1, position, now, i, events.length, i === 0 ? from : undefined)
                addEntry(index, streamId, events[i]!.eventId, bytes, position, events[i]!.type, events[i]!.tags)
                bytes += Buffer.byteLength(line)
                chunks.push(line)
                positions.push(BigInt(position))
              }
              spans.push({ outcome: outcomes.length, from, to: bytes })
              outcomes.push(Either.right({ streamId, streamVersion: current + events.length, globalPositions: positions }))
            }
            return { start, chunks, bytes, outcomes, spans }
          }))
          let seen: { readonly replaced: boolean; readonly size: number } | undefined
          if (chunks.length > 0) {
            const buffer = Buffer.from(chunks.join(""))
            const base = index.size
            const written = yield* Effect.either(log.writeAll(buffer))
            // synced even after a failed write: appends that landed whole are then acknowledged
            const synced = durable ? yield* Effect.either(log.sync) : Either.right(undefined)
            // an append is ours only where we planned it: a holder that stalled past the stale time
            // finds another's bytes there (its own landed later, and is void), so it reads back to see
            const landed = yield* Effect.either(readBytes(log, base, buffer.length))
            // a log compacted by an earlier version in another process (renamed over ours) while we stalled: our bytes are in the old file
            seen = yield* logState
            const replaced = seen.replaced
            const failure = Either.isLeft(written)
              ? fail("append", written.left)
              : Either.isLeft(synced)
              ? fail("append", synced.left)
              : Either.isLeft(landed)
              ? fail("append", landed.left)
              : undefined
            let whole = failure === undefined
            for (const { from, outcome, to } of spans) {
              const intact = !replaced && Either.isRight(landed) && landed.right.length >= to - base &&
                landed.right.subarray(from - base, to - base).equals(buffer.subarray(from - base, to - base))
              if (!intact || failure !== undefined) {
                whole = false
                outcomes[outcome] = Either.left(failure ?? fenced("append"))
              }
            }
            if (whole) {
              index.size = bytes
              index.count = index.offsets.length
              index.head = Math.max(index.head, index.positionOf.at(-1) ?? 0)
            } else {
              // forget our entries: the next catch-up indexes whatever of ours landed valid, and seals a torn rest
              rollback(index, start)
            }
            for (const onChange of watchers) onChange()
          }
          // refusals were judged against our view of the log: if it grew behind our back (we stalled past
          // the stale time and another holder appended), a conflict's `actual` or a condition's position
          // may be stale, or point at an entry of ours that was fenced off; they become the fenced error
          const after = seen ?? (yield* logState)
          if (after.replaced || after.size !== bytes) {
            for (let i = 0; i < outcomes.length; i++) {
              const outcome = outcomes[i]!
              if (Either.isLeft(outcome) && judged.has(outcome.left._tag)) outcomes[i] = Either.left(fenced("append"))
            }
          }
          return outcomes
        })).pipe(
          Effect.catchAll((error) => Effect.succeed(group.map(() => Either.left(error))))
        )
        yield* Effect.forEach(group, (pending, i) => Deferred.complete(pending.done, outcomes[i]!), { discard: true })
      })

    const failAll = (group: Iterable<Pending>, error: EventStore.StoreError) =>
      Effect.forEach(group, (pending) => Deferred.fail(pending.done, error), { discard: true })

    yield* Queue.takeBetween(queue, 1, 1000).pipe(
      Effect.flatMap((group) =>
        commit(Chunk.toReadonlyArray(group)).pipe(
          Effect.catchAllCause((cause) => failAll(group, fail("append", Cause.squash(cause))))
        )
      ),
      Effect.forever,
      Effect.forkScoped
    )
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Queue.takeAll(queue), (rest) => failAll(rest, fail("append", new Error("the store was closed"))))
    )

    const append = (
      streamId: StreamId,
      events: ReadonlyArray<PendingEvent>,
      expected: ExpectedVersion.ExpectedVersion,
      condition: EventStore.SettledCondition | undefined
    ) =>
      Effect.gen(function*() {
        const done = yield* Deferred.make<EventStore.AppendResult, EventStore.AppendError>()
        yield* Queue.offer(queue, { streamId, events, expected, condition, done })
        return yield* Deferred.await(done)
      })

    const reading: ReadingStore = {
      logPath,
      erasures,
      fail,
      catchUp: () => catchUp(false),
      now: () => ({ count: index.count, size: index.size, index, log })
    }
    const read = readStream(reading)
    const readAll = readLog(reading)
    const query = readQuery(reading)

    /**
     * Deletes under the lock, fenced like an append: the tombstone goes into
     * the log, its `at` the log's end as this holder saw it, and is read back
     * after write and fsync. A holder that stalled past the stale time while
     * another appended finds other bytes there: its tombstone landed later and
     * is void (the version it checked may be stale), and it fails. Erasure
     * overwrites the stream's lines in place only after its tombstone is
     * known valid.
     */
    const deleteStream = (streamId: StreamId, expected: ExpectedVersion.ExpectedVersion, erase: boolean) =>
      withLock(Effect.gen(function*() {
        const deletedAt = new Date(yield* Clock.currentTimeMillis).toISOString()
        const { planned, refusal } = yield* indexing.withPermits(1)(Effect.gen(function*() {
          yield* scanTail(true)
          const planned = index.size
          const slots = index.streams.get(streamId)?.positions ?? []
          // the stream's bytes no reader sees: a stalled writer's fenced-off append (before us, or after an earlier erasure), a sealed torn one
          const unerasedVoids = erase ? [...voids.values()].filter((span) => voidOf(span, streamId) && !erasures.covers(span.from)) : []
          const was = deleted.get(streamId)
          // deleted already: nothing to write, unless bytes are left to erase
          if (was !== undefined && (!erase || slots.length + unerasedVoids.length === 0)) return { planned, refusal: undefined }
          const version = was ?? streamVersionOf(index, streamId)
          if (was === undefined && !ExpectedVersion.matches(expected, version)) {
            return { planned, refusal: new EventStore.ConcurrencyConflict({ streamId, expected, actual: version }) }
          }
          const erased = erase ? mergeRanges([...(yield* rangesOf({ logPath, fail }, reading.now(), slots)), ...unerasedVoids.map((span) => [span.from, span.to] as const)]) : []
          const record = Buffer.from(encodeLogTombstone({ streamId, version, deletedAt, erase, position: index.head, at: planned, erased }))
          yield* log.writeAll(record)
          if (durable) yield* log.sync
          const landed = yield* readBytes(log, planned, record.length)
          // index what is there now: our tombstone (an erased stream's entries go), or what got there first
          yield* scanTail(false)
          return { planned, refusal: landed.equals(record) ? undefined : fenced("deleteStream") }
        }))
        if (refusal !== undefined) {
          // a conflict judged against a log that grew behind our back (we stalled, another took over) may be stale
          if (refusal._tag === "ConcurrencyConflict" && Number((yield* log.stat).size) !== planned) {
            return yield* fenced("deleteStream")
          }
          return yield* refusal
        }
        const ranges = erase ? erasures.of(streamId) : undefined
        if (ranges !== undefined) yield* eraseInPlace({ fs, logPath, durable, fail }, streamId, ranges)
      })).pipe(
        Effect.mapError((e) =>
          e instanceof EventStore.StoreError || e instanceof EventStore.ConcurrencyConflict ? e : fail("deleteStream", e)
        )
      )

    return EventStore.make({
      name: "filesystem",
      append,
      read,
      readAll,
      query,
      // the last readable event; erased positions past it are never handed out again all the same (index.head)
      headPosition: Effect.map(catchUp(false), () => BigInt(index.count === 0 ? 0 : index.positionOf[index.count - 1]!)),
      watch: (onChange) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            watchers.add(onChange)
            return watchDirectory(directory, logFileName, onChange)
          }),
          (watcher) =>
            Effect.sync(() => {
              watchers.delete(onChange)
              watcher?.close()
            })
        ),
      pollInterval: "1 second",
      readPage: (streamId, page) =>
        Effect.flatMap(catchUp(false), () => {
          const view: View = { count: index.count, size: index.size, index, log }
          const slots = index.streams.get(streamId)?.positions ?? []
          const from = Math.max(1, page.fromVersion)
          const to = Math.min(page.toVersion, streamVersionOf(index, streamId, view.count), from + page.limit - 1)
          return from > to ? Effect.succeed([]) : readPositions(reading, slots.slice(from - 1, to), view)
        }).pipe(Effect.mapError((e) => (e instanceof EventStore.StoreError ? e : fail("read", e)))),
      streamVersion: (streamId) => Effect.map(catchUp(false), () => streamVersionOf(index, streamId, index.count)),
      deleteStream,
      isDeleted: (streamId) => Effect.map(catchUp(false), () => deleted.has(streamId))
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
 * `./.chronicle`) and `CHRONICLE_FSYNC` (default true); give it to
 * `layerConfig`, or build your own `Config`.
 *
 * @since 0.2.0
 * @category layers
 */
export const environment: Config.Config<FileEventStoreOptions> = Config.all({
  directory: Config.string("CHRONICLE_DIR").pipe(Config.withDefault(".chronicle")),
  fsync: Config.boolean("CHRONICLE_FSYNC").pipe(Config.withDefault(true))
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
