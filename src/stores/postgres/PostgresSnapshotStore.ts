/**
 * The PostgreSQL snapshot store: the latest snapshot per stream, in the
 * `snapshots` table of the event store's schema.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { StoreError } from "../../EventStore.js"
import * as SnapshotStore from "../../SnapshotStore.js"
import type { StreamId } from "../../StreamId.js"
import { storeError } from "../../internal/postgres/errors.js"
import { prepare } from "../../internal/postgres/schema.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface PostgresSnapshotStoreOptions {
  /** The PostgreSQL schema of the store; default `chronicle`. */
  readonly schema?: string | undefined
  /** Apply the schema migrations when the store is built; default true. */
  readonly migrate?: boolean | undefined
}

interface SnapshotRow {
  readonly version: string
  readonly state: unknown
  readonly state_schema_version: number
  readonly taken_at: number
}

/**
 * Builds the snapshot store over the `SqlClient` in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: PostgresSnapshotStoreOptions = {}
): Effect.Effect<SnapshotStore.SnapshotStoreService, StoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const tables = yield* prepare(options)
    const sql = yield* SqlClient.SqlClient
    const save = `INSERT INTO ${tables.snapshots} AS s (stream_id, version, state, state_schema_version)
      VALUES ($1, $2, $3::json, $4)
      ON CONFLICT (stream_id) DO UPDATE
        SET version = EXCLUDED.version, state = EXCLUDED.state,
            state_schema_version = EXCLUDED.state_schema_version, taken_at = now()
        WHERE s.version <= EXCLUDED.version`
    const load = `SELECT version::text AS version, state, state_schema_version,
        (extract(epoch FROM taken_at) * 1000)::float8 AS taken_at
      FROM ${tables.snapshots} WHERE stream_id = $1`
    const remove = `DELETE FROM ${tables.snapshots} WHERE stream_id = $1`

    return SnapshotStore.make("postgres", {
      save: (snapshot) =>
        Effect.flatMap(SnapshotStore.validate(snapshot), (state) =>
          sql.unsafe(save, [snapshot.streamId, snapshot.version, state, snapshot.stateSchemaVersion]).pipe(
            Effect.asVoid,
            Effect.mapError((error) => storeError("saveSnapshot", error))
          )),
      load: (streamId: StreamId) =>
        sql.unsafe<SnapshotRow>(load, [streamId]).pipe(
          Effect.map((rows) =>
            Option.map(Option.fromNullable(rows[0]), (row) => ({
              streamId,
              version: Number(row.version),
              state: row.state,
              stateSchemaVersion: row.state_schema_version,
              takenAt: new Date(row.taken_at)
            }))
          ),
          Effect.mapError((error) => storeError("loadSnapshot", error))
        ),
      remove: (streamId) =>
        sql.unsafe(remove, [streamId]).pipe(
          Effect.asVoid,
          Effect.mapError((error) => storeError("removeSnapshot", error))
        )
    })
  })

/**
 * The snapshot store as a Layer over the `SqlClient` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: PostgresSnapshotStoreOptions = {}
): Layer.Layer<SnapshotStore.SnapshotStore, StoreError, SqlClient.SqlClient> =>
  Layer.effect(SnapshotStore.SnapshotStore, make(options))

/**
 * `layer` with its options read from `Config`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<PostgresSnapshotStoreOptions>
): Layer.Layer<SnapshotStore.SnapshotStore, StoreError | ConfigError.ConfigError, SqlClient.SqlClient> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
