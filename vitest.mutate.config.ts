import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import type { Plugin } from "vite"
import { defineConfig } from "vitest/config"
import { BaseSequencer } from "vitest/node"
import type { TestSpecification } from "vitest/node"
import base from "./vitest.config.js"

const src = fileURLToPath(new URL("./src/", import.meta.url))
const inProcessId = "\0chronicle-in-process"

/**
 * `chronicle` as src/index.ts less the PostgreSQL and filesystem stores, which no suite here uses:
 * every test file a mutant's tests touch is loaded afresh for that mutant, and those stores' drivers
 * (pg, @effect/sql, @effect/platform-node) are a third of that load.
 */
const inProcessIndex: Plugin = {
  name: "chronicle-in-process",
  enforce: "pre",
  resolveId: (id) => (id === "chronicle" ? inProcessId : undefined),
  load: (id) =>
    id === inProcessId
      ? readFileSync(`${src}index.ts`, "utf8")
        .split("\n")
        .filter((line) => !/stores\/(postgres|filesystem)\//.test(line))
        .join("\n")
        .replaceAll("from \"./", `from "${src}`)
      : undefined
}

/**
 * The in-process suites that pin down the logic Stryker mutates (no servers, no child processes),
 * quickest first: the files whose tests cover the mutated modules, and no others (each file a
 * mutant's tests touch is loaded afresh for that mutant, ~1-3 s of imports each). Left out: the
 * 1,000,000-event scale test (~15 s a run) and test/stores/snapshotLoading.test.ts (filesystem and
 * PostgreSQL stores), whose logic the smaller memory-store snapshot tests in test/Snapshots.test.ts pin.
 */
const quickestFirst = [
  "test/Query.test.ts",
  "test/ExpectedVersion.test.ts",
  "test/Upcaster.test.ts",
  "test/history/checker.test.ts",
  "test/Decider.test.ts",
  "test/StreamId.test.ts",
  "test/EventCodec.test.ts",
  "test/internal/tagIndex.test.ts",
  "test/DeciderSpec.test.ts",
  "test/DecisionHandler.test.ts",
  "test/CommandHandler.test.ts",
  "test/Projection.test.ts",
  "test/Snapshots.test.ts",
  "test/stores/memory.test.ts"
]

/**
 * Runs the files in the fixed order above. A mutant run stops at its first failing test (Stryker's
 * bail), so the cheap unit tests get to kill a mutant before the store contracts are even loaded.
 * vitest's own order (reversed here before) comes from its results cache: failed files first, then by
 * duration or by size, so it changed from run to run (without a cache, in a fresh checkout, it put
 * test/stores/memory.test.ts, the slowest, first), and that cache lives under node_modules, a link
 * shared with other checkouts.
 */
class QuickestFirst extends BaseSequencer {
  override sort(files: Array<TestSpecification>): Promise<Array<TestSpecification>> {
    const rank = (file: TestSpecification) => {
      const at = quickestFirst.findIndex((name) => file.moduleId.replaceAll("\\", "/").endsWith(name))
      return at === -1 ? quickestFirst.length : at
    }
    return Promise.resolve([...files].sort((a, b) => rank(a) - rank(b)))
  }
}

export default defineConfig({
  ...base,
  plugins: [inProcessIndex],
  resolve: { alias: base.resolve!.alias!.filter((alias) => String(alias.find) !== String(/^chronicle$/)) },
  test: {
    ...base.test,
    include: quickestFirst,
    sequence: { sequencer: QuickestFirst },
    // modules load once per worker, not once per file and mutant: most of a mutant run was loading
    // effect and chronicle afresh for each test file (~2 s each, 7 s against 35 s for the whole suite);
    // the mutants are switched at run time, so nothing needs reloading (static-only ones are ignored)
    isolate: false,
    setupFiles: ["test/support/mutationCoverage.ts"]
  }
})
