// Mutation testing (npm run mutate; not in CI): the modules whose logic the suite must pin down.
// `npm run mutate -- --mutate src/Query.ts` narrows it; `--incremental` reuses reports/stryker-incremental.json.
/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  // related: false: run the whole suite of vitest.mutate.config.ts (its `chronicle` is a virtual module, which
  // vitest cannot trace back to the mutated files)
  vitest: { configFile: "vitest.mutate.config.ts", related: false },
  coverageAnalysis: "perTest",
  checkers: [],
  mutate: [
    "src/ExpectedVersion.ts",
    "src/internal/appendPlan.ts",
    "src/CommandHandler.ts",
    "src/Decider.ts",
    "src/SnapshotPolicy.ts",
    "src/internal/snapshots.ts",
    "src/Upcaster.ts",
    "src/Query.ts",
    "src/internal/tagIndex.ts",
    "src/internal/sorted.ts",
    "src/ProjectionRunner.ts",
    "src/stores/memory/MemoryEventStore.ts"
  ],
  reporters: ["clear-text", "progress", "json"],
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  incrementalFile: "reports/stryker-incremental.json",
  ignoreStatic: true,
  concurrency: 2,
  timeoutMS: 20000,
  tempDirName: ".stryker-tmp"
}
