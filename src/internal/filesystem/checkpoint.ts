/**
 * The filesystem store's index checkpoint (`index.chk`): the in-memory index
 * of the log up to a covered size, with the deletions, erasures and void
 * stretches known there, so an open loads it and scans only the log's tail.
 *
 * Layout (little-endian): the magic `chronidx`, a format version (u32), the
 * length of a JSON header (u32), the byte offset `front` of the front
 * part's CRC (f64), the header, padding to 8 bytes, then the columns, each
 * 8-byte aligned: offsets (u32 when the covered log is below 4 GiB, else
 * f64; the header says which), the runs of consecutive global positions
 * (each run's first position, f64, then the slot it starts at, u32), stream,
 * type and tag-set references (each 1, 2 or 4 bytes, the fewest that number
 * its table in the header; no tag-set column when no entry has tags), each
 * stream's slots in order (u32, stream after stream) and where each stream's
 * slots start (u32, one more than the streams), one CRC32 per 1 MiB block of
 * the covered log (u32); at `front` the CRC32 of everything before it; then
 * the event ids (36 latin1 bytes each) and their CRC32.
 *
 * An open reads the front part only and uses every column in place, as
 * typed-array views of the bytes read (positions stay runs: nothing is
 * expanded, no object per entry). It is trusted only as far as it checks
 * out: its checksum, its version, a log at least as long as it covers, and
 * the log's last bytes before the covered size (CRC in the header). The
 * event ids are read when first needed (the background verification reads
 * them before any write): ids that do not check out are read from the log's
 * lines instead. The covered log is verified against the block CRCs in the
 * background (`verify`); a block that differs (an erasure overwrote it, or
 * damage) sends verification to today's full scan, which tells the two
 * apart.
 */
import * as NodeFs from "node:fs"
import { crc32 } from "node:zlib"
import type { StreamId } from "../../StreamId.js"
import { addTags } from "../tagIndex.js"
import type { Erasures, VoidSpan } from "./logFormat.js"
import { indexLineAt } from "./logFormat.js"
import {
  EventIds,
  f64Column,
  idLength,
  type Index,
  type Numbers,
  PositionRuns,
  StreamEntry,
  tagSetKey,
  u32Column
} from "./logIndex.js"

const magic = Buffer.from("chronidx", "latin1")
/**
 * The checkpoint format this code reads and writes (1: every column read and
 * built into arrays at open; 2: 8-byte offsets and 4-byte references used in
 * place, positions expanded from their runs). Older ones are ignored (a full
 * scan) and written again in this format by the next writer.
 */
export const formatVersion = 3
/** Bytes of log per block CRC. */
export const blockSize = 1024 * 1024
const tailCheck = 4096
const prefix = 24

interface Header {
  readonly size: number
  readonly count: number
  readonly head: number
  readonly tailCrc: number
  readonly streams: ReadonlyArray<string>
  readonly types: ReadonlyArray<string>
  readonly tagSets: ReadonlyArray<ReadonlyArray<string>>
  readonly deleted: ReadonlyArray<readonly [string, number]>
  readonly erasures: ReadonlyArray<readonly [string, ReadonlyArray<readonly [number, number]>]>
  readonly voids: ReadonlyArray<VoidSpan>
  /** Runs of consecutive global positions (one per gap left by a tombstone or an erasure). */
  readonly runs: number
  /** Whether any entry has tags (else the tag-set column is left out: all empty). */
  readonly tagged: boolean
  /** Bytes per offset: 4 when the covered log is below 4 GiB, else 8 (a float64). */
  readonly offsetWidth: 4 | 8
  /** Bytes per stream, type and tag-set reference: the fewest (1, 2 or 4) that number the table. */
  readonly widths: readonly [Width, Width, Width]
}

type Width = 1 | 2 | 4

/** The fewest bytes (1, 2 or 4) that number `size` table entries. */
export const widthFor = (size: number): Width => size <= 0x100 ? 1 : size <= 0x10000 ? 2 : 4

