/**
 * The filesystem index's event ids: a checkpoint's ids as a binary column
 * looked up through an open-addressing table over their hashes, the ids
 * indexed since in a map. A lookup finds exactly the slots a map of every id
 * finds, also for ids whose buckets collide or wrap around the table's end,
 * and finds nothing for an absent id whose bucket is taken.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { EventId } from "chronicle"
import { EventIds, idHash, idLength } from "../../src/internal/filesystem/logIndex.js"

const column = (ids: ReadonlyArray<string>) => {
  const bytes = Buffer.alloc(ids.length * idLength)
  ids.forEach((id, slot) => bytes.write(id, slot * idLength, idLength, "latin1"))
  return bytes
}

const withBase = (ids: ReadonlyArray<string>) => {
  let loads = 0
  const eventIds = new EventIds(ids.length, () => {
    loads++
    return column(ids)
  })
  return { eventIds, loads: () => loads }
}

/** Fresh ids whose bucket in a table of `buckets` is `bucket`. */
const inBucket = (bucket: number, buckets: number, n: number) => {
  const found: Array<string> = []
  while (found.length < n) {
    const id = EventId.unsafeGenerate()
    if ((idHash(id) & (buckets - 1)) === bucket) found.push(id)
  }
  return found
}

describe("EventIds", () => {
  // 5 ids: a table of 16 buckets
  it("given base ids colliding in one bucket and others wrapping around the table's end, then each is found at its slot and an absent id of a taken bucket is not", () => {
    const [a, b, c, absent] = inBucket(3, 16, 4)
    const [y, z, absentAtEnd] = inBucket(15, 16, 3)
    const base = [a!, y!, b!, z!, c!]
    const { eventIds, loads } = withBase(base)
    expect(loads()).toBe(0)
    base.forEach((id, slot) => expect(eventIds.get(id)).toBe(slot))
    expect(eventIds.get(absent!)).toBeUndefined()
    expect(eventIds.get(absentAtEnd!)).toBeUndefined()
    // the same id in upper case is another id
    expect(eventIds.get(a!.toUpperCase() === a ? a!.toLowerCase() : a!.toUpperCase())).toBeUndefined()
    expect(eventIds.get("short")).toBeUndefined()
    expect(loads()).toBe(1)
    base.forEach((id, slot) => expect(eventIds.at(slot)).toBe(id))
  })

  it("given ids added after the base and some popped, then lookups see the base, the latest added, and not the popped", () => {
    const base = inBucket(0, 8, 3)
    const { eventIds } = withBase(base)
    const [later, popped] = inBucket(0, 8, 2)
    eventIds.push(later!)
    eventIds.push(popped!)
    eventIds.pop()
    expect(eventIds.length).toBe(4)
    expect(eventIds.get(later!)).toBe(3)
    expect(eventIds.get(popped!)).toBeUndefined()
    expect(eventIds.at(3)).toBe(later)
    expect(eventIds.get(base[2]!)).toBe(2)
  })

  it("given any base and later ids, then every lookup agrees with a map of all of them (property)", () => {
    const uuid = fc.uuid()
    fc.assert(fc.property(fc.uniqueArray(uuid, { maxLength: 60 }), fc.uniqueArray(uuid, { maxLength: 10 }), fc.array(uuid, { maxLength: 10 }), (base, later, others) => {
      const { eventIds } = withBase(base)
      const model = new Map<string, number>()
      base.forEach((id, slot) => model.set(id, slot))
      later.forEach((id) => {
        model.set(id, eventIds.length)
        eventIds.push(id)
      })
      for (const id of [...base, ...later, ...others]) expect(eventIds.get(id)).toBe(model.get(id))
    }))
  })
})
