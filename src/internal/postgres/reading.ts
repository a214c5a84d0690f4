/**
 * Stream reads on PostgreSQL: page by page, each page bounded on both sides
 * (versions are dense), so memory stays flat whatever the stream's length.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { EventPayload } from "../../Event.js"
import type * as EventStore from "../../EventStore.js"
import type { StreamId } from "../../StreamId.js"
import type { Context } from "./context.js"
import { payloadOf, type Row, type Statement, toStored } from "./statements.js"

/**
 * Pages through a stream's range, each page bounded on both sides (versions
 * are dense), and all of them by the stream's version when the read
 * starts: backwards reads look it up first, forwards pages carry it (the
 * first page's bounds the rest), so appends made meanwhile are not read.
 */
const pages = <A extends { readonly streamVersion: number }>(
  context: Context,
  streamId: StreamId,
  range: EventStore.StreamRange,
  queries: { readonly forwards: Statement; readonly backwards: Statement },
  decode: (row: Row) => A
) => {
  const page = Math.min(range.chunkSize, context.pageSize)
  const forwards = range.direction === "forwards"
  const query = forwards ? queries.forwards : queries.backwards
  const fetch = (low: number, high: number, count: number) => context.run("read", query, [streamId, low, high, count])
  const pagesUpTo = (top: number) =>
    Stream.paginateChunkEffect(
      { next: forwards ? range.fromVersion : top, remaining: range.limit, top },
      ({ next, remaining, top }) => {
        const count = Math.min(page, remaining)
        const low = forwards ? next : Math.max(range.fromVersion, next - count + 1)
        const high = forwards ? Math.min(top, next + count - 1) : next
        if (count <= 0 || low > high) return Effect.succeed([Chunk.empty<A>(), Option.none()])
        return Effect.map(fetch(low, high, count), (rows) => {
          const events = rows.map(decode)
          const done = events.length < high - low + 1 || events.length >= remaining
          const last = events.at(-1)?.streamVersion ?? next
          const bound = forwards && rows.length > 0 ? Math.min(top, Number(rows[0]!.at(-1))) : top
          const following = { next: forwards ? last + 1 : last - 1, remaining: remaining - events.length, top: bound }
          return [Chunk.unsafeFromArray(events), done ? Option.none() : Option.some(following)] as const
        })
      }
    )
  // backwards reads start at the stream's top, which only the database knows
  return forwards
    ? pagesUpTo(range.toVersion)
    : Stream.unwrap(Effect.map(context.currentVersion(streamId), (version) => pagesUpTo(Math.min(version, range.toVersion))))
}

/** The store's `read`: a stream's events in a range. */
export const read = (context: Context) => (streamId: StreamId, range: EventStore.StreamRange) =>
  pages(context, streamId, range, { forwards: context.q.readForwards, backwards: context.q.readBackwards }, toStored)

/** The store's `readPayloads`: what folding needs of each event (four columns). */
export const readPayloads = (context: Context) => (streamId: StreamId, range: EventStore.StreamRange) =>
  pages(
    context,
    streamId,
    range,
    { forwards: context.q.readPayloadsForwards, backwards: context.q.readPayloadsBackwards },
    (row) => payloadOf(streamId, row)
  )

/** The store's `readPage`: one forward page of payloads, as one prepared statement. */
export const readPage = (context: Context) => (streamId: StreamId, page: EventStore.Page) =>
  Effect.map(
    context.run("read", context.q.readPayloadsForwards, [streamId, page.fromVersion, page.toVersion, page.limit]),
    (rows) => rows.map((row): EventPayload => payloadOf(streamId, row))
  )
