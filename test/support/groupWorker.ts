/**
 * A consumer group member process for the PostgreSQL group tests.
 *
 *   node --import tsx test/support/groupWorker.ts <databaseUrl> <schema> <member> <perEventDelayMs> <partitions> <leaseTtlMs> [batchSize]
 *
 * Counts every event of category `grp` in `<schema>.seen` (one row per event
 * id, with how often it was applied), in the checkpoint's transaction, as
 * member `member` of the projection's group, until killed.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import { ConsumerGroup, Projection, StreamId } from "../../src/index.js"
import { PostgresCheckpointStore, PostgresConsumerGroupStore, PostgresEventStore } from "../../src/postgres.js"
import { runWorkerProgram } from "./process.js"

const [databaseUrl, schema, member, delayArg, partitionsArg, ttlArg, batchArg] = process.argv.slice(2)
const delay = Number(delayArg ?? "0")

const projection = Projection.make({
  name: "group-seen",
  handle: (event) =>
    Effect.gen(function*() {
      if (StreamId.category(event.streamId) !== "grp") return
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(
        `INSERT INTO "${schema}".seen (event_id, applied) VALUES ($1, 1)
         ON CONFLICT (event_id) DO UPDATE SET applied = seen.applied + 1`,
        [event.eventId]
      )
      if (delay > 0) yield* Effect.sleep(delay)
    })
})

const stores = Layer.mergeAll(PostgresCheckpointStore.layer({ schema: schema! }), PostgresConsumerGroupStore.layer({ schema: schema! })).pipe(
  Layer.provideMerge(PostgresEventStore.layerFromUrl({ url: databaseUrl!, schema: schema!, maxConnections: 6 }))
)

runWorkerProgram(
  ConsumerGroup.run(projection, {
    member: member!,
    batchSize: Number(batchArg ?? "50"),
    partitions: Number(partitionsArg ?? "8"),
    leaseTtl: Number(ttlArg ?? "2000"),
    pollInterval: "200 millis"
  }).pipe(Effect.provide(stores))
)
