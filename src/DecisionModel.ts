/**
 * Decision models for Dynamic Consistency Boundaries: the state a decision
 * needs, built from the events matching a query rather than from one stream.
 * A model is a small decider-like value (query, initial state, evolve);
 * several models combine into one decision, their queries OR-ed, each model
 * folding only the events that match its own query.
 *
 * @example
 * const courseCapacity = (course: string) => DecisionModel.make({
 *   query: Query.make(Query.item(["CourseDefined", "StudentSubscribed"], [`course:${course}`])),
 *   initialState: { capacity: 0, subscribed: 0 },
 *   evolve: (state, event) => …
 * })
 * const model = DecisionModel.combine({ course: courseCapacity("c1"), student: studentLoad("s7") })
 *
 * @since 0.1.0
 */
import type { StoredEvent } from "./Event.js"
import * as Query from "./Query.js"

/**
 * The state of type `S` built from the events (of type `E`) matching `query`.
 *
 * @since 0.1.0
 * @category models
 */
export interface DecisionModel<S, E> {
  readonly query: Query.Query
  readonly initialState: S
  /** Folds one matching event (decoded, in its envelope: tags and position included). */
  readonly evolve: (state: S, event: StoredEvent<E>) => S
}

/**
 * Defines a decision model.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <S, E>(model: DecisionModel<S, E>): DecisionModel<S, E> => model

/**
 * Combines models into one decision: the state is a record of each model's
 * state, the query is their union, and each event evolves only the models
 * whose query it matches.
 *
 * @since 0.1.0
 * @category combinators
 */
export const combine = <Models extends Record<string, DecisionModel<any, any>>>(
  models: Models
): DecisionModel<
  { readonly [K in keyof Models]: Models[K]["initialState"] },
  Models[keyof Models] extends DecisionModel<any, infer E> ? E : never
> => {
  const entries = Object.entries(models)
  const initialState = Object.fromEntries(entries.map(([key, model]) => [key, model.initialState]))
  return {
    query: Query.or(...entries.map(([, model]) => model.query)),
    initialState: initialState as { readonly [K in keyof Models]: Models[K]["initialState"] },
    evolve: (state, event) => {
      let next: Record<string, unknown> | undefined
      for (const [key, model] of entries) {
        if (!Query.matches(model.query, event)) continue
        next ??= { ...state }
        next[key] = model.evolve(next[key], event)
      }
      return (next ?? state) as typeof state
    }
  }
}

/**
 * Folds events into a model's state (only those matching its query count).
 *
 * @since 0.1.0
 * @category combinators
 */
export const fold = <S, E>(model: DecisionModel<S, E>, events: Iterable<StoredEvent<E>>): S => {
  let state = model.initialState
  for (const event of events) if (Query.matches(model.query, event)) state = model.evolve(state, event)
  return state
}
