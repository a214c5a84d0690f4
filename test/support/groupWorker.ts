/**
 * A consumer group member process for the PostgreSQL group tests.
 *
 *   node --import tsx test/support/groupWorker.ts <databaseUrl> <schema> <member> <perEventDelayMs> <partitions> <leaseTtlMs> [batchSize]
 *
 * Counts every event of category `grp` in `<schema>.seen` (one row per event
 * id, with how often it was applied), in the checkpoint's transaction, as
 * member `member` of the projection's group, until killed.
 */
import { Effect, Layer } from "effect"
import { ConsumerGroup } from "../../src/index.js"
import { PostgresCheckpointStore, PostgresConsumerGroupStore, PostgresEventStore } from "../../src/postgres.js"
import { runWorkerProgram } from "./process.js"
import { countingSeen } from "./seenProjection.js"

const [databaseUrl, schema, member, delayArg, partitionsArg, ttlArg, batchArg] = process.argv.slice(2)
const delay = Number(delayArg ?? "0")

const projection = countingSeen(schema!, "grp", delay)

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
