/**
 * The CLI as a process over a filesystem store: output and exit codes of each
 * command. Read-only checks share one seeded store and run concurrently.
 */
import { readdirSync, rmSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect } from "effect"
import type { Event } from "chronicle"
import { EventId, EventStore, ExpectedVersion, StreamId } from "chronicle"
import { tempDirectory } from "../support/filesystem.js"
import { ada, alan, allEvents, cli, content, hasStackTrace, seedAccounts, start, stripAnsi, waitFor, withFileStore } from "./support.js"

const directories: Array<string> = []
const temp = (label: string) => {
  const directory = tempDirectory(`cli-${label}`)
  directories.push(directory)
  return directory
}
afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true })
})

let bank: string
let store: string
let events: ReadonlyArray<Event.StoredEvent>
const badAccount = StreamId.unsafeMake("account", "bad")
let bad: string

beforeAll(async () => {
  bank = temp("bank")
  store = `file:${bank}`
  events = await withFileStore(bank, Effect.zipRight(seedAccounts, allEvents))
  bad = temp("bad")
  await withFileStore(bad, EventStore.append(badAccount, [
    { type: "AccountOpened", data: { owner: "Mallory", currency: "EUR" } },
    { type: "DepositMoney", data: { amount: 5 } },
    { type: "MoneyDeposited", data: { amount: -5 } },
    { type: "MoneyDeposited", data: { amount: 1, note: "x".repeat(300) } }
  ], { expectedVersion: ExpectedVersion.NoStream }))
})

