/**
 * Given-When-Then specifications for DCB decisions: the `given` events are
 * stored (encoded and tagged by the codec) in a fresh in-memory store, and
 * the command runs through a real `DecisionHandler`: its query, its fold,
 * its decision and its conditional append.
 *
 * @example
 * const spec = DecisionSpec.make(Subscriptions)
 * it.effect("a full course refuses another student", () =>
 *   spec.given([courseDefined("c1", 1), subscribed("c1", "s1")])
 *     .when(subscribe("c1", "s2"))
 *     .thenFails((error) => error._tag === "CourseFull"))
 *
 * @since 0.1.0
 */
import { AssertionError } from "node:assert"
import { isDeepStrictEqual } from "node:util"
import { Cause, Effect, Either, Exit, Option } from "effect"
import * as DecisionHandler from "./DecisionHandler.js"
import type * as EventCodec from "./EventCodec.js"
import * as EventStore from "./EventStore.js"
import * as StreamId from "./StreamId.js"
import * as MemoryEventStore from "./stores/memory/MemoryEventStore.js"

/**
 * @category models
 */
export interface When<E, Err, R> {
  /** Expects exactly these events (an array) or this domain error (anything else). */
  readonly then: (expected: ReadonlyArray<E> | Err) => Effect.Effect<void, never, R>
  /** Expects no events: the state already satisfies the command. */
  readonly thenNothing: () => Effect.Effect<void, never, R>
  /** Expects a domain error equal to `expected`, or one for which `expected` returns true. */
  readonly thenFails: (expected: Err | ((error: Err) => boolean)) => Effect.Effect<void, never, R>
}

/**
 * @category models
 */
export interface DecisionSpec<C, E, Err, R> {
  readonly given: (events: ReadonlyArray<E>) => { readonly when: (command: C) => When<E, Err, R> }
}

const plain = (value: unknown): unknown =>
  value instanceof Error && "_tag" in value ? { ...value, _tag: value._tag } : value

const fail = (header: string, actual: unknown, expected: unknown): Effect.Effect<never> =>
  Effect.die(new AssertionError({ message: header, actual: plain(actual), expected: plain(expected), operator: "deepStrictEqual" }))

const describe = <A, E>(exit: Exit.Exit<A, E>): string =>
  Exit.isSuccess(exit)
    ? `decided ${JSON.stringify(exit.value)}`
    : Option.match(Cause.failureOption(exit.cause), {
      onNone: () => `died: ${Cause.pretty(exit.cause)}`,
      onSome: (error) => `failed with ${JSON.stringify(plain(error))}`
    })

/**
 * A specification for the decisions of `decider`.
 *
 * @category constructors
 */
export const make = <C, E extends EventCodec.Tagged, S, Err, R>(
  decider: DecisionHandler.DecisionDecider<C, E, S, Err, R>
): DecisionSpec<C, E, Err, R> => {
  const handler = DecisionHandler.make(decider)
  const history = StreamId.make("spec", "given")
  return {
    given: (givenEvents) => ({
      when: (command) => {
        const decide = Effect.gen(function*() {
          const encoded = []
          for (const event of givenEvents) {
            const result = decider.codec.encode(event)
            if (Either.isLeft(result)) return yield* Effect.die(new Error(`DecisionSpec: a given event does not encode: ${result.left.message}`))
            encoded.push(result.right)
          }
          if (encoded.length > 0) yield* EventStore.append(history, encoded, { expectedVersion: "Any" }).pipe(Effect.orDie)
          return yield* Effect.exit(Effect.map(handler.handle(command), (result) => result.events))
        }).pipe(Effect.provide(MemoryEventStore.layer()))

        const expectEvents = (expected: ReadonlyArray<E>) =>
          Effect.flatMap(decide, (exit) =>
            Exit.isSuccess(exit)
              ? isDeepStrictEqual(exit.value, expected)
                ? Effect.void
                : fail("DecisionSpec: the decided events differ from the expected ones", exit.value, expected)
              : fail(`DecisionSpec: expected events, but the decision ${describe(exit)}`, describe(exit), expected))

        const expectError = (expected: Err | ((error: Err) => boolean)) =>
          Effect.flatMap(decide, (exit) => {
            const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
            if (Option.isNone(failure)) {
              return fail(`DecisionSpec: expected a domain error, but the decision ${describe(exit)}`, describe(exit), expected)
            }
            const holds = typeof expected === "function"
              ? (expected as (error: Err) => boolean)(failure.value as Err)
              : isDeepStrictEqual(plain(failure.value), plain(expected))
            return holds ? Effect.void : fail("DecisionSpec: the decision failed with another error", failure.value, expected)
          })

        return {
          // `then` taking a function would make this look like a promise: awaiting it by mistake dies loudly
          then: (...args: ReadonlyArray<unknown>) => {
            if (typeof args[0] === "function") {
              const error = new TypeError("DecisionSpec: call .then(expected) and run the Effect it returns; do not await .when(…)")
              if (typeof args[1] === "function") (args[1] as (e: unknown) => void)(error)
              return Effect.die(error)
            }
            return Array.isArray(args[0]) ? expectEvents(args[0] as ReadonlyArray<E>) : expectError(args[0] as Err)
          },
          thenNothing: () => expectEvents([]),
          thenFails: expectError
        }
      }
    })
  }
}
