/**
 * One worker of bench/projection-scale.ts: a transactional projection on
 * PostgreSQL writing every event id into `<schema>.seen` (how often applied,
 * when sent, when applied) in the checkpoint's transaction, one statement per
 * batch; the streams of partition `member/of`.
 *
 *   node --import tsx bench/support/scaleWorker.ts <databaseUrl> <schema> <projection> <member/of> <batchSize>
 */
import { SqlClient } from "@effect/sql"
import { Console, Effect, Layer } from "effect"
import { Projection, ProjectionRunner } from "../../src/index.js"
import { PostgresCheckpointStore, PostgresEventStore } from "../../src/postgres.js"

const [databaseUrl, schema, name, partitionArg, batchArg] = process.argv.slice(2)
const [member, of] = partitionArg!.split("/").map(Number)

const projection = Projection.batched({
  name: name!,
  handleBatch: (events) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(
        `INSERT INTO "${schema}".seen (event_id, applied, sent_at, applied_at)
         SELECT id, 1, to_timestamp(sent / 1000.0), clock_timestamp()
         FROM unnest($1::uuid[], $2::float8[]) AS x(id, sent)
         ON CONFLICT (event_id) DO UPDATE SET applied = seen.applied + 1`,
        [
          events.map((event) => event.eventId),
          events.map((event) => typeof event.metadata.sentAt === "number" ? event.metadata.sentAt : null)
        ]
      )
    })
})

const stores = PostgresCheckpointStore.layer({ schema: schema! }).pipe(
  Layer.provideMerge(PostgresEventStore.layerFromUrl({ url: databaseUrl!, schema: schema!, maxConnections: 2, migrate: false }))
)

Effect.gen(function*() {
  yield* Console.log("started")
  yield* ProjectionRunner.run(projection, { batchSize: Number(batchArg ?? 500), partition: { member: member!, of: of! } })
}).pipe(Effect.provide(stores), Effect.runPromise).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
