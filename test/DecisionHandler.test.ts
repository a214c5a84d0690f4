import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Schedule, Schema, Stream, TestClock } from "effect"
import { DecisionHandler, DecisionModel, EventCodec, EventStore, MemoryEventStore, Query, StreamId } from "chronicle"
import { DecisionSpec } from "chronicle/testing"

// a tiny DCB domain: seats of an event, booked by people, each person at most one seat per event
const SeatsOffered = Schema.TaggedStruct("SeatsOffered", { show: Schema.String, seats: Schema.Int })
const SeatBooked = Schema.TaggedStruct("SeatBooked", { show: Schema.String, person: Schema.String })
const Event = Schema.Union(SeatsOffered, SeatBooked)
type Event = typeof Event.Type
const codec = EventCodec.make(Event, {
  tags: (event) => event._tag === "SeatBooked" ? [`show:${event.show}`, `person:${event.person}`] : [`show:${event.show}`]
})

class SoldOut extends Schema.TaggedError<SoldOut>()("SoldOut", { show: Schema.String }) {}
class AlreadyBooked extends Schema.TaggedError<AlreadyBooked>()("AlreadyBooked", { person: Schema.String }) {}
class NoSuchShow extends Schema.TaggedError<NoSuchShow>()("NoSuchShow", { show: Schema.String }) {}

type Book = { readonly show: string; readonly person: string }

const showModel = (show: string) =>
  DecisionModel.make({
    query: Query.tagged(`show:${show}`),
    initialState: { offered: 0, booked: 0 },
    evolve: (state, event: { readonly data: Event }) =>
      event.data._tag === "SeatsOffered"
        ? { ...state, offered: state.offered + event.data.seats }
        : { ...state, booked: state.booked + 1 }
  })

const personModel = (show: string, person: string) =>
  DecisionModel.make({
    query: Query.make(Query.item(["SeatBooked"], [`show:${show}`, `person:${person}`])),
    initialState: false,
    evolve: () => true
  })

let decisions = 0
const Booking: DecisionHandler.DecisionDecider<Book, Event, { readonly show: { offered: number; booked: number }; readonly person: boolean }, SoldOut | AlreadyBooked | NoSuchShow, never> = {
  codec,
  model: (command) => DecisionModel.combine({ show: showModel(command.show), person: personModel(command.show, command.person) }),
  decide: (command, state) =>
    Effect.suspend((): Effect.Effect<ReadonlyArray<Event>, SoldOut | AlreadyBooked | NoSuchShow> => {
      decisions++
      if (state.show.offered === 0) return Effect.fail(new NoSuchShow({ show: command.show }))
      if (state.person) return Effect.fail(new AlreadyBooked({ person: command.person }))
      if (state.show.booked >= state.show.offered) return Effect.fail(new SoldOut({ show: command.show }))
      return Effect.succeed([SeatBooked.make({ show: command.show, person: command.person })])
    }),
  streamId: (command) => StreamId.unsafeMake("booking", `${command.show}-${command.person}`),
  retry: Schedule.recurs(20)
}

const spec = DecisionSpec.make(Booking)
const offered = (seats: number) => SeatsOffered.make({ show: "s1", seats })
const booked = (person: string) => SeatBooked.make({ show: "s1", person })

describe("DecisionSpec", () => {
  it.effect("given seats, when someone books, then a seat is booked", () =>
    spec.given([offered(2), booked("ada")]).when({ show: "s1", person: "bob" }).then([booked("bob")]))

  it.effect("given a full show, when someone else books, then it is sold out", () =>
    spec.given([offered(1), booked("ada")]).when({ show: "s1", person: "bob" }).then(new SoldOut({ show: "s1" })))

  it.effect("one person, one seat", () =>
    spec.given([offered(5), booked("ada")]).when({ show: "s1", person: "ada" }).thenFails((e) => e._tag === "AlreadyBooked"))

  it.effect("another show's bookings do not count", () =>
    spec.given([offered(1), SeatBooked.make({ show: "s2", person: "x" })]).when({ show: "s1", person: "ada" }).then([booked("ada")]))

  it.effect("an unknown show", () =>
    spec.given([]).when({ show: "s1", person: "ada" }).then(new NoSuchShow({ show: "s1" })))

  it.effect("a wrong expectation fails the spec", () =>
    spec.given([offered(1)]).when({ show: "s1", person: "ada" }).then([]).pipe(
      Effect.exit,
      Effect.map((exit) => expect(exit._tag).toBe("Failure"))
    ))
})

