/**
 * Global reads on PostgreSQL: the log in position order, DCB queries and
 * decision reads, and the head position. Plain reads stop at the store's
 * horizon (`<schema>.horizon()`), found by their first page, so a read
 * returns what had settled when it started and a late commit never lands
 * behind it.
 */
import { Chunk, Effect, Option, Stream } from "effect"
import type { StoredEvent } from "../../Event.js"
import type * as EventStore from "../../EventStore.js"
import type * as Query from "../../Query.js"
import type { Context } from "./context.js"
import { columns, planned, queryPredicate, toStored } from "./statements.js"

/**
 * The store's `readAll`: the global log from `range.fromPosition`, up to the
 * horizon found by the first page: a read returns what had settled when it
 * started, however many pages it takes; following what comes later is for
 * subscriptions.
 */
export const readAll = (context: Context) => (range: EventStore.LogRange) =>
  pagesAfter(context, range.chunkSize, range.limit, range.fromPosition - 1n, (after, count, bound) =>
    context.run("readAll", context.q.readAll, [String(after + 1n), count, bound]))

/**
 * Pages of the global log after `after` in order, at most `limit` events, each
 * page bounded by the horizon the first one found (its rows carry it in
 * column 10), so a read never runs past what it could see at its start.
 */
const pagesAfter = (
  context: Context,
  chunkSize: number,
  limit: number,
  after: bigint,
  fetch: (after: bigint, count: number, bound: string | null) => Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>, EventStore.StoreError>
) => {
  const page = Math.min(chunkSize, context.pageSize)
  return Stream.paginateChunkEffect(
    { after, remaining: limit, bound: null as string | null },
    ({ after, bound, remaining }) => {
      const count = Math.min(page, remaining)
      if (count <= 0) return Effect.succeed([Chunk.empty<StoredEvent>(), Option.none()])
      return Effect.map(fetch(after, count, bound), (rows) => {
        const events = rows.map(toStored)
        const last = events.at(-1)
        const done = events.length < count || last === undefined
        return [
          Chunk.unsafeFromArray(events),
          done
            ? Option.none()
            : Option.some({ after: last.globalPosition, remaining: remaining - count, bound: rows[0]![10] as string })
        ] as const
      })
    }
  )
}

/** The store's `query`: the events matching a DCB query, in global order, bounded like `readAll`. */
export const query = (context: Context) => (query: Query.Query, range: EventStore.QueryRange) => {
  const { tables } = context
  const predicate = queryPredicate(query, 4)
  // bounded, like readAll, by the horizon its first page finds
  const st = planned(`SELECT ${columns}, h.bound::text FROM (SELECT coalesce($3::bigint, ${tables.schema}.horizon()) AS bound) AS h,
     LATERAL (SELECT * FROM ${tables.events}
              WHERE global_position > $1 AND global_position < h.bound AND ${predicate.sql}
              ORDER BY global_position LIMIT $2) AS e`)
  return pagesAfter(context, range.chunkSize, range.limit, range.after, (after, count, bound) =>
    context.run("query", st, [String(after), count, bound, ...predicate.params]))
}

/**
 * The store's `queryForDecision`: every committed match (no horizon, so a
 * reader sees its own writes) and the snapshot it was read in, as the
 * condition's token.
 */
export const queryForDecision = (context: Context) => (query: Query.Query) => {
  const predicate = queryPredicate(query, 1)
  // one statement: the rows and the snapshot they were read in; no horizon, so a reader sees its own writes
  const st = planned(`WITH s AS (SELECT pg_current_snapshot()::text AS snapshot)
     SELECT s.snapshot, e.* FROM s LEFT JOIN LATERAL (
       SELECT ${columns} FROM ${context.tables.events} WHERE ${predicate.sql}
     ) AS e ON true ORDER BY e.p`)
  return Effect.map(context.run("queryForDecision", st, predicate.params), (rows): EventStore.DecisionRead => {
    const events = rows[0]?.[1] == null ? [] : rows.map((row) => toStored(row.slice(1)))
    return {
      events,
      condition: {
        failIfEventsMatch: query,
        after: events.at(-1)?.globalPosition ?? 0n,
        token: (rows[0]?.[0] as string | undefined) ?? undefined
      }
    }
  })
}

/** The store's `headPosition`: the position of the last readable event, 0 on an empty store. */
export const headPosition = (context: Context): Effect.Effect<bigint, EventStore.StoreError> =>
  Effect.map(context.run("headPosition", context.q.headPosition, []), (rows) => BigInt((rows[0]?.[0] as string | undefined) ?? "0"))
