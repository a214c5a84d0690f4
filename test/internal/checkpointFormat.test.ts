/**
 * The index checkpoint's format (3): an index written and read back is the
 * same index, whatever the width its references and offsets are stored in
 * (1, 2 or 4 bytes by table size; 4 or 8 bytes by log size); positions stay
 * runs of consecutive positions that read as the positions they stand for;
 * a checkpoint with any byte of its front part changed is not loaded.
 */
import { randomUUID } from "node:crypto"
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import type { StreamId } from "chronicle"
import { blocksOf, type CheckpointFile, encode, formatVersion, load, type Snapshot } from "../../src/internal/filesystem/checkpoint.js"
import {
  addEntry,
  emptyIndex,
  idOf,
  type Index,
  f64Column,
  PositionRuns,
  rollback,
  streamOf,
  tagsOf,
  typeOf,
  u32Column
} from "../../src/internal/filesystem/logIndex.js"

interface Shape {
  /** Table sizes: streams, types, non-empty tag sets. */
  readonly streams: number
  readonly types: number
  readonly tagSets: number
  /** Entries past the largest table (each table entry is used once at least). */
  readonly extra: number
  /** Whether the log's offsets start past 4 GiB. */
  readonly large: boolean
  /** Slots after which the global positions jump (erased or deleted events). */
  readonly gaps: ReadonlyArray<number>
}

/** An index of the given shape: every table entry in use, offsets 300 bytes apart, positions with the gaps. */
const indexOf = (shape: Shape) => {
  const index = emptyIndex()
  const count = Math.max(shape.streams, shape.types, shape.tagSets) + shape.extra
  const gaps = new Set(shape.gaps)
  const base = shape.large ? 2 ** 32 + 17 : 0
  let position = 0
  for (let slot = 0; slot < count; slot++) {
    position += gaps.has(slot) ? 3 : 1
    addEntry(
      index,
      `stream-${slot % shape.streams}` as StreamId.StreamId,
      randomUUID(),
      base + slot * 300,
      position,
      `Type${slot % shape.types}`,
      slot < shape.tagSets ? [`tag-${slot}`] : shape.tagSets === 0 || slot % 5 === 4 ? [] : [`tag-${slot % shape.tagSets}`]
    )
  }
  index.count = count
  index.size = base + count * 300
  index.head = position + 2
  return index
}

const withLog = <A>(size: number, use: (log: number, directory: string) => A): A => {
  const directory = mkdtempSync(join(tmpdir(), "chronicle-chkformat-"))
  const log = openSync(join(directory, "events.jsonl"), "w+")
  try {
    // sparse: a log past 4 GiB costs nothing on disk
    ftruncateSync(log, size)
    return use(log, directory)
  } finally {
    closeSync(log)
    rmSync(directory, { recursive: true, force: true })
  }
}

const snapshotOf = (index: Index): Snapshot => ({
  index,
  count: index.count,
  size: index.size,
  head: index.head,
  deleted: [["stream-0" as StreamId.StreamId, 1]],
  erasures: [["stream-gone" as StreamId.StreamId, [[10, 20]]]],
  voids: [{ from: 30, to: 40, stream: "stream-gone" }]
})

const blocksFor = (size: number) => Array.from({ length: blocksOf(size) }, (_, block) => (block * 2654435761) >>> 0)

/** Writes `bytes` as a checkpoint file and loads it against the log. */
const loadBytes = (bytes: Buffer, log: number, directory: string, size: number) => {
  const path = join(directory, "index.chk")
  const fd = openSync(path, "w+")
  try {
    for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done, done)
  } catch (error) {
    closeSync(fd)
    throw error
  }
  const file: CheckpointFile = { fd, closed: false }
  const covered = load(file, log, size)
  return { covered, file }
}

const headerOf = (bytes: Buffer) => JSON.parse(bytes.toString("utf8", 24, 24 + bytes.readUInt32LE(12))) as {
  readonly offsetWidth: number
  readonly widths: ReadonlyArray<number>
}

const expectSame = (loaded: Index, index: Index) => {
  expect([loaded.count, loaded.size, loaded.head]).toEqual([index.count, index.size, index.head])
  const entry = (of: Index, slot: number) =>
    JSON.stringify([of.offsets.get(slot), of.positionOf.get(slot), streamOf(of, slot), typeOf(of, slot), tagsOf(of, slot), idOf(of, slot)])
  let differing = -1
  for (let slot = 0; slot < index.count && differing === -1; slot++) if (entry(loaded, slot) !== entry(index, slot)) differing = slot
  expect(differing === -1 ? "none" : `slot ${differing}: ${entry(loaded, differing)} vs ${entry(index, differing)}`).toBe("none")
  const streams = (of: Index) => JSON.stringify([...of.streams].map(([streamId, entry]) => [streamId, entry.positions]))
  expect(streams(loaded) === streams(index)).toBe(true)
  const tagged = (of: Index) => JSON.stringify([...of.tagged].sort())
  expect(tagged(loaded) === tagged(index)).toBe(true)
}

const width = (size: number) => size <= 0x100 ? 1 : size <= 0x10000 ? 2 : 4

