/**
 * The appendMany contract: atomic appends across streams, over every store.
 * Each test writes streams and tags of its own.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Layer, Stream } from "effect"
import type { Event } from "chronicle"
import { EventId, EventStore, ExpectedVersion, Query, StreamId } from "chronicle"
import { pause } from "../support/time.js"
import { events, freshStream, newEvent } from "./EventStoreContract.js"

const readIds = (streamId: StreamId.StreamId) =>
  EventStore.read(streamId).pipe(Stream.map((e) => e.eventId as string), Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

const ids = (batch: ReadonlyArray<Event.NewEvent>) => batch.map((e) => e.eventId as string)

/** The global log from `fromPosition`, once readers see at least `count` events of it. */
const logFrom = (fromPosition: bigint, count: number) =>
  Effect.gen(function*() {
    for (let attempt = 0;; attempt++) {
      const log = Chunk.toReadonlyArray(yield* Stream.runCollect(EventStore.readAll({ fromPosition })))
      if (log.length >= count || attempt >= 500) return log
      yield* pause(20)
    }
  })

const versions = (...streams: ReadonlyArray<StreamId.StreamId>) => Effect.forEach(streams, EventStore.streamVersion)

/** A transfer between two accounts: a withdrawal and a deposit, both or neither, at the versions read. */
const transfer = (from: StreamId.StreamId, to: StreamId.StreamId, amount: number) =>
  Effect.gen(function*() {
    const id = EventId.unsafeGenerate()
    for (let attempt = 0;; attempt++) {
      const [vFrom, vTo] = yield* versions(from, to)
      const outcome = yield* Effect.either(EventStore.appendMany([
        { streamId: from, events: [newEvent("Withdrawn", { amount: -amount, transfer: id })], expectedVersion: vFrom! },
        { streamId: to, events: [newEvent("Deposited", { amount, transfer: id })], expectedVersion: vTo! }
      ]))
      if (Either.isRight(outcome)) return id
      if (outcome.left._tag !== "ConcurrencyConflict" || attempt > 200) return yield* outcome.left
    }
  })

