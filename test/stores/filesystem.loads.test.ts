/**
 * Loads on the filesystem store, which fold each event as its line is
 * decoded (`foldPage`), against loads on the memory store, which fold pages
 * of `readPage`: the same events give the same states at every version, the
 * same errors where an event does not decode, and a decider that throws is
 * a defect on both, not a store failure. A copy of the service that wraps
 * `readPage` loads through its `readPage`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Schema } from "effect"
import type { Event } from "chronicle"
import { CommandHandler, Decider, EventCodec, EventId, EventStore, MemoryEventStore, StreamId, Upcaster } from "chronicle"
import { fileStoreLayer } from "../support/filesystem.js"

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Int })
const FeeCharged = Schema.TaggedStruct("FeeCharged", { amount: Schema.Int })
const AccountEvent = Schema.Union(Deposited, Withdrawn, FeeCharged)
type AccountEvent = typeof AccountEvent.Type

// a v1 "Transferred" is read as a withdrawal and a fee: one stored event, two folded
const codec = EventCodec.make(AccountEvent, {
  upcasters: [
    Upcaster.make("Transferred", 1, (e) => [
      { type: "Withdrawn", schemaVersion: 1, data: { amount: e.data.amount } },
      { type: "FeeCharged", schemaVersion: 1, data: { amount: 1 } }
    ])
  ]
})

interface Account {
  readonly balance: number
  readonly fees: number
  readonly folded: number
}

const account = (explodeAt?: number) =>
  Decider.make({
    initialState: { balance: 0, fees: 0, folded: 0 } as Account,
    decide: (_: never) => Effect.succeed<ReadonlyArray<AccountEvent>>([]),
    evolve: (s: Account, e: AccountEvent): Account => {
      if (s.folded + 1 === explodeAt) throw new Error(`evolve exploded at event ${explodeAt}`)
      switch (e._tag) {
        case "Deposited":
          return { ...s, balance: s.balance + e.amount, folded: s.folded + 1 }
        case "Withdrawn":
          return { ...s, balance: s.balance - e.amount, folded: s.folded + 1 }
        case "FeeCharged":
          return { ...s, balance: s.balance - e.amount, fees: s.fees + e.amount, folded: s.folded + 1 }
      }
    }
  })

/** `count` stored events over several load pages: deposits, every 7th a v1 transfer, and `bad` (if given) not decodable. */
const history = (count: number, bad?: number): Array<Event.NewEvent> =>
  Array.from({ length: count }, (_, i) => {
    const version = i + 1
    const [type, data] = version === bad
      ? ["Deposited", { amount: "not a number" }]
      : version % 7 === 0
      ? ["Transferred", { amount: version % 13 }]
      : ["Deposited", { amount: version % 10 }]
    return { eventId: EventId.unsafeGenerate(), type, schemaVersion: 1, data, metadata: {}, tags: [] }
  })

const seeded = (streamId: StreamId.StreamId, events: ReadonlyArray<Event.NewEvent>) =>
  Effect.forEach(
    Array.from({ length: Math.ceil(events.length / 1000) }, (_, page) => events.slice(page * 1000, page * 1000 + 1000)),
    (batch, page) => EventStore.append(streamId, batch, { expectedVersion: page === 0 ? "NoStream" : page * 1000 }),
    { discard: true }
  )

/** What loading `streamId` at each of `versions` gives (the whole stream with undefined): state and version, or the failure. */
const loads = (handler: ReturnType<typeof handlerOf>, streamId: StreamId.StreamId, versions: ReadonlyArray<number | undefined>) =>
  Effect.forEach(versions, (version) =>
    Effect.exit(version === undefined ? handler.load(streamId) : handler.loadAt(streamId, { version })).pipe(
      Effect.map(Exit.match({
        onFailure: (cause) => Cause.isFailType(cause) ? { failed: cause.error._tag } : { died: String(Cause.squash(cause)) },
        onSuccess: ({ state, version }) => ({ state, version })
      }))
    ))

const handlerOf = (explodeAt?: number) => CommandHandler.make(account(explodeAt), { codec })

/** The same scenario on the memory store and the filesystem store. */
const onBoth = <A>(scenario: Effect.Effect<A, unknown, EventStore.EventStore>) =>
  Effect.all([
    Effect.provide(scenario, MemoryEventStore.layer()),
    Effect.provide(scenario, fileStoreLayer("loads", { fsync: false }))
  ])

const versions = [undefined, 0, 1, 999, 1000, 1001, 2000, 2001, 2499, 2500, 9999]

describe("filesystem store: loads that fold as they decode", () => {
  it.live("given 2,500 events with upcasts that split, when loaded whole and at versions across pages, then every outcome equals the memory store's", () =>
    Effect.gen(function*() {
      const streamId = StreamId.unsafeMake("account", "split")
      const [memory, file] = yield* onBoth(Effect.zipRight(seeded(streamId, history(2500)), loads(handlerOf(), streamId, versions)))
      expect(file).toEqual(memory)
      expect(file[0]).toMatchObject({ version: 2500, state: { folded: 2500 + Math.floor(2500 / 7) } })
    }))

  it.live("given an event that does not decode at version 1,700 of 1,800, when loaded, then both fail alike and loads before it succeed", () =>
    Effect.gen(function*() {
      const streamId = StreamId.unsafeMake("account", "bad")
      const [memory, file] = yield* onBoth(
        Effect.zipRight(seeded(streamId, history(1800, 1700)), loads(handlerOf(), streamId, [undefined, 1699, 1700]))
      )
      expect(file).toEqual(memory)
      expect(file.map((outcome) => "failed" in outcome ? outcome.failed : "loaded")).toEqual(["EventDecodeError", "loaded", "EventDecodeError"])
    }))

  it.live("given a decider whose evolve throws, when loaded, then the load dies with its error on both stores, not with a StoreError", () =>
    Effect.gen(function*() {
      const streamId = StreamId.unsafeMake("account", "throws")
      const [memory, file] = yield* onBoth(Effect.zipRight(seeded(streamId, history(1500)), loads(handlerOf(1200), streamId, [undefined])))
      expect(file).toEqual(memory)
      expect(file).toEqual([{ died: "Error: evolve exploded at event 1200" }])
    }))

  it.live("given a copy of the store's service that wraps readPage, when loaded through it, then the load reads through the wrapper", () =>
    Effect.gen(function*() {
      const streamId = StreamId.unsafeMake("account", "wrapped")
      let pages = 0
      const [, [folded, wrapped]] = yield* onBoth(Effect.gen(function*() {
        yield* seeded(streamId, history(2500))
        const store = yield* EventStore.EventStore
        const folded = yield* loads(handlerOf(), streamId, [undefined])
        const copy: EventStore.EventStoreService = {
          ...store,
          readPage: (id, page) => Effect.zipRight(Effect.sync(() => pages++), store.readPage(id, page))
        }
        const wrapped = yield* loads(handlerOf(), streamId, [undefined]).pipe(Effect.provide(Layer.succeed(EventStore.EventStore, copy)))
        return [folded, wrapped] as const
      }))
      expect(wrapped).toEqual(folded)
      // memory and filesystem, three pages each
      expect(pages).toBe(6)
    }))
})
