#!/usr/bin/env node
/* global process, URL */
// `npm run cli -- <command>`: the `chronicle` command from the TypeScript
// sources, for developing it (and for the CLI tests, which start it often).
// The sources are bundled with esbuild into node_modules/.cache/chronicle-cli/
// (rebuilt when a file under src/ changes; packages stay external), which starts
// about twice as fast as running them through tsx's loader; without esbuild,
// through tsx. The published `chronicle` (bin/chronicle.js) never does this: it
// runs the build in dist/. TypeScript modules given to `replay --decider` are
// loaded through tsx, registered when one is first imported.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs"
import { createHash } from "node:crypto"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const source = join(root, "src", "cli", "main.ts")

/** A fingerprint of every file under src/: path, size, modification time. */
const fingerprint = () => {
  const hash = createHash("sha256")
  const walk = (directory) => {
    for (const entry of readdirSync(directory, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = join(directory, entry.name)
      if (entry.isDirectory()) walk(path)
      else {
        const stat = statSync(path)
        hash.update(`${path}\0${stat.size}\0${stat.mtimeMs}\n`)
      }
    }
  }
  walk(join(root, "src"))
  return hash.digest("hex").slice(0, 16)
}

/** The sources bundled into one module (built once per change of src/), or undefined without esbuild. */
const bundle = async () => {
  let esbuild
  try {
    esbuild = await import("esbuild")
  } catch {
    return undefined
  }
  const cache = join(root, "node_modules", ".cache", "chronicle-cli")
  const name = `main-${fingerprint()}.mjs`
  const target = join(cache, name)
  if (existsSync(target)) return target
  mkdirSync(cache, { recursive: true })
  const temporary = join(cache, `.${name}.${process.pid}.tmp.mjs`)
  await esbuild.build({
    entryPoints: [source],
    outfile: temporary,
    bundle: true,
    packages: "external",
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: "inline",
    logLevel: "silent"
  })
  renameSync(temporary, target)
  for (const old of readdirSync(cache)) {
    if (old !== name && old.startsWith("main-")) rmSync(join(cache, old), { force: true })
  }
  return target
}

const registerTsx = async () => {
  const { register } = await import("tsx/esm/api")
  register()
  globalThis[Symbol.for("chronicle/tsx")] = true
}

let entry = source
const bundled = await bundle().catch(() => undefined)
if (bundled !== undefined) entry = bundled
else await registerTsx()
await import(pathToFileURL(entry).href)
