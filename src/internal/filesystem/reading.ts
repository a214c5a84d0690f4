/**
 * Reads on the filesystem store: over the log and index as they were when a
 * read began (a view), page by page, nearby lines coalesced into one read.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as EventStore from "../../EventStore.js"
import type * as Query from "../../Query.js"
import type { StreamId } from "../../StreamId.js"
import { keeps } from "../logFilter.js"
import { readInto, readRunLimit, type ReadBuffer } from "./io.js"
import type { EventPayload } from "../../Event.js"
import { typeKeyOf } from "./lineDecoding.js"
import { decodeEventAt, decodeKnownPayloadAt, type Erasures, isFiller, type LineProblem } from "./logFormat.js"
import { firstSlotAtOrAfter, type Index, matchingEntries, streamOf, streamVersionOf, typeOf } from "./logIndex.js"

const readGapLimit = 64 * 1024

/** What a read works on: the log and index as they were when it began, and how much of them it may see. */
export interface View {
  readonly count: number
  readonly size: number
  readonly index: Index
  readonly log: FileSystem.File
}

/** What reads need of the store. */
export interface ReadingStore {
  readonly logPath: string
  /** Where reads put the bytes they decode; one per store, reused. */
  readonly buffer: ReadBuffer
  /** The log's erased byte ranges. */
  readonly erasures: Erasures
  readonly fail: (operation: string, error: unknown) => EventStore.StoreError
  /** Indexes what was appended since (without the lock). */
  readonly catchUp: () => Effect.Effect<void, EventStore.StoreError>
  /** The log and index as they are now. */
  readonly now: () => View
}

/** How a read decodes a line: the whole event, or only what a fold needs. `k`: the line's place in the read's positions. */
type LineDecoder<A> = (bytes: Buffer, start: number, end: number, k: number) => A | LineProblem

/** A line that did not decode: erased since the read began, or damage. */
interface Undecoded {
  readonly at: number
  readonly problem: LineProblem
}

/**
 * Reads the lines at `positions` (0-based, in the order given), coalescing
 * nearby ones into one read, synchronously into the store's read buffer
 * and decoded before anything else can use it: a read from the page cache
 * costs less than a round trip through the thread pool.
 */
const readPositions = <A extends object>(
  store: ReadingStore,
  positions: ReadonlyArray<number>,
  limit: View,
  decode: LineDecoder<A>
): Effect.Effect<Array<A>, EventStore.StoreError> => {
  const out: Array<A> = []
  return Effect.as(
    foldPositions(store, positions, limit, decode, (line) => {
      out.push(line)
      return true
    }),
    out
  )
}

/**
 * `readPositions` handing each line to `step` as it is decoded, in order,
 * instead of collecting them (nothing outlives its step); `step` returns
 * false to stop. Returns how many lines `step` took. A damaged line fails
 * the read once the lines are read, whatever `step` took after it.
 */
const foldPositions = <A extends object>(
  store: ReadingStore,
  positions: ReadonlyArray<number>,
  limit: View,
  decode: LineDecoder<A>,
  step: (line: A) => boolean
): Effect.Effect<number, EventStore.StoreError> =>
  Effect.gen(function*() {
    const undecoded: Array<Undecoded> = []
    const count = yield* Effect.suspend(() => {
      try {
        return Effect.succeed(decodePositions(store, positions, limit, decode, step, undecoded))
      } catch (error) {
        return error instanceof StepThrew ? Effect.die(error.defect) : Effect.fail(store.fail("read", error))
      }
    })
    for (const { at, problem } of undecoded) {
      // erased since this read began (here or by another process): left out
      if (yield* erasedSince(store, at, limit)) continue
      return yield* new EventStore.StoreError({
        operation: "read",
        reason: `${store.logPath} is damaged at byte ${at} (${problem === "checksum" ? "checksum mismatch" : "not a log line"})`
      })
    }
    return count
  })

/** What a fold's `step` threw: its own defect, not the store's failure. */
class StepThrew {
  constructor(readonly defect: unknown) {}
}

