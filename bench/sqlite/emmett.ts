/**
 * Emmett's SQLite event store (`@event-driven-io/emmett-sqlite`, on the
 * node-sqlite3 driver) as a contender of `bench/embedded.ts`. Used as Emmett
 * uses a file database by default: a new connection (WAL) per operation. The
 * only change is a pool that sets two pragmas on each connection it opens
 * before handing it over: `synchronous` (FULL for fsync on, NORMAL for fsync
 * off) and `busy_timeout = 0`. node-sqlite3 runs every statement on libuv's
 * thread pool (4 threads): with SQLite's busy handler, 16 concurrent writers
 * park 4 threads sleeping in `BEGIN IMMEDIATE` while the writer holding the
 * lock waits for a thread to commit, until the timeout (1 s by default, and
 * Emmett's rollback then throws "no transaction is active"). So a busy append
 * (nothing written) is retried from JavaScript after 0–2 ms, and counted.
 * Loads go through `aggregateStream`, which reads the whole stream and then
 * folds it. Concurrent writers are async callers, each append on its own
 * connection.
 */
import { mkdirSync } from "node:fs"
import path from "node:path"
import { getSQLiteEventStore, sqliteConnection } from "@event-driven-io/emmett-sqlite"
import type { SQLiteConnection, SQLiteConnectionPool } from "@event-driven-io/emmett-sqlite"
import { evolvePlainAccount, initialPlainAccount, plainHistoryEvent } from "../embedded-store.js"
import type { EmbeddedContender, EmbeddedStore, PlainAccount } from "../embedded-store.js"

type AccountEvent = { type: string; data: Record<string, unknown> }

/** SQLite's busy handler would sleep on one of libuv's 4 threads: see the header. */
const busyTimeoutMillis = 0
const busyRetryMillis = 2

/** SQLite was busy: at `BEGIN IMMEDIATE` (Emmett's rollback then finds no transaction) or later (rolled back). */
const isBusy = (error: unknown) =>
  error instanceof Error && "code" in error &&
  (error.code === "SQLITE_BUSY" || error.message.includes("cannot rollback - no transaction is active"))

let busyRetries = 0

/** Appends retried after SQLite answered busy, in this process so far. */
export const emmettBusyRetries = () => busyRetries

const retryWhileBusy = async <A>(run: () => Promise<A>): Promise<A> => {
  for (;;) {
    try {
      return await run()
    } catch (error) {
      if (!isBusy(error)) throw error
      busyRetries++
      await new Promise((resolve) => setTimeout(resolve, Math.random() * busyRetryMillis))
    }
  }
}

const open = async (directory: string, fsync: boolean): Promise<EmbeddedStore> => {
  mkdirSync(directory, { recursive: true })
  const fileName = path.join(directory, "emmett.sqlite")
  const connection = async (): Promise<SQLiteConnection> => {
    const opened = sqliteConnection({ fileName })
    await opened.command(`PRAGMA synchronous = ${fsync ? "FULL" : "NORMAL"}`)
    await opened.command(`PRAGMA busy_timeout = ${busyTimeoutMillis}`)
    return opened
  }
  const pool: SQLiteConnectionPool = {
    connection,
    withConnection: async (handle) => {
      const opened = await connection()
      try {
        return await handle(opened)
      } finally {
        opened.close()
      }
    },
    close: async () => {}
  }
  const store = getSQLiteEventStore({ fileName, pool })
  await store.schema.migrate()

  const appendEvents = (stream: string, version: number, events: Array<AccountEvent>) =>
    retryWhileBusy(() => store.appendToStream(`account-${stream}`, events, { expectedStreamVersion: BigInt(version) }))

  return {
    append: async (stream, version, size) => {
      const events = Array.from({ length: size }, () => plainHistoryEvent(1))
      const result = await appendEvents(stream, version, events)
      return Number(result.nextExpectedStreamVersion)
    },
    seed: async (stream, eventCount, batchSize) => {
      for (let version = 0; version < eventCount; version += batchSize) {
        const size = Math.min(batchSize, eventCount - version)
        await appendEvents(stream, version, Array.from({ length: size }, (_, i) => plainHistoryEvent(version + i)))
      }
    },
    load: async (stream) => {
      const { currentStreamVersion, state } = await store.aggregateStream<PlainAccount, AccountEvent>(`account-${stream}`, {
        initialState: () => initialPlainAccount,
        evolve: (account: PlainAccount, event: AccountEvent) => evolvePlainAccount(account, event.type, event.data)
      })
      if (!state.opened) throw new Error(`${stream} was never opened`)
      return Number(currentStreamVersion)
    },
    readLast: async (stream, version) => {
      const { currentStreamVersion } = await store.readStream(`account-${stream}`, { from: BigInt(version), maxCount: 1n })
      return Number(currentStreamVersion)
    },
    close: () => pool.close()
  }
}

const contender: EmbeddedContender = { name: "Emmett SQLite", open }

export default contender
