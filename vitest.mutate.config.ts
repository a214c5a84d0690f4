import { defineConfig } from "vitest/config"
import base from "./vitest.config.js"

/** The in-process suites that pin down the logic Stryker mutates: no servers, no child processes. */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: [
      "test/*.test.ts",
      "test/stores/memory.test.ts",
      "test/stores/memorySnapshots.test.ts",
      "test/stores/snapshotLoading.test.ts",
      "test/history/checker.test.ts"
    ]
  }
})
