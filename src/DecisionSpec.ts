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
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as DecisionHandler from "./DecisionHandler.js"
import type * as EventCodec from "./EventCodec.js"
import * as EventStore from "./EventStore.js"
import { expectError, expectEvents, guardedThen } from "./internal/specAssertions.js"
import * as StreamId from "./StreamId.js"
import * as MemoryEventStore from "./stores/memory/MemoryEventStore.js"

/**
 * @since 0.1.0
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
 * @since 0.1.0
 * @category models
 */
export interface DecisionSpec<C, E, Err, R> {
  readonly given: (events: ReadonlyArray<E>) => { readonly when: (command: C) => When<E, Err, R> }
}

const kit = "DecisionSpec"

/**
 * A specification for the decisions of `decider`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <C, E extends EventCodec.Tagged, S, Err, R>(
  decider: DecisionHandler.DecisionDecider<C, E, S, Err, R>
): DecisionSpec<C, E, Err, R> => {
  const handler = DecisionHandler.make(decider)
  const history = StreamId.unsafeMake("spec", "given")
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

        return {
          then: guardedThen(kit, (expected: ReadonlyArray<E> | Err) =>
            Effect.flatMap(decide, (exit) =>
              Array.isArray(expected) ? expectEvents(kit, exit, expected) : expectError(kit, exit, expected as Err))),
          thenNothing: () => Effect.flatMap(decide, (exit) => expectEvents(kit, exit, [])),
          thenFails: (expected) => Effect.flatMap(decide, (exit) => expectError(kit, exit, expected))
        }
      }
    })
  }
}
