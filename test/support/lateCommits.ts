/**
 * Writers that commit out of order, for the global-order tests on
 * PostgreSQL: each appends to its own streams, and every third append holds
 * its transaction open for a while after inserting, so it commits after
 * transactions with later ids.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { EventStore, StreamId } from "chronicle"
import { events } from "../contract/EventStoreContract.js"
import { pause } from "./time.js"

/** `writers` concurrent writers of `appendsPerWriter` appends (1 to 3 events each) to the category `category`. */
export const lateCommitWriters = (category: string, writers = 12, appendsPerWriter = 20) => {
  const written = new Set<string>()
  let writing = writers
  const writer = (sql: SqlClient.SqlClient, w: number) =>
    Effect.forEach(Array.from({ length: appendsPerWriter }, (_, i) => i), (i) => {
      const batch = events(1 + ((w + i) % 3))
      const streamId = StreamId.unsafeMake(category, `w${w}-s${i % 4}`)
      const append = EventStore.append(streamId, batch, { expectedVersion: "Any" }).pipe(
        Effect.tap(() => batch.forEach((e) => written.add(e.eventId!)))
      )
      // every third append holds its transaction open after inserting: it commits after later xids
      return i % 3 === w % 3
        ? sql.withTransaction(Effect.zipLeft(append, pause(10 + ((w * 7 + i * 13) % 60))))
        : append
    }, { discard: true }).pipe(Effect.ensuring(Effect.sync(() => writing--)))
  return {
    /** The ids of the events appended so far. */
    written,
    /** Whether every writer has finished. */
    done: () => writing === 0,
    /** All the writers, concurrently. */
    run: Effect.flatMap(SqlClient.SqlClient, (sql) =>
      Effect.all(Array.from({ length: writers }, (_, w) => writer(sql, w)), { concurrency: "unbounded", discard: true }))
  }
}