/** `values` copied into an array of `width`-byte unsigned integers (8: float64). */
const narrowed = (values: Numbers, width: Width | 8): Numbers => {
  const out = width === 1
    ? new Uint8Array(values.length)
    : width === 2
    ? new Uint16Array(values.length)
    : width === 4
    ? new Uint32Array(values.length)
    : new Float64Array(values.length)
  out.set(values)
  return out
}

/** A view of `length` `width`-byte numbers at `offset` of `buffer` (8: float64). */
const view = (buffer: ArrayBuffer, offset: number, length: number, width: Width | 8): Numbers =>
  width === 1
    ? new Uint8Array(buffer, offset, length)
    : width === 2
    ? new Uint16Array(buffer, offset, length)
    : width === 4
    ? new Uint32Array(buffer, offset, length)
    : new Float64Array(buffer, offset, length)

const isWidth = (width: unknown): width is Width => width === 1 || width === 2 || width === 4

/** What a checkpoint holds besides the index. */
export interface Covered {
  readonly index: Index
  readonly deleted: ReadonlyArray<readonly [StreamId, number]>
  readonly erasures: ReadonlyArray<readonly [StreamId, ReadonlyArray<readonly [number, number]>]>
  readonly voids: ReadonlyArray<VoidSpan>
  readonly blocks: Uint32Array
  /** Reads the index's event ids, a block at a time: the index reads them at once, should a lookup come first. */
  readonly ids: Generator<void, Buffer>
}

/** The store state a checkpoint is taken of, copied in one go (nothing changes it meanwhile). */
export interface Snapshot {
  readonly index: Index
  readonly count: number
  readonly size: number
  readonly head: number
  readonly deleted: ReadonlyArray<readonly [StreamId, number]>
  readonly erasures: ReadonlyArray<readonly [StreamId, ReadonlyArray<readonly [number, number]>]>
  readonly voids: ReadonlyArray<VoidSpan>
}

/** Copies what a checkpoint needs of the store now. */
export const snapshotOf = (
  index: Index,
  deleted: ReadonlyMap<StreamId, number>,
  erasures: Erasures,
  voids: ReadonlyMap<number, VoidSpan>
): Snapshot => ({
  index,
  count: index.count,
  size: index.size,
  head: index.head,
  deleted: [...deleted],
  erasures: erasures.entries(),
  voids: [...voids.values()]
})

/** The CRC32 of the 1 MiB block `block` of `[0, size)` of the log at `fd`. */
export const blockCrc = (fd: number, size: number, block: number, buffer = Buffer.allocUnsafe(blockSize)): number => {
  const length = Math.min(blockSize, size - block * blockSize)
  readFully(fd, buffer, length, block * blockSize)
  return crc32(buffer.subarray(0, length))
}

const readFully = (fd: number, buffer: Buffer, length: number, position: number) => {
  let filled = 0
  while (filled < length) {
    const read = NodeFs.readSync(fd, buffer, filled, length - filled, position + filled)
    if (read === 0) throw new Error(`the file ended at byte ${position + filled}, before ${position + length}`)
    filled += read
  }
}

/** How many 1 MiB blocks `[0, size)` spans. */
export const blocksOf = (size: number) => Math.ceil(size / blockSize)

/** How many of `known` block CRCs (taken of a shorter log) still hold for a log of `size` bytes: the whole blocks. */
export const reusableBlocks = (known: ReadonlyArray<number>, size: number) => Math.min(known.length, Math.floor(size / blockSize))

/** The CRC32 of the log's last bytes before `size`. */
const tailCrcOf = (fd: number, size: number): number => {
  const length = Math.min(tailCheck, size)
  const buffer = Buffer.alloc(length)
  const read = NodeFs.readSync(fd, buffer, 0, length, size - length)
  return read === length ? crc32(buffer) : -1
}

const align = (n: number) => (n + 7) & ~7

