/**
 * The PostgreSQL event store's own `pg` pool: built from a URL for
 * `layerFromUrl`, its idle-connection errors logged (never swallowed), and
 * statements run on it as named (prepared) statements with raw rows.
 */
import Pg from "pg"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import { type Row, rawTypes, type Statement } from "./statements.js"

/** What the pool is built from (the connection settings of `layerFromUrl`). */
export interface PoolOptions {
  readonly url: string | Redacted.Redacted
  readonly maxConnections?: number | undefined
  readonly connectTimeoutMs?: number | undefined
  readonly applicationName?: string | undefined
}

/**
 * A pool for the life of the scope. An idle connection that dies (server
 * restart, backend terminated) is dropped by the pool; that is logged as a
 * warning, and so is a failure to end the pool when the scope closes.
 */
export const acquirePool = (options: PoolOptions): Effect.Effect<Pg.Pool, never, Scope.Scope> =>
  Effect.gen(function*() {
    const url = Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url
    const runtime = yield* Effect.runtime<never>()
    return yield* Effect.acquireRelease(
      Effect.sync(() => {
        const pool = new Pg.Pool({
          connectionString: url,
          max: options.maxConnections ?? 10,
          connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
          application_name: options.applicationName ?? "chronicle"
        })
        // an idle connection that died (server restart, backend terminated): the pool drops it, we say so
        pool.on("error", (error) =>
          Runtime.runFork(runtime)(
            Effect.logWarning("chronicle: an idle PostgreSQL connection failed and was dropped from the pool").pipe(
              Effect.annotateLogs({ error: error.message, applicationName: options.applicationName ?? "chronicle" })
            )
          ))
        return pool
      }),
      (pool) =>
        Effect.tryPromise(() => pool.end()).pipe(
          Effect.catchAll((error) =>
            Effect.logWarning("chronicle: closing the PostgreSQL pool failed").pipe(
              Effect.annotateLogs({ error: String(error), applicationName: options.applicationName ?? "chronicle" })
            )
          )
        )
    )
  })

/** Runs a statement on the pool (prepared when it has a name), its rows as arrays of raw values. */
export const queryPool = (pool: Pg.Pool, st: Statement, params: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<Row>, unknown> =>
  Effect.async<ReadonlyArray<Row>, unknown>((resume) => {
    pool.query<Array<unknown>>(
      st.name === undefined
        ? { text: st.text, values: params as Array<unknown>, rowMode: "array", types: rawTypes }
        : { name: st.name, text: st.text, values: params as Array<unknown>, rowMode: "array", types: rawTypes },
      (error, result) => resume(error ? Effect.fail(error) : Effect.succeed(result.rows))
    )
  })
