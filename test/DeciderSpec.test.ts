import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Option, Schema } from "effect"
import { Decider, EventCodec } from "chronicle"
import { DeciderSpec } from "chronicle/testing"

const Rated = Schema.TaggedStruct("Rated", { stars: Schema.Number })
type Rated = typeof Rated.Type
class AlreadyRated extends Schema.TaggedError<AlreadyRated>()("AlreadyRated", { stars: Schema.Number }) {}

const Rating = Decider.make({
  initialState: { stars: 0 },
  decide: (command: { readonly stars: number }, state: { readonly stars: number }) =>
    state.stars > 0
      ? Effect.fail(new AlreadyRated({ stars: state.stars }))
      : Effect.succeed<ReadonlyArray<Rated>>([Rated.make({ stars: command.stars })]),
  evolve: (_state: { readonly stars: number }, event: Rated) => ({ stars: event.stars })
})
const spec = DeciderSpec.make(Rating, { codec: EventCodec.make(Rated) })

const failureMessage = <A, E>(exit: Exit.Exit<A, E>): string =>
  Exit.isFailure(exit) ? Option.getOrThrow(Cause.dieOption(exit.cause)) instanceof Error
    ? (Option.getOrThrow(Cause.dieOption(exit.cause)) as Error).message
    : "" : "(passed)"

describe("DeciderSpec", () => {
  it.effect("passes when the decided events are the expected ones", () =>
    spec.given([]).when({ stars: 4 }).then([Rated.make({ stars: 4 })]))

  it.effect("passes when the expected domain error is raised", () =>
    spec.given([Rated.make({ stars: 2 })]).when({ stars: 4 }).then(new AlreadyRated({ stars: 2 })))

  it.effect("thenFails takes a predicate; thenState checks the state after the events", () =>
    Effect.gen(function*() {
      yield* spec.given([Rated.make({ stars: 2 })]).when({ stars: 1 }).thenFails((e) => e.stars === 2)
      yield* spec.given([]).when({ stars: 5 }).thenState({ stars: 5 })
    }))

  it.effect("fails with a diff of expected and actual events", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(spec.given([]).when({ stars: 4 }).then([Rated.make({ stars: 5 })]))
      const message = failureMessage(exit)
      expect(message).toContain("the decided events differ")
      expect(message).toMatch(/stars: 4/)
      expect(message).toMatch(/stars: 5/)
      expect(message).toMatch(/[+-] /)
    }))

  it.effect("fails when events were expected but decide raised a domain error, naming the error", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(spec.given([Rated.make({ stars: 1 })]).when({ stars: 4 }).thenNothing())
      expect(failureMessage(exit)).toContain("AlreadyRated")
    }))

  it.effect("fails when another error, or no error, comes out", () =>
    Effect.gen(function*() {
      const other = yield* Effect.exit(spec.given([Rated.make({ stars: 1 })]).when({ stars: 4 }).then(new AlreadyRated({ stars: 3 })))
      expect(failureMessage(other)).toContain("decide failed with another error")
      const none = yield* Effect.exit(spec.given([]).when({ stars: 4 }).thenFails(new AlreadyRated({ stars: 3 })))
      expect(failureMessage(none)).toContain("expected a domain error")
    }))

  it.effect("with a codec, an event that would not survive storage fails the spec", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(spec.given([]).when({ stars: Number.NaN }).then([Rated.make({ stars: Number.NaN })]))
      expect(failureMessage(exit)).toContain("does not survive storage")
    }))

  it("awaiting when(…) by mistake rejects instead of hanging", async () => {
    const when = spec.given([]).when({ stars: 1 })
    await expect(Promise.resolve().then(() => when)).rejects.toThrow(/do not await/)
  })
})
