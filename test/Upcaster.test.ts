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

describe("Upcaster.registry", () => {
  const stored = (type: string, schemaVersion: number, data: unknown = {}) => ({
    streamId: StreamId.unsafeMake("account", "r"),
    streamVersion: 4,
    type,
    schemaVersion,
    data
  })
  const issueOf = (registry: Upcaster.Upcasters, type: string, schemaVersion = 1) =>
    Either.getOrThrow(Either.flip(registry.apply(stored(type, schemaVersion)))).issue

  it("applies only to the (type, version) pairs it has an upcaster for", () => {
    const registry = Upcaster.registry(upcasters)
    expect(registry.appliesTo("Deposited", 1)).toBe(true)
    expect(registry.appliesTo("Deposited", 2)).toBe(true)
    expect(registry.appliesTo("Deposited", 3)).toBe(false)
    expect(registry.appliesTo("Withdrawn", 1)).toBe(false)
  })

  it("an event no upcaster applies to comes back as it is", () => {
    const registry = Upcaster.registry(upcasters)
    expect(Either.getOrThrow(registry.apply(stored("Withdrawn", 1, { amount: 3 })))).toEqual([
      { type: "Withdrawn", schemaVersion: 1, data: { amount: 3 } }
    ])
  })

  it("given a chain of exactly 64 steps, it runs to the end; a chain of 65 is refused as a loop", () => {
    const chain = (length: number) =>
      Upcaster.registry(Array.from({ length }, (_, i) => Upcaster.make("Long", i + 1, (e) => ({ ...e, schemaVersion: i + 2 }))))
    expect(Either.getOrThrow(chain(64).apply(stored("Long", 1)))).toEqual([{ type: "Long", schemaVersion: 65, data: {} }])
    expect(issueOf(chain(65), "Long")).toBe("more than 64 steps: do two upcasters undo each other?")
  })

  it("a split's events are each upcast further, in order, before the events after them", () => {
    const registry = Upcaster.registry([
      Upcaster.make("Pair", 1, () => [{ type: "Left", schemaVersion: 1, data: {} }, { type: "Right", schemaVersion: 1, data: {} }]),
      Upcaster.make("Left", 1, (e) => ({ ...e, schemaVersion: 2 }))
    ])
    expect(Either.getOrThrow(registry.apply(stored("Pair", 1)))).toEqual([
      { type: "Left", schemaVersion: 2, data: {} },
      { type: "Right", schemaVersion: 1, data: {} }
    ])
  })

  it("an upcaster that throws something other than an Error has it named as the issue", () => {
    const registry = Upcaster.registry([
      Upcaster.make("Odd", 1, () => {
        throw "no rate"
      })
    ])
    const error = Either.getOrThrow(Either.flip(registry.apply(stored("Odd", 1))))
    expect(error).toMatchObject({ streamId: "account-r", streamVersion: 4, type: "Odd", step: "Odd v1", issue: "no rate" })
  })

  it.each([
    ["null", null],
    ["a string", "Deposited"],
    ["an event without a type", { type: "", schemaVersion: 2, data: {} }],
    ["an event whose type is not text", { type: 7, schemaVersion: 2, data: {} }],
    ["an event without an integer schema version", { type: "Next", schemaVersion: 1.5, data: {} }],
    ["a list holding junk after a good event", [{ type: "Next", schemaVersion: 1, data: {} }, { nope: true }]],
    ["a function that looks like an event", Object.assign(() => undefined, { type: "Next", schemaVersion: 2, data: {} })]
  ])("an upcaster returning %s is an UpcastError, not an event", (_, junk) => {
    const registry = Upcaster.registry([Upcaster.make("Junk", 1, () => junk as never)])
    expect(issueOf(registry, "Junk")).toBe("the upcaster did not return events ({ type, schemaVersion, data })")
  })

  it("an upcaster lowering the version of the same type is refused; changing the type at any version is fine", () => {
    const lowering = Upcaster.registry([Upcaster.make("Down", 3, (e) => ({ ...e, schemaVersion: 2 }))])
    expect(issueOf(lowering, "Down", 3)).toBe("it returned Down v2: an upcaster must raise the version or change the type")
    const renaming = Upcaster.registry([Upcaster.make("Old", 3, (e) => ({ ...e, type: "New", schemaVersion: 1 }))])
    expect(Either.getOrThrow(renaming.apply(stored("Old", 3)))).toEqual([{ type: "New", schemaVersion: 1, data: {} }])
  })

  it("refuses two upcasters for one (type, version), naming them; one per version is fine", () => {
    expect(() => Upcaster.registry([upcasters[0]!, upcasters[0]!])).toThrow("Upcaster.registry: two upcasters for Deposited v1")
    expect(() => Upcaster.registry([upcasters[0]!, upcasters[1]!])).not.toThrow()
  })
})
