/**
 * The course-subscriptions example (Dynamic Consistency Boundaries): each
 * decision as given/when/then through a real DecisionHandler, then the two
 * invariants (a course's capacity, a student's maximum of courses) under real
 * racing, on the memory store and on PostgreSQL.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Stream } from "effect"
import { DecisionModel, EventCodec, EventStore, MemoryEventStore, Query } from "chronicle"
import { DecisionSpec } from "chronicle/testing"
import type { SubscriptionCommand } from "../../examples/CourseSubscriptions.js"
import {
  AlreadySubscribed,
  CapacityBelowSubscriptions,
  CourseAlreadyExists,
  CourseCapacityChanged,
  CourseDefined,
  CourseEvents,
  CourseFull,
  courseModel,
  CourseNotFound,
  courses,
  Courses,
  InvalidLimit,
  NotSubscribed,
  StudentAlreadyRegistered,
  studentModel,
  StudentNotFound,
  StudentRegistered,
  students,
  Students,
  StudentSubscribedToCourse,
  StudentTooManyCourses,
  StudentUnsubscribedFromCourse,
  subscriptions,
  Subscriptions
} from "../../examples/CourseSubscriptions.js"
import { postgresAvailable, storeLayer } from "../support/postgres.js"

const defined = (courseId: string, capacity: number) => CourseDefined.make({ courseId, capacity })
const registered = (studentId: string, maxCourses: number) => StudentRegistered.make({ studentId, maxCourses })
const subscribed = (courseId: string, studentId: string) => StudentSubscribedToCourse.make({ courseId, studentId })
const unsubscribed = (courseId: string, studentId: string) => StudentUnsubscribedFromCourse.make({ courseId, studentId })
const subscribe = (courseId: string, studentId: string): SubscriptionCommand => ({
  _tag: "SubscribeStudentToCourse",
  courseId,
  studentId
})
const unsubscribe = (courseId: string, studentId: string): SubscriptionCommand => ({
  _tag: "UnsubscribeStudentFromCourse",
  courseId,
  studentId
})

describe("CourseSubscriptions: courses", () => {
  const spec = DecisionSpec.make(Courses)

  it.effect("given nothing, when defining a course, then it is defined", () =>
    spec.given([]).when({ _tag: "DefineCourse", courseId: "c1", capacity: 2 }).then([defined("c1", 2)]))

  it.effect("given a course, when defining it again, then CourseAlreadyExists", () =>
    spec.given([defined("c1", 2)]).when({ _tag: "DefineCourse", courseId: "c1", capacity: 5 })
      .then(new CourseAlreadyExists({ courseId: "c1" })))

  it.effect("given another course, when defining a course, then it is defined", () =>
    spec.given([defined("c2", 2)]).when({ _tag: "DefineCourse", courseId: "c1", capacity: 1 }).then([defined("c1", 1)]))

  it.effect("given nothing, when defining a course of capacity 0, then InvalidLimit", () =>
    spec.given([]).when({ _tag: "DefineCourse", courseId: "c1", capacity: 0 })
      .then(new InvalidLimit({ name: "capacity", value: 0 })))

  it.effect("given nothing, when changing a course's capacity, then CourseNotFound", () =>
    spec.given([]).when({ _tag: "ChangeCourseCapacity", courseId: "c1", capacity: 3 })
      .then(new CourseNotFound({ courseId: "c1" })))

  it.effect("given a course of 2 with one student, when raising its capacity to 3, then the capacity changes", () =>
    spec.given([defined("c1", 2), registered("s1", 2), subscribed("c1", "s1")])
      .when({ _tag: "ChangeCourseCapacity", courseId: "c1", capacity: 3 })
      .then([CourseCapacityChanged.make({ courseId: "c1", capacity: 3 })]))

  it.effect("given a course of 2 with one student, when cutting its capacity to 1, then the capacity changes", () =>
    spec.given([defined("c1", 2), registered("s1", 2), subscribed("c1", "s1")])
      .when({ _tag: "ChangeCourseCapacity", courseId: "c1", capacity: 1 })
      .then([CourseCapacityChanged.make({ courseId: "c1", capacity: 1 })]))

  it.effect("given a full course of 2, when cutting its capacity to 1, then CapacityBelowSubscriptions", () =>
    spec.given([defined("c1", 2), registered("s1", 2), registered("s2", 2), subscribed("c1", "s1"), subscribed("c1", "s2")])
      .when({ _tag: "ChangeCourseCapacity", courseId: "c1", capacity: 1 })
      .then(new CapacityBelowSubscriptions({ courseId: "c1", capacity: 1, subscribed: 2 })))

  it.effect("given a full course of 2 whose student left, when cutting its capacity to 1, then the capacity changes", () =>
    spec.given([
      defined("c1", 2),
      registered("s1", 2),
      registered("s2", 2),
      subscribed("c1", "s1"),
      subscribed("c1", "s2"),
      unsubscribed("c1", "s1")
    ]).when({ _tag: "ChangeCourseCapacity", courseId: "c1", capacity: 1 })
      .then([CourseCapacityChanged.make({ courseId: "c1", capacity: 1 })]))

  it.effect("given a course of 2, when setting its capacity to 2, then nothing happens", () =>
    spec.given([defined("c1", 2)]).when({ _tag: "ChangeCourseCapacity", courseId: "c1", capacity: 2 }).thenNothing())
})

describe("CourseSubscriptions: students", () => {
  const spec = DecisionSpec.make(Students)

  it.effect("given nothing, when registering a student, then they are registered", () =>
    spec.given([]).when({ _tag: "RegisterStudent", studentId: "s1", maxCourses: 2 }).then([registered("s1", 2)]))

  it.effect("given a student, when registering them again, then StudentAlreadyRegistered", () =>
    spec.given([registered("s1", 2)]).when({ _tag: "RegisterStudent", studentId: "s1", maxCourses: 3 })
      .then(new StudentAlreadyRegistered({ studentId: "s1" })))

  it.effect("given nothing, when registering a student with a fractional maximum, then InvalidLimit", () =>
    spec.given([]).when({ _tag: "RegisterStudent", studentId: "s1", maxCourses: 1.5 })
      .then(new InvalidLimit({ name: "maxCourses", value: 1.5 })))
})

describe("CourseSubscriptions: subscriptions", () => {
  const spec = DecisionSpec.make(Subscriptions)
  const course = defined("c1", 2)
  const student = registered("s1", 2)

  it.effect("given a course with a free seat and a registered student, when subscribing, then the student is subscribed", () =>
    spec.given([course, student]).when(subscribe("c1", "s1")).then([subscribed("c1", "s1")]))

  it.effect("given no course, when subscribing to it, then CourseNotFound", () =>
    spec.given([student]).when(subscribe("c1", "s1")).then(new CourseNotFound({ courseId: "c1" })))

  it.effect("given an unregistered student, when subscribing them, then StudentNotFound", () =>
    spec.given([course]).when(subscribe("c1", "s1")).then(new StudentNotFound({ studentId: "s1" })))

  it.effect("given a full course, when subscribing another student, then CourseFull", () =>
    spec.given([course, registered("s1", 2), registered("s2", 2), registered("s3", 2), subscribed("c1", "s1"), subscribed("c1", "s2")])
      .when(subscribe("c1", "s3"))
      .then(new CourseFull({ courseId: "c1", capacity: 2 })))

  it.effect("given a student at their maximum, when subscribing them to another course, then StudentTooManyCourses", () =>
    spec.given([defined("c1", 5), defined("c2", 5), defined("c3", 5), student, subscribed("c1", "s1"), subscribed("c2", "s1")])
      .when(subscribe("c3", "s1"))
      .then(new StudentTooManyCourses({ studentId: "s1", maxCourses: 2 })))

  it.effect("given a subscribed student, when subscribing them again, then AlreadySubscribed", () =>
    spec.given([course, student, subscribed("c1", "s1")]).when(subscribe("c1", "s1"))
      .then(new AlreadySubscribed({ courseId: "c1", studentId: "s1" })))

  it.effect("given a full course the student is in, when subscribing them again, then AlreadySubscribed, not CourseFull", () =>
    spec.given([defined("c1", 1), student, subscribed("c1", "s1")]).when(subscribe("c1", "s1"))
      .thenFails((error) => error._tag === "AlreadySubscribed"))

  it.effect("given a subscribed student, when unsubscribing them, then they are unsubscribed", () =>
    spec.given([course, student, subscribed("c1", "s1")]).when(unsubscribe("c1", "s1")).then([unsubscribed("c1", "s1")]))

  it.effect("given a student not in the course, when unsubscribing them, then NotSubscribed", () =>
    spec.given([course, student]).when(unsubscribe("c1", "s1")).then(new NotSubscribed({ courseId: "c1", studentId: "s1" })))

  it.effect("given a student who left the course, when unsubscribing them again, then NotSubscribed", () =>
    spec.given([course, student, subscribed("c1", "s1"), unsubscribed("c1", "s1")]).when(unsubscribe("c1", "s1"))
      .then(new NotSubscribed({ courseId: "c1", studentId: "s1" })))

  it.effect("given a student who left a full course, when another subscribes, then the freed seat is theirs", () =>
    spec.given([defined("c1", 1), student, registered("s2", 2), subscribed("c1", "s1"), unsubscribed("c1", "s1")])
      .when(subscribe("c1", "s2"))
      .then([subscribed("c1", "s2")]))

  it.effect("given a student who left a course, when they subscribe again, then they are subscribed", () =>
    spec.given([course, student, subscribed("c1", "s1"), unsubscribed("c1", "s1")]).when(subscribe("c1", "s1"))
      .then([subscribed("c1", "s1")]))

  it.effect("given a student at their maximum who left one course, when subscribing to another, then they are subscribed", () =>
    spec.given([defined("c1", 5), defined("c2", 5), defined("c3", 5), student, subscribed("c1", "s1"), subscribed("c2", "s1"), unsubscribed("c1", "s1")])
      .when(subscribe("c3", "s1"))
      .then([subscribed("c3", "s1")]))

  it.effect("given a full course whose capacity was raised, when another student subscribes, then they are subscribed", () =>
    spec.given([defined("c1", 1), student, registered("s2", 2), subscribed("c1", "s1"), CourseCapacityChanged.make({ courseId: "c1", capacity: 2 })])
      .when(subscribe("c1", "s2"))
      .then([subscribed("c1", "s2")]))

  it.effect("given a course whose capacity was cut to its students, when another student subscribes, then CourseFull", () =>
    spec.given([defined("c1", 3), student, registered("s2", 2), subscribed("c1", "s1"), CourseCapacityChanged.make({ courseId: "c1", capacity: 1 })])
      .when(subscribe("c1", "s2"))
      .then(new CourseFull({ courseId: "c1", capacity: 1 })))

  it.effect("given other courses full and other students at their maximum, when subscribing, then only this course and student count", () =>
    spec.given([
      defined("c1", 1),
      defined("c2", 1),
      registered("s1", 1),
      registered("s2", 1),
      subscribed("c2", "s2")
    ]).when(subscribe("c1", "s1")).then([subscribed("c1", "s1")]))
})

// ---------------------------------------------------------------------------
// racing
// ---------------------------------------------------------------------------

/** One race's cast: three courses (9 seats) and six students of 2 courses each, under ids of its own. */
const cast = (round: number) => ({
  courses: [["algebra", 2], ["biology", 3], ["chemistry", 4]].map(([name, capacity]) => ({
    courseId: `r${round}.${name}`,
    capacity: capacity as number
  })),
  students: ["ada", "alan", "barbara", "edsger", "grace", "linus"].map((name) => `r${round}.${name}`),
  maxCourses: 2
})
type Cast = ReturnType<typeof cast>

