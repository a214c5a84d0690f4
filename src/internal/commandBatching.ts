/**
 * Per-stream command coalescing for the command handler (the single writer of
 * actor-based stores). Commands to one stream through one handler and one
 * store queue in a lane; whoever runs takes the queued commands as a batch,
 * decides them in order against the state the previous ones left, and appends
 * the events of all of them in one append with one expected version. A
 * conflict (another process wrote) catches up and decides the batch again,
 * each command counting its own retries on its own schedule.
 */
import type * as Context from "effect/Context"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type { EventMetadata, NewEvent } from "../Event.js"
import type { EventEncodeError } from "../EventCodec.js"
import * as EventStore from "../EventStore.js"
import * as ExpectedVersion from "../ExpectedVersion.js"
import * as Metrics from "../Metrics.js"
import type { StreamId } from "../StreamId.js"

/** An aggregate as a batch knows it: state and version (and whatever else the handler keeps). */
export interface Known<S> {
  readonly state: S
  readonly version: number
}

/** What one command produced: the shape of `CommandHandler.CommandResult`. */
export interface Result<E, S> {
  readonly streamId: StreamId
  readonly events: ReadonlyArray<E>
  readonly state: S
  readonly streamVersion: number
  readonly globalPositions: ReadonlyArray<bigint>
}

/** One command in a lane: how to decide it (in its caller's context), whom to answer, how it fared so far. */
export interface Pending<C, E, S, Err> {
  readonly command: C
  readonly pinned: ExpectedVersion.ExpectedVersion | undefined
  readonly metadata: EventMetadata | undefined
  readonly decide: (state: S) => Effect.Effect<ReadonlyArray<E>, Err>
  /** The caller's context: a batch runs in its first command's. */
  readonly context: Context.Context<any>
  readonly answer: Deferred.Deferred<Result<E, S>, Err>
  attempts: number
  driver: Schedule.ScheduleDriver<unknown, EventStore.ConcurrencyConflict> | undefined
  settled: boolean
  cancelled: boolean
}

/** Builds the entry of a command, not yet queued. */
export const pending = <C, E, S, Err>(
  command: C,
  pinned: ExpectedVersion.ExpectedVersion | undefined,
  metadata: EventMetadata | undefined,
  decide: (state: S) => Effect.Effect<ReadonlyArray<E>, Err>,
  context: Context.Context<any>
): Effect.Effect<Pending<C, E, S, Err>> =>
  Effect.map(Deferred.make<Result<E, S>, Err>(), (answer) => ({
    command,
    pinned,
    metadata,
    decide,
    context,
    answer,
    attempts: 0,
    driver: undefined,
    settled: false,
    cancelled: false
  }))

/**
 * What a batch needs from its handler. `Fail` covers every failure of a
 * command besides its decider's own (which are in `Err` too).
 */
export interface Machinery<E, S, K extends Known<S>, Fail, R> {
  readonly streamId: StreamId
  readonly schedule: Schedule.Schedule<unknown, EventStore.ConcurrencyConflict>
  /** The aggregate, loaded or caught up with the stream. */
  readonly load: Effect.Effect<K, Fail, R>
  readonly evolve: (state: S, event: E) => S
  readonly encode: (events: ReadonlyArray<E>, metadata: EventMetadata | undefined) => Either.Either<ReadonlyArray<NewEvent>, EventEncodeError>
  /** Appends with the exact expected version. */
  readonly append: (events: ReadonlyArray<NewEvent>, expected: number) => Effect.Effect<EventStore.AppendResult, Fail, R>
  /** After a successful append: snapshot and remember the aggregate. */
  readonly appended: (from: K, state: S, version: number, events: ReadonlyArray<E>) => Effect.Effect<void, never, R>
  /** After a conflict: forget what the conflict shows stale. */
  readonly conflicted: (conflict: EventStore.ConcurrencyConflict) => void
  /** The error a command gets when its retries run out. */
  readonly exhausted: (attempts: number, lastConflict: EventStore.ConcurrencyConflict) => Fail
}

type Answer<E, S, Err> = Exit.Exit<Result<E, S>, Err>

const settle = <C, E, S, Err>(p: Pending<C, E, S, Err>, answer: Answer<E, S, Err>) => {
  p.settled = true
  return Deferred.done(p.answer, answer)
}

/** A decision of one command: answered without writing, or events to write. */
type Decision<E, Err, S> =
  | { readonly _tag: "Answered"; readonly answer: Answer<E, S, Err> }
  | { readonly _tag: "Writes"; readonly events: ReadonlyArray<E>; readonly encoded: ReadonlyArray<NewEvent> }

const isConflict = (u: unknown): u is EventStore.ConcurrencyConflict => u instanceof EventStore.ConcurrencyConflict
const isInvalidInput = (u: unknown): boolean => u instanceof EventStore.InvalidEvent || u instanceof EventStore.EventTooLarge

