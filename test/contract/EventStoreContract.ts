/**
 * The EventStore contract: every store Layer must pass this suite. A store's
 * test file calls `eventStoreContract(name, layer)`; the layer is built once
 * per suite, so each test uses fresh stream ids and, for the global log, reads
 * from a position it wrote itself (tests of one file run one after another).
 */
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Exit, Layer, Option, Stream } from "effect"
import * as fc from "fast-check"
import type { Event, ExpectedVersion } from "chronicle"
import { EventId, EventStore, StreamId } from "chronicle"
import { pause } from "../support/time.js"
import { foldPageOf } from "../../src/internal/eventStore.js"

type NewEvent = Event.NewEvent

let counter = 0
/** A stream id no other test (or earlier run against a kept database) uses. */
export const freshStream = (category = "contract"): StreamId.StreamId =>
  StreamId.unsafeMake(category, `${EventId.unsafeGenerate()}-${++counter}`)

export const newEvent = (type: string, data: unknown = {}, extra: Partial<NewEvent> = {}): NewEvent => ({
  eventId: EventId.unsafeGenerate(),
  type,
  data,
  ...extra
})

export const events = (n: number, type = "Counted"): Array<NewEvent> =>
  Array.from({ length: n }, (_, i) => newEvent(type, { i, label: `event ${i}` }))

const readStream = (streamId: StreamId.StreamId, options?: EventStore.ReadOptions) =>
  EventStore.read(streamId, options).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

const readLog = (options?: EventStore.ReadAllOptions) =>
  EventStore.readAll(options).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

const expectStrictlyIncreasing = (positions: ReadonlyArray<bigint>) => {
  for (let i = 1; i < positions.length; i++) expect(positions[i]! > positions[i - 1]!).toBe(true)
}


/**
 * Reads the global log until it holds at least `count` events (or 10 s pass):
 * a store may show an event to global readers only once every transaction
 * that began before it has ended (PostgreSQL), delaying it but never skipping it.
 */
const readLogUntil = (count: number, options: EventStore.ReadAllOptions) =>
  Effect.gen(function*() {
    for (let attempt = 0;; attempt++) {
      const log = yield* readLog(options)
      if (log.length >= count || attempt >= 500) return log
      yield* pause(20)
    }
  })

const flip = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.flip(effect)

const invalidArgument = (operation: string, argument: string) => expect.objectContaining({ _tag: "InvalidArgument", operation, argument })

/**
 * Runs `read` to its end, doing `meanwhile` once its first chunk has been
 * pulled: what a read returns when writers go on while it runs.
 */
export const pullAround = <A, E, R, E2, R2>(read: Stream.Stream<A, E, R>, meanwhile: Effect.Effect<unknown, E2, R2>) =>
  Effect.scoped(Effect.gen(function*() {
    const pull = yield* Stream.toPull(read)
    const out: Array<A> = []
    for (let pulled = 0;; pulled++) {
      const next = yield* Effect.either(pull)
      if (Either.isLeft(next)) {
        if (Option.isNone(next.left)) return out
        return yield* Effect.fail(next.left.value)
      }
      out.push(...next.right)
      if (pulled === 0) yield* meanwhile
    }
  }))

/**
 * Expects a `DuplicateEventId` naming `event` as stored at `where` (and, when
 * given, refusing an append to `appendedTo`).
 */
export const expectDuplicateOf = (
  error: unknown,
  event: NewEvent,
  where: { readonly streamId: StreamId.StreamId; readonly version: number; readonly position?: bigint | undefined },
  appendedTo?: StreamId.StreamId
) =>
  expect(error).toMatchObject({
    _tag: "DuplicateEventId",
    eventId: event.eventId,
    existingStreamId: where.streamId,
    existingVersion: where.version,
    ...(where.position === undefined ? {} : { existingPosition: where.position }),
    ...(appendedTo === undefined ? {} : { streamId: appendedTo })
  })

const conflictOf = (streamId: StreamId.StreamId, expected: ExpectedVersion.ExpectedVersion, actual: number) =>
  new EventStore.ConcurrencyConflict({ streamId, expected, actual })

const appendN = (streamId: StreamId.StreamId, n: number, expectedVersion: ExpectedVersion.ExpectedVersion = "Any") =>
  EventStore.append(streamId, events(n), { expectedVersion })

