/**
 * Course subscriptions with Dynamic Consistency Boundaries: students
 * subscribe to courses; a course takes at most its capacity of students and a
 * student takes at most their own maximum of courses. Both rules span two
 * entities, yet there is no course-student aggregate: each decision reads the
 * events tagged with the course and/or the student it is about, and appends on
 * the condition that none of them changed since (see `DecisionHandler`).
 *
 *   DefineCourse, ChangeCourseCapacity → reads course:<id>
 *   RegisterStudent                    → reads student:<id>
 *   SubscribeStudentToCourse,
 *   UnsubscribeStudentFromCourse       → reads course:<id> or student:<id>
 *
 * Streams do not guard anything here (every append expects `Any` version):
 * the course's and the student's own facts go to `course-<id>` and
 * `student-<id>`, and each subscription's history to its own stream,
 * `subscription-<courseId>/<studentId>`, so that racing subscriptions never
 * queue on one hot stream and a pair's history reads as one stream.
 */
import { Effect, Schedule, Schema } from "effect"
import { DecisionHandler, DecisionModel, EventCodec, Query, StreamId } from "chronicle"

const Id = Schema.NonEmptyString
const Limit = Schema.Int.pipe(Schema.positive())

// tags and streams ------------------------------------------------------------

/** The tag of every event about a course: `course:<courseId>`. */
export const courseTag = (courseId: string): string => `course:${courseId}`
/** The tag of every event about a student: `student:<studentId>`. */
export const studentTag = (studentId: string): string => `student:${studentId}`

/** The stream of a course's own facts: `course-<courseId>`. */
export const courseStream = (courseId: string): StreamId.StreamId => StreamId.unsafeMake("course", courseId)
/** The stream of a student's own facts: `student-<studentId>`. */
export const studentStream = (studentId: string): StreamId.StreamId => StreamId.unsafeMake("student", studentId)
/** The stream of one student's subscriptions to one course: `subscription-<courseId>/<studentId>`. */
export const subscriptionStream = (courseId: string, studentId: string): StreamId.StreamId =>
  StreamId.unsafeMake("subscription", `${courseId}/${studentId}`)

// events ----------------------------------------------------------------------

export const CourseDefined = Schema.TaggedStruct("CourseDefined", { courseId: Id, capacity: Limit })
export const CourseCapacityChanged = Schema.TaggedStruct("CourseCapacityChanged", { courseId: Id, capacity: Limit })
export const StudentRegistered = Schema.TaggedStruct("StudentRegistered", { studentId: Id, maxCourses: Limit })
export const StudentSubscribedToCourse = Schema.TaggedStruct("StudentSubscribedToCourse", { courseId: Id, studentId: Id })
export const StudentUnsubscribedFromCourse = Schema.TaggedStruct("StudentUnsubscribedFromCourse", {
  courseId: Id,
  studentId: Id
})

export const CourseEvent = Schema.Union(
  CourseDefined,
  CourseCapacityChanged,
  StudentRegistered,
  StudentSubscribedToCourse,
  StudentUnsubscribedFromCourse
)
export type CourseEvent = typeof CourseEvent.Type

/** The events' codec: it tags each event with the course and/or the student it is about. */
export const CourseEvents = EventCodec.make(CourseEvent, {
  tags: (event) => {
    switch (event._tag) {
      case "CourseDefined":
      case "CourseCapacityChanged":
        return [courseTag(event.courseId)]
      case "StudentRegistered":
        return [studentTag(event.studentId)]
      case "StudentSubscribedToCourse":
      case "StudentUnsubscribedFromCourse":
        return [courseTag(event.courseId), studentTag(event.studentId)]
    }
  }
})

// commands --------------------------------------------------------------------

export type CourseCommand =
  | { readonly _tag: "DefineCourse"; readonly courseId: string; readonly capacity: number }
  | { readonly _tag: "ChangeCourseCapacity"; readonly courseId: string; readonly capacity: number }

export type StudentCommand = { readonly _tag: "RegisterStudent"; readonly studentId: string; readonly maxCourses: number }

export type SubscriptionCommand =
  | { readonly _tag: "SubscribeStudentToCourse"; readonly courseId: string; readonly studentId: string }
  | { readonly _tag: "UnsubscribeStudentFromCourse"; readonly courseId: string; readonly studentId: string }

// domain errors ---------------------------------------------------------------

