/**
 * The erased byte ranges of the filesystem log: whatever order tombstones
 * come in, and however often a scan learns the same one, a byte reads as
 * erased exactly when some tombstone's range holds it, and each stream's
 * ranges come back sorted, merged and once.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { StreamId } from "chronicle"
import { Erasures, mergeRanges, RangeSet } from "../../src/internal/filesystem/logFormat.js"

const range = fc.tuple(fc.nat(200), fc.integer({ min: 0, max: 30 })).map(([from, length]) => [from, from + length] as const)
const streams = ["a-1", "b-2", "c-3"].map((text) => StreamId.unsafeParse(text))
const tombstone = fc.record({ stream: fc.constantFrom(...streams), ranges: fc.array(range, { maxLength: 4 }) })

const inAny = (ranges: ReadonlyArray<readonly [number, number]>, offset: number) => ranges.some(([from, to]) => from <= offset && offset < to)

/** Sorted, disjoint, never touching, never empty. */
const expectCanonical = (ranges: ReadonlyArray<readonly [number, number]>) => {
  for (const [from, to] of ranges) expect(from).toBeLessThan(to)
  for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]).toBeGreaterThan(ranges[i - 1]![1])
}

describe("RangeSet", () => {
  it("given ranges added in any order, then a byte is covered exactly when one of them holds it, and the set is canonical", () => {
    fc.assert(fc.property(fc.array(range, { maxLength: 30 }), (ranges) => {
      const set = new RangeSet()
      for (const [from, to] of ranges) set.add(from, to)
      for (let offset = -1; offset <= 235; offset++) expect(set.covers(offset), `byte ${offset}`).toBe(inAny(ranges, offset))
      expectCanonical(set.toArray())
      expect(mergeRanges(ranges)).toEqual(set.toArray())
    }))
  })

  it("given a range touching two others, when added, then all three become one", () => {
    const set = new RangeSet()
    set.add(0, 10)
    set.add(20, 30)
    set.add(10, 20)
    expect(set.toArray()).toEqual([[0, 30]])
  })
})

describe("Erasures", () => {
  it("given tombstones learned in any order, some twice (overlapping scan windows), then coverage and each stream's ranges are as if each was learned once", () => {
    fc.assert(fc.property(fc.array(tombstone, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 12 }), (tombstones, repeats) => {
      const erasures = new Erasures()
      const learned = [...tombstones, ...repeats.flatMap((k) => (tombstones.length === 0 ? [] : [tombstones[k % tombstones.length]!]))]
      for (const { ranges, stream } of learned) erasures.add(stream, ranges)
      const all = tombstones.flatMap((t) => t.ranges)
      for (let offset = 0; offset <= 235; offset++) expect(erasures.covers(offset)).toBe(inAny(all, offset))
      for (const stream of streams) {
        const own = tombstones.filter((t) => t.stream === stream)
        expect(erasures.has(stream)).toBe(own.length > 0)
        if (own.length > 0) expect(erasures.of(stream)).toEqual(mergeRanges(own.flatMap((t) => t.ranges)))
      }
    }))
  })
})
