/**
 * Erasure on the filesystem store leaves none of the stream's bytes behind,
 * also where readers never look: void bytes (a stalled holder's fenced-off
 * append, a torn append sealed off), before the erasure or landing after it.
 * And a reader racing an erasure never mistakes a line being overwritten for
 * damage.
 */
import nodeFs from "node:fs"
import { closeSync, fstatSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeSync } from "node:fs"
import { syncBuiltinESMExports } from "node:module"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { StreamId } from "chronicle"
import { events } from "../contract/EventStoreContract.js"
import { tempDirectory } from "../support/filesystem.js"
import { appendTo, expectHolds, instance, logOf, readAllOf, readOf, startStallingWriter } from "../support/fencing.js"

interface Span {
  readonly from: number
  readonly to: number
}

/** Those of `ids` found anywhere in the log's bytes. */
const leftovers = (directory: string, ids: ReadonlyArray<string>) => {
  const bytes = readFileSync(logOf(directory), "utf8")
  return ids.filter((id) => bytes.includes(id))
}

/** Opens the directory afresh: a full scan passes, the stream reads as erased, every acknowledged event is there. */
const expectFreshOpenHolds = (directory: string, erased: StreamId.StreamId, acknowledged: ReadonlyMap<string, StreamId.StreamId>) =>
  Effect.scoped(Effect.gen(function*() {
    const store = yield* instance(directory)
    const log = yield* readAllOf(store)
    expectHolds(log, acknowledged)
    expect(log.map((e) => e.streamId)).not.toContain(erased)
    expect(yield* store.isDeleted(erased)).toBe(true)
    expect((yield* Effect.flip(store.append(erased, events(1), { expectedVersion: "Any" })))._tag).toBe("StreamDeleted")
  }))

/**
 * Until the scope closes, runs what `next` hands out before each positional
 * read (`fs.read`) of the directory's log: the store sizes the log with a
 * synchronous stat and reads it right after, so this is the one moment
 * between the two where another process can act.
 */
const beforeNextLogRead = (directory: string, next: () => Effect.Effect<void, unknown> | undefined) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const read = nodeFs.read
      const logIno = statSync(logOf(directory)).ino
      nodeFs.read = ((...args: Parameters<typeof read>) => {
        const fd: unknown = args[0]
        const hook = typeof fd === "number" && fstatSync(fd).ino === logIno ? next() : undefined
        if (hook === undefined) return Reflect.apply(read, nodeFs, args)
        const callback = args.at(-1) as (error: unknown) => void
        Effect.runPromise(hook).then(() => Reflect.apply(read, nodeFs, args), callback)
      }) as typeof read
      syncBuiltinESMExports()
      return read
    }),
    (read) =>
      Effect.sync(() => {
        nodeFs.read = read
        syncBuiltinESMExports()
      })
  )

