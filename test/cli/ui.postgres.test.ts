/**
 * `chronicle ui` over a PostgreSQL store (a schema of its own, dropped
 * afterwards), in headless Chromium: the streams, the projections with their
 * checkpoints and lag, and an append showing up live (LISTEN/NOTIFY).
 */
import { Effect, Layer } from "effect"
import Pg from "pg"
import type { Browser } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { CheckpointStore, type EventStore } from "chronicle"
import { PostgresCheckpointStore, PostgresEventStore } from "chronicle/postgres"
import { databaseUrl, postgresAvailable, uniqueSchema } from "../support/postgres.js"
import { accounts, ada, allEvents, hasStackTrace, seedAccounts } from "./support.js"
import type { Console } from "./uiSupport.js"
import { haveChromium, launch, open, problemsOf, shot, startUi, texts } from "./uiSupport.js"

const schema = uniqueSchema("cli_ui")
const storeUrl = (() => {
  const url = new URL(databaseUrl)
  url.searchParams.set("schema", schema)
  return url.toString()
})()

const withStore = <A, E>(effect: Effect.Effect<A, E, EventStore.EventStore | CheckpointStore.CheckpointStore>): Promise<A> =>
  Effect.runPromise(effect.pipe(Effect.provide(
    PostgresCheckpointStore.layer({ schema }).pipe(Layer.provideMerge(PostgresEventStore.layerFromUrl({ url: databaseUrl, schema, maxConnections: 2 })))
  )))

// off CI, runs only where PostgreSQL and Chromium are; under CI=true a missing one fails (test/support, uiSupport.ts)
describe.runIf(postgresAvailable() && haveChromium)("chronicle ui over PostgreSQL, in Chromium", { timeout: 180_000 }, () => {
  let browser: Browser
  let ui: Console
  let fourth: bigint

  beforeAll(async () => {
    fourth = await withStore(Effect.gen(function*() {
      yield* seedAccounts
      const events = yield* allEvents
      const checkpoints = yield* CheckpointStore.CheckpointStore
      yield* checkpoints.save("balances", events[3]!.globalPosition)
      return events[3]!.globalPosition
    }))
    ;[ui, browser] = await Promise.all([startUi(["--store", storeUrl, "--decider", "examples/BankAccount.ts"]), launch()])
  })

  afterAll(async () => {
    await browser?.close()
    if (ui !== undefined) {
      expect(await ui.stop()).toBe(0)
      expect(hasStackTrace(ui.output().stderr)).toBe(false)
    }
    const pool = new Pg.Pool({ connectionString: databaseUrl, max: 1 })
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await pool.end()
  })

  it("shows the streams, the projections with their lag, and an append live", async () => {
    const page = await open(browser, ui.url)
    await expect.poll(() => texts(page, "stream-counts")).toEqual(["2 streams · 6 events in the store"])
    expect(await texts(page, "store-label")).toEqual([expect.stringMatching(new RegExp(`^postgres://postgres@127\\.0\\.0\\.1:5432/test\\?schema=${schema}$`))])
    await page.goto(`${ui.url}#/projections`)
    await expect.poll(() => page.getByTestId("projection-row").allInnerTexts()).toEqual([`balances\t${fourth}\t2`])
    await page.goto(`${ui.url}#/live`)
    await expect.poll(() => texts(page, "live-status")).toEqual(["live"])
    expect(await page.getByTestId("live-event").count()).toBe(6)
    await withStore(accounts.handle(ada, { _tag: "Deposit", amount: 7_77 }))
    await expect.poll(() => page.getByTestId("live-event").count(), { timeout: 60_000 }).toBe(7)
    expect(await page.getByTestId("live-event").first().getByTestId("event-data").textContent()).toBe(JSON.stringify({ amount: 7_77 }, null, 2))
    await shot(page, "postgres-live.png")
    await page.goto(`${ui.url}#/replay/account-ada/5`)
    await expect.poll(() => texts(page, "replay-title")).toEqual(["State after version 5 of 5 through BankAccount (AccountEvents)"])
    expect(JSON.parse((await page.getByTestId("state").textContent())!)).toMatchObject({ balance: 82_77 })
    expect(problemsOf(page)).toEqual([])
    await page.close()
  })
})