// each test starts CLI processes (node + tsx), several at once: on a loaded machine that takes far longer than 30 s
describe.concurrent("chronicle CLI on a filesystem store", { timeout: 180_000 }, () => {
  it("--help lists every command", async ({ expect }) => {
    const run = await cli(["--help"])
    expect(run.code).toBe(0)
    const help = stripAnsi(run.stdout)
    for (const command of ["streams", "stats", "read", "tail", "replay", "validate", "export", "import", "copy", "bench"]) {
      expect(help).toMatch(new RegExp(`^\\s+- ${command} `, "m"))
    }
  })

  it("streams: each stream with its version, event count and payload bytes; the store from CHRONICLE_STORE; no colour with NO_COLOR", async ({ expect }) => {
    const run = await cli(["streams"], { env: { CHRONICLE_STORE: store, NO_COLOR: "1", FORCE_COLOR: "1" } })
    expect(run.code).toBe(0)
    expect(run.stdout).toBe(stripAnsi(run.stdout))
    const bytes = (id: string) =>
      events.filter((e) => e.streamId === id).reduce((sum, e) => sum + Buffer.byteLength(JSON.stringify(e.data)) + Buffer.byteLength(JSON.stringify(e.metadata)), 0)
    const lines = run.stdout.trim().split("\n")
    expect(lines[0]).toMatch(/^STREAM\s+VERSION\s+EVENTS\s+BYTES\s+LAST EVENT$/)
    expect(lines[1]).toMatch(new RegExp(`^account-ada\\s+4\\s+4\\s+${bytes(ada)}\\s+\\d{4}-`))
    expect(lines[2]).toMatch(new RegExp(`^account-alan\\s+2\\s+2\\s+${bytes(alan)}\\s+\\d{4}-`))
    expect(lines[3]).toMatch(/^2 streams, 6 events/)
  })

  it("stats --json: events, streams, types, largest streams, size on disk", async ({ expect }) => {
    const run = await cli(["stats", "--store", store, "--json", "--top", "1"])
    expect(run.code).toBe(0)
    const stats = JSON.parse(run.stdout)
    expect(stats).toMatchObject({
      store: `file:${bank}`,
      events: 6,
      streams: 2,
      categories: 1,
      headPosition: "6",
      types: [
        { type: "MoneyDeposited", events: 3 },
        { type: "AccountOpened", events: 2 },
        { type: "MoneyWithdrawn", events: 1 }
      ],
      largestStreams: [{ streamId: "account-ada", version: 4, events: 4 }],
      size: { kind: "on disk" }
    })
    const log = await readFile(join(bank, "events.jsonl"))
    expect(stats.size.parts).toContainEqual({ name: "events.jsonl", bytes: log.length })
  })

  it("stats: a table for people, coloured with FORCE_COLOR", async ({ expect }) => {
    const run = await cli(["stats", "-s", store], { env: { FORCE_COLOR: "1" } })
    expect(run.code).toBe(0)
    expect(run.stdout).toContain("\u001b[1m")
    const text = stripAnsi(run.stdout)
    expect(text).toMatch(/^Events\s+6 \(head position 6\)$/m)
    expect(text).toMatch(/^Streams\s+2 in 1 category$/m)
    expect(text).toMatch(/^Size\s+[\d.]+ (B|KiB) on disk \(events\.jsonl/m)
    expect(text).toMatch(/^MoneyDeposited\s+3\s+50\.0%/m)
  })

  it("read: a range of versions, backwards, limited", async ({ expect }) => {
    const run = await cli(["read", "account-ada", "--store", store, "--from", "2", "--to", "4", "--backwards", "--limit", "2"])
    expect(run.code).toBe(0)
    const lines = run.stdout.trim().split("\n")
    expect(lines[0]).toMatch(/^VERSION\s+POSITION\s+RECORDED\s+TYPE\s+DATA$/)
    expect(lines[1]).toMatch(/^\s+4\s+6\s+\S+\s+MoneyDeposited\s+\{"amount":500\}$/)
    expect(lines[2]).toMatch(/^\s+3\s+4\s+\S+\s+MoneyWithdrawn\s+\{"amount":3000\}$/)
    expect(lines[3]).toBe("2 of 4 events of account-ada")
  })

  it("replay: every event of a stream and the state after it", async ({ expect }) => {
    const run = await cli(["replay", "account-ada", "--store", store, "--decider", "examples/BankAccount.ts"])
    expect(run.stderr).toBe("")
    expect(run.code).toBe(0)
    expect(run.stdout).toContain("account-ada through BankAccount (examples/BankAccount.ts) with AccountEvents")
    expect(run.stdout).toMatch(/#1 AccountOpened \{"owner":"Ada","currency":"EUR"\} @1 .*\n {2}status: open\n {2}owner: Ada\n {2}currency: EUR\n {2}balance: 0\n/)
    expect(run.stdout).toMatch(/#3 MoneyWithdrawn \{"amount":3000\} @4 .*\n( {2}.*\n){3} {2}balance: 7000\n/)
    expect(run.stdout).toMatch(/#4 MoneyDeposited .*\n( {2}.*\n){3} {2}balance: 7500\n/)
    expect(run.stdout).toContain("4 events replayed; state at version 4 of 4")
  })

  it("replay --until: the steps up to a time, as JSON", async ({ expect }) => {
    const stream = events.filter((e) => e.streamId === ada)
    const until = stream[1]!.recordedAt
    const expected = stream.filter((e) => e.recordedAt.getTime() <= until.getTime())
    const run = await cli(["replay", "account-ada", "-s", store, "-d", "examples/BankAccount.ts#BankAccount", "--codec", "AccountEvents", "--until", until.toISOString(), "--json"])
    expect(run.code).toBe(0)
    const replay = JSON.parse(run.stdout)
    expect(replay.steps.map((step: { streamVersion: number }) => step.streamVersion)).toEqual(expected.map((e) => e.streamVersion))
    expect(replay.steps[0]).toMatchObject({ type: "AccountOpened", globalPosition: "1", state: { status: "open", owner: "Ada", balance: 0 } })
    expect(replay.version).toBe(expected.length)
  })

  it("replay --final --at-version: the state then, loaded by the command handler", async ({ expect }) => {
    const run = await cli(["replay", "account-ada", "-s", store, "-d", "examples/BankAccount.ts", "--at-version", "3", "--final", "--json"])
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toEqual({
      streamId: "account-ada",
      version: 3,
      state: { status: "open", owner: "Ada", currency: "EUR", balance: 7000 }
    })
  })

  it("validate: a clean store passes", async ({ expect }) => {
    const run = await cli(["validate", "-s", store, "--decider", "examples/BankAccount.ts"])
    expect(run.code).toBe(0)
    expect(run.stdout.trim()).toBe("6 events in 2 streams: 0 errors, 0 warnings")
  })

  it("validate: undecodable and oversized events, and names not in the past tense, by stream and version; exit 1", async ({ expect }) => {
    const run = await cli(["validate", "-s", `file:${bad}`, "-d", "examples/BankAccount.ts", "--max-bytes", "200", "--json"])
    expect(run.code).toBe(1)
    const report = JSON.parse(run.stdout)
    expect(report).toMatchObject({ events: 4, streams: 1, errors: 3, warnings: 1 })
    expect(report.findings.map((f: Record<string, unknown>) => [f.streamVersion, f.severity, f.check])).toEqual([
      [2, "error", "decode"],
      [2, "warning", "naming"],
      [3, "error", "decode"],
      [4, "error", "size"]
    ])
    expect(report.findings[0].message).toContain("no codec knows the type DepositMoney")
    expect(report.findings[1].message).toContain("DepositMoney is not in the past tense")
    expect(report.findings[2].message).toMatch(/Cannot decode MoneyDeposited .* account-bad@3/)
  })

  it("validate --fail-on error: warnings are reported but pass", async ({ expect }) => {
    const run = await cli(["validate", "-s", `file:${bad}`, "--fail-on", "error"])
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/^account-bad\s+2\s+warning\s+naming\s+event type DepositMoney is not in the past tense/m)
    expect(run.stdout).toContain("4 events in 1 streams: 0 errors, 1 warnings")
  })

  it("export --format json: every event with its envelope", async ({ expect }) => {
    const run = await cli(["export", "-s", store, "--format", "json"])
    expect(run.code).toBe(0)
    const exported = JSON.parse(run.stdout) as Array<Record<string, unknown>>
    expect(exported.map((e) => e.eventId)).toEqual(events.map((e) => e.eventId))
    expect(exported[3]).toEqual({
      globalPosition: "4",
      streamId: "account-ada",
      streamVersion: 3,
      eventId: events[3]!.eventId,
      type: "MoneyWithdrawn",
      recordedAt: events[3]!.recordedAt.toISOString(),
      schemaVersion: 1,
      data: { amount: 3000 },
      metadata: { correlationId: "atm", teller: "north" },
      tags: []
    })
  })

  it("export --format toon, import, import again: the same events, once", async ({ expect }) => {
    const file = join(temp("toon"), "bank.toon")
    const exported = await cli(["export", "-s", store, "--out", file])
    expect(exported.code).toBe(0)
    expect(exported.stderr).toContain(`exported 6 events from file:${bank} as toon to ${file}`)
    const toon = await readFile(file, "utf8")
    expect(toon).toMatch(/^\[3\]:\n {2}- type: AccountOpened\n {4}events\[2\]\{globalPosition,streamId,streamVersion,eventId,recordedAt,data\.owner,data\.currency,meta\.correlationId\}:\n/)

    const target = temp("imported")
    const first = await cli(["import", "-s", `file:${target}`, "--in", file])
    expect(first.code).toBe(0)
    expect(first.stdout.trim()).toBe(`imported 6 events into file:${target} (0 already there) in 2 streams`)
    const again = await cli(["import", "-s", `file:${target}`, "--in", file, "--json"])
    expect(again.code).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({ read: 6, appended: 0, alreadyPresent: 6, streams: 2 })

    const imported = await withFileStore(target, allEvents)
    expect(imported.map(content)).toEqual(events.map(content))
  })

  it("import from stdin: JSON Lines read line by line, every one of them", async ({ expect }) => {
    const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({
      globalPosition: String(i + 1),
      // long runs per stream: few appends (each an fsync), many lines
      streamId: `load-${Math.floor(i / 500)}`,
      streamVersion: (i % 500) + 1,
      eventId: EventId.unsafeGenerate(),
      type: "LoadRecorded",
      recordedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
      data: { i, text: "é".repeat(i % 5) },
      metadata: i % 2 === 0 ? {} : { correlationId: `c${i}` }
    }))
    const target = temp("stdin")
    const run = await cli(["import", "-s", `file:${target}`, "--json"], { input: `${lines.join("\n")}\n` })
    expect(run.stderr).toBe("")
    expect(JSON.parse(run.stdout)).toMatchObject({ read: 3000, appended: 3000, alreadyPresent: 0, streams: 6 })
    const imported = await withFileStore(target, allEvents)
    expect(imported.map((e) => e.eventId)).toEqual(lines.map((line) => JSON.parse(line).eventId))
  })

  it("tail: events appended after it started, live; Ctrl-C stops it cleanly", async ({ expect }) => {
    const directory = temp("tail")
    await withFileStore(directory, seedAccounts)
    const child = start(["tail", "-s", `file:${directory}`, "--poll-ms", "100"])
    let stdout = ""
    let stderr = ""
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
    await waitFor(() => stderr, (text) => text.includes("following"))
    expect(stderr).toContain("after position 6")
    const grace = StreamId.unsafeMake("account", "grace")
    await withFileStore(directory, EventStore.append(grace, [
      { eventId: EventId.unsafeGenerate(), type: "AccountOpened", data: { owner: "Grace", currency: "USD" } },
      { eventId: EventId.unsafeGenerate(), type: "MoneyDeposited", data: { amount: 42 } }
    ], { expectedVersion: ExpectedVersion.NoStream }))
    const lines = (await waitFor(() => stdout, (text) => text.split("\n").length > 2)).trim().split("\n")
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatch(/^\S+\s+7 account-grace@1 AccountOpened \{"owner":"Grace","currency":"USD"\}$/)
    expect(lines[1]).toMatch(/^\S+\s+8 account-grace@2 MoneyDeposited \{"amount":42\}$/)
    child.kill("SIGINT")
    expect(await exited).toBe(0)
    expect(hasStackTrace(stderr)).toBe(false)
  })

  it("tail --from-start --category --type: only those events, in order", async ({ expect }) => {
    const directory = temp("tail-filter")
    await withFileStore(directory, seedAccounts)
    await withFileStore(directory, EventStore.append(StreamId.unsafeMake("loan", "1"), [
      { eventId: EventId.unsafeGenerate(), type: "MoneyDeposited", data: { amount: 1 } }
    ], { expectedVersion: ExpectedVersion.NoStream }))
    const all = await cli(["tail", "-s", `file:${directory}`, "--from-start", "--limit", "7", "--json"])
    expect(all.stdout.trim().split("\n")).toHaveLength(7)
    const run = await cli(["tail", "-s", `file:${directory}`, "--from-start", "--category", "loan", "--category", "account", "--type", "MoneyDeposited", "--limit", "2", "--json"])
    expect(run.stderr).toMatch(/following/)
    const events = run.stdout.trim().split("\n").map((line) => JSON.parse(line) as { streamId: string; type: string })
    expect(events.map((e) => e.type)).toEqual(["MoneyDeposited", "MoneyDeposited"])
    const loans = await cli(["tail", "-s", `file:${directory}`, "--from-start", "--category", "loan", "--limit", "1", "--json"])
    expect((JSON.parse(loans.stdout.trim()) as { streamId: string }).streamId).toBe("loan-1")
  })

  it("bench --json: write, read and concurrent workloads with percentiles", async ({ expect }) => {
    const run = await cli(["bench", "-s", "memory:", "--appends", "40", "--streams", "4", "--concurrency", "4", "--json"])
    expect(run.code).toBe(0)
    const bench = JSON.parse(run.stdout)
    expect(bench.results.map((r: { workload: string }) => r.workload)).toEqual(["write", "read", "read-all", "concurrent x4"])
    for (const result of bench.results) {
      expect(result.p50Ms).toBeLessThanOrEqual(result.p95Ms)
      expect(result.p95Ms).toBeLessThanOrEqual(result.p99Ms)
      expect(result.eventsPerSecond).toBeGreaterThan(0)
    }
    expect(bench.results[0]).toMatchObject({ operations: 40, events: 40 })
    expect(bench.results[2]).toMatchObject({ operations: 1, events: 40 })
  })

  it("given a directory that holds no store, when a read command points at it, then it fails on one line and creates nothing there", async ({ expect }) => {
    const empty = temp("not-a-store")
    const runs = await Promise.all([cli(["stats", "--store", empty]), cli(["export", "--store", empty])])
    for (const run of runs) {
      expect(run.code).toBe(1)
      expect(run.stderr).toMatch(/^chronicle: cannot open store file:.*no event log here.*\n$/)
    }
    expect(readdirSync(empty)).toEqual([])
  })

  it("bad input: one line, a non-zero exit code, no stack trace", async ({ expect }) => {
    const [scheme, missing, argument, integer, decider] = await Promise.all([
      cli(["stats", "--store", "mysql://db/events"]),
      cli(["streams", "--store", join(bank, "nope")]),
      cli(["read", "--store", store]),
      cli(["read", "account-ada", "--store", store, "--limit", "many"]),
      cli(["replay", "account-ada", "--store", store, "--decider", "examples/OrderFulfillment.ts"])
    ])
    expect(scheme.code).toBe(2)
    expect(scheme.stderr).toBe(`chronicle: invalid store "mysql://db/events": unknown scheme "mysql:" (expected file:<directory>, postgres://… or memory:)\n`)
    expect(missing.code).toBe(1)
    expect(missing.stderr).toBe(`chronicle: no store at file:${join(bank, "nope")}: the directory ${join(bank, "nope")} does not exist\n`)
    expect(argument.code).toBe(2)
    expect(argument.stderr).toContain("Missing argument <stream>")
    expect(argument.stderr).toContain("Run chronicle read --help for usage.")
    expect(integer.code).toBe(2)
    expect(integer.stderr).toContain("'many' is not a integer")
    expect(decider.code).toBe(2)
    expect(decider.stderr).toBe(
      "chronicle: examples/OrderFulfillment.ts: exports several deciders (Order, Payment, Stock): pick one with examples/OrderFulfillment.ts#Name\n"
    )
    for (const run of [scheme, missing, argument, integer, decider]) {
      expect(run.stdout).toBe("")
      expect(hasStackTrace(run.stderr)).toBe(false)
    }
  })
})

it("the seeded store is what the tests expect", () => {
  expect(events.map((e) => `${e.streamId}@${e.streamVersion}`)).toEqual([
    "account-ada@1", "account-alan@1", "account-ada@2", "account-ada@3", "account-alan@2", "account-ada@4"
  ])
})
