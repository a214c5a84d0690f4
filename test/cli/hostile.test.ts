/**
 * The CLI as a process under hostile input and hostile environments: a full
 * disk under its output, lines without end, ids that try to drive the
 * terminal, credentials in store URLs, `__proto__` keys. It answers with one
 * line and an exit code, never a hang, a stack trace or a leak.
 */
import { spawn, spawnSync } from "node:child_process"
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import Pg from "pg"
import { afterAll, beforeAll, describe, it } from "vitest"
import { EventStore, ExpectedVersion, StreamId } from "chronicle"
import { tempDirectory } from "../support/filesystem.js"
import { databaseUrl, postgresAvailable, uniqueSchema } from "../support/postgres.js"
import { cli, hasStackTrace, root, withFileStore } from "./support.js"
import type { Run } from "./support.js"

const launcher = fileURLToPath(new URL("../../scripts/chronicle-dev.js", import.meta.url))
const onCi = process.env.CI === "true"
const directories: Array<string> = []
const mounts: Array<string> = []
const temp = (label: string) => {
  const directory = tempDirectory(`cli-hostile-${label}`)
  directories.push(directory)
  return directory
}
afterAll(() => {
  for (const mount of mounts) spawnSync("umount", [mount])
  for (const directory of directories) rmSync(directory, { recursive: true, force: true })
})

/** Runs the CLI with its stdout going to the file descriptor `fd`. */
const cliWithStdout = (args: ReadonlyArray<string>, fd: number): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [launcher, ...args], { cwd: root, stdio: ["ignore", fd, "pipe"] })
    let stderr = ""
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, stdout: "", stderr }))
  })

/** A tmpfs of 64 KiB, or why there is none (only root may mount). */
const smallDisk = (): string | { readonly unavailable: string } => {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return { unavailable: "mounting a tmpfs needs root on Linux" }
  const directory = temp("tmpfs")
  const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", directory])
  if (mounted.status !== 0) return { unavailable: `mount failed: ${mounted.stderr.toString().trim()}` }
  mounts.push(directory)
  return directory
}

const oneLine = (text: string) => text.trim().split("\n").length === 1

let store: string
const big = StreamId.unsafeMake("big", "1")

beforeAll(async () => {
  const directory = temp("store")
  store = `file:${directory}`
  // about 200 KiB of events: more than the small disk holds
  await withFileStore(directory, EventStore.append(
    big,
    Array.from({ length: 200 }, (_, n) => ({ type: "PageWritten", data: { n, text: "x".repeat(1000) } })),
    { expectedVersion: ExpectedVersion.NoStream }
  ))
})

describe.concurrent("chronicle CLI on a full disk", { timeout: 180_000 }, () => {
  it.runIf(existsSync("/dev/full") || onCi)("given --out /dev/full, when exporting, then one line of error and exit code 1, no hang", async ({ expect }) => {
    const run = await cli(["export", "--store", store, "--out", "/dev/full"])
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/^chronicle: cannot write \/dev\/full: ENOSPC/)
    expect(oneLine(run.stderr)).toBe(true)
    expect(existsSync("/dev/full")).toBe(true)
  })

  it.runIf(existsSync("/dev/full") || onCi)("given stdout on /dev/full, when exporting, then one line of error and exit code 1, no stack trace", async ({ expect }) => {
    const fd = openSync("/dev/full", "w")
    const run = await cliWithStdout(["export", "--store", store], fd).finally(() => closeSync(fd))
    expect(run.code).toBe(1)
    expect(hasStackTrace(run.stderr)).toBe(false)
    expect(run.stderr).toMatch(/^chronicle: cannot write to stdout: ENOSPC/)
    expect(oneLine(run.stderr)).toBe(true)
  })

  it("given a 64 KiB tmpfs, when exporting 200 KiB to a file on it, then exit code 1 and no partial file left", async ({ expect, skip }) => {
    const disk = smallDisk()
    if (typeof disk !== "string") {
      if (onCi) throw new Error(`CI must run this test: ${disk.unavailable}`)
      return skip(disk.unavailable)
    }
    mkdirSync(join(disk, "out"))
    const run = await cli(["export", "--store", store, "--out", join(disk, "out", "events.jsonl")])
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/^chronicle: cannot write .*events\.jsonl: ENOSPC/)
    expect(oneLine(run.stderr)).toBe(true)
    expect(readdirSync(join(disk, "out"))).toEqual([])
  })
})

