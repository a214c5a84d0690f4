/**
 * Group commit for the PostgreSQL event store: appends that arrive while
 * others are on their way go out together as one call of `append_group`.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type { Row, Statement } from "./statements.js"

/** What group commit needs of the store: how to run a statement, and the group statement. */
export interface GroupCommitOptions {
  readonly execute: (st: Statement, params: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<Row>, unknown>
  readonly appendGroup: Statement
  /** Most events one group may carry (the batch index's bits of a position). */
  readonly maxBatch: number
}

/** Appends of more events than this skip the group: they gain more from running on connections of their own. */
export const groupableEvents = 16

/**
 * A sender of appends: `send(st, params, request, events)` resolves with the
 * rows the append's own statement would have returned.
 */
export const makeGroupCommit = ({ appendGroup, execute, maxBatch }: GroupCommitOptions) => {
  /**
   * Group commit. Appends that arrive while others are on their way wait in
   * `queued`; a fiber that finds a sender slot free sends what is queued as
   * one call of `append_group` (one round trip, one transaction, one WAL
   * flush for many appends), up to `maxSenders` groups at a time. A lone
   * append goes out at once as its own prepared statement. Each append
   * gets the rows its own statement would have returned, so refusals,
   * re-sends and retries are explained as before; a group that fails as a
   * whole (a duplicate event id, say) is re-sent append by append.
   */
  interface Queued {
    readonly st: Statement
    readonly params: ReadonlyArray<unknown>
    readonly request: () => string
    readonly events: number
    readonly done: Deferred.Deferred<ReadonlyArray<Row>, unknown>
  }
  const queued: Array<Queued> = []
  let senders = 0
  const maxSenders = 2
  const maxGroup = 64

  const sendGroup = (group: ReadonlyArray<Queued>): Effect.Effect<void> => {
    if (group.length === 1) {
      const [only] = group
      return Effect.flatMap(Effect.exit(execute(only!.st, only!.params)), (exit) => Deferred.done(only!.done, exit))
    }
    const requests = `[${group.map((item, i) => item.request().replace("{", `{"i":${i},`)).join(",")}]`
    return Effect.exit(execute(appendGroup, [requests])).pipe(
      Effect.flatMap((exit) => {
        if (exit._tag === "Success") {
          const byIndex = new Map(exit.value.map((row) => [Number(row[0]), row] as const))
          return Effect.forEach(group, (item, i) => {
            const row = byIndex.get(i)
            return Deferred.succeed(item.done, row === undefined ? [] : [row.slice(1)])
          }, { discard: true })
        }
        return Effect.forEach(
          group,
          (item) => Effect.flatMap(Effect.exit(execute(item.st, item.params)), (single) => Deferred.done(item.done, single)),
          { concurrency: "unbounded", discard: true }
        )
      })
    )
  }

  /** Sends queued groups until the queue is empty; the slot is held until then. */
  const drain: Effect.Effect<void> = Effect.suspend(() => {
    if (queued.length === 0) {
      senders--
      return Effect.void
    }
    let events = 0
    let take = 0
    while (take < queued.length && take < maxGroup && events + queued[take]!.events <= maxBatch) events += queued[take++]!.events
    const group = queued.splice(0, Math.max(1, take))
    return Effect.zipRight(sendGroup(group), drain)
  })

  /** After sending our own append: serve what queued up meanwhile in the background, or free the slot. */
  const handOver = <A, E>(exit: Exit.Exit<A, E>): Effect.Effect<A, E> => {
    if (queued.length > 0) return Effect.zipRight(Effect.forkDaemon(Effect.uninterruptible(drain)), exit)
    senders--
    return exit
  }

  const grouped = (
    st: Statement,
    params: ReadonlyArray<unknown>,
    request: () => string,
    events: number
  ): Effect.Effect<ReadonlyArray<Row>, unknown> =>
    Effect.withFiberRuntime((fiber) => {
      if (senders === 0 && queued.length === 0) {
        // an idle store: send our own append from this fiber, as its own prepared statement
        senders++
        return Effect.uninterruptible(Effect.flatMap(Effect.exit(execute(st, params)), handOver))
      }
      const done = Deferred.unsafeMake<ReadonlyArray<Row>, unknown>(fiber.id())
      queued.push({ st, params, request, events, done })
      if (senders < maxSenders) {
        senders++
        return Effect.zipRight(Effect.forkDaemon(Effect.uninterruptible(drain)), Deferred.await(done))
      }
      return Deferred.await(done)
    })

  return grouped
}
