/**
 * A setup file of the mutation suite (vitest.mutate.config.ts), run after Stryker's own: with
 * `isolate: false` the instrumented modules load once per worker, so Stryker's coverage object
 * (`globalThis.__stryker__.mutantCoverage`, which each module's counter holds on to) collects
 * the coverage of every file the worker runs, and each file's report would carry the coverage of
 * the files before it. Here each file reports its own tests' coverage only, as it would isolated.
 */
import { afterAll, inject } from "vitest"

interface Coverage {
  static: Record<string, number>
  perTest: Record<string, Record<string, number>>
}
type Namespace = { mutantCoverage?: Coverage; cumulativeCoverage?: Coverage }

const provided = inject as unknown as (key: string) => unknown
const globalNamespace = provided("globalNamespace") as string | undefined
const namespace = globalNamespace === undefined
  ? undefined
  : (globalThis as unknown as Record<string, Namespace | undefined>)[globalNamespace]

if (provided("mode") === "dry-run" && namespace !== undefined) {
  const cumulative = namespace.cumulativeCoverage ??= (namespace.mutantCoverage ??= { static: {}, perTest: {} })
  namespace.mutantCoverage = cumulative
  // runs before Stryker's afterAll (hooks run in stack order), which reports namespace.mutantCoverage
  afterAll((file) => {
    const prefix = `${(file as unknown as { filepath: string }).filepath}#`
    const perTest: Coverage["perTest"] = {}
    for (const [test, hits] of Object.entries(cumulative.perTest)) if (test.startsWith(prefix)) perTest[test] = { ...hits }
    namespace.mutantCoverage = { static: { ...cumulative.static }, perTest }
  })
}
