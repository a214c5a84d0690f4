/**
 * The filesystem store's in-place line decoders: an event (or a payload)
 * decoded from a line's bytes in one pass equals the line parsed whole with
 * `JSON.parse`, whatever its strings, numbers and JSON hold; and a line with
 * a byte flipped anywhere is still refused, there and through the store.
 */
import { openSync, readFileSync, writeSync, closeSync } from "node:fs"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import fc from "fast-check"
import { EventId, EventStore, FileEventStore, StreamId } from "chronicle"
import type { EventPayload, PendingEvent, StoredEvent } from "../../src/Event.js"
import { crc32 } from "node:zlib"
import { decodeKnownPayloadAt, decodeLineAt, decodePayloadAt, encodeLine } from "../../src/internal/filesystem/logFormat.js"
import { foldPageOf } from "../../src/internal/eventStore.js"
import { knownPayloadIn, payloadIn, typeKeyOf } from "../../src/internal/filesystem/lineDecoding.js"
import { removeAfter, tempDirectory } from "../support/filesystem.js"

/** Text with what a walk through JSON must get right: quotes, escapes, brackets, separators, non-ASCII. */
const tricky = fc.string({
  unit: fc.oneof(
    fc.constantFrom("\"", "\\", "{", "}", "[", "]", ",", ":", "\n", "\u0000", "é", "😀", "\u2028", ",\"data\":", "\"type\":"),
    fc.string({ unit: "binary", minLength: 1, maxLength: 1 })
  ),
  maxLength: 12
})

/** JSON text as a writer may hand it over: any value, numbers past 2^53 and in exponent form included. */
const jsonText = fc.oneof(
  fc.jsonValue().map((value) => JSON.stringify(value)),
  fc.dictionary(tricky, fc.oneof(tricky, fc.double({ noNaN: true, noDefaultInfinity: true }))).map((value) => JSON.stringify(value)),
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
  fc.tuple(fc.integer({ min: -9, max: 9 }), fc.integer({ min: -300, max: 300 })).map(([m, e]) => `{"n":${m}.5e${e}}`),
  fc.constantFrom("null", "0", "-0", "[]", "{}", "\"\"", "[{\"a\":[\"]\"]}]")
)

const lineArbitrary = fc.record({
  eventId: fc.uuid(),
  type: tricky,
  streamId: tricky,
  streamVersion: fc.oneof(fc.nat(), fc.maxSafeNat()),
  globalPosition: fc.oneof(fc.nat(), fc.maxSafeNat(), fc.constant(2 ** 60)),
  recordedAt: fc.date({ min: new Date(0), max: new Date(8.64e15), noInvalidDate: true }).map((d) => d.toISOString()),
  schemaVersion: fc.nat(),
  tags: fc.array(tricky, { maxLength: 3 }),
  batch: fc.tuple(fc.nat(), fc.nat()),
  at: fc.option(fc.maxSafeNat(), { nil: undefined }),
  metadata: jsonText.filter((text) => text.startsWith("{")),
  data: jsonText
})

type LineFields = typeof lineArbitrary extends fc.Arbitrary<infer A> ? A : never

const encode = (fields: LineFields): Buffer => {
  const event = { eventId: fields.eventId, type: fields.type, schemaVersion: fields.schemaVersion, tags: fields.tags } as unknown as PendingEvent
  return Buffer.from(encodeLine(
    event,
    { data: fields.data, metadata: fields.metadata },
    fields.streamId as StreamId.StreamId,
    fields.streamVersion,
    fields.globalPosition,
    fields.recordedAt,
    fields.batch[0],
    fields.batch[1],
    fields.at
  ))
}

const eventStart = "{\"crc\":\"00000000\",\"event\":".length

/** A line as the store's first writer laid it out: `data` before `metadata`, no `at` or `tags`. */
const encodeFirstLayout = (fields: LineFields): Buffer => {
  const json = `{"globalPosition":${fields.globalPosition},"streamId":${JSON.stringify(fields.streamId)},"streamVersion":${fields.streamVersion},"eventId":"${fields.eventId}","type":${
    JSON.stringify(fields.type)
  },"schemaVersion":${fields.schemaVersion},"recordedAt":"${fields.recordedAt}","batch":[${fields.batch[0]},${fields.batch[1]}],"data":${fields.data},"metadata":${fields.metadata}}`
  return Buffer.from(`{"crc":"${crc32(json).toString(16).padStart(8, "0")}","event":${json}}\n`)
}

/** The payload fields of what a payload decoder returned (a problem as it is). */
const payloadOf = (decoded: EventPayload | string) =>
  typeof decoded === "string" ? decoded : {
    streamId: decoded.streamId,
    streamVersion: decoded.streamVersion,
    type: decoded.type,
    schemaVersion: decoded.schemaVersion,
    data: decoded.data
  }

/** The line parsed whole, the way the store read lines before it decoded them in place. */
const parsedWhole = (line: Buffer) => {
  const parsed = (JSON.parse(line.toString("utf8")) as { event: Record<string, any> }).event
  const event: StoredEvent = {
    eventId: parsed["eventId"],
    type: parsed["type"],
    streamId: parsed["streamId"],
    streamVersion: parsed["streamVersion"],
    globalPosition: BigInt(parsed["globalPosition"]),
    recordedAt: new Date(parsed["recordedAt"]),
    schemaVersion: parsed["schemaVersion"],
    data: parsed["data"],
    metadata: parsed["metadata"],
    tags: parsed["tags"] ?? []
  }
  return {
    line: { event, batchIndex: parsed["batch"][0], batchSize: parsed["batch"][1], ...(parsed["at"] === undefined ? {} : { at: parsed["at"] }) },
    payload: { streamId: event.streamId, streamVersion: event.streamVersion, type: event.type, schemaVersion: event.schemaVersion, data: event.data }
  }
}

