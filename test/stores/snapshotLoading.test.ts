/**
 * Loading through snapshots over every store: the handler snapshots on its
 * policy, loads from the snapshot plus the events after it, and replays when
 * the snapshot is unusable (another state version, damaged, or of a version
 * the stream never reached), counting it in `chronicle_snapshots_ignored_total`.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Metric, Option } from "effect"
import type { EventStore } from "chronicle"
import { CommandHandler, FileEventStore, FileSnapshotStore, MemoryEventStore, MemorySnapshotStore, Metrics, SnapshotPolicy, SnapshotStore, StreamId } from "chronicle"
import { PostgresEventStore, PostgresSnapshotStore } from "chronicle/postgres"
import { AccountEvents, AccountState, BankAccount } from "../../examples/BankAccount.js"
import { removeAfter, tempDirectory } from "../support/filesystem.js"
import { databaseUrl, dropSchemaAfter, postgresAvailable, uniqueSchema } from "../support/postgres.js"

const ignoredCount = Effect.map(Metric.value(Metrics.snapshotsIgnored), (state) => state.count)

/** The balance a full replay of `deposits` deposits of 10 gives, and what the damaged snapshots below claim. */
const replayed = (deposits: number) => deposits * 10

const scenario = (name: string, stores: () => Layer.Layer<EventStore.EventStore | SnapshotStore.SnapshotStore, unknown>) =>
  describe(`snapshot loading: ${name}`, () => {
    const accounts = accountsOf

    it.live("snapshots every 10 events, loads from the latest, and replays past an unusable one", () =>
      Effect.gen(function*() {
        const streamId = StreamId.unsafeMake("account", `${name}-${Date.now()}`)
        const v1 = accounts(1)
        yield* v1.handle(streamId, { _tag: "OpenAccount", owner: "ada", currency: "EUR" })
        for (let i = 0; i < 24; i++) yield* v1.handle(streamId, { _tag: "Deposit", amount: 10 })
        const loaded = yield* v1.load(streamId)
        expect(loaded.version).toBe(25)
        expect(loaded.state.balance).toBe(240)
        expect(Option.map(loaded.snapshot, (s) => s.version)).toEqual(Option.some(20))

        const v2 = yield* accounts(2).load(streamId)
        expect(v2.state.balance).toBe(240)
        expect(v2.snapshot).toEqual(Option.none())
        const again = yield* accounts(2).load(streamId)
        expect(Option.map(again.snapshot, (s) => s.version)).toEqual(Option.some(25))

        const past = yield* v1.loadAt(streamId, { version: 15 })
        expect(past.state.balance).toBe(140)
      }).pipe(Effect.provide(stores())), 60_000)

    it.live("a snapshot of a version the stream never reached is ignored and counted; the load equals a full replay", () =>
      Effect.gen(function*() {
        const streamId = StreamId.unsafeMake("account", `${name}-beyond-${Date.now()}`)
        const v1 = accounts(1)
        yield* v1.handle(streamId, { _tag: "OpenAccount", owner: "ada", currency: "EUR" })
        for (let i = 0; i < 4; i++) yield* v1.handle(streamId, { _tag: "Deposit", amount: 10 })
        // a state that decodes, at a version past the stream's end (a stream recreated, a snapshot restored from elsewhere)
        const snapshots = yield* SnapshotStore.SnapshotStore
        yield* snapshots.save({
          streamId,
          version: 40,
          state: { status: "open", owner: "ada", currency: "EUR", balance: 9_990 },
          stateSchemaVersion: 1
        })
        const before = yield* ignoredCount
        const loaded = yield* v1.load(streamId)
        expect(loaded).toMatchObject({ version: 5, state: { balance: replayed(4) }, snapshot: Option.none() })
        expect(yield* ignoredCount).toBe(before + 1)
        // the handler keeps working on it, and the bad snapshot was replaced by a true one
        const handled = yield* v1.handle(streamId, { _tag: "Deposit", amount: 10 })
        expect(handled.streamVersion).toBe(6)
        expect(Option.getOrThrow(yield* snapshots.load(streamId)).version).toBeLessThanOrEqual(6)
        expect((yield* v1.load(streamId)).state.balance).toBe(replayed(5))
      }).pipe(Effect.provide(stores())), 60_000)
  })

const accountsOf = (version: number) =>
  CommandHandler.make(BankAccount, {
    codec: AccountEvents,
    snapshots: { schema: AccountState, version, policy: SnapshotPolicy.everyEvents(10) }
  })

scenario("memory", () => Layer.merge(MemoryEventStore.layer(), MemorySnapshotStore.layer()))

const fileStores = (directory: string) =>
  Layer.mergeAll(FileEventStore.layer({ directory }), FileSnapshotStore.layer({ directory }), removeAfter(directory)).pipe(
    Layer.provide(NodeContext.layer)
  )

scenario("filesystem", () => fileStores(tempDirectory("snapshot-loading")))

describe("snapshot loading: a damaged filesystem snapshot", () => {
  it.live("a snapshot file whose checksum does not match is ignored and counted, though its state decodes; the load equals a full replay", () => {
    const directory = tempDirectory("snapshot-damaged")
    return Effect.gen(function*() {
      const streamId = StreamId.unsafeMake("account", `damaged-${Date.now()}`)
      const v1 = accountsOf(1)
      yield* v1.handle(streamId, { _tag: "OpenAccount", owner: "ada", currency: "EUR" })
      for (let i = 0; i < 12; i++) yield* v1.handle(streamId, { _tag: "Deposit", amount: 10 })
      const snapshots = yield* SnapshotStore.SnapshotStore
      expect(Option.getOrThrow(yield* snapshots.load(streamId)).version).toBe(10)
      // change the balance in the file (90 → 99): still JSON, still an AccountState, no longer what was written
      const files = readdirSync(join(directory, "snapshots")).filter((file) => file.endsWith(".json"))
      expect(files.length).toBe(1)
      const file = join(directory, "snapshots", files[0]!)
      const text = readFileSync(file, "utf8")
      expect(text).toContain("\"balance\":90")
      writeFileSync(file, text.replace("\"balance\":90", "\"balance\":99"))

      const before = yield* ignoredCount
      const loaded = yield* v1.load(streamId)
      expect(loaded).toMatchObject({ version: 13, state: { balance: replayed(12) }, snapshot: Option.none() })
      expect(yield* ignoredCount).toBe(before + 1)
      // the replay snapshotted the stream afresh: the damaged file was replaced
      expect(Option.getOrThrow(yield* snapshots.load(streamId)).version).toBe(13)
      expect((yield* v1.load(streamId)).state.balance).toBe(replayed(12))
    }).pipe(Effect.provide(fileStores(directory)))
  }, 60_000)
})

describe.runIf(postgresAvailable())("postgres", () => {
  scenario("postgres", () => {
    const schema = uniqueSchema("snapshot_loading")
    return Layer.mergeAll(PostgresSnapshotStore.layer({ schema }), dropSchemaAfter(schema)).pipe(
      Layer.provideMerge(PostgresEventStore.layerFromUrl({ url: databaseUrl, schema }))
    )
  })
})
