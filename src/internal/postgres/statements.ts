/**
 * The PostgreSQL event store's statements and rows: the SQL it runs (named,
 * prepared on the store's own pool), the SQL of DCB queries, and decoding of
 * the rows it reads.
 */
import type Pg from "pg"
import { crc32 } from "node:zlib"
import type { EventPayload, StoredEvent } from "../../Event.js"
import type * as EventId from "../../EventId.js"
import type * as Query from "../../Query.js"
import type { StreamId } from "../../StreamId.js"
import type { Tables } from "./schema.js"

export type Row = ReadonlyArray<unknown>

// aliased: an output column named like a table column would capture ORDER BY stream_version
export const columns = `global_position AS p, stream_id AS s, stream_version AS v, event_id AS id,
  type AS t, schema_version AS sv, data AS d, metadata AS m, recorded_ms AS at,
  CASE WHEN tags = '{}' THEN NULL ELSE array_to_json(tags) END AS g`

export const noTags: ReadonlyArray<string> = Object.freeze([])

export const json = (value: unknown): unknown => (typeof value === "string" ? JSON.parse(value) : value)

const emptyMetadata: StoredEvent["metadata"] = Object.freeze({})

const metadataOf = (value: unknown): StoredEvent["metadata"] =>
  value === "{}" || value == null ? emptyMetadata : (json(value) as StoredEvent["metadata"])

export const toStored = (row: Row): StoredEvent => ({
  globalPosition: BigInt(row[0] as string | bigint),
  streamId: row[1] as StreamId,
  streamVersion: Number(row[2]),
  eventId: row[3] as EventId.EventId,
  type: row[4] as string,
  schemaVersion: Number(row[5]),
  data: json(row[6]),
  metadata: metadataOf(row[7]),
  recordedAt: new Date(Number(row[8])),
  tags: row[9] == null ? noTags : (json(row[9]) as ReadonlyArray<string>)
})

export const payloadOf = (streamId: StreamId, row: Row): EventPayload => ({
  streamId,
  streamVersion: Number(row[0]),
  type: row[1] as string,
  schemaVersion: Number(row[2]),
  data: json(row[3])
})

/** A statement the store runs, named when it runs prepared on the store's own pool. */
export interface Statement {
  readonly name: string | undefined
  readonly text: string
}

export const statement = (text: string): Statement => ({ name: `chronicle_${crc32(text).toString(16)}`, text })

/**
 * A statement planned anew on every run: for tag queries, whose best plan
 * depends on the values (a prepared statement's generic plan walks the whole
 * primary key instead of the tags' GIN index).
 */
export const planned = (text: string): Statement => ({ name: undefined, text })

const asText = (value: string) => value
const asBoolean = (value: string) => value === "t"

/** Type parsers for the store's own queries: raw strings, but for what the store decodes itself. */
export const rawTypes: Pg.CustomTypesConfig = {
  getTypeParser: ((oid: number) =>
    oid === 21 || oid === 23 || oid === 701 ? Number : oid === 16 ? asBoolean : asText) as Pg.CustomTypesConfig["getTypeParser"]
}

/**
 * The store's statements. With `notify`, each append that wrote announces
 * itself on the store's channel in its own transaction: delivered at commit,
 * one notification per transaction however many appends it holds.
 */
