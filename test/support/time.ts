import { Effect } from "effect"

/** A real-time pause, independent of the TestClock. */
export const pause = (ms: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))
