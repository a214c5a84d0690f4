import { Effect } from "effect"

/** Runs a worker process's program: exit code 0 when it succeeds, 1 (after printing the error) when it fails. */
export const runWorkerProgram = <A, E>(program: Effect.Effect<A, E>): void => {
  Effect.runPromise(program).then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error)
      process.exit(1)
    }
  )
}