export const statements = (t: Tables, notify: boolean) => {
  const announce = (wrote: string) => (notify ? `, CASE WHEN ${wrote} THEN pg_notify('${t.channel}', 'append') END` : "")
  return {
    appendStream: statement(
      `SELECT version::text, base::text, deleted, stored::text${
        announce("base IS NOT NULL")
      } FROM ${t.schema}.append_stream_explained($1, $2, $3, $4, $5::json)`
    ),
    streamVersion: statement(`SELECT version::text FROM ${t.streams} WHERE stream_id = $1`),
    isDeleted: statement(`SELECT deleted_at IS NOT NULL FROM ${t.streams} WHERE stream_id = $1`),
    lockStreamKey: statement(`SELECT pg_advisory_xact_lock(${t.schema}.stream_key($1))`),
    ensureStream: statement(`INSERT INTO ${t.streams} (stream_id, version) VALUES ($1, 0) ON CONFLICT (stream_id) DO NOTHING`),
    lockStream: statement(`SELECT version::text, deleted_at IS NOT NULL FROM ${t.streams} WHERE stream_id = $1 FOR UPDATE`),
    tombstone: statement(`UPDATE ${t.streams} SET deleted_at = now() WHERE stream_id = $1 AND deleted_at IS NULL`),
    eraseEvents: statement(`DELETE FROM ${t.events} WHERE stream_id = $1`),
    locate: statement(`SELECT (SELECT version::text FROM ${t.streams} WHERE stream_id = $1) AS version,
       (SELECT deleted_at IS NOT NULL FROM ${t.streams} WHERE stream_id = $1) AS deleted,
       (SELECT json_agg(json_build_object('id', event_id, 's', stream_id, 'v', stream_version, 'p', global_position::text))
        FROM ${t.events} WHERE event_id IN (SELECT value::uuid FROM json_array_elements_text($2::json))) AS found`),
    // forwards pages also carry the stream's version in the same snapshot: the bound of the pages that follow
    readForwards: statement(`SELECT ${columns}, (SELECT version FROM ${t.streams} WHERE stream_id = $1)::text AS top FROM ${t.events}
       WHERE stream_id = $1 AND stream_version >= $2 AND stream_version <= $3
       ORDER BY stream_version LIMIT $4`),
    readBackwards: statement(`SELECT ${columns} FROM ${t.events}
       WHERE stream_id = $1 AND stream_version >= $2 AND stream_version <= $3
       ORDER BY stream_version DESC LIMIT $4`),
    readPayloadsForwards: statement(`SELECT stream_version AS v, type AS t, schema_version AS sv, data AS d,
         (SELECT version FROM ${t.streams} WHERE stream_id = $1)::text AS top FROM ${t.events}
       WHERE stream_id = $1 AND stream_version >= $2 AND stream_version <= $3
       ORDER BY stream_version LIMIT $4`),
    readPayloadsBackwards: statement(`SELECT stream_version AS v, type AS t, schema_version AS sv, data AS d FROM ${t.events}
       WHERE stream_id = $1 AND stream_version >= $2 AND stream_version <= $3
       ORDER BY stream_version DESC LIMIT $4`),
    // the first page settles the read's bound (the horizon when it started); the rest keep to it.
    // OFFSET 0 keeps the subquery whole: horizon() reads live lock state, inlined it could be evaluated twice
    readAll: statement(`SELECT ${columns}, h.bound::text FROM (SELECT coalesce($3::bigint, ${t.schema}.horizon()) AS bound OFFSET 0) AS h,
       LATERAL (SELECT * FROM ${t.events} WHERE global_position >= $1 AND global_position < h.bound
                ORDER BY global_position LIMIT $2) AS e`),
    headPosition: statement(`SELECT coalesce(max(global_position), 0)::text FROM ${t.events}
       WHERE global_position < (SELECT ${t.schema}.horizon())`),
    notify: statement(`SELECT pg_notify($1, $2)`),
    appendGroup: statement(
      `SELECT i, version::text, base::text, deleted, stored::text${
        announce("base IS NOT NULL")
      } FROM ${t.schema}.append_group_explained($1::json)`
    ),
    appendGuarded: statement(
      `SELECT outcome, version::text, base::text, conflict::text, conflict_id::text${
        announce("outcome = 'ok'")
      } FROM ${t.schema}.append_guarded($1::json)`
    )
  }
}

/**
 * The SQL of a query's items over the events table, parameters from `$first`
 * on: each item is a type list and a tag array (only what it names).
 */
export const queryPredicate = (query: Query.Query, first: number): { readonly sql: string; readonly params: ReadonlyArray<unknown> } => {
  const params: Array<unknown> = []
  const items = query.items.map((item) => {
    const parts: Array<string> = []
    if (item.types !== undefined && item.types.length > 0) {
      params.push(item.types)
      parts.push(`type = ANY($${first + params.length - 1}::text[])`)
    }
    if (item.tags !== undefined && item.tags.length > 0) {
      params.push(item.tags)
      parts.push(`tags @> $${first + params.length - 1}::text[] AND tags <> '{}'`)
    }
    return parts.length === 0 ? "TRUE" : `(${parts.join(" AND ")})`
  })
  return { sql: items.length === 0 ? "FALSE" : `(${items.join(" OR ")})`, params }
}

