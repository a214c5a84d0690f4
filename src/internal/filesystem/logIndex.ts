/**
 * The filesystem event store's in-memory index of its log: offsets, positions,
 * streams, event ids, types and tags of every entry, kept current as the log
 * grows, rolled back when a write fails, rebuilt without erased streams.
 *
 * Per-entry facts are columns of typed arrays (an index loaded from a
 * checkpoint uses the checkpoint's bytes in place), strings are referenced
 * through tables, and event ids are a binary column looked up through a
 * hash table built on first use: opening a checkpoint allocates nothing per
 * entry.
 */
import * as Query from "../../Query.js"
import type { StreamId } from "../../StreamId.js"
import { firstAtLeast } from "../sorted.js"
import type { TagIndex } from "../tagIndex.js"
import { addTags, matchingSlots, removeTags } from "../tagIndex.js"

/** The typed arrays a column keeps its numbers in: references may be narrow (as a checkpoint stores them), offsets 4 or 8 bytes. */
export type Numbers = Float64Array | Uint32Array | Uint16Array | Uint8Array

/**
 * A growable column of numbers; one taken from a checkpoint is used in place
 * (in its stored width, exactly as long as its entries) until the first push
 * copies it into the column's own wide array.
 */
export class Column {
  constructor(
    private data: Numbers,
    public length: number,
    private readonly make: (capacity: number) => Float64Array | Uint32Array
  ) {}
  get(slot: number): number {
    return this.data[slot]!
  }
  /** The value at `slot`, counted from the end when negative (as `Array.prototype.at`). */
  at(slot: number): number | undefined {
    const at = slot < 0 ? this.length + slot : slot
    return at >= 0 && at < this.length ? this.data[at] : undefined
  }
  push(value: number) {
    if (this.length === this.data.length) {
      const grown = this.make(Math.max(64, Math.ceil(this.length * 1.5)))
      grown.set(this.data.subarray(0, this.length))
      this.data = grown
    }
    this.data[this.length++] = value
  }
  pop() {
    if (this.length > 0) this.length--
  }
  /** The column's values, in place (not to be kept past the next `push`). */
  values(): Numbers {
    return this.data.subarray(0, this.length)
  }
}

/** A column of numbers of any size (offsets may start as 4-byte integers). */
export const f64Column = (data: Numbers = new Float64Array(64), length = 0) =>
  new Column(data, length, (capacity) => new Float64Array(capacity))
/** A column of 32-bit references or slots (a checkpoint's may start 1 or 2 bytes wide). */
export const u32Column = (data: Numbers = new Uint32Array(64), length = 0) =>
  new Column(data, length, (capacity) => new Uint32Array(capacity))

/**
 * The global positions of the entries, as runs of consecutive positions
 * (where each starts: slot and position): one run per gap left by a
 * tombstone or an erasure, so a checkpoint's are used as stored, and a
 * position is found by binary search over the runs.
 */
export class PositionRuns {
  constructor(
    /** The slot each run starts at, increasing from 0. */
    private readonly starts: Column = u32Column(),
    /** The global position of each run's first slot. */
    private readonly firsts: Column = f64Column(),
    public length = 0
  ) {}
  /** The run holding `slot` (which is below `length`). */
  private runOf(slot: number): number {
    let high = this.starts.length - 1
    if (this.starts.get(high) <= slot) return high
    let low = 0
    while (low < high) {
      const middle = (low + high + 1) >>> 1
      if (this.starts.get(middle) <= slot) low = middle
      else high = middle - 1
    }
    return low
  }
  get(slot: number): number {
    const run = this.runOf(slot)
    return this.firsts.get(run) + slot - this.starts.get(run)
  }
  /** The position at `slot`, counted from the end when negative (as `Array.prototype.at`). */
  at(slot: number): number | undefined {
    const at = slot < 0 ? this.length + slot : slot
    return at >= 0 && at < this.length ? this.get(at) : undefined
  }
  push(position: number) {
    if (this.length === 0 || this.get(this.length - 1) + 1 !== position) {
      this.starts.push(this.length)
      this.firsts.push(position)
    }
    this.length++
  }
  pop() {
    if (this.length === 0) return
    this.length--
    if (this.starts.at(-1) === this.length) {
      this.starts.pop()
      this.firsts.pop()
    }
  }
  /** The runs covering the first `count` slots: where each starts, and its first position. */
  runsBelow(count: number): { readonly starts: Numbers; readonly firsts: Numbers } {
    const runs = count === 0 ? 0 : this.runOf(count - 1) + 1
    return { starts: this.starts.values().subarray(0, runs), firsts: this.firsts.values().subarray(0, runs) }
  }
}

