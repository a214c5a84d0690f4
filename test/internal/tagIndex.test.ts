/**
 * The tag index of the memory and filesystem stores: through it, a query
 * finds exactly the events a scan of the log finds, in order, looking only at
 * the events of each item's rarest tag; rolling back the latest events leaves
 * the index as if they had never been written.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { Query } from "chronicle"
import type { TagIndex } from "../../src/internal/tagIndex.js"
import { addTags, matchingSlots, removeTags } from "../../src/internal/tagIndex.js"

const types = ["A", "B", "C"] as const
const tags = ["t1", "t2", "t3", "t4"] as const

const event = fc.record({ type: fc.constantFrom(...types), tags: fc.uniqueArray(fc.constantFrom(...tags), { maxLength: 3 }) })
const log = fc.array(event, { maxLength: 40 })
const item = fc.record({
  types: fc.option(fc.uniqueArray(fc.constantFrom(...types), { maxLength: 2 }), { nil: undefined }),
  tags: fc.option(fc.uniqueArray(fc.constantFrom(...tags), { maxLength: 3 }), { nil: undefined })
}, { requiredKeys: [] })
const query = fc.array(item, { minLength: 1, maxLength: 3 }).map((items) => Query.make(...items))

const indexOf = (events: ReadonlyArray<Query.Taggable>): TagIndex => {
  const index: TagIndex = new Map()
  events.forEach((e, slot) => addTags(index, slot, e.tags))
  return index
}

const scan = (events: ReadonlyArray<Query.Taggable>, q: Query.Query, from: number, end: number, limit: number) =>
  events.map((_, slot) => slot).filter((slot) => slot >= from && slot < end && Query.matches(q, events[slot]!)).slice(0, limit)

/**
 * The slots a query may look at, at most: every slot in range when an item has no tags, else,
 * per item, the slots in range of its rarest tag (of the fewest events in the whole log).
 */
const bound = (index: TagIndex, q: Query.Query, from: number, end: number) => {
  if (q.items.some((i) => i.tags === undefined || i.tags.length === 0)) return end - from
  return q.items.reduce((sum, i) => {
    const lists = i.tags!.map((t) => index.get(t) ?? [])
    const fewest = Math.min(...lists.map((slots) => slots.length))
    const inRange = lists.filter((slots) => slots.length === fewest).map((slots) => slots.filter((s) => s >= from && s < end).length)
    return sum + Math.max(...inRange)
  }, 0)
}

describe("tag index", () => {
  it("given any log and query, the index finds exactly what a scan finds, in order, at most limit, looking at no more than the rarest tag's events", () =>
    fc.assert(
      fc.property(log, query, fc.nat(45), fc.nat(45), fc.integer({ min: 1, max: 45 }), (events, q, a, b, limit) => {
        const [from, end] = [Math.min(a, b, events.length), Math.min(Math.max(a, b), events.length)]
        const index = indexOf(events)
        let looked = 0
        const found = matchingSlots(index, q, from, end, limit, (slot) => {
          looked++
          return Query.matches(q, events[slot]!)
        })
        expect(found).toEqual(scan(events, q, from, end, limit))
        expect(looked).toBeLessThanOrEqual(bound(index, q, from, end))
      }),
      { numRuns: 300 }
    ))

  it("given events t1 at slots 0..9 and t2 at slot 7 only, a query for both looks at slot 7 alone", () => {
    const events = Array.from({ length: 10 }, (_, slot) => ({ type: "A", tags: slot === 7 ? ["t1", "t2"] : ["t1"] }))
    const looked: Array<number> = []
    const index = indexOf(events)
    expect(matchingSlots(index, Query.tagged("t1", "t2"), 0, 10, 10, (slot) => (looked.push(slot), true))).toEqual([7])
    expect(looked).toEqual([7])
    looked.length = 0
    expect(matchingSlots(index, Query.tagged("t2", "t1"), 0, 10, 10, (slot) => (looked.push(slot), true))).toEqual([7])
    expect(looked).toEqual([7])
  })

  it("given a tag no event carries, a query naming it looks at nothing", () => {
    const looked: Array<number> = []
    const index = indexOf([{ type: "A", tags: ["t1"] }, { type: "A", tags: ["t2"] }])
    expect(matchingSlots(index, Query.tagged("t1", "t9"), 0, 2, 10, (slot) => (looked.push(slot), true))).toEqual([])
    expect(looked).toEqual([])
  })

  it("given two items matching the same events, each slot comes once, in order", () => {
    const events = [{ type: "A", tags: ["t1", "t2"] }, { type: "A", tags: ["t2"] }, { type: "A", tags: ["t1", "t2"] }]
    const q = Query.or(Query.tagged("t1"), Query.tagged("t2"))
    expect(matchingSlots(indexOf(events), q, 0, 3, 10, () => true)).toEqual([0, 1, 2])
  })

  it("given any log, rolling back its latest events (newest first) leaves the index of the events before them", () =>
    fc.assert(
      fc.property(log, fc.nat(40), (events, n) => {
        const keep = Math.max(0, events.length - n)
        const index = indexOf(events)
        for (let slot = events.length - 1; slot >= keep; slot--) removeTags(index, slot, events[slot]!.tags)
        expect(index).toEqual(indexOf(events.slice(0, keep)))
      }),
      { numRuns: 200 }
    ))
})
