import { describe } from "@effect/vitest"
import { eventStoreContract } from "../contract/EventStoreContract.js"
import { postgresAvailable, storeLayer } from "../support/postgres.js"

describe.runIf(postgresAvailable())("PostgresEventStore", () => {
  eventStoreContract("postgres", storeLayer("contract"))
  eventStoreContract("postgres with a 4 KiB event limit", storeLayer("contract_small", { maxEventBytes: 4096 }), {
    maxEventBytes: 4096
  })
})
