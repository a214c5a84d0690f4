/**
 * The Dynamic Consistency Boundary contract: tags, queries and conditional
 * appends, over every store. Each test writes events under tags of its own.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Duration, Effect, Either, Layer, Runtime, Stream } from "effect"
import * as fc from "fast-check"
import type { Event } from "chronicle"
import { EventId, EventStore, Query, StreamId } from "chronicle"
import { pause } from "../support/time.js"
import { expectDuplicateOf, freshStream, pullAround } from "./EventStoreContract.js"

let counter = 0
/** A tag prefix no other test (or run against a kept database) uses. */
const freshTag = (label: string) => `${label}-${EventId.unsafeGenerate().slice(-12)}-${++counter}`

const tagged = (type: string, tags: ReadonlyArray<string>, data: unknown = {}): Event.NewEvent => ({
  eventId: EventId.unsafeGenerate(),
  type,
  data,
  tags
})

const collect = (query: Query.Query, options?: EventStore.QueryOptions) =>
  EventStore.query(query, options).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

/**
 * Fails (rather than hangs) when `effect` takes longer than `bound`: a store
 * whose condition ignores `after` refuses every append a decider retries, so a
 * retry loop over it would spin forever.
 */
const within = (bound: Duration.DurationInput, what: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.timeoutFail(effect, { duration: bound, onTimeout: () => new Error(`${what}: no outcome within ${Duration.format(bound)}`) })

/**
 * Waits until global readers (readAll, query) see the log up to `position`: a
 * store may show an event to them only once every transaction that began
 * before it has ended (PostgreSQL, also other sessions' transactions).
 */
const visibleUpTo = (position: bigint) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 1500; attempt++) {
      const seen = yield* EventStore.readAll({ fromPosition: position, limit: 1 }).pipe(Stream.runCollect)
      if (Chunk.isNonEmpty(seen)) return
      yield* pause(20)
    }
    return yield* Effect.die(new Error(`global readers never saw position ${position}`))
  })

/** Reads a query, then appends with the condition that nothing matching it came since. */
const decideAndAppend = (streamId: StreamId.StreamId, query: Query.Query, events: ReadonlyArray<Event.NewEvent>) =>
  Effect.gen(function*() {
    const seen = yield* collect(query)
    const after = seen.at(-1)?.globalPosition ?? 0n
    return yield* EventStore.append(streamId, events, { expectedVersion: "Any", condition: { failIfEventsMatch: query, after } })
  })