export const appendManyContract = <E>(name: string, storeLayer: Layer.Layer<EventStore.EventStore, E>) =>
  layer(storeLayer, { timeout: "120 seconds" })(`appendMany contract: ${name}`, (it) => {
    describe("all or nothing", () => {
      it.effect("appends to every stream, results and global positions in call order, the call contiguous in the log", () =>
        Effect.gen(function*() {
          const [a, b, c] = [freshStream("many"), freshStream("many"), freshStream("many")]
          const before = events(2)
          yield* EventStore.append(b, before, { expectedVersion: "NoStream" })
          const [ea, eb, ec] = [events(2), events(1), events(3)]
          const results = yield* EventStore.appendMany([
            { streamId: a, events: ea, expectedVersion: "NoStream" },
            { streamId: b, events: eb, expectedVersion: 2 },
            { streamId: c, events: ec, expectedVersion: "Any" }
          ])
          expect(results.map((r) => [r.streamId, r.streamVersion, r.globalPositions.length])).toEqual([[a, 2, 2], [b, 3, 1], [c, 3, 3]])
          const positions = results.flatMap((r) => r.globalPositions)
          for (let i = 1; i < positions.length; i++) expect(positions[i]).toBe(positions[i - 1]! + 1n)
          expect(yield* readIds(a)).toEqual(ids(ea))
          expect(yield* readIds(b)).toEqual([...ids(before), ...ids(eb)])
          expect(yield* readIds(c)).toEqual(ids(ec))
          const log = yield* logFrom(positions[0]!, 6)
          expect(log.slice(0, 6).map((e) => e.eventId)).toEqual([...ids(ea), ...ids(eb), ...ids(ec)])
          expect(log.slice(0, 6).map((e) => e.globalPosition)).toEqual(positions)
        }))

      it.effect("one stream at the wrong version: ConcurrencyConflict naming it, nothing stored on any stream", () =>
        Effect.gen(function*() {
          const [a, b] = [freshStream("many"), freshStream("many")]
          yield* EventStore.append(b, events(1), { expectedVersion: "NoStream" })
          const head = yield* EventStore.headPosition
          const error = yield* Effect.flip(EventStore.appendMany([
            { streamId: a, events: events(1), expectedVersion: "NoStream" },
            { streamId: b, events: events(1), expectedVersion: 5 }
          ]))
          expect(error).toEqual(new EventStore.ConcurrencyConflict({ streamId: b, expected: 5, actual: 1 }))
          expect(yield* versions(a, b)).toEqual([0, 1])
          expect(yield* EventStore.headPosition).toBe(head)
        }))

      it.effect("every expected-version mode is checked per stream; the first failing stream in call order is named", () =>
        Effect.gen(function*() {
          const fresh = freshStream("many")
          const existing = freshStream("many")
          yield* EventStore.append(existing, events(2), { expectedVersion: "NoStream" })
          const cases: ReadonlyArray<readonly [StreamId.StreamId, ExpectedVersion.ExpectedVersion, boolean]> = [
            [fresh, "NoStream", true],
            [fresh, 0, true],
            [fresh, "Any", true],
            [fresh, "StreamExists", false],
            [fresh, 1, false],
            [existing, 2, true],
            [existing, "StreamExists", true],
            [existing, "Any", true],
            [existing, "NoStream", false],
            [existing, 1, false]
          ]
          for (const [streamId, expectedVersion, passes] of cases) {
            const other = freshStream("many")
            const outcome = yield* Effect.either(EventStore.appendMany([
              { streamId: other, events: events(1), expectedVersion: "NoStream" },
              { streamId, events: [], expectedVersion }
            ]))
            expect([streamId === fresh ? "fresh" : "existing", expectedVersion, Either.isRight(outcome)]).toEqual([
              streamId === fresh ? "fresh" : "existing",
              expectedVersion,
              passes
            ])
            if (Either.isLeft(outcome)) {
              expect(outcome.left).toMatchObject({ _tag: "ConcurrencyConflict", streamId, expected: expectedVersion })
              expect(yield* EventStore.streamVersion(other)).toBe(0)
            }
          }
          const [x, y] = [freshStream("many"), freshStream("many")]
          const error = yield* Effect.flip(EventStore.appendMany([
            { streamId: x, events: events(1), expectedVersion: 3 },
            { streamId: y, events: events(1), expectedVersion: 4 }
          ]))
          expect(error).toEqual(new EventStore.ConcurrencyConflict({ streamId: x, expected: 3, actual: 0 }))
        }))

      it.effect("a deleted stream refuses the whole call with StreamDeleted", () =>
        Effect.gen(function*() {
          const [a, gone] = [freshStream("many"), freshStream("many")]
          yield* EventStore.append(gone, events(1), { expectedVersion: "NoStream" })
          yield* EventStore.deleteStream(gone)
          const error = yield* Effect.flip(EventStore.appendMany([
            { streamId: a, events: events(1), expectedVersion: "Any" },
            { streamId: gone, events: events(1), expectedVersion: "Any" }
          ]))
          expect(error).toEqual(new EventStore.StreamDeleted({ streamId: gone }))
          expect(yield* versions(a, gone)).toEqual([0, 1])
        }))
    })

    describe("deleting", () => {
      it.effect("erasing one stream of a call leaves the others' events of the call readable", () =>
        Effect.gen(function*() {
          const [a, b] = [freshStream("many"), freshStream("many")]
          const [ea, eb] = [events(2), events(2)]
          yield* EventStore.appendMany([
            { streamId: a, events: ea, expectedVersion: "NoStream" },
            { streamId: b, events: eb, expectedVersion: "NoStream" }
          ])
          yield* EventStore.deleteStream(a, { erase: true })
          expect(yield* readIds(a)).toEqual([])
          expect(yield* readIds(b)).toEqual(ids(eb))
          yield* EventStore.append(b, events(1), { expectedVersion: 2 })
          expect(yield* EventStore.streamVersion(b)).toBe(3)
        }))
    })

    describe("re-sends", () => {
      it.effect("a re-sent call succeeds again with the same results, writing nothing", () =>
        Effect.gen(function*() {
          const [a, b] = [freshStream("many"), freshStream("many")]
          const call = [
            { streamId: a, events: events(2), expectedVersion: "NoStream" as const },
            { streamId: b, events: events(1), expectedVersion: "NoStream" as const }
          ]
          const first = yield* EventStore.appendMany(call)
          const head = yield* EventStore.headPosition
          expect(yield* EventStore.appendMany(call)).toEqual(first)
          expect(yield* EventStore.headPosition).toBe(head)
          expect(yield* versions(a, b)).toEqual([2, 1])
        }))

      it.effect("a call mixing a stored batch with new events fails with DuplicateEventId, storing nothing", () =>
        Effect.gen(function*() {
          const [a, b] = [freshStream("many"), freshStream("many")]
          const stored = events(1)
          yield* EventStore.append(a, stored, { expectedVersion: "NoStream" })
          const error = yield* Effect.flip(EventStore.appendMany([
            { streamId: a, events: stored, expectedVersion: "NoStream" },
            { streamId: b, events: events(1), expectedVersion: "NoStream" }
          ]))
          expect(error).toMatchObject({ _tag: "DuplicateEventId", streamId: a, eventId: stored[0]!.eventId, existingStreamId: a })
          expect(yield* versions(a, b)).toEqual([1, 0])
        }))
    })

    describe("input", () => {
      it.effect("an empty call, a stream given twice, an event id given twice: refused before the store sees them", () =>
        Effect.gen(function*() {
          const [a, b] = [freshStream("many"), freshStream("many")]
          expect(yield* Effect.flip(EventStore.appendMany([]))).toMatchObject({ _tag: "InvalidArgument", argument: "appends" })
          expect(
            yield* Effect.flip(EventStore.appendMany([
              { streamId: a, events: events(1), expectedVersion: "Any" },
              { streamId: a, events: events(1), expectedVersion: "Any" }
            ]))
          ).toMatchObject({ _tag: "InvalidArgument", argument: "appends[1].streamId" })
          const twice = newEvent("Twice")
          expect(
            yield* Effect.flip(EventStore.appendMany([
              { streamId: a, events: [twice], expectedVersion: "Any" },
              { streamId: b, events: [twice], expectedVersion: "Any" }
            ]))
          ).toMatchObject({ _tag: "InvalidEvent", streamId: b, index: 0 })
          expect(yield* versions(a, b)).toEqual([0, 0])
        }))
    })

    describe("tags and the append condition", () => {
      it.effect("the condition covers the whole call; the call's own events never trip it; tags are stored", () =>
        Effect.gen(function*() {
          const tag = `transfer-${EventId.unsafeGenerate()}`
          const query = Query.tagged(tag)
          const [a, b, c] = [freshStream("many"), freshStream("many"), freshStream("many")]
          const condition = { failIfEventsMatch: query, after: 0n }
          const results = yield* EventStore.appendMany([
            { streamId: a, events: [newEvent("Opened", {}, { tags: [tag] })], expectedVersion: "NoStream" },
            { streamId: b, events: [newEvent("Opened", {}, { tags: [tag] })], expectedVersion: "NoStream" }
          ], { condition })
          const matched = yield* EventStore.query(query).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
          expect(matched.map((e) => e.streamId)).toEqual([a, b])
          const error = yield* Effect.flip(EventStore.appendMany([
            { streamId: c, events: events(1), expectedVersion: "NoStream" },
            { streamId: a, events: events(1), expectedVersion: 1 }
          ], { condition }))
          expect(error).toMatchObject({ _tag: "AppendConditionFailed", streamId: c, position: results[0]!.globalPositions[0] })
          expect(yield* versions(a, b, c)).toEqual([1, 1, 0])
          yield* EventStore.appendMany([
            { streamId: c, events: events(1), expectedVersion: "NoStream" },
            { streamId: a, events: events(1), expectedVersion: 1 }
          ], { condition: { failIfEventsMatch: query, after: results[1]!.globalPositions[0]! } })
          expect(yield* versions(a, b, c)).toEqual([2, 1, 1])
        }))
    })

    describe("concurrent history", () => {
      it.effect("two writers moving money in opposite directions: no deadlock, every call whole, the total never changes", () =>
        Effect.gen(function*() {
          const [a, b] = [freshStream("acct"), freshStream("acct")]
          const opened = yield* EventStore.appendMany([
            { streamId: a, events: [newEvent("Deposited", { amount: 1000 })], expectedVersion: "NoStream" },
            { streamId: b, events: [newEvent("Deposited", { amount: 1000 })], expectedVersion: "NoStream" }
          ])
          const rounds = 20
          const acknowledged = yield* Effect.all([
            Effect.forEach(Array.from({ length: rounds }, (_, i) => i), (i) => transfer(a, b, 1 + i)),
            Effect.forEach(Array.from({ length: rounds }, (_, i) => i), (i) => transfer(b, a, 2 + i))
          ], { concurrency: 2 })
          const log = (yield* logFrom(opened[0]!.globalPositions[0]!, 2 + 4 * rounds)).filter((e) => e.streamId === a || e.streamId === b)
          expect(log.length).toBe(2 + 4 * rounds)
          let total = 0
          for (let i = 0; i < log.length; i += 2) {
            const [first, second] = [log[i]!, log[i + 1]!]
            expect(second.globalPosition).toBe(first.globalPosition + 1n)
            const transferId = (first.data as { transfer?: string }).transfer
            expect((second.data as { transfer?: string }).transfer).toBe(transferId)
            total += (first.data as { amount: number }).amount + (second.data as { amount: number }).amount
            expect(total).toBe(2000)
          }
          const transfers = new Set(log.map((e) => (e.data as { transfer?: string }).transfer).filter((t) => t !== undefined))
          expect([...transfers].sort()).toEqual([...acknowledged.flat()].sort())
        }))
    })
  })