describe.concurrent("chronicle CLI on unbounded input", { timeout: 180_000 }, () => {
  const event = (n: number, text = "") =>
    JSON.stringify({ globalPosition: n, streamId: "line-1", streamVersion: n, eventId: `0190f5a0-0000-7000-8000-${String(n).padStart(12, "0")}`, type: "LineWritten", recordedAt: "2026-01-01T00:00:00.000Z", data: { text } })

  it("given a JSONL line longer than 16 MiB, when importing, then it stops at that line with its number", async ({ expect }) => {
    const file = join(temp("long-line"), "events.jsonl")
    writeFileSync(file, `${event(1)}\n${event(2, "x".repeat(17 * 1024 * 1024))}\n`)
    const run = await cli(["import", "--store", `file:${temp("long-line-target")}`, "--in", file])
    expect(run.code).toBe(1)
    expect(run.stderr).toBe(`chronicle: ${file}:2: the line is longer than 16777216 bytes (--max-line-bytes)\n`)
  })

  it("given --max-line-bytes, when a line passes it, then the import stops there; shorter lines pass", async ({ expect }) => {
    const file = join(temp("capped-line"), "events.jsonl")
    writeFileSync(file, `${event(1, "a".repeat(500))}\r\n\n${event(2, "b".repeat(500))}\n${event(3, "c".repeat(2000))}\n`)
    const target = temp("capped-line-target")
    const run = await cli(["import", "--store", `file:${target}`, "--in", file, "--max-line-bytes", "1000"])
    expect(run.code).toBe(1)
    expect(run.stderr).toBe(`chronicle: ${file}:4: the line is longer than 1000 bytes (--max-line-bytes)\n`)
    const whole = await cli(["import", "--store", `file:${target}`, "--in", file, "--max-line-bytes", "3000", "--json"])
    expect(whole.stderr).toBe("")
    const imported = JSON.parse(whole.stdout) as { read: number; appended: number; alreadyPresent: number }
    expect([imported.read, imported.appended + imported.alreadyPresent]).toEqual([3, 3])
  })

  it("given a 160 MiB line and a 96 MB heap, when importing with --max-line-bytes 1000000, then memory stays bounded: an error, not a crash", async ({ expect }) => {
    const file = join(temp("huge-line"), "events.jsonl")
    writeFileSync(file, `{"data":"${"x".repeat(160 * 1024 * 1024)}`)
    const run = await cli(["import", "--store", `file:${temp("huge-line-target")}`, "--in", file, "--max-line-bytes", "1000000"], {
      env: { NODE_OPTIONS: "--max-old-space-size=96" }
    })
    expect(run.stderr).toBe(`chronicle: ${file}:1: the line is longer than 1000000 bytes (--max-line-bytes)\n`)
    expect(run.code).toBe(1)
  })

  it("given a json or toon file larger than --max-document-bytes, when importing, then it stops before parsing and nothing is written", async ({ expect }) => {
    const directory = temp("big-document")
    const events = Array.from({ length: 40 }, (_, i) => JSON.parse(event(i + 1, "d".repeat(100))) as unknown)
    const file = join(directory, "events.json")
    writeFileSync(file, JSON.stringify(events))
    const target = temp("big-document-target")
    const run = await cli(["import", "--store", `file:${target}`, "--in", file, "--max-document-bytes", "2000"])
    expect(run.code).toBe(1)
    expect(run.stderr).toBe(
      `chronicle: ${file}: the file is larger than 2000 bytes (--max-document-bytes); json and toon are read whole, so export larger histories as jsonl\n`
    )
    const after = await cli(["stats", "--store", `file:${target}`, "--json"])
    expect(after.code === 0 ? (JSON.parse(after.stdout) as { events: number }).events : 0).toBe(0)
    const whole = await cli(["import", "--store", `file:${target}`, "--in", file, "--json"])
    expect(whole.stderr).toBe("")
    expect((JSON.parse(whole.stdout) as { appended: number }).appended).toBe(40)
  })

  it("given a json file whose multi-byte characters straddle read chunks, when importing, then the text arrives intact", async ({ expect }) => {
    const file = join(temp("multibyte"), "events.json")
    const text = "é€😀".repeat(40_000)
    writeFileSync(file, JSON.stringify([JSON.parse(event(1, text)) as unknown]))
    const target = temp("multibyte-target")
    const run = await cli(["import", "--store", `file:${target}`, "--in", file])
    expect(run.stderr).toBe("")
    const exported = await cli(["export", "--store", `file:${target}`])
    expect((JSON.parse(exported.stdout.trim()) as { data: { text: string } }).data.text === text).toBe(true)
  })

  it("given bench --size beyond an event's limit, then a usage error up front", async ({ expect }) => {
    const run = await cli(["bench", "--store", "memory:", "--size", "999999999"])
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/^chronicle: --size must be between 0 and \d+ \(an event holds at most 1 MiB of data and metadata\), got 999999999\n$/)
  })
})