describe("index checkpoint format", () => {
  it("is format 3", () => {
    expect(formatVersion).toBe(3)
  })

  it("given indexes whose tables need 1, 2 or 4 bytes per reference and logs below or past 4 GiB, when a checkpoint is written and loaded, then it reads as the index written, in the narrowest widths (property)", () => {
    // table sizes at the edges of each width; the 4-byte ones (slow to build) less often, and once all together
    const tableSize = (small: ReadonlyArray<number>, large: ReadonlyArray<number>) =>
      fc.oneof({ arbitrary: fc.constantFrom(...small), weight: 6 }, { arbitrary: fc.constantFrom(...large), weight: 1 })
    const shape: fc.Arbitrary<Shape> = fc.record({
      streams: tableSize([1, 3, 256, 257], [65_536, 65_537]),
      types: tableSize([1, 2, 256, 257], [65_536, 65_537]),
      tagSets: tableSize([0, 4, 255, 256], [65_535, 65_536]),
      extra: fc.nat(40),
      large: fc.boolean(),
      gaps: fc.array(fc.nat(300), { maxLength: 6 })
    })
    fc.assert(
      fc.property(shape, (shape) => {
        const index = indexOf(shape)
        withLog(index.size, (log, directory) => {
          const bytes = encode(snapshotOf(index), log, blocksFor(index.size))
          const header = headerOf(bytes)
          expect(header.offsetWidth).toBe(shape.large ? 8 : 4)
          expect(header.widths).toEqual([width(shape.streams), width(shape.types), width(shape.tagSets + 1)])
          const { covered, file } = loadBytes(bytes, log, directory, index.size)
          try {
            expect(covered).toBeDefined()
            expectSame(covered!.index, index)
            expect(covered!.deleted).toEqual(snapshotOf(index).deleted)
            expect(covered!.erasures).toEqual(snapshotOf(index).erasures)
            expect(covered!.voids).toEqual(snapshotOf(index).voids)
            expect([...covered!.blocks]).toEqual(blocksFor(index.size))
            expect(covered!.index.ids.baseBytes()?.length).toBe(index.count * 36)
          } finally {
            if (!file.closed) closeSync(file.fd)
          }
        })
      }),
      { numRuns: 20, examples: [[{ streams: 65_537, types: 65_537, tagSets: 65_536, extra: 3, large: true, gaps: [0, 2, 65_000] }]] }
    )
  }, 120_000)

  it("given a loaded index, when entries are added past it (a new stream, type and tag set, a position after a gap) and rolled back, then it reads as an index built by adding them", () => {
    const shape: Shape = { streams: 3, types: 2, tagSets: 4, extra: 20, large: false, gaps: [5] }
    const index = indexOf(shape)
    withLog(index.size, (log, directory) => {
      const { covered, file } = loadBytes(encode(snapshotOf(index), log, blocksFor(index.size)), log, directory, index.size)
      try {
        const loaded = covered!.index
        for (const target of [index, loaded]) {
          // 300 tentative entries, the last 150 rolled back (a failed write)
          for (let n = 0; n < 300; n++) {
            addEntry(target, `later-${n}` as StreamId.StreamId, `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`, 2 ** 33 + n, target.head + 10 + n, `Later${n}`, [`later-${n}`])
          }
          rollback(target, target.count + 150)
          target.count = target.offsets.length
        }
        expect(loaded.count).toBe(index.count)
        expectSame(loaded, index)
      } finally {
        if (!file.closed) closeSync(file.fd)
      }
    })
  })

  it("given a checkpoint with one byte of its front part changed, when loaded, then it is not (property)", () => {
    const index = indexOf({ streams: 300, types: 3, tagSets: 5, extra: 50, large: false, gaps: [7, 100] })
    withLog(index.size, (log, directory) => {
      const bytes = encode(snapshotOf(index), log, blocksFor(index.size))
      const front = bytes.readDoubleLE(16) + 4
      fc.assert(
        fc.property(fc.nat(front - 1), fc.integer({ min: 1, max: 255 }), (at, flip) => {
          const damaged = Buffer.from(bytes)
          damaged[at]! ^= flip
          const { covered, file } = loadBytes(damaged, log, directory, index.size)
          if (!file.closed) closeSync(file.fd)
          expect(covered).toBeUndefined()
        }),
        { numRuns: 200 }
      )
    })
  })

  it("given positions with gaps, when pushed to and popped from runs (after or without a round trip through their columns), then they read as the same positions in an array (property)", () => {
    const step = fc.oneof(fc.record({ push: fc.integer({ min: 1, max: 3 }) }), fc.constant({ pop: true }))
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), fc.nat(80), (steps, split) => {
        let runs = new PositionRuns()
        const positions: Array<number> = []
        steps.forEach((s, n) => {
          if (n === split) {
            // taken over from exact-length columns, as a checkpoint's are
            const below = runs.runsBelow(positions.length)
            runs = new PositionRuns(u32Column(Uint32Array.from(below.starts), below.starts.length), f64Column(Float64Array.from(below.firsts), below.firsts.length), positions.length)
          }
          if ("push" in s) {
            const position = (positions.at(-1) ?? 0) + s.push
            positions.push(position)
            runs.push(position)
          } else {
            positions.pop()
            runs.pop()
          }
          expect(runs.length).toBe(positions.length)
          expect(Array.from({ length: runs.length }, (_, slot) => runs.get(slot))).toEqual(positions)
          expect(runs.at(-1)).toBe(positions.at(-1))
          const below = runs.runsBelow(positions.length)
          const gaps = positions.filter((p, slot) => slot === 0 || p !== positions[slot - 1]! + 1).length
          expect(below.starts.length).toBe(gaps)
        })
      })
    )
  })
})
