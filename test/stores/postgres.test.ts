import { describe } from "@effect/vitest"
import { eventStoreContract } from "../contract/EventStoreContract.js"
import { streamLifecycleContract } from "../contract/StreamLifecycleContract.js"
import { dcbContract } from "../contract/DcbContract.js"
import { subscriptionContract } from "../contract/SubscriptionContract.js"
import { postgresAvailable, readSideLayer, storeLayer } from "../support/postgres.js"

describe.runIf(postgresAvailable())("PostgresEventStore", () => {
  eventStoreContract("postgres, own pool, prepared statements", storeLayer("contract"))
  eventStoreContract("postgres over a PgClient", storeLayer("contract_client", { via: "client" }))
  streamLifecycleContract("postgres", storeLayer("lifecycle"), { erase: true })
  eventStoreContract("postgres with a 4 KiB event limit", storeLayer("contract_small", { maxEventBytes: 4096 }), {
    maxEventBytes: 4096
  })
  subscriptionContract("postgres, own pool", readSideLayer("subscriptions"))
  subscriptionContract("postgres over a PgClient", readSideLayer("subscriptions_client", { via: "client" }))
  dcbContract("postgres, own pool", storeLayer("dcb"))
  dcbContract("postgres over a PgClient", storeLayer("dcb_client", { via: "client" }))
})
