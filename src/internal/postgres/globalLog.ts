/**
 * Global reads on PostgreSQL: the log in position order, DCB queries and
 * decision reads, and the head position. Plain reads stop at the store's
 * horizon (`<schema>.horizon()`), found by their first page, so a read
 * returns what had settled when it started and a late commit never lands
 * behind it.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { StoredEvent } from "../../Event.js"
import type * as EventStore from "../../EventStore.js"
import type * as Query from "../../Query.js"
import type { Context } from "./context.js"
import { columns, planned, queryPredicate, type Statement, statement, toStored } from "./statements.js"

/**
 * A filter's conditions on the events table (parameters from `$first` on)
 * and their values: categories through the `split_part(stream_id, '-', 1)`
 * index, a partition through the stream's stored hash.
 */
const filterSql = (context: Context, range: EventStore.LogRange, first: number) => {
  const conditions: Array<string> = []
  const params: Array<unknown> = []
  const next = () => `$${first + params.length}`
  if (range.categories !== undefined) {
    conditions.push(`split_part(stream_id, '-', 1) = ANY(${next()}::text[])`)
    params.push(range.categories)
  }
  if (range.types !== undefined) {
    conditions.push(`type = ANY(${next()}::text[])`)
    params.push(range.types)
  }
  if (range.partition !== undefined && range.partition.of > 1) {
    const of = next()
    params.push(range.partition.of)
    // the stream's hash by primary key, per event walked: an IN (subquery) was planned as a loop over the partition's streams
    conditions.push(
      `(SELECT st.hash FROM ${context.tables.streams} AS st WHERE st.stream_id = ${context.tables.events}.stream_id) % ${of}::bigint = ${next()}::bigint`
    )
    params.push(range.partition.member)
  }
  return { conditions, params, key: `${range.categories !== undefined}:${range.types !== undefined}:${range.partition !== undefined && range.partition.of > 1}` }
}

/**
 * The store's `readAll`: the global log from `range.fromPosition`, up to the
 * horizon found by the first page: a read returns what had settled when it
 * started, however many pages it takes; following what comes later is for
 * subscriptions. Backwards, from `range.fromPosition` down, below the same
 * horizon. A filter becomes part of the statement.
 */
export const readAll = (context: Context) => {
  const filtered = new Map<string, Statement>()
  const statementFor = (range: EventStore.LogRange, filter: ReturnType<typeof filterSql>): Statement => {
    const backwards = range.direction === "backwards"
    if (!backwards && filter.conditions.length === 0) return context.q.readAll
    const key = `${backwards}:${filter.key}`
    let st = filtered.get(key)
    if (st === undefined) {
      const { tables } = context
      const conditions = [backwards ? "global_position <= $1" : "global_position >= $1", "global_position < h.bound", ...filter.conditions]
      st = statement(`SELECT ${columns}, h.bound::text FROM (SELECT coalesce($3::bigint, ${tables.schema}.horizon()) AS bound OFFSET 0) AS h,
         LATERAL (SELECT * FROM ${tables.events} WHERE ${conditions.join(" AND ")}
                  ORDER BY global_position ${backwards ? "DESC" : ""} LIMIT $2) AS e`)
      filtered.set(key, st)
    }
    return st
  }
  return (range: EventStore.LogRange) => {
    const filter = filterSql(context, range, 4)
    const st = statementFor(range, filter)
    const fetch = (from: bigint, count: number, bound: string | null) =>
      context.readLog("readAll", st, [String(from), count, bound, ...filter.params])
    if (range.direction === "backwards") {
      const top = range.fromPosition > maxPosition ? maxPosition : range.fromPosition
      return pages(context, range.chunkSize, range.limit, top, -1n, fetch)
    }
    return pages(context, range.chunkSize, range.limit, range.fromPosition, 1n, fetch)
  }
}

/** Whether a range filters by partition alone: what `partition_page` serves. */
const partitionOnly = (range: EventStore.LogRange) =>
  range.partition !== undefined && range.partition.of > 1 && range.categories === undefined && range.types === undefined

