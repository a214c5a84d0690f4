/**
 * The read-side contract: subscriptions, checkpoints and the projection
 * runner, over every store. A store's test file calls
 * `subscriptionContract(name, layer)` with its EventStore and CheckpointStore.
 * Each test starts after the log's current head, so tests of one file can
 * share the store.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Cause, Chunk, Deferred, Effect, Exit, Fiber, Layer, Option, Ref, Runtime, Schedule, Stream } from "effect"
import * as fc from "fast-check"
import type { Event } from "chronicle"
import { CheckpointStore, EventStore, Projection, ProjectionRunner, StreamId, Subscription } from "chronicle"
import { pause } from "../support/time.js"
import { events, freshStream, newEvent } from "./EventStoreContract.js"

type Stored = Event.StoredEvent

let names = 0
const freshName = (label: string) => `${label}-${process.pid}-${Date.now()}-${++names}`

/** Takes `count` events from a subscription, failing after 20 s rather than hanging. */
const take = <R>(stream: Stream.Stream<Stored, EventStore.ReadError, R>, count: number) =>
  stream.pipe(
    Stream.take(count),
    Stream.runCollect,
    Effect.map(Chunk.toReadonlyArray),
    Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error(`timed out waiting for ${count} events`) })
  )

const expectStrictlyIncreasing = (log: ReadonlyArray<Stored>) => {
  for (let i = 1; i < log.length; i++) expect(log[i]!.globalPosition > log[i - 1]!.globalPosition).toBe(true)
}

/** Waits (in real time) until `check` holds, up to 20 s. */
const eventually = <E, R>(check: Effect.Effect<boolean, E, R>) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 1000; attempt++) {
      if (yield* check) return
      yield* pause(20)
    }
    return yield* Effect.die(new Error("condition never held"))
  })

/**
 * Waits until global readers see the log up to `position`. A store may show
 * an event to them only once every transaction that began before it has ended
 * (PostgreSQL, other sessions' transactions included); a catch-up stops at
 * what readers see, so a test waits for its own events before catching up.
 */
const visibleUpTo = (position: bigint) =>
  eventually(Effect.map(EventStore.readAll({ fromPosition: position, limit: 1 }).pipe(Stream.runCollect), Chunk.isNonEmpty))

/** A projection recording what it handled, by category of stream. */
/** FNV-1a, 32 bits, of a text's UTF-8 bytes: an independent reference for `StreamId.partitionOf`. */
const fnv1a = (text: string): number => {
  let hash = 0x811c9dc5n
  for (const byte of Buffer.from(text, "utf8")) hash = ((hash ^ BigInt(byte)) * 0x01000193n) % 2n ** 32n
  return Number(hash)
}

const recorder = (name: string, category: string, options: { readonly failOn?: (event: Stored) => boolean } = {}) =>
  Effect.map(Ref.make<ReadonlyArray<Stored>>([]), (seen) => ({
    seen,
    projection: Projection.make({
      name,
      handle: (event: Stored) =>
        StreamId.category(event.streamId) !== category
          ? Effect.void
          : options.failOn?.(event) === true
          ? Effect.fail(new Error(`refusing ${event.type} at ${event.globalPosition}`))
          : Ref.update(seen, (all) => [...all, event])
    })
  }))

/**
 * A fresh category with one busy stream, and the member of two whose
 * partition gets none of its events; `start` is the log's head before them.
 */
const idleMember = (label: string) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const category = `${label}${names++}x${process.pid}`
    const name = freshName(label)
    const busy = StreamId.unsafeMake(category, "busy")
    const member = 1 - StreamId.partitionOf(busy, 2)
    const start = yield* store.headPosition
    return { store, category, name, busy, member, start }
  })