/** The slots of each stream, stream after stream, and where each stream's run starts. */
const postingsOf = (streamRefs: Uint32Array, streams: number) => {
  const starts = new Uint32Array(streams + 1)
  for (let slot = 0; slot < streamRefs.length; slot++) starts[streamRefs[slot]! + 1]!++
  for (let s = 0; s < streams; s++) starts[s + 1]! += starts[s]!
  const next = starts.slice(0, streams)
  const postings = new Uint32Array(streamRefs.length)
  for (let slot = 0; slot < streamRefs.length; slot++) postings[next[streamRefs[slot]!]!++] = slot
  return { postings, starts }
}

/** Encodes a checkpoint of `snapshot`, with the log's block CRCs. */
export const encode = (snapshot: Snapshot, fd: number, blocks: ReadonlyArray<number>): Buffer => {
  const { count, index } = snapshot
  // the referenced tables, renumbered to those in use below `count` (streams emptied by a rollback stay out)
  const streamMap = new Map<number, number>()
  const streams: Array<string> = []
  const streamRefs = new Uint32Array(count)
  for (let slot = 0; slot < count; slot++) {
    const ref = index.streamRefs.get(slot)
    let own = streamMap.get(ref)
    if (own === undefined) {
      own = streams.length
      streamMap.set(ref, own)
      streams.push(index.streamTable[ref]!.id)
    }
    streamRefs[slot] = own
  }
  const { postings, starts } = postingsOf(streamRefs, streams.length)
  const runs = index.positionOf.runsBelow(count)
  const tagRefs = index.tagRefs.values().subarray(0, count)
  const tagged = tagRefs.some((ref) => ref !== 0)
  const offsetWidth = snapshot.size < 2 ** 32 ? 4 : 8
  const widths = [widthFor(streams.length), widthFor(index.typeNames.length), widthFor(index.tagSets.length)] as const
  const header: Header = {
    size: snapshot.size,
    count,
    head: snapshot.head,
    tailCrc: tailCrcOf(fd, snapshot.size),
    streams,
    types: index.typeNames,
    tagSets: index.tagSets,
    deleted: snapshot.deleted,
    erasures: snapshot.erasures,
    voids: snapshot.voids,
    runs: runs.starts.length,
    tagged,
    offsetWidth,
    widths
  }
  const json = Buffer.from(JSON.stringify(header))
  const columns: ReadonlyArray<Numbers> = [
    narrowed(index.offsets.values().subarray(0, count), offsetWidth),
    narrowed(runs.firsts, 8),
    narrowed(runs.starts, 4),
    narrowed(streamRefs, widths[0]),
    narrowed(index.typeRefs.values().subarray(0, count), widths[1]),
    tagged ? narrowed(tagRefs, widths[2]) : new Uint8Array(0),
    postings,
    starts,
    Uint32Array.from(blocks)
  ]
  let front = align(prefix + json.length)
  for (const column of columns) front += align(column.byteLength)
  const out = Buffer.alloc(front + 4 + count * idLength + 4)
  magic.copy(out, 0)
  out.writeUInt32LE(formatVersion, 8)
  out.writeUInt32LE(json.length, 12)
  out.writeDoubleLE(front, 16)
  json.copy(out, prefix)
  let at = align(prefix + json.length)
  for (const column of columns) {
    Buffer.from(column.buffer, column.byteOffset, column.byteLength).copy(out, at)
    at += align(column.byteLength)
  }
  out.writeUInt32LE(crc32(out.subarray(0, front)), front)
  const ids = out.subarray(front + 4, front + 4 + count * idLength)
  const known = index.ids.baseBytes()
  const fromBase = known === undefined ? 0 : Math.min(count, index.ids.baseCount)
  if (known !== undefined) known.copy(ids, 0, 0, fromBase * idLength)
  for (let slot = fromBase; slot < count; slot++) ids.write(index.ids.at(slot), slot * idLength, idLength, "latin1")
  out.writeUInt32LE(crc32(ids), front + 4 + ids.length)
  return out
}

