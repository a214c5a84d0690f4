import { describe, expect, it } from "@effect/vitest"
import { Data, Either, Option } from "effect"
import * as fc from "fast-check"
import type { Event } from "chronicle"
import { EventId, StreamId } from "chronicle"
import { Toon } from "chronicle/toon"

const at = (iso: string) => new Date(iso)

const event = (over: Partial<Event.StoredEvent> & Pick<Event.StoredEvent, "type" | "globalPosition">): Event.StoredEvent => ({
  eventId: EventId.unsafeGenerate(),
  streamId: StreamId.unsafeMake("account", "ada"),
  streamVersion: Number(over.globalPosition),
  recordedAt: at("2026-11-24T10:00:00.000Z"),
  schemaVersion: 1,
  data: {},
  metadata: {},
  tags: [],
  ...over
})

const history: ReadonlyArray<Event.StoredEvent> = [
  event({ type: "AccountOpened", globalPosition: 1n, data: { owner: "Ada", currency: "EUR" }, metadata: { correlationId: "c1" } }),
  event({ type: "MoneyDeposited", globalPosition: 2n, data: { amount: 10000 }, metadata: { correlationId: "c1" } }),
  event({ type: "MoneyDeposited", globalPosition: 3n, data: { amount: 500 }, metadata: { correlationId: "c1" } }),
  event({ type: "MoneyWithdrawn", globalPosition: 4n, data: { amount: 3000 }, metadata: { correlationId: "c1" } })
]

/** JSON as a store gives it back: no -0, no undefined. */
const json = fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.parse(JSON.stringify(value)) as unknown)

const storedEvent = fc.record({
  eventId: fc.uuid().map((id) => EventId.make(id)),
  type: fc.oneof(fc.constantFrom("AccountOpened", "MoneyDeposited", "Item Added", "42", "a,b:c"), fc.string({ minLength: 1, maxLength: 12 })),
  streamId: fc.string({ minLength: 1, maxLength: 16 }).map((id) => StreamId.unsafeParse(id)),
  streamVersion: fc.integer({ min: 1, max: 1_000_000 }),
  recordedAt: fc.date({ min: new Date("1970-01-01T00:00:00.000Z"), max: new Date("2999-12-31T23:59:59.999Z"), noInvalidDate: true }),
  schemaVersion: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 9 })),
  data: fc.oneof(
    fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null))),
    json
  ).map((value) => JSON.parse(JSON.stringify(value)) as unknown),
  metadata: fc.dictionary(fc.string({ maxLength: 8 }), json).map((value) => JSON.parse(JSON.stringify(value)) as Event.EventMetadata),
  tags: fc.uniqueArray(fc.string({ minLength: 1, maxLength: 10 }), { maxLength: 3 })
})

/** A history as a store returns it: global positions strictly increasing. */
const storedHistory = fc.array(fc.tuple(storedEvent, fc.bigInt({ min: 1n, max: 1n << 40n })), { maxLength: 25 }).map((items) => {
  let position = 0n
  return items.map(([event, gap]): Event.StoredEvent => {
    position += gap
    return { ...event, globalPosition: position }
  })
})

describe("Toon", () => {
  describe("toToon", () => {
    it("writes a uniform history as one TOON table per event type", () => {
      const text = Toon.toToon(history)
      expect(text).toContain("- type: AccountOpened\n    events[1]{globalPosition,streamId,streamVersion,eventId,recordedAt,data.owner,data.currency,meta.correlationId}:")
      expect(text).toContain("- type: MoneyDeposited\n    events[2]{globalPosition,streamId,streamVersion,eventId,recordedAt,data.amount,meta.correlationId}:")
      expect(text).toContain(`2,account-ada,2,${history[1]!.eventId},"2026-11-24T10:00:00.000Z",10000,c1`)
      expect(text).not.toContain("- eventId:") // no list items: every group is a table
    })

    it("is shorter than JSON for a uniform history", () => {
      const asJson = JSON.stringify(history.map((e) => ({ ...e, globalPosition: String(e.globalPosition) })))
      expect(Toon.toToon(history).length).toBeLessThan(asJson.length * 0.8)
    })

    it("splits a type whose events have different fields into groups that are each a table", () => {
      const text = Toon.toToon([
        ...history,
        event({ type: "MoneyDeposited", globalPosition: 5n, data: { amount: 7 }, metadata: { teller: "north" }, tags: ["account:ada"] })
      ])
      expect(text).toContain("events[1]{globalPosition,streamId,streamVersion,eventId,recordedAt,tags,data.amount,meta.teller}:")
    })
  })

  describe("fromToon", () => {
    it("reads back what toToon wrote, in global order", () => {
      expect(Toon.fromToon(Toon.toToon(history))).toEqual(Either.right(history))
    })

    it("round-trips any history a store can hold", () => {
      fc.assert(
        fc.property(storedHistory, (events) => {
          expect(Toon.fromToon(Toon.toToon(events))).toEqual(Either.right(events))
        }),
        { numRuns: 300 }
      )
    })

    it("keeps positions beyond 2^53, and tags with spaces", () => {
      const events = [
        event({ type: "Tagged", globalPosition: (1n << 60n) + 1n, streamVersion: 1, tags: ["course:c 1", "student:s7"], data: [1, { a: null }] }),
        event({ type: "Tagged", globalPosition: (1n << 60n) + 2n, streamVersion: 2, tags: ["[odd"], data: "text" })
      ]
      expect(Toon.fromToon(Toon.toToon(events))).toEqual(Either.right(events))
    })

    it("refuses text that is not an event history, saying where", () => {
      const notToon = Toon.fromToon("a: [unclosed")
      expect(Either.isLeft(notToon)).toBe(true)
      const notEvents = Toon.fromToon("[1]:\n  - type: X\n    events[1]{globalPosition,streamId}:\n      1,s-1\n")
      expect(Either.isLeft(notEvents) && notEvents.left.message).toMatch(/group 1 \(X\), event 1/)
      const unknownField = Toon.fromToon(Toon.toToon(history).replace("data.owner", "owner"))
      expect(Either.isLeft(unknownField) && unknownField.left.message).toMatch(/unknown field "owner"/)
    })
  })

  describe("stateToToon", () => {
    it("writes a state with dates, bigints, Maps, Sets and Options as plain TOON", () => {
      class Line extends Data.Class<{ readonly sku: string; readonly quantity: number }> {}
      const state = {
        status: "open",
        openedAt: at("2026-11-24T10:00:00.000Z"),
        position: 12n,
        lines: [new Line({ sku: "a", quantity: 1 }), new Line({ sku: "b", quantity: 2 })],
        holds: new Map([["h1", 5]]),
        seen: new Set(["x"]),
        closedAt: Option.none(),
        evolve: () => 0
      }
      expect(Toon.stateToToon(state)).toBe(
        [
          "status: open",
          `openedAt: "2026-11-24T10:00:00.000Z"`,
          `position: "12"`,
          "lines[2]{sku,quantity}:",
          "  a,1",
          "  b,2",
          "holds:",
          "  h1: 5",
          "seen[1]: x",
          "closedAt:",
          "  _id: Option",
          "  _tag: None"
        ].join("\n")
      )
    })

    it("cuts cycles instead of looping", () => {
      const node: Record<string, unknown> = { name: "loop" }
      node.self = node
      expect(Toon.stateToToon(node)).toBe(`name: loop\nself: "[Circular]"`)
    })
  })
})
