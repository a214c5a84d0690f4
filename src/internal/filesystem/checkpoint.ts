/**
 * The filesystem store's index checkpoint (`index.chk`): the in-memory index
 * of the log up to a covered size, with the deletions, erasures and void
 * stretches known there, so an open loads it and scans only the log's tail.
 *
 * Layout (little-endian): the magic `chronidx`, a format version (u32), the
 * length of a JSON header (u32), the header, padding to 8 bytes, then the
 * columns: offsets and global positions (f64 each), stream, type and tag-set
 * references (u32 each, into the header's tables), one CRC32 per 1 MiB block
 * of the covered log (u32), the event ids (36 latin1 bytes each), and last a
 * CRC32 of everything before it.
 *
 * A checkpoint is trusted only as far as it checks out: its own checksum,
 * its version, a log at least as long as it covers, and the log's last bytes
 * before the covered size (CRC in the header). The covered log is verified
 * against the block CRCs in the background (`verify`); a block that differs
 * (an erasure overwrote it, or damage) sends verification to today's full
 * scan, which tells the two apart.
 */
import * as NodeFs from "node:fs"
import { crc32 } from "node:zlib"
import type { StreamId } from "../../StreamId.js"
import { addTags } from "../tagIndex.js"
import type { Erasures, VoidSpan } from "./logFormat.js"
import { emptyIndex, type Index } from "./logIndex.js"

const magic = Buffer.from("chronidx", "latin1")
/** The checkpoint format this code reads and writes. */
export const formatVersion = 1
/** Bytes of log per block CRC. */
export const blockSize = 1024 * 1024
const tailCheck = 4096
const idLength = 36

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
}

