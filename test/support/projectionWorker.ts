/**
 * A projection process for the PostgreSQL crash tests.
 *
 *   node --import tsx test/support/projectionWorker.ts <databaseUrl> <schema> <run|catchUp> [perEventDelayMs] [member/of]
 *
 * Projects every event of category `crash` into `<schema>.seen` (one row per
 * global position, counting how often it was applied), checkpointing in the
 * same transaction. `run` follows the log until killed; `catchUp` handles
 * everything up to the end of the log and exits.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import { Projection, ProjectionRunner, StreamId } from "../../src/index.js"
import { PostgresCheckpointStore, PostgresEventStore } from "../../src/postgres.js"
import { runWorkerProgram } from "./process.js"

const [databaseUrl, schema, mode, delayArg, partitionArg] = process.argv.slice(2)
const delay = Number(delayArg ?? "0")
const [member, of] = (partitionArg ?? "").split("/").map(Number)
const partition = partitionArg === undefined ? undefined : { member: member!, of: of! }

const projection = Projection.make({
  name: "crash-totals",
  handle: (event) =>
    Effect.gen(function*() {
      if (StreamId.category(event.streamId) !== "crash") return
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(
        `INSERT INTO "${schema}".seen (position, applied) VALUES ($1, 1)
         ON CONFLICT (position) DO UPDATE SET applied = seen.applied + 1`,
        [event.globalPosition.toString()]
      )
      if (delay > 0) yield* Effect.sleep(delay)
    })
})

const stores = PostgresCheckpointStore.layer({ schema: schema! }).pipe(
  Layer.provideMerge(PostgresEventStore.layerFromUrl({ url: databaseUrl!, schema: schema!, maxConnections: 4 }))
)

const program = mode === "catchUp"
  ? ProjectionRunner.catchUp(projection, { batchSize: 50, partition })
  : ProjectionRunner.run(projection, { batchSize: 50, partition })

runWorkerProgram(program.pipe(Effect.provide(stores)))