describe("DecisionHandler", () => {
  const handler = DecisionHandler.make(Booking)
  const store = MemoryEventStore.layer()

  it.effect("appends the decided events tagged, with the state after them", () =>
    Effect.gen(function*() {
      yield* EventStore.append(StreamId.unsafeMake("show", "s1"), [Either.getOrThrow(codec.encode(offered(3)))], { expectedVersion: "NoStream" })
      const result = yield* handler.handle({ show: "s1", person: "ada" }, { metadata: { correlationId: "req-1" } })
      expect(result.events).toEqual([booked("ada")])
      expect(result.state).toEqual({ show: { offered: 3, booked: 1 }, person: true })
      expect(result.attempts).toBe(1)
      const [stored] = yield* EventStore.query(Query.tagged("person:ada")).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      expect(stored!.tags).toEqual(["show:s1", "person:ada"])
      expect(stored!.metadata).toEqual({ correlationId: "req-1" })
      const loaded = yield* handler.load({ show: "s1", person: "bob" })
      expect(loaded.state.show).toEqual({ offered: 3, booked: 1 })
      expect(loaded.position).toBe(stored!.globalPosition)
    }).pipe(Effect.provide(store)))

  it.effect("given the Clock at 1 hour, when a decision appends, then the state after it sees the event recorded when the store recorded it", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(3_600_000)
      const lastRecorded = DecisionHandler.make<Book, Event, Date | undefined, never, never>({
        codec,
        model: (command) =>
          DecisionModel.make({
            query: Query.tagged(`person:${command.person}`),
            initialState: undefined as Date | undefined,
            evolve: (_, event: { readonly recordedAt: Date }) => event.recordedAt
          }),
        decide: (command) => Effect.succeed([SeatBooked.make({ show: command.show, person: command.person })]),
        streamId: (command) => StreamId.unsafeMake("booking", `${command.show}-${command.person}`)
      })
      const result = yield* lastRecorded.handle({ show: "s7", person: "cy" })
      const [stored] = yield* EventStore.query(Query.tagged("person:cy")).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      expect(stored!.recordedAt).toEqual(new Date(3_600_000))
      expect(result.state).toEqual(stored!.recordedAt)
    }).pipe(Effect.provide(store)))

  it.live("racing bookers: the show never oversells; the losers re-read and decide again", () =>
    Effect.gen(function*() {
      yield* EventStore.append(StreamId.unsafeMake("show", "s1"), [Either.getOrThrow(codec.encode(offered(4)))], { expectedVersion: "NoStream" })
      decisions = 0
      const outcomes = yield* Effect.all(
        Array.from({ length: 12 }, (_, i) => Effect.either(handler.handle({ show: "s1", person: `p${i}` }))),
        { concurrency: "unbounded" }
      )
      expect(outcomes.filter(Either.isRight).length).toBe(4)
      expect(outcomes.filter(Either.isLeft).every((o) => o.left._tag === "SoldOut")).toBe(true)
      const seats = yield* EventStore.query(Query.make(Query.item(["SeatBooked"], ["show:s1"]))).pipe(Stream.runCollect)
      expect(seats.length).toBe(4)
      expect(decisions).toBeGreaterThanOrEqual(12)
    }).pipe(Effect.provide(store)))

  it.live("a condition that keeps failing gives up with ConditionRetriesExhausted; domain errors are never retried", () =>
    Effect.gen(function*() {
      const interfering = DecisionHandler.make({
        ...Booking,
        retry: Schedule.recurs(2),
        // every decision is overtaken by another booking of the same show before it appends
        decide: (command, state) =>
          Effect.zipRight(
            EventStore.append(StreamId.unsafeMake("noise", "n"), [Either.getOrThrow(codec.encode(SeatsOffered.make({ show: command.show, seats: 1 })))], {
              expectedVersion: "Any"
            }).pipe(Effect.orDie),
            Booking.decide(command, state)
          )
      })
      yield* EventStore.append(StreamId.unsafeMake("show", "s9"), [Either.getOrThrow(codec.encode(SeatsOffered.make({ show: "s9", seats: 1 })))], {
        expectedVersion: "NoStream"
      })
      const error = yield* Effect.flip(interfering.handle({ show: "s9", person: "ada" }))
      expect(error._tag).toBe("ConditionRetriesExhausted")
      if (error._tag === "ConditionRetriesExhausted") {
        expect(error.attempts).toBe(3)
        expect(error.lastFailure._tag).toBe("AppendConditionFailed")
      }
      decisions = 0
      const domain = yield* Effect.flip(handler.handle({ show: "none", person: "ada" }))
      expect(domain._tag).toBe("NoSuchShow")
      expect(decisions).toBe(1)
    }).pipe(Effect.provide(store)))

  it("combine folds each event only into the models whose query it matches", () => {
    const model = DecisionModel.combine({ show: showModel("s1"), person: personModel("s1", "ada") })
    expect(Query.format(model.query)).toBe("(tags: show:s1) or (types: SeatBooked; tags: show:s1, person:ada)")
    const envelope = (data: Event, tags: ReadonlyArray<string>) => ({
      eventId: "0190a6c1-0000-7000-8000-000000000001" as never,
      type: data._tag,
      streamId: StreamId.unsafeMake("x", "y"),
      streamVersion: 1,
      globalPosition: 1n,
      recordedAt: new Date(0),
      schemaVersion: 1,
      data,
      metadata: {},
      tags
    })
    const state = DecisionModel.fold(model, [
      envelope(offered(2), ["show:s1"]),
      envelope(booked("bob"), ["show:s1", "person:bob"]),
      envelope(booked("ada"), ["show:s1", "person:ada"]),
      envelope(SeatBooked.make({ show: "s2", person: "ada" }), ["show:s2", "person:ada"])
    ])
    expect(state).toEqual({ show: { offered: 2, booked: 2 }, person: true })
  })
})

