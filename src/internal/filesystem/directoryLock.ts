import * as Effect from "effect/Effect"
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

/** Whether a lock attempt failed because another holder has the lock. */
export const isLocked = (error: unknown) =>
  typeof error === "object" && error !== null && "code" in error && error.code === "ELOCKED"

/**
 * Takes the lock, asking `attempts` times with short waits between (none
 * when 0); succeeds with the function that releases it. `onCompromised` is
 * called if the lock is found taken over while held (its holder stalled past
 * `staleMs`).
 */
export const acquireDirectoryLock = (lock: DirectoryLock, attempts: number, onCompromised: () => void = () => {}) =>
  Effect.tryPromise({
    try: () =>
      lockfile.lock(lock.directory, {
        lockfilePath: lock.lockPath,
        realpath: false,
        stale: lock.staleMs,
        update: Math.floor(lock.staleMs / 2),
        // few retries per call: the retry package rebuilds (and deep-copies) its whole schedule on every lock
        retries: attempts === 0 ? 0 : { retries: attempts, factor: 1.3, minTimeout: 1, maxTimeout: 20 },
        onCompromised
      }),
    catch: (error) => error
  }).pipe(
    Effect.map((release) => Effect.promise(() => release().catch(() => undefined)))
  )

/** How many rounds of attempts to make before giving up: well past the stale time, so a crashed holder's lock is taken over. */
export const lockRounds = (lock: DirectoryLock) => Math.ceil((lock.staleMs * 4) / 1000)

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
    acquireDirectoryLock(lock, 50).pipe(
      Effect.retry({ times: lockRounds(lock), while: isLocked }),
      Effect.mapError(onFailure)
    ),
    () => effect,
    (release) => release
  )