export const subscriptionContract = <E>(
  name: string,
  storeLayer: Layer.Layer<EventStore.EventStore | CheckpointStore.CheckpointStore, E>
) =>
  layer(storeLayer, { timeout: "90 seconds", excludeTestServices: true })(`Subscription contract: ${name}`, (it) => {
    describe("subscribe", () => {
      it.effect("delivers the events after the start in global order, then new events live", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const start = yield* store.headPosition
          const streamId = freshStream("sub")
          const before = events(3)
          yield* store.append(streamId, before, { expectedVersion: "NoStream" })
          const delivered = yield* Ref.make(0)
          const reader = yield* Effect.fork(take(store.subscribe({ after: start }).pipe(Stream.tap(() => Ref.update(delivered, (n) => n + 1))), 5))
          // the first three delivered, the reader is live: the next two come to it as new events
          yield* eventually(Effect.map(Ref.get(delivered), (n) => n >= 3))
          const after = events(2)
          yield* store.append(streamId, after, { expectedVersion: 3 })
          const seen = yield* Fiber.join(reader)
          expect(seen.map((e) => e.eventId)).toEqual([...before, ...after].map((e) => e.eventId))
          expect(seen.map((e) => e.streamVersion)).toEqual([1, 2, 3, 4, 5])
          expectStrictlyIncreasing(seen)
        }))

      it.effect("starts after the given position, and a subscriber of an idle log just waits", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const streamId = freshStream("sub")
          const { globalPositions } = yield* store.append(streamId, events(4), { expectedVersion: "NoStream" })
          const tail = yield* take(store.subscribe({ after: globalPositions[1]! }), 2)
          expect(tail.map((e) => e.streamVersion)).toEqual([3, 4])
          const idle = yield* store.subscribe({ after: globalPositions[3]! }).pipe(
            Stream.take(1),
            Stream.runCollect,
            Effect.timeoutOption("300 millis")
          )
          expect(Option.isNone(idle)).toBe(true)
        }))

      it.effect("headPosition is the position of the last event", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const { globalPositions } = yield* store.append(freshStream("sub"), events(2), { expectedVersion: "NoStream" })
          yield* eventually(Effect.map(store.headPosition, (head) => head === globalPositions[1]))
        }))

      it.effect("rejects a negative start or an empty chunk size with a typed error", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const negative = yield* Effect.flip(Stream.runDrain(store.subscribe({ after: -1n })))
          expect(negative).toMatchObject({ _tag: "InvalidArgument", operation: "subscribe", argument: "after" })
          const empty = yield* Effect.flip(Stream.runDrain(store.subscribe({ chunkSize: 0 })))
          expect(empty).toMatchObject({ _tag: "InvalidArgument", operation: "subscribe", argument: "chunkSize" })
        }))

      it.effect("concurrent writers: a live subscriber sees every event exactly once, in global order (property)", () =>
        Effect.gen(function*() {
          const runtime = yield* Effect.runtime<EventStore.EventStore>()
          yield* Effect.promise(() =>
            fc.assert(
              fc.asyncProperty(
                fc.integer({ min: 2, max: 8 }),
                fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 3, maxLength: 12 }),
                (writers, batches) =>
                  Runtime.runPromise(runtime)(Effect.gen(function*() {
                    const store = yield* EventStore.EventStore
                    const start = yield* store.headPosition
                    const total = writers * batches.reduce((a, b) => a + b, 0)
                    const subscriber = yield* Effect.fork(take(store.subscribe({ after: start, chunkSize: 7 }), total))
                    const written: Array<string> = []
                    yield* Effect.forEach(
                      Array.from({ length: writers }, (_, w) => w),
                      (w) =>
                        Effect.forEach(batches, (size, i) => {
                          const batch = events(size)
                          batch.forEach((e) => written.push(e.eventId!))
                          return store.append(StreamId.unsafeMake("fanin", `${start}-w${w}-s${i % 2}`), batch, { expectedVersion: "Any" })
                        }, { discard: true }),
                      { concurrency: "unbounded", discard: true }
                    )
                    const seen = yield* Fiber.join(subscriber)
                    const ids = seen.map((e) => e.eventId as string)
                    expect(new Set(ids).size).toBe(ids.length)
                    expect([...ids].sort()).toEqual([...written].sort())
                    expectStrictlyIncreasing(seen)
                  }))
              ),
              { numRuns: 8 }
            )
          )
        }))
    })

    describe("filtered", () => {
      it.effect("given a filter by category and type, when subscribing, then only those events come, in order, live too", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const tag = `f${names++}x${process.pid}`
          const [orders, invoices] = [`ord${tag}`, `inv${tag}`]
          const start = yield* store.headPosition
          yield* store.append(StreamId.unsafeMake(orders, "1"), [newEvent("Placed"), newEvent("Paid")], { expectedVersion: "NoStream" })
          yield* store.append(StreamId.unsafeMake(invoices, "1"), [newEvent("Issued"), newEvent("Paid")], { expectedVersion: "NoStream" })
          const seen = yield* Effect.fork(take(store.subscribe({ after: start, filter: { categories: [invoices, orders], types: ["Paid"] }, chunkSize: 1 }), 3))
          yield* store.append(StreamId.unsafeMake(orders, "2"), [newEvent("Placed"), newEvent("Paid")], { expectedVersion: "NoStream" })
          const got = yield* Fiber.join(seen)
          expect(got.map((e) => `${StreamId.category(e.streamId).slice(0, 3)}:${String(e.streamId).slice(-1)}:${e.type}`)).toEqual([
            "ord:1:Paid",
            "inv:1:Paid",
            "ord:2:Paid"
          ])
          expect((yield* Effect.flip(Stream.runDrain(store.subscribe({ filter: { types: [] } }))))._tag).toBe("InvalidArgument")
        }))
    })

    describe("checkpoints", () => {
      it.effect("load is empty until saved; save overwrites; remove forgets", () =>
        Effect.gen(function*() {
          const checkpoints = yield* CheckpointStore.CheckpointStore
          const name = freshName("ck/ünïcode and spaces")
          expect(Option.isNone(yield* checkpoints.load(name))).toBe(true)
          yield* checkpoints.save(name, 41n)
          yield* checkpoints.save(name, 9_007_199_254_740_993n)
          expect(yield* checkpoints.load(name)).toEqual(Option.some(9_007_199_254_740_993n))
          yield* checkpoints.remove(name)
          expect(Option.isNone(yield* checkpoints.load(name))).toBe(true)
          yield* checkpoints.remove(name)
        }))

      it.effect("compareAndSet moves a checkpoint only from where it is: a stale or absent expectation is CheckpointMoved and saves nothing", () =>
        Effect.gen(function*() {
          const checkpoints = yield* CheckpointStore.CheckpointStore
          const name = freshName("cas")
          const moved = (expected: Option.Option<bigint>, next: bigint) => Effect.flip(checkpoints.compareAndSet(name, { expected, next }))

          yield* checkpoints.compareAndSet(name, { expected: Option.none(), next: 10n })
          expect(yield* checkpoints.load(name)).toEqual(Option.some(10n))
          const twice = yield* moved(Option.none(), 11n)
          expect(twice).toMatchObject({ _tag: "CheckpointMoved", name, expected: null, actual: 10n })
          const stale = yield* moved(Option.some(9n), 12n)
          expect(stale).toMatchObject({ _tag: "CheckpointMoved", expected: 9n, actual: 10n })
          expect(stale.message).toMatch(/moved: expected 9, found 10/)
          yield* checkpoints.compareAndSet(name, { expected: Option.some(10n), next: 20n })
          expect(yield* checkpoints.load(name)).toEqual(Option.some(20n))

          // a removal (a rebuild) moves it too: a runner that still expects its old position stops
          yield* checkpoints.remove(name)
          expect(yield* moved(Option.some(20n), 21n)).toMatchObject({ expected: 20n, actual: null })
          yield* checkpoints.compareAndSet(name, { expected: Option.none(), next: 1n })
          yield* checkpoints.save(name, 5n)
          expect(yield* moved(Option.some(1n), 2n)).toMatchObject({ actual: 5n })
          expect(yield* checkpoints.load(name)).toEqual(Option.some(5n))
          expect((yield* Effect.flip(checkpoints.compareAndSet(name, { expected: Option.some(-1n), next: 2n })))._tag).toBe("StoreError")
        }))

      it.effect("given 8 fibers racing compareAndSet on one checkpoint, then no two succeed from the same position and the successes form one chain", () =>
        Effect.gen(function*() {
          const checkpoints = yield* CheckpointStore.CheckpointStore
          const name = freshName("cas-race")
          const successes: Array<bigint> = []
          yield* Effect.forEach(Array.from({ length: 8 }), () =>
            Effect.forEach(Array.from({ length: 25 }), () =>
              Effect.gen(function*() {
                const expected = yield* checkpoints.load(name)
                const next = Option.getOrElse(expected, () => 0n) + 1n
                const outcome = yield* Effect.either(checkpoints.compareAndSet(name, { expected, next }))
                if (outcome._tag === "Right") successes.push(next)
                else expect(outcome.left._tag).toBe("CheckpointMoved")
              }), { discard: true }), { concurrency: "unbounded", discard: true })
          const final = Option.getOrThrow(yield* checkpoints.load(name))
          // each success moved it by one from where it was: n successes are exactly the positions 1..n
          expect([...successes].sort((a, b) => (a < b ? -1 : 1))).toEqual(Array.from({ length: Number(final) }, (_, i) => BigInt(i + 1)))
        }))

      it.effect("given two runners of one projection, when the second saves first, then the first stops with CheckpointMoved instead of applying events twice", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const category = `two${names++}`
          const name = freshName("two-runners")
          const start = yield* store.headPosition
          const { globalPositions } = yield* store.append(StreamId.unsafeMake(category, "a"), events(3), { expectedVersion: "NoStream" })
          yield* visibleUpTo(globalPositions[2]!)
          const entered = yield* Deferred.make<void>()
          const release = yield* Deferred.make<void>()
          let handledBySlow = 0
          const slow = Projection.make({
            name,
            handle: (event: Stored) =>
              StreamId.category(event.streamId) !== category
                ? Effect.void
                : Effect.zipRight(Effect.zipRight(Deferred.succeed(entered, undefined), Deferred.await(release)), Effect.sync(() => void handledBySlow++))
          })
          const { seen, projection: fast } = yield* recorder(name, category)
          const first = yield* Effect.fork(ProjectionRunner.catchUp(slow, { from: { after: start } }))
          yield* Deferred.await(entered)
          const reached = yield* ProjectionRunner.catchUp(fast, { from: { after: start } })
          expect((yield* Ref.get(seen)).length).toBe(3)
          yield* Deferred.succeed(release, undefined)
          const stopped = yield* Effect.flip(Fiber.join(first))
          expect(stopped).toMatchObject({ _tag: "CheckpointMoved", name, expected: null, actual: reached })
          expect(yield* CheckpointStore.load(name)).toEqual(Option.some(reached))
        }))

      it.effect("an empty name or a negative position is a typed error", () =>
        Effect.gen(function*() {
          const checkpoints = yield* CheckpointStore.CheckpointStore
          expect((yield* Effect.flip(checkpoints.save("", 1n)))._tag).toBe("StoreError")
          expect((yield* Effect.flip(checkpoints.save("x", -1n))).reason).toMatch(/>= 0/)
        }))

      it.effect("a named subscription resumes after its checkpoint; from end skips the past", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const name = freshName("resume")
          const streamId = freshStream("sub")
          const { globalPositions } = yield* store.append(streamId, events(3), { expectedVersion: "NoStream" })
          yield* CheckpointStore.save(name, globalPositions[0]!)
          const resumed = yield* take(Subscription.subscribe({ name }), 2)
          expect(resumed.map((e) => e.streamVersion)).toEqual([2, 3])
          const fromEnd = yield* Effect.fork(take(Subscription.subscribe({ name: freshName("end"), from: "end" }), 1))
          // when the subscription takes its end is not observable: append "Later" events until it has one
          yield* eventually(Effect.gen(function*() {
            yield* store.append(streamId, [newEvent("Later")], { expectedVersion: "Any" })
            return fromEnd.unsafePoll() !== null
          }))
          // it skipped the past: the first event it saw is one written after it started
          expect((yield* Fiber.join(fromEnd)).map((e) => e.type)).toEqual(["Later"])
        }))
    })

    describe("projection versions and blue-green rebuilds", () => {
      /** A read model of one category's event positions, with a reset that empties it and counts. */
      const model = (name: string, category: string, version?: number) =>
        Effect.map(Ref.make({ positions: [] as ReadonlyArray<bigint>, resets: 0 }), (state) => ({
          state,
          projection: Projection.make({
            name,
            version,
            handle: (event: Stored) =>
              StreamId.category(event.streamId) !== category
                ? Effect.void
                : Ref.update(state, (s) => ({ ...s, positions: [...s.positions, event.globalPosition] })),
            reset: Ref.update(state, (s) => ({ positions: [], resets: s.resets + 1 }))
          })
        }))

      it.effect("given a projection caught up at version 1, when it runs at version 2, then it empties its read model and replays from the start under its own checkpoint", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const category = `ver${names++}`
          const name = freshName("versioned")
          const { globalPositions } = yield* store.append(StreamId.unsafeMake(category, "a"), events(3), { expectedVersion: "NoStream" })
          yield* visibleUpTo(globalPositions[2]!)
          const { projection: v1, state } = yield* model(name, category)
          yield* ProjectionRunner.catchUp(v1)
          expect(yield* Ref.get(state)).toEqual({ positions: globalPositions, resets: 1 })
          yield* ProjectionRunner.catchUp(v1)
          expect((yield* Ref.get(state)).resets).toBe(1)

          const v2 = { ...v1, version: 2 }
          expect(Projection.checkpointName(v2)).toBe(`${name}@v2`)
          const reached = yield* ProjectionRunner.catchUp(v2)
          expect(yield* Ref.get(state)).toEqual({ positions: globalPositions, resets: 2 })
          expect(yield* CheckpointStore.load(`${name}@v2`)).toEqual(Option.some(reached))
          expect(Option.isSome(yield* CheckpointStore.load(name))).toBe(true)
        }))

      it.effect("replace: the new version fills its own read model while the old one serves, then swap, then the old one is dropped", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const category = `bg${names++}`
          const name = freshName("blue-green")
          const streamId = StreamId.unsafeMake(category, "a")
          const first = yield* store.append(streamId, events(2), { expectedVersion: "NoStream" })
          yield* visibleUpTo(first.globalPositions[1]!)
          const blue = yield* model(name, category)
          const green = yield* model(name, category, 2)
          yield* ProjectionRunner.catchUp(blue.projection)
          const more = yield* store.append(streamId, events(2), { expectedVersion: 2 })
          yield* visibleUpTo(more.globalPositions[1]!)
          const serving = yield* Ref.make("blue")
          const reached = yield* ProjectionRunner.replace(blue.projection, green.projection, {
            swap: Effect.gen(function*() {
              // at the swap, green holds everything and blue still serves what it had
              expect((yield* Ref.get(green.state)).positions).toEqual([...first.globalPositions, ...more.globalPositions])
              expect((yield* Ref.get(blue.state)).positions).toEqual(first.globalPositions)
              yield* Ref.set(serving, "green")
            }),
            dropOld: true
          })
          expect(yield* Ref.get(serving)).toBe("green")
          expect(yield* Ref.get(blue.state)).toEqual({ positions: [], resets: 2 })
          expect(Option.isNone(yield* CheckpointStore.load(name))).toBe(true)
          expect(yield* CheckpointStore.load(`${name}@v2`)).toEqual(Option.some(reached))
          const same = yield* Effect.exit(ProjectionRunner.replace(blue.projection, { ...blue.projection }, { swap: Effect.void }))
          expect(Exit.isFailure(same) && String(Cause.squash(same.cause))).toMatch(/another version/)
        }))
    })

    describe("partitioned runners (member i of n)", () => {
      it.effect("given 3 members over 24 streams, then each event is handled by exactly one member, each stream by one member, each member in global order", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const category = `part${names++}`
          const name = freshName("partitioned")
          const start = yield* store.headPosition
          const streams = Array.from({ length: 24 }, (_, i) => StreamId.unsafeMake(category, `s${i}`))
          let last = 0n
          for (const round of [0, 1]) {
            for (const streamId of streams) {
              const { globalPositions } = yield* store.append(streamId, events(2), { expectedVersion: round * 2 })
              last = globalPositions[1]!
            }
          }
          yield* visibleUpTo(last)
          const members = yield* Effect.forEach([0, 1, 2], (member) =>
            Effect.map(recorder(name, category), ({ projection, seen }) => ({ member, projection, seen })))
          yield* Effect.forEach(members, ({ member, projection }) =>
            ProjectionRunner.catchUp(projection, { from: { after: start }, batchSize: 7, partition: { member, of: 3 } }), { concurrency: "unbounded" })
          const handled = yield* Effect.forEach(members, ({ seen }) => Ref.get(seen))
          const all = handled.flat()
          expect(all.length).toBe(96)
          expect(new Set(all.map((e) => e.eventId)).size).toBe(96)
          for (const [member, events] of handled.entries()) {
            expect(events.length).toBeGreaterThan(0)
            expectStrictlyIncreasing(events)
            for (const event of events) expect(StreamId.partitionOf(event.streamId, 3)).toBe(member)
            expect(yield* CheckpointStore.load(`${name}#${member}/3`)).toEqual(Option.some(yield* store.headPosition))
          }
          expect(Option.isNone(yield* CheckpointStore.load(name))).toBe(true)
          const bad = yield* Effect.flip(ProjectionRunner.catchUp(members[0]!.projection, { partition: { member: 3, of: 3 } }))
          expect(bad).toMatchObject({ _tag: "InvalidArgument", argument: "partition" })
        }))

      it.effect("given a member whose partition gets no events, then its checkpoint keeps moving on over the others' events, live", () =>
        Effect.gen(function*() {
          const { busy, category, member, name, start, store } = yield* idleMember("idle")
          const { projection, seen } = yield* recorder(name, category)
          yield* ProjectionRunner.start(projection, { from: { after: start }, batchSize: 5, partition: { member, of: 2 }, pollInterval: "50 millis" })
          const { globalPositions } = yield* store.append(busy, events(3), { expectedVersion: "NoStream" })
          // the others' events keep coming: the idle member notes that it moved past them (now and then, not per read)
          yield* eventually(Effect.gen(function*() {
            yield* store.append(busy, events(1), { expectedVersion: "Any" })
            const saved = yield* CheckpointStore.load(`${name}#${member}/2`)
            return Option.isSome(saved) && saved.value >= globalPositions[2]!
          }))
          expect(yield* Ref.get(seen)).toEqual([])
        }).pipe(Effect.scoped))

      it.effect("given a member whose partition has no events, when it catches up, then its checkpoint is the end of the log", () =>
        Effect.gen(function*() {
          const { busy, category, member, name, start, store } = yield* idleMember("idlecu")
          const { globalPositions } = yield* store.append(busy, events(12), { expectedVersion: "NoStream" })
          yield* visibleUpTo(globalPositions[11]!)
          const { projection, seen } = yield* recorder(name, category)
          const reached = yield* ProjectionRunner.catchUp(projection, { from: { after: start }, batchSize: 5, partition: { member, of: 2 } })
          expect(reached).toBeGreaterThanOrEqual(globalPositions[11]!)
          expect(yield* CheckpointStore.load(`${name}#${member}/2`)).toEqual(Option.some(reached))
          expect(yield* Ref.get(seen)).toEqual([])
        }))

      it.effect("given a partition filter, when subscribing, then only that partition's events come, in order, live too", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const category = `sp${names++}x${process.pid}`
          const streams = Array.from({ length: 8 }, (_, i) => StreamId.unsafeMake(category, `s${i}`))
          const member = StreamId.partitionOf(streams[0]!, 3)
          const mine = streams.filter((id) => StreamId.partitionOf(id, 3) === member)
          const start = yield* store.headPosition
          for (const id of streams) yield* store.append(id, events(1), { expectedVersion: "NoStream" })
          const got = yield* Effect.fork(take(store.subscribe({ after: start, chunkSize: 2, filter: { categories: [category], partition: { member, of: 3 } } }), mine.length * 2))
          for (const id of streams) yield* store.append(id, events(1), { expectedVersion: 1 })
          const seen = yield* Fiber.join(got)
          expect(seen.map((e) => `${e.streamId}@${e.streamVersion}`)).toEqual([...mine.map((id) => `${id}@1`), ...mine.map((id) => `${id}@2`)])
        }))

      it.effect("partitionOf is stable: FNV-1a of the id's UTF-8 bytes, spread over the partitions", () =>
        Effect.sync(() => {
        expect(fnv1a("a")).toBe(0xe40c292c)
        expect(StreamId.partitionOf(StreamId.unsafeMake("ü", "1"), 2 ** 31)).toBe(fnv1a("ü-1") % 2 ** 31)
        expect(StreamId.partitionOf(StreamId.unsafeMake("account", "1"), 1)).toBe(0)
        expect([0, 1, 2, 3].map((i) => StreamId.partitionOf(StreamId.unsafeMake("account", String(i)), 1 << 30))).toEqual(
          [0, 1, 2, 3].map((i) => fnv1a(`account-${i}`) % (1 << 30))
        )
        const counts = [0, 0, 0, 0]
        for (let i = 0; i < 4000; i++) counts[StreamId.partitionOf(StreamId.unsafeMake("order", String(i)), 4)]!++
        for (const count of counts) expect(count).toBeGreaterThan(800)
      }))
    })

    describe("projection runner", () => {
      it.effect("catchUp handles every event once, in order, and checkpoints the end", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const category = `cu${names++}`
          const { seen, projection } = yield* recorder(freshName("catchup"), category)
          const start = yield* store.headPosition
          const appended = yield* Effect.forEach([3, 1, 5], (n, i) => store.append(StreamId.unsafeMake(category, `s${i}`), events(n), { expectedVersion: "NoStream" }))
          yield* visibleUpTo(appended[2]!.globalPositions[4]!)
          const reached = yield* ProjectionRunner.catchUp(projection, { from: { after: start }, batchSize: 4 })
          expect((yield* Ref.get(seen)).length).toBe(9)
          expectStrictlyIncreasing(yield* Ref.get(seen))
          expect(reached).toBe(appended[2]!.globalPositions[4])
          expect(yield* CheckpointStore.load(projection.name)).toEqual(Option.some(reached))
          // nothing new: a second catch-up handles nothing
          yield* ProjectionRunner.catchUp(projection)
          expect((yield* Ref.get(seen)).length).toBe(9)
        }))

      it.effect("a running projection follows new events live; stopping and restarting resumes from its checkpoint", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const category = `live${names++}`
          const { seen, projection } = yield* recorder(freshName("live"), category)
          const start = yield* store.headPosition
          const streamId = StreamId.unsafeMake(category, "a")
          const first = yield* Effect.fork(Effect.scoped(Effect.zipRight(
            ProjectionRunner.start(projection, { from: { after: start } }),
            Effect.never
          )))
          yield* store.append(streamId, events(3), { expectedVersion: "NoStream" })
          yield* eventually(Effect.map(Ref.get(seen), (all) => all.length === 3))
          yield* Fiber.interrupt(first)
          yield* store.append(streamId, events(2), { expectedVersion: 3 })
          const second = yield* Effect.fork(ProjectionRunner.run(projection))
          yield* eventually(Effect.map(Ref.get(seen), (all) => all.length === 5))
          yield* Fiber.interrupt(second)
          expect((yield* Ref.get(seen)).map((e) => e.streamVersion)).toEqual([1, 2, 3, 4, 5])
        }))

      it.effect("a handler that keeps failing parks the projection at that event; fixed, it resumes there", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const category = `park${names++}`
          const failing = yield* Ref.make(true)
          const seen = yield* Ref.make<ReadonlyArray<Stored>>([])
          const projection = Projection.make({
            name: freshName("park"),
            handle: (event: Stored) =>
              Effect.gen(function*() {
                if (StreamId.category(event.streamId) !== category) return
                if (event.type === "Poison" && (yield* Ref.get(failing))) return yield* Effect.fail(new Error("poison"))
                yield* Ref.update(seen, (all) => [...all, event])
              })
          })
          const start = yield* store.headPosition
          const streamId = StreamId.unsafeMake(category, "p")
          const { globalPositions } = yield* store.append(
            streamId,
            [newEvent("Fine"), newEvent("Poison"), newEvent("Fine")],
            { expectedVersion: "NoStream" }
          )
          yield* visibleUpTo(globalPositions[2]!)
          const parked = yield* Effect.flip(ProjectionRunner.catchUp(projection, {
            from: { after: start },
            batchSize: 1,
            retry: Schedule.recurs(2)
          }))
          expect(parked._tag).toBe("ProjectionParked")
          if (parked._tag !== "ProjectionParked") return
          expect(parked.position).toBe(globalPositions[1])
          expect(parked.type).toBe("Poison")
          expect(parked.attempts).toBe(3)
          expect(yield* CheckpointStore.load(projection.name)).toEqual(Option.some(globalPositions[0]!))
          yield* Ref.set(failing, false)
          yield* ProjectionRunner.catchUp(projection)
          expect((yield* Ref.get(seen)).map((e) => e.type)).toEqual(["Fine", "Poison", "Fine"])
        }))

      it.effect("a flaky handler is retried and nothing is lost", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const category = `flaky${names++}`
          let failures = 2
          const seen = new Map<bigint, number>()
          const projection = Projection.make({
            name: freshName("flaky"),
            handle: (event: Stored) =>
              Effect.suspend(() => {
                if (StreamId.category(event.streamId) !== category) return Effect.void
                if (failures > 0) {
                  failures--
                  return Effect.fail(new Error("flaky"))
                }
                seen.set(event.globalPosition, (seen.get(event.globalPosition) ?? 0) + 1)
                return Effect.void
              })
          })
          const start = yield* store.headPosition
          const { globalPositions } = yield* store.append(StreamId.unsafeMake(category, "f"), events(5), { expectedVersion: "NoStream" })
          yield* visibleUpTo(globalPositions[4]!)
          yield* ProjectionRunner.catchUp(projection, { from: { after: start }, retry: Schedule.recurs(3) })
          expect(seen.size).toBe(5)
        }))

      it.effect("rebuild resets the read model (once) and replays the whole log", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const category = `rebuild${names++}`
          const seen = yield* Ref.make<ReadonlyArray<Stored>>([])
          let resets = 0
          const projection = Projection.make({
            name: freshName("rebuild"),
            eventTypes: ["Counted"],
            handle: (event: Stored) =>
              StreamId.category(event.streamId) === category ? Ref.update(seen, (all) => [...all, event]) : Effect.void,
            reset: Effect.zipRight(Effect.sync(() => resets++), Ref.set(seen, []))
          })
          const { globalPositions } = yield* store.append(StreamId.unsafeMake(category, "r"), [...events(4), newEvent("Ignored")], { expectedVersion: "NoStream" })
          yield* visibleUpTo(globalPositions[4]!)
          yield* ProjectionRunner.catchUp(projection)
          expect((yield* Ref.get(seen)).length).toBe(4)
          // a first run from the beginning starts from an empty read model too
          expect(resets).toBe(1)
          const reached = yield* ProjectionRunner.rebuild(projection)
          expect(resets).toBe(2)
          expect((yield* Ref.get(seen)).length).toBe(4)
          expect(reached).toBe(yield* store.headPosition)
        }))

      it.effect("stopping a projection lets the batch in hand finish and be checkpointed", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const category = `stop${names++}`
          const started = yield* Ref.make(0)
          const finished = yield* Ref.make(0)
          const projection = Projection.make({
            name: freshName("stop"),
            handle: (event: Stored) =>
              StreamId.category(event.streamId) !== category
                ? Effect.void
                : Effect.zipRight(Ref.update(started, (n) => n + 1), Effect.zipRight(pause(30), Ref.update(finished, (n) => n + 1)))
          })
          const start = yield* store.headPosition
          const { globalPositions } = yield* store.append(StreamId.unsafeMake(category, "s"), events(5), { expectedVersion: "NoStream" })
          const fiber = yield* Effect.fork(ProjectionRunner.run(projection, { from: { after: start }, batchSize: 5 }))
          yield* eventually(Effect.map(Ref.get(started), (n) => n >= 1))
          const exit = yield* Fiber.interrupt(fiber)
          expect(Exit.isInterrupted(exit)).toBe(true)
          expect(yield* Ref.get(finished)).toBe(5)
          expect(yield* CheckpointStore.load(projection.name)).toEqual(Option.some(globalPositions[4]!))
        }))
    })
  })
