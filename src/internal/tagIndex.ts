/**
 * An in-memory inverted index from tag to the (ascending) slots of the events
 * carrying it, for the memory and filesystem stores: queries and append
 * conditions look at the events of a tag, not at the whole log.
 */
import { firstAtLeast } from "./sorted.js"
import type * as Query from "../Query.js"

/** Tag → ascending slots. */
export type TagIndex = Map<string, Array<number>>

/** Records that the event at `slot` (the highest so far) carries `tags`. */
export const addTags = (index: TagIndex, slot: number, tags: ReadonlyArray<string>): void => {
  for (const tag of tags) {
    const slots = index.get(tag)
    if (slots === undefined) index.set(tag, [slot])
    else slots.push(slot)
  }
}

/** Forgets the event at `slot`, the highest indexed (a write rolled back). */
export const removeTags = (index: TagIndex, slot: number, tags: ReadonlyArray<string>): void => {
  for (const tag of tags) {
    const slots = index.get(tag)
    // Stryker disable next-line ConditionalExpression: equivalent: the caller passes the tags it indexed at `slot`, so each has a list
    if (slots === undefined) continue
    // Stryker disable next-line ConditionalExpression: equivalent: `slot` is the highest indexed, so it ends each of its tags' lists
    if (slots.at(-1) === slot) slots.pop()
    if (slots.length === 0) index.delete(tag)
  }
}

/**
 * The slots in `[from, end)` that may match `query` (each carries all the
 * tags of some item: check the types and tags still), ascending; `undefined`
 * when an item has no tags, so every slot may match.
 */
const candidateSlots = (index: TagIndex, query: Query.Query, from: number, end: number): ReadonlyArray<number> | undefined => {
  // Stryker disable next-line ArrayDeclaration: equivalent: a bogus first list holds no slot below `end`, and lists are merged and deduplicated
  const lists: Array<ReadonlyArray<number>> = []
  for (const item of query.items) {
    if (item.tags === undefined || item.tags.length === 0) return undefined
    // Stryker disable next-line ArrayDeclaration: equivalent: overwritten by the item's first tag (an item here has at least one)
    let shortest: ReadonlyArray<number> = []
    let first = true
    for (const tag of item.tags) {
      const slots = index.get(tag) ?? []
      // Stryker disable next-line EqualityOperator: equivalent: which of two equally short lists is taken
      if (first || slots.length < shortest.length) shortest = slots
      first = false
    }
    lists.push(shortest)
  }
  const out: Array<number> = []
  for (const slots of lists) {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent: past a list's end `slots[i] < end` is false too
    for (let i = firstAtLeast(slots, from); i < slots.length && slots[i]! < end; i++) out.push(slots[i]!)
  }
  // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent: one list is already ascending and without repeats
  if (lists.length > 1) {
    out.sort((a, b) => a - b)
    let kept = 0
    // Stryker disable next-line ConditionalExpression: equivalent: `i === 0` only spares reading out[-1], which is undefined
    for (let i = 0; i < out.length; i++) if (i === 0 || out[i] !== out[i - 1]) out[kept++] = out[i]!
    out.length = kept
  }
  return out
}

/**
 * The slots from `from` (up to `end`) holding an event for which
 * `matchesAt(slot)` holds, ascending, at most `limit`: through the tag index
 * where every item of `query` has tags, else slot by slot.
 */
export const matchingSlots = (
  index: TagIndex,
  query: Query.Query,
  from: number,
  end: number,
  limit: number,
  matchesAt: (slot: number) => boolean
): Array<number> => {
  const out: Array<number> = []
  const candidates = candidateSlots(index, query, from, end)
  if (candidates === undefined) {
    for (let slot = from; slot < end && out.length < limit; slot++) if (matchesAt(slot)) out.push(slot)
  } else {
    for (let k = 0; k < candidates.length && out.length < limit; k++) if (matchesAt(candidates[k]!)) out.push(candidates[k]!)
  }
  return out
}
