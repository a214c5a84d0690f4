import { Effect } from "effect"
import lockfile from "proper-lockfile"

/** How a directory is locked against other processes. */
export interface DirectoryLock {
  /** The directory the lock guards. */
  readonly directory: string
  /** The lock's own path (a directory `proper-lockfile` creates and removes). */
  readonly lockPath: string
  /** After how long a holder that stopped refreshing its lock is taken over, in ms. */
  readonly staleMs: number
}

const isLocked = (error: unknown) =>
  typeof error === "object" && error !== null && "code" in error && error.code === "ELOCKED"

/**
 * Runs `effect` holding an exclusive, cross-process lock. A crashed holder's
 * lock goes stale after `staleMs` and is taken over, so it never blocks the
 * store for good. `onFailure` turns a lock that cannot be had into the
 * caller's error.
 */
export const withDirectoryLock = <A, E, R, E2>(
  lock: DirectoryLock,
  onFailure: (error: unknown) => E2,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | E2, R> =>
  Effect.acquireUseRelease(
    Effect.tryPromise({
      try: () =>
        lockfile.lock(lock.directory, {
          lockfilePath: lock.lockPath,
          realpath: false,
          stale: lock.staleMs,
          update: Math.floor(lock.staleMs / 2),
          // few retries per call: the retry package rebuilds (and deep-copies) its whole schedule on every lock
          retries: { retries: 50, factor: 1.3, minTimeout: 1, maxTimeout: 50 },
          onCompromised: () => {}
        }),
      catch: (error) => error
    }).pipe(
      // keep asking well past the stale time, so a crashed holder's lock is taken over
      Effect.retry({ times: Math.ceil((lock.staleMs * 4) / 2000), while: isLocked }),
      Effect.mapError(onFailure)
    ),
    () => effect,
    (release) => Effect.promise(() => release().catch(() => undefined))
  )
