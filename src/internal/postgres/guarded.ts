/**
 * Tagged and conditional appends on PostgreSQL (DCB): one call of the
 * schema's `append_guarded`, with the advisory locks that serialise a
 * condition's check with every writer of a matching event.
 */
import { createHash } from "node:crypto"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type { PendingEvent } from "../../Event.js"
import * as EventStore from "../../EventStore.js"
import type { StreamId } from "../../StreamId.js"
import type { Context } from "./context.js"
import type { Row } from "./statements.js"

/** A conditional append refused on one of its own events: maybe a re-send of a stored batch. */
export class ResentBatch extends Data.TaggedError("ResentBatch")<{ readonly failed: EventStore.AppendConditionFailed }> {}

/** An advisory lock key per tag, for this schema: a signed 64-bit integer. */
const lockKey = (schema: string, tag: string) => createHash("sha256").update(`${schema}\u0000${tag}`).digest().readBigInt64BE(0)

/**
 * A tagged or conditional append, as one call of the schema's
 * `append_guarded` (one round trip, one transaction): shared locks on its
 * events' tags, exclusive locks on one tag of each condition item (a
 * writer of a matching event carries that tag, so it waits for us or we
 * for it), the whole table when an item has no tags, then the condition's
 * check, then the write. Locks are taken in sorted key order, so writers
 * never wait on each other in a cycle; writers on unrelated tags never
 * wait at all; appends without tags or condition do not come here.
 *
 * Returns the request for `append_guarded` (the append's own request, from
 * `write`, with the locks and the condition), or `undefined` for an append
 * that needs no guard.
 */
export const guardedRequest = (
  context: Context,
  events: ReadonlyArray<PendingEvent>,
  condition: EventStore.SettledCondition | undefined,
  write: () => string
): string | undefined => {
  if (condition === undefined && events.every((event) => event.tags.length === 0)) return undefined
  const locks = new Map<bigint, boolean>()
  let wholeTable = false
  for (const item of condition?.failIfEventsMatch.items ?? []) {
    if (item.tags === undefined || item.tags.length === 0) wholeTable = true
    else locks.set(lockKey(context.tables.schema, item.tags[0]!), true)
  }
  for (const event of events) {
    for (const tag of event.tags) {
      const key = lockKey(context.tables.schema, tag)
      if (!locks.has(key)) locks.set(key, false)
    }
  }
  const keys = [...locks.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const items = condition === undefined
    ? null
    : condition.failIfEventsMatch.items.map((item) => ({ types: item.types ?? null, tags: item.tags ?? null }))
  return `${write().slice(0, -1)},"keys":[${keys.join(",")}],"exclusive":${JSON.stringify(keys.map((key) => locks.get(key)!))},"whole":${wholeTable},"q":${
    JSON.stringify(items)
  },"after":${condition?.after ?? 0},"token":${JSON.stringify(condition?.token ?? null)}}`
}

/** The rows the plain append statement would have returned, or the condition's refusal. */
export const appendGuarded = (
  context: Context,
  streamId: StreamId,
  events: ReadonlyArray<PendingEvent>,
  condition: EventStore.SettledCondition | undefined,
  request: string
) =>
  Effect.flatMap(context.execute(context.q.appendGuarded, [request]), (rows): Effect.Effect<ReadonlyArray<Row>, unknown> => {
    const row = rows[0]
    if (row === undefined || row[0] === "refused") return Effect.succeed([])
    if (row[0] === "ok") return Effect.succeed([[row[1], row[2]]])
    const failed = new EventStore.AppendConditionFailed({
      streamId,
      query: condition!.failIfEventsMatch,
      after: condition!.after,
      position: BigInt(row[3] as string)
    })
    // the batch's own event: a re-send of a batch already stored, to be recognised as such
    return Effect.fail(events.some((event) => event.eventId === row[4]) ? new ResentBatch({ failed }) : failed)
  })
