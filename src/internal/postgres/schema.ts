import * as Effect from "effect/Effect"
import { SqlClient } from "@effect/sql"
import { StoreError } from "../../EventStore.js"
import { storeError } from "./errors.js"

/** The quoted, schema-qualified names of a store's tables. */
export interface Tables {
  readonly schema: string
  readonly events: string
  readonly streams: string
  readonly snapshots: string
  readonly checkpoints: string
  readonly migrations: string
  /** The LISTEN/NOTIFY channel announcing appends (an identifier of at most 63 bytes). */
  readonly channel: string
}

const identifier = /^[a-z_][a-z0-9_]{0,62}$/

/**
 * Names the tables of a store living in PostgreSQL schema `schema`. The name
 * is checked, not escaped into shape: lower-case letters, digits and `_`.
 */
export const tablesOf = (schema: string): Tables => {
  if (!identifier.test(schema)) {
    throw new StoreError({
      operation: "configure",
      reason: `the schema name ${JSON.stringify(schema)} must match ${identifier.source}`
    })
  }
  const q = (table: string) => `"${schema}"."${table}"`
  return {
    schema: `"${schema}"`,
    events: q("events"),
    streams: q("streams"),
    snapshots: q("snapshots"),
    checkpoints: q("checkpoints"),
    migrations: q("schema_migrations"),
    channel: `chronicle_${schema}`.slice(0, 63)
  }
}

/** The loop of `append_group` (PL/pgSQL): each request written in stream order, positions one after another. */
const groupWrites = (t: Tables): string =>
  `       FOR r IN SELECT x.i, x.s, x.m, x.e, x.n, x.ev
                FROM json_to_recordset(requests) AS x(i int, s text, m text, e bigint, n int, ev json)
                ORDER BY x.s, x.i LOOP
         b := ${t.schema}.write_stream(r.s, r.m, r.e, r.n, r.ev, origin + offs);
         i := r.i;
         version := b + r.n;
         base := CASE WHEN b IS NULL THEN NULL ELSE origin + offs END;
         RETURN NEXT;
         IF b IS NOT NULL THEN
           offs := offs + r.n;
         END IF;
       END LOOP;
`

/**
 * The loop of `append_group_explained` (PL/pgSQL): `groupWrites`, and each
 * refused request answered with its `refusal`.
 */
const explainedGroupWrites = (t: Tables): string =>
  `       FOR r IN SELECT x.i, x.s, x.m, x.e, x.n, x.ev
                FROM json_to_recordset(requests) AS x(i int, s text, m text, e bigint, n int, ev json)
                ORDER BY x.s, x.i LOOP
         b := ${t.schema}.write_stream(r.s, r.m, r.e, r.n, r.ev, origin + offs);
         i := r.i;
         IF b IS NULL THEN
           SELECT x.version, NULL::bigint, x.deleted, x.stored INTO version, base, deleted, stored FROM ${t.schema}.refusal(r.s, r.ev) AS x;
         ELSE
           version := b + r.n;
           base := origin + offs;
           deleted := NULL;
           stored := NULL;
           offs := offs + r.n;
         END IF;
         RETURN NEXT;
       END LOOP;
`

/** The end of `append_guarded` (PL/pgSQL): the write at `origin`, and its outcome. */
const guardedWrite = (t: Tables): string =>
  `       b := ${t.schema}.write_stream(r.s, r.m, r.e, r.n, r.ev, origin);
       IF b IS NULL THEN
         RETURN QUERY SELECT 'refused'::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::uuid;
       ELSE
         RETURN QUERY SELECT 'ok'::text, b + r.n, origin, NULL::bigint, NULL::uuid;
       END IF;
`

