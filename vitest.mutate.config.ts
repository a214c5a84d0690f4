import { BaseSequencer } from "vitest/node"
import type { TestSpecification } from "vitest/node"
import { defineConfig } from "vitest/config"
import base from "./vitest.config.js"

/**
 * Quickest files first: a mutant run stops at its first failing test (Stryker's bail), so the
 * cheap unit tests get to kill a mutant before the store contracts are even loaded.
 */
class QuickestFirst extends BaseSequencer {
  override async sort(files: Array<TestSpecification>): Promise<Array<TestSpecification>> {
    return (await super.sort(files)).reverse()
  }
}

/**
 * The in-process suites that pin down the logic Stryker mutates (no servers, no child processes):
 * the files whose tests cover the mutated modules, and no others (each file a mutant's tests touch
 * is loaded afresh for that mutant). Left out: the 1,000,000-event scale test (~15 s a run) and
 * test/stores/snapshotLoading.test.ts (filesystem and PostgreSQL stores), whose logic the smaller
 * memory-store snapshot tests in test/Snapshots.test.ts pin.
 */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: [
      "test/CommandHandler.test.ts",
      "test/Decider.test.ts",
      "test/DeciderSpec.test.ts",
      "test/DecisionHandler.test.ts",
      "test/EventCodec.test.ts",
      "test/Projection.test.ts",
      "test/Query.test.ts",
      "test/Snapshots.test.ts",
      "test/StreamId.test.ts",
      "test/Upcaster.test.ts",
      "test/internal/tagIndex.test.ts",
      "test/stores/memory.test.ts",
      "test/history/checker.test.ts"
    ],
    sequence: { sequencer: QuickestFirst }
  }
})
