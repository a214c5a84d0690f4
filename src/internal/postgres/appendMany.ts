/**
 * `appendMany` on PostgreSQL: every append of the call (and its tags' and
 * condition's locks) in one call of the schema's `append_many`: one round
 * trip, one transaction, the stream locks taken in one sorted order (two
 * calls over the same streams in different orders never deadlock), positions
 * taken after the locks. A refusal writes nothing; it is explained by where
 * the call's event ids are and what the streams hold.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as EventStore from "../../EventStore.js"
import { type Location, planAppendMany } from "../appendPlan.js"
import { encodeBatch, isUniqueViolation, maxBatch, modeOf } from "./appending.js"
import type { Context } from "./context.js"
import { errorCode, storeError } from "./errors.js"
import { guardedRequest } from "./guarded.js"
import { json, type Row, statement } from "./statements.js"

/** The calls' streams as they are now, and where their event ids are stored: the plan of a refused call. */
const explain = (context: Context, appends: ReadonlyArray<EventStore.PendingAppend>) =>
  Effect.map(
    Effect.forEach(appends, ({ events, streamId }) =>
      context.run("appendMany", context.q.locate, [streamId, JSON.stringify(events.map((e) => e.eventId))])),
    (rows) => {
      const versions = new Map<string, number>()
      const deleted = new Set<string>()
      const located = new Map<string, Location>()
      rows.forEach(([row], i) => {
        const streamId = appends[i]!.streamId
        versions.set(streamId, row?.[0] == null ? 0 : Number(row[0]))
        if (row?.[1] === true) deleted.add(streamId)
        for (const entry of (json(row?.[2]) ?? []) as ReadonlyArray<{ id: string; s: string; v: number; p: string }>) {
          located.set(entry.id, { streamId: entry.s as Location["streamId"], streamVersion: Number(entry.v), globalPosition: BigInt(entry.p) })
        }
      })
      return planAppendMany(appends, (s) => versions.get(s) ?? 0, (s) => deleted.has(s), (id) => located.get(id))
    }
  )

/** The store's `appendMany`; `notify` as the store's statements do. */
export const makeAppendMany = (context: Context, notify: boolean) => {
  const st = statement(
    `SELECT outcome, i, version::text, base::text, conflict::text, conflict_id::text${
      notify ? `, CASE WHEN outcome = 'ok' AND base IS NOT NULL THEN pg_notify('${context.tables.channel}', 'append') END` : ""
    } FROM ${context.tables.schema}.append_many($1::json)`
  )
  return (
    appends: ReadonlyArray<EventStore.PendingAppend>,
    condition: EventStore.SettledCondition | undefined
  ): Effect.Effect<ReadonlyArray<EventStore.AppendResult>, EventStore.AppendError> =>
    Effect.gen(function*() {
      const total = appends.reduce((sum, append) => sum + append.events.length, 0)
      if (total > maxBatch) {
        return yield* new EventStore.InvalidEvent({
          streamId: appends[0]!.streamId,
          index: 0,
          reason: `an appendMany call carries at most ${maxBatch} events in all; split it`
        })
      }
      const parts: Array<string> = []
      for (let i = 0; i < appends.length; i++) {
        const { events, expectedVersion, streamId } = appends[i]!
        const batch = yield* encodeBatch(context, streamId, events)
        const mode = modeOf(expectedVersion)
        parts.push(
          `{"i":${i},"s":${JSON.stringify(streamId)},"m":"${mode}","e":${mode === "exact" ? expectedVersion : "null"},"n":${events.length},"ev":${batch}}`
        )
      }
      const write = () => `{"appends":[${parts.join(",")}]}`
      const request = guardedRequest(context, appends.flatMap((append) => append.events), condition, write) ??
        `${write().slice(0, -1)},"keys":[],"exclusive":[],"whole":false,"q":null,"after":0,"token":null}`
      const ownIds = new Set<string>(appends.flatMap((append) => append.events.map((event) => event.eventId)))
      for (let attempt = 1;; attempt++) {
        const outcome = yield* Effect.either(context.execute(st, [request]))
        if (Either.isLeft(outcome)) {
          if (errorCode(outcome.left) === "40001") return yield* new EventStore.TransactionConflict({ streamId: appends[0]!.streamId })
          if (!isUniqueViolation(outcome.left)) return yield* storeError("appendMany", outcome.left)
        }
        const rows: ReadonlyArray<Row> = Either.isRight(outcome) ? outcome.right : []
        if (rows.length > 0 && rows.every((row) => row[0] === "ok")) {
          return rows.map((row): EventStore.AppendResult => {
            const { events, streamId } = appends[Number(row[1])]!
            const base = row[3] == null ? 0n : BigInt(row[3] as string)
            return { streamId, streamVersion: Number(row[2]), globalPositions: events.map((_, k) => base + BigInt(k + 1)) }
          })
        }
        const refusal = rows.find((row) => row[0] === "condition")
        const failed = refusal === undefined ? undefined : new EventStore.AppendConditionFailed({
          streamId: appends[0]!.streamId,
          query: condition!.failIfEventsMatch,
          after: condition!.after,
          position: BigInt(refusal[4] as string)
        })
        // a condition tripped by another's event needs no explaining; one tripped by the call's own may be a re-send
        if (failed !== undefined && !ownIds.has(refusal![5] as string)) return yield* failed
        const plan = yield* explain(context, appends)
        if (Either.isLeft(plan)) return yield* plan.left
        if (plan.right._tag === "AlreadyStored") return plan.right.results
        if (failed !== undefined) return yield* failed
        if (attempt >= 5) {
          return yield* new EventStore.StoreError({
            operation: "appendMany",
            reason: "the call kept racing with concurrent writers without a decision; try again"
          })
        }
      }
    })
}
