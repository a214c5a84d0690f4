/**
 * Partitioned reads on PostgreSQL: the stored stream hash is the one
 * `StreamId.partitionOf` computes, for any Unicode id and for streams that
 * existed before the migration; and partition readers that move on by
 * `through` never skip an event committed late by a slower writer.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fc from "fast-check"
import type { Event } from "chronicle"
import { EventStore, StreamId } from "chronicle"
import { PostgresEventStore } from "chronicle/postgres"
import { streamHash } from "../../src/internal/partition.js"
import { events } from "../contract/EventStoreContract.js"
import { client, dropSchemaAfter, postgresAvailable, uniqueSchema } from "../support/postgres.js"
import { pause } from "../support/time.js"

const schema = uniqueSchema("partition")
const layer = Layer.mergeAll(PostgresEventStore.layer({ schema }), dropSchemaAfter(schema)).pipe(Layer.provideMerge(client({ maxConnections: 16 })))

const tricky = [
  "a-1",
  "a-😀𝔘𠜎",
  "a-e\u0301\u0302n\u0303",
  "a-ß-ÿ-\u00a0-\u2028-\uffff",
  `a-${"€".repeat(340)}xx`,
  `a-${"😀".repeat(255)}x`
]

describe.runIf(postgresAvailable())("PostgresEventStore partitions", () => {
  it.effect("the SQL stream hash equals StreamId's FNV-1a for tricky and random Unicode ids", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* EventStore.EventStore
      const hashes = (ids: ReadonlyArray<string>) =>
        Effect.map(
          sql.unsafe<{ readonly h: string }>(`SELECT ${schema}.stream_hash(x)::text AS h FROM unnest($1::text[]) WITH ORDINALITY AS u(x, i) ORDER BY i`, [ids]),
          (rows) => rows.map((row) => Number(row.h))
        )
      expect(Buffer.byteLength(tricky[4]!)).toBe(1024)
      expect(yield* hashes(tricky)).toEqual(tricky.map(streamHash))
      const ids = fc.sample(fc.string({ unit: "binary", minLength: 1, maxLength: 300 }).filter((s) => !s.includes("\u0000")), 300)
      expect(yield* hashes(ids)).toEqual(ids.map(streamHash))
    }).pipe(Effect.provide(layer)))

  it.effect("streams written before the migration get their hash when it runs", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const ids = tricky.map((id) => StreamId.unsafeMake("a", id.slice(2)))
      for (const id of ids) yield* EventStore.append(id, events(1), { expectedVersion: "Any" })
      // undo migration 12 as if these streams predated it, then migrate again
      yield* sql.unsafe(`DROP TRIGGER streams_hash ON ${schema}.streams`)
      yield* sql.unsafe(`ALTER TABLE ${schema}.streams DROP COLUMN hash`)
      yield* sql.unsafe(`DROP FUNCTION ${schema}.set_stream_hash(), ${schema}.stream_hash(text), ${schema}.partition_page(bigint, bigint, int, bigint, bigint)`)
      yield* sql.unsafe(`DELETE FROM ${schema}.schema_migrations WHERE version = 12`)
      yield* Effect.provide(EventStore.EventStore, PostgresEventStore.layer({ schema }))
      const rows = yield* sql.unsafe<{ readonly s: string; readonly h: string }>(
        `SELECT stream_id AS s, hash::text AS h FROM ${schema}.streams WHERE stream_id = ANY($1::text[])`,
        [ids]
      )
      expect(rows.length).toBe(ids.length)
      for (const row of rows) expect(Number(row.h)).toBe(streamHash(row.s))
    }).pipe(Effect.provide(layer)))

  it.live("partition readers moving on by through never skip an event committed late by a slower writer", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      const writers = 10
      const written = new Set<string>()
      let writing = writers
      const writer = (w: number) =>
        Effect.forEach(Array.from({ length: 15 }, (_, i) => i), (i) => {
          const batch = events(1 + ((w + i) % 3))
          const append = EventStore.append(StreamId.unsafeMake("late", `w${w}s${i % 5}`), batch, { expectedVersion: "Any" }).pipe(
            Effect.tap(() => batch.forEach((e) => written.add(e.eventId!)))
          )
          // every third append holds its transaction open after inserting: it commits after later ids
          return i % 3 === w % 3 ? sql.withTransaction(Effect.zipLeft(append, pause(10 + ((w * 7 + i * 13) % 60)))) : append
        }, { discard: true }).pipe(Effect.ensuring(Effect.sync(() => writing--)))
      const of = 3
      const seen: Array<Array<Event.StoredEvent>> = Array.from({ length: of }, () => [])
      const reader = (member: number) =>
        Effect.gen(function*() {
          let after = 0n
          const deadline = Date.now() + 60_000
          while (Date.now() < deadline) {
            const done = writing === 0
            const page = yield* store.readLogPage({ after, limit: 7, filter: { partition: { member, of } } })
            seen[member]!.push(...page.events)
            // how far the page looked is never short of its own events: the next page would deliver them again
            if (page.events.length > 0) expect(page.through >= page.events.at(-1)!.globalPosition).toBe(true)
            after = page.through
            if (done && page.events.length === 0 && seen.flat().length >= written.size) return
            yield* pause(2)
          }
        })
      yield* Effect.all([
        Effect.all(Array.from({ length: writers }, (_, w) => writer(w)), { concurrency: "unbounded" }),
        ...Array.from({ length: of }, (_, member) => reader(member))
      ], { concurrency: "unbounded" })
      const ids = seen.flat().map((e) => e.eventId as string)
      expect(new Set(ids).size).toBe(ids.length)
      expect([...ids].sort()).toEqual([...written].sort())
      seen.forEach((mine, member) => {
        for (const e of mine) expect(StreamId.partitionOf(e.streamId, of)).toBe(member)
        for (let i = 1; i < mine.length; i++) expect(mine[i]!.globalPosition > mine[i - 1]!.globalPosition).toBe(true)
      })
    }).pipe(Effect.provide(layer)), 90_000)
})
