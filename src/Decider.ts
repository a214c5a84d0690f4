/**
 * A decider is an aggregate as three pure functions: the state before any
 * event, how a command turns into events given the state (`decide`), and how
 * an event changes the state (`evolve`). No classes, no I/O: the command
 * handler brings the store.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

/**
 * @since 0.1.0
 * @category models
 */
export interface Decider<Command, Event, State, Error = never, R = never> {
  readonly initialState: State
  /** The events a command produces from the current state, or a domain error. */
  readonly decide: (command: Command, state: State) => Effect.Effect<ReadonlyArray<Event>, Error, R>
  /** The state after one event. Must be pure and total. */
  readonly evolve: (state: State, event: Event) => State
}

/**
 * The command type of a decider.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Command<D> = D extends Decider<infer C, any, any, any, any> ? C : never

/**
 * The event type of a decider.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Event<D> = D extends Decider<any, infer E, any, any, any> ? E : never

/**
 * The state type of a decider.
 *
 * @since 0.1.0
 * @category type-level
 */
export type State<D> = D extends Decider<any, any, infer S, any, any> ? S : never

/**
 * The domain error type of a decider.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Error<D> = D extends Decider<any, any, any, infer Err, any> ? Err : never

/**
 * Builds a decider, inferring its types from the functions.
 *
 * @example
 * const Counter = Decider.make({
 *   initialState: 0,
 *   decide: (cmd: { by: number }) => Effect.succeed([{ _tag: "Incremented", by: cmd.by }]),
 *   evolve: (n, e) => n + e.by
 * })
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Command, Event, State, Error = never, R = never>(
  decider: Decider<Command, Event, State, Error, R>
): Decider<Command, Event, State, Error, R> => decider

/**
 * Folds events into a state, starting from `state` (default: the decider's
 * initial state).
 *
 * @since 0.1.0
 * @category folding
 */
export const fold = <Event, State>(
  decider: Pick<Decider<any, Event, State, any, any>, "initialState" | "evolve">,
  events: Iterable<Event>,
  state: State = decider.initialState
): State => {
  let current = state
  for (const event of events) current = decider.evolve(current, event)
  return current
}

/**
 * Folds a stream of events into a state as it arrives, chunk by chunk, so a
 * long stream is never held in memory whole.
 *
 * @since 0.1.0
 * @category folding
 */
export const foldStream = <Event, State, Err, R>(
  decider: Pick<Decider<any, Event, State, any, any>, "initialState" | "evolve">,
  events: Stream.Stream<Event, Err, R>,
  state: State = decider.initialState
): Effect.Effect<State, Err, R> =>
  Effect.suspend(() => {
    let current = state
    return Stream.runForEachChunk(events, (chunk) =>
      Effect.sync(() => {
        for (const event of chunk) current = decider.evolve(current, event)
      })).pipe(Effect.map(() => current))
  })

/**
 * Runs a command against a state without a store: the events it decides and
 * the state after them.
 *
 * @since 0.1.0
 * @category combinators
 */
export const run = <Command, Event, State, Error, R>(
  decider: Decider<Command, Event, State, Error, R>,
  command: Command,
  state: State = decider.initialState
): Effect.Effect<{ readonly events: ReadonlyArray<Event>; readonly state: State }, Error, R> =>
  Effect.map(decider.decide(command, state), (events) => ({ events, state: fold(decider, events, state) }))
