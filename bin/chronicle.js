#!/usr/bin/env node
/* global process, URL */
// The `chronicle` command: runs the compiled CLI in dist/. Nothing is built or
// written at run time, so it works from a read-only node_modules. The CLI's
// packages are optional peers of chronicle (a library user does not need
// them): when one is missing, say which to install rather than fail on the
// first import. In a checkout, `npm run cli -- <command>` runs the sources.
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

const needs = ["effect", "@effect/platform", "@effect/platform-node", "@effect/cli", "@effect/printer", "@effect/printer-ansi", "@toon-format/toon"]
const missing = needs.filter((name) => {
  try {
    import.meta.resolve(name)
    return false
  } catch {
    return true
  }
})
if (missing.length > 0) {
  process.stderr.write(
    `chronicle: the command line needs ${missing.join(", ")}, not installed in this project: npm i ${missing.join(" ")}\n`
  )
  process.exit(1)
}
const main = new URL("../dist/cli/main.js", import.meta.url)
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write(`chronicle: ${fileURLToPath(main)} is missing: run npm run build (or npm run cli -- <command> for the sources)\n`)
  process.exit(1)
}
await import(main.href)