/** How many races each test runs: a lost race shows up in some, not in every one. */
const rounds = 5

const refusals = new Set(["CourseFull", "StudentTooManyCourses", "AlreadySubscribed"])

/**
 * Waits until the event at `position` is readable. On PostgreSQL an
 * acknowledged event stays hidden from reads (and from decisions) while any
 * transaction that began before it is still open, in any schema; other test
 * files write alongside these, so a race starts only once its set-up shows.
 */
const readable = (position: bigint | undefined) =>
  position === undefined ? Effect.void : EventStore.subscribe({ after: position - 1n, pollInterval: "10 millis" }).pipe(Stream.take(1), Stream.runDrain)

/** Defines the cast's courses and registers its students, and waits until that is readable. */
const setUp = ({ courses: catalogue, maxCourses, students: roster }: Cast) =>
  Effect.gen(function*() {
    for (const { capacity, courseId } of catalogue) yield* courses.handle({ _tag: "DefineCourse", courseId, capacity })
    let last: bigint | undefined
    for (const studentId of roster) {
      last = (yield* students.handle({ _tag: "RegisterStudent", studentId, maxCourses })).globalPositions.at(-1)
    }
    yield* readable(last)
  })

interface Outcome {
  /** `acknowledged`, or the tag of the error. */
  readonly outcome: string
  /** Where the last event decided was stored. */
  readonly position?: bigint | undefined
}

