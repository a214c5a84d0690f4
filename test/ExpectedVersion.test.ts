import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { ExpectedVersion } from "chronicle"

describe("ExpectedVersion", () => {
  it("the named expectations are the strings they print as", () => {
    expect([ExpectedVersion.NoStream, ExpectedVersion.StreamExists, ExpectedVersion.Any]).toEqual(["NoStream", "StreamExists", "Any"])
  })

  it.each([
    [ExpectedVersion.Any, 0, true],
    [ExpectedVersion.Any, 5, true],
    [ExpectedVersion.NoStream, 0, true],
    [ExpectedVersion.NoStream, 1, false],
    [ExpectedVersion.StreamExists, 0, false],
    [ExpectedVersion.StreamExists, 1, true],
    [ExpectedVersion.StreamExists, 9, true],
    [0, 0, true],
    [0, 1, false],
    [3, 3, true],
    [3, 2, false],
    [3, 4, false]
  ] as const)("%s against a stream at %i matches: %s", (expected, actual, matches) => {
    expect(ExpectedVersion.matches(expected, actual)).toBe(matches)
  })

  it("exact pins a read version: 0 becomes NoStream, any other version itself", () => {
    expect(ExpectedVersion.exact(0)).toBe("NoStream")
    expect(ExpectedVersion.exact(1)).toBe(1)
    expect(ExpectedVersion.exact(7)).toBe(7)
  })

  it("format prints a version or a name as it is", () => {
    expect(ExpectedVersion.format(3)).toBe("3")
    expect(ExpectedVersion.format(0)).toBe("0")
    expect(ExpectedVersion.format("NoStream")).toBe("NoStream")
    expect(ExpectedVersion.format("Any")).toBe("Any")
  })

  it("the schema takes non-negative integers and the three names, nothing else", () => {
    const decode = Schema.decodeUnknownEither(ExpectedVersion.ExpectedVersion)
    for (const valid of [0, 1, 42, "NoStream", "StreamExists", "Any"]) expect(decode(valid)).toEqual(Either.right(valid))
    for (const invalid of [-1, 1.5, "3", "any", "Stream", null, undefined]) expect(Either.isLeft(decode(invalid)), String(invalid)).toBe(true)
  })
})