/** The start of `append_guarded` (PL/pgSQL): its signature, its variables, the request read into `r`. */
const guardedHead = (t: Tables, create: "CREATE" | "CREATE OR REPLACE"): string =>
  `${create} FUNCTION ${t.schema}.append_guarded(request json)
       RETURNS TABLE (outcome text, version bigint, base bigint, conflict bigint, conflict_id uuid) LANGUAGE plpgsql AS $fn$
     #variable_conflict use_column
     DECLARE
       r record;
       item record;
       b bigint;
       origin bigint;
       check_sql text;
       found_position bigint;
       found_id uuid;
       first_position bigint;
       first_id uuid;
     BEGIN
       SELECT x.s, x.m, x.e, x.n, x.ev, x.keys, x.exclusive, x.whole, x.q, x.after, x.token INTO r
         FROM json_to_record(request) AS x(s text, m text, e bigint, n int, ev json, keys bigint[], exclusive bool[],
                                           whole bool, q json, after bigint, token text);
`

/**
 * The body of a conditional append's check (PL/pgSQL, over the request `r`):
 * the first event matching one of the condition's items after `r.after` (or
 * unseen by the decision's snapshot `r.token`) refuses the append.
 */
const conditionCheck = (t: Tables): string =>
  `       -- each statement below sees what committed while we waited for the locks
       IF r.q IS NOT NULL THEN
         FOR item IN SELECT i.types, i.tags FROM json_to_recordset(r.q) AS i(types text[], tags text[]) LOOP
           check_sql := 'SELECT global_position, event_id FROM ${t.events} WHERE '
             || CASE WHEN r.token IS NULL THEN 'global_position > $1'
                ELSE 'global_position >= (pg_snapshot_xmin($4::pg_snapshot)::text::bigint << 16)
                      AND NOT pg_visible_in_snapshot((global_position >> 16)::text::xid8, $4::pg_snapshot)' END
             || CASE WHEN coalesce(cardinality(item.types), 0) > 0 THEN ' AND type = ANY($2)' ELSE '' END
             || CASE WHEN coalesce(cardinality(item.tags), 0) > 0 THEN ' AND tags @> $3 AND tags <> ''{}''' ELSE '' END
             || ' ORDER BY global_position LIMIT 1';
           found_position := NULL;
           EXECUTE check_sql INTO found_position, found_id USING r.after, item.types, item.tags, r.token;
           IF found_position IS NOT NULL AND (first_position IS NULL OR found_position < first_position) THEN
             first_position := found_position;
             first_id := found_id;
           END IF;
         END LOOP;
         IF first_position IS NOT NULL THEN
           RETURN QUERY SELECT 'condition'::text, NULL::bigint, NULL::bigint, first_position, first_id;
           RETURN;
         END IF;
       END IF;
`

/** The lock modes on the events table that a transaction able to append holds (SQL list). */
export const writerLockModes = "('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')"

/**
 * What readers of the global log cannot see yet (SQL; `$1` is the events
 * table's name): how many committed events lie at or past the horizon, and
 * the open transactions holding the events table as a writer would (pid,
 * database, seconds open, state), oldest first.
 */
export const heldBackQuery = (t: Tables) =>
  `SELECT (SELECT count(*) FROM ${t.events} WHERE global_position >= ${t.schema}.horizon())::text AS held,
          (SELECT json_agg(json_build_object('pid', a.pid, 'database', a.datname, 'seconds', extract(epoch FROM now() - a.xact_start)::float8,
                                             'state', a.state) ORDER BY a.xact_start)
             FROM pg_stat_activity AS a
            WHERE a.backend_xid IS NOT NULL AND a.pid <> pg_backend_pid()
              AND EXISTS (SELECT 1 FROM pg_locks AS l WHERE l.pid = a.pid AND l.locktype = 'relation' AND l.granted
                             AND l.relation = $1::regclass AND l.mode IN ${writerLockModes})) AS holders`

