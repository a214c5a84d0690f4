/**
 * `chronicle ui` as a process over a filesystem store, driven in a real
 * headless Chromium (Debian's `chromium` through playwright-core). Screenshots
 * go to test-artifacts/ui/; with UPDATE_SCREENSHOTS=1 the stream page's also
 * replaces docs/ui.png, the README's.
 */
import { copyFileSync, existsSync, mkdirSync, rmSync } from "node:fs"
import { get as httpGet } from "node:http"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import type { Browser } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { CheckpointStore, FileCheckpointStore, StreamId } from "chronicle"
import { tempDirectory } from "../support/filesystem.js"
import { accounts, ada, cli, hasStackTrace, root, seedAccounts, stripAnsi, withFileStore } from "./support.js"
import type { Console } from "./uiSupport.js"
import { artifacts, haveChromium, launch, open, problemsOf, shot, startUi, texts } from "./uiSupport.js"

const grace = StreamId.unsafeMake("account", "grace")

const directories: Array<string> = []
const consoles: Array<Console> = []
let browser: Browser | undefined
let main: Console
let directory: string

beforeAll(async () => {
  if (!haveChromium) return
  mkdirSync(artifacts, { recursive: true })
  directory = tempDirectory("cli-ui")
  directories.push(directory)
  await withFileStore(directory, Effect.gen(function*() {
    yield* seedAccounts
    yield* accounts.handle(grace, { _tag: "OpenAccount", owner: "Grace", currency: "USD" })
    for (let i = 1; i <= 11; i++) yield* accounts.handle(grace, { _tag: "Deposit", amount: i * 100 })
  }))
  await Effect.runPromise(
    Effect.flatMap(CheckpointStore.CheckpointStore, (checkpoints) => checkpoints.save("balances", 15n)).pipe(
      Effect.provide(FileCheckpointStore.layer({ directory }).pipe(Layer.provide(NodeContext.layer)))
    )
  )
  ;[main, browser] = await Promise.all([
    startUi(["--store", `file:${directory}`, "--decider", "examples/BankAccount.ts", "--poll-ms", "100"]),
    launch()
  ])
  consoles.push(main)
})

afterAll(async () => {
  await browser?.close()
  for (const running of consoles) {
    expect(await running.stop()).toBe(0)
    expect(hasStackTrace(running.output().stderr)).toBe(false)
  }
  for (const path of directories) rmSync(path, { recursive: true, force: true })
})

