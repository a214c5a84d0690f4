import { Effect } from "effect"

/** A real-time pause, independent of the TestClock. */
export const pause = (ms: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

/**
 * Waits (in real time) until `check` holds, polling every 20 ms; dies naming
 * `what` after `timeoutMs` (default 30 s: generous, for a loaded machine).
 */
export const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, what: string, timeoutMs = 30_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out after ${timeoutMs} ms waiting until ${what}`))
      yield* pause(20)
    }
  })