/** Runs a command, turning its outcome into data. */
const outcome = <E extends { readonly _tag: string }, R>(
  effect: Effect.Effect<{ readonly globalPositions: ReadonlyArray<bigint> }, E, R>
): Effect.Effect<Outcome, never, R> =>
  Effect.match(effect, {
    onSuccess: (result) => ({ outcome: "acknowledged", position: result.globalPositions.at(-1) }),
    onFailure: (error) => ({ outcome: error._tag })
  })

/** Waits until every acknowledged event of `outcomes` is readable. */
const settled = (outcomes: ReadonlyArray<Outcome>) =>
  readable(outcomes.reduce<bigint | undefined>((max, { position }) => (position !== undefined && (max === undefined || position > max) ? position : max), undefined))

/** Every student asks for every course twice, all at once, with `alongside` racing them; then waits until it all shows. */
const race = <R = never>({ courses: catalogue, students: roster }: Cast, alongside: ReadonlyArray<Effect.Effect<Outcome, never, R>> = []) =>
  Effect.gen(function*() {
    const attempts = roster.flatMap((studentId) => catalogue.map(({ courseId }) => subscribe(courseId, studentId)))
    const commands = [...attempts, ...attempts]
    const results = yield* Effect.all(
      [...commands.map((command) => outcome(subscriptions.handle(command))), ...alongside],
      { concurrency: "unbounded" }
    )
    yield* settled(results)
    return commands.map((command, i) => ({ command, ...results[i]! }))
  })