/** A capacity or a maximum of courses that is not a positive integer. */
export class InvalidLimit extends Schema.TaggedError<InvalidLimit>()("InvalidLimit", {
  name: Schema.Literal("capacity", "maxCourses"),
  value: Schema.Number
}) {}
/** No course was defined under this id. */
export class CourseNotFound extends Schema.TaggedError<CourseNotFound>()("CourseNotFound", { courseId: Schema.String }) {}
/** A course was already defined under this id. */
export class CourseAlreadyExists extends Schema.TaggedError<CourseAlreadyExists>()("CourseAlreadyExists", {
  courseId: Schema.String
}) {}
/** The new capacity is below the number of students already subscribed. */
export class CapacityBelowSubscriptions extends Schema.TaggedError<CapacityBelowSubscriptions>()(
  "CapacityBelowSubscriptions",
  { courseId: Schema.String, capacity: Schema.Number, subscribed: Schema.Number }
) {}
/** No student was registered under this id. */
export class StudentNotFound extends Schema.TaggedError<StudentNotFound>()("StudentNotFound", { studentId: Schema.String }) {}
/** A student was already registered under this id. */
export class StudentAlreadyRegistered extends Schema.TaggedError<StudentAlreadyRegistered>()("StudentAlreadyRegistered", {
  studentId: Schema.String
}) {}
/** The course has as many students as its capacity. */
export class CourseFull extends Schema.TaggedError<CourseFull>()("CourseFull", {
  courseId: Schema.String,
  capacity: Schema.Number
}) {}
/** The student is subscribed to as many courses as their maximum. */
export class StudentTooManyCourses extends Schema.TaggedError<StudentTooManyCourses>()("StudentTooManyCourses", {
  studentId: Schema.String,
  maxCourses: Schema.Number
}) {}
/** The student is already subscribed to the course. */
export class AlreadySubscribed extends Schema.TaggedError<AlreadySubscribed>()("AlreadySubscribed", {
  courseId: Schema.String,
  studentId: Schema.String
}) {}
/** The student is not subscribed to the course. */
export class NotSubscribed extends Schema.TaggedError<NotSubscribed>()("NotSubscribed", {
  courseId: Schema.String,
  studentId: Schema.String
}) {}

export type CourseError = InvalidLimit | CourseNotFound | CourseAlreadyExists | CapacityBelowSubscriptions
export type StudentError = InvalidLimit | StudentAlreadyRegistered
export type SubscriptionError =
  | CourseNotFound
  | StudentNotFound
  | CourseFull
  | StudentTooManyCourses
  | AlreadySubscribed
  | NotSubscribed

// decision models -------------------------------------------------------------

/** What decisions know of a course: whether it exists, its capacity, its students. */
export interface CourseState {
  readonly defined: boolean
  readonly capacity: number
  readonly students: ReadonlyArray<string>
}

/** What decisions know of a student: whether they are registered, their maximum, their courses. */
export interface StudentState {
  readonly registered: boolean
  readonly maxCourses: number
  readonly courses: ReadonlyArray<string>
}

const without = (items: ReadonlyArray<string>, item: string) => items.filter((each) => each !== item)

/** A course, from the events tagged `course:<courseId>`. */
export const courseModel = (courseId: string): DecisionModel.DecisionModel<CourseState, CourseEvent> =>
  DecisionModel.make<CourseState, CourseEvent>({
    query: Query.make(Query.item(
      ["CourseDefined", "CourseCapacityChanged", "StudentSubscribedToCourse", "StudentUnsubscribedFromCourse"],
      [courseTag(courseId)]
    )),
    initialState: { defined: false, capacity: 0, students: [] },
    evolve: (state, { data: event }) => {
      switch (event._tag) {
        case "CourseDefined":
          return { ...state, defined: true, capacity: event.capacity }
        case "CourseCapacityChanged":
          return { ...state, capacity: event.capacity }
        case "StudentSubscribedToCourse":
          return { ...state, students: [...without(state.students, event.studentId), event.studentId] }
        case "StudentUnsubscribedFromCourse":
          return { ...state, students: without(state.students, event.studentId) }
        default:
          return state
      }
    }
  })

/** A student, from the events tagged `student:<studentId>`. */
export const studentModel = (studentId: string): DecisionModel.DecisionModel<StudentState, CourseEvent> =>
  DecisionModel.make<StudentState, CourseEvent>({
    query: Query.make(Query.item(
      ["StudentRegistered", "StudentSubscribedToCourse", "StudentUnsubscribedFromCourse"],
      [studentTag(studentId)]
    )),
    initialState: { registered: false, maxCourses: 0, courses: [] },
    evolve: (state, { data: event }) => {
      switch (event._tag) {
        case "StudentRegistered":
          return { ...state, registered: true, maxCourses: event.maxCourses }
        case "StudentSubscribedToCourse":
          return { ...state, courses: [...without(state.courses, event.courseId), event.courseId] }
        case "StudentUnsubscribedFromCourse":
          return { ...state, courses: without(state.courses, event.courseId) }
        default:
          return state
      }
    }
  })

/** What a subscription decision knows: the course and the student. */
export interface SubscriptionState {
  readonly course: CourseState
  readonly student: StudentState
}