/**
 * Reads the event ids of the checkpoint's `count` entries at `at` of the
 * checkpoint file `file` a block at a time (a step each); when they do not
 * check out, from the log's lines at `offsets` instead.
 */
function* idsInSteps(file: CheckpointFile, at: number, count: number, log: number, offsets: Numbers): Generator<void, Buffer> {
  const length = count * idLength
  const bytes = Buffer.allocUnsafe(length + 4)
  let crc = 0
  let intact = true
  try {
    for (let done = 0; done < length + 4; done += blockSize) {
      const step = Math.min(blockSize, length + 4 - done)
      readFully(file.fd, bytes.subarray(done), step, at + done)
      crc = crc32(bytes.subarray(done, Math.min(done + step, length)), crc)
      yield
    }
  } catch {
    intact = false
  } finally {
    close(file)
  }
  if (intact && crc === bytes.readUInt32LE(length)) return bytes.subarray(0, length)
  return idsFromLog(log, offsets, count)
}

/** Runs `steps` to its end (undefined when it ended already). */
export const finish = <A>(steps: Generator<void, A>): A | undefined => {
  for (;;) {
    const next = steps.next()
    if (next.done === true) return next.value
  }
}

/** The event ids of the lines at `offsets` of the log at `log`. */
export const idsFromLog = (log: number, offsets: ArrayLike<number>, count: number): Buffer => {
  const ids = Buffer.alloc(count * idLength)
  let window = Buffer.allocUnsafe(4 * blockSize)
  let from = 0
  let filled = 0
  for (let slot = 0; slot < count; slot++) {
    const offset = offsets[slot]!
    let end = offset >= from && offset < from + filled ? window.indexOf(0x0a, offset - from) : -1
    if (end === -1 || end >= filled) {
      from = offset
      for (;;) {
        filled = NodeFs.readSync(log, window, 0, window.length, from)
        end = window.subarray(0, filled).indexOf(0x0a)
        if (end !== -1 || filled < window.length) break
        window = Buffer.allocUnsafe(window.length * 2)
      }
      if (end === -1) throw new Error(`no line end after byte ${offset} of the log`)
    }
    const entry = indexLineAt(window, offset - from, end)
    if (typeof entry === "string") throw new Error(`the log is damaged at byte ${offset} (${entry})`)
    ids.write(entry.eventId, slot * idLength, idLength, "latin1")
  }
  return ids
}

/** An open checkpoint file, kept open until its ids are read (a newer checkpoint may be renamed over it meanwhile). */
export interface CheckpointFile {
  readonly fd: number
  closed: boolean
}

/** Closes `file`, if not done yet. */
export const close = (file: CheckpointFile) => {
  if (file.closed) return
  file.closed = true
  NodeFs.closeSync(file.fd)
}

/**
 * Reads a checkpoint's front part from `file` and checks it against the log
 * at `log` (of `logSize` bytes): undefined when it does not check out (then
 * the log is scanned in full). `file` stays open while the ids are still to
 * be read, and is closed otherwise.
 */
export const load = (file: CheckpointFile, log: number, logSize: number): Covered | undefined => {
  let keep = false
  try {
    const covered = decode(file, log, logSize)
    keep = covered !== undefined && covered.index.count > 0
    return covered
  } finally {
    if (!keep) close(file)
  }
}

