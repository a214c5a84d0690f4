import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Schema, Stream } from "effect"
import fc from "fast-check"
import type { Event } from "chronicle"
import { EventCodec, EventId, EventStore, MemoryEventStore, StreamId } from "chronicle"

const ItemAdded = Schema.TaggedStruct("ItemAdded", {
  sku: Schema.NonEmptyString,
  quantity: Schema.Int.pipe(Schema.positive()),
  addedAt: Schema.DateFromString
})
const CartCheckedOut = Schema.TaggedStruct("CartCheckedOut", { total: Schema.Number })
class CartAbandoned extends Schema.TaggedClass<CartAbandoned>()("CartAbandoned", { reason: Schema.String }) {}
const CartEvent = Schema.Union(ItemAdded, CartCheckedOut, CartAbandoned)
const codec = EventCodec.make(CartEvent, { schemaVersions: { ItemAdded: 3 } })

const cart = StreamId.unsafeMake("cart", "c1")
const stored = (type: string, data: unknown, extra: Partial<Event.StoredEvent> = {}): Event.StoredEvent => ({
  eventId: EventId.unsafeGenerate(),
  type,
  streamId: cart,
  streamVersion: 7,
  globalPosition: 70n,
  recordedAt: new Date(0),
  schemaVersion: 1,
  data,
  metadata: {},
  tags: [],
  ...extra
})

