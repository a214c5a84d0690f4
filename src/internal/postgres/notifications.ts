/**
 * Live delivery on PostgreSQL: appends announce themselves on the store's
 * LISTEN/NOTIFY channel in their own transaction (see `statements`), and
 * subscriptions LISTEN on it through the `PgClient` (polling covers a lost
 * notification).
 */
import { PgClient } from "@effect/sql-pg"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as EventId from "../../EventId.js"
import type { Context } from "./context.js"

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