/**
 * Decides and appends `batch` until every command in it is answered. Never
 * fails: each command's outcome goes to its own `answer`, and a defect (an
 * `evolve` that throws, say) answers every command still waiting with it.
 */
export const runBatch = <C, E, S, K extends Known<S>, Err, R>(
  m: Machinery<E, S, K, Err, R>,
  batch: ReadonlyArray<Pending<C, E, S, Err>>
): Effect.Effect<void, never, R> =>
  Effect.catchAllCause(attempts(m, batch), (cause) =>
    Effect.forEach(batch, (p) => p.settled ? Effect.void : settle(p, Exit.failCause(cause)), { discard: true }))

const attempts = <C, E, S, K extends Known<S>, Err, R>(
  m: Machinery<E, S, K, Err, R>,
  batch: ReadonlyArray<Pending<C, E, S, Err>>
): Effect.Effect<void, never, R> =>
  Effect.gen(function*() {
    let open = batch
    while (open.length > 0) {
      for (const p of open) {
        p.attempts++
        if (p.attempts > 1) yield* Metric.increment(Metrics.commandRetries)
      }
      const loaded = yield* Effect.exit(m.load)
      if (Exit.isFailure(loaded)) {
        for (const p of open) yield* settle(p, Exit.failCause(loaded.cause))
        return
      }
      const from = loaded.value
      let state = from.state
      let version = from.version
      const writes: Array<{ readonly p: Pending<C, E, S, Err>; readonly events: ReadonlyArray<E>; readonly encoded: ReadonlyArray<NewEvent>; readonly state: S }> = []
      // answers decided after another command's events: final only once those events are stored
      const provisional: Array<readonly [Pending<C, E, S, Err>, Answer<E, S, Err>]> = []
      for (const p of open) {
        const decision: Decision<E, Err, S> = yield* decideOne(m, p, state, version)
        if (decision._tag === "Answered") {
          if (writes.length === 0) yield* settle(p, decision.answer)
          else provisional.push([p, decision.answer])
          continue
        }
        for (const event of decision.events) state = m.evolve(state, event)
        version += decision.encoded.length
        writes.push({ p, events: decision.events, encoded: decision.encoded, state })
      }
      if (writes.length === 0) return
      const all = writes.length === 1 ? writes[0]!.encoded : writes.flatMap((w) => w.encoded)
      yield* Metric.update(Metrics.commandBatchSize, writes.length)
      const appended = yield* Effect.exit(
        m.append(all, from.version).pipe(
          // Stryker disable next-line all: tracing only (span name and attributes), no behaviour
          Effect.withSpan("CommandHandler.appendBatch", {
            captureStackTrace: false,
            attributes: { "chronicle.stream_id": m.streamId, "chronicle.commands": writes.length, "chronicle.event_count": all.length }
          })
        )
      )
      if (Exit.isSuccess(appended)) {
        const result = appended.value
        yield* m.appended(from, state, result.streamVersion, writes.length === 1 ? writes[0]!.events : writes.flatMap((w) => w.events))
        const base = result.streamVersion - all.length
        let offset = 0
        for (const w of writes) {
          const end = offset + w.encoded.length
          yield* settle(w.p, Exit.succeed({
            streamId: m.streamId,
            events: w.events,
            state: w.state,
            streamVersion: base + end,
            globalPositions: result.globalPositions.slice(offset, end)
          }))
          offset = end
        }
        for (const [p, answer] of provisional) yield* settle(p, answer)
        return
      }
      const unsettled = open.filter((p) => !p.settled)
      const failure = Cause.failureOption(appended.cause)
      if (Option.isSome(failure) && isConflict(failure.value)) {
        open = yield* afterConflict(m, unsettled, failure.value)
        continue
      }
      if (Option.isSome(failure) && isInvalidInput(failure.value) && writes.length > 1) {
        // one command's event is refused: each command on its own, so that only its own fails
        for (const p of unsettled) {
          p.attempts--
          yield* runBatch(m, [p])
        }
        return
      }
      for (const p of unsettled) yield* settle(p, Exit.failCause(appended.cause))
      return
    }
  })

