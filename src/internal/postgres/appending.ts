/**
 * Appends on PostgreSQL: the batch encoded as one `json` parameter, sent as
 * one call of the schema's functions (alone, in a group commit, or guarded
 * for DCB), and a refusal explained (a re-send, a conflict, a duplicate id,
 * a deleted stream, or a race to try again).
 */
import { SqlClient } from "@effect/sql"
import * as Services from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { PendingEvent } from "../../Event.js"
import * as EventStore from "../../EventStore.js"
import * as ExpectedVersion from "../../ExpectedVersion.js"
import type { StreamId } from "../../StreamId.js"
import { type AppendPlan, type Location, planAppend } from "../appendPlan.js"
import { serializeEvent } from "../serialize.js"
import type { Context } from "./context.js"
import { errorCode, storeError, violatedConstraint } from "./errors.js"
import { groupableEvents, makeGroupCommit } from "./groupCommit.js"
import { appendGuarded, guardedRequest, ResentBatch } from "./guarded.js"
import { json, type Row } from "./statements.js"

/** Most events one append may carry: the batch index takes 16 bits of the position. */
/** How the schema's append functions take an expected version. */
export const modeOf = (expected: ExpectedVersion.ExpectedVersion) =>
  expected === ExpectedVersion.Any
    ? "any"
    : expected === ExpectedVersion.StreamExists
    ? "exists"
    : expected === ExpectedVersion.NoStream || expected === 0
    ? "nostream"
    : "exact"

export const maxBatch = 0xffff

/** The batch as the `json` array the schema's functions take, or the first event that cannot be stored. */
export const encodeBatch = (
  context: Context,
  streamId: StreamId,
  events: ReadonlyArray<PendingEvent>
): Either.Either<string, EventStore.EventTooLarge | EventStore.InvalidEvent> => {
  const parts: Array<string> = []
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!
    const serialized = serializeEvent(streamId, i, event, context.maxBytes)
    if (Either.isLeft(serialized)) return Either.left(serialized.left)
    parts.push(
      `{"event_id":"${event.eventId}","type":${JSON.stringify(event.type)},"schema_version":${event.schemaVersion},"data":${serialized.right.data},"metadata":${serialized.right.metadata}${
        event.tags.length === 0 ? "" : `,"tags":${JSON.stringify(event.tags)}`
      }}`
    )
  }
  return Either.right(`[${parts.join(",")}]`)
}

/**
 * A refused write explained by the stream's version, whether it is deleted,
 * and where the batch's stored ids are (`found`, a `json` array): a re-send,
 * a conflict, a duplicate, or a race to try again.
 */
const planRefusal = (
  streamId: StreamId,
  events: ReadonlyArray<PendingEvent>,
  expected: ExpectedVersion.ExpectedVersion,
  refusal: { readonly version: unknown; readonly deleted: unknown; readonly found: unknown }
): Either.Either<AppendPlan, EventStore.ConcurrencyConflict | EventStore.DuplicateEventId | EventStore.StreamDeleted> => {
  const deleted = refusal.deleted === true
  const found = (json(refusal.found) ?? []) as ReadonlyArray<{ id: string; s: string; v: number; p: string }>
  const located = new Map<string, Location>()
  for (const entry of found) {
    located.set(entry.id, {
      streamId: entry.s as StreamId,
      streamVersion: Number(entry.v),
      globalPosition: BigInt(entry.p)
    })
  }
  const version = refusal.version == null ? 0 : Number(refusal.version)
  const plan = planAppend(streamId, events, expected, version, (id) => located.get(id))
  const alreadyStored = Either.isRight(plan) && plan.right._tag === "AlreadyStored"
  return deleted && !alreadyStored ? Either.left(new EventStore.StreamDeleted({ streamId })) : plan
}

/** After a refused or failed write the append's own call did not explain: ask the store. */
const explainRefusal = (
  context: Context,
  streamId: StreamId,
  events: ReadonlyArray<PendingEvent>,
  expected: ExpectedVersion.ExpectedVersion
) =>
  Effect.map(
    context.run("append", context.q.locate, [streamId, JSON.stringify(events.map((e) => e.eventId))]),
    ([row]) => planRefusal(streamId, events, expected, { version: row?.[0], deleted: row?.[1], found: row?.[2] })
  )

export const isUniqueViolation = (error: unknown) => {
  if (errorCode(error) !== "23505") return false
  const constraint = violatedConstraint(error)
  return constraint === undefined || constraint.endsWith("event_id_key") || constraint.endsWith("stream_version_key")
}

