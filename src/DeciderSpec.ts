/**
 * Given-When-Then specifications for deciders, with failure messages that
 * diff expected and actual events:
 *
 * @example
 * const spec = DeciderSpec.make(BankAccount, { codec: AccountEvents })
 * it.effect("a withdrawal beyond the balance is refused", () =>
 *   spec.given([opened, deposited(50)]).when(withdraw(80)).then(new InsufficientFunds({ … })))
 *
 * Each `then…` returns an Effect that succeeds when the expectation holds and
 * dies with an `AssertionError` when it does not, so it runs under any test
 * runner (`it.effect`, or `Effect.runPromise` in a plain test).
 *
 * @since 0.1.0
 */
import { isDeepStrictEqual } from "node:util"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Decider from "./Decider.js"
import type * as EventCodec from "./EventCodec.js"
import { describeExit, expectError, expectEvents, fail, guardedThen } from "./internal/specAssertions.js"
import type { StreamId } from "./StreamId.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Given<C, E, S, Err, R> {
  /** The command to run against the state the given events build. */
  readonly when: (command: C) => When<E, S, Err, R>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface When<E, S, Err, R> {
  /** Expects exactly these events (an array) or this domain error (anything else). */
  readonly then: (expected: ReadonlyArray<E> | Err) => Effect.Effect<void, never, R>
  /** Expects no events. */
  readonly thenNothing: () => Effect.Effect<void, never, R>
  /** Expects a domain error equal to `expected`, or one for which `expected` returns true. */
  readonly thenFails: (expected: Err | ((error: Err) => boolean)) => Effect.Effect<void, never, R>
  /** Expects the state after the decided events to equal `expected`. */
  readonly thenState: (expected: S) => Effect.Effect<void, never, R>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DeciderSpec<C, E, S, Err, R> {
  readonly given: (events: ReadonlyArray<E>) => Given<C, E, S, Err, R>
}

/**
 * @since 0.1.0
 * @category options
 */
export interface SpecOptions<E extends EventCodec.Tagged> {
  /**
   * When given, every event (given and decided) goes through the codec and
   * JSON, as it would through a store: events that would not survive storage
   * fail the spec.
   */
  readonly codec?: EventCodec.EventCodec<E> | undefined
}

const kit = "DeciderSpec"

const roundTrip = <E extends EventCodec.Tagged>(
  codec: EventCodec.EventCodec<E>,
  event: E,
  version: number
): Effect.Effect<E> => {
  const encoded = codec.encode(event)
  if (Either.isLeft(encoded)) return Effect.die(new Error(`DeciderSpec: an event does not encode: ${encoded.left.message}`))
  const decoded = codec.decodeData({
    type: encoded.right.type,
    streamId: "spec-stream" as StreamId,
    streamVersion: version,
    schemaVersion: encoded.right.schemaVersion ?? 1,
    data: JSON.parse(JSON.stringify(encoded.right.data))
  })
  if (Either.isLeft(decoded)) {
    return Effect.die(new Error(`DeciderSpec: an event does not survive storage: ${decoded.left.message}`))
  }
  return Effect.succeed(decoded.right)
}

/**
 * Builds a specification for a decider.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <C, E extends EventCodec.Tagged, S, Err, R>(
  decider: Decider.Decider<C, E, S, Err, R>,
  options: SpecOptions<E> = {}
): DeciderSpec<C, E, S, Err, R> => {
  const { codec } = options
  const store = (events: ReadonlyArray<E>): Effect.Effect<ReadonlyArray<E>> =>
    codec === undefined ? Effect.succeed(events) : Effect.forEach(events, (event, i) => roundTrip(codec, event, i + 1))

  return {
    given: (givenEvents) => ({
      when: (command) => {
        const decide = Effect.gen(function*() {
          const history = yield* store(givenEvents)
          const state = Decider.fold(decider, history)
          const exit = yield* Effect.exit(decider.decide(command, state))
          if (Exit.isSuccess(exit)) {
            const decided = yield* store(exit.value)
            return { state, exit: Exit.succeed(decided) as Exit.Exit<ReadonlyArray<E>, Err> }
          }
          return { state, exit }
        })

        const when: When<E, S, Err, R> = {
          then: guardedThen(kit, (expected: ReadonlyArray<E> | Err) =>
            Effect.flatMap(decide, ({ exit }) =>
              Array.isArray(expected) ? expectEvents(kit, exit, expected) : expectError(kit, exit, expected as Err))),
          thenNothing: () => Effect.flatMap(decide, ({ exit }) => expectEvents(kit, exit, [])),
          thenFails: (expected) => Effect.flatMap(decide, ({ exit }) => expectError(kit, exit, expected)),
          thenState: (expected) =>
            Effect.flatMap(decide, ({ exit, state }) =>
              Exit.isSuccess(exit)
                ? Effect.suspend(() => {
                  const after = Decider.fold(decider, exit.value, state)
                  return isDeepStrictEqual(after, expected)
                    ? Effect.void
                    : fail("DeciderSpec: the state after the decided events differs", after, expected)
                })
                : fail(`DeciderSpec: expected a state, but decide ${describeExit(exit)}`, describeExit(exit), expected))
        }
        return when
      }
    })
  }
}
