import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { check, checkMarkdown, extract } from "./support/snippets.js"

const root = fileURLToPath(new URL("..", import.meta.url))

describe("The README's TypeScript", () => {
  it("every ts block type-checks against the sources (ts-continue blocks together); a skipped one says why", () => {
    const { checked, problems, skipped } = checkMarkdown(`${root}README.md`, root)
    expect(problems).toEqual([])
    expect(checked).toBeGreaterThanOrEqual(13)
    for (const block of skipped) expect(block.skip?.length ?? 0).toBeGreaterThan(0)
  })

  it("the check can fail: a wrong snippet is reported at its README line", () => {
    const markdown = [
      "# Title", //                                          1
      "```ts", //                                            2
      'import { StreamId } from "chronicle"', //             3
      'const id: number = StreamId.unsafeMake("a", "b")', // 4
      "```"
    ].join("\n")
    const problems = check(extract(markdown).units, root)
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/^README\.md:4: Type 'string & Brand<"chronicle\/StreamId">' is not assignable to type 'number'/)
  })

  it("given ts-continue, a block sees the one before; without it, it does not", () => {
    const blocks = (marker: string) =>
      [
        "```ts",
        'import { Effect } from "effect"',
        "const one = Effect.succeed(1)",
        "```",
        "",
        marker,
        "```ts",
        "const two = one.pipe(Effect.map((n) => n + 1))",
        "```"
      ].join("\n")
    expect(check(extract(blocks("<!-- ts-continue -->")).units, root)).toEqual([])
    const alone = check(extract(blocks("")).units, root)
    expect(alone).toEqual(expect.arrayContaining(["README.md:8: Cannot find name 'one'.", "README.md:8: Cannot find name 'Effect'."]))
    expect(alone.every((problem) => problem.startsWith("README.md:8: "))).toBe(true)
  })

  it("given ts-skip, a block is not checked, but only with a reason; other markers are mistakes", () => {
    const extracted = extract(
      [
        "<!-- ts-skip: a fragment of a larger program -->",
        "```ts",
        "this is not TypeScript",
        "```",
        "<!-- ts-skip -->",
        "```ts",
        "nor this",
        "```",
        "<!-- ts-contiue -->",
        "```ts",
        "export {}",
        "```",
        "```sh",
        "npm test",
        "```"
      ].join("\n")
    )
    expect(extracted.skipped.map((block) => block.skip)).toEqual(["a fragment of a larger program", ""])
    expect(extracted.units.map((unit) => unit.blocks.map((block) => block.line))).toEqual([[11]])
    expect(extracted.problems).toEqual([
      "README.md:5: ts-skip needs a reason (<!-- ts-skip: why -->)",
      "README.md:9: unknown marker ts-contiue (ts-continue or ts-skip: reason)"
    ])
  })
})
