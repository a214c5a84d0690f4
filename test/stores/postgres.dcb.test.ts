/**
 * Conditional appends on PostgreSQL under real concurrency: many fibers on
 * many connections racing to subscribe students to courses. The invariant
 * (never more than the capacity) must hold, no acknowledged event may be
 * lost, and writers whose conditions share no tag must never fail each other.
 */
import { describe, expect, it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Deferred, Effect, Either, Fiber, Runtime, Stream } from "effect"
import * as fc from "fast-check"
import type { Event } from "chronicle"
import { EventId, EventStore, Query, StreamId } from "chronicle"
import { postgresAvailable, storeLayer } from "../support/postgres.js"

let runs = 0

const subscribed = (course: string, student: string): Event.NewEvent => ({
  eventId: EventId.unsafeGenerate(),
  type: "StudentSubscribed",
  data: { course, student },
  tags: [`course:${course}`, `student:${student}`]
})

/** Every matching event committed so far (a decision read: no waiting for older transactions). */
const collect = (query: Query.Query) =>
  Effect.flatMap(EventStore.EventStore, (store) => Effect.map(store.queryForDecision(query), (read) => read.events))

/** Read, decide against the capacity, append on condition; repeat on a failed condition. */
const subscribe = (course: string, student: string, capacity: number) => {
  const query = Query.make(Query.item(["StudentSubscribed"], [`course:${course}`]))
  let conditionFailures = 0
  return Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const read = yield* store.queryForDecision(query)
    if (read.events.length >= capacity) return { outcome: "full" as const, conditionFailures }
    const result = yield* Effect.either(EventStore.append(StreamId.unsafeMake("subscription", `${course}-${student}`), [subscribed(course, student)], {
      expectedVersion: "NoStream",
      condition: read.condition
    }))
    if (Either.isRight(result)) return { outcome: "subscribed" as const, conditionFailures }
    if (result.left._tag !== "AppendConditionFailed") return yield* Effect.fail(result.left)
    conditionFailures++
    return { outcome: "retry" as const, conditionFailures }
  }).pipe(Effect.repeat({ until: (r) => r.outcome !== "retry" }))
}

describe.runIf(postgresAvailable())("PostgreSQL conditional appends under concurrency", () => {
  it.live("a decision read sees what committed even behind an older open transaction, and its token catches a late commit below it", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      const tag = `course:late-${process.pid}-${Date.now()}`
      const query = Query.tagged(tag)
      const event = () => ({ eventId: EventId.unsafeGenerate(), type: "StudentSubscribed", data: {}, tags: [tag] })
      const inserted = yield* Deferred.make<bigint>()
      const release = yield* Deferred.make<void>()
      // an older transaction: its event takes a low position but commits last
      const slow = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
        const result = yield* store.append(StreamId.unsafeMake("late", "slow"), [event()], { expectedVersion: "Any" })
        yield* Deferred.succeed(inserted, result.globalPositions[0]!)
        yield* Deferred.await(release)
      })))
      const slowPosition = yield* Deferred.await(inserted)
      const fast = yield* store.append(StreamId.unsafeMake("late", "fast"), [event()], { expectedVersion: "Any" })
      expect(fast.globalPositions[0]! > slowPosition).toBe(true)
      // the plain query waits for the older transaction; the decision read shows the committed event now
      expect((yield* EventStore.query(query).pipe(Stream.runCollect)).length).toBe(0)
      const read = yield* store.queryForDecision(query)
      expect(read.events.map((e) => e.globalPosition)).toEqual([fast.globalPositions[0]])
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(slow)
      // the slow event sits below the read's last position, but the read never saw it: the condition fails on it
      const refused = yield* Effect.flip(store.append(StreamId.unsafeMake("late", "decision"), [event()], {
        expectedVersion: "Any",
        condition: read.condition
      }))
      expect(refused._tag).toBe("AppendConditionFailed")
      if (refused._tag === "AppendConditionFailed") expect(refused.position).toBe(slowPosition)
      // read again: both are seen, and the decision goes through
      const again = yield* store.queryForDecision(query)
      expect(again.events.length).toBe(2)
      yield* store.append(StreamId.unsafeMake("late", "decision"), [event()], { expectedVersion: "Any", condition: again.condition })
    }).pipe(Effect.provide(storeLayer("dcb_late", { maxConnections: 8 }))), 60_000)

  it.live("many fibers on many connections never push a course past its capacity, and lose no subscription (property)", () =>
    Effect.gen(function*() {
      const runtime = yield* Effect.runtime<EventStore.EventStore>()
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 4, max: 24 }), (capacity, students) =>
            Runtime.runPromise(runtime)(Effect.gen(function*() {
              const course = `c${process.pid}-${Date.now()}-${++runs}`
              const outcomes = yield* Effect.all(
                Array.from({ length: students }, (_, s) => subscribe(course, `s${s}`, capacity)),
                { concurrency: "unbounded" }
              )
              const stored = yield* collect(Query.tagged(`course:${course}`))
              const acknowledged = outcomes.filter((o) => o.outcome === "subscribed").length
              expect(acknowledged).toBe(Math.min(capacity, students))
              expect(stored.length).toBe(acknowledged)
              expect(new Set(stored.map((e) => (e.data as { student: string }).student)).size).toBe(stored.length)
            }))),
          { numRuns: 12 }
        )
      )
    }).pipe(Effect.provide(storeLayer("dcb_race", { maxConnections: 16 }))), 120_000)

  it.live("writers whose conditions share no tag never fail each other's condition", () =>
    Effect.gen(function*() {
      const base = `u${process.pid}-${Date.now()}`
      const outcomes = yield* Effect.all(
        Array.from({ length: 32 }, (_, i) => subscribe(`${base}-${i}`, "only", 1)),
        { concurrency: "unbounded" }
      )
      expect(outcomes.every((o) => o.outcome === "subscribed")).toBe(true)
      expect(outcomes.reduce((sum, o) => sum + o.conditionFailures, 0)).toBe(0)
    }).pipe(Effect.provide(storeLayer("dcb_disjoint", { maxConnections: 16 }))), 60_000)

  it.live("a unique username: of 20 concurrent claims exactly one wins", () =>
    Effect.gen(function*() {
      const username = `username:ada-${process.pid}-${Date.now()}`
      const results = yield* Effect.all(
        Array.from({ length: 20 }, (_, i) =>
          Effect.either(EventStore.append(StreamId.unsafeMake("user", `${Date.now()}-${i}`), [{
            eventId: EventId.unsafeGenerate(),
            type: "UsernameClaimed",
            data: { i },
            tags: [username]
          }], { expectedVersion: "NoStream", condition: { failIfEventsMatch: Query.tagged(username) } }))),
        { concurrency: "unbounded" }
      )
      expect(results.filter(Either.isRight).length).toBe(1)
      expect(results.filter(Either.isLeft).every((r) => r.left._tag === "AppendConditionFailed")).toBe(true)
      expect((yield* collect(Query.tagged(username))).length).toBe(1)
    }).pipe(Effect.provide(storeLayer("dcb_unique", { maxConnections: 16 }))), 60_000)
})