/** The migrations, in order; each runs once, inside the migration transaction. */
const migrations = (t: Tables): ReadonlyArray<ReadonlyArray<string>> => [
  [
    `CREATE TABLE ${t.streams} (
      stream_id text PRIMARY KEY,
      version bigint NOT NULL CHECK (version >= 0)
    )`,
    // json, not jsonb: payloads come back byte for byte as written, and reading them costs no conversion
    `CREATE TABLE ${t.events} (
      global_position bigint PRIMARY KEY,
      stream_id text NOT NULL,
      stream_version bigint NOT NULL CHECK (stream_version >= 1),
      event_id uuid NOT NULL,
      type text NOT NULL,
      schema_version integer NOT NULL,
      data json NOT NULL,
      metadata json NOT NULL,
      -- epoch milliseconds: cheap to read out; recorded_at is derived from it for people reading the table
      recorded_ms bigint NOT NULL DEFAULT (extract(epoch FROM now()) * 1000)::bigint,
      recorded_at timestamptz GENERATED ALWAYS AS (to_timestamp(recorded_ms / 1000.0)) STORED,
      CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version),
      CONSTRAINT events_event_id_key UNIQUE (event_id)
    )`,
    `CREATE TABLE ${t.snapshots} (
      stream_id text PRIMARY KEY,
      version bigint NOT NULL,
      state json NOT NULL,
      state_schema_version integer NOT NULL,
      taken_at timestamptz NOT NULL DEFAULT now()
    )`
  ],
  // stream lifecycle: a tombstone closes a stream for good
  [`ALTER TABLE ${t.streams} ADD COLUMN deleted_at timestamptz`],
  // subscriptions: where each named reader of the global log got to
  [
    `CREATE TABLE ${t.checkpoints} (
      name text PRIMARY KEY,
      position bigint NOT NULL CHECK (position >= 0),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`
  ],
  // Dynamic Consistency Boundaries: tags, indexed only where there are any
  [
    `ALTER TABLE ${t.events} ADD COLUMN tags text[] NOT NULL DEFAULT '{}'`,
    `CREATE INDEX events_tags_idx ON ${t.events} USING gin (tags) WHERE tags <> '{}'`
  ],
  // group commit: concurrent appends of one process in one call, one transaction, one WAL flush
  [
    // one stream's share of a multi-append call: the version check of its mode, then its events
    `CREATE FUNCTION ${t.schema}.write_stream(s text, m text, e bigint, n int, ev json, origin bigint)
       RETURNS bigint LANGUAGE plpgsql AS $fn$
     DECLARE
       b bigint;
     BEGIN
       IF m = 'any' THEN
         INSERT INTO ${t.streams} AS st (stream_id, version) VALUES (s, n)
           ON CONFLICT (stream_id) DO UPDATE SET version = st.version + EXCLUDED.version WHERE st.deleted_at IS NULL
           RETURNING st.version - n INTO b;
       ELSIF m = 'nostream' THEN
         INSERT INTO ${t.streams} (stream_id, version) VALUES (s, n)
           ON CONFLICT (stream_id) DO NOTHING RETURNING 0 INTO b;
       ELSIF m = 'exists' THEN
         UPDATE ${t.streams} AS st SET version = st.version + n
           WHERE st.stream_id = s AND st.version > 0 AND st.deleted_at IS NULL RETURNING st.version - n INTO b;
       ELSE
         UPDATE ${t.streams} AS st SET version = st.version + n
           WHERE st.stream_id = s AND st.version = e AND st.deleted_at IS NULL RETURNING st.version - n INTO b;
       END IF;
       IF b IS NULL THEN
         RETURN NULL;
       END IF;
       INSERT INTO ${t.events} (global_position, stream_id, stream_version, event_id, type, schema_version, data, metadata, tags)
         SELECT origin + x.ord, s, b + x.ord, x.event_id, x.type, x.schema_version, x.data, x.metadata, coalesce(x.tags, '{}')
         FROM ROWS FROM (json_to_recordset(ev)
           AS (event_id uuid, type text, schema_version integer, data json, metadata json, tags text[]))
           WITH ORDINALITY AS x(event_id, type, schema_version, data, metadata, tags, ord);
       RETURN b;
     END
     $fn$`,
    `CREATE FUNCTION ${t.schema}.append_group(requests json)
       RETURNS TABLE (i int, version bigint, base bigint) LANGUAGE plpgsql AS $fn$
     #variable_conflict use_column
     DECLARE
       r record;
       b bigint;
       origin bigint := pg_current_xact_id()::text::bigint << 16;
       offs bigint := 0;
     BEGIN
       -- stream rows are locked in stream order: two groups never wait on each other in a cycle
${groupWrites(t)}     END
     $fn$`
  ],
  // tagged and conditional appends in one call: locks, the condition's check, the write
  [
    `${guardedHead(t, "CREATE")}       -- in the caller's order (sorted keys): shared for the events' own tags, exclusive for the condition's
       PERFORM CASE WHEN l.x THEN pg_advisory_xact_lock(l.k) ELSE pg_advisory_xact_lock_shared(l.k) END
         FROM unnest(r.keys, r.exclusive) AS l(k, x);
       IF r.whole THEN
         LOCK TABLE ${t.events} IN SHARE ROW EXCLUSIVE MODE;
       END IF;
${conditionCheck(t)}       -- the transaction id is taken here, after the locks: positions follow the order the locks imposed
       origin := pg_current_xact_id()::text::bigint << 16;
${guardedWrite(t)}     END
     $fn$`
  ],
  // order ids after the locks, and a horizon only this store's writers hold back
  [
    // a stream's advisory lock key: every writer of the stream takes it before anything else
    `CREATE FUNCTION ${t.schema}.stream_key(s text) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
       AS $fn$ SELECT hashtextextended('stream:' || s, ${streamKeySeed(t)}) $fn$`,
    // the locks of an append, in one order for every writer: advisory keys sorted (the streams' exclusive,
    // tags' shared, conditions' exclusive), then the events table; only then the transaction id, so
    // positions follow the order the locks imposed. Returns the position the append's events follow.
    `CREATE FUNCTION ${t.schema}.begin_append(keys bigint[], exclusive bool[], whole bool)
       RETURNS bigint LANGUAGE plpgsql AS $fn$
     DECLARE
       early boolean := pg_current_xact_id_if_assigned() IS NOT NULL;
       origin bigint;
       used bigint;
     BEGIN
       PERFORM CASE WHEN l.x THEN pg_advisory_xact_lock(l.k) ELSE pg_advisory_xact_lock_shared(l.k) END
         FROM (SELECT u.k, bool_or(u.x) AS x FROM unnest(keys, exclusive) AS u(k, x) GROUP BY u.k ORDER BY u.k) AS l;
       IF whole THEN
         LOCK TABLE ${t.events} IN SHARE ROW EXCLUSIVE MODE;
       ELSE
         LOCK TABLE ${t.events} IN ROW EXCLUSIVE MODE;
       END IF;
       origin := pg_current_xact_id()::text::bigint << 16;
       IF early THEN
         -- the caller's transaction took its id before these locks: an append committed meanwhile by a
         -- later transaction would sit after ours in the log although ours comes after it
         IF EXISTS (SELECT 1 FROM ${t.events} WHERE global_position >= origin + 65536) THEN
           RAISE EXCEPTION 'chronicle: the transaction took its id before a concurrent append committed; retry the transaction'
             USING ERRCODE = '40001';
         END IF;
         -- an earlier append of this transaction: continue after its events
         SELECT max(global_position) INTO used FROM ${t.events} WHERE global_position > origin AND global_position < origin + 65536;
         IF used IS NOT NULL THEN
           origin := used;
         END IF;
       END IF;
       RETURN origin;
     END
     $fn$`,
    `CREATE FUNCTION ${t.schema}.append_stream(s text, m text, e bigint, n int, ev json)
       RETURNS TABLE (version bigint, base bigint) LANGUAGE plpgsql AS $fn$
     #variable_conflict use_column
     DECLARE
       origin bigint := ${t.schema}.begin_append(ARRAY[${t.schema}.stream_key(s)], ARRAY[true], false);
       b bigint := ${t.schema}.write_stream(s, m, e, n, ev, origin);
     BEGIN
       IF b IS NOT NULL THEN
         RETURN QUERY SELECT b + n, origin;
       END IF;
     END
     $fn$`,
    `CREATE OR REPLACE FUNCTION ${t.schema}.append_group(requests json)
       RETURNS TABLE (i int, version bigint, base bigint) LANGUAGE plpgsql AS $fn$
     #variable_conflict use_column
     DECLARE
       r record;
       b bigint;
       origin bigint;
       offs bigint := 0;
     BEGIN
       SELECT ${t.schema}.begin_append(array_agg(k), array_agg(true), false) INTO origin
         FROM (SELECT DISTINCT ${t.schema}.stream_key(x.s) AS k FROM json_to_recordset(requests) AS x(s text)) AS keys;
${groupWrites(t)}     END
     $fn$`,
    `${guardedHead(t, "CREATE OR REPLACE")}       origin := ${t.schema}.begin_append(r.keys || ${t.schema}.stream_key(r.s), r.exclusive || true, r.whole);
${conditionCheck(t)}${guardedWrite(t)}     END
     $fn$`,
    // Where global readers stop: below every transaction that may still write to this store. A writer
    // holds the events table (ROW EXCLUSIVE or stronger) from before it takes its id until it ends, so a
    // transaction still running after pg_locks was read, which held no such lock, is a stranger: it cannot
    // hold readers back (should it append later, begin_append refuses it if anything committed after its id).
    `CREATE FUNCTION ${t.schema}.horizon() RETURNS bigint LANGUAGE plpgsql STABLE AS $fn$
     DECLARE
       snap pg_snapshot := pg_current_snapshot();
       strangers bigint[];
       h bigint;
     BEGIN
       IF pg_snapshot_xmin(snap) = pg_snapshot_xmax(snap) THEN
         RETURN pg_snapshot_xmax(snap)::text::bigint << 16;
       END IF;
       WITH locks AS MATERIALIZED (
         SELECT l.locktype, l.pid, l.transactionid, l.relation, l.mode FROM pg_locks AS l
         WHERE l.locktype IN ('transactionid', 'relation') AND l.granted AND l.pid IS NOT NULL
       )
       SELECT array_agg(t.transactionid::text::bigint) INTO strangers FROM locks AS t
         WHERE t.locktype = 'transactionid' AND t.mode = 'ExclusiveLock'
           AND NOT EXISTS (SELECT 1 FROM locks AS w WHERE w.pid = t.pid AND w.locktype = 'relation'
                           AND w.relation = '${t.events}'::regclass
                           AND w.mode IN ${writerLockModes});
       -- after the scan: one that ended meanwhile may have let go of its locks one by one, so it counts
       SELECT min(x::text::bigint) INTO h FROM pg_snapshot_xip(snap) AS x
         WHERE NOT ((x::text::bigint & 4294967295) = ANY (coalesce(strangers, '{}')) AND pg_xact_status(x) = 'in progress');
       RETURN coalesce(h, pg_snapshot_xmax(snap)::text::bigint) << 16;
     END
     $fn$`
  ],
  // a refused append answered in the same call: the stream as it is after the locks, and which of the ids are stored
  [
    // volatile: each statement sees what committed up to now, not what the calling statement saw when it began
    `CREATE FUNCTION ${t.schema}.refusal(s text, ev json, OUT version bigint, OUT deleted boolean, OUT stored json)
       LANGUAGE plpgsql VOLATILE AS $fn$
     BEGIN
       SELECT st.version, st.deleted_at IS NOT NULL INTO version, deleted FROM ${t.streams} AS st WHERE st.stream_id = s;
       SELECT json_agg(json_build_object('id', e.event_id, 's', e.stream_id, 'v', e.stream_version, 'p', e.global_position::text))
         INTO stored FROM ${t.events} AS e
         WHERE e.event_id IN (SELECT (x.value->>'event_id')::uuid FROM json_array_elements(ev) AS x);
     END
     $fn$`,
    `CREATE FUNCTION ${t.schema}.append_stream_explained(s text, m text, e bigint, n int, ev json)
       RETURNS TABLE (version bigint, base bigint, deleted boolean, stored json) LANGUAGE plpgsql AS $fn$
     #variable_conflict use_column
     DECLARE
       origin bigint := ${t.schema}.begin_append(ARRAY[${t.schema}.stream_key(s)], ARRAY[true], false);
       b bigint := ${t.schema}.write_stream(s, m, e, n, ev, origin);
     BEGIN
       IF b IS NOT NULL THEN
         RETURN QUERY SELECT b + n, origin, NULL::boolean, NULL::json;
       ELSE
         RETURN QUERY SELECT x.version, NULL::bigint, x.deleted, x.stored FROM ${t.schema}.refusal(s, ev) AS x;
       END IF;
     END
     $fn$`,
    `CREATE FUNCTION ${t.schema}.append_group_explained(requests json)
       RETURNS TABLE (i int, version bigint, base bigint, deleted boolean, stored json) LANGUAGE plpgsql AS $fn$
     #variable_conflict use_column
     DECLARE
       r record;
       b bigint;
       origin bigint;
       offs bigint := 0;
     BEGIN
       SELECT ${t.schema}.begin_append(array_agg(k), array_agg(true), false) INTO origin
         FROM (SELECT DISTINCT ${t.schema}.stream_key(x.s) AS k FROM json_to_recordset(requests) AS x(s text)) AS keys;
${explainedGroupWrites(t)}     END
     $fn$`
  ],
  // category reads (readAll and subscribe filtered by category) walk an index in global order
  [`CREATE INDEX events_category_idx ON ${t.events} (split_part(stream_id, '-', 1), global_position)`],
  // appendMany: several streams all or nothing, in one call
  [
    // the locks of every stream (and of the tags and the condition) in one sorted order, each stream checked
    // after them, then the condition, then the writes in call order: a refusal (the first, in call order)
    // writes nothing; rows: 'ok' per append (its version and base), or one 'refused' / 'condition'
    `CREATE FUNCTION ${t.schema}.append_many(request json)
       RETURNS TABLE (outcome text, i int, version bigint, base bigint, conflict bigint, conflict_id uuid)
       LANGUAGE plpgsql AS $fn$
     #variable_conflict use_column
     DECLARE
       r record;
       a record;
       item record;
       b bigint;
       v bigint;
       d boolean;
       origin bigint;
       offs bigint := 0;
       check_sql text;
       found_position bigint;
       found_id uuid;
       first_position bigint;
       first_id uuid;
     BEGIN
       SELECT x.appends, x.keys, x.exclusive, x.whole, x.q, x.after, x.token INTO r
         FROM json_to_record(request) AS x(appends json, keys bigint[], exclusive bool[], whole bool, q json, after bigint, token text);
       SELECT ${t.schema}.begin_append(coalesce(r.keys, '{}') || array_agg(${t.schema}.stream_key(y.s)),
                                     coalesce(r.exclusive, '{}') || array_agg(true), r.whole) INTO origin
         FROM json_to_recordset(r.appends) AS y(s text);
       FOR a IN SELECT x.i, x.s, x.m, x.e FROM json_to_recordset(r.appends) AS x(i int, s text, m text, e bigint) ORDER BY x.i LOOP
         v := NULL;
         d := false;
         SELECT st.version, st.deleted_at IS NOT NULL INTO v, d FROM ${t.streams} AS st WHERE st.stream_id = a.s;
         IF coalesce(d, false) OR NOT (CASE a.m WHEN 'any' THEN true WHEN 'nostream' THEN v IS NULL
                                                 WHEN 'exists' THEN coalesce(v, 0) > 0 ELSE v = a.e END IS TRUE) THEN
           RETURN QUERY SELECT 'refused'::text, a.i, v, NULL::bigint, NULL::bigint, NULL::uuid;
           RETURN;
         END IF;
       END LOOP;
${conditionCheck(t).replace("SELECT 'condition'::text, NULL::bigint,", "SELECT 'condition'::text, NULL::int, NULL::bigint,")}       FOR a IN SELECT x.i, x.s, x.m, x.e, x.n, x.ev
                  FROM json_to_recordset(r.appends) AS x(i int, s text, m text, e bigint, n int, ev json) ORDER BY x.i LOOP
         IF a.n = 0 THEN
           SELECT coalesce((SELECT st.version FROM ${t.streams} AS st WHERE st.stream_id = a.s), 0) INTO b;
           RETURN QUERY SELECT 'ok'::text, a.i, b, NULL::bigint, NULL::bigint, NULL::uuid;
           CONTINUE;
         END IF;
         b := ${t.schema}.write_stream(a.s, a.m, a.e, a.n, a.ev, origin + offs);
         IF b IS NULL THEN
           RAISE EXCEPTION 'chronicle: append_many: stream % changed under its lock', a.s;
         END IF;
         RETURN QUERY SELECT 'ok'::text, a.i, b + a.n, origin + offs, NULL::bigint, NULL::uuid;
         offs := offs + a.n;
       END LOOP;
     END
     $fn$`
  ],
  // 11. consumer groups: live members with a lease, and the partitions of each group with their owner and fencing generation
  [
    `CREATE TABLE ${t.schema}.group_members (
      group_name text NOT NULL,
      member text NOT NULL,
      expires_at timestamptz NOT NULL,
      PRIMARY KEY (group_name, member)
    )`,
    `CREATE TABLE ${t.schema}.group_partitions (
      group_name text NOT NULL,
      partition integer NOT NULL CHECK (partition >= 0),
      partitions integer NOT NULL CHECK (partitions >= 1),
      owner text,
      generation bigint NOT NULL DEFAULT 0,
      expires_at timestamptz NOT NULL DEFAULT '-infinity',
      PRIMARY KEY (group_name, partition)
    )`
  ],
  // 12. partitioned reads: each stream's FNV-1a hash (StreamId.partitionOf's), so a reader of one partition
  // is sent only its own events
  [
    // FNV-1a, 32 bits, over the id's UTF-8 bytes; below 2^32, so the product stays below 2^57
    `CREATE FUNCTION ${t.schema}.stream_hash(s text) RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
     DECLARE
       b bytea := convert_to(s, 'UTF8');
       h bigint := 2166136261;
     BEGIN
       FOR i IN 0 .. length(b) - 1 LOOP
         h := ((h # get_byte(b, i)) * 16777619) & 4294967295;
       END LOOP;
       RETURN h;
     END
     $fn$`,
    `ALTER TABLE ${t.streams} ADD COLUMN hash bigint`,
    `UPDATE ${t.streams} SET hash = ${t.schema}.stream_hash(stream_id)`,
    `ALTER TABLE ${t.streams} ALTER COLUMN hash SET NOT NULL`,
    // on insert only (a stream's id never changes): appends that update a stream's version pay nothing
    `CREATE FUNCTION ${t.schema}.set_stream_hash() RETURNS trigger LANGUAGE plpgsql AS $fn$
     BEGIN
       NEW.hash := ${t.schema}.stream_hash(NEW.stream_id);
       RETURN NEW;
     END
     $fn$`,
    `CREATE TRIGGER streams_hash BEFORE INSERT ON ${t.streams} FOR EACH ROW EXECUTE FUNCTION ${t.schema}.set_stream_hash()`,
    // one partition's page: the log walked in position order, never sorted. Planned inline, a range whose
    // size the statistics underestimate (a freshly filled table) was read whole and sorted on every page
    // (2 s a page over 1,000,000 events, against 20 ms walked in order)
    `CREATE FUNCTION ${t.schema}.partition_page(after_position bigint, bound bigint, page int, parts bigint, member bigint)
       RETURNS SETOF ${t.events} LANGUAGE sql STABLE SET enable_sort = off AS $fn$
       SELECT * FROM ${t.events} AS e
        WHERE e.global_position >= after_position AND e.global_position < bound
          AND e.stream_id IN (SELECT st.stream_id FROM ${t.streams} AS st WHERE st.hash % parts = member)
        ORDER BY e.global_position LIMIT page
     $fn$`
  ],
  // 13. a partition page looks up each event's stream hash by the streams' primary key as it walks the log.
  // The IN (subquery) of 12 was planned as a nested loop over every stream of the partition for each event
  // walked (the partition's row count underestimated): 127 ms a page of 500 over 2,000 streams, against 5 ms
  [
    `CREATE OR REPLACE FUNCTION ${t.schema}.partition_page(after_position bigint, bound bigint, page int, parts bigint, member bigint)
       RETURNS SETOF ${t.events} LANGUAGE sql STABLE SET enable_sort = off AS $fn$
       SELECT * FROM ${t.events} AS e
        WHERE e.global_position >= after_position AND e.global_position < bound
          AND (SELECT st.hash FROM ${t.streams} AS st WHERE st.stream_id = e.stream_id) % parts = member
        ORDER BY e.global_position LIMIT page
     $fn$`
  ]
]

