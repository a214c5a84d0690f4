import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Schema, Stream } from "effect"
import { CommandHandler, Decider, EventCodec, EventStore, MemoryEventStore, StreamId, Upcaster } from "chronicle"

// today's events: v3 deposits carry a currency and a memo; "Renamed" became "OwnerChanged";
// v1 "Transferred" is split into a withdrawal and a fee
const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int, currency: Schema.String, memo: Schema.String })
const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Int })
const FeeCharged = Schema.TaggedStruct("FeeCharged", { amount: Schema.Int })
const OwnerChanged = Schema.TaggedStruct("OwnerChanged", { owner: Schema.String })
const AccountEvent = Schema.Union(Deposited, Withdrawn, FeeCharged, OwnerChanged)
type AccountEvent = typeof AccountEvent.Type

const upcasters = [
  Upcaster.make("Deposited", 1, (e) => ({ ...e, schemaVersion: 2, data: { ...e.data, currency: "EUR" } })),
  Upcaster.make("Deposited", 2, (e) => ({ ...e, schemaVersion: 3, data: { ...e.data, memo: "" } })),
  Upcaster.make("Renamed", 1, (e) => ({ type: "OwnerChanged", schemaVersion: 1, data: { owner: e.data.name } })),
  Upcaster.make("Transferred", 1, (e) => [
    { type: "Withdrawn", schemaVersion: 1, data: { amount: e.data.amount } },
    { type: "FeeCharged", schemaVersion: 1, data: { amount: 1 } }
  ])
]
const codec = EventCodec.make(AccountEvent, { schemaVersions: { Deposited: 3 }, upcasters })

const Balance = Decider.make({
  initialState: { balance: 0, owner: "", fees: 0 },
  decide: (_: never) => Effect.succeed<ReadonlyArray<AccountEvent>>([]),
  evolve: (s: { balance: number; owner: string; fees: number }, e: AccountEvent) => {
    switch (e._tag) {
      case "Deposited":
        return { ...s, balance: s.balance + e.amount }
      case "Withdrawn":
        return { ...s, balance: s.balance - e.amount }
      case "FeeCharged":
        return { ...s, balance: s.balance - e.amount, fees: s.fees + e.amount }
      case "OwnerChanged":
        return { ...s, owner: e.owner }
    }
  }
})

const legacy = (streamId: StreamId.StreamId) =>
  EventStore.append(streamId, [
    { type: "Deposited", schemaVersion: 1, data: { amount: 100 } },
    { type: "Deposited", schemaVersion: 2, data: { amount: 50, currency: "USD" } },
    { type: "Renamed", schemaVersion: 1, data: { name: "Grace" } },
    { type: "Transferred", schemaVersion: 1, data: { amount: 30 } },
    { type: "Deposited", schemaVersion: 3, data: { amount: 5, currency: "GBP", memo: "tip" } }
  ], { expectedVersion: "NoStream" })

const payload = (type: string, schemaVersion: number, data: unknown) => ({
  streamId: StreamId.unsafeMake("account", "p"),
  streamVersion: 9,
  type,
  schemaVersion,
  data
})

describe("Upcaster", () => {
  it.effect("chains run in order, rename and split events, and the handler folds what they make", () =>
    Effect.gen(function*() {
      const streamId = StreamId.unsafeMake("account", "legacy")
      yield* legacy(streamId)
      const loaded = yield* CommandHandler.make(Balance, { codec }).load(streamId)
      expect(loaded.state).toEqual({ balance: 100 + 50 - 30 - 1 + 5, owner: "Grace", fees: 1 })
      expect(loaded.version).toBe(5)
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  it("decodeEvents shows each step's result: v1 deposit to v3, rename, split", () => {
    expect(Either.getOrThrow(codec.decodeEvents(payload("Deposited", 1, { amount: 7 })))).toEqual([
      { _tag: "Deposited", amount: 7, currency: "EUR", memo: "" }
    ])
    expect(Either.getOrThrow(codec.decodeEvents(payload("Renamed", 1, { name: "Ada" })))).toEqual([
      { _tag: "OwnerChanged", owner: "Ada" }
    ])
    expect(Either.getOrThrow(codec.decodeEvents(payload("Transferred", 1, { amount: 9 })))).toEqual([
      { _tag: "Withdrawn", amount: 9 },
      { _tag: "FeeCharged", amount: 1 }
    ])
  })

  it.effect("reading never rewrites what is stored", () =>
    Effect.gen(function*() {
      const streamId = StreamId.unsafeMake("account", "untouched")
      yield* legacy(streamId)
      yield* CommandHandler.make(Balance, { codec }).load(streamId)
      const stored = yield* EventStore.read(streamId).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      expect(stored.map((e) => [e.type, e.schemaVersion, e.data])).toEqual([
        ["Deposited", 1, { amount: 100 }],
        ["Deposited", 2, { amount: 50, currency: "USD" }],
        ["Renamed", 1, { name: "Grace" }],
        ["Transferred", 1, { amount: 30 }],
        ["Deposited", 3, { amount: 5, currency: "GBP", memo: "tip" }]
      ])
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  it("an upcaster that throws is an UpcastError naming stream, version, type and step", () => {
    const broken = EventCodec.make(AccountEvent, {
      schemaVersions: { Deposited: 3 },
      upcasters: [
        upcasters[0]!,
        Upcaster.make("Deposited", 2, () => {
          throw new Error("no exchange rate")
        })
      ]
    })
    const error = Either.getOrThrow(Either.flip(broken.decodeEvents(payload("Deposited", 1, { amount: 1 }))))
    expect(error).toMatchObject({
      _tag: "UpcastError",
      streamId: "account-p",
      streamVersion: 9,
      type: "Deposited",
      step: "Deposited v2",
      issue: "no exchange rate"
    })
    expect(error.message).toContain("account-p@9")
  })

  it("an upcaster that does not move forward, or returns junk, is an UpcastError, not a hang", () => {
    const looping = EventCodec.make(AccountEvent, {
      upcasters: [
        Upcaster.make("Ping", 1, (e) => ({ ...e, type: "Pong" })),
        Upcaster.make("Pong", 1, (e) => ({ ...e, type: "Ping" })),
        Upcaster.make("Stuck", 1, (e) => e),
        Upcaster.make("Junk", 1, () => ({ nope: true }) as never)
      ]
    })
    const issueOf = (type: string) =>
      Either.getOrThrow(Either.flip(looping.decodeEvents(payload(type, 1, {})))).message
    expect(issueOf("Ping")).toMatch(/more than 64 steps/)
    expect(issueOf("Stuck")).toMatch(/must raise the version or change the type/)
    expect(issueOf("Junk")).toMatch(/did not return events/)
  })

  it("two upcasters for the same type and version are refused", () => {
    expect(() => EventCodec.make(AccountEvent, { upcasters: [upcasters[0]!, upcasters[0]!] })).toThrow(/two upcasters/)
  })

  it("decodeData (one event in, one out) refuses a split", () => {
    const error = Either.getOrThrow(Either.flip(codec.decodeData(payload("Transferred", 1, { amount: 1 }))))
    expect(error.message).toContain("decodeEvents")
  })
})
