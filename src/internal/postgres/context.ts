/**
 * What every step of the PostgreSQL event store shares: its tables and
 * statements, the `SqlClient`, its own pool if it has one, and how a
 * statement is run (on the pool outside a transaction of the caller's, on the
 * `SqlClient` inside one; re-run on a fresh connection when its own was lost).
 */
import { SqlClient } from "@effect/sql"
import type Pg from "pg"
import { Effect, Option } from "effect"
import type { StoreError } from "../../EventStore.js"
import { defaultMaxEventBytes } from "../serialize.js"
import type { StreamId } from "../../StreamId.js"
import { isConnectionLost, storeError } from "./errors.js"
import { queryPool } from "./pool.js"
import { prepare, type Tables } from "./schema.js"
import { type Row, type Statement, statements } from "./statements.js"

/** The settings the steps read (those of `PostgresEventStoreOptions`). */
export interface ContextOptions {
  readonly schema?: string | undefined
  readonly maxEventBytes?: number | undefined
  readonly pageSize?: number | undefined
  readonly migrate?: boolean | undefined
  readonly pool?: Pg.Pool | undefined
  readonly notify?: boolean | undefined
}

/** One store's shared state and statement runners. */
export interface Context {
  readonly tables: Tables
  readonly q: ReturnType<typeof statements>
  readonly sql: SqlClient.SqlClient
  readonly pool: Pg.Pool | undefined
  readonly maxBytes: number
  readonly pageSize: number
  /** Runs a statement; every statement is safe to repeat, so a lost connection is retried. */
  readonly execute: (st: Statement, params: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<Row>, unknown>
  /** `execute` on the store's own pool, for a caller known to be outside a transaction of its own; `undefined` without a pool. */
  readonly onPool: ((st: Statement, params: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<Row>, unknown>) | undefined
  /** `execute`, failing with a `StoreError` of `operation`. */
  readonly run: (operation: string, st: Statement, params: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<Row>, StoreError>
  /** The stream's version; 0 when it has no row. */
  readonly currentVersion: (streamId: StreamId) => Effect.Effect<number, StoreError>
}

/** How many times a statement is re-run on a fresh connection after losing its own. */
const reconnectAttempts = 3

/** Prepares the schema (migrating unless told not to) and builds the context over the `SqlClient` in context. */
export const makeContext = (options: ContextOptions): Effect.Effect<Context, StoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const tables = yield* prepare(options)
    const sql = yield* SqlClient.SqlClient
    const q = statements(tables, options.notify !== false)

    const viaClient = (st: Statement, params: ReadonlyArray<unknown>) =>
      sql.unsafe(st.text, params).values as Effect.Effect<ReadonlyArray<Row>, unknown>

    const { pool } = options
    const viaPool = pool === undefined ? viaClient : (st: Statement, params: ReadonlyArray<unknown>) =>
      Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (transaction) =>
        Option.isSome(transaction) ? viaClient(st, params) : queryPool(pool, st, params))

    /** Every statement is safe to repeat (appends are idempotent by event id): retry lost connections. */
    const execute = (st: Statement, params: ReadonlyArray<unknown>, attempt = 1): Effect.Effect<ReadonlyArray<Row>, unknown> =>
      Effect.catchIf(
        viaPool(st, params),
        (error) => attempt <= reconnectAttempts && isConnectionLost(error),
        () => execute(st, params, attempt + 1)
      )

    const onPool = (pool: Pg.Pool) => {
      const retried = (st: Statement, params: ReadonlyArray<unknown>, attempt: number): Effect.Effect<ReadonlyArray<Row>, unknown> =>
        Effect.catchIf(
          queryPool(pool, st, params),
          (error) => attempt <= reconnectAttempts && isConnectionLost(error),
          () => retried(st, params, attempt + 1)
        )
      return (st: Statement, params: ReadonlyArray<unknown>) => retried(st, params, 1)
    }

    const run = (operation: string, st: Statement, params: ReadonlyArray<unknown>) =>
      Effect.mapError(execute(st, params), (error) => storeError(operation, error))

    const currentVersion = (streamId: StreamId) =>
      Effect.map(run("streamVersion", q.streamVersion, [streamId]), (rows) => (rows.length === 0 ? 0 : Number(rows[0]![0])))

    return {
      tables,
      q,
      sql,
      pool,
      maxBytes: options.maxEventBytes ?? defaultMaxEventBytes,
      pageSize: options.pageSize ?? 1000,
      execute: (st, params) => execute(st, params),
      onPool: pool === undefined ? undefined : onPool(pool),
      run,
      currentVersion
    }
  })