describe("FileEventStore erasure of void bytes", () => {
  it.live(
    "given a stalled writer's append to a stream fenced off (void bytes holding the stream's events), when the stream is erased, then none of its bytes are left in the log",
    () =>
      Effect.gen(function*() {
        const directory = tempDirectory("erase-fenced")
        const erased = StreamId.unsafeParse("fenced-erased")
        const other = StreamId.unsafeParse("fenced-other")
        const acknowledged = new Map<string, StreamId.StreamId>()
        const writer = startStallingWriter(directory, erased, 2, 7)
        yield* Effect.promise(() => writer.stalled)
        yield* Effect.scoped(Effect.gen(function*() {
          const here = yield* instance(directory)
          // takes the lock over once the stalled writer's lock goes stale
          yield* appendTo(here, other, 2, acknowledged)
          writer.child.kill("SIGCONT")
          const outcomes = yield* Effect.promise(() => writer.exited)
          expect(outcomes.at(-1)?.failed?.message).toMatch(/lock was lost/)
          const ids = outcomes.flatMap((o) => o.ids)
          expect(leftovers(directory, ids), "the fenced-off append is not in the log: the test proves nothing").not.toEqual([])

          yield* here.deleteStream(erased, { erase: true })
          expect(leftovers(directory, ids), "bytes of the erased stream left in the log").toEqual([])
          expectHolds(yield* readAllOf(here), acknowledged)
        }))
        yield* expectFreshOpenHolds(directory, erased, acknowledged)
        rmSync(directory, { recursive: true, force: true })
      }),
    120_000
  )

  it.live(
    "given a stream erased while a writer of it stalled, when the writer resumes and its append lands after the erasure (void), then erasing again leaves none of the stream's bytes",
    () =>
      Effect.gen(function*() {
        const directory = tempDirectory("erase-late")
        const erased = StreamId.unsafeParse("late-erased")
        const other = StreamId.unsafeParse("late-other")
        const acknowledged = new Map<string, StreamId.StreamId>()
        const writer = startStallingWriter(directory, erased, 2, 11)
        yield* Effect.promise(() => writer.stalled)
        yield* Effect.scoped(Effect.gen(function*() {
          const here = yield* instance(directory)
          yield* appendTo(here, other, 1, acknowledged)
          yield* here.deleteStream(erased, { erase: true })
          writer.child.kill("SIGCONT")
          const outcomes = yield* Effect.promise(() => writer.exited)
          expect(outcomes.at(-1)?.failed?._tag).toBe("StoreError")
          const late = outcomes.at(-1)!.ids
          expect(leftovers(directory, late), "the late append is not in the log: the test proves nothing").not.toEqual([])
          // the first erasure's lines are gone already
          expect(leftovers(directory, outcomes[0]!.ids)).toEqual([])

          yield* appendTo(here, other, 1, acknowledged)
          yield* here.deleteStream(erased, { erase: true })
          expect(leftovers(directory, late), "bytes of the erased stream left in the log").toEqual([])
          expectHolds(yield* readAllOf(here), acknowledged)
        }))
        yield* expectFreshOpenHolds(directory, erased, acknowledged)
        rmSync(directory, { recursive: true, force: true })
      }),
    120_000
  )

  it.live.each([
    { case: "an append missing its last line", cut: (first: Span, _second: Span) => first.to },
    { case: "an append torn inside its first line", cut: (first: Span) => first.from + Math.floor((first.to - first.from) * 0.6) }
  ])(
    "given $case, sealed off by the next writer, when the stream is erased, then none of its bytes are left in the log",
    ({ cut }) =>
      Effect.gen(function*() {
        const directory = tempDirectory("erase-torn")
        const erased = StreamId.unsafeParse("torn-erased")
        const other = StreamId.unsafeParse("torn-other")
        const acknowledged = new Map<string, StreamId.StreamId>()
        const tornIds = yield* Effect.scoped(Effect.gen(function*() {
          const here = yield* instance(directory)
          yield* here.append(erased, events(1), { expectedVersion: "NoStream" })
          yield* appendTo(here, other, 1, acknowledged)
          const sizeBefore = statSync(logOf(directory)).size
          const batch = events(2)
          yield* here.append(erased, batch, { expectedVersion: 1 })
          const bytes = readFileSync(logOf(directory))
          const firstEnd = bytes.indexOf(0x0a, sizeBefore) + 1
          // the crash: the rest of the append never reached the disk
          truncateSync(logOf(directory), cut({ from: sizeBefore, to: firstEnd }, { from: firstEnd, to: bytes.length }))
          return batch.map((e) => String(e.eventId))
        }))
        const kept = leftovers(directory, tornIds)
        expect(kept, "the torn append left nothing of the stream: the test proves nothing").not.toEqual([])
        yield* Effect.scoped(Effect.gen(function*() {
          const here = yield* instance(directory)
          // the next writer seals the torn append off
          yield* appendTo(here, other, 1, acknowledged)
          expect((yield* readOf(here, erased)).length).toBe(1)
          yield* here.deleteStream(erased, { erase: true })
        }))
        expect(leftovers(directory, kept), "bytes of the erased stream left in the log").toEqual([])
        yield* expectFreshOpenHolds(directory, erased, acknowledged)
        rmSync(directory, { recursive: true, force: true })
      }),
    60_000
  )
})

describe("FileEventStore readers racing an erasure", () => {
  it.live(
    "given a reader that sized the log before a tombstone was written, when it reads lines the eraser is overwriting (one half-overwritten), then it reads them as erased: no damage error",
    () =>
      Effect.gen(function*() {
        const directory = tempDirectory("erase-race")
        const erased = StreamId.unsafeParse("race-erased")
        const other = StreamId.unsafeParse("race-other")
        const acknowledged = new Map<string, StreamId.StreamId>()
        /** Runs once, right after the reader's store has taken the log's size (before it reads the log): what another process does meanwhile. */
        let meanwhile: Effect.Effect<void, unknown> | undefined
        yield* Effect.scoped(Effect.gen(function*() {
          const eraser = yield* instance(directory)
          yield* appendTo(eraser, other, 1, acknowledged)
          yield* beforeNextLogRead(directory, () => {
            const hook = meanwhile
            meanwhile = undefined
            return hook
          })
          const reader = yield* instance(directory)
          expect((yield* readAllOf(reader)).length).toBe(1)
          // lines the reader has not indexed yet
          yield* eraser.append(erased, events(3), { expectedVersion: "NoStream" })
          yield* appendTo(eraser, other, 1, acknowledged)
          const before = readFileSync(logOf(directory))
          meanwhile = Effect.gen(function*() {
            yield* eraser.deleteStream(erased, { erase: true })
            // the overwrite of one line still in progress: its first half as it was
            const after = readFileSync(logOf(directory))
            let at = 0
            while (before.subarray(at, before.indexOf(0x0a, at) + 1).equals(after.subarray(at, before.indexOf(0x0a, at) + 1))) at = before.indexOf(0x0a, at) + 1
            const end = before.indexOf(0x0a, at) + 1
            const fd = openSync(logOf(directory), "r+")
            writeSync(fd, before, at, Math.floor((end - at) / 2), at)
            closeSync(fd)
          })
          const seen = yield* readAllOf(reader)
          expect(meanwhile, "the race was not staged: the test proves nothing").toBeUndefined()
          expectHolds(seen, acknowledged)
          expect(seen.map((e) => e.streamId)).not.toContain(erased)
          expect(yield* reader.isDeleted(erased)).toBe(true)
        }))
        rmSync(directory, { recursive: true, force: true })
      }),
    60_000
  )
})