const decodePositions = <A extends object>(
  store: ReadingStore,
  positions: ReadonlyArray<number>,
  limit: View,
  decode: LineDecoder<A>,
  step: (line: A) => boolean,
  undecoded: Array<Undecoded>
): number => {
  const offsets = limit.index.offsets
  const ascending = positions.length < 2 || positions[1]! >= positions[0]!
  let taken = 0
  let i = 0
  while (i < positions.length) {
    let j = i
    let low = offsets.get(positions[i]!)
    let high = endOf(positions[i]!, limit)
    while (j + 1 < positions.length) {
      const next = positions[j + 1]!
      const nextLow = offsets.get(next)
      const nextHigh = endOf(next, limit)
      const newLow = Math.min(low, nextLow)
      const newHigh = Math.max(high, nextHigh)
      const gap = ascending ? nextLow - high : low - nextHigh
      if (gap > readGapLimit || newHigh - newLow > readRunLimit) break
      low = newLow
      high = newHigh
      j++
    }
    const bytes = readInto(store.buffer, limit.log, low, high - low)
    for (let k = i; k <= j; k++) {
      const at = offsets.get(positions[k]!)
      // up to its newline: void bytes (fenced writes, sealed torn ones) may follow a line
      const end = Math.max(at - low, bytes.indexOf(0x0a, at - low))
      const line = decode(bytes, at - low, end, k)
      if (typeof line !== "string") {
        taken++
        let more: boolean
        try {
          more = step(line)
        } catch (defect) {
          throw new StepThrew(defect)
        }
        if (!more) return taken
      } else if (!isFiller(bytes.toString("utf8", at - low, end))) undecoded.push({ at, problem: line })
    }
    i = j + 1
  }
  return taken
}

/**
 * Whether the line at `at` of the view's log is erased (an overwrite cut
 * short, or in progress), by a tombstone known here or one still to read.
 * Erasures know offsets of the open log only: a view of a log replaced
 * since (an earlier version's compaction) has none.
 */
const erasedSince = (store: ReadingStore, at: number, limit: View) =>
  limit.log !== store.now().log
    ? Effect.succeed(false)
    : store.erasures.covers(at)
    ? Effect.succeed(true)
    : Effect.map(store.catchUp(), () => limit.log === store.now().log && store.erasures.covers(at))

/** Where the line at `position` ends in the view: the next line's offset, or the view's size. */
export const endOf = (position: number, limit: View) =>
  position + 1 < limit.count ? limit.index.offsets.get(position + 1) : limit.size

/** A paged read over the log as it is when the read starts: `next` picks each page's positions. */
const pageOf = <S>(
  store: ReadingStore,
  initial: S,
  next: (state: S, limit: View) => readonly [ReadonlyArray<number>, Option.Option<S>]
) =>
  Stream.unwrap(
    Effect.map(Effect.zipRight(store.catchUp(), Effect.sync(store.now)), (limit) =>
      Stream.paginateChunkEffect(initial, (state) => {
        const [positions, following] = next(state, limit)
        return Effect.map(
          positions.length === 0 ? Effect.succeed([]) : readPositions(store, positions, limit, decodeEventAt),
          (events) => [Chunk.unsafeFromArray(events), following] as const
        )
      }))
  ).pipe(Stream.mapError((e) => (e instanceof EventStore.StoreError ? e : store.fail("read", e))))

/** The store's `read`: a stream's events in a range, by its index entries. */
export const readStream = (store: ReadingStore) => (streamId: StreamId, range: EventStore.StreamRange) =>
  pageOf(store, { emitted: 0 }, ({ emitted }, limit) => {
    const stream = limit.index.streams.get(streamId)?.positions ?? []
    const top = Math.min(range.toVersion, streamVersionOf(limit.index, streamId, limit.count))
    const total = Math.max(0, Math.min(range.limit, top - range.fromVersion + 1))
    const size = Math.min(range.chunkSize, total - emitted)
    if (size <= 0) return [[], Option.none()]
    const positions = new Array<number>(size)
    for (let k = 0; k < size; k++) {
      const version = range.direction === "forwards" ? range.fromVersion + emitted + k : top - emitted - k
      positions[k] = stream[version - 1]!
    }
    const following = emitted + size < total ? Option.some({ emitted: emitted + size }) : Option.none()
    return [positions, following]
  })

