import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { EventId } from "chronicle"
import type { Event, StreamId } from "chronicle"
import { decodeLine, decodeLogTombstone, encodeLine, encodeLogTombstone, encodeSeal, Erasures, eraseLines, indexLine, isFiller, scan } from "../../src/internal/filesystem/logFormat.js"

const tricky = fc.oneof(
  fc.string(),
  fc.fullUnicodeString(),
  fc.constantFrom("\"", "\\", "\\\"", "},{", "],\"metadata\":{", ",\"data\":", "{\"a\":[1,{\"b\":\"}\"}]}", "\u2028", "\n")
)
const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Object.is(n, -0)),
    tricky,
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(fc.oneof(tricky, fc.constantFrom("data", "metadata", "batch", "eventId")), tie("value"), { maxKeys: 3 })
  )
})).value

describe("filesystem log lines", () => {
  it("any event survives encode and decode exactly, and the index fields agree", () => {
    fc.assert(
      fc.property(
        fc.record({
          streamId: tricky.filter((s) => s.length > 0),
          type: tricky.filter((s) => s.length > 0),
          data: json,
          metadata: fc.dictionary(tricky, json, { maxKeys: 3 }),
          schemaVersion: fc.integer({ min: 1, max: 1000 }),
          streamVersion: fc.integer({ min: 1, max: 2 ** 40 }),
          position: fc.integer({ min: 1, max: 2 ** 52 }),
          batchSize: fc.integer({ min: 1, max: 65_535 }),
          at: fc.integer({ min: 0, max: 253_402_300_799_000 }),
          tags: fc.uniqueArray(tricky.filter((s) => s.length > 0), { maxLength: 3 })
        }),
        (e) => {
          const batchIndex = e.batchSize - 1
          const pending: Event.PendingEvent = {
            eventId: EventId.unsafeGenerate(),
            type: e.type,
            data: e.data,
            metadata: e.metadata,
            schemaVersion: e.schemaVersion,
            tags: e.tags
          }
          const recordedAt = new Date(e.at).toISOString()
          const line = encodeLine(
            pending,
            { data: JSON.stringify(e.data), metadata: JSON.stringify(e.metadata) },
            e.streamId as StreamId.StreamId,
            e.streamVersion,
            e.position,
            recordedAt,
            batchIndex,
            e.batchSize
          )
          const decoded = decodeLine(line.slice(0, -1))
          if (typeof decoded === "string") throw new Error(`not decoded: ${decoded}`)
          expect(decoded.event).toEqual({
            eventId: pending.eventId,
            type: e.type,
            streamId: e.streamId,
            streamVersion: e.streamVersion,
            globalPosition: BigInt(e.position),
            recordedAt: new Date(e.at),
            schemaVersion: e.schemaVersion,
            data: JSON.parse(JSON.stringify(e.data)),
            metadata: JSON.parse(JSON.stringify(e.metadata)),
            tags: e.tags
          })
          expect([decoded.batchIndex, decoded.batchSize]).toEqual([batchIndex, e.batchSize])
          expect(indexLine(line.slice(0, -1))).toEqual({
            globalPosition: e.position,
            streamId: e.streamId,
            eventId: pending.eventId,
            type: e.type,
            tags: e.tags,
            batchIndex,
            batchSize: e.batchSize
          })
        }
      ),
      { numRuns: 500 }
    )
  })

  it("a changed byte anywhere in a line is caught", () => {
    const line = encodeLine(
      { eventId: EventId.unsafeGenerate(), type: "T", data: { a: "b" }, metadata: {}, schemaVersion: 1, tags: [] },
      { data: "{\"a\":\"b\"}", metadata: "{}" },
      "s-1" as StreamId.StreamId,
      1,
      1,
      new Date(0).toISOString(),
      0,
      1
    ).slice(0, -1)
    for (let i = 0; i < line.length; i++) {
      const damaged = line.slice(0, i) + String.fromCharCode(line.charCodeAt(i) ^ 0x04) + line.slice(i + 1)
      expect(["checksum", "shape"]).toContain(decodeLine(damaged))
    }
  })
})

