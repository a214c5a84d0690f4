/**
 * The filesystem store's writer lease: the cross-process write lock, held
 * while this process keeps writing instead of taken and dropped around each
 * commit (each take and drop is a directory created and removed, which the
 * next `fsync` has to flush too). It is let go after `idleMs` without a
 * write, when another process asks for it (a waiter touches the `wanted`
 * file, which the holder looks at once every `idleMs`, not per commit), and
 * when the store closes. In-process writers take turns
 * on a semaphore, without filesystem calls.
 *
 * The lease is not what keeps the log right: a holder that stalls past the
 * stale time loses the lock without knowing it, and the log's fencing
 * (`at` on each append, read back) voids what it writes after.
 */
import * as NodeFs from "node:fs"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { StoreError } from "../../EventStore.js"
import { acquireDirectoryLock, type DirectoryLock, isLocked, lockRounds } from "./directoryLock.js"

/** How the lease is held. */
export interface WriterLeaseOptions extends DirectoryLock {
  /** The file a waiting process touches to ask the holder to let go. */
  readonly wantedPath: string
  /** The permissions of the `wanted` file, should this process create it. */
  readonly fileMode: number
  /** How long the lease is kept without a write, in ms. */
  readonly idleMs: number
  /** The error of a lock that cannot be had. */
  readonly onFailure: (error: unknown) => StoreError
}

/** The write lock of one store in this process. */
export interface WriterLease {
  /**
   * Runs `effect` holding the lock (taking it if this process does not hold
   * it). `held` says whether the lock was held without a break since the
   * previous use ended: no other process can have written in between,
   * unless this one stalled past the stale time (which fencing catches).
   */
  readonly use: <A, E, R>(effect: (held: boolean) => Effect.Effect<A, E, R>) => Effect.Effect<A, E | StoreError, R>
  /**
   * Runs `effect` at once if the lease is `ready`, without taking turns
   * (`held` is then true); `None` when it is not, and `effect` did not run.
   */
  readonly useIfReady: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<Option.Option<A>, E, R>
  /**
   * Runs `f` synchronously if the lease is `ready`, holding the lock (nothing
   * else runs meanwhile); `None` when it is not, and `f` did not run.
   */
  readonly useNow: <A>(f: () => A) => Option.Option<A>
  /**
   * Whether the lock is held without a break, nobody asked for it and no
   * use is running or waiting: a use now would start at once, without a
   * filesystem call.
   */
  readonly ready: () => boolean
  /** Says the lock was found lost (a write was fenced off): it is let go, and the next use takes it anew. */
  readonly lose: () => void
}

/** Sleeps on a Node timer: the lease runs on wall-clock time, whatever clock the caller's fibers use. */
const wallClockSleep = (ms: number) =>
  Effect.async<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), ms)
    return Effect.sync(() => clearTimeout(timer))
  })

/** Whether the `wanted` file was touched at or after `since`, asked synchronously (cheaper than a trip through the thread pool). */
const touchedSince = (path: string, since: number) => (NodeFs.statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? 0) >= since

/** Asks the holder to let go; best effort. */
const touch = (path: string, mode: number) =>
  Effect.promise(() => NodeFs.promises.writeFile(path, "", { mode }).catch(() => undefined))

/** Makes the lease of a store; it is let go when the scope closes. */
export const make = (options: WriterLeaseOptions) =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const turns = yield* Effect.makeSemaphore(1)
    let release: Effect.Effect<void> | undefined
    let compromised = false
    /** Whether the lock was kept since the last use ended. */
    let unbroken = false
    let acquiredAt = 0
    let lastUsed = 0
    /** Whether a use is running (or waiting for its turn). */
    let busy = 0
    /** Until when not to take the lock again, after letting it go for a waiter. */
    let yieldUntil = 0
    /** Whether another process asked for the lock: the next use lets it go first. */
    let wanted = false

    const letGo = Effect.suspend(() => {
      // asked for it: wait a little before taking it again, so the asker gets it
      if (wanted) yieldUntil = Date.now() + 2 * options.idleMs
      wanted = false
      const releasing = release
      release = undefined
      unbroken = false
      return releasing ?? Effect.void
    })

    /** Lets the lock go once it has been idle long enough; notes when another process wants it. */
    const watch = Effect.gen(function*() {
      while (release !== undefined) {
        yield* wallClockSleep(options.idleMs)
        // asked here, once a period, rather than by every commit
        if (!wanted && touchedSince(options.wantedPath, acquiredAt)) wanted = true
        // never queue for a turn behind writers: the next of them sees `wanted`, and lets go
        if (busy > 0) continue
        const done = yield* turns.withPermits(1)(Effect.gen(function*() {
          if (release === undefined) return true
          if (!wanted && !compromised && Date.now() - lastUsed < options.idleMs) return false
          yield* letGo
          return true
        }))
        if (done) return
      }
    })

    const take = Effect.gen(function*() {
      const wait = yieldUntil - Date.now()
      if (wait > 0) yield* wallClockSleep(wait)
      compromised = false
      const onCompromised = () => {
        compromised = true
      }
      const first = yield* Effect.either(acquireDirectoryLock(options, 0, onCompromised))
      release = first._tag === "Right" ? first.right : yield* Effect.gen(function*() {
        if (!isLocked(first.left)) return yield* Effect.fail(first.left)
        // ask the holder to let go, and again each round
        return yield* Effect.zipRight(touch(options.wantedPath, options.fileMode), acquireDirectoryLock(options, 50, onCompromised)).pipe(
          Effect.retry({ times: lockRounds(options), while: isLocked })
        )
      }).pipe(Effect.mapError(options.onFailure))
      acquiredAt = Date.now()
      // forked from a commit that cannot be interrupted, it still can
      yield* Effect.forkIn(Effect.interruptible(watch), scope)
    })

    yield* Effect.addFinalizer(() => turns.withPermits(1)(letGo))

    const ready = () => release !== undefined && unbroken && !compromised && !wanted && busy === 0
    const used = Effect.sync(() => {
      lastUsed = Date.now()
      unbroken = release !== undefined && !compromised
    })

    const lease: WriterLease = {
      use: (effect) =>
        Effect.acquireUseRelease(
          Effect.sync(() => busy++),
          () => turns.withPermits(1)(Effect.gen(function*() {
          if (compromised || wanted) yield* letGo
          const held = unbroken && release !== undefined
          if (release === undefined) yield* take
          unbroken = false
          return yield* Effect.ensuring(effect(held), used)
        })),
          () => Effect.sync(() => busy--)
        ),
      useIfReady: (effect) =>
        Effect.suspend(() => {
          if (!ready()) return Effect.succeedNone
          busy++
          // the watch takes its turn only with nobody busy: the turn is free, unless it is letting go
          return turns.withPermitsIfAvailable(1)(Effect.suspend(() => {
            if (release === undefined) return Effect.succeedNone
            unbroken = false
            return Effect.asSome(Effect.ensuring(effect, used))
          })).pipe(
            Effect.map(Option.flatten),
            Effect.ensuring(Effect.sync(() => busy--))
          )
        }),
      useNow: (f) => {
        if (!ready()) return Option.none()
        // a watch deciding to let go lets go after this returns; once it has begun, `release` is gone
        try {
          return Option.some(f())
        } finally {
          lastUsed = Date.now()
        }
      },
      ready,
      lose: () => {
        compromised = true
      }
    }
    return lease
  })