describe("EventCodec", () => {
  it("knows the types of every member of the union", () => {
    expect(codec.types).toEqual(["ItemAdded", "CartCheckedOut", "CartAbandoned"])
    expect(codec.schemaVersion("ItemAdded")).toBe(3)
    expect(codec.schemaVersion("CartCheckedOut")).toBe(1)
  })

  it("encodes the tag as the type, the rest as JSON data, with a fresh UUIDv7 id and the schema version", () => {
    const event = ItemAdded.make({ sku: "a", quantity: 2, addedAt: new Date("2026-01-02T03:04:05.000Z") })
    const first = Either.getOrThrow(codec.encode(event))
    const second = Either.getOrThrow(codec.encode(event))
    expect(first).toMatchObject({
      type: "ItemAdded",
      data: { sku: "a", quantity: 2, addedAt: "2026-01-02T03:04:05.000Z" },
      schemaVersion: 3
    })
    expect(first.data).not.toHaveProperty("_tag")
    expect(first.eventId).not.toBe(second.eventId)
    const given = EventId.make("00000000-0000-4000-8000-000000000001")
    expect(Either.getOrThrow(codec.encode(event, { eventId: given, metadata: { correlationId: "x" } }))).toMatchObject(
      { eventId: given, metadata: { correlationId: "x" } }
    )
  })

  it("decodes through the schema, transformations and classes included", () => {
    const added = Either.getOrThrow(
      codec.decodeData(stored("ItemAdded", { sku: "a", quantity: 1, addedAt: "2026-01-02T00:00:00.000Z" }))
    )
    expect(added).toEqual({ _tag: "ItemAdded", sku: "a", quantity: 1, addedAt: new Date("2026-01-02T00:00:00.000Z") })
    const abandoned = Either.getOrThrow(codec.decodeData(stored("CartAbandoned", { reason: "timeout" })))
    expect(abandoned).toBeInstanceOf(CartAbandoned)
    const envelope = Either.getOrThrow(codec.decode(stored("CartCheckedOut", { total: 5 })))
    expect(envelope).toMatchObject({ streamId: cart, streamVersion: 7, data: { _tag: "CartCheckedOut", total: 5 } })
  })

  it("an unknown type is a typed error naming stream, version and type", () => {
    const error = Either.flip(codec.decodeData(stored("CartExploded", {})))
    expect(Either.getOrThrow(error)).toMatchObject({
      _tag: "UnknownEventType",
      streamId: cart,
      streamVersion: 7,
      type: "CartExploded",
      knownTypes: ["ItemAdded", "CartCheckedOut", "CartAbandoned"]
    })
    expect(Either.getOrThrow(error).message).toContain("cart-c1@7")
  })

  it.each([
    ["a payload missing a field", "CartCheckedOut", {}, "total"],
    ["a payload breaking a refinement", "ItemAdded", { sku: "", quantity: 1, addedAt: "2026-01-01" }, "sku"],
    ["a payload that is not an object", "CartCheckedOut", [1, 2], "not a JSON object"],
    ["a payload that is null", "CartCheckedOut", null, "not a JSON object"]
  ])("%s is an EventDecodeError naming stream, version and type", (_, type, data, mentions) => {
    const error = Either.getOrThrow(Either.flip(codec.decodeData(stored(type, data))))
    expect(error).toMatchObject({ _tag: "EventDecodeError", streamId: cart, streamVersion: 7, type })
    expect(error.message).toContain(mentions)
  })

  it("given stored data whose JSON has a __proto__ key, when it is decoded, then that key is data, not the prototype of what the schema reads", () => {
    // were the key assigned, `total` would be read from the prototype and the event would decode
    const data = JSON.parse("{\"__proto__\":{\"total\":5}}") as unknown
    expect(Either.isLeft(codec.decodeData(stored("CartCheckedOut", data)))).toBe(true)
    expect(Either.getOrThrow(codec.decodeData(stored("CartCheckedOut", JSON.parse("{\"total\":5,\"__proto__\":{\"total\":6}}"))))).toEqual(
      CartCheckedOut.make({ total: 5 })
    )
  })

  it("given any stored data, when it is decoded, then the outcome is the schema's decoding of the data with the type as _tag", () => {
    const key = fc.constantFrom("total", "reason", "_tag", "__proto__", "constructor", "toString", "0", "x")
    const value = fc.oneof(fc.double(), fc.string(), fc.constant(null), fc.dictionary(key, fc.integer(), { maxKeys: 2 }))
    fc.assert(
      fc.property(fc.constantFrom("CartCheckedOut", "CartAbandoned"), fc.dictionary(key, value, { maxKeys: 5 }), (type, dictionary) => {
        // through JSON, as a store hands data over: __proto__ an own key
        const data = JSON.parse(JSON.stringify(dictionary)) as Record<string, unknown>
        const expected: Either.Either<Schema.Schema.Type<typeof CartEvent>, unknown> = type === "CartCheckedOut"
          ? Schema.decodeUnknownEither(CartCheckedOut)({ ...data, _tag: type })
          : Schema.decodeUnknownEither(CartAbandoned)({ ...data, _tag: type })
        const decoded = codec.decodeData(stored(type, data))
        expect(Either.isRight(decoded)).toBe(Either.isRight(expected))
        if (Either.isRight(decoded) && Either.isRight(expected)) expect(decoded.right).toEqual(expected.right)
      }),
      { numRuns: 500 }
    )
  })

  it("an event written by a newer schema version than the codec knows fails to decode", () => {
    const error = Either.getOrThrow(
      Either.flip(codec.decodeData(stored("CartCheckedOut", { total: 1 }, { schemaVersion: 2 })))
    )
    expect(error).toMatchObject({ _tag: "EventDecodeError", schemaVersion: 2 })
    expect(error.message).toContain("newer")
  })

  it("an event that breaks its schema does not encode", () => {
    const error = Either.getOrThrow(Either.flip(codec.encode({ _tag: "CartCheckedOut", total: "lots" } as never)))
    expect(error).toMatchObject({ _tag: "EventEncodeError", type: "CartCheckedOut" })
  })

  it("refuses schemas that are not tagged structs, and duplicated tags", () => {
    expect(() => EventCodec.make(Schema.Struct({ a: Schema.String }) as never)).toThrow(/tagged struct/)
    expect(() => EventCodec.make(Schema.Union(CartCheckedOut, CartCheckedOut))).toThrow(/twice/)
  })

  it.effect("read decodes a stored stream and fails on the first event it cannot decode", () =>
    Effect.gen(function*() {
      const streamId = StreamId.unsafeMake("cart", EventId.unsafeGenerate())
      const good = yield* EventCodec.encodeAll(codec, [CartCheckedOut.make({ total: 1 })])
      yield* EventStore.append(streamId, good, { expectedVersion: "NoStream" })
      const decoded = yield* EventCodec.read(codec, streamId).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      expect(decoded.map((e) => e.data)).toEqual([{ _tag: "CartCheckedOut", total: 1 }])
      yield* EventStore.append(streamId, [{ type: "CartCheckedOut", data: { total: "x" } }], { expectedVersion: 1 })
      const error = yield* Effect.flip(Stream.runDrain(EventCodec.read(codec, streamId)))
      expect(error).toMatchObject({ _tag: "EventDecodeError", streamVersion: 2 })
    }).pipe(Effect.provide(MemoryEventStore.layer())))
})

describe("EventCodec.decodeStream", () => {
  const history = Stream.make(stored("CartCheckedOut", { _tag: "CartCheckedOut", total: 5 }), stored("CartAbandoned", { _tag: "CartAbandoned", reason: "late" }))

  it.effect("decodes piped (data-last) and called data-first alike", () =>
    Effect.gen(function*() {
      const piped = yield* history.pipe(EventCodec.decodeStream(codec), Stream.runCollect)
      const direct = yield* Stream.runCollect(EventCodec.decodeStream(history, codec))
      expect(Chunk.toReadonlyArray(piped).map((event) => event.data._tag)).toEqual(["CartCheckedOut", "CartAbandoned"])
      expect(Chunk.toReadonlyArray(direct)).toEqual(Chunk.toReadonlyArray(piped))
    }))

  it.effect("fails on the first event that does not decode", () =>
    Effect.gen(function*() {
      const broken = Stream.concat(history, Stream.make(stored("CartCheckedOut", { _tag: "CartCheckedOut", total: "five" })))
      const failure = yield* Stream.runCollect(EventCodec.decodeStream(broken, codec)).pipe(Effect.flip)
      expect(failure._tag).toBe("EventDecodeError")
    }))
})
