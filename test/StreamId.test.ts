import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { StreamId } from "chronicle"

describe("StreamId", () => {
  it("builds category-id and splits it back", () => {
    const id = StreamId.unsafeMake("account", "0192-abc")
    expect(StreamId.make("account", "0192-abc")).toEqual(Either.right(id))
    expect(id).toBe("account-0192-abc")
    expect(StreamId.category(id)).toBe("account")
    expect(StreamId.entityId(id)).toBe("0192-abc")
  })

  it("a stream id without a dash is its own category", () => {
    const id = StreamId.unsafeParse("settings")
    expect(StreamId.category(id)).toBe("settings")
    expect(StreamId.entityId(id)).toBe("")
  })

  it("refuses an empty id, an empty category and a category with a dash", () => {
    expect(Either.isLeft(StreamId.parse(""))).toBe(true)
    expect(Either.getOrThrow(Either.flip(StreamId.parse(""))).message).toContain("must not be empty")
    expect(() => StreamId.unsafeParse("")).toThrow(/must not be empty/)
    const refusal = (category: string, id: string) => Either.getOrThrow(Either.flip(StreamId.make(category, id)))
    expect(refusal("", "1")).toMatchObject({ _tag: "InvalidStreamId", reason: expect.stringMatching(/category/) })
    expect(refusal("bank-account", "1").reason).toMatch(/must not contain "-"/)
    expect(refusal("account", "").reason).toMatch(/must not be empty/)
    expect(() => StreamId.unsafeMake("bank-account", "1")).toThrow(/must not contain "-"/)
  })

  it("refuses control characters and lone surrogates; keeps any other text, surrogate pairs included", () => {
    for (const bad of ["a\u0000b", "tab\there", "line\n", "del\u007f", "c1\u0085", "half\ud83d", "\ude80low"]) {
      const parsed = StreamId.parse(bad)
      expect(Either.isLeft(parsed)).toBe(true)
      expect(Either.getOrThrow(Either.flip(parsed))).toMatchObject({ _tag: "InvalidStreamId", value: bad })
      expect(Either.getOrThrow(Either.flip(StreamId.make("cat", bad))).reason).toMatch(/must not hold/)
    }
    for (const good of ["café-☕ 🚀", "a b-c/d..e", "ü".repeat(300)]) expect(StreamId.unsafeParse(good)).toBe(good)
  })

  it.effect("generates time-ordered UUIDv7 ids in a category", () =>
    Effect.gen(function*() {
      const ids = yield* Effect.all(Array.from({ length: 50 }, () => StreamId.generate("order")))
      expect(new Set(ids).size).toBe(50)
      for (const id of ids) {
        expect(StreamId.category(id)).toBe("order")
        expect(StreamId.entityId(id)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/)
      }
      expect([...ids].sort()).toEqual(ids)
    }))

  it.effect("generating in a category that is not one is a typed failure, not a defect", () =>
    Effect.gen(function*() {
      const failure = yield* Effect.flip(StreamId.generate("bank-account"))
      expect(failure).toMatchObject({ _tag: "InvalidStreamId" })
    }))
})