/** The cast's courses and students as the log has them, folded afresh. */
const stored = ({ courses: catalogue, students: roster }: Cast) =>
  Effect.gen(function*() {
    const log = yield* EventStore.query(Query.make(Query.item(CourseEvents.types))).pipe(
      EventCodec.decodeStream(CourseEvents),
      Stream.runCollect,
      Effect.map(Chunk.toReadonlyArray)
    )
    return {
      courses: catalogue.map(({ courseId }) => ({ courseId, ...DecisionModel.fold(courseModel(courseId), log) })),
      students: roster.map((studentId) => ({ studentId, ...DecisionModel.fold(studentModel(studentId), log) }))
    }
  })

/** The invariants, and that no subscription was refused that could have been taken. */
const expectInvariants = (
  cast: Cast,
  outcomes: ReadonlyArray<Outcome & { readonly command: SubscriptionCommand }>
) =>
  Effect.gen(function*() {
    const state = yield* stored(cast)
    for (const course of state.courses) expect(course.students.length, course.courseId).toBeLessThanOrEqual(course.capacity)
    for (const student of state.students) expect(student.courses.length, student.studentId).toBeLessThanOrEqual(student.maxCourses)

    const acknowledged = outcomes.filter((o) => o.outcome === "acknowledged").map((o) => `${o.command.courseId}/${o.command.studentId}`)
    const kept = state.courses.flatMap((course) => course.students.map((studentId) => `${course.courseId}/${studentId}`))
    expect([...kept].sort()).toEqual([...acknowledged].sort())
    expect(outcomes.map((o) => o.outcome).filter((o) => o !== "acknowledged" && !refusals.has(o))).toEqual([])

    // courses only fill and students only take more: a pair left out must have been refused for a reason that still holds
    for (const course of state.courses) {
      for (const student of state.students) {
        const free = course.students.length < course.capacity && student.courses.length < student.maxCourses
        expect(free && !course.students.includes(student.studentId), `${student.studentId} could still join ${course.courseId}`).toBe(false)
      }
    }
    return state
  })