/**
 * The store's `readLogPage`: one filtered page below the horizon, and the
 * last position below it (what the page looked through when it is not full):
 * one row of nulls but that when nothing matched.
 */
export const readLogPage = (context: Context) => {
  const statements = new Map<string, Statement>()
  const readLog = readAll(context)
  return (range: EventStore.LogRange): Effect.Effect<EventStore.LogPage, EventStore.StoreError> => {
    if (range.partition === undefined || range.partition.of === 1) {
      // without a partition, a page as readAll reads it (its plans are the proven ones), up to its last event
      return Effect.map(Stream.runCollect(readLog({ ...range, direction: "forwards", chunkSize: range.limit })), (chunk) => {
        const events = Chunk.toReadonlyArray(chunk)
        return { events, through: events.at(-1)?.globalPosition ?? range.fromPosition - 1n }
      })
    }
    const filter = filterSql(context, range, 3)
    let st = statements.get(filter.key)
    if (st === undefined) {
      const { tables } = context
      // horizon() reads live lock state: evaluated once (materialized), or the page and `looked` could see two horizons
      st = statement(`WITH h AS MATERIALIZED (
           SELECT b.bound, (SELECT max(global_position) FROM ${tables.events} WHERE global_position < b.bound) AS looked
             FROM (SELECT ${tables.schema}.horizon() AS bound OFFSET 0) AS b)
         SELECT ${columns}, h.looked::text FROM h
         LEFT JOIN LATERAL ${
        partitionOnly(range)
          ? `${tables.schema}.partition_page($1, h.bound, $2, $3, $4)`
          : `(SELECT * FROM ${tables.events}
                            WHERE ${["global_position >= $1", "global_position < h.bound", ...filter.conditions].join(" AND ")}
                            ORDER BY global_position LIMIT $2)`
      } AS e ON true`)
      statements.set(filter.key, st)
    }
    return Effect.map(context.run("readAll", st, [String(range.fromPosition), range.limit, ...filter.params]), (rows) => {
      const events = rows[0]?.[0] == null ? [] : rows.map(toStored)
      const looked = rows[0]?.[10] == null ? 0n : BigInt(rows[0][10] as string)
      const through = events.length === range.limit ? events.at(-1)!.globalPosition : looked
      return { events, through: through < range.fromPosition - 1n ? range.fromPosition - 1n : through }
    })
  }
}

/** The highest position a bigint column holds. */
const maxPosition = 2n ** 63n - 1n

/**
 * Pages of the global log from `from` on, in the direction of `step`, at most
 * `limit` events, each page bounded by the horizon the first one found (its
 * rows carry it in column 10), so a read never runs past what it could see at
 * its start.
 */
const pages = (
  context: Context,
  chunkSize: number,
  limit: number,
  from: bigint,
  step: bigint,
  fetch: (from: bigint, count: number, bound: string | null) => Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>, EventStore.StoreError>
) => {
  const page = Math.min(chunkSize, context.pageSize)
  return Stream.paginateChunkEffect(
    { from, remaining: limit, bound: null as string | null },
    ({ bound, from, remaining }) => {
      const count = Math.min(page, remaining)
      if (count <= 0 || from < 0n) return Effect.succeed([Chunk.empty<StoredEvent>(), Option.none()])
      return Effect.map(fetch(from, count, bound), (rows) => {
        const events = rows.map(toStored)
        const last = events.at(-1)
        const done = events.length < count || last === undefined
        return [
          Chunk.unsafeFromArray(events),
          done
            ? Option.none()
            : Option.some({ from: last.globalPosition + step, remaining: remaining - count, bound: rows[0]![10] as string })
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
  const st = planned(`SELECT ${columns}, h.bound::text FROM (SELECT coalesce($3::bigint, ${tables.schema}.horizon()) AS bound OFFSET 0) AS h,
     LATERAL (SELECT * FROM ${tables.events}
              WHERE global_position >= $1 AND global_position < h.bound AND ${predicate.sql}
              ORDER BY global_position LIMIT $2) AS e`)
  return pages(context, range.chunkSize, range.limit, range.after + 1n, 1n, (from, count, bound) =>
    context.run("query", st, [String(from), count, bound, ...predicate.params]))
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