describe("filesystem log fencing", () => {
  /** An append of `size` events planned at offset `at`. */
  const append = (stream: string, size: number, at: number) =>
    Array.from({ length: size }, (_, i) =>
      encodeLine(
        { eventId: EventId.unsafeGenerate(), type: "T", data: {}, metadata: {}, schemaVersion: 1, tags: [] },
        { data: "{}", metadata: "{}" },
        stream as StreamId.StreamId,
        i + 1,
        i + 1,
        new Date(0).toISOString(),
        i,
        size,
        i === 0 ? at : undefined
      )).join("")
  const streamsOf = (log: string) => scan(Buffer.from(log), 0).lines.map((line) => line.entry.streamId)

  it("an append that starts where its writer planned it is kept; one that landed elsewhere is void", () => {
    const first = append("a", 2, 0)
    const stale = append("stale", 2, 0)
    const next = append("b", 1, first.length + stale.length)
    const log = first + stale + next
    expect(streamsOf(log)).toEqual(["a", "a", "b"])
    expect(scan(Buffer.from(log), 0).consumed).toBe(Buffer.byteLength(log))
  })

  it("a torn tail is left out until sealed; sealed, it and its seal are skipped, and appends go on after", () => {
    const first = append("a", 1, 0)
    const torn = append("torn", 3, first.length).slice(0, -40)
    expect(scan(Buffer.from(first + torn), 0)).toMatchObject({ torn: first.length, consumed: first.length })
    const seal = encodeSeal({ from: first.length, at: first.length + torn.length + 1 })
    const after = append("b", 1, first.length + torn.length + 1 + seal.length)
    expect(streamsOf(`${first}${torn}\n${seal}${after}`)).toEqual(["a", "b"])
    // a seal that landed elsewhere (its writer stalled) seals nothing
    const misplaced = encodeSeal({ from: first.length, at: first.length + torn.length })
    expect(scan(Buffer.from(`${first}${torn}\n${misplaced}`), 0).damaged).toBeDefined()
    // a stalled sealer's seal, with its leading newline, landing after the newer holder's seal and appends
    const late = `\n${encodeSeal({ from: first.length, at: first.length + torn.length + 1 })}`
    expect(streamsOf(`${first}${torn}\n${seal}${after}${late}`)).toEqual(["a", "b"])
  })

  /** A tombstone of `stream` planned at `at`, erasing the byte ranges `erased` when given. */
  const tombstone = (stream: string, at: number, erased?: ReadonlyArray<readonly [number, number]>) =>
    encodeLogTombstone({
      streamId: stream as StreamId.StreamId,
      version: 1,
      deletedAt: new Date(0).toISOString(),
      erase: erased !== undefined,
      position: 1,
      at,
      erased: erased ?? []
    })

  it("a tombstone counts where its writer planned it; a stalled deleter's, landed later, is void; neither is an event", () => {
    const first = append("a", 2, 0)
    const other = append("b", 1, first.length)
    const stale = tombstone("a", first.length)
    const valid = tombstone("b", first.length + other.length + stale.length)
    const result = scan(Buffer.from(first + other + stale + valid), 0)
    expect(result.lines.map((line) => line.entry.streamId)).toEqual(["a", "a", "b"])
    expect(result.tombstones.map((t) => t.streamId)).toEqual(["b"])
    expect(result.consumed).toBe(Buffer.byteLength(first + other + stale + valid))
    expect(decodeLogTombstone(valid.slice(0, -1))).toMatchObject({ streamId: "b", erase: false })
    expect(decodeLogTombstone(valid.slice(0, -1).replace("\"b\"", "\"c\""))).toBeUndefined()
  })

  it("erased lines keep their length and newlines; they, and lines an erasure left half-done, read as erased", () => {
    const kept = append("k", 1, 0)
    const gone = append("e", 3, kept.length)
    const after = append("k2", 1, kept.length + gone.length)
    const range = [kept.length, kept.length + gone.length] as const
    const mark = tombstone("e", kept.length + gone.length + after.length, [range])
    const erased = eraseLines(Buffer.from(gone))
    expect(erased.length).toBe(Buffer.byteLength(gone))
    expect([...erased.toString()].map((c, i) => c === "\n" ? i : -1).filter((i) => i >= 0))
      .toEqual([...gone].map((c, i) => c === "\n" ? i : -1).filter((i) => i >= 0))
    expect(erased.toString().split("\n").slice(0, -1).every(isFiller)).toBe(true)
    const streams = (log: string) => scan(Buffer.from(log), 0).lines.map((line) => line.entry.streamId)
    // whole: fillers are void even before the tombstone is known
    expect(streams(kept + erased.toString() + after + mark)).toEqual(["k", "k2"])
    expect(streams(kept + erased.toString() + after)).toEqual(["k", "k2"])
    // cut short: the first line half-overwritten (damaged), the last not at all
    const lines = gone.split("\n")
    const fillers = erased.toString().split("\n")
    const half = Math.floor(lines[0]!.length / 2)
    const torn = [fillers[0]!.slice(0, half) + lines[0]!.slice(half), fillers[1]!, lines[2]!, ""].join("\n")
    expect(streams(kept + torn + after + mark)).toEqual(["k", "k2"])
    // without its tombstone, the half-overwritten line is damage, as any other
    expect(scan(Buffer.from(kept + torn + after), 0).damaged).toMatchObject({ offset: kept.length })
    // and not decided before the tombstone is seen: a scan short of the end stops there
    const short = scan(Buffer.from(kept + torn), 0, false)
    expect(short.consumed).toBe(kept.length)
    expect(short.damaged).toBeUndefined()
    // a tombstone that landed elsewhere than planned erases nothing
    const misplaced = tombstone("e", 0, [range])
    expect(scan(Buffer.from(kept + torn + after + misplaced), 0).damaged).toBeDefined()
    // ranges learnt from an earlier look at the log hold for a later scan of the rest
    const erasures = new Erasures()
    erasures.add("e" as StreamId.StreamId, [range])
    expect(scan(Buffer.from(torn + after), kept.length, true, erasures).lines.map((line) => line.entry.streamId)).toEqual(["k2"])
  })
})
