/**
 * The published `chronicle` command (bin/chronicle.js) runs the build in dist/,
 * never the sources: its help and output carry no colour codes when piped or
 * with `NO_COLOR`, and it reads a filesystem store. The build is refreshed
 * first when a file under src/ is newer than it (CI builds before the tests).
 */
import { spawn, spawnSync } from "node:child_process"
import { existsSync, readdirSync, rmSync, statSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import { afterAll, beforeAll, describe, it } from "vitest"
import { tempDirectory } from "../support/filesystem.js"
import { root, seedAccounts, withFileStore } from "./support.js"
import type { Run } from "./support.js"

const bin = join(root, "bin", "chronicle.js")
const built = join(root, "dist", "cli", "main.js")

const newest = (directory: string): number =>
  readdirSync(directory, { withFileTypes: true }).reduce((latest, entry) => {
    const path = join(directory, entry.name)
    return Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs)
  }, 0)

const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Run> =>
  new Promise((resolve, reject) => {
    const base = Object.fromEntries(
      Object.entries(process.env).filter((entry): entry is [string, string] =>
        entry[1] !== undefined && !["FORCE_COLOR", "NO_COLOR", "CHRONICLE_STORE"].includes(entry[0]))
    )
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: { ...base, ...env }, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  })

// eslint-disable-next-line no-control-regex
const escape = /\u001b\[/

let directory: string

beforeAll(async () => {
  if (!existsSync(built) || statSync(built).mtimeMs < newest(join(root, "src"))) {
    const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
    const build = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: root, encoding: "utf8" })
    if (build.status !== 0) throw new Error(`the build failed:\n${build.stdout}${build.stderr}`)
  }
  directory = tempDirectory("cli-bin")
  await withFileStore(directory, seedAccounts)
}, 300_000)

afterAll(() => rmSync(directory, { recursive: true, force: true }))

describe.concurrent("the published chronicle command (dist/)", { timeout: 120_000 }, () => {
  it("--help, piped: the commands, in plain text", async ({ expect }) => {
    const result = await run(["--help"])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^\s+- streams /m)
    expect(result.stdout).not.toMatch(escape)
  })

  it("--help with NO_COLOR, even when FORCE_COLOR is set too: plain text", async ({ expect }) => {
    const result = await run(["streams", "--help"], { NO_COLOR: "1", FORCE_COLOR: "1" })
    expect(result.code).toBe(0)
    expect(result.stdout).toContain("--category")
    expect(result.stdout).not.toMatch(escape)
  })

  it("a command used wrongly: the usage error on stderr, in plain text, exit 2", async ({ expect }) => {
    const result = await run(["read"])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("Missing argument")
    expect(result.stderr).not.toMatch(escape)
  })

  it("streams on a filesystem store: one line per stream", async ({ expect }) => {
    const result = await run(["streams", "--store", `file:${directory}`])
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^account-ada\s+4\s+4\s/m)
    expect(result.stdout).toMatch(/^account-alan\s+2\s+2\s/m)
  })
})
