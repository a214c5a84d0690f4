/**
 * The filesystem event store's in-memory index of its log: offsets, positions,
 * streams, event ids, types and tags of every entry, kept current as the log
 * grows, rolled back when a write fails, rebuilt without erased streams.
 */
import * as Query from "../../Query.js"
import type { StreamId } from "../../StreamId.js"
import type { TagIndex } from "../tagIndex.js"
import { addTags, matchingSlots, removeTags } from "../tagIndex.js"

/**
 * The in-memory index of the log. Entries at and past `count` are tentative
 * (being written); readers only look below `count`.
 */
export interface Index {
  /** Bytes of the log covered by committed entries. */
  size: number
  /** Committed events. */
  count: number
  /** The highest global position committed to the log, erased events' included: the next append takes the one after. */
  head: number
  readonly offsets: Array<number>
  /** The global position of each entry: increasing, with gaps where events were erased. */
  readonly positionOf: Array<number>
  readonly streamOf: Array<StreamId>
  readonly versionOf: Array<number>
  readonly idOf: Array<string>
  /** Each entry's type (one string per distinct type) and tags, for queries. */
  readonly typeOf: Array<string>
  readonly tagsOf: Array<ReadonlyArray<string>>
  readonly types: Map<string, string>
  readonly tagged: TagIndex
  /** Per stream: its id (one string shared by all its entries) and its events' positions. */
  readonly streams: Map<StreamId, { readonly id: StreamId; readonly positions: Array<number> }>
  /** Event id → slot; incomplete while `idsPending` (loaded from a checkpoint): `fillIds` completes it. */
  readonly ids: Map<string, number>
  idsPending: boolean
}

export const emptyIndex = (): Index => ({
  size: 0,
  count: 0,
  head: 0,
  offsets: [],
  positionOf: [],
  streamOf: [],
  versionOf: [],
  idOf: [],
  typeOf: [],
  tagsOf: [],
  types: new Map(),
  tagged: new Map(),
  streams: new Map(),
  ids: new Map(),
  idsPending: false
})

/** Completes `ids` of an index loaded from a checkpoint (entries added since are there already: same slots). */
export const fillIds = (index: Index) => {
  if (!index.idsPending) return
  for (let slot = 0; slot < index.idOf.length; slot++) index.ids.set(index.idOf[slot]!, slot)
  index.idsPending = false
}

export const addEntry = (
  index: Index,
  streamId: StreamId,
  eventId: string,
  offset: number,
  globalPosition: number,
  type: string,
  tags: ReadonlyArray<string>
) => {
  const position = index.offsets.length
  let stream = index.streams.get(streamId)
  if (stream === undefined) {
    stream = { id: streamId, positions: [] }
    index.streams.set(streamId, stream)
  }
  stream.positions.push(position)
  index.offsets.push(offset)
  index.positionOf.push(globalPosition)
  index.streamOf.push(stream.id)
  index.versionOf.push(stream.positions.length)
  index.idOf.push(eventId)
  index.ids.set(eventId, position)
  let interned = index.types.get(type)
  if (interned === undefined) {
    interned = type
    index.types.set(type, type)
  }
  index.typeOf.push(interned)
  index.tagsOf.push(tags)
  addTags(index.tagged, position, tags)
}

/** The slots from `from` (up to `end`) whose events match `query`, ascending, at most `limit`. */
export const matchingEntries = (index: Index, query: Query.Query, from: number, end: number, limit: number): Array<number> =>
  matchingSlots(index.tagged, query, from, end, limit, (slot) =>
    Query.matches(query, { type: index.typeOf[slot]!, tags: index.tagsOf[slot]! }))

/** Drops tentative entries back to `count` (a write failed). */
export const rollback = (index: Index, count: number) => {
  while (index.offsets.length > count) {
    const position = index.offsets.length - 1
    const streamId = index.streamOf[position]!
    const stream = index.streams.get(streamId)!
    stream.positions.pop()
    if (stream.positions.length === 0) index.streams.delete(streamId)
    index.ids.delete(index.idOf[position]!)
    index.offsets.pop()
    index.positionOf.pop()
    index.streamOf.pop()
    index.versionOf.pop()
    index.idOf.pop()
    removeTags(index.tagged, position, index.tagsOf[position]!)
    index.typeOf.pop()
    index.tagsOf.pop()
  }
}

/** The index without the entries of `gone` streams (erased): the others renumbered, in order. */
export const withoutStreams = (index: Index, gone: ReadonlySet<StreamId>): Index => {
  const kept = emptyIndex()
  for (let slot = 0; slot < index.count; slot++) {
    const streamId = index.streamOf[slot]!
    if (gone.has(streamId)) continue
    addEntry(kept, streamId, index.idOf[slot]!, index.offsets[slot]!, index.positionOf[slot]!, index.typeOf[slot]!, index.tagsOf[slot]!)
  }
  kept.count = kept.offsets.length
  kept.size = index.size
  kept.head = index.head
  return kept
}

/** The first slot whose global position is at or after `position` (binary search; positions increase). */
export const firstSlotAtOrAfter = (index: Index, position: bigint, count: number): number => {
  let low = 0
  let high = count
  while (low < high) {
    const middle = (low + high) >>> 1
    if (BigInt(index.positionOf[middle]!) < position) low = middle + 1
    else high = middle
  }
  return low
}

export const streamVersionOf = (index: Index, streamId: StreamId, limit = index.offsets.length) => {
  const positions = index.streams.get(streamId)?.positions
  if (positions === undefined) return 0
  let version = positions.length
  while (version > 0 && positions[version - 1]! >= limit) version--
  return version
}

