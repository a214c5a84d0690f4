/**
 * Live delivery on PostgreSQL: appends announce themselves on the store's
 * LISTEN/NOTIFY channel, and subscriptions LISTEN on it through the
 * `PgClient` (polling covers a lost notification).
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Deferred, Effect, Option, type Scope, Stream } from "effect"
import * as EventId from "../../EventId.js"
import type { Context } from "./context.js"

/**
 * Wakes subscriptions. Inside a transaction the notification is part of
 * it (delivered on commit). Otherwise one notification at a time is in
 * flight, sent after the commit: appends never wait for it, and each
 * commit is followed by a notification sent after it. Nothing at all when
 * `enabled` is false.
 */
export const makeAnnounce = (context: Context, enabled: boolean): Effect.Effect<void> => {
  const { pool, q, run, tables } = context
  let notifying: "idle" | "running" | "again" = "idle"
  // its own transaction, committed without waiting for the WAL flush: a hint, not data
  const notifyText = `BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_notify('${tables.channel}', 'append'); COMMIT`
  // a lost notification delays subscribers until their next poll: said, not failed
  const notFailed = (error: unknown) =>
    Effect.logWarning("chronicle: a notification of an append failed; subscriptions will see it at their next poll").pipe(
      Effect.annotateLogs({ error: error instanceof Error ? error.message : String(error) })
    )
  const notifyOnce: Effect.Effect<void> = pool === undefined
    ? Effect.catchAll(run("notify", q.notify, [tables.channel, "append"]), notFailed)
    : Effect.async<void>((resume) => {
      // a store shutting down has nobody left to wake: its pool's end is no failure worth a warning
      if (pool.ending) return resume(Effect.void)
      pool.query(notifyText, (error) => resume(error && !pool.ending ? notFailed(error) : Effect.void))
    })
  const sendNotification: Effect.Effect<void> = notifyOnce.pipe(
    Effect.zipRight(Effect.suspend(() => {
      if (notifying === "again") {
        notifying = "running"
        return sendNotification
      }
      notifying = "idle"
      return Effect.void
    }))
  )
  return !enabled ? Effect.void : Effect.flatMap(
    Effect.serviceOption(SqlClient.TransactionConnection),
    (transaction) => {
      if (Option.isSome(transaction)) return Effect.catchAll(run("notify", q.notify, [tables.channel, "append"]), notFailed)
      if (notifying !== "idle") {
        notifying = "again"
        return Effect.void
      }
      notifying = "running"
      return Effect.asVoid(Effect.forkDaemon(sendNotification))
    }
  )
}

/**
 * LISTEN on the store's channel through the `PgClient` in context, if there
 * is one (else subscriptions only poll). `listen` gives no sign of when it
 * is active, so the watcher notifies itself until its own token comes back
 * (for at most a second; polling covers the rest).
 */
export const makeWatch = (
  context: Context
): Effect.Effect<((onChange: () => void) => Effect.Effect<void, never, Scope.Scope>) | undefined> =>
  Effect.map(Effect.serviceOption(PgClient.PgClient), (pgClient) => {
    const { q, run, tables } = context
    return Option.isNone(pgClient) ? undefined : (onChange: () => void) =>
      Effect.gen(function*() {
        const token = `ready:${EventId.unsafeGenerate()}`
        const ready = yield* Deferred.make<void>()
        yield* pgClient.value.listen(tables.channel).pipe(
          Stream.runForEach((payload) => (payload === token ? Deferred.succeed(ready, undefined) : Effect.sync(onChange))),
          Effect.catchAllCause((cause) => Effect.logWarning("chronicle: LISTEN failed; subscriptions poll", cause)),
          Effect.forkScoped
        )
        for (let attempt = 0; attempt < 20; attempt++) {
          yield* Effect.ignore(run("notify", q.notify, [tables.channel, token]))
          if (Option.isSome(yield* Effect.timeoutOption(Deferred.await(ready), "50 millis"))) return
        }
      })
  })
