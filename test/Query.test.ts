import { describe, expect, it } from "@effect/vitest"
import { Query } from "chronicle"

const event = (type: string, ...tags: Array<string>) => ({ type, tags })

/** The DCB query-matching rules, one row per case: query, event, whether it matches. */
const table: ReadonlyArray<readonly [string, Query.Query, ReturnType<typeof event>, boolean]> = [
  ["an item's type matches", Query.make({ types: ["A"] }), event("A"), true],
  ["another type does not", Query.make({ types: ["A"] }), event("B"), false],
  ["any of the item's types matches", Query.make({ types: ["A", "B"] }), event("B"), true],
  ["a tag the event carries matches", Query.tagged("x"), event("A", "x", "y"), true],
  ["every tag of the item is needed", Query.tagged("x", "z"), event("A", "x", "y"), false],
  ["all of them present: a match", Query.tagged("x", "y"), event("A", "y", "x"), true],
  ["type and tags must both hold", Query.make(Query.item(["A"], ["x"])), event("B", "x"), false],
  ["type and tags both hold", Query.make(Query.item(["A"], ["x"])), event("A", "x"), true],
  ["an untagged event fails an item with tags", Query.tagged("x"), event("A"), false],
  ["an item without types or tags matches everything", Query.all, event("Anything", "t"), true],
  ["empty types and tags lists constrain nothing", Query.make({ types: [], tags: [] }), event("A"), true],
  ["a query without items matches nothing", Query.make(), event("A", "x"), false],
  ["items are alternatives: the second matches", Query.or(Query.tagged("nope"), Query.make({ types: ["A"] })), event("A"), true],
  ["no item matches", Query.or(Query.tagged("nope"), Query.make({ types: ["B"] })), event("A", "x"), false],
  ["tags compare exactly (case)", Query.tagged("Course:1"), event("A", "course:1"), false],
  ["a tag is not a prefix match", Query.tagged("course:1"), event("A", "course:10"), false]
]

describe("Query matching", () => {
  for (const [name, query, candidate, expected] of table) {
    it(`${name}: ${Query.format(query)} vs ${candidate.type} [${candidate.tags.join(", ")}] -> ${expected}`, () => {
      expect(Query.matches(query, candidate)).toBe(expected)
    })
  }

  it("format reads as the rules say", () => {
    expect(Query.format(Query.or(Query.make(Query.item(["A", "B"], ["x"])), Query.all))).toBe("(types: A|B; tags: x) or (every event)")
    expect(Query.format(Query.make())).toBe("nothing")
  })

  it("format leaves out an empty list as matching leaves it out: empty types or tags constrain nothing", () => {
    expect(Query.format(Query.make({ types: [], tags: [] }))).toBe("(every event)")
    expect(Query.format(Query.make({ types: ["A"], tags: [] }))).toBe("(types: A)")
    expect(Query.format(Query.make({ types: [], tags: ["x", "y"] }))).toBe("(tags: x, y)")
  })
})
