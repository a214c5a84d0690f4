/**
 * A blue-green rebuild on PostgreSQL. Version 1 of a balances projection has
 * a bug (it ignores withdrawals); readers use it through the view
 * `balances`. Version 2 fills its own table from position 0 while version 1
 * keeps running and serving live; once version 2 has caught up,
 * `ProjectionRunner.replace` swaps the view onto its table and drops
 * version 1 (its table emptied, its checkpoint removed: its runner stops
 * with `CheckpointMoved`). Then version 2 runs live.
 *
 * Run: npm run example:blue-green   (PostgreSQL at DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/test; works in schema `example_blue_green`)
 */
import { SqlClient } from "@effect/sql"
import { Effect, Fiber, Layer, Schedule, Stream } from "effect"
import pg from "pg"
import type { Event } from "chronicle"
import { CommandHandler, EventStore, Projection, ProjectionRunner, StreamId } from "chronicle"
import { PostgresCheckpointStore, PostgresEventStore } from "chronicle/postgres"
import { AccountEvents, BankAccount } from "./BankAccount.js"

const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const schema = "example_blue_green"
const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents })

/** The balances projection at `version`: its own table, and whether it counts withdrawals. */
const balances = (version: number, countsWithdrawals: boolean) => {
  const table = `${schema}.balances_v${version}`
  return Projection.make({
    name: "balances",
    version,
    eventTypes: ["MoneyDeposited", "MoneyWithdrawn"],
    handle: (event: Event.StoredEvent) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const amount = (event.data as { readonly amount: number }).amount
        const change = event.type === "MoneyDeposited" ? amount : countsWithdrawals ? -amount : 0
        yield* sql.unsafe(
          `INSERT INTO ${table} (account, balance) VALUES ($1, $2)
           ON CONFLICT (account) DO UPDATE SET balance = ${table}.balance + EXCLUDED.balance`,
          [event.streamId, change]
        )
      }),
    reset: Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`TRUNCATE ${table}`))
  })
}

const V1 = balances(1, false)
const V2 = balances(2, true)

const readBalances = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql.unsafe<{ account: string; balance: number }>(`SELECT account, balance FROM ${schema}.balances ORDER BY account`)
)

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const version of [1, 2]) {
    yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${schema}.balances_v${version} (account text PRIMARY KEY, balance bigint NOT NULL)`)
  }
  yield* sql.unsafe(`CREATE OR REPLACE VIEW ${schema}.balances AS SELECT * FROM ${schema}.balances_v1`)

  const owners = ["Ada", "Grace", "Edsger"]
  const ids = owners.map((owner) => StreamId.unsafeMake("account", owner.toLowerCase()))
  for (const [i, account] of ids.entries()) {
    yield* accounts.handle(account, { _tag: "OpenAccount", owner: owners[i]!, currency: "EUR" })
    yield* accounts.handle(account, { _tag: "Deposit", amount: 100_00 * (i + 1) })
    yield* accounts.handle(account, { _tag: "Withdraw", amount: 25_00 })
  }

  // version 1 serves live
  const blue = yield* Effect.fork(ProjectionRunner.run(V1, { pollInterval: "200 millis" }))
  yield* Effect.repeat(readBalances, { until: (rows) => rows.length === owners.length, schedule: Schedule.spaced("50 millis") })
  console.log("Serving version 1 (ignores withdrawals):")
  for (const row of yield* readBalances) console.log(`  ${row.account}: ${row.balance}`)

  // version 2 catches up beside it; meanwhile a new deposit arrives, and version 1 still takes it
  yield* accounts.handle(ids[0]!, { _tag: "Deposit", amount: 1_00 })
  const reached = yield* ProjectionRunner.replace(V1, V2, {
    // readers move to version 2's table; version 1's runner is stopped (had it gone on, its next save would fail)
    swap: Effect.zipRight(
      sql.unsafe(`CREATE OR REPLACE VIEW ${schema}.balances AS SELECT * FROM ${schema}.balances_v2`),
      Fiber.interrupt(blue)
    ),
    dropOld: true
  })
  console.log(`Version 2 caught up to position ${reached}; the view now reads its table:`)
  for (const row of yield* readBalances) console.log(`  ${row.account}: ${row.balance}`)

  const green = yield* Effect.fork(ProjectionRunner.run(V2, { pollInterval: "200 millis" }))
  yield* accounts.handle(ids[1]!, { _tag: "Withdraw", amount: 10_00 })
  const expected = 200_00 - 25_00 - 10_00
  yield* Effect.repeat(readBalances, {
    until: (rows) => rows.some((row) => row.account === String(ids[1]) && Number(row.balance) === expected),
    schedule: Schedule.spaced("50 millis")
  })
  console.log(`Version 2 live: ${ids[1]} is ${expected} after one more withdrawal.`)
  yield* Fiber.interrupt(green)
  const events = yield* EventStore.readAll().pipe(Stream.runCount)
  console.log(`${events} events in ${schema}.`)
})

const Stores = PostgresCheckpointStore.layer({ schema }).pipe(
  Layer.provideMerge(PostgresEventStore.layerFromUrl({ url, schema, maxConnections: 4 }))
)

/** Each run starts from an empty schema. */
const fresh = Effect.promise(async () => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  await client.end()
})

Effect.zipRight(fresh, program.pipe(Effect.provide(Stores))).pipe(Effect.runPromise).catch((error) => {
  console.error(error)
  process.exit(1)
})