/** What a checkpoint holds besides the index. */
export interface Covered {
  readonly index: Index
  readonly deleted: ReadonlyArray<readonly [StreamId, number]>
  readonly erasures: ReadonlyArray<readonly [StreamId, ReadonlyArray<readonly [number, number]>]>
  readonly voids: ReadonlyArray<VoidSpan>
  readonly blocks: Uint32Array
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

const interner = <A>(key: (a: A) => string) => {
  const refs = new Map<string, number>()
  const values: Array<A> = []
  return {
    values,
    ref: (value: A) => {
      const k = key(value)
      let ref = refs.get(k)
      if (ref === undefined) {
        ref = values.length
        refs.set(k, ref)
        values.push(value)
      }
      return ref
    }
  }
}

/** The CRC32 of the 1 MiB block `block` of `[0, size)` of the log at `fd`. */
export const blockCrc = (fd: number, size: number, block: number, buffer = Buffer.allocUnsafe(blockSize)): number => {
  const length = Math.min(blockSize, size - block * blockSize)
  let filled = 0
  while (filled < length) {
    const read = NodeFs.readSync(fd, buffer, filled, length - filled, block * blockSize + filled)
    if (read === 0) throw new Error(`the log ended at byte ${block * blockSize + filled}, before ${size}`)
    filled += read
  }
  return crc32(buffer.subarray(0, length))
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

/** Encodes a checkpoint of `snapshot`, with the log's block CRCs. */
export const encode = (snapshot: Snapshot, fd: number, blocks: ReadonlyArray<number>): Buffer => {
  const { count, index } = snapshot
  const streams = interner<string>((s) => s)
  const types = interner<string>((s) => s)
  const tagSets = interner<ReadonlyArray<string>>((tags) => tags.length === 0 ? "" : JSON.stringify(tags))
  tagSets.ref([])
  const streamRefs = new Uint32Array(count)
  const typeRefs = new Uint32Array(count)
  const tagRefs = new Uint32Array(count)
  const ids = Buffer.alloc(count * idLength)
  for (let slot = 0; slot < count; slot++) {
    streamRefs[slot] = streams.ref(index.streamOf[slot]!)
    typeRefs[slot] = types.ref(index.typeOf[slot]!)
    tagRefs[slot] = tagSets.ref(index.tagsOf[slot]!)
    ids.write(index.idOf[slot]!, slot * idLength, idLength, "latin1")
  }
  const header: Header = {
    size: snapshot.size,
    count,
    head: snapshot.head,
    tailCrc: tailCrcOf(fd, snapshot.size),
    streams: streams.values,
    types: types.values,
    tagSets: tagSets.values,
    deleted: snapshot.deleted,
    erasures: snapshot.erasures,
    voids: snapshot.voids
  }
  const json = Buffer.from(JSON.stringify(header))
  const columns = align(16 + json.length)
  const total = columns + count * (8 + 8 + 4 + 4 + 4) + blocks.length * 4 + ids.length + 4
  const out = Buffer.alloc(total)
  magic.copy(out, 0)
  out.writeUInt32LE(formatVersion, 8)
  out.writeUInt32LE(json.length, 12)
  json.copy(out, 16)
  let at = columns
  const f64 = new Float64Array(out.buffer, out.byteOffset + at, count * 2)
  for (let slot = 0; slot < count; slot++) {
    f64[slot] = index.offsets[slot]!
    f64[count + slot] = index.positionOf[slot]!
  }
  at += count * 16
  for (const column of [streamRefs, typeRefs, tagRefs, Uint32Array.from(blocks)]) {
    Buffer.from(column.buffer, column.byteOffset, column.byteLength).copy(out, at)
    at += column.byteLength
  }
  ids.copy(out, at)
  at += ids.length
  out.writeUInt32LE(crc32(out.subarray(0, at)), at)
  return out
}

/**
 * Decodes a checkpoint and checks it against the log at `fd` (of `logSize`
 * bytes): undefined when it does not check out (then the log is scanned in
 * full).
 */
export const decode = (bytes: Buffer, fd: number, logSize: number): Covered | undefined => {
  if (bytes.length < 20 || !bytes.subarray(0, 8).equals(magic) || bytes.readUInt32LE(8) !== formatVersion) return undefined
  const end = bytes.length - 4
  if (crc32(bytes.subarray(0, end)) !== bytes.readUInt32LE(end)) return undefined
  const jsonLength = bytes.readUInt32LE(12)
  let header: Header
  try {
    header = JSON.parse(bytes.toString("utf8", 16, 16 + jsonLength)) as Header
  } catch {
    return undefined
  }
  const { count, size } = header
  if (!(size <= logSize) || tailCrcOf(fd, size) !== header.tailCrc) return undefined
  const blockCount = blocksOf(size)
  let at = align(16 + jsonLength)
  if (at + count * 28 + blockCount * 4 + count * idLength !== end) return undefined
  // copied out: the columns' offsets in `bytes` need not be aligned for the typed arrays
  const column = <A>(make: (buffer: ArrayBuffer) => A, length: number): A => {
    const copy = new ArrayBuffer(length)
    bytes.copy(new Uint8Array(copy), 0, at, at + length)
    at += length
    return make(copy)
  }
  const f64 = column((b) => new Float64Array(b), count * 16)
  const streamRefs = column((b) => new Uint32Array(b), count * 4)
  const typeRefs = column((b) => new Uint32Array(b), count * 4)
  const tagRefs = column((b) => new Uint32Array(b), count * 4)
  const blocks = column((b) => new Uint32Array(b), blockCount * 4)
  const ids = bytes.toString("latin1", at, at + count * idLength)

  const streams = header.streams.map((id) => ({ id: id as StreamId, positions: [] as Array<number> }))
  const index: Index = {
    ...emptyIndex(),
    offsets: new Array<number>(count),
    positionOf: new Array<number>(count),
    streamOf: new Array<StreamId>(count),
    versionOf: new Array<number>(count),
    idOf: new Array<string>(count),
    typeOf: new Array<string>(count),
    tagsOf: new Array<ReadonlyArray<string>>(count),
    // filled when a writer first needs them (`fillIds`): only writes look ids up
    idsPending: true
  }
  for (const type of header.types) index.types.set(type, type)
  for (let slot = 0; slot < count; slot++) {
    const stream = streams[streamRefs[slot]!]
    const type = header.types[typeRefs[slot]!]
    const tags = header.tagSets[tagRefs[slot]!]
    if (stream === undefined || type === undefined || tags === undefined) return undefined
    if (stream.positions.length === 0) index.streams.set(stream.id, stream)
    stream.positions.push(slot)
    index.offsets[slot] = f64[slot]!
    index.positionOf[slot] = f64[count + slot]!
    index.streamOf[slot] = stream.id
    index.versionOf[slot] = stream.positions.length
    index.idOf[slot] = ids.slice(slot * idLength, (slot + 1) * idLength)
    index.typeOf[slot] = type
    index.tagsOf[slot] = tags
    if (tags.length > 0) addTags(index.tagged, slot, tags)
  }
  index.count = count
  index.size = size
  index.head = header.head
  return {
    index,
    deleted: header.deleted as Covered["deleted"],
    erasures: header.erasures as Covered["erasures"],
    voids: header.voids,
    blocks
  }
}