describe.concurrent("chronicle CLI on ids and types that try to drive the terminal", { timeout: 180_000 }, () => {
  const evilType = "Evil\u001b]0;owned\u0007\u001b[2J\nFORGED\u009b31m\u007f"
  const evilStream = StreamId.unsafeMake("acct", "\u202egnp.exe")
  let evil: string
  let exported: ReadonlyArray<unknown>

  beforeAll(async () => {
    const directory = temp("evil")
    evil = `file:${directory}`
    await withFileStore(directory, EventStore.append(evilStream, [{ type: evilType, data: { note: "\u001b[31mred\u202e" } }], {
      expectedVersion: ExpectedVersion.NoStream
    }))
    const run = await cli(["export", "--store", evil])
    exported = run.stdout.trim().split("\n").map((line) => JSON.parse(line) as unknown)
  })

  // eslint-disable-next-line no-control-regex
  const controls = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/

  it("streams, stats and read print control characters and bidi overrides as escapes, one row per stream or type", async ({ expect }) => {
    const [streams, stats, read] = await Promise.all([
      cli(["streams", "--store", evil]),
      cli(["stats", "--store", evil]),
      cli(["read", String(evilStream), "--store", evil])
    ])
    for (const run of [streams, stats, read]) {
      expect(run.code).toBe(0)
      expect(run.stdout).not.toMatch(controls)
      expect(run.stdout).not.toMatch(/^FORGED/m)
    }
    expect(streams.stdout).toContain("acct-\\u202egnp.exe")
    expect(stats.stdout).toContain("Evil\\x1b]0;owned\\x07\\x1b[2J\\nFORGED\\x9b31m\\x7f")
    expect(read.stdout.split("\n")).toHaveLength(4)
  })

  it("tail and replay escape what events carry into their lines and the state they print", async ({ expect }) => {
    const directory = temp("evil-account")
    const owner = "\u202egnp\u001b]0;owned\u0007"
    const account = StreamId.unsafeMake("account", "\u202eevil")
    await withFileStore(directory, EventStore.append(account, [{ type: "AccountOpened", data: { owner, currency: "EUR" } }], {
      expectedVersion: ExpectedVersion.NoStream
    }))
    const store = `file:${directory}`
    const [tail, replay, final] = await Promise.all([
      cli(["tail", "--store", store, "--from-start", "--limit", "1"]),
      cli(["replay", String(account), "--store", store, "--decider", "examples/BankAccount.ts"]),
      cli(["replay", String(account), "--store", store, "--decider", "examples/BankAccount.ts", "--final"])
    ])
    for (const run of [tail, replay, final]) {
      expect(run.stderr).not.toMatch(controls)
      expect(run.code).toBe(0)
      expect(run.stdout).not.toMatch(controls)
    }
    expect(tail.stdout).toContain("account-\\u202eevil@1")
    expect(replay.stdout).toContain('\n  owner: "\\u202egnp\\u001b]0;owned\\u0007"\n')
    expect(final.stdout).toContain('\nowner: "\\u202egnp\\u001b]0;owned\\u0007"\n')
  })

  it("an error naming a hostile stream id escapes it", async ({ expect }) => {
    const run = await cli(["read", "acct-\u202eexe", "--store", evil])
    expect(run.code).toBe(1)
    expect(run.stderr).toBe(`chronicle: stream acct-\\u202eexe has no events in ${evil}\n`)
  })

  it("JSON output stays exact", ({ expect }) => {
    expect(exported).toMatchObject([{ streamId: evilStream, type: evilType, data: { note: "\u001b[31mred\u202e" } }])
  })
})

