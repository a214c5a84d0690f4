/**
 * The PostgreSQL checkpoint store: the `checkpoints` table of the event
 * store's schema, through the `SqlClient`. Inside `transaction`, saves join
 * the transaction your read model's writes run in, so both commit together.
 *
 * @since 0.1.0
 */
import { SqlClient, SqlError } from "@effect/sql"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as CheckpointStore from "../../CheckpointStore.js"
import type { StoreError } from "../../EventStore.js"
import { storeError } from "../../internal/postgres/errors.js"
import { prepare } from "../../internal/postgres/schema.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface PostgresCheckpointStoreOptions {
  /** The PostgreSQL schema of the store; default `chronicle`. */
  readonly schema?: string | undefined
  /** Apply the schema migrations when the store is built; default true. */
  readonly migrate?: boolean | undefined
}

/**
 * Builds the checkpoint store over the `SqlClient` in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: PostgresCheckpointStoreOptions = {}
): Effect.Effect<CheckpointStore.CheckpointStoreService, StoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const tables = yield* prepare(options)
    const sql = yield* SqlClient.SqlClient
    const save = `INSERT INTO ${tables.checkpoints} (name, position) VALUES ($1, $2)
      ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()`
    const load = `SELECT position::text AS position FROM ${tables.checkpoints} WHERE name = $1`
    const remove = `DELETE FROM ${tables.checkpoints} WHERE name = $1`
    // moves it only from where the saver expects it: a concurrent mover's row lock makes this wait, then re-check
    const moveFrom = `UPDATE ${tables.checkpoints} SET position = $3, updated_at = now() WHERE name = $1 AND position = $2 RETURNING 1`
    const createIfAbsent = `INSERT INTO ${tables.checkpoints} (name, position) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING 1`
    const loadOne = (name: string) =>
      sql.unsafe<{ readonly position: string }>(load, [name]).pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), (row) => BigInt(row.position)))
      )

    return CheckpointStore.make("postgres", {
      load: (name) => loadOne(name).pipe(Effect.mapError((error) => storeError("loadCheckpoint", error))),
      save: (name, position) =>
        sql.unsafe(save, [name, position.toString()]).pipe(
          Effect.asVoid,
          Effect.mapError((error) => storeError("saveCheckpoint", error))
        ),
      compareAndSet: (name, change) =>
        Effect.gen(function*() {
          const moved = Option.isNone(change.expected)
            ? yield* sql.unsafe(createIfAbsent, [name, change.next.toString()])
            : yield* sql.unsafe(moveFrom, [name, change.expected.value.toString(), change.next.toString()])
          if (moved.length === 1) return
          return yield* Effect.fail(CheckpointStore.moved(name, change, yield* loadOne(name)))
        }).pipe(
          Effect.catchIf((error) => error instanceof SqlError.SqlError, (error) => Effect.fail(storeError("compareAndSetCheckpoint", error)))
        ),
      remove: (name) =>
        sql.unsafe(remove, [name]).pipe(Effect.asVoid, Effect.mapError((error) => storeError("removeCheckpoint", error))),
      transaction: (effect) =>
        sql.withTransaction(effect).pipe(
          Effect.mapError((error) => (error instanceof SqlError.SqlError ? storeError("transaction", error) : error))
        ) as Effect.Effect<Effect.Effect.Success<typeof effect>, Effect.Effect.Error<typeof effect> | StoreError, Effect.Effect.Context<typeof effect>>
    })
  })

/**
 * The checkpoint store as a Layer over the `SqlClient` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: PostgresCheckpointStoreOptions = {}
): Layer.Layer<CheckpointStore.CheckpointStore, StoreError, SqlClient.SqlClient> =>
  Layer.effect(CheckpointStore.CheckpointStore, make(options))

/**
 * `layer` with its options read from `Config`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<PostgresCheckpointStoreOptions>
): Layer.Layer<CheckpointStore.CheckpointStore, StoreError | ConfigError.ConfigError, SqlClient.SqlClient> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