// skipped only off CI, on a machine without Chromium: uiSupport.ts throws under CI=true when it is missing
describe.skipIf(!haveChromium)("chronicle ui in Chromium", { timeout: 180_000 }, () => {
  it("the stream list shows every stream with its counts; search narrows it", async () => {
    const page = await open(browser!, main.url)
    await expect.poll(() => texts(page, "stream-counts")).toEqual(["3 streams · 18 events in the store"])
    expect((await page.getByTestId("stream-row").allInnerTexts()).map((row) => row.split("\t").slice(0, 3))).toEqual([
      ["account-ada", "4", "4"],
      ["account-alan", "2", "2"],
      ["account-grace", "12", "12"]
    ])
    await expect.poll(() => texts(page, "store-label")).toEqual([`file:${directory}`])
    await shot(page, "streams.png")
    await page.getByTestId("search").fill("AL")
    await expect.poll(() => texts(page, "stream-counts")).toEqual(["1 of 3 streams · 18 events in the store"])
    expect(await page.getByTestId("stream-row").allInnerTexts()).toHaveLength(1)
    await page.getByTestId("search").fill("nobody")
    await expect.poll(() => texts(page, "no-streams")).toEqual(["No stream id contains that."])
    expect(problemsOf(page)).toEqual([])
    await page.close()
  })

  it("a stream's events come newest first, ten a page, with data and metadata pretty-printed", async () => {
    const page = await open(browser!, `${main.url}#/stream/account-grace`)
    const versions = async () => (await page.getByTestId("event").evaluateAll((cards) => cards.map((card) => card.getAttribute("data-version"))))
    await expect.poll(versions).toEqual(["12", "11", "10", "9", "8", "7", "6", "5", "4", "3"])
    expect(await page.getByTestId("event-data").first().textContent()).toBe(JSON.stringify({ amount: 1100 }, null, 2))
    await shot(page, "stream.png")
    await page.getByTestId("older").click()
    await expect.poll(versions).toEqual(["12", "11", "10", "9", "8", "7", "6", "5", "4", "3", "2", "1"])
    expect(await page.getByTestId("older").isHidden()).toBe(true)
    expect((await texts(page, "event-type")).at(-1)).toBe("AccountOpened")
    await page.goto(`${main.url}#/stream/account-ada`)
    await expect.poll(versions).toEqual(["4", "3", "2", "1"])
    const withdrawal = page.getByTestId("event").filter({ hasText: "MoneyWithdrawn" })
    expect(await withdrawal.getByTestId("event-metadata").textContent()).toBe(JSON.stringify({ correlationId: "atm", teller: "north" }, null, 2))
    await withdrawal.locator("summary").click()
    await page.screenshot({ path: join(artifacts, "stream-ada.png") })
    if (process.env.UPDATE_SCREENSHOTS === "1") copyFileSync(join(artifacts, "stream-ada.png"), join(root, "docs", "ui.png"))
    expect(problemsOf(page)).toEqual([])
    await page.close()
  })

  it("with --decider: the state after any event, and the next one", async () => {
    const page = await open(browser!, `${main.url}#/stream/account-ada`)
    await page.getByTestId("event").filter({ hasText: "#2" }).getByTestId("state-link").click()
    await expect.poll(() => texts(page, "replay-title")).toEqual(["State after version 2 of 4 through BankAccount (AccountEvents)"])
    expect(JSON.parse((await page.getByTestId("state").textContent())!)).toEqual({ status: "open", owner: "Ada", currency: "EUR", balance: 100_00 })
    await page.getByTestId("replay-next").click()
    await expect.poll(() => texts(page, "replay-title")).toEqual(["State after version 3 of 4 through BankAccount (AccountEvents)"])
    expect(JSON.parse((await page.getByTestId("state").textContent())!)).toMatchObject({ balance: 70_00 })
    await shot(page, "replay.png")
    expect(problemsOf(page)).toEqual([])
    await page.close()
  })

  it("projections: each checkpoint with its lag behind the head", async () => {
    const page = await open(browser!, `${main.url}#/projections`)
    await expect.poll(() => page.getByTestId("projection-row").allInnerTexts()).toEqual(["balances\t15\t3"])
    await shot(page, "projections.png")
    expect(problemsOf(page)).toEqual([])
    await page.close()
  })

  it("the live log shows the last events, then an event appended while the page is open, without a reload", async () => {
    const page = await open(browser!, `${main.url}#/live`)
    await expect.poll(() => texts(page, "live-status")).toEqual(["live"])
    expect(await page.getByTestId("live-event").count()).toBe(18)
    await withFileStore(directory, accounts.handle(ada, { _tag: "Deposit", amount: 12_34 }))
    await expect.poll(() => page.getByTestId("live-event").count(), { timeout: 60_000 }).toBe(19)
    const newest = page.getByTestId("live-event").first()
    expect(await newest.getAttribute("data-position")).toBe("19")
    expect(await newest.getByTestId("event-data").textContent()).toBe(JSON.stringify({ amount: 12_34 }, null, 2))
    await shot(page, "live.png")
    expect(problemsOf(page)).toEqual([])
    await page.close()
  })

  it("an unknown stream or a bad stream id gives a clear message, not a stack trace; ids are shown as text, never as HTML", async () => {
    const page = await open(browser!, `${main.url}#/stream/account-nobody`)
    await expect.poll(() => texts(page, "error")).toEqual([`unknown stream: account-nobody has no events in file:${directory}`])
    await shot(page, "unknown-stream.png")
    const hostile = "account-<img src=x onerror=document.title='owned'><b>bold</b>"
    await page.goto(`${main.url}#/stream/${encodeURIComponent(hostile)}`)
    await expect.poll(() => texts(page, "error")).toEqual([`unknown stream: ${hostile} has no events in file:${directory}`])
    expect(await page.locator("main img, main b").count()).toBe(0)
    expect(await page.title()).toBe("chronicle ui")
    await page.goto(`${main.url}#/replay/account-bad%0Aid/1`)
    await expect.poll(async () => (await texts(page, "error"))[0]).toMatch(/^not a stream id: /)
    expect(await page.locator("body").innerText()).not.toMatch(/\bat .+:\d+:\d+/)
    await page.close()
  })

  it("a bad store URL or a missing store gives a clear page, and the console still starts", async () => {
    const [scheme, missing] = await Promise.all([
      startUi(["--store", "ftp://example.org/events"]),
      startUi(["--store", `file:${join(directory, "nowhere")}`])
    ])
    consoles.push(scheme, missing)
    const page = await open(browser!, scheme.url)
    await expect.poll(() => texts(page, "store-error")).toEqual([
      `Cannot open the store: invalid store "ftp://example.org/events": unknown scheme "ftp:" (expected file:<directory>, postgres://… or memory:)`
    ])
    await expect.poll(() => texts(page, "error")).toHaveLength(1)
    await shot(page, "bad-store.png")
    await page.goto(missing.url)
    await expect.poll(() => texts(page, "store-error")).toEqual([
      `Cannot open the store: no store at file:${join(directory, "nowhere")}: the directory ${join(directory, "nowhere")} does not exist`
    ])
    expect(existsSync(join(directory, "nowhere"))).toBe(false)
    expect(await page.locator("body").innerText()).not.toMatch(/\bat .+:\d+:\d+/)
    await page.close()
  })

  it("is read-only: no method but GET is answered", async () => {
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const response = await fetch(`${main.url}api/streams`, { method })
      expect(response.status).toBe(404)
    }
  })

  it("on 127.0.0.1 it answers only to loopback host names (a rebound DNS name gets nothing)", async () => {
    const status = (host: string) =>
      new Promise<number | undefined>((resolve, reject) => {
        const request = httpGet(`${main.url}api/streams`, { headers: { host } }, (response) => {
          response.resume()
          resolve(response.statusCode)
        })
        request.on("error", reject)
      })
    const port = new URL(main.url).port
    expect(await status(`evil.example:${port}`)).toBe(421)
    expect(await status(`127.0.0.1:${port}`)).toBe(200)
    expect(await status(`localhost:${port}`)).toBe(200)
  })
})

describe("chronicle ui --help", { timeout: 180_000 }, () => {
  it("is listed by chronicle --help, and its help says where it listens and that --decider runs the module's code", async () => {
    const [all, own] = await Promise.all([cli(["--help"]), cli(["ui", "--help"])])
    expect(all.code).toBe(0)
    expect(stripAnsi(all.stdout)).toMatch(/^\s+- ui /m)
    expect(own.code).toBe(0)
    const help = stripAnsi(own.stdout).replace(/\s+/g, " ")
    expect(help).toContain("127.0.0.1:4600")
    expect(help).toContain("The module is imported: its code runs with your rights")
    expect(help).toContain("read-only")
  })
})