describe.runIf(postgresAvailable())("chronicle CLI never shows a password given in a store URL", { timeout: 180_000 }, () => {
  const secret = "Se@kr1t"
  const address = new URL(databaseUrl)
  const host = `${address.hostname}:${address.port || 5432}${address.pathname}`
  const user = address.username || "postgres"
  const forms = [
    { name: "in the user info", url: (schema: string) => `postgres://${user}:${encodeURIComponent(secret)}@${host}?schema=${schema}` },
    { name: "as ?password=", url: (schema: string) => `postgres://${user}@${host}?password=${encodeURIComponent(secret)}&schema=${schema}` },
    { name: "with an unencoded @", url: (schema: string) => `postgres://${user}:${secret}@${host}?schema=${schema}` }
  ]
  const schemas: Array<string> = []
  let source: string
  afterAll(async () => {
    const client = new Pg.Client({ connectionString: databaseUrl })
    await client.connect()
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await client.end()
  })
  beforeAll(async () => {
    const directory = temp("secret-source")
    source = `file:${directory}`
    await withFileStore(directory, EventStore.append(StreamId.unsafeMake("acct", "1"), [{ type: "AccountOpened", data: {} }], {
      expectedVersion: ExpectedVersion.NoStream
    }))
  })
  /** Every trace of the password: whole, and the parts an unencoded `@` splits it into. */
  const leaks = (text: string) => ["Se@kr1t", "Se%40kr1t", "kr1t"].filter((part) => text.includes(part))

  for (const form of forms) {
    it(`given the password ${form.name}: labels, copy checkpoints and errors hide it`, async ({ expect }) => {
      const schema = uniqueSchema("cli_secret")
      schemas.push(schema)
      const store = form.url(schema)
      const into = await cli(["copy", "--from", source, "--to", store, "--json"])
      expect(into.stderr).toBe("")
      const back = temp("secret-back")
      const out = await cli(["copy", "--from", store, "--to", `file:${back}`, "--json"])
      expect(out.stderr).toBe("")
      expect(JSON.parse(out.stdout)).toMatchObject({ events: 1 })
      const stats = await cli(["stats", "--store", store])
      expect(stats.code).toBe(0)
      const unreachable = await cli(["stats", "--store", form.url(schema).replace(`${address.port || 5432}/`, "1/")])
      expect(unreachable.code).toBe(1)
      const invalid = await cli(["stats", "--store", form.url(schema).replace(`:${address.port || 5432}/`, ":port/")])
      expect(invalid.code).toBe(2)
      const checkpoints = readdirSync(back, { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile())
        .map((entry) => readFileSync(join(entry.parentPath, entry.name), "utf8"))
        .join("\n")
      expect(checkpoints).toContain("chronicle-copy:postgres://")
      for (const text of [into.stdout, out.stdout, stats.stdout, unreachable.stderr, invalid.stderr, checkpoints]) expect(leaks(text)).toEqual([])
    })
  }
})

describe("chronicle CLI keeps a metadata key named __proto__ on every import path", { timeout: 180_000 }, () => {
  it("given an event whose metadata has __proto__, when exported and imported as jsonl, json and toon, then every copy keeps it", async ({ expect }) => {
    const directory = temp("proto")
    const metadata = JSON.parse(`{"__proto__":{"polluted":true},"a":1}`) as Record<string, unknown>
    await withFileStore(directory, EventStore.append(StreamId.unsafeMake("acct", "proto"), [{ type: "AccountOpened", data: { b: 2 }, metadata }], {
      expectedVersion: ExpectedVersion.NoStream
    }))
    const original = await cli(["export", "--store", `file:${directory}`])
    expect(original.stdout).toContain(`"metadata":{"__proto__":{"polluted":true},"a":1}`)
    const metadataOf = (jsonl: string) => jsonl.trim().split("\n").map((line) => JSON.stringify((JSON.parse(line) as { metadata: unknown }).metadata))
    const copies = await Promise.all(["jsonl", "json", "toon"].map(async (format) => {
      const file = join(temp(`proto-${format}`), `events.${format}`)
      const exported = await cli(["export", "--store", `file:${directory}`, "--out", file])
      expect(exported.code).toBe(0)
      const target = `file:${temp(`proto-${format}-target`)}`
      const imported = await cli(["import", "--store", target, "--in", file])
      expect(imported.stderr).toBe("")
      return (await cli(["export", "--store", target])).stdout
    }))
    for (const copy of copies) expect(metadataOf(copy)).toEqual(metadataOf(original.stdout))
  })
})

describe("chronicle CLI warns that --decider runs code", { timeout: 180_000 }, () => {
  it("replay --help and validate --help say the module's code runs", async ({ expect }) => {
    const [replay, validate] = await Promise.all([cli(["replay", "--help"]), cli(["validate", "--help"])])
    for (const run of [replay, validate]) {
      expect(run.code).toBe(0)
      expect(run.stdout.replace(/\s+/g, " ")).toContain("its code runs with your rights, so never point it at a file you would not run")
    }
  })
})

describe.runIf(postgresAvailable())("chronicle CLI on PostgreSQL says what an open transaction holds back", { timeout: 180_000 }, () => {
  const schema = uniqueSchema("cli_horizon")
  const address = new URL(databaseUrl)
  address.searchParams.set("schema", schema)
  const store = address.toString()
  const connect = async (database?: string) => {
    const url = new URL(databaseUrl)
    if (database !== undefined) url.pathname = `/${database}`
    const client = new Pg.Client({ connectionString: url.toString() })
    await client.connect()
    return client
  }
  const append = (id: string, n: number) =>
    cli(["import", "--store", store], {
      input: Array.from({ length: n }, (_, i) =>
        JSON.stringify({ globalPosition: i + 1, streamId: `acct-${id}`, streamVersion: i + 1, eventId: crypto.randomUUID(), type: "AccountOpened", recordedAt: "2026-01-01T00:00:00.000Z", data: {} })).join("\n")
    })
  const seen = async (args: ReadonlyArray<string>) => (await cli(args)).stdout.trim().split("\n").filter((line) => line.length > 0).length

  afterAll(async () => {
    const client = await connect()
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await client.end()
  })

  it("given an open transaction in another database, then export sees every event and exits 0", async ({ expect }) => {
    expect((await append("before", 3)).code).toBe(0)
    const admin = await connect()
    const exists = await admin.query(`SELECT 1 FROM pg_database WHERE datname = 'idle'`)
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE idle`).catch(() => undefined)
    await admin.end()
    const elsewhere = await connect("idle")
    try {
      await elsewhere.query("BEGIN")
      await elsewhere.query("SELECT txid_current()")
      expect((await append("during", 4)).code).toBe(0)
      const run = await cli(["export", "--store", store])
      expect(run.stderr).toBe("")
      expect(run.code).toBe(0)
      expect(run.stdout.trim().split("\n")).toHaveLength(7)
    } finally {
      await elsewhere.query("ROLLBACK")
      await elsewhere.end()
    }
  })

  it("given an open transaction that wrote to the events table, then export, stats, streams and copy fail naming it, unless --allow-partial", async ({ expect }) => {
    const holder = await connect()
    try {
      const before = await seen(["export", "--store", store])
      await holder.query("BEGIN")
      const { rows } = await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid, txid_current()")
      await holder.query(`LOCK TABLE "${schema}".events IN ROW EXCLUSIVE MODE`)
      expect((await append("held", 2)).code).toBe(0)
      const target = temp("horizon-copy")
      const [exported, stats, streams, copy, partial] = await Promise.all([
        cli(["export", "--store", store]),
        cli(["stats", "--store", store]),
        cli(["streams", "--store", store]),
        cli(["copy", "--from", store, "--to", `file:${target}`]),
        cli(["export", "--store", store, "--allow-partial"])
      ])
      for (const [command, run] of [["export", exported], ["stats", stats], ["streams", streams], ["copy", copy]] as const) {
        expect(run.code).toBe(1)
        expect(run.stdout).toBe("")
        expect(run.stderr).toMatch(new RegExp(`^chronicle: 2 committed events of .* are held back from readers .*\\(pid ${rows[0]!.pid} in database ${address.pathname.slice(1)}, open for \\S+, idle in transaction\\): ${command} would miss them\\. .* --allow-partial`))
      }
      expect(partial.code).toBe(0)
      expect(partial.stderr).toMatch(/^chronicle: warning: 2 committed events .* held back .*--allow-partial/)
      expect(partial.stdout.trim().split("\n")).toHaveLength(before)
    } finally {
      await holder.query("ROLLBACK")
      await holder.end()
    }
    const after = await cli(["export", "--store", store])
    expect(after.code).toBe(0)
    expect(after.stdout.trim().split("\n")).toHaveLength(9)
  })
})
