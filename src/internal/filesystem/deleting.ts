/**
 * Deletion on the filesystem store: a tombstone line written under the lock
 * and fenced like an append, then, for an erasure, the stream's lines
 * overwritten in place.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as EventStore from "../../EventStore.js"
import * as ExpectedVersion from "../../ExpectedVersion.js"
import type { StreamId } from "../../StreamId.js"
import { awaitVerified, remove as removeCheckpoint } from "./checkpointing.js"
import { eraseInPlace, rangesOf } from "./erasing.js"
import { readBytes } from "./io.js"
import { encodeLogTombstone, mergeRanges, voidOf } from "./logFormat.js"
import { streamVersionOf } from "./logIndex.js"
import { fenced, type LogStore, scanTail, viewOf, withLock } from "./logStore.js"

/**
 * Deletes under the lock, fenced like an append: the tombstone goes into
 * the log, its `at` the log's end as this holder saw it, and is read back
 * after write and fsync. A holder that stalled past the stale time while
 * another appended finds other bytes there: its tombstone landed later and
 * is void (the version it checked may be stale), and it fails. Erasure
 * overwrites the stream's lines in place only after its tombstone is
 * known valid.
 */
export const deleteStream = (store: LogStore) => (streamId: StreamId, expected: ExpectedVersion.ExpectedVersion, erase: boolean) =>
  Effect.zipRight(awaitVerified(store), withLock(
    store,
    Effect.gen(function*() {
      const deletedAt = new Date(yield* Clock.currentTimeMillis).toISOString()
      const { planned, refusal } = yield* store.indexing.withPermits(1)(Effect.gen(function*() {
        yield* scanTail(store, true)
        const index = store.index
        const planned = index.size
        const slots = index.streams.get(streamId)?.positions ?? []
        // the stream's bytes no reader sees: a stalled writer's fenced-off append (before us, or after an earlier erasure), a sealed torn one
        const unerasedVoids = erase
          ? [...store.voids.values()].filter((span) => voidOf(span, streamId) && !store.erasures.covers(span.from))
          : []
        const was = store.deleted.get(streamId)
        // deleted already: nothing to write, unless bytes are left to erase
        if (was !== undefined && (!erase || slots.length + unerasedVoids.length === 0)) return { planned, refusal: undefined }
        const version = was ?? streamVersionOf(index, streamId)
        if (was === undefined && !ExpectedVersion.matches(expected, version)) {
          return { planned, refusal: new EventStore.ConcurrencyConflict({ streamId, expected, actual: version }) }
        }
        const erased = erase
          ? mergeRanges([
            ...(yield* rangesOf(store, viewOf(store), slots)),
            ...unerasedVoids.map((span) => [span.from, span.to] as const)
          ])
          : []
        const record = Buffer.from(encodeLogTombstone({ streamId, version, deletedAt, erase, position: index.head, at: planned, erased }))
        yield* store.log.writeAll(record)
        if (store.durable) yield* store.log.sync
        const landed = yield* readBytes(store.log, planned, record.length)
        // index what is there now: our tombstone (an erased stream's entries go), or what got there first
        yield* scanTail(store, false)
        return { planned, refusal: landed.equals(record) ? undefined : fenced(store, "deleteStream") }
      }))
      if (refusal !== undefined) {
        // a conflict judged against a log that grew behind our back (we stalled, another took over) may be stale
        if (refusal._tag === "ConcurrencyConflict" && Number((yield* store.log.stat).size) !== planned) {
          return yield* fenced(store, "deleteStream")
        }
        return yield* refusal
      }
      const ranges = erase ? store.erasures.of(streamId) : undefined
      if (ranges !== undefined) {
        yield* removeCheckpoint(store)
        yield* eraseInPlace(store, streamId, ranges)
      }
    })
  )).pipe(
    Effect.mapError((e) =>
      e instanceof EventStore.StoreError || e instanceof EventStore.ConcurrencyConflict ? e : store.fail("deleteStream", e)
    )
  )

/**
 * Moves the tombstones known only from `tombstones.jsonl` (stores written
 * before tombstones went into the log) into the log, under the lock and
 * fenced like a deletion: from then on, the file going missing brings no
 * stream back. A move that does not land where planned is void; the file
 * still counts, and the next writer to open the store tries again.
 */
export const moveLegacyTombstones = (store: LogStore) =>
  store.legacy.size === 0 || store.readOnly ? Effect.void : Effect.zipRight(awaitVerified(store), withLock(
    store,
    store.indexing.withPermits(1)(Effect.gen(function*() {
      yield* scanTail(store, true)
      if (store.legacy.size === 0) return
      const deletedAt = new Date(yield* Clock.currentTimeMillis).toISOString()
      const planned = store.index.size
      let at = planned
      const records = [...store.legacy].map(([streamId, version]) => {
        const line = encodeLogTombstone({ streamId, version, deletedAt, erase: false, position: store.index.head, at, erased: [] })
        at += Buffer.byteLength(line)
        return line
      })
      const record = Buffer.from(records.join(""))
      yield* store.log.writeAll(record)
      if (store.durable) yield* store.log.sync
      const landed = yield* readBytes(store.log, planned, record.length)
      yield* scanTail(store, false)
      if (!landed.equals(record)) yield* Effect.logWarning(`chronicle: ${fenced(store, "open").reason}; ${store.tombstonesPath} still counts`)
    }))
  )).pipe(Effect.mapError((e) => (e instanceof EventStore.StoreError ? e : store.fail("open", e))))
