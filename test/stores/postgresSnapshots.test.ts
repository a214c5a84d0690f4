import { describe } from "@effect/vitest"
import { Layer } from "effect"
import { PostgresSnapshotStore } from "chronicle/postgres"
import { snapshotStoreContract } from "../contract/SnapshotStoreContract.js"
import { client, dropSchemaAfter, postgresAvailable, uniqueSchema } from "../support/postgres.js"

describe.runIf(postgresAvailable())("PostgresSnapshotStore", () => {
  const schema = uniqueSchema("snapshots")
  snapshotStoreContract(
    "postgres",
    Layer.mergeAll(PostgresSnapshotStore.layer({ schema }), dropSchemaAfter(schema)).pipe(Layer.provide(client())),
    { timedByDatabase: true }
  )
})