export const dcbContract = <E>(
  name: string,
  storeLayer: Layer.Layer<EventStore.EventStore, E>
) =>
  layer(storeLayer, { timeout: "60 seconds", excludeTestServices: true })(`DCB contract: ${name}`, (it) => {
    describe("tags", () => {
      it.effect("are stored with the envelope and come back from every read; untagged events have none", () =>
        Effect.gen(function*() {
          const course = freshTag("course")
          const streamId = freshStream("dcb")
          const { globalPositions } = yield* EventStore.append(streamId, [
            tagged("CourseDefined", [course, "kind:course"]),
            { eventId: EventId.unsafeGenerate(), type: "Noted", data: {} },
            tagged("CourseDefined", [course, course])
          ], { expectedVersion: "NoStream" })
          const read = yield* EventStore.read(streamId).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
          expect(read.map((e) => e.tags)).toEqual([[course, "kind:course"], [], [course]])
          yield* visibleUpTo(globalPositions[2]!)
          const all = yield* EventStore.readAll({ fromPosition: globalPositions[0]! }).pipe(Stream.take(3), Stream.runCollect)
          expect(Chunk.toReadonlyArray(all).map((e) => e.tags)).toEqual([[course, "kind:course"], [], [course]])
        }))

      it.effect("an empty or non-string tag is an InvalidEvent and nothing is stored", () =>
        Effect.gen(function*() {
          const streamId = freshStream("dcb")
          for (const tags of [[""], [42 as never as string], ["x".repeat(257)]]) {
            const error = yield* Effect.flip(EventStore.append(streamId, [tagged("A", ["ok"]), tagged("A", tags)], { expectedVersion: "Any" }))
            expect(error._tag).toBe("InvalidEvent")
            if (error._tag === "InvalidEvent") expect(error.index).toBe(1)
          }
          expect(yield* EventStore.streamVersion(streamId)).toBe(0)
        }))
    })

    describe("query", () => {
      it.effect("returns the matching events of every stream in global order, after a position, in chunks", () =>
        Effect.gen(function*() {
          const course = freshTag("course")
          const student = freshTag("student")
          const a = yield* EventStore.append(freshStream("dcb"), [
            tagged("CourseDefined", [course]),
            tagged("StudentSubscribed", [course, student]),
            tagged("StudentSubscribed", [freshTag("course"), student])
          ], { expectedVersion: "NoStream" })
          const b = yield* EventStore.append(freshStream("dcb"), [
            tagged("CourseRenamed", [course]),
            tagged("StudentSubscribed", [course, freshTag("student")])
          ], { expectedVersion: "NoStream" })
          yield* visibleUpTo(b.globalPositions[1]!)
          const byCourse = yield* collect(Query.tagged(course), { chunkSize: 2 })
          expect(byCourse.map((e) => e.globalPosition)).toEqual([a.globalPositions[0], a.globalPositions[1], b.globalPositions[0], b.globalPositions[1]])
          const subscriptions = yield* collect(Query.make(Query.item(["StudentSubscribed"], [course])))
          expect(subscriptions.map((e) => e.globalPosition)).toEqual([a.globalPositions[1], b.globalPositions[1]])
          const either = yield* collect(Query.or(Query.make(Query.item(["CourseDefined"], [course])), Query.tagged(student)))
          expect(either.map((e) => e.globalPosition)).toEqual(a.globalPositions)
          const after = yield* collect(Query.tagged(course), { after: a.globalPositions[1]!, limit: 1 })
          expect(after.map((e) => e.globalPosition)).toEqual([b.globalPositions[0]])
          expect(yield* collect(Query.tagged(freshTag("nobody")))).toEqual([])
        }))

      const invalidArgument = (operation: string, argument: string) =>
        expect.objectContaining({ _tag: "InvalidArgument", operation, argument })

      it.effect("given a malformed or empty query, or an item with empty types and tags, when querying, then it fails with InvalidArgument", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const bad: ReadonlyArray<Query.Query> = [
            { items: [{ tags: [""] }] },
            {} as Query.Query,
            { items: [] },
            { items: [{ types: [], tags: [] }] },
            { items: [{ types: [] }] },
            { items: [Query.item(["A"]), { tags: [] }] }
          ]
          for (const query of bad) {
            expect(yield* Effect.flip(collect(query))).toEqual(invalidArgument("query", "query"))
            expect(yield* Effect.flip(store.queryForDecision(query))).toEqual(invalidArgument("queryForDecision", "query"))
          }
          expect((yield* Effect.flip(collect({ items: [] }))).message).toMatch(/no items/)
          expect((yield* Effect.flip(collect({ items: [{ types: [], tags: [] }] }))).message).toMatch(/every event/)
        }))

      it.effect("given query options out of bounds, when querying, then it fails with InvalidArgument naming the option", () =>
        Effect.gen(function*() {
          const query = Query.tagged(freshTag("any"))
          expect(yield* Effect.flip(collect(query, { after: -1n }))).toEqual(invalidArgument("query", "after"))
          expect(yield* Effect.flip(collect(query, { limit: -1 }))).toEqual(invalidArgument("query", "limit"))
          expect(yield* Effect.flip(collect(query, { limit: 2.5 }))).toEqual(invalidArgument("query", "limit"))
          expect(yield* Effect.flip(collect(query, { chunkSize: 0 }))).toEqual(invalidArgument("query", "chunkSize"))
        }))
    })

    describe("query matches the rules (property)", () => {
      it.effect("query returns exactly the events of the log that Query.matches, after any position", () =>
        Effect.gen(function*() {
          const runtime = yield* Effect.runtime<EventStore.EventStore>()
          yield* Effect.promise(() =>
            fc.assert(
              fc.asyncProperty(
                fc.array(fc.record({ type: fc.constantFrom("A", "B", "C"), tags: fc.uniqueArray(fc.constantFrom("t1", "t2", "t3", "t4"), { maxLength: 3 }) }), {
                  minLength: 1,
                  maxLength: 25
                }),
                fc.array(
                  fc.record({
                    types: fc.option(fc.uniqueArray(fc.constantFrom("A", "B", "C"), { maxLength: 2 }), { nil: undefined }),
                    tags: fc.option(fc.uniqueArray(fc.constantFrom("t1", "t2", "t3", "t4"), { maxLength: 2 }), { nil: undefined })
                  }),
                  { minLength: 1, maxLength: 3 }
                ),
                fc.nat({ max: 30 }),
                (specs, items, skip) =>
                  Runtime.runPromise(runtime)(Effect.gen(function*() {
                    const prefix = freshTag("p")
                    const scoped = (tag: string) => `${prefix}:${tag}`
                    // every event also carries the run's own tag, which narrows tagless items to this run
                    const written = specs.map((spec) => tagged(spec.type, [...spec.tags.map(scoped), scoped("run")]))
                    const result = yield* EventStore.append(freshStream("prop"), written, { expectedVersion: "Any" })
                    const query = Query.make(...items.map((item) => ({
                      ...(item.types === undefined ? {} : { types: item.types }),
                      tags: item.tags === undefined || item.tags.length === 0 ? [scoped("run")] : item.tags.map(scoped)
                    })))
                    const after = skip >= written.length ? result.globalPositions[0]! - 1n : result.globalPositions[skip]!
                    const expected = written
                      .map((event, i) => ({ type: event.type, tags: event.tags!, position: result.globalPositions[i]! }))
                      .filter((event) => event.position > after && Query.matches(query, event))
                      .map((event) => event.position)
                    // PostgreSQL shows fresh events once older transactions (of other test files) end:
                    // wait for them, generously (a loaded machine), rather than assert on a short delay
                    let got: ReadonlyArray<Event.StoredEvent> = []
                    for (let attempt = 0; attempt < 1000; attempt++) {
                      got = yield* collect(query, { after, chunkSize: 2 })
                      if (got.length >= expected.length) break
                      yield* Effect.sleep("20 millis")
                    }
                    expect(got.map((e) => e.globalPosition)).toEqual(expected)
                  }))
              ),
              { numRuns: 25 }
            )
          )
        }))
    })

    describe("a query is bounded to the moment it starts", () => {
      it.effect(
        "given 3 matching events, when 2 more are appended after the query pulled its first event, then the query returns the 3",
        () =>
          Effect.gen(function*() {
            const course = freshTag("course")
            const streamId = freshStream("dcb")
            const { globalPositions } = yield* EventStore.append(streamId, [1, 2, 3].map(() => tagged("A", [course])), { expectedVersion: "NoStream" })
            const after = globalPositions[0]! - 1n
            const readable = (n: number) =>
              Effect.gen(function*() {
                for (let attempt = 0; attempt < 500 && (yield* collect(Query.tagged(course), { after })).length < n; attempt++) {
                  yield* Effect.sleep("20 millis")
                }
              })
            yield* readable(3)
            // the two new events are readable (PostgreSQL: past the horizon) before the query goes on
            const more = Effect.zipRight(EventStore.append(streamId, [tagged("A", [course]), tagged("A", [course])], { expectedVersion: 3 }), readable(5))
            const byTag = yield* pullAround(EventStore.query(Query.tagged(course), { after, chunkSize: 1 }), more)
            expect(byTag.map((e) => e.globalPosition)).toEqual(globalPositions)
            const everything = yield* pullAround(
              EventStore.query(Query.all, { after, chunkSize: 1 }),
              Effect.zipRight(EventStore.append(streamId, [tagged("A", [course])], { expectedVersion: 5 }), readable(6))
            )
            expect(everything.length).toBe(5)
          })
      )
    })

    describe("conditional append", () => {
      it.effect("succeeds when nothing matched since the read, and fails with the first conflict when something did", () =>
        Effect.gen(function*() {
          const course = freshTag("course")
          const query = Query.make(Query.item(["StudentSubscribed"], [course]))
          const first = yield* decideAndAppend(freshStream("dcb"), query, [tagged("StudentSubscribed", [course])])
          const stale = first.globalPositions[0]! - 1n
          const streamId = freshStream("dcb")
          const error = yield* Effect.flip(EventStore.append(streamId, [tagged("StudentSubscribed", [course])], {
            expectedVersion: "Any",
            condition: { failIfEventsMatch: query, after: stale }
          }))
          expect(error._tag).toBe("AppendConditionFailed")
          if (error._tag !== "AppendConditionFailed") return
          expect(error.position).toBe(first.globalPositions[0])
          expect(error.after).toBe(stale)
          expect(error.query).toEqual(query)
          expect(yield* EventStore.streamVersion(streamId)).toBe(0)
          // with the position of the last event read, it goes through
          yield* EventStore.append(streamId, [tagged("StudentSubscribed", [course])], {
            expectedVersion: "Any",
            condition: { failIfEventsMatch: query, after: first.globalPositions[0]! }
          })
          expect(yield* EventStore.streamVersion(streamId)).toBe(1)
        }))

      it.effect("with after at or past the last matching event, the append goes through: older matches do not count", () =>
        Effect.gen(function*() {
          const course = freshTag("course")
          const query = Query.make(Query.item(["StudentSubscribed"], [course]))
          const old = yield* EventStore.append(freshStream("dcb"), [tagged("StudentSubscribed", [course])], { expectedVersion: "Any" })
          const matched = old.globalPositions[0]!
          const later = yield* EventStore.append(freshStream("dcb"), [tagged("Noise", [freshTag("other")])], { expectedVersion: "Any" })
          const streamId = freshStream("dcb")
          const condition = (after: bigint) => ({ expectedVersion: "Any" as const, condition: { failIfEventsMatch: query, after } })
          // after exactly the matching event: it is not "after", so it does not count
          const atMatch = yield* EventStore.append(streamId, [tagged("StudentSubscribed", [course])], condition(matched))
          // after a position before the match just written: that one counts
          const refused = yield* Effect.flip(EventStore.append(streamId, [tagged("StudentSubscribed", [course])], condition(later.globalPositions[0]!)))
          expect(refused._tag).toBe("AppendConditionFailed")
          if (refused._tag === "AppendConditionFailed") expect(refused.position).toBe(atMatch.globalPositions[0])
          // after the newest match: through again
          const pastAll = yield* EventStore.append(streamId, [tagged("StudentSubscribed", [course])], condition(atMatch.globalPositions[0]!))
          expect(pastAll.streamVersion).toBe(2)
        }).pipe(within("20 seconds", "appends with after at or past the last match")))

      it.effect("events of other tags or other types, and the batch's own events, do not trip the condition", () =>
        Effect.gen(function*() {
          const course = freshTag("course")
          const head = (yield* EventStore.append(freshStream("dcb"), [tagged("Noise", [])], { expectedVersion: "Any" })).globalPositions[0]!
          yield* EventStore.append(freshStream("dcb"), [
            tagged("StudentSubscribed", [freshTag("course")]),
            tagged("CourseRenamed", [course])
          ], { expectedVersion: "Any" })
          const result = yield* EventStore.append(freshStream("dcb"), [tagged("StudentSubscribed", [course]), tagged("StudentSubscribed", [course])], {
            expectedVersion: "Any",
            condition: { failIfEventsMatch: Query.make(Query.item(["StudentSubscribed"], [course])), after: head }
          })
          expect(result.globalPositions.length).toBe(2)
        }))

      it.effect("an item with types only, or with neither, matches across tags", () =>
        Effect.gen(function*() {
          const type = `Rare${freshTag("t").replace(/-/g, "")}`
          const written = yield* EventStore.append(freshStream("dcb"), [tagged(type, [freshTag("x")])], { expectedVersion: "Any" })
          const before = written.globalPositions[0]! - 1n
          const byType = yield* Effect.flip(EventStore.append(freshStream("dcb"), [tagged("A", [])], {
            expectedVersion: "Any",
            condition: { failIfEventsMatch: Query.make({ types: [type] }), after: before }
          }))
          expect(byType._tag).toBe("AppendConditionFailed")
          const everything = yield* Effect.flip(EventStore.append(freshStream("dcb"), [tagged("A", [])], {
            expectedVersion: "Any",
            condition: { failIfEventsMatch: Query.all, after: before }
          }))
          expect(everything._tag).toBe("AppendConditionFailed")
        }))

      it.effect("given a condition whose query has no items or an item with empty lists, when appending, then it fails with InvalidArgument and writes nothing", () =>
        Effect.gen(function*() {
          const streamId = freshStream("dcb")
          for (const failIfEventsMatch of [{ items: [] }, { items: [{ types: [], tags: [] }] }, { items: [{ tags: [""] }] }]) {
            const error = yield* Effect.flip(EventStore.append(streamId, [tagged("A", [])], {
              expectedVersion: "Any",
              condition: { failIfEventsMatch, after: 0n }
            }))
            expect(error).toEqual(expect.objectContaining({ _tag: "InvalidArgument", operation: "append", argument: "condition.failIfEventsMatch" }))
          }
          const negative = yield* Effect.flip(EventStore.append(streamId, [tagged("A", [])], {
            expectedVersion: "Any",
            condition: { failIfEventsMatch: Query.all, after: -1n }
          }))
          expect(negative).toEqual(expect.objectContaining({ _tag: "InvalidArgument", argument: "condition.after" }))
          expect(yield* EventStore.streamVersion(streamId)).toBe(0)
        }))

      it.effect("without after, any matching event in the log fails it (a uniqueness check)", () =>
        Effect.gen(function*() {
          const username = freshTag("username")
          const claim = (streamId: StreamId.StreamId) =>
            EventStore.append(streamId, [tagged("UsernameClaimed", [username])], {
              expectedVersion: "NoStream",
              condition: { failIfEventsMatch: Query.tagged(username) }
            })
          yield* claim(freshStream("user"))
          const second = yield* Effect.flip(claim(freshStream("user")))
          expect(second._tag).toBe("AppendConditionFailed")
        }))

      it.effect("the condition and the expected version are both enforced", () =>
        Effect.gen(function*() {
          const course = freshTag("course")
          const streamId = freshStream("dcb")
          yield* EventStore.append(streamId, [tagged("A", [course])], { expectedVersion: "NoStream" })
          const conflict = yield* Effect.flip(EventStore.append(streamId, [tagged("A", [course])], {
            expectedVersion: 5,
            condition: { failIfEventsMatch: Query.tagged(freshTag("none")), after: 0n }
          }))
          expect(conflict._tag).toBe("ConcurrencyConflict")
        }))

      it.effect("a re-sent batch (same event ids) succeeds again without writing, though it matches its own condition", () =>
        Effect.gen(function*() {
          const course = freshTag("course")
          const streamId = freshStream("dcb")
          const batch = [tagged("StudentSubscribed", [course])]
          const options = { expectedVersion: "Any" as const, condition: { failIfEventsMatch: Query.tagged(course), after: 0n } }
          const first = yield* EventStore.append(streamId, batch, options)
          const again = yield* EventStore.append(streamId, batch, options)
          expect(again.globalPositions).toEqual(first.globalPositions)
          expect(yield* EventStore.streamVersion(streamId)).toBe(1)
        }))

      it.effect("given a stored tagged batch, when a batch mixing its ids with new ones is appended on a condition they match, then DuplicateEventId names the stored event", () =>
        Effect.gen(function*() {
          const course = freshTag("course")
          const streamId = freshStream("dcb")
          const batch = [tagged("StudentSubscribed", [course]), tagged("StudentSubscribed", [course])]
          const options = { expectedVersion: "Any" as const, condition: { failIfEventsMatch: Query.tagged(course), after: 0n } }
          const { globalPositions } = yield* EventStore.append(streamId, batch, options)
          const error = yield* Effect.flip(EventStore.append(streamId, [...batch, tagged("StudentSubscribed", [course])], options))
          expectDuplicateOf(error, batch[0]!, { streamId, version: 1, position: globalPositions[0] })
          expect(yield* EventStore.streamVersion(streamId)).toBe(2)
        }))

      it.effect("a conditional batch re-sent after its stream moved on and more matches came answers with the original versions and positions", () =>
        Effect.gen(function*() {
          const course = freshTag("course")
          const streamId = freshStream("dcb")
          yield* EventStore.append(streamId, [tagged("CourseDefined", [])], { expectedVersion: "NoStream" })
          const batch = [tagged("StudentSubscribed", [course]), tagged("StudentSubscribed", [course])]
          const options = { expectedVersion: 1, condition: { failIfEventsMatch: Query.tagged(course), after: 0n } }
          const first = yield* EventStore.append(streamId, batch, options)
          expect(first.streamVersion).toBe(3)
          // others write on: to the same stream, and matching events elsewhere
          yield* EventStore.append(streamId, [tagged("StudentSubscribed", [course])], { expectedVersion: 3 })
          yield* EventStore.append(freshStream("dcb"), [tagged("StudentSubscribed", [course])], { expectedVersion: "Any" })
          yield* EventStore.append(streamId, [tagged("Noted", [])], { expectedVersion: 4 })
          // the lost reply's re-send: the original outcome, not the stream as it is now
          const again = yield* EventStore.append(streamId, batch, options)
          expect(again).toEqual(first)
          const anyAgain = yield* EventStore.append(streamId, batch, { ...options, expectedVersion: "Any" })
          expect(anyAgain).toEqual(first)
          expect(yield* EventStore.streamVersion(streamId)).toBe(5)
          const stored = yield* EventStore.read(streamId).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
          expect(stored.slice(1, 3).map((e) => [e.eventId, e.streamVersion, e.globalPosition])).toEqual(
            batch.map((e, i) => [e.eventId, i + 2, first.globalPositions[i]])
          )
        }))

      it.effect("queryForDecision returns the matches and the condition to append on", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const course = freshTag("course")
          const query = Query.tagged(course)
          const empty = yield* store.queryForDecision(query)
          expect(empty.events).toEqual([])
          expect(empty.condition.failIfEventsMatch).toEqual(query)
          const first = yield* store.append(freshStream("dcb"), [tagged("A", [course]), tagged("B", [freshTag("other")])], {
            expectedVersion: "Any",
            condition: empty.condition
          })
          yield* visibleUpTo(first.globalPositions[1]!)
          const read = yield* store.queryForDecision(query)
          expect(read.events.map((e) => e.globalPosition)).toEqual([first.globalPositions[0]])
          expect(read.condition.after).toBe(first.globalPositions[0])
          // the stale condition now fails; the fresh one goes through once
          expect((yield* Effect.flip(store.append(freshStream("dcb"), [tagged("A", [course])], { expectedVersion: "Any", condition: empty.condition })))._tag)
            .toBe("AppendConditionFailed")
          yield* store.append(freshStream("dcb"), [tagged("A", [course])], { expectedVersion: "Any", condition: read.condition })
          expect((yield* Effect.flip(store.append(freshStream("dcb"), [tagged("A", [course])], { expectedVersion: "Any", condition: read.condition })))._tag)
            .toBe("AppendConditionFailed")
          expect((yield* Effect.flip(store.queryForDecision({ items: [{ types: [""] }] })))._tag).toBe("InvalidArgument")
        }))

      it.effect("racing deciders: a course of capacity 3 never takes a fourth student; retries fill it exactly", () =>
        Effect.gen(function*() {
          const course = freshTag("course")
          const capacity = 3
          const query = Query.make(Query.item(["StudentSubscribed"], [course]))
          const written: Array<bigint> = []
          const attempt = (student: number) =>
            Effect.gen(function*() {
              const seen = yield* collect(query)
              if (seen.length >= capacity) return "full" as const
              const after = seen.at(-1)?.globalPosition ?? 0n
              const result = yield* Effect.either(EventStore.append(freshStream("sub"), [tagged("StudentSubscribed", [course, `student:${student}`])], {
                expectedVersion: "Any",
                condition: { failIfEventsMatch: query, after }
              }))
              if (Either.isLeft(result)) {
                if (result.left._tag === "AppendConditionFailed") return "retry" as const
                return yield* Effect.fail(result.left)
              }
              written.push(result.right.globalPositions[0]!)
              return "subscribed" as const
            })
          // a refusal means another student got in first (or our read did not show them yet): retry, backing
          // off, a bounded number of times; a store whose condition ignores `after` refuses every retry
          const subscribe = (student: number) =>
            Effect.gen(function*() {
              for (let tries = 0; tries < 100; tries++) {
                const outcome = yield* attempt(student)
                if (outcome !== "retry") return outcome
                yield* pause(Math.min(100, 5 * 2 ** tries))
              }
              return "retry" as const
            })
          const outcomes = yield* Effect.all(Array.from({ length: 10 }, (_, i) => subscribe(i)), { concurrency: "unbounded" }).pipe(
            within("20 seconds", "racing deciders")
          )
          expect(outcomes.filter((o) => o === "subscribed").length).toBe(capacity)
          yield* visibleUpTo(written.reduce((a, b) => (a > b ? a : b), 0n))
          expect((yield* collect(query)).length).toBe(capacity)
        }))
    })
  })
