/**
 * What the browser tests of `chronicle ui` share: Chromium (Debian's, through
 * playwright-core; under CI=true a missing one fails the run), starting the
 * console as a process, and pages that collect script errors.
 */
import type { ChildProcess } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"
import type { Browser, Page } from "playwright-core"
import { chromium } from "playwright-core"
import { root, start, waitFor } from "./support.js"

export const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"
export const haveChromium = existsSync(executablePath)
if (!haveChromium && process.env.CI === "true") {
  throw new Error(`no Chromium at ${executablePath} and CI=true: install Debian's chromium (apt-get install -y chromium; .ci/run does) or set CHROMIUM_PATH`)
}

export const artifacts = join(root, "test-artifacts", "ui")

export interface Console {
  readonly child: ChildProcess
  readonly url: string
  readonly output: () => { readonly stdout: string; readonly stderr: string }
  readonly stop: () => Promise<number | null>
}

/** Starts `chronicle ui` on a free port and waits for the address it prints. */
export const startUi = async (args: ReadonlyArray<string>): Promise<Console> => {
  const child = start(["ui", "--port", "0", ...args])
  let stdout = ""
  let stderr = ""
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
  const ready = await waitFor(() => stdout + stderr, (text) => /chronicle ui: http:\/\/\S+/.test(text) || child.exitCode !== null)
  const url = /chronicle ui: (http:\/\/\S+)/.exec(ready)?.[1]
  if (url === undefined) throw new Error(`chronicle ui did not start:\n${ready}`)
  return {
    child,
    url,
    output: () => ({ stdout, stderr }),
    stop: () => {
      child.kill("SIGINT")
      return exited
    }
  }
}

/** Starts headless Chromium. */
export const launch = (): Promise<Browser> => chromium.launch({ executablePath, args: ["--no-sandbox"] })

/** A page that fails the test on any script error or refused resource (a CSP violation shows as a console error). */
export const open = async (browser: Browser, url: string): Promise<Page> => {
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 } })
  const problems: Array<string> = []
  page.on("pageerror", (error) => problems.push(error.message))
  page.on("console", (message) => {
    if (message.type() === "error" && !/status of 404/.test(message.text())) problems.push(message.text())
  })
  ;(page as Page & { problems: Array<string> }).problems = problems
  await page.goto(url)
  return page
}
export const problemsOf = (page: Page) => (page as Page & { problems: Array<string> }).problems

export const texts = (page: Page, testId: string) => page.getByTestId(testId).allTextContents()
export const shot = (page: Page, name: string) => page.screenshot({ path: join(artifacts, name), fullPage: true })

