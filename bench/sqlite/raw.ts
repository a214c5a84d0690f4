/**
 * Raw SQLite through better-sqlite3 as a contender of `bench/embedded.ts`: one
 * `events` table (position as the rowid primary key, unique (stream_id,
 * version), id, type, JSON data, time), WAL with `synchronous=FULL` for fsync
 * on and `NORMAL` for fsync off, prepared statements, and one `BEGIN IMMEDIATE`
 * transaction per append that reads the stream's version and refuses a stale
 * expected version. better-sqlite3 is synchronous: concurrent writers are
 * async callers in one process, each transaction running whole between two
 * turns of the event loop (no group commit).
 */
import { randomUUID } from "node:crypto"
import { mkdirSync } from "node:fs"
import path from "node:path"
import Database from "better-sqlite3"
import { evolvePlainAccount, initialPlainAccount, plainHistoryEvent } from "../embedded-store.js"
import type { EmbeddedContender, EmbeddedStore } from "../embedded-store.js"

const schema = `
CREATE TABLE IF NOT EXISTS events (
  position INTEGER PRIMARY KEY,
  stream_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  id TEXT NOT NULL,
  type TEXT NOT NULL,
  data TEXT NOT NULL,
  recorded_at INTEGER NOT NULL,
  UNIQUE (stream_id, version)
)`

interface EventRow {
  readonly type: string
  readonly data: string
}

const open = async (directory: string, fsync: boolean): Promise<EmbeddedStore> => {
  mkdirSync(directory, { recursive: true })
  const db = new Database(path.join(directory, "events.sqlite"))
  db.pragma("journal_mode = WAL")
  db.pragma(`synchronous = ${fsync ? "FULL" : "NORMAL"}`)
  db.exec(schema)
  const versionOf = db.prepare<[string], { version: number | null }>(
    "SELECT max(version) AS version FROM events WHERE stream_id = ?"
  )
  const insert = db.prepare<[string, number, string, string, string, number]>(
    "INSERT INTO events (stream_id, version, id, type, data, recorded_at) VALUES (?, ?, ?, ?, ?, ?)"
  )
  const read = db.prepare<[string], EventRow>("SELECT type, data FROM events WHERE stream_id = ? ORDER BY version")
  const readLast = db.prepare<[string], { version: number }>(
    "SELECT version, type, data FROM events WHERE stream_id = ? ORDER BY version DESC LIMIT 1"
  )
  const currentVersion = (stream: string) => versionOf.get(stream)?.version ?? 0

  const write = db.transaction((stream: string, expected: number, events: ReadonlyArray<{ type: string; data: unknown }>) => {
    const current = currentVersion(stream)
    if (current !== expected) throw new Error(`${stream} is at version ${current}, expected ${expected}`)
    const now = Date.now()
    events.forEach((event, i) => insert.run(stream, expected + i + 1, randomUUID(), event.type, JSON.stringify(event.data), now))
    return expected + events.length
  })

  const deposits = (size: number) => Array.from({ length: size }, () => plainHistoryEvent(1))

  return {
    append: async (stream, version, size) => {
      await new Promise((resolve) => setImmediate(resolve))
      return write.immediate(stream, version, deposits(size))
    },
    seed: async (stream, eventCount, batchSize) => {
      for (let version = 0; version < eventCount; version += batchSize) {
        const size = Math.min(batchSize, eventCount - version)
        write.immediate(stream, version, Array.from({ length: size }, (_, i) => plainHistoryEvent(version + i)))
      }
    },
    load: async (stream) => {
      let state = initialPlainAccount
      let version = 0
      for (const row of read.iterate(stream)) {
        state = evolvePlainAccount(state, row.type, JSON.parse(row.data))
        version++
      }
      if (!state.opened) throw new Error(`${stream} was never opened`)
      return version
    },
    readLast: async (stream) => readLast.get(stream)?.version ?? 0,
    rows: (stream) => read.iterate(stream),
    close: async () => {
      db.close()
    }
  }
}

const contender: EmbeddedContender = { name: "raw SQLite", open }

export default contender
