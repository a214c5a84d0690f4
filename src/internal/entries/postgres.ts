// The runtime of `chronicle/postgres` (its types are those of ../../postgres.ts): checks its optional peers first.
import * as Peers from "../peers.js"

const entry: typeof import("../../postgres.js") = await Peers.load({
  entry: "chronicle/postgres",
  peers: ["@effect/sql", "@effect/sql-pg", "pg"],
  load: () => import("../../postgres.js")
})

export const { PostgresCheckpointStore, PostgresEventStore, PostgresSnapshotStore } = entry