/** The line's bytes, without its newline, after some text in front (a line read among others). */
const amongOthers = (line: Buffer) => {
  const before = Buffer.from("{\"crc\":\"00000000\",\"event\":{}}\n")
  return { bytes: Buffer.concat([before, line]), start: before.length, end: before.length + line.length - 1 }
}

/** Checks any line `encodeWith` lays out, read among others, against the line parsed whole. */
const forAnyLine = (
  encodeWith: (fields: LineFields) => Buffer,
  check: (placed: ReturnType<typeof amongOthers>, whole: ReturnType<typeof parsedWhole>) => void
) =>
  fc.assert(
    fc.property(lineArbitrary, (fields) => {
      const line = encodeWith(fields)
      check(amongOthers(line), parsedWhole(line))
    }),
    { numRuns: 2_000 }
  )

describe("filesystem store: in-place line decoding", () => {
  it("given any line the writer writes, when it is decoded in place, then it equals the line parsed whole", () =>
    forAnyLine(encode, ({ bytes, end, start }, whole) => {
        // in place, not by the fallback that parses the event whole
        expect(payloadIn(bytes, start + eventStart, end - 1)).toEqual(whole.payload)
        expect(decodeLineAt(bytes, start, end)).toEqual(whole.line)
        expect(decodePayloadAt(bytes, start, end)).toEqual(whole.payload)
        // a page's payload, its stream, version and type given by the index
        const { streamId, streamVersion, type } = whole.payload
        expect(knownPayloadIn(bytes, start + eventStart, end - 1, streamId, streamVersion, typeKeyOf(type), type)).toEqual(whole.payload)
      }))

  it("given a line in the first layout (data before metadata), when a page's payload is decoded, then it equals the line parsed whole", () =>
    forAnyLine(encodeFirstLayout, ({ bytes, end, start }, whole) => {
        const { streamId, streamVersion, type } = whole.payload
        // by the fallback that parses the line whole, which hands over the whole event
        expect(payloadOf(decodeKnownPayloadAt(bytes, start, end, streamId, streamVersion, typeKeyOf(type), type))).toEqual(whole.payload)
        expect(payloadOf(decodePayloadAt(bytes, start, end))).toEqual(whole.payload)
      }))

  it("given any line with one byte changed anywhere, when it is decoded, then it is refused (checksum or shape)", () =>
    fc.assert(
      fc.property(lineArbitrary, fc.nat(), fc.integer({ min: 1, max: 255 }), (fields, where, flip) => {
        const line = encode(fields)
        const { bytes, start, end } = amongOthers(line)
        const at = start + (where % (end - start))
        bytes[at] = bytes[at]! ^ flip
        const cut = bytes.indexOf(0x0a, start)
        const lineEnd = cut === -1 || cut > end ? end : cut
        expect(["checksum", "shape"]).toContain(decodeLineAt(bytes, start, lineEnd))
        expect(["checksum", "shape"]).toContain(decodePayloadAt(bytes, start, lineEnd))
      }),
      { numRuns: 2_000 }
    ))

  it.live("given a stored stream with one byte of the log changed, when a page of it is read for a load, then the read fails with a StoreError", () =>
    Effect.gen(function*() {
      const directory = tempDirectory("decoders")
      const log = join(directory, FileEventStore.logFileName)
      const layer = Layer.merge(FileEventStore.layer({ directory, fsync: false }), removeAfter(directory)).pipe(Layer.provide(NodeContext.layer))
      const streamId = StreamId.unsafeMake("account", "flipped")
      yield* Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const events = Array.from({ length: 20 }, (_, i) => ({
          eventId: EventId.unsafeGenerate(),
          type: "MoneyDeposited",
          data: { amount: i, note: "é \"quoted\" {x}" },
          metadata: { correlationId: `c-${i}` }
        }))
        yield* store.append(streamId, events, { expectedVersion: "NoStream" })
        const original = readFileSync(log)
        const range = { fromVersion: 1, toVersion: 20, limit: 20 }
        // read as a page, and folded as it is decoded
        const page = () => store.readPage(streamId, range)
        const fold = () => Effect.flatMap(Effect.fromNullable(foldPageOf(store)), (foldPage) => foldPage(streamId, range, () => true))
        expect((yield* page()).map((p) => p.data)).toEqual(events.map((e) => e.data))
        expect(yield* fold()).toBe(20)
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(fc.nat({ max: original.length - 2 }), fc.integer({ min: 1, max: 255 }), async (where, flip) => {
              const write = (byte: number) => {
                const fd = openSync(log, "r+")
                writeSync(fd, Buffer.of(byte), 0, 1, where)
                closeSync(fd)
              }
              write(original[where]! ^ flip)
              try {
                const read = await Effect.runPromise(Effect.either(page()))
                expect(Either.isLeft(read) && read.left._tag).toBe("StoreError")
                const folded = await Effect.runPromise(Effect.either(fold()))
                expect(Either.isLeft(folded) && folded.left._tag).toBe("StoreError")
              } finally {
                write(original[where]!)
              }
            }),
            { numRuns: 150 }
          )
        )
      }).pipe(Effect.provide(layer))
    }))
})