/** One command against the state the commands before it left. */
const decideOne = <C, E, S, K extends Known<S>, Err, R>(
  m: Machinery<E, S, K, Err, R>,
  p: Pending<C, E, S, Err>,
  state: S,
  version: number
): Effect.Effect<Decision<E, Err, S>> => {
  if (p.pinned !== undefined && !ExpectedVersion.matches(p.pinned, version)) {
    const conflict = new EventStore.ConcurrencyConflict({ streamId: m.streamId, expected: p.pinned, actual: version })
    return Effect.succeed({ _tag: "Answered", answer: Exit.fail(conflict as Err) })
  }
  return Effect.map(Effect.exit(p.decide(state)), (decided): Decision<E, Err, S> => {
    if (Exit.isFailure(decided)) return { _tag: "Answered", answer: Exit.failCause(decided.cause) }
    const events = decided.value
    if (events.length === 0) {
      return { _tag: "Answered", answer: Exit.succeed({ streamId: m.streamId, events, state, streamVersion: version, globalPositions: [] }) }
    }
    const encoded = m.encode(events, p.metadata)
    if (Either.isLeft(encoded)) return { _tag: "Answered", answer: Exit.fail(encoded.left as Err) }
    return { _tag: "Writes", events, encoded: encoded.right }
  })
}

/**
 * After a conflict: pinned commands fail with it (their caller's view is
 * stale); the others step their own schedules, waiting as long as the
 * slowest, and those whose schedule is done fail with `exhausted`.
 */
const afterConflict = <C, E, S, K extends Known<S>, Err, R>(
  m: Machinery<E, S, K, Err, R>,
  unsettled: ReadonlyArray<Pending<C, E, S, Err>>,
  conflict: EventStore.ConcurrencyConflict
) =>
  Effect.gen(function*() {
    m.conflicted(conflict)
    const retrying: Array<Pending<C, E, S, Err>> = []
    for (const p of unsettled) {
      if (p.pinned === undefined) {
        retrying.push(p)
        continue
      }
      const stale = new EventStore.ConcurrencyConflict({ streamId: m.streamId, expected: p.pinned, actual: conflict.actual })
      yield* settle(p, Exit.fail(stale as Err))
    }
    for (const p of retrying) p.driver ??= yield* Schedule.driver(m.schedule)
    const steps = yield* Effect.forEach(retrying, (p) => Effect.either(p.driver!.next(conflict)), {
      concurrency: retrying.length > 1 ? "unbounded" : 1
    })
    const next: Array<Pending<C, E, S, Err>> = []
    for (let i = 0; i < retrying.length; i++) {
      const p = retrying[i]!
      if (Either.isRight(steps[i]!)) {
        next.push(p)
        continue
      }
      yield* Metric.increment(Metrics.commandRetriesExhausted)
      yield* settle(p, Exit.fail(m.exhausted(p.attempts, conflict)))
    }
    return next
  })

/** Commands queued on one key, and the aggregate the batches of this lane share while it lives. */
interface Lane<P, Session> {
  readonly queue: Array<P>
  readonly session: Session
}

/** The most commands one batch takes. */
const maxBatch = 256

/**
 * The lanes of one handler, by key (store and stream). A command that finds
 * its lane idle runs at once, alone, in its caller's fiber; commands that
 * arrive meanwhile queue, and a daemon fiber takes them in batches until the
 * lane is empty again.
 */
export const makeLanes = <C, E, S, Err, Session>() => {
  type P = Pending<C, E, S, Err>
  type Run = (session: Session, batch: ReadonlyArray<P>) => Effect.Effect<void, never, any>
  const lanes = new Map<string, Lane<P, Session>>()

  const take = (lane: Lane<P, Session>): ReadonlyArray<P> => {
    const batch: Array<P> = []
    while (batch.length < maxBatch && lane.queue.length > 0) {
      const p = lane.queue.shift()!
      if (!p.cancelled) batch.push(p)
    }
    return batch
  }

  const drain = (key: string, lane: Lane<P, Session>, run: Run): Effect.Effect<void, never, any> =>
    Effect.suspend(() => {
      const batch = take(lane)
      if (batch.length === 0) {
        lanes.delete(key)
        return Effect.void
      }
      return Effect.zipRight(run(lane.session, batch), drain(key, lane, run))
    })

  const handOff = (key: string, lane: Lane<P, Session>, run: Run) =>
    Effect.suspend(() => {
      if (lane.queue.length === 0) {
        lanes.delete(key)
        return Effect.void
      }
      return Effect.asVoid(Effect.forkDaemon(drain(key, lane, run)))
    })

  /**
   * Runs `p` through the lane of `key` (its answer is in `p.answer`): at once
   * when the lane is idle, else queued for the lane's daemon.
   */
  const submit = <R>(key: string, p: P, openSession: Effect.Effect<Session, never, R>, run: Run): Effect.Effect<void, never, any> =>
    Effect.suspend(() => {
      const lane = lanes.get(key)
      if (lane !== undefined) {
        lane.queue.push(p)
        return Effect.void
      }
      return Effect.flatMap(openSession, (session) => {
        const raced = lanes.get(key)
        if (raced !== undefined) {
          raced.queue.push(p)
          return Effect.void
        }
        const opened: Lane<P, Session> = { queue: [], session }
        lanes.set(key, opened)
        return Effect.ensuring(run(session, [p]), handOff(key, opened, run))
      })
    })

  return { submit }
}
