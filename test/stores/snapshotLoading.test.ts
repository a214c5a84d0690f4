/**
 * Loading through snapshots over every durable store: the handler snapshots on
 * its policy, loads from the snapshot plus the events after it, and replays
 * when the snapshot is unusable.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import type { EventStore, SnapshotStore } from "chronicle"
import {
  CommandHandler,
  FileEventStore,
  FileSnapshotStore,
  PostgresEventStore,
  PostgresSnapshotStore,
  SnapshotPolicy,
  StreamId
} from "chronicle"
import { AccountEvents, AccountState, BankAccount } from "../../examples/BankAccount.js"
import { removeAfter, tempDirectory } from "../support/filesystem.js"
import { databaseUrl, dropSchemaAfter, postgresAvailable, uniqueSchema } from "../support/postgres.js"

const scenario = (name: string, stores: () => Layer.Layer<EventStore.EventStore | SnapshotStore.SnapshotStore, unknown>) =>
  describe(`snapshot loading: ${name}`, () => {
    const accounts = (version: number) =>
      CommandHandler.make(BankAccount, {
        codec: AccountEvents,
        snapshots: { schema: AccountState, version, policy: SnapshotPolicy.everyEvents(10) }
      })

    it.live("snapshots every 10 events, loads from the latest, and replays past an unusable one", () =>
      Effect.gen(function*() {
        const streamId = StreamId.make("account", `${name}-${Date.now()}`)
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
  })

scenario("filesystem", () => {
  const directory = tempDirectory("snapshot-loading")
  return Layer.mergeAll(FileEventStore.layer({ directory }), FileSnapshotStore.layer({ directory }), removeAfter(directory)).pipe(
    Layer.provide(NodeContext.layer)
  )
})

describe.runIf(postgresAvailable())("postgres", () => {
  scenario("postgres", () => {
    const schema = uniqueSchema("snapshot_loading")
    return Layer.mergeAll(PostgresSnapshotStore.layer({ schema }), dropSchemaAfter(schema)).pipe(
      Layer.provideMerge(PostgresEventStore.layerFromUrl({ url: databaseUrl, schema }))
    )
  })
})