/** A per-schema seed for stream lock keys: two stores in one database do not share keys. */
const streamKeySeed = (t: Tables): number => {
  let hash = 0
  for (const char of t.schema) hash = (Math.imul(hash, 31) + char.charCodeAt(0)) | 0
  return hash
}

/**
 * Brings the store's schema up to date. Idempotent, and safe when several
 * processes start at once: a transaction-scoped advisory lock on the schema's
 * name serialises them, and each migration is recorded as it is applied.
 */
export const migrate = (tables: Tables): Effect.Effect<void, StoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql.unsafe(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`chronicle:migrate:${tables.schema}`])
      yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${tables.schema}`)
      yield* sql.unsafe(
        `CREATE TABLE IF NOT EXISTS ${tables.migrations} (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`
      )
      const applied = yield* sql.unsafe<{ readonly version: number }>(`SELECT version FROM ${tables.migrations}`)
      const done = new Set(applied.map((row) => row.version))
      const all = migrations(tables)
      for (let i = 0; i < all.length; i++) {
        const version = i + 1
        if (done.has(version)) continue
        for (const statement of all[i]!) yield* sql.unsafe(statement)
        yield* sql.unsafe(`INSERT INTO ${tables.migrations} (version) VALUES ($1)`, [version])
      }
    }))
  }).pipe(
    Effect.mapError((error) => storeError("migrate", error)),
    Effect.withSpan("PostgresEventStore.migrate", { attributes: { "chronicle.schema": tables.schema } })
  )

/**
 * The tables of the store in `options.schema` (default `chronicle`), brought
 * up to date unless `options.migrate` is false: what every PostgreSQL store
 * does first.
 */
export const prepare = (options: {
  readonly schema?: string | undefined
  readonly migrate?: boolean | undefined
}): Effect.Effect<Tables, StoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const tables = yield* Effect.try({ try: () => tablesOf(options.schema ?? "chronicle"), catch: (error) => error as StoreError })
    if (options.migrate !== false) yield* migrate(tables)
    return tables
  })
