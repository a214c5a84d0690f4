/**
 * Faults on the real PostgreSQL: killed backends, refused connections,
 * statement timeouts, an exhausted pool. Each surfaces as a typed StoreError
 * with a clear reason, and nothing is half-written or duplicated.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Either, Exit, Fiber, FiberId, HashMap, Layer, Logger, Option, Stream } from "effect"
import { EventStore, StreamId } from "chronicle"
import { PostgresEventStore } from "chronicle/postgres"
import { events } from "../contract/EventStoreContract.js"
import { postgresAvailable, storeLayer } from "../support/postgres.js"

const readIds = (streamId: StreamId.StreamId) =>
  EventStore.read(streamId).pipe(
    Stream.map((e) => e.eventId as string),
    Stream.runCollect,
    Effect.map(Chunk.toReadonlyArray)
  )

/** Terminates the backends of `applicationName` running a statement that matches `pattern`. */
const killActive = (applicationName: string, pattern: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe<{ readonly killed: boolean }>(
      `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
       WHERE application_name = $1 AND state = 'active' AND pid <> pg_backend_pid() AND query LIKE $2`,
      [applicationName, pattern]
    )).pipe(Effect.map((rows) => rows.filter((row) => row.killed).length))

describe.runIf(postgresAvailable())("PostgresEventStore faults", () => {
  const app = `chronicle-faults-${process.pid}`

  it.live("a backend killed mid-append leaves all of the batch or none, and a retry with the same ids writes it once", () =>
    Effect.gen(function*() {
      let kills = 0
      // rounds until two appends were killed in flight (an append can finish before the killer sees it)
      for (let round = 0; round < 12 && (round < 6 || kills < 2); round++) {
        const streamId = StreamId.unsafeMake("killed", `${round}-${Date.now()}`)
        const batch = events(20_000)
        const append = yield* Effect.fork(Effect.either(EventStore.append(streamId, batch, { expectedVersion: "NoStream" })))
        // poll the server for the append's statement while it runs, and kill its backend
        let killed = 0
        while (killed === 0 && append.unsafePoll() === null) killed = yield* killActive(app, "%append_stream%")
        kills += killed
        // the store re-runs the statement on a fresh connection: the append either went through
        // (first time, or recognised as a re-send) or failed typed
        const outcome = yield* Fiber.join(append)
        if (Either.isLeft(outcome)) {
          expect(outcome.left._tag).toBe("StoreError")
          expect(outcome.left.message).toMatch(/connection to PostgreSQL was lost|terminat/i)
        }
        const afterFault = yield* readIds(streamId)
        expect([0, batch.length]).toContain(afterFault.length)

        const retried = yield* EventStore.append(streamId, batch, { expectedVersion: "NoStream" })
        expect(retried.streamVersion).toBe(batch.length)
        const stored = yield* readIds(streamId)
        expect(stored).toEqual(batch.map((e) => e.eventId))
      }
      expect(kills).toBeGreaterThan(0)
    }).pipe(Effect.provide(storeLayer("faults_kill", { applicationName: app }))), 120_000)

  it.live("a connection dropped between read pages does not truncate the read", () =>
    Effect.gen(function*() {
      const streamId = StreamId.unsafeMake("dropped", `${Date.now()}`)
      const batch = events(300)
      yield* EventStore.append(streamId, batch, { expectedVersion: "NoStream" })
      const sql = yield* SqlClient.SqlClient
      let pages = 0
      const ids = yield* EventStore.read(streamId, { chunkSize: 50 }).pipe(
        Stream.mapChunksEffect((chunk) =>
          Effect.as(
            ++pages === 2
              ? sql.unsafe(
                `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`,
                [`${app}-read`]
              )
              : Effect.void,
            chunk
          )
        ),
        Stream.map((e) => e.eventId as string),
        Stream.runCollect,
        Effect.map(Chunk.toReadonlyArray),
        Effect.either
      )
      // either the pool reconnects and the read completes whole, or it fails typed: never a short read
      if (Either.isRight(ids)) expect(ids.right).toEqual(batch.map((e) => e.eventId))
      else expect(ids.left._tag).toBe("StoreError")
    }).pipe(Effect.provide(storeLayer("faults_read", { applicationName: `${app}-read` }))), 60_000)

  it.live("a statement timeout is a StoreError that says so, and the append wrote nothing", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const streamId = StreamId.unsafeMake("timeout", `${Date.now()}`)
      yield* EventStore.append(streamId, events(1), { expectedVersion: "NoStream" })
      // one writer holds the stream's row lock until told to commit; the other waits on it past its statement timeout
      const locked = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(
        sql.withTransaction(
          EventStore.append(streamId, events(1), { expectedVersion: 1 }).pipe(
            Effect.zipLeft(Deferred.succeed(locked, undefined)),
            Effect.zipLeft(Deferred.await(release))
          )
        )
      )
      yield* Deferred.await(locked)
      const blocked = yield* Effect.flip(
        sql.withTransaction(
          Effect.zipRight(
            sql.unsafe(`SET LOCAL statement_timeout = '150ms'`),
            EventStore.append(streamId, events(1), { expectedVersion: "Any" })
          )
        )
      )
      expect(blocked._tag).toBe("StoreError")
      expect(blocked.message).toMatch(/statement timeout/)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      expect(yield* EventStore.streamVersion(streamId)).toBe(2)
    }).pipe(Effect.provide(storeLayer("faults_timeout"))), 60_000)

  it.live("an exhausted pool is a StoreError that says so", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const streamId = StreamId.unsafeMake("pool", `${Date.now()}`)
      // the pool's only connection is held (in a transaction) until the append has failed
      const held = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(sql.withTransaction(Effect.zipRight(Deferred.succeed(held, undefined), Deferred.await(release))))
      yield* Deferred.await(held)
      const error = yield* Effect.flip(EventStore.append(streamId, events(1), { expectedVersion: "NoStream" }))
      expect(error._tag).toBe("StoreError")
      expect(error.message).toMatch(/pool exhausted/)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      expect(yield* EventStore.streamVersion(streamId)).toBe(0)
    }).pipe(Effect.provide(storeLayer("faults_pool", { maxConnections: 1, connectTimeout: 300 }))), 60_000)

  it.live("an idle pool connection the server terminates is logged as a warning, not swallowed", () => {
    const application = `${app}-idle`
    const warned = Deferred.unsafeMake<ReadonlyArray<unknown>>(FiberId.none)
    const capture = Logger.make(({ annotations, logLevel, message }) => {
      const text = Array.isArray(message) ? message.join(" ") : String(message)
      if (logLevel._tag === "Warning" && text.includes("dropped from the pool")) {
        Deferred.unsafeDone(warned, Exit.succeed([text, HashMap.get(annotations, "applicationName")]))
      }
    })
    return Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      // two connections in the pool: one held in a transaction while a read takes another
      const held = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(sql.withTransaction(Effect.zipRight(Deferred.succeed(held, undefined), Deferred.await(release))))
      yield* Deferred.await(held)
      yield* EventStore.streamVersion(StreamId.unsafeMake("idle", `${Date.now()}`))
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      // the pool's other (idle) connection is terminated by the server
      const killed = yield* sql.unsafe<{ readonly killed: boolean }>(
        `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`,
        [application]
      )
      expect(killed.filter((row) => row.killed).length).toBeGreaterThan(0)
      const [text, name] = yield* Deferred.await(warned)
      expect(text).toBe("chronicle: an idle PostgreSQL connection failed and was dropped from the pool")
      expect(name).toEqual(Option.some(application))
    }).pipe(Effect.provide(storeLayer("faults_idle", { applicationName: application })), Effect.provide(Logger.add(capture)))
  }, 60_000)

  it.live("a refused connection fails the layer with a StoreError that says so", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        Layer.build(PostgresEventStore.layerFromUrl({ url: "postgres://postgres@127.0.0.1:1/test" })).pipe(Effect.scoped)
      )
      expect(Exit.isFailure(exit)).toBe(true)
      const error = yield* Effect.flip(exit)
      expect(error._tag).toBe("StoreError")
      expect(error.message).toMatch(/connection refused/)
    }), 30_000)
})