/** A stream: its id (one string shared by all its entries) and its entries' slots, taken from a checkpoint's column when first asked. */
export class StreamEntry {
  private own: Array<number> | undefined
  constructor(readonly id: StreamId, readonly ref: number, private readonly loaded?: Uint32Array) {}
  get positions(): Array<number> {
    if (this.own === undefined) this.own = this.loaded === undefined ? [] : Array.from(this.loaded)
    return this.own
  }
}

/** Bytes of an event id (a UUID) in the id column. */
export const idLength = 36

/** FNV-1a over an id's 36 characters (or bytes). */
export const idHash = (id: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < idLength; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193)
  return hash >>> 0
}

const idHashAt = (bytes: Buffer, at: number): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < idLength; i++) hash = Math.imul(hash ^ bytes[at + i]!, 0x01000193)
  return hash >>> 0
}

/**
 * The event ids of the index: those of a checkpoint's entries as a binary
 * column (36 latin1 bytes each, read by `load` when first needed), looked up
 * through an open-addressing table over their hashes built on the first
 * lookup; those indexed since as strings in a map.
 */
export class EventIds {
  private base: Buffer | undefined
  private table: Uint32Array | undefined
  private readonly tail: Array<string> = []
  private readonly tailSlots = new Map<string, number>()
  /** `baseCount`: entries of a checkpoint whose ids `loader` reads. */
  constructor(readonly baseCount = 0, private readonly loader?: () => Buffer | undefined) {}
  /** Reads the checkpoint's ids, if not done yet; throws when they cannot be had. */
  load(): Buffer | undefined {
    if (this.base === undefined && this.baseCount > 0) {
      const bytes = this.loader!()
      if (bytes?.length !== this.baseCount * idLength) throw new Error(`could not read the index checkpoint's ${this.baseCount} event ids`)
      this.base = bytes
    }
    return this.base
  }
  /** Takes the checkpoint's ids read by someone else, if not read yet. */
  offer(bytes: Buffer | undefined) {
    if (this.base === undefined && bytes?.length === this.baseCount * idLength) this.base = bytes
  }
  /** The column of the checkpoint's ids, if read. */
  baseBytes(): Buffer | undefined {
    return this.base
  }
  get length(): number {
    return this.baseCount + this.tail.length
  }
  push(id: string) {
    this.tailSlots.set(id, this.length)
    this.tail.push(id)
  }
  pop() {
    const id = this.tail.pop()
    if (id !== undefined && this.tailSlots.get(id) === this.tail.length + this.baseCount) this.tailSlots.delete(id)
  }
  at(slot: number): string {
    if (slot >= this.baseCount) return this.tail[slot - this.baseCount]!
    return this.load()!.toString("latin1", slot * idLength, (slot + 1) * idLength)
  }
  /** The slot of the event `id` (the latest, should it be there twice). */
  get(id: string): number | undefined {
    const own = this.tailSlots.get(id)
    if (own !== undefined || this.baseCount === 0 || id.length !== idLength) return own
    const base = this.load()!
    const table = this.table ?? this.build(base)
    const mask = table.length - 1
    for (let bucket = idHash(id) & mask;; bucket = (bucket + 1) & mask) {
      const entry = table[bucket]!
      if (entry === 0) return undefined
      const at = (entry - 1) * idLength
      let same = true
      for (let i = 0; i < idLength && same; i++) same = base[at + i] === id.charCodeAt(i)
      if (same) return entry - 1
    }
  }
  private build(base: Buffer): Uint32Array {
    let size = 8
    while (size < this.baseCount * 2) size *= 2
    const table = new Uint32Array(size)
    const mask = size - 1
    for (let slot = 0; slot < this.baseCount; slot++) {
      let bucket = idHashAt(base, slot * idLength) & mask
      while (table[bucket] !== 0) bucket = (bucket + 1) & mask
      table[bucket] = slot + 1
    }
    this.table = table
    return table
  }
}

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
  readonly offsets: Column
  /** The global position of each entry: increasing, with gaps where events were erased. */
  readonly positionOf: PositionRuns
  /** Each entry's stream, type and tag set, as references into `streamTable`, `typeNames`, `tagSets`. */
  readonly streamRefs: Column
  readonly typeRefs: Column
  readonly tagRefs: Column
  readonly streamTable: Array<StreamEntry>
  readonly typeNames: Array<string>
  readonly typeRef: Map<string, number>
  /** Tag sets; the first is the empty one. */
  readonly tagSets: Array<ReadonlyArray<string>>
  readonly tagSetRef: Map<string, number>
  readonly tagged: TagIndex
  /** Per stream: its id and its events' slots. */
  readonly streams: Map<StreamId, StreamEntry>
  /** Event id → slot. */
  readonly ids: EventIds
}

