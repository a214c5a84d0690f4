import { describe, expect, it } from "vitest"
import { imprecise } from "../../src/cli/EventFile.js"

describe("importing JSON never rounds a number silently", () => {
  it("finds an integer literal beyond 2^53 outside strings, and nothing else", () => {
    expect(imprecise(`{"data":{"id":9007199254740993}}`)).toBe("9007199254740993")
    expect(imprecise(`{"data":{"id":-12345678901234567890}}`)).toBe("-12345678901234567890")
    expect(imprecise(`{"data":{"id":9007199254740991,"f":1.5e300,"s":"12345678901234567890"}}`)).toBeUndefined()
    expect(imprecise(`{"s":"a \\" 99999999999999999999"}`)).toBeUndefined()
  })
})
