import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { Decider } from "chronicle"

type Counted = { readonly _tag: "Counted"; readonly by: number }
const Counter = Decider.make({
  initialState: 0,
  decide: (command: { readonly by: number }, _state: number) =>
    command.by === 0 ? Effect.fail("zero" as const) : Effect.succeed<ReadonlyArray<Counted>>([{ _tag: "Counted", by: command.by }]),
  evolve: (state: number, event: Counted) => state + event.by
})

describe("Decider", () => {
  it("fold builds state from events, from the initial state or a given one", () => {
    const events: Array<Counted> = [{ _tag: "Counted", by: 2 }, { _tag: "Counted", by: 3 }]
    expect(Decider.fold(Counter, events)).toBe(5)
    expect(Decider.fold(Counter, events, 10)).toBe(15)
    expect(Decider.fold(Counter, [])).toBe(0)
  })

  it.effect("foldStream folds a long chunked stream as it arrives", () =>
    Effect.gen(function*() {
      const events = Stream.range(1, 100_000).pipe(
        Stream.rechunk(1_000),
        Stream.map((by): Counted => ({ _tag: "Counted", by }))
      )
      expect(yield* Decider.foldStream(Counter, events)).toBe(5_000_050_000)
    }))

  it.effect("run decides and evolves without a store; domain errors pass through", () =>
    Effect.gen(function*() {
      expect(yield* Decider.run(Counter, { by: 4 }, 1)).toEqual({ events: [{ _tag: "Counted", by: 4 }], state: 5 })
      expect(yield* Effect.flip(Decider.run(Counter, { by: 0 }))).toBe("zero")
    }))
})