/** The key of a tag set in `tagSetRef`. */
export const tagSetKey = (tags: ReadonlyArray<string>) => tags.length === 0 ? "" : JSON.stringify(tags)

export const emptyIndex = (): Index => ({
  size: 0,
  count: 0,
  head: 0,
  offsets: f64Column(),
  positionOf: new PositionRuns(),
  streamRefs: u32Column(),
  typeRefs: u32Column(),
  tagRefs: u32Column(),
  streamTable: [],
  typeNames: [],
  typeRef: new Map(),
  tagSets: [[]],
  tagSetRef: new Map([["", 0]]),
  tagged: new Map(),
  streams: new Map(),
  ids: new EventIds()
})

export const streamOf = (index: Index, slot: number): StreamId => index.streamTable[index.streamRefs.get(slot)]!.id
export const typeOf = (index: Index, slot: number): string => index.typeNames[index.typeRefs.get(slot)]!
export const tagsOf = (index: Index, slot: number): ReadonlyArray<string> => index.tagSets[index.tagRefs.get(slot)]!
export const idOf = (index: Index, slot: number): string => index.ids.at(slot)

/** The stream version of the entry at `slot`: its rank among its stream's slots. */
export const versionOf = (index: Index, slot: number): number =>
  firstAtLeast(index.streamTable[index.streamRefs.get(slot)]!.positions, slot) + 1

/** Reads the ids of the checkpoint's entries, if not done yet (the background verification does before any write). */
export const fillIds = (index: Index) => {
  index.ids.load()
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
    stream = new StreamEntry(streamId, index.streamTable.length)
    index.streamTable.push(stream)
    index.streams.set(streamId, stream)
  }
  stream.positions.push(position)
  index.offsets.push(offset)
  index.positionOf.push(globalPosition)
  index.streamRefs.push(stream.ref)
  index.ids.push(eventId)
  let typeRef = index.typeRef.get(type)
  if (typeRef === undefined) {
    typeRef = index.typeNames.length
    index.typeNames.push(type)
    index.typeRef.set(type, typeRef)
  }
  index.typeRefs.push(typeRef)
  let tagRef = tags.length === 0 ? 0 : index.tagSetRef.get(tagSetKey(tags))
  if (tagRef === undefined) {
    tagRef = index.tagSets.length
    index.tagSets.push(tags)
    index.tagSetRef.set(tagSetKey(tags), tagRef)
  }
  index.tagRefs.push(tagRef)
  addTags(index.tagged, position, tags)
}

/** The slots from `from` (up to `end`) whose events match `query`, ascending, at most `limit`. */
export const matchingEntries = (index: Index, query: Query.Query, from: number, end: number, limit: number): Array<number> =>
  matchingSlots(index.tagged, query, from, end, limit, (slot) =>
    Query.matches(query, { type: typeOf(index, slot), tags: tagsOf(index, slot) }))

/** Drops tentative entries back to `count` (a write failed). */
export const rollback = (index: Index, count: number) => {
  while (index.offsets.length > count) {
    const position = index.offsets.length - 1
    const stream = index.streamTable[index.streamRefs.get(position)]!
    stream.positions.pop()
    if (stream.positions.length === 0) index.streams.delete(stream.id)
    index.ids.pop()
    removeTags(index.tagged, position, tagsOf(index, position))
    index.offsets.pop()
    index.positionOf.pop()
    index.streamRefs.pop()
    index.typeRefs.pop()
    index.tagRefs.pop()
  }
}

/** The index without the entries of `gone` streams (erased): the others renumbered, in order. */
export const withoutStreams = (index: Index, gone: ReadonlySet<StreamId>): Index => {
  const kept = emptyIndex()
  for (let slot = 0; slot < index.count; slot++) {
    const streamId = streamOf(index, slot)
    if (gone.has(streamId)) continue
    addEntry(kept, streamId, idOf(index, slot), index.offsets.get(slot), index.positionOf.get(slot), typeOf(index, slot), tagsOf(index, slot))
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
    if (BigInt(index.positionOf.get(middle)) < position) low = middle + 1
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