const racing = (store: string, layer: () => Layer.Layer<EventStore.EventStore, unknown>, timeout: number) =>
  describe(`CourseSubscriptions racing on ${store}`, () => {
    it.live("36 concurrent subscriptions never put a course over its capacity nor a student over their maximum", () =>
      Effect.gen(function*() {
        for (let round = 1; round <= rounds; round++) {
          const ids = cast(round)
          yield* setUp(ids)
          const outcomes = yield* race(ids)
          const state = yield* expectInvariants(ids, outcomes)
          // the limits bind: 9 seats for 6 students of 2 courses each, every pair asked for twice
          expect(state.courses.reduce((sum, course) => sum + course.students.length, 0)).toBeGreaterThanOrEqual(8)
          expect(outcomes.filter((o) => o.outcome === "AlreadySubscribed").length).toBeGreaterThan(0)
        }
      }).pipe(Effect.provide(layer())), timeout)

    it.live("a capacity cut racing students for a course's last seat: the cut or one student wins, never both", () =>
      Effect.gen(function*() {
        for (let round = 1; round <= rounds * 4; round++) {
          const courseId = `r${round}.last-seat`
          const [first, second, ...racers] = cast(round).students
          yield* setUp({ courses: [{ courseId, capacity: 3 }], students: [first!, second!, ...racers], maxCourses: 2 })
          yield* subscriptions.handle(subscribe(courseId, first!))
          yield* readable((yield* subscriptions.handle(subscribe(courseId, second!))).globalPositions.at(-1))

          const outcomes = yield* Effect.all([
            outcome(courses.handle({ _tag: "ChangeCourseCapacity", courseId, capacity: 2 })),
            ...racers.map((studentId) => outcome(subscriptions.handle(subscribe(courseId, studentId))))
          ], { concurrency: "unbounded" })
          yield* settled(outcomes)
          const [cut, ...seats] = outcomes.map((o) => o.outcome)

          const course = DecisionModel.fold(courseModel(courseId), yield* Stream.runCollect(
            EventStore.query(courseModel(courseId).query).pipe(EventCodec.decodeStream(CourseEvents))
          ))
          const won = racers.filter((_, i) => seats[i] === "acknowledged")
          expect(course.students).toEqual([first, second, ...won])
          expect(course.students.length).toBeLessThanOrEqual(course.capacity)
          expect(seats.filter((seat) => seat !== "acknowledged")).toEqual(Array(racers.length - won.length).fill("CourseFull"))
          if (cut === "acknowledged") expect({ capacity: course.capacity, won }).toEqual({ capacity: 2, won: [] })
          else expect({ cut, capacity: course.capacity, won: won.length }).toEqual({ cut: "CapacityBelowSubscriptions", capacity: 3, won: 1 })
        }
      }).pipe(Effect.provide(layer())), timeout)
  })

/**
 * The memory store, its reads and writes each giving other fibers a turn, as
 * a real store's I/O does: without it a fiber may read, decide and append in
 * one go and never race at all.
 */
const interleavedMemoryStore = () =>
  Layer.effect(
    EventStore.EventStore,
    Effect.map(EventStore.EventStore, (store): EventStore.EventStoreService => ({
      ...store,
      query: (query, options) => Stream.concat(store.query(query, options), Stream.execute(Effect.yieldNow())),
      append: (streamId, events, options) => Effect.zipRight(Effect.yieldNow(), store.append(streamId, events, options))
    }))
  ).pipe(Layer.provide(MemoryEventStore.layer()))

racing("the memory store", interleavedMemoryStore, 30_000)

describe.runIf(postgresAvailable())("on PostgreSQL", () => {
  racing("PostgreSQL", () => storeLayer("courses", { maxConnections: 16 }), 60_000)
})