export const eventStoreContract = <E>(
  name: string,
  storeLayer: Layer.Layer<EventStore.EventStore, E>,
  options: {
    readonly maxEventBytes?: number
  } = {}
) =>
  layer(storeLayer, { timeout: "60 seconds" })(`EventStore contract: ${name}`, (it) => {
    describe("append and read", () => {
      it.effect("given a new stream, when a batch is appended, then reading returns it with every envelope field", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          const batch = [
            newEvent("Opened", { owner: "ada", tags: ["a", "b"], nested: { n: 1.5, ok: true, none: null } }, {
              metadata: { correlationId: "c-1", causationId: "m-1", tenant: "t1" },
              schemaVersion: 2
            }),
            newEvent("Renamed", { owner: "grace" })
          ]
          const result = yield* EventStore.append(streamId, batch, { expectedVersion: "NoStream" })
          expect(result.streamId).toBe(streamId)
          expect(result.streamVersion).toBe(2)
          expect(result.globalPositions).toHaveLength(2)
          expect(result.globalPositions[1]!).toBeGreaterThan(result.globalPositions[0]!)

          const stored = yield* readStream(streamId)
          expect(stored.map((e) => e.eventId)).toEqual(batch.map((e) => e.eventId))
          expect(stored.map((e) => e.type)).toEqual(["Opened", "Renamed"])
          expect(stored.map((e) => e.streamVersion)).toEqual([1, 2])
          expect(stored.map((e) => e.globalPosition)).toEqual(result.globalPositions)
          expect(stored.every((e) => e.streamId === streamId)).toBe(true)
          expect(stored[0]!.data).toEqual(batch[0]!.data)
          expect(stored[0]!.metadata).toEqual({ correlationId: "c-1", causationId: "m-1", tenant: "t1" })
          expect(stored[1]!.metadata).toEqual({})
          expect(stored.map((e) => e.schemaVersion)).toEqual([2, 1])
          for (const event of stored) {
            expect(event.recordedAt).toBeInstanceOf(Date)
            expect(Number.isNaN(event.recordedAt.getTime())).toBe(false)
          }
        }))

      it.effect("given several appends, then versions continue from where the stream was", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          yield* appendN(streamId, 2, "NoStream")
          const second = yield* appendN(streamId, 3, 2)
          expect(second.streamVersion).toBe(5)
          const stored = yield* readStream(streamId)
          expect(stored.map((e) => e.streamVersion)).toEqual([1, 2, 3, 4, 5])
          expect(yield* EventStore.streamVersion(streamId)).toBe(5)
        }))

      it.effect("a stream that was never written reads as empty, at version 0", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          expect(yield* readStream(streamId)).toEqual([])
          expect(yield* readStream(streamId, { direction: "backwards" })).toEqual([])
          expect(yield* EventStore.streamVersion(streamId)).toBe(0)
        }))

      it.effect("batch metadata is merged into every event, and an event's own fields win", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          yield* EventStore.append(
            streamId,
            [newEvent("A", {}, { metadata: { causationId: "own", extra: 1 } }), newEvent("B")],
            { expectedVersion: "NoStream", metadata: { correlationId: "batch", causationId: "batch" } }
          )
          const stored = yield* readStream(streamId)
          expect(stored[0]!.metadata).toEqual({ correlationId: "batch", causationId: "own", extra: 1 })
          expect(stored[1]!.metadata).toEqual({ correlationId: "batch", causationId: "batch" })
        }))

      it.effect("events without ids get UUIDv7 ids from the store", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          yield* EventStore.append(streamId, [{ type: "A", data: { x: 1 } }], { expectedVersion: "NoStream" })
          const [stored] = yield* readStream(streamId)
          expect(stored!.eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
        }))

      it.effect("an empty batch writes nothing but still checks the expected version", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          const empty = yield* EventStore.append(streamId, [], { expectedVersion: "NoStream" })
          expect(empty).toEqual({ streamId, streamVersion: 0, globalPositions: [] })
          yield* appendN(streamId, 2)
          expect((yield* EventStore.append(streamId, [], { expectedVersion: 2 })).streamVersion).toBe(2)
          expect(yield* flip(EventStore.append(streamId, [], { expectedVersion: 1 }))).toEqual(
            conflictOf(streamId, 1, 2)
          )
        }))
    })

    describe("expected versions", () => {
      const cases: ReadonlyArray<{
        readonly expected: ExpectedVersion.ExpectedVersion
        readonly existing: number
        readonly succeeds: boolean
      }> = [
        { expected: "NoStream", existing: 0, succeeds: true },
        { expected: "NoStream", existing: 2, succeeds: false },
        { expected: "StreamExists", existing: 0, succeeds: false },
        { expected: "StreamExists", existing: 2, succeeds: true },
        { expected: "Any", existing: 0, succeeds: true },
        { expected: "Any", existing: 2, succeeds: true },
        { expected: 0, existing: 0, succeeds: true },
        { expected: 0, existing: 2, succeeds: false },
        { expected: 2, existing: 2, succeeds: true },
        { expected: 1, existing: 2, succeeds: false },
        { expected: 3, existing: 2, succeeds: false },
        { expected: 1, existing: 0, succeeds: false }
      ]
      for (const { existing, expected, succeeds } of cases) {
        it.effect(
          `given a stream at version ${existing}, appending with expected ${expected} ${succeeds ? "succeeds" : "conflicts"}`,
          () =>
            Effect.gen(function*() {
              const streamId = freshStream()
              if (existing > 0) yield* appendN(streamId, existing, "NoStream")
              const exit = yield* Effect.exit(appendN(streamId, 2, expected))
              if (succeeds) {
                expect(exit).toEqual(Exit.succeed(expect.objectContaining({ streamVersion: existing + 2 })))
              } else {
                expect(exit).toEqual(Exit.fail(conflictOf(streamId, expected, existing)))
                expect(yield* EventStore.streamVersion(streamId)).toBe(existing)
              }
            })
        )
      }

      it.effect("a conflicting append stores none of its batch, and its ids stay free to use", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          const first = yield* appendN(streamId, 2, "NoStream")
          const rejected = events(3)
          const error = yield* flip(EventStore.append(streamId, rejected, { expectedVersion: 1 }))
          expect(error).toBeInstanceOf(EventStore.ConcurrencyConflict)
          expect(error).toMatchObject({ streamId, expected: 1, actual: 2 })
          expect(error.message).toContain("expected version 1, actual 2")
          expect((yield* readStream(streamId)).length).toBe(2)
          const log = yield* readLogUntil(2, { fromPosition: first.globalPositions[0]! })
          expect(log.filter((e) => rejected.some((r) => r.eventId === e.eventId))).toEqual([])
          const retried = yield* EventStore.append(streamId, rejected, { expectedVersion: 2 })
          expect(retried.streamVersion).toBe(5)
        }))
    })

    describe("idempotency by event id", () => {
      it.effect("re-sending a batch after a lost reply succeeds with the same result and writes nothing", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          const batch = events(3)
          const first = yield* EventStore.append(streamId, batch, { expectedVersion: "NoStream" })
          const again = yield* EventStore.append(streamId, batch, { expectedVersion: "NoStream" })
          expect(again).toEqual(first)
          expect((yield* readStream(streamId)).map((e) => e.eventId)).toEqual(batch.map((e) => e.eventId))
        }))

      it.effect("the re-send is recognised even after other writers moved the stream on", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          yield* appendN(streamId, 1, "NoStream")
          const batch = events(2)
          const first = yield* EventStore.append(streamId, batch, { expectedVersion: 1 })
          yield* appendN(streamId, 4, 3)
          const again = yield* EventStore.append(streamId, batch, { expectedVersion: 1 })
          expect(again).toEqual(first)
          const anyAgain = yield* EventStore.append(streamId, batch, { expectedVersion: "Any" })
          expect(anyAgain).toEqual(first)
          expect(yield* EventStore.streamVersion(streamId)).toBe(7)
        }))

      it.effect("given a stored batch, when it is re-sent with an expected version the original could not have had, then DuplicateEventId names its first event", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          yield* appendN(streamId, 1, "NoStream")
          const batch = events(2)
          const { globalPositions } = yield* EventStore.append(streamId, batch, { expectedVersion: 1 })
          const error = yield* flip(EventStore.append(streamId, batch, { expectedVersion: "NoStream" }))
          expectDuplicateOf(error, batch[0]!, { streamId, version: 2, position: globalPositions[0] }, streamId)
        }))

      it.effect("given [e1..e6], when [e1] is appended at the stream's version 6, then DuplicateEventId names e1 at version 1, not a conflict", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          const stored = events(6)
          const { globalPositions } = yield* EventStore.append(streamId, stored, { expectedVersion: "NoStream" })
          for (const expectedVersion of [6, "StreamExists", 3] as const) {
            const error = yield* flip(EventStore.append(streamId, [stored[0]!], { expectedVersion }))
            expectDuplicateOf(error, stored[0]!, { streamId, version: 1, position: globalPositions[0] }, streamId)
          }
          expect(yield* EventStore.streamVersion(streamId)).toBe(6)
        }))

      it.effect("given [e1, e2] stored, when [e1, e2, e3] is appended (a partial re-send), then DuplicateEventId names e1, the first stored event", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          const stored = events(2)
          const { globalPositions } = yield* EventStore.append(streamId, stored, { expectedVersion: "NoStream" })
          const e3 = newEvent("New")
          for (const expectedVersion of ["NoStream", 2, "Any"] as const) {
            const error = yield* flip(EventStore.append(streamId, [...stored, e3], { expectedVersion }))
            expectDuplicateOf(error, stored[0]!, { streamId, version: 1, position: globalPositions[0] })
          }
          const mixed = yield* flip(EventStore.append(streamId, [e3, stored[1]!], { expectedVersion: 2 }))
          expectDuplicateOf(mixed, stored[1]!, { streamId, version: 2, position: globalPositions[1] })
          expect(yield* EventStore.streamVersion(streamId)).toBe(2)
          expect(mixed.message).toContain(stored[1]!.eventId)
        }))

      it.effect("a batch that partly overlaps stored events fails whole with DuplicateEventId", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          const batch = events(2)
          yield* EventStore.append(streamId, batch, { expectedVersion: "NoStream" })
          const overlapping = [newEvent("New"), batch[1]!]
          const error = yield* flip(EventStore.append(streamId, overlapping, { expectedVersion: 2 }))
          expectDuplicateOf(error, batch[1]!, { streamId, version: 2 })
          const reordered = [batch[1]!, batch[0]!]
          expect((yield* flip(EventStore.append(streamId, reordered, { expectedVersion: "Any" })))._tag).toBe(
            "DuplicateEventId"
          )
          expect(yield* EventStore.streamVersion(streamId)).toBe(2)
        }))

      it.effect("an id already stored in another stream is a DuplicateEventId naming that stream", () =>
        Effect.gen(function*() {
          const a = freshStream()
          const b = freshStream()
          const batch = events(1)
          const stored = yield* EventStore.append(a, batch, { expectedVersion: "NoStream" })
          const error = yield* flip(EventStore.append(b, batch, { expectedVersion: "NoStream" }))
          expectDuplicateOf(error, batch[0]!, { streamId: a, version: 1, position: stored.globalPositions[0] }, b)
          expect(yield* EventStore.streamVersion(b)).toBe(0)
        }))
    })

    describe("reading ranges", () => {
      const total = 23
      const model = (options: EventStore.ReadOptions) => {
        const from = Math.max(1, options.fromVersion ?? 1)
        const to = Math.min(total, options.toVersion ?? total)
        const versions: Array<number> = []
        for (let v = from; v <= to; v++) versions.push(v)
        if (options.direction === "backwards") versions.reverse()
        return versions.slice(0, options.limit ?? versions.length)
      }
      const sample = (() => {
        let streamId: StreamId.StreamId | undefined
        return Effect.suspend(() => {
          if (streamId !== undefined) return Effect.succeed(streamId)
          const id = freshStream("ranges")
          return Effect.as(appendN(id, total, "NoStream"), id).pipe(Effect.tap((id) => (streamId = id)))
        })
      })()

      /** Any range, direction, limit and chunk size around the sample stream's 23 events. */
      const anyRange = {
        fromVersion: fc.option(fc.integer({ min: 0, max: total + 3 }), { nil: undefined }),
        toVersion: fc.option(fc.integer({ min: 0, max: total + 3 }), { nil: undefined }),
        direction: fc.option(fc.constantFrom("forwards" as const, "backwards" as const), { nil: undefined }),
        limit: fc.option(fc.integer({ min: 0, max: total + 3 }), { nil: undefined }),
        chunkSize: fc.option(fc.integer({ min: 1, max: 9 }), { nil: undefined })
      }

      const table: ReadonlyArray<EventStore.ReadOptions> = [
        {},
        { fromVersion: 5 },
        { toVersion: 4 },
        { fromVersion: 3, toVersion: 9 },
        { fromVersion: 10, limit: 3 },
        { direction: "backwards" },
        { direction: "backwards", limit: 5 },
        { direction: "backwards", fromVersion: 4, toVersion: 8 },
        { fromVersion: 30 },
        { fromVersion: 9, toVersion: 3 },
        { limit: 0 },
        { fromVersion: 0, limit: 2 },
        { chunkSize: 4 },
        { direction: "backwards", chunkSize: 5, limit: 12 }
      ]
      for (const options of table) {
        it.effect(`read(${JSON.stringify(options)}) returns the versions of that range in that order`, () =>
          Effect.gen(function*() {
            const streamId = yield* sample
            const stored = yield* readStream(streamId, options)
            expect(stored.map((e) => e.streamVersion)).toEqual(model(options))
          }))
      }

      it.effect.prop(
        "any range, direction, limit and chunk size reads exactly what the model says",
        anyRange,
        (options) =>
          Effect.gen(function*() {
            const streamId = yield* sample
            const stored = yield* readStream(streamId, options)
            expect(stored.map((e) => e.streamVersion)).toEqual(model(options))
          }),
        { fastCheck: { numRuns: 40 } }
      )

      it.effect.prop(
        "readPayloads returns, for any range, exactly what read returns, less the envelope's bookkeeping",
        anyRange,
        (options) =>
          Effect.gen(function*() {
            const streamId = yield* sample
            const full = yield* readStream(streamId, options)
            const payloads = yield* EventStore.readPayloads(streamId, options).pipe(
              Stream.runCollect,
              Effect.map(Chunk.toReadonlyArray)
            )
            const pick = ({ data, schemaVersion, streamId, streamVersion, type }: Event.EventPayload) => ({
              data,
              schemaVersion,
              streamId,
              streamVersion,
              type
            })
            expect(payloads.map(pick)).toEqual(full.map(pick))
          }),
        { fastCheck: { numRuns: 25 } }
      )

      it.effect.prop(
        "readPage returns the forward range read returns, at most limit events",
        {
          fromVersion: fc.integer({ min: 1, max: total + 3 }),
          span: fc.integer({ min: 0, max: total + 3 }),
          limit: fc.integer({ min: 0, max: total + 3 })
        },
        ({ fromVersion, limit, span }) =>
          Effect.gen(function*() {
            const streamId = yield* sample
            const page = { fromVersion, toVersion: fromVersion + span, limit }
            const store = yield* EventStore.EventStore
            const payloads = yield* store.readPage(streamId, page)
            const full = yield* readStream(streamId, page)
            expect(payloads.map((e) => [e.streamVersion, e.type, e.data])).toEqual(
              full.map((e) => [e.streamVersion, e.type, e.data])
            )
          }),
        { fastCheck: { numRuns: 25 } }
      )

      it.effect.prop(
        "foldPage, where the store offers it, hands step what readPage returns, in order, up to where step stops it",
        {
          fromVersion: fc.integer({ min: 1, max: total + 3 }),
          span: fc.integer({ min: 0, max: total + 3 }),
          limit: fc.integer({ min: 0, max: total + 3 }),
          stopAt: fc.integer({ min: 1, max: total + 3 })
        },
        ({ fromVersion, limit, span, stopAt }) =>
          Effect.gen(function*() {
            const streamId = yield* sample
            const page = { fromVersion, toVersion: fromVersion + span, limit }
            const store = yield* EventStore.EventStore
            const foldPage = foldPageOf(store)
            if (foldPage === undefined) return
            const handed: Array<Event.EventPayload> = []
            const taken = yield* foldPage(streamId, page, (payload) => {
              handed.push(payload)
              return handed.length < stopAt
            })
            const payloads = yield* store.readPage(streamId, page)
            const expected = payloads.slice(0, stopAt)
            expect(taken).toBe(expected.length)
            expect(handed.map((e) => [e.streamId, e.streamVersion, e.type, e.schemaVersion, e.data])).toEqual(
              expected.map((e) => [e.streamId, e.streamVersion, e.type, e.schemaVersion, e.data])
            )
          }),
        { fastCheck: { numRuns: 25 } }
      )

      const badStreamOptions: ReadonlyArray<readonly [EventStore.ReadOptions, string]> = [
        [{ fromVersion: -1 }, "fromVersion"],
        [{ fromVersion: 1.5 }, "fromVersion"],
        [{ toVersion: -1 }, "toVersion"],
        [{ toVersion: 2.5 }, "toVersion"],
        [{ limit: -1 }, "limit"],
        [{ limit: 0.5 }, "limit"],
        [{ chunkSize: 0 }, "chunkSize"],
        [{ chunkSize: 1.5 }, "chunkSize"],
        [{ direction: "sideways" as never }, "direction"],
        [{ deleted: "maybe" as never }, "deleted"]
      ]
      for (const [options, argument] of badStreamOptions) {
        it.effect(`given read options ${JSON.stringify(options)}, when reading a stream, then it fails with InvalidArgument naming ${argument}`, () =>
          Effect.gen(function*() {
            const streamId = yield* sample
            expect(yield* flip(readStream(streamId, options))).toEqual(invalidArgument("read", argument))
            expect(yield* flip(Stream.runDrain(EventStore.readPayloads(streamId, options)))).toEqual(invalidArgument("readPayloads", argument))
          }))
      }

      it.effect("given a page or log range out of bounds, when reading, then it fails with InvalidArgument naming the argument", () =>
        Effect.gen(function*() {
          const streamId = yield* sample
          const store = yield* EventStore.EventStore
          expect(yield* flip(store.readPage(streamId, { fromVersion: 1, toVersion: 5, limit: -1 }))).toEqual(invalidArgument("readPage", "limit"))
          expect(yield* flip(store.readPage(streamId, { fromVersion: -2, toVersion: 5, limit: 1 }))).toEqual(invalidArgument("readPage", "fromVersion"))
          expect(yield* flip(store.readPage(streamId, { fromVersion: 1, toVersion: 0.5, limit: 1 }))).toEqual(invalidArgument("readPage", "toVersion"))
          expect(yield* flip(readLog({ fromPosition: -1n }))).toEqual(invalidArgument("readAll", "fromPosition"))
          expect(yield* flip(readLog({ limit: -1 }))).toEqual(invalidArgument("readAll", "limit"))
          expect(yield* flip(readLog({ limit: 1.5 }))).toEqual(invalidArgument("readAll", "limit"))
          expect(yield* flip(readLog({ chunkSize: 0 }))).toEqual(invalidArgument("readAll", "chunkSize"))
          const error = yield* flip(readStream(streamId, { limit: -1 }))
          expect(error.message).toMatch(/limit/)
        }))

      it.effect("given an expected version that is no version, when appending or deleting, then it fails with InvalidArgument and writes nothing", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          for (const expectedVersion of [-1, 1.5, "Whatever" as never, Number.NaN]) {
            expect(yield* flip(appendN(streamId, 1, expectedVersion))).toEqual(invalidArgument("append", "expectedVersion"))
            expect(yield* flip(EventStore.deleteStream(streamId, { expectedVersion }))).toEqual(invalidArgument("deleteStream", "expectedVersion"))
          }
          expect(yield* EventStore.streamVersion(streamId)).toBe(0)
          expect(yield* EventStore.isDeleted(streamId)).toBe(false)
        }))
    })

    describe("the global log", () => {
      it.effect("readAll returns events of every stream in the order they were appended", () =>
        Effect.gen(function*() {
          const [a, b, c] = [freshStream("alpha"), freshStream("beta"), freshStream("gamma")]
          const first = yield* appendN(a, 2, "NoStream")
          yield* appendN(b, 1, "NoStream")
          yield* appendN(a, 1, 2)
          yield* appendN(c, 3, "NoStream")
          yield* appendN(b, 2, 1)
          const log = yield* readLogUntil(9, { fromPosition: first.globalPositions[0]!, chunkSize: 2 })
          expect(log.map((e) => `${e.streamId}@${e.streamVersion}`)).toEqual([
            `${a}@1`,
            `${a}@2`,
            `${b}@1`,
            `${a}@3`,
            `${c}@1`,
            `${c}@2`,
            `${c}@3`,
            `${b}@2`,
            `${b}@3`
          ])
          const positions = log.map((e) => e.globalPosition)
          expectStrictlyIncreasing(positions)
        }))

      it.effect("readAll from a position starts there (inclusive) and honours the limit", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          const { globalPositions } = yield* appendN(streamId, 6, "NoStream")
          const middle = yield* readLogUntil(3, { fromPosition: globalPositions[2]!, limit: 3 })
          expect(middle.map((e) => e.globalPosition)).toEqual(globalPositions.slice(2, 5))
          const tail = yield* readLog({ fromPosition: globalPositions[5]! + 1n })
          expect(tail).toEqual([])
          expect(yield* readLog({ fromPosition: globalPositions[0]!, limit: 0 })).toEqual([])
        }))

      it.effect("readAll backwards: from the end, the newest events first; from a position, that one and older", () =>
        Effect.gen(function*() {
          const streamId = freshStream("backwards")
          const { globalPositions } = yield* appendN(streamId, 5, "NoStream")
          yield* readLogUntil(5, { fromPosition: globalPositions[0]! })
          const newest = yield* readLog({ direction: "backwards", limit: 50, chunkSize: 2 })
          // the last 50 of the whole log, newest first: ours come first unless another writer appended since
          expectStrictlyIncreasing([...newest].reverse().map((e) => e.globalPosition))
          expect(newest.length).toBeGreaterThanOrEqual(5)
          const ours = yield* readLog({ direction: "backwards", fromPosition: globalPositions[3]!, limit: 3, chunkSize: 2 })
          expect(ours.map((e) => e.globalPosition)).toEqual([globalPositions[3], globalPositions[2], globalPositions[1]])
          expect(yield* readLog({ direction: "backwards", fromPosition: 0n })).toEqual([])
          expect(yield* flip(readLog({ direction: "sideways" as never }))).toEqual(invalidArgument("readAll", "direction"))
        }))

      it.effect("readAll filtered by category and type keeps only those events, in order, both ways", () =>
        Effect.gen(function*() {
          const tag = EventId.unsafeGenerate().replaceAll("-", "").slice(0, 12)
          const [orders, invoices, other] = [`ord${tag}`, `inv${tag}`, `oth${tag}`]
          const o = StreamId.unsafeMake(orders, "1")
          const i = StreamId.unsafeMake(invoices, "1")
          const x = StreamId.unsafeMake(other, "1")
          const first = yield* EventStore.append(o, [newEvent("Placed"), newEvent("Paid")], { expectedVersion: "NoStream" })
          yield* EventStore.append(x, [newEvent("Placed")], { expectedVersion: "NoStream" })
          yield* EventStore.append(i, [newEvent("Issued"), newEvent("Paid")], { expectedVersion: "NoStream" })
          const last = yield* EventStore.append(o, [newEvent("Shipped")], { expectedVersion: 2 })
          const fromPosition = first.globalPositions[0]!
          yield* readLogUntil(1, { fromPosition: last.globalPositions[0]! })
          const show = (log: ReadonlyArray<Event.StoredEvent>) => log.map((e) => `${StreamId.category(e.streamId).slice(0, 3)}:${e.type}`)

          expect(show(yield* readLog({ fromPosition, filter: { categories: [orders] }, chunkSize: 1 }))).toEqual(["ord:Placed", "ord:Paid", "ord:Shipped"])
          expect(show(yield* readLog({ fromPosition, filter: { categories: [orders, invoices], types: ["Paid"] } }))).toEqual(["ord:Paid", "inv:Paid"])
          expect(show(yield* readLog({ fromPosition, filter: { categories: [orders, invoices, other], types: ["Placed", "Issued"] } }))).toEqual([
            "ord:Placed",
            "oth:Placed",
            "inv:Issued"
          ])
          expect(show(yield* readLog({ direction: "backwards", filter: { categories: [orders, invoices] }, limit: 4, chunkSize: 3 }))).toEqual([
            "ord:Shipped",
            "inv:Paid",
            "inv:Issued",
            "ord:Paid"
          ])
          expect(show(yield* readLog({ fromPosition, filter: { categories: [`none${tag}`] } }))).toEqual([])

          for (const filter of [{ categories: [] }, { types: [""] }, { categories: "ord" as never }, null as never]) {
            expect(yield* flip(readLog({ filter }))).toEqual(invalidArgument("readAll", "filter"))
          }
          expect((yield* flip(EventStore.subscribe({ filter: { types: [] } }).pipe(Stream.runDrain)))._tag).toBe("InvalidArgument")
        }))

      it.effect("readAll with any filter, direction, start and limit returns exactly the matching slice of the log (property)", () =>
        Effect.gen(function*() {
          const tag = EventId.unsafeGenerate().replaceAll("-", "").slice(0, 10)
          const categories = ["a", "b", "c"].map((c) => `${c}${tag}`)
          const types = ["T1", "T2", "T3"]
          const streams = categories.flatMap((category) => [StreamId.unsafeMake(category, "1"), StreamId.unsafeMake(category, "2")])
          const plan = fc.sample(fc.array(fc.tuple(fc.nat(streams.length - 1), fc.nat(types.length - 1)), { minLength: 20, maxLength: 40 }), 1)[0]!
          const written: Array<bigint> = []
          for (const [s, t] of plan) {
            const { globalPositions } = yield* EventStore.append(streams[s]!, [newEvent(types[t]!)], { expectedVersion: "Any" })
            written.push(globalPositions[0]!)
          }
          yield* readLogUntil(1, { fromPosition: written.at(-1)! })
          const context = yield* Effect.context<EventStore.EventStore>()
          const ours = yield* readLog({ fromPosition: written[0]!, filter: { categories } })
          expect(ours.map((e) => e.globalPosition)).toEqual(written)
          yield* Effect.promise(() =>
            fc.assert(
              fc.asyncProperty(
                fc.subarray(categories, { minLength: 1 }),
                fc.option(fc.subarray(types, { minLength: 1 }), { nil: undefined }),
                fc.constantFrom("forwards" as const, "backwards" as const),
                fc.nat(written.length + 1),
                fc.nat(written.length + 2),
                fc.integer({ min: 1, max: 7 }),
                async (cats, typs, direction, at, limit, chunkSize) => {
                  const fromPosition = at === written.length + 1 ? undefined : at === 0 ? written[0]! - 1n : written[at - 1]!
                  const kept = ours.filter((e) => cats.includes(StreamId.category(e.streamId)) && (typs === undefined || typs.includes(e.type)))
                  const slice = direction === "forwards"
                    ? kept.filter((e) => fromPosition === undefined || e.globalPosition >= fromPosition)
                    : [...kept].reverse().filter((e) => fromPosition === undefined || e.globalPosition <= fromPosition)
                  const got = await Effect.runPromise(
                    readLog({ fromPosition, direction, limit, chunkSize, filter: { categories: cats, types: typs } }).pipe(Effect.provide(context))
                  )
                  expect(got.map((e) => e.globalPosition)).toEqual(slice.slice(0, limit).map((e) => e.globalPosition))
                }
              ),
              { numRuns: 40 }
            )
          )
        }))
    })

    describe("partitions", () => {
      /** Stream ids whose UTF-8 bytes are unlike their UTF-16 units: astral characters, combining marks, the longest id. */
      const trickyIds = (category: string) => [
        StreamId.unsafeMake(category, "1"),
        StreamId.unsafeMake(category, "😀𝔘𠜎"),
        StreamId.unsafeMake(category, "e\u0301\u0302n\u0303"),
        StreamId.unsafeMake(category, "ß-ÿ-\u00a0-\u2028"),
        StreamId.unsafeMake(category, "€".repeat((1024 - category.length - 1) / 3 | 0) + "x".repeat((1024 - category.length - 1) % 3))
      ]

      const writeTo = (streams: ReadonlyArray<StreamId.StreamId>, plan: ReadonlyArray<number>) =>
        Effect.gen(function*() {
          const written: Array<bigint> = []
          for (const s of plan) {
            const { globalPositions } = yield* EventStore.append(streams[s]!, [newEvent("Counted")], { expectedVersion: "Any" })
            written.push(globalPositions[0]!)
          }
          yield* readLogUntil(1, { fromPosition: written.at(-1)! })
          return written
        })

      it.effect("every event of the log is in exactly one partition, the one partitionOf names, in global order", () =>
        Effect.gen(function*() {
          const category = `part${EventId.unsafeGenerate().replaceAll("-", "").slice(0, 12)}`
          const streams = trickyIds(category)
          expect(Buffer.byteLength(streams.at(-1)!)).toBe(1024)
          const written = yield* writeTo(streams, [0, 1, 2, 3, 4, 4, 3, 2, 1, 0, 2, 4, 1, 3])
          const whole = yield* readLog({ fromPosition: written[0]! })
          for (const of of [1, 2, 3, 7]) {
            const members = yield* Effect.forEach(Array.from({ length: of }, (_, member) => member), (member) =>
              readLog({ fromPosition: written[0]!, chunkSize: 2, filter: { partition: { member, of } } }))
            members.forEach((events, member) => {
              expectStrictlyIncreasing(events.map((e) => e.globalPosition))
              for (const e of events) expect(StreamId.partitionOf(e.streamId, of)).toBe(member)
            })
            // together, the members read the whole log (ours and whatever else was appended meanwhile below its end), once
            const all = members.flat().filter((e) => e.globalPosition <= written.at(-1)!).map((e) => e.globalPosition)
            expect([...all].sort((a, b) => (a < b ? -1 : 1))).toEqual(
              whole.filter((e) => e.globalPosition <= written.at(-1)!).map((e) => e.globalPosition)
            )
            const ours = members.map((events) => events.filter((e) => StreamId.category(e.streamId) === category).map((e) => e.globalPosition))
            expect(ours.flat().length).toBe(written.length)
          }
          // with a category too, both apply
          const member = StreamId.partitionOf(streams[1]!, 2)
          const both = yield* readLog({ fromPosition: written[0]!, filter: { categories: [category], partition: { member, of: 2 } } })
          expect(both.map((e) => e.globalPosition)).toEqual(
            written.filter((_, i) => StreamId.partitionOf(streams[[0, 1, 2, 3, 4, 4, 3, 2, 1, 0, 2, 4, 1, 3][i]!]!, 2) === member)
          )
          for (const partition of [{ member: 2, of: 2 }, { member: -1, of: 2 }, { member: 0.5, of: 2 }, { member: 0, of: 0 }, { member: 0 }, "0/2"]) {
            expect(yield* flip(readLog({ filter: { partition: partition as never } }))).toEqual(invalidArgument("readAll", "filter"))
            expect(yield* flip(EventStore.EventStore.pipe(Effect.flatMap((store) => store.readLogPage({ filter: { partition: partition as never } })))))
              .toEqual(invalidArgument("readLogPage", "filter"))
          }
          expect((yield* flip(EventStore.subscribe({ filter: { partition: { member: 3, of: 3 } } }).pipe(Stream.runDrain)))._tag).toBe("InvalidArgument")
        }))

      it.effect("readAll by partition over random stream ids and counts returns exactly that partition's slice of the log (property)", () =>
        Effect.gen(function*() {
          const category = `prop${EventId.unsafeGenerate().replaceAll("-", "").slice(0, 10)}`
          const ids = fc.sample(fc.uniqueArray(fc.string({ unit: "binary", minLength: 1, maxLength: 12 }), { minLength: 8, maxLength: 12 }), 1)[0]!
          const streams = ids
            .map((id) => StreamId.make(category, id))
            .flatMap((made) => (Either.isRight(made) ? [made.right] : []))
          const plan = fc.sample(fc.array(fc.nat(streams.length - 1), { minLength: 20, maxLength: 40 }), 1)[0]!
          const written = yield* writeTo(streams, plan)
          const context = yield* Effect.context<EventStore.EventStore>()
          const ours = yield* readLog({ fromPosition: written[0]!, filter: { categories: [category] } })
          expect(ours.map((e) => e.globalPosition)).toEqual(written)
          yield* Effect.promise(() =>
            fc.assert(
              fc.asyncProperty(
                fc.integer({ min: 1, max: 9 }).chain((of) => fc.tuple(fc.constant(of), fc.nat(of - 1))),
                fc.nat(written.length),
                fc.nat(written.length + 2),
                fc.integer({ min: 1, max: 7 }),
                async ([of, member], at, limit, chunkSize) => {
                  const fromPosition = at === 0 ? written[0]! - 1n : written[at - 1]!
                  const expected = ours.filter((e) => e.globalPosition >= fromPosition && StreamId.partitionOf(e.streamId, of) === member)
                  const got = await Effect.runPromise(
                    readLog({ fromPosition, limit, chunkSize, filter: { categories: [category], partition: { member, of } } }).pipe(Effect.provide(context))
                  )
                  expect(got.map((e) => e.globalPosition)).toEqual(expected.slice(0, limit).map((e) => e.globalPosition))
                  const page = await Effect.runPromise(
                    EventStore.EventStore.pipe(
                      Effect.flatMap((store) => store.readLogPage({ after: fromPosition - 1n, limit: chunkSize, filter: { categories: [category], partition: { member, of } } })),
                      Effect.provide(context)
                    )
                  )
                  expect(page.events.map((e) => e.globalPosition)).toEqual(expected.slice(0, chunkSize).map((e) => e.globalPosition))
                  // how far the page looked: every kept event up to it is in the page, and the page is not behind its own events
                  expect(page.through >= (page.events.at(-1)?.globalPosition ?? fromPosition - 1n)).toBe(true)
                  expect(expected.filter((e) => e.globalPosition <= page.through).length).toBe(page.events.length)
                  if (page.events.length < chunkSize) expect(page.through >= written.at(-1)!).toBe(true)
                }
              ),
              { numRuns: 40 }
            )
          )
        }))

      it.effect("a page of a partition with none of the new events still moves through past them, and stays put when nothing is new", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const category = `idle${EventId.unsafeGenerate().replaceAll("-", "").slice(0, 12)}`
          const stream = StreamId.unsafeMake(category, "1")
          const other = 1 - StreamId.partitionOf(stream, 2)
          const written = yield* writeTo([stream], [0, 0, 0])
          const filter = { categories: [category], partition: { member: other, of: 2 } }
          const page = yield* store.readLogPage({ after: written[0]! - 1n, limit: 10, filter })
          expect(page.events).toEqual([])
          expect(page.through >= written.at(-1)!).toBe(true)
          const again = yield* store.readLogPage({ after: page.through, limit: 10, filter })
          expect(again.events).toEqual([])
          expect(again.through >= page.through).toBe(true)
          // its own partition: the events, and through at the last of them when the page is full
          const own = yield* store.readLogPage({ after: written[0]! - 1n, limit: 2, filter: { ...filter, partition: { member: 1 - other, of: 2 } } })
          expect(own.events.map((e) => e.globalPosition)).toEqual(written.slice(0, 2))
          expect(own.through).toBe(written[1])
        }))
    })

    describe("reads are bounded to the moment they start", () => {
      for (const direction of ["forwards", "backwards"] as const) {
        it.effect(`given a stream of 3 events, when 2 are appended after a ${direction} read pulled its first event, then the read returns the 3`, () =>
          Effect.gen(function*() {
            const streamId = freshStream("bounded")
            yield* appendN(streamId, 3, "NoStream")
            const more = appendN(streamId, 2, 3)
            const read = yield* pullAround(EventStore.read(streamId, { chunkSize: 1, direction }), more)
            expect(read.map((e) => e.streamVersion)).toEqual(direction === "forwards" ? [1, 2, 3] : [3, 2, 1])
            const payloads = yield* pullAround(EventStore.readPayloads(streamId, { chunkSize: 1, direction }), appendN(streamId, 1, 5))
            expect(payloads.map((e) => e.streamVersion)).toEqual(direction === "forwards" ? [1, 2, 3, 4, 5] : [5, 4, 3, 2, 1])
          }))
      }

      it.effect(
        "given 3 events in the log, when 2 are appended after readAll pulled its first event, then readAll returns the 3",
        () =>
          Effect.gen(function*() {
            const streamId = freshStream("bounded")
            const { globalPositions } = yield* appendN(streamId, 3, "NoStream")
            const fromPosition = globalPositions[0]!
            yield* readLogUntil(3, { fromPosition })
            // the two new events are readable (PostgreSQL: past the horizon) before the read goes on
            const more = Effect.zipRight(appendN(streamId, 2, 3), readLogUntil(5, { fromPosition }))
            const read = yield* pullAround(EventStore.readAll({ fromPosition, chunkSize: 1 }), more)
            expect(read.map((e) => e.globalPosition)).toEqual(globalPositions)
          })
      )
    })

    describe("bad input loses nothing", () => {
      const maxBytes = options.maxEventBytes ?? 1024 * 1024

      it.effect("a large event (half the limit) round trips intact", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          const blob = "é✓".repeat(Math.floor(maxBytes / 2 / 5))
          yield* EventStore.append(streamId, [newEvent("Big", { blob })], { expectedVersion: "NoStream" })
          const [stored] = yield* readStream(streamId)
          expect((stored!.data as { blob: string }).blob).toBe(blob)
        }))

      it.effect("an event over the size limit fails its batch with EventTooLarge", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          yield* appendN(streamId, 1, "NoStream")
          const big = newEvent("Huge", { blob: "x".repeat(maxBytes + 1) })
          const error = yield* flip(EventStore.append(streamId, [newEvent("Small"), big], { expectedVersion: 1 }))
          expect(error).toMatchObject({ _tag: "EventTooLarge", eventId: big.eventId, limit: maxBytes })
          expect(yield* EventStore.streamVersion(streamId)).toBe(1)
        }))

      it.effect("a payload that is not JSON fails with InvalidEvent and writes nothing", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          const cyclic: Record<string, unknown> = {}
          cyclic.self = cyclic
          for (const data of [{ n: 1n }, cyclic, undefined]) {
            const error = yield* flip(
              EventStore.append(streamId, [newEvent("Ok"), { ...newEvent("Bad"), data }], { expectedVersion: "Any" })
            )
            expect(error).toMatchObject({ _tag: "InvalidEvent", streamId, index: 1 })
          }
          expect(yield* EventStore.streamVersion(streamId)).toBe(0)
        }))

      it.effect("an empty type, a bad schema version, an id that is not a UUID or repeated in the batch is InvalidEvent", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          const dup = newEvent("A")
          const batches: ReadonlyArray<ReadonlyArray<NewEvent>> = [
            [newEvent("")],
            [newEvent("A", {}, { schemaVersion: 0 })],
            [dup, { ...dup, type: "B" }],
            [{ ...newEvent("A"), eventId: "not-a-uuid" as EventId.EventId }]
          ]
          for (const batch of batches) {
            const error = yield* flip(EventStore.append(streamId, batch, { expectedVersion: "Any" }))
            expect(error._tag).toBe("InvalidEvent")
          }
          expect(yield* EventStore.streamVersion(streamId)).toBe(0)
        }))

      it.effect("given text with U+0000 or a lone surrogate in data, metadata, tags or type, when appending, then InvalidEvent names the field and nothing is stored", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          yield* appendN(streamId, 1, "NoStream")
          const cases: ReadonlyArray<readonly [NewEvent, string]> = [
            [newEvent("A", { name: "a\u0000b" }), "data.name"],
            [newEvent("A", { items: [{ ok: "x" }, { note: "\u0000" }] }), "data.items[1].note"],
            [newEvent("A", { ["k\u0000"]: 1 }), "data[\"k\\u0000\"]"],
            [newEvent("A", "\u0000"), "data"],
            [newEvent("A", { name: "half \ud83d pair" }), "data.name"],
            [newEvent("A", { name: "\ude80 low first" }), "data.name"],
            [newEvent("A", {}, { metadata: { tenant: "t\u0000" } }), "metadata.tenant"],
            [newEvent("A", {}, { tags: ["ok", "bad\u0000"] }), "tags[1]"],
            [newEvent("A", {}, { tags: ["\udc00"] }), "tags[0]"],
            [newEvent("A\u0000"), "type"]
          ]
          for (const [event, path] of cases) {
            const error = yield* flip(EventStore.append(streamId, [newEvent("Fine"), event], { expectedVersion: 1 }))
            expect(error).toMatchObject({ _tag: "InvalidEvent", streamId, index: 1, path })
            expect(error.message).toContain(path)
          }
          const batchMetadata = yield* flip(
            EventStore.append(streamId, [newEvent("Fine")], { expectedVersion: 1, metadata: { correlationId: "\u0000" } })
          )
          expect(batchMetadata).toMatchObject({ _tag: "InvalidEvent", index: 0, path: "metadata.correlationId" })
          expect(yield* EventStore.streamVersion(streamId)).toBe(1)
        }))

      it.effect("given NaN or ±Infinity anywhere in data or metadata (JSON would store null), when appending, then InvalidEvent names the field and nothing is stored; null itself is fine", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          yield* appendN(streamId, 1, "NoStream")
          const cases: ReadonlyArray<readonly [NewEvent, string]> = [
            [newEvent("A", { amount: Number.NaN }), "data.amount"],
            [newEvent("A", { rates: [1, null, Number.POSITIVE_INFINITY] }), "data.rates[2]"],
            [newEvent("A", Number.NEGATIVE_INFINITY), "data"],
            [newEvent("A", { "a b": { c: Number.NaN } }), "data[\"a b\"].c"],
            [newEvent("A", {}, { metadata: { score: Number.NaN } }), "metadata.score"]
          ]
          for (const [event, path] of cases) {
            const error = yield* flip(EventStore.append(streamId, [newEvent("Fine"), event], { expectedVersion: 1 }))
            expect(error).toMatchObject({ _tag: "InvalidEvent", streamId, index: 1, path })
            expect(error.message).toContain("JSON cannot hold")
          }
          expect(yield* EventStore.streamVersion(streamId)).toBe(1)
          yield* EventStore.append(streamId, [newEvent("A", { nothing: null, list: [null] })], { expectedVersion: 1 })
          const [, stored] = yield* readStream(streamId)
          expect(stored!.data).toEqual({ nothing: null, list: [null] })
        }))

      it.effect("given other control characters and whole surrogate pairs, when appending, then they round trip", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          const data = { text: "tab\t line\n bell\u0007 esc\u001b del\u007f rocket\ud83d\ude80 \\u0000 literal" }
          yield* EventStore.append(streamId, [newEvent("A", data, { metadata: { note: "\u0001" }, tags: ["t\u0001"] })], { expectedVersion: "NoStream" })
          const [stored] = yield* readStream(streamId)
          expect(stored!.data).toEqual(data)
          expect(stored!.metadata).toEqual({ note: "\u0001" })
          expect(stored!.tags).toEqual(["t\u0001"])
        }))

      it.effect("given a stream id that is empty, holds NUL, control characters or a lone surrogate, or is over StreamId.maxBytes of UTF-8 (the brand bypassed), then every operation fails with InvalidStreamId", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const suffix = EventId.unsafeGenerate()
          const oneByteTooLong = `long-${"ü".repeat(491)}xx${suffix}`
          expect(Buffer.byteLength(oneByteTooLong)).toBe(StreamId.maxBytes + 1)
          for (const raw of ["", `nul\u0000-${suffix}`, `bell\u0007-${suffix}`, `tab\t-${suffix}`, `line\n-${suffix}`, `half\ud83d-${suffix}`, oneByteTooLong]) {
            const streamId = raw as StreamId.StreamId
            const invalid = expect.objectContaining({ _tag: "InvalidStreamId", value: raw })
            expect(yield* flip(appendN(streamId, 1, "Any"))).toEqual(invalid)
            expect(yield* flip(readStream(streamId))).toEqual(invalid)
            expect(yield* flip(Stream.runDrain(store.readPayloads(streamId)))).toEqual(invalid)
            expect(yield* flip(store.readPage(streamId, { fromVersion: 1, toVersion: 10, limit: 10 }))).toEqual(invalid)
            expect(yield* flip(store.streamVersion(streamId))).toEqual(invalid)
            expect(yield* flip(store.isDeleted(streamId))).toEqual(invalid)
            expect(yield* flip(store.deleteStream(streamId))).toEqual(invalid)
          }
          expect(Either.isLeft(StreamId.parse(`nul\u0000-${suffix}`))).toBe(true)
        }))

      it.effect("unicode, path-like and very long stream ids are ordinary streams; case matters", () =>
        Effect.gen(function*() {
          const suffix = EventId.unsafeGenerate()
          const ids = [
            `café-☕/../é 🚀 ${suffix}`,
            `Case-${suffix}`,
            `case-${suffix}`,
            `..-${suffix}`,
            `long-${"ü".repeat(491)}x${suffix}`,
            `emoji-${"🚀".repeat(245)}${suffix}`,
            `spaces and symbols !"#$%&'()*+,;<=>?@[]^_\`{|}~-${suffix}`
          ].map(StreamId.unsafeParse)
          expect(Buffer.byteLength(ids[4]!)).toBe(StreamId.maxBytes)
          expect(Buffer.byteLength(ids[5]!)).toBeLessThanOrEqual(StreamId.maxBytes)
          for (const [i, streamId] of ids.entries()) {
            yield* appendN(streamId, i + 1, "NoStream")
          }
          for (const [i, streamId] of ids.entries()) {
            const stored = yield* readStream(streamId)
            expect(stored.length).toBe(i + 1)
            expect(stored.every((e) => e.streamId === streamId)).toBe(true)
          }
        }))
    })

    describe("concurrency", () => {
      it.effect("writers racing at the same expected version: exactly one wins", () =>
        Effect.gen(function*() {
          const streamId = freshStream()
          yield* appendN(streamId, 1, "NoStream")
          const writers = 12
          const results = yield* Effect.all(
            Array.from({ length: writers }, () => Effect.either(appendN(streamId, 2, 1))),
            { concurrency: "unbounded" }
          )
          const winners = results.filter(Either.isRight)
          expect(winners.length).toBe(1)
          for (const loser of results.filter(Either.isLeft)) {
            expect(loser.left).toEqual(conflictOf(streamId, 1, 3))
          }
          expect(yield* EventStore.streamVersion(streamId)).toBe(3)
        }))

      it.effect.prop(
        "many writers retrying on conflict: no event lost, none duplicated, versions contiguous",
        {
          batches: fc.array(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }), {
            minLength: 2,
            maxLength: 8
          }),
          pauses: fc.array(fc.boolean(), { minLength: 1, maxLength: 16 })
        },
        ({ batches, pauses }) =>
          Effect.gen(function*() {
            const streamId = freshStream("race")
            let tick = 0
            const maybeYield = Effect.suspend(() => (pauses[tick++ % pauses.length] ? Effect.yieldNow() : Effect.void))
            const written: Array<ReadonlyArray<string>> = []
            const writer = (sizes: ReadonlyArray<number>) =>
              Effect.forEach(sizes, (size) => {
                const batch = events(size)
                const attempt = Effect.gen(function*() {
                  const version = yield* EventStore.streamVersion(streamId)
                  yield* maybeYield
                  return yield* EventStore.append(streamId, batch, { expectedVersion: version })
                })
                return attempt.pipe(
                  Effect.retry({ while: (e) => e._tag === "ConcurrencyConflict" }),
                  Effect.tap(() => written.push(batch.map((e) => e.eventId!)))
                )
              }, { discard: true })
            yield* Effect.all(batches.map(writer), { concurrency: "unbounded" })

            const stored = yield* readStream(streamId, { chunkSize: 3 })
            const total = batches.flat().reduce((a, b) => a + b, 0)
            expect(stored.map((e) => e.streamVersion)).toEqual(Array.from({ length: total }, (_, i) => i + 1))
            expect(new Set(stored.map((e) => e.eventId)).size).toBe(total)
            const ids = stored.map((e) => e.eventId as string)
            expect([...ids].sort()).toEqual(written.flat().sort())
            for (const batch of written) {
              const start = ids.indexOf(batch[0]!)
              expect(ids.slice(start, start + batch.length)).toEqual(batch)
            }
            expectStrictlyIncreasing(stored.map((e) => e.globalPosition))
          }),
        { fastCheck: { numRuns: 25 } }
      )
    })
  })