/** A refusal or failure of the append's own call, decided: an answer, an error, or `undefined` to try again. */
const decideOutcome = (
  context: Context,
  streamId: StreamId,
  events: ReadonlyArray<PendingEvent>,
  expected: ExpectedVersion.ExpectedVersion,
  outcome: Either.Either<ReadonlyArray<Row>, unknown>
): Effect.Effect<EventStore.AppendResult | undefined, EventStore.AppendError> => {
  if (Either.isLeft(outcome)) {
    const error = outcome.left
    if (error instanceof EventStore.AppendConditionFailed) return Effect.fail(error)
    if (error instanceof ResentBatch) {
      // a re-send of a batch already stored matches its own condition: it succeeds again
      return Effect.flatMap(explainRefusal(context, streamId, events, expected), (plan): Effect.Effect<
        EventStore.AppendResult,
        EventStore.AppendConditionFailed | EventStore.DuplicateEventId
      > =>
        Either.isRight(plan) && plan.right._tag === "AlreadyStored"
          ? Effect.succeed(plan.right.result)
          : Either.isLeft(plan) && plan.left._tag === "DuplicateEventId"
          ? Effect.fail(plan.left)
          : Effect.fail(error.failed))
    }
    if (errorCode(error) === "40001") return Effect.fail(new EventStore.TransactionConflict({ streamId }))
    if (!isUniqueViolation(error)) return Effect.fail(storeError("append", error))
  }
  const row = Either.isRight(outcome) ? outcome.right[0] : undefined
  const settle = (plan: ReturnType<typeof planRefusal>) =>
    // a stored id decides the refusal, even of a conditional append that its own stored events tripped
    Either.isLeft(plan)
      ? Effect.fail(plan.left)
      : Effect.succeed(plan.right._tag === "AlreadyStored" ? plan.right.result : undefined)
  // a refusal the append's own call explained (the stream after its locks) needs no second round trip
  return row !== undefined
    ? settle(planRefusal(streamId, events, expected, { version: row[0], deleted: row[2], found: row[3] }))
    : Effect.flatMap(explainRefusal(context, streamId, events, expected), settle)
}

/** The store's `append`; an append that wrote wakes subscriptions at its commit (its statement notifies). */
export const makeAppend = (context: Context) => {
  const { currentVersion, execute, onPool, pool, q } = context
  const grouped = makeGroupCommit({ execute: onPool ?? execute, appendGroup: q.appendGroup, maxBatch })

  return (
    streamId: StreamId,
    events: ReadonlyArray<PendingEvent>,
    expected: ExpectedVersion.ExpectedVersion,
    condition: EventStore.SettledCondition | undefined
  ): Effect.Effect<EventStore.AppendResult, EventStore.AppendError> => {
    if (events.length === 0) {
      return Effect.flatMap(currentVersion(streamId), (version) =>
        ExpectedVersion.matches(expected, version)
          ? Effect.succeed({ streamId, streamVersion: version, globalPositions: [] })
          : Effect.fail(new EventStore.ConcurrencyConflict({ streamId, expected, actual: version })))
    }
    if (events.length > maxBatch) {
      return Effect.fail(
        new EventStore.InvalidEvent({ streamId, index: maxBatch, reason: `an append carries at most ${maxBatch} events; split the batch` })
      )
    }
    const encoded = encodeBatch(context, streamId, events)
    if (Either.isLeft(encoded)) return Effect.fail(encoded.left)
    const batch = encoded.right
    const mode = modeOf(expected)
    const st = q.appendStream
    const params = [streamId, mode, mode === "exact" ? expected : null, events.length, batch]
    /** The append as a request of the schema's functions; built only for a group or a guarded append. */
    const write = () =>
      `{"s":${JSON.stringify(streamId)},"m":"${mode}","e":${mode === "exact" ? expected : "null"},"n":${events.length},"ev":${batch}}`
    const guarded = guardedRequest(context, events, condition, write)
    const attemptAppend: Effect.Effect<ReadonlyArray<Row>, unknown> = guarded !== undefined
      ? appendGuarded(context, streamId, events, condition, guarded)
      : pool === undefined
      ? execute(st, params)
      : Effect.contextWithEffect((services: Services.Context<never>) =>
        // large batches gain more from running on many connections at once than from sharing a commit
        Option.isSome(Services.getOption(services, SqlClient.TransactionConnection)) || events.length > groupableEvents
          ? execute(st, params)
          : grouped(st, params, write, events.length)
      )
    const succeeded = (row: Row): EventStore.AppendResult => {
      const base = BigInt(row[1] as string)
      return { streamId, streamVersion: Number(row[0]), globalPositions: events.map((_, i) => base + BigInt(i + 1)) }
    }
    const attempt = (n: number): Effect.Effect<EventStore.AppendResult, EventStore.AppendError> =>
      Effect.matchEffect(attemptAppend, {
        onSuccess: (rows) => {
          const row = rows[0]
          return row !== undefined && row[1] != null ? Effect.succeed(succeeded(row)) : retry(n, Either.right(rows))
        },
        onFailure: (error) => retry(n, Either.left(error))
      })
    const retry = (n: number, outcome: Either.Either<ReadonlyArray<Row>, unknown>) =>
      Effect.flatMap(decideOutcome(context, streamId, events, expected, outcome), (result) =>
        result !== undefined
          ? Effect.succeed(result)
          : n >= 5
          ? Effect.fail(
            new EventStore.StoreError({
              operation: "append",
              reason: "the append kept racing with concurrent writers without a decision; try again"
            })
          )
          : attempt(n + 1))
    return attempt(1)
  }
}
