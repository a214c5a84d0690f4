/**
 * Stream deletion on PostgreSQL: a tombstone on the stream's row (and its
 * events removed when erasing), under the locks every writer takes.
 */
import * as Effect from "effect/Effect"
import * as EventStore from "../../EventStore.js"
import * as ExpectedVersion from "../../ExpectedVersion.js"
import type { StreamId } from "../../StreamId.js"
import type { Context } from "./context.js"
import { storeError } from "./errors.js"

/** The store's `deleteStream`: in one transaction, under the stream row's lock: check the version, tombstone, erase if asked. */
export const deleteStream = (context: Context) => (streamId: StreamId, expected: ExpectedVersion.ExpectedVersion, erase: boolean) => {
  const { q, run, sql } = context
  return sql.withTransaction(Effect.gen(function*() {
    // the stream's lock first, as every writer takes it: no cycle with an append waiting on the row
    yield* run("deleteStream", q.lockStreamKey, [streamId])
    yield* run("deleteStream", q.ensureStream, [streamId])
    const [row] = yield* run("deleteStream", q.lockStream, [streamId])
    const version = Number(row?.[0] ?? 0)
    if (row?.[1] !== true) {
      if (!ExpectedVersion.matches(expected, version)) {
        return yield* new EventStore.ConcurrencyConflict({ streamId, expected, actual: version })
      }
      yield* run("deleteStream", q.tombstone, [streamId])
    }
    if (erase) yield* run("deleteStream", q.eraseEvents, [streamId])
  })).pipe(Effect.mapError((error) => error instanceof EventStore.ConcurrencyConflict ? error : storeError("deleteStream", error)))
}

/** The store's `isDeleted`: whether the stream carries a tombstone. */
export const isDeleted = (context: Context) => (streamId: StreamId) =>
  Effect.map(context.run("isDeleted", context.q.isDeleted, [streamId]), (rows) => rows[0]?.[0] === true)
