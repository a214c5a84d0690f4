import { describe } from "@effect/vitest"
import { eventStoreContract } from "../contract/EventStoreContract.js"
import { streamLifecycleContract } from "../contract/StreamLifecycleContract.js"
import { dcbContract } from "../contract/DcbContract.js"
import { subscriptionContract } from "../contract/SubscriptionContract.js"
import { postgresAvailable, readSideLayer, storeLayer } from "../support/postgres.js"

// PostgreSQL readAll/query bound: pending horizon rewrite (the pg_snapshot_xmin SQL is being changed
// elsewhere); until then the "readAll/query returns what was committed when it started" cases are it.fails.
const pendingHorizonBound = true

describe.runIf(postgresAvailable())("PostgresEventStore", () => {
  eventStoreContract("postgres, own pool, prepared statements", storeLayer("contract"), { pendingHorizonBound })
  eventStoreContract("postgres over a PgClient", storeLayer("contract_client", { via: "client" }), { pendingHorizonBound })
  streamLifecycleContract("postgres", storeLayer("lifecycle"), { erase: true })
  eventStoreContract("postgres with a 4 KiB event limit", storeLayer("contract_small", { maxEventBytes: 4096 }), {
    maxEventBytes: 4096,
    pendingHorizonBound
  })
  subscriptionContract("postgres, own pool", readSideLayer("subscriptions"))
  subscriptionContract("postgres over a PgClient", readSideLayer("subscriptions_client", { via: "client" }))
  dcbContract("postgres, own pool", storeLayer("dcb"), { pendingHorizonBound })
  dcbContract("postgres over a PgClient", storeLayer("dcb_client", { via: "client" }), { pendingHorizonBound })
})