const decode = (file: CheckpointFile, log: number, logSize: number): Covered | undefined => {
  const fileSize = NodeFs.fstatSync(file.fd).size
  if (fileSize < prefix + 8) return undefined
  const start = Buffer.alloc(prefix)
  readFully(file.fd, start, prefix, 0)
  if (!start.subarray(0, 8).equals(magic) || start.readUInt32LE(8) !== formatVersion) return undefined
  const jsonLength = start.readUInt32LE(12)
  const front = start.readDoubleLE(16)
  if (!Number.isSafeInteger(front) || front < prefix + jsonLength || front + 8 > fileSize) return undefined
  // its own allocation: the columns are used in place, aligned
  const bytes = Buffer.from(new ArrayBuffer(front + 4))
  readFully(file.fd, bytes, front + 4, 0)
  if (crc32(bytes.subarray(0, front)) !== bytes.readUInt32LE(front)) return undefined
  let header: Header
  try {
    header = JSON.parse(bytes.toString("utf8", prefix, prefix + jsonLength)) as Header
  } catch {
    return undefined
  }
  const { count, size } = header
  const streamCount = header.streams.length
  const blockCount = blocksOf(size)
  if (front + 4 + count * idLength + 4 !== fileSize) return undefined
  if (!(size <= logSize) || tailCrcOf(log, size) !== header.tailCrc) return undefined
  const { offsetWidth, widths } = header
  if (!(offsetWidth === 4 || offsetWidth === 8) || !Array.isArray(widths) || !widths.every(isWidth)) return undefined
  let at = align(prefix + jsonLength)
  const column = (length: number, width: Width | 8): Numbers => {
    const numbers = view(bytes.buffer, at, length, width)
    at += align(length * width)
    return numbers
  }
  const offsets = column(count, offsetWidth)
  const runFirsts = column(header.runs, 8)
  const runStarts = column(header.runs, 4)
  const streamRefs = column(count, widths[0])
  const typeRefs = column(count, widths[1])
  const tagRefs = header.tagged ? column(count, widths[2]) : new Uint8Array(count)
  const postings = column(count, 4) as Uint32Array
  const starts = column(streamCount + 1, 4)
  const blocks = column(blockCount, 4) as Uint32Array
  if (at !== front || starts[streamCount] !== count) return undefined
  if ((count > 0) !== (header.runs > 0) || (count > 0 && runStarts[0] !== 0)) return undefined
  for (let run = 1; run < header.runs; run++) {
    const length = runStarts[run]! - runStarts[run - 1]!
    // runs start in order, below `count`, and their positions increase across each gap
    if (!(length > 0 && runStarts[run]! < count && runFirsts[run]! > runFirsts[run - 1]! + length)) return undefined
  }
  const ids = idsInSteps(file, front + 4, count, log, offsets)

  const streams = new Map<StreamId, StreamEntry>()
  const streamTable: Array<StreamEntry> = []
  for (let ref = 0; ref < streamCount; ref++) {
    const id = header.streams[ref] as StreamId
    const entry = new StreamEntry(id, ref, postings.subarray(starts[ref]!, starts[ref + 1]!))
    streamTable.push(entry)
    streams.set(id, entry)
  }
  const typeRef = new Map<string, number>()
  header.types.forEach((type, ref) => typeRef.set(type, ref))
  const tagSetRef = new Map<string, number>()
  header.tagSets.forEach((tags, ref) => tagSetRef.set(tagSetKey(tags), ref))
  if (tagSetKey(header.tagSets[0] ?? ["-"]) !== "") return undefined
  const tagged = new Map<string, Array<number>>()
  if (header.tagSets.length > 1) {
    for (let slot = 0; slot < count; slot++) {
      const tags = tagRefs[slot]!
      if (tags !== 0) addTags(tagged, slot, header.tagSets[tags] ?? [])
    }
  }
  const index: Index = {
    size,
    count,
    head: header.head,
    offsets: f64Column(offsets, count),
    positionOf: new PositionRuns(u32Column(runStarts, header.runs), f64Column(runFirsts, header.runs), count),
    streamRefs: u32Column(streamRefs, count),
    typeRefs: u32Column(typeRefs, count),
    tagRefs: u32Column(tagRefs, count),
    streamTable,
    typeNames: [...header.types],
    typeRef,
    tagSets: [...header.tagSets],
    tagSetRef,
    tagged,
    streams,
    ids: new EventIds(count, () => finish(ids))
  }
  return {
    index,
    deleted: header.deleted as Covered["deleted"],
    erasures: header.erasures as Covered["erasures"],
    voids: header.voids,
    blocks,
    ids
  }
}

