/**
 * The assertions the Given-When-Then kits share (`DeciderSpec`,
 * `DecisionSpec`): each checks the exit of a decision and dies with an
 * `AssertionError` whose message diffs expected and actual.
 */
import { AssertionError } from "node:assert"
import { isDeepStrictEqual } from "node:util"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"

/** A tagged error as a plain object, so diffs show its fields. */
export const plain = (value: unknown): unknown =>
  value instanceof Error && "_tag" in value ? { ...value, _tag: value._tag } : value

/** Dies with an AssertionError; Node appends a diff of actual and expected to the header. */
export const fail = (header: string, actual: unknown, expected: unknown): Effect.Effect<never> =>
  Effect.die(new AssertionError({ message: header, actual: plain(actual), expected: plain(expected), operator: "deepStrictEqual" }))

/** What a decision did, in a few words. */
export const describeExit = <A, E>(exit: Exit.Exit<A, E>): string =>
  Exit.isSuccess(exit)
    ? `decided ${JSON.stringify(exit.value)}`
    : Option.match(Cause.failureOption(exit.cause), {
      onNone: () => `died: ${Cause.pretty(exit.cause)}`,
      onSome: (error) => `failed with ${JSON.stringify(plain(error))}`
    })

/** Expects the decision to have decided exactly `expected`. */
export const expectEvents = <E>(kit: string, exit: Exit.Exit<ReadonlyArray<E>, unknown>, expected: ReadonlyArray<E>) =>
  Exit.isSuccess(exit)
    ? isDeepStrictEqual(exit.value, expected)
      ? Effect.void
      : fail(`${kit}: the decided events differ from the expected ones`, exit.value, expected)
    : fail(`${kit}: expected events, but decide ${describeExit(exit)}`, describeExit(exit), expected)

/** Expects the decision to have failed with `expected`, or with an error `expected` accepts. */
export const expectError = <Err>(kit: string, exit: Exit.Exit<unknown, unknown>, expected: Err | ((error: Err) => boolean)) => {
  const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
  if (Option.isNone(failure)) {
    return fail(`${kit}: expected a domain error, but decide ${describeExit(exit)}`, describeExit(exit), expected)
  }
  const holds = typeof expected === "function"
    ? (expected as (error: Err) => boolean)(failure.value as Err)
    : isDeepStrictEqual(plain(failure.value), plain(expected))
  return holds ? Effect.void : fail(`${kit}: decide failed with another error`, failure.value, expected)
}

/**
 * A `when(…)` has a `then` method, which makes it look like a promise:
 * awaiting it by mistake would hang. This `then` dies loudly instead when
 * called as a promise's (with a function).
 */
export const guardedThen = <A, R>(kit: string, then: (expected: A) => Effect.Effect<void, never, R>) =>
(...args: ReadonlyArray<unknown>): Effect.Effect<void, never, R> => {
  if (typeof args[0] === "function") {
    const error = new TypeError(`${kit}: call .then(expected) and run the Effect it returns; do not await .when(…)`)
    if (typeof args[1] === "function") (args[1] as (e: unknown) => void)(error)
    return Effect.die(error)
  }
  return then(args[0] as A)
}
