/**
 * The course-subscriptions example (Dynamic Consistency Boundaries), end to
 * end on the embedded filesystem store (a fresh temporary directory, or the
 * one in CHRONICLE_DIR): defines three courses and registers five students
 * (two courses each at most), fires 30 subscriptions at once (every student
 * to every course, twice), prints who got into which course, which attempts
 * were refused and why, and how often a conditional append found its
 * decision stale and ran again. Then it checks the log: no course over its
 * capacity, no student over their maximum, every acknowledged subscription
 * stored; if not, it exits non-zero.
 *
 * Run: npm run example:courses
 */
import { Chunk, Config, Console, Effect, Layer, Metric, Option, Stream } from "effect"
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { DecisionModel, EventCodec, EventStore, FileEventStore, Metrics, Query } from "chronicle"
import type { SubscriptionCommand } from "./CourseSubscriptions.js"
import { courseModel, courses, CourseEvents, studentModel, students, subscriptions } from "./CourseSubscriptions.js"

/** Ids unique to this run, so that runs can share a CHRONICLE_DIR. */
const run = Date.now().toString(36)
const id = (name: string) => `${name}.${run}`
const name = (id: string) => id.slice(0, id.lastIndexOf("."))

const catalogue = [{ course: "algebra", capacity: 2 }, { course: "biology", capacity: 3 }, { course: "chemistry", capacity: 4 }]
const roster = ["ada", "alan", "barbara", "edsger", "grace"]
const maxCourses = 2

const program = Effect.gen(function*() {
  for (const { capacity, course } of catalogue) yield* courses.handle({ _tag: "DefineCourse", courseId: id(course), capacity })
  for (const student of roster) yield* students.handle({ _tag: "RegisterStudent", studentId: id(student), maxCourses })

  // every student asks for every course, twice, all at once
  const attempts: Array<SubscriptionCommand> = []
  for (let round = 0; round < 2; round++) {
    for (const student of roster) {
      for (const { course } of catalogue) {
        attempts.push({ _tag: "SubscribeStudentToCourse", courseId: id(course), studentId: id(student) })
      }
    }
  }
  const started = Date.now()
  const outcomes = yield* Effect.all(
    attempts.map((command) =>
      subscriptions.handle(command).pipe(
        Effect.map((result) => ({ command, outcome: "subscribed", retries: result.attempts - 1 })),
        Effect.catchTags({
          CourseNotFound: (error) => Effect.succeed({ command, outcome: error._tag, retries: 0 }),
          StudentNotFound: (error) => Effect.succeed({ command, outcome: error._tag, retries: 0 }),
          CourseFull: (error) => Effect.succeed({ command, outcome: error._tag, retries: 0 }),
          StudentTooManyCourses: (error) => Effect.succeed({ command, outcome: error._tag, retries: 0 }),
          AlreadySubscribed: (error) => Effect.succeed({ command, outcome: error._tag, retries: 0 }),
          NotSubscribed: (error) => Effect.succeed({ command, outcome: error._tag, retries: 0 }),
          ConditionRetriesExhausted: (error) => Effect.succeed({ command, outcome: error._tag, retries: error.attempts - 1 })
        })
      )
    ),
    { concurrency: "unbounded" }
  )
  const elapsed = Date.now() - started

  // what the log says, folded afresh
  const log = yield* EventStore.query(Query.make(Query.item(CourseEvents.types))).pipe(EventCodec.decodeStream(CourseEvents), Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
  const courseStates = catalogue.map(({ course }) => ({ course, state: DecisionModel.fold(courseModel(id(course)), log) }))
  const studentStates = roster.map((student) => ({ student, state: DecisionModel.fold(studentModel(id(student)), log) }))

  yield* Console.log(`\n${attempts.length} concurrent subscription attempts in ${elapsed} ms\n\nCourses:`)
  for (const { course, state } of courseStates) {
    yield* Console.log(`  ${course.padEnd(10)} ${state.students.length}/${state.capacity}  ${state.students.map(name).join(", ")}`)
  }
  yield* Console.log("Students:")
  for (const { state, student } of studentStates) {
    yield* Console.log(`  ${student.padEnd(10)} ${state.courses.length}/${state.maxCourses}  ${state.courses.map(name).join(", ")}`)
  }
  const tally = new Map<string, number>()
  for (const { outcome } of outcomes) tally.set(outcome, (tally.get(outcome) ?? 0) + 1)
  yield* Console.log("Outcomes:")
  for (const [outcome, count] of [...tally].sort(([a], [b]) => a.localeCompare(b))) {
    yield* Console.log(`  ${outcome.padEnd(22)} ${count}`)
  }
  const retried = yield* Metric.value(Metrics.commandRetries)
  const stale = yield* Metric.value(Metric.tagged(Metrics.appendConditionFailures, "store", "filesystem"))
  const acknowledgedRetries = outcomes.filter((o) => o.outcome === "subscribed").reduce((sum, o) => sum + o.retries, 0)
  yield* Console.log(
    `Conditional appends refused as stale: ${stale.count}; decisions run again: ${retried.count}` +
      ` (${acknowledgedRetries} of them on the way to a subscription)`
  )

  // the invariants, checked against the log
  const violations: Array<string> = []
  for (const { course, state } of courseStates) {
    if (state.students.length > state.capacity) violations.push(`${course} has ${state.students.length} students, capacity ${state.capacity}`)
  }
  for (const { state, student } of studentStates) {
    if (state.courses.length > state.maxCourses) violations.push(`${student} takes ${state.courses.length} courses, max ${state.maxCourses}`)
  }
  const stored = new Set(courseStates.flatMap(({ course, state }) => state.students.map((student) => `${id(course)}/${student}`)))
  const acknowledged = outcomes.filter((o) => o.outcome === "subscribed").map(({ command }) => `${command.courseId}/${command.studentId}`)
  for (const pair of acknowledged) if (!stored.has(pair)) violations.push(`acknowledged ${pair} is not stored`)
  if (acknowledged.length !== stored.size) violations.push(`${acknowledged.length} acknowledged, ${stored.size} stored`)
  if (violations.length > 0) return yield* Effect.fail(new Error(`Invariants broken:\n  ${violations.join("\n  ")}`))
  yield* Console.log(`OK: no course over capacity, no student over their maximum, ${stored.size} acknowledged subscriptions all stored.`)
})

/** The store's directory: CHRONICLE_DIR, or a temporary one removed at the end. */
const Store = Layer.unwrapScoped(
  Effect.gen(function*() {
    const configured = yield* Config.option(Config.string("CHRONICLE_DIR"))
    const directory = Option.isSome(configured)
      ? configured.value
      : yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "chronicle-courses-" }))
    yield* Console.log(`Store: ${directory}`)
    return FileEventStore.layer({ directory })
  })
).pipe(Layer.provide(NodeContext.layer))

program.pipe(Effect.provide(Store), Effect.runPromise).catch((error) => {
  console.error(error)
  process.exit(1)
})