/** What a subscription decision reads: the course's events or the student's, as one boundary. */
export const subscriptionModel = (courseId: string, studentId: string): DecisionModel.DecisionModel<SubscriptionState, CourseEvent> =>
  DecisionModel.combine({ course: courseModel(courseId), student: studentModel(studentId) })

// deciders --------------------------------------------------------------------

/**
 * Retries a decision whose reads went stale: after 2 ms, doubling up to about
 * 50 ms, with jitter, 30 times at most. Contention on a popular course ends
 * quickly anyway: once it is full, deciding fails with `CourseFull` instead of
 * appending.
 */
export const retrySchedule = Schedule.exponential("2 millis").pipe(
  Schedule.union(Schedule.spaced("50 millis")),
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(30))
)

const requireLimit = (name: "capacity" | "maxCourses", value: number) =>
  Number.isSafeInteger(value) && value > 0 ? Effect.void : Effect.fail(new InvalidLimit({ name, value }))

/** Defines courses and changes their capacity; a capacity never drops below the students subscribed. */
export const Courses: DecisionHandler.DecisionDecider<CourseCommand, CourseEvent, CourseState, CourseError, never> = {
  codec: CourseEvents,
  model: (command) => courseModel(command.courseId),
  streamId: (command) => courseStream(command.courseId),
  retry: retrySchedule,
  decide: (command, course) =>
    Effect.gen(function*() {
      yield* requireLimit("capacity", command.capacity)
      switch (command._tag) {
        case "DefineCourse": {
          if (course.defined) return yield* new CourseAlreadyExists({ courseId: command.courseId })
          return [CourseDefined.make({ courseId: command.courseId, capacity: command.capacity })]
        }
        case "ChangeCourseCapacity": {
          if (!course.defined) return yield* new CourseNotFound({ courseId: command.courseId })
          if (command.capacity === course.capacity) return []
          if (command.capacity < course.students.length) {
            return yield* new CapacityBelowSubscriptions({
              courseId: command.courseId,
              capacity: command.capacity,
              subscribed: course.students.length
            })
          }
          return [CourseCapacityChanged.make({ courseId: command.courseId, capacity: command.capacity })]
        }
      }
    })
}

/** Registers students, each with the most courses they may take at once. */
export const Students: DecisionHandler.DecisionDecider<StudentCommand, CourseEvent, StudentState, StudentError, never> = {
  codec: CourseEvents,
  model: (command) => studentModel(command.studentId),
  streamId: (command) => studentStream(command.studentId),
  retry: retrySchedule,
  decide: (command, student) =>
    Effect.gen(function*() {
      yield* requireLimit("maxCourses", command.maxCourses)
      if (student.registered) return yield* new StudentAlreadyRegistered({ studentId: command.studentId })
      return [StudentRegistered.make({ studentId: command.studentId, maxCourses: command.maxCourses })]
    })
}

/**
 * Subscribes students to courses and unsubscribes them. A subscription reads
 * both the course and the student, so its conditional append fails (and the
 * decision runs again) when anything about either changed meanwhile: two
 * students racing for a course's last seat, or one student racing for a
 * seat in two courses, never both win.
 */
export const Subscriptions: DecisionHandler.DecisionDecider<
  SubscriptionCommand,
  CourseEvent,
  SubscriptionState,
  SubscriptionError,
  never
> = {
  codec: CourseEvents,
  model: (command) => subscriptionModel(command.courseId, command.studentId),
  streamId: (command) => subscriptionStream(command.courseId, command.studentId),
  retry: retrySchedule,
  decide: ({ _tag, courseId, studentId }, { course, student }) =>
    Effect.gen(function*() {
      if (!course.defined) return yield* new CourseNotFound({ courseId })
      if (!student.registered) return yield* new StudentNotFound({ studentId })
      const subscribed = course.students.includes(studentId)
      switch (_tag) {
        case "SubscribeStudentToCourse": {
          if (subscribed) return yield* new AlreadySubscribed({ courseId, studentId })
          if (course.students.length >= course.capacity) {
            return yield* new CourseFull({ courseId, capacity: course.capacity })
          }
          if (student.courses.length >= student.maxCourses) {
            return yield* new StudentTooManyCourses({ studentId, maxCourses: student.maxCourses })
          }
          return [StudentSubscribedToCourse.make({ courseId, studentId })]
        }
        case "UnsubscribeStudentFromCourse": {
          if (!subscribed) return yield* new NotSubscribed({ courseId, studentId })
          return [StudentUnsubscribedFromCourse.make({ courseId, studentId })]
        }
      }
    })
}

// handlers --------------------------------------------------------------------

/** Runs course commands against the EventStore in context. */
export const courses = DecisionHandler.make(Courses)
/** Runs student commands against the EventStore in context. */
export const students = DecisionHandler.make(Students)
/** Runs subscription commands against the EventStore in context. */
export const subscriptions = DecisionHandler.make(Subscriptions)