/** The store's `readAll`: the log in position order (or reversed), filtered on the index (lines skipped are never read). */
export const readLog = (store: ReadingStore, hashes: Map<string, number>) => (range: EventStore.LogRange) => {
  const kept = keeps(range, hashes)
  const backwards = range.direction === "backwards"
  return pageOf(store, { next: Number.NaN, remaining: range.limit }, (state, limit) => {
    const { index } = limit
    const next = !Number.isNaN(state.next)
      ? state.next
      : backwards
      ? (range.fromPosition >= BigInt(Number.MAX_SAFE_INTEGER) ? limit.count : firstSlotAtOrAfter(index, range.fromPosition + 1n, limit.count)) - 1
      : firstSlotAtOrAfter(index, range.fromPosition, limit.count)
    const wanted = Math.min(range.chunkSize, state.remaining)
    const positions: Array<number> = []
    let slot = next
    while (positions.length < wanted && (backwards ? slot >= 0 : slot < limit.count)) {
      if (kept === undefined || kept(streamOf(index, slot), typeOf(index, slot))) positions.push(slot)
      slot += backwards ? -1 : 1
    }
    const remaining = state.remaining - positions.length
    const more = backwards ? slot >= 0 : slot < limit.count
    const following = positions.length === wanted && remaining > 0 && more ? Option.some({ next: slot, remaining }) : Option.none()
    return [positions, following]
  })
}

/**
 * The store's `readLogPage`: one forwards page of the log, filtered on the
 * index, and the position of the last entry the page looked at.
 */
export const readLogPage = (store: ReadingStore, hashes: Map<string, number>) => (range: EventStore.LogRange) =>
  Effect.gen(function*() {
    yield* store.catchUp()
    const limit = store.now()
    const { index } = limit
    const kept = keeps(range, hashes)
    const slots: Array<number> = []
    let slot = firstSlotAtOrAfter(index, range.fromPosition, limit.count)
    while (slots.length < range.limit && slot < limit.count) {
      if (kept === undefined || kept(streamOf(index, slot), typeOf(index, slot))) slots.push(slot)
      slot++
    }
    const events = slots.length === 0 ? [] : yield* readPositions(store, slots, limit, decodeEventAt)
    const looked = slot === 0 ? 0n : BigInt(index.positionOf.get(slot - 1))
    return { events, through: looked < range.fromPosition - 1n ? range.fromPosition - 1n : looked } satisfies EventStore.LogPage
  }).pipe(Effect.mapError((e) => (e instanceof EventStore.StoreError ? e : store.fail("read", e))))

/** The store's `query`: the entries matching a DCB query, found in the index (payloads are not parsed). */
export const readQuery = (store: ReadingStore) => (query: Query.Query, range: EventStore.QueryRange) =>
  pageOf(store, { next: -1, remaining: range.limit }, (state, limit) => {
    const from = state.next === -1 ? firstSlotAtOrAfter(limit.index, range.after + 1n, limit.count) : state.next
    const wanted = Math.min(range.chunkSize, state.remaining)
    const positions = matchingEntries(limit.index, query, from, limit.count, wanted)
    const slot = wanted > 0 && positions.length === wanted ? positions.at(-1)! + 1 : limit.count
    const remaining = state.remaining - positions.length
    const following = positions.length === wanted && remaining > 0 && slot < limit.count
      ? Option.some({ next: slot, remaining })
      : Option.none()
    return [positions, following]
  })


/**
 * The lines of one page of a stream's payloads in the view, and their
 * decoder: stream, version and type come from the index, only the schema
 * version and data from the line.
 */
const payloadPage = (limit: View, streamId: StreamId, page: EventStore.Page) => {
  const slots = limit.index.streams.get(streamId)?.positions ?? []
  const from = Math.max(1, page.fromVersion)
  const to = Math.min(page.toVersion, streamVersionOf(limit.index, streamId, limit.count), from + page.limit - 1)
  const positions = from > to ? [] : slots.slice(from - 1, to)
  const decode: LineDecoder<EventPayload> = (bytes, start, end, k) => {
    const type = typeOf(limit.index, positions[k]!)
    return decodeKnownPayloadAt(bytes, start, end, streamId, from + k, typeKeyOf(type), type)
  }
  return { positions, decode }
}

/** The store's `readPage`: one page of a stream's payloads. */
export const readPayloadPage = (store: ReadingStore, limit: View, streamId: StreamId, page: EventStore.Page) => {
  const { decode, positions } = payloadPage(limit, streamId, page)
  return positions.length === 0 ? Effect.succeed([]) : readPositions(store, positions, limit, decode)
}

/** The store's `foldPage`: one page of a stream's payloads, each handed to `step` as it is decoded. */
export const foldPayloadPage = (
  store: ReadingStore,
  limit: View,
  streamId: StreamId,
  page: EventStore.Page,
  step: (payload: EventPayload) => boolean
) => {
  const { decode, positions } = payloadPage(limit, streamId, page)
  return positions.length === 0 ? Effect.succeed(0) : foldPositions(store, positions, limit, decode, step)
}
