/**
 * The read model of the consumer group tests: every event of `category`
 * counted in `<schema>.seen` by event id (how often it was applied), in the
 * checkpoint's transaction.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { Projection, StreamId } from "../../src/index.js"

export const countingSeen = (schema: string, category: string, perEventDelayMs = 0) =>
  Projection.make({
    name: "group-seen",
    handle: (event) =>
      Effect.gen(function*() {
        if (StreamId.category(event.streamId) !== category) return
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(
          `INSERT INTO "${schema}".seen (event_id, applied) VALUES ($1, 1)
           ON CONFLICT (event_id) DO UPDATE SET applied = seen.applied + 1`,
          [event.eventId]
        )
        if (perEventDelayMs > 0) yield* Effect.sleep(perEventDelayMs)
      })
  })
