import { describe } from "@effect/vitest"
import { appendManyContract } from "../contract/AppendManyContract.js"
import { postgresAvailable, storeLayer } from "../support/postgres.js"

describe.runIf(postgresAvailable())("PostgresEventStore appendMany", () => {
  appendManyContract("postgres, own pool", storeLayer("appendmany"))
  appendManyContract("postgres over a PgClient", storeLayer("appendmany_client", { via: "client" }))
})
