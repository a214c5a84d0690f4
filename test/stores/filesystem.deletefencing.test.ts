/**
 * Deleting and erasing streams of the filesystem store when the deleting
 * process stalls (SIGSTOP standing in for a long GC pause or a frozen VM)
 * longer than the lock's stale time, or dies in the middle: another process
 * takes the lock over and appends; whatever the stalled deleter does when it
 * resumes, no acknowledged append is lost and no deletion holds that was
 * decided against a stale version.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { StreamId } from "chronicle"
import { tempDirectory } from "../support/filesystem.js"
import { appendTo, expectHolds, instance, interleaved, logOf, readAllOf, readOf, startStallingDeleter } from "../support/fencing.js"
import { events } from "../contract/EventStoreContract.js"

describe("FileEventStore deletion with a stalled lock holder", () => {
  it.live.each([{ erase: false }, { erase: true }])(
    "given a deleter (erase: $erase) stopped after its version check past the stale time, when another process appends to the stream and the deleter resumes, then the deletion fails and the stream stays open with the append",
    ({ erase }) =>
      Effect.gen(function*() {
        const directory = tempDirectory("stall-delete")
        const streamId = StreamId.unsafeParse("stall-deleted")
        const acknowledged = new Map<string, StreamId.StreamId>()
        yield* Effect.scoped(Effect.gen(function*() {
          const here = yield* instance(directory)
          yield* appendTo(here, streamId, 2, acknowledged)
          const other = yield* instance(directory)
          expect(yield* other.streamVersion(streamId)).toBe(2)

          const deleter = startStallingDeleter(directory, streamId, erase, 1)
          yield* Effect.promise(() => deleter.stalled)
          // takes the lock over once the stalled deleter's lock goes stale
          yield* appendTo(here, streamId, 1, acknowledged)
          deleter.child.kill("SIGCONT")
          const outcome = yield* Effect.promise(() => deleter.exited)

          expect(outcome?.deleted, "a deletion decided at version 2 held over an acknowledged version 3").toBeUndefined()
          expect(["StoreError", "ConcurrencyConflict"]).toContain(outcome?.failed?._tag)
          if (outcome?.failed?._tag === "StoreError") expect(outcome.failed.message).toMatch(/lock was lost/)
          for (const store of [here, other]) {
            expect(yield* store.isDeleted(streamId)).toBe(false)
            expect((yield* readOf(store, streamId)).map((e) => e.streamVersion)).toEqual([1, 2, 3])
            expectHolds(yield* readAllOf(store), acknowledged)
          }
        }))
        const fresh = yield* Effect.scoped(Effect.gen(function*() {
          const store = yield* instance(directory)
          expect(yield* store.isDeleted(streamId)).toBe(false)
          expectHolds(yield* readAllOf(store), acknowledged)
          // the stream is open: it takes the next event
          yield* appendTo(store, streamId, 1, acknowledged)
          return (yield* readOf(store, streamId)).map((e) => e.streamVersion)
        }))
        expect(fresh).toEqual([1, 2, 3, 4])
        rmSync(directory, { recursive: true, force: true })
      }),
    120_000
  )

  it.live(
    "given an eraser stopped in the middle of erasing past the stale time, when another process appends around the erased stream and the eraser resumes, then every acknowledged append stays and the erased stream is gone",
    () =>
      Effect.gen(function*() {
        const directory = tempDirectory("stall-erase")
        const erased = StreamId.unsafeParse("stall-erased")
        const neighbours = [StreamId.unsafeParse("stall-left"), StreamId.unsafeParse("stall-right")]
        const later = StreamId.unsafeParse("stall-later")
        const acknowledged = new Map<string, StreamId.StreamId>()
        const erasedIds = yield* Effect.scoped(Effect.gen(function*() {
          const here = yield* instance(directory)
          const erasedIds = yield* interleaved(here, erased, neighbours, acknowledged)
          const other = yield* instance(directory)
          expect(yield* other.streamVersion(erased)).toBe(6)

          // the third write of the erasure: in the middle of it, whichever way it writes
          const eraser = startStallingDeleter(directory, erased, true, 3)
          yield* Effect.promise(() => eraser.stalled)
          for (const streamId of [...neighbours, later, neighbours[0]!]) yield* appendTo(here, streamId, 2, acknowledged)
          eraser.child.kill("SIGCONT")
          const outcome = yield* Effect.promise(() => eraser.exited)
          const erasedNow = outcome?.deleted === true
          if (!erasedNow) expect(outcome?.failed?._tag).toBe("StoreError")

          yield* appendTo(other, neighbours[1]!, 1, acknowledged)
          for (const store of [here, other]) {
            const log = yield* readAllOf(store)
            expectHolds(log, acknowledged)
            if (erasedNow) {
              expect(log.map((e) => e.streamId)).not.toContain(erased)
              expect(yield* readOf(store, erased)).toEqual([])
              expect(yield* store.isDeleted(erased)).toBe(true)
            }
          }
          return erasedNow ? erasedIds : []
        }))
        // a fresh open: a full scan of the log passes, and sees the same
        yield* Effect.scoped(Effect.gen(function*() {
          const store = yield* instance(directory)
          const log = yield* readAllOf(store)
          expectHolds(log, acknowledged)
          if (erasedIds.length > 0) {
            expect(log.map((e) => e.streamId)).not.toContain(erased)
            expect((yield* Effect.flip(store.append(erased, events(1), { expectedVersion: "Any" })))._tag).toBe("StreamDeleted")
          }
        }))
        const bytes = readFileSync(logOf(directory), "utf8")
        for (const id of erasedIds) expect(bytes, "an erased event is still in the log").not.toContain(id)
        rmSync(directory, { recursive: true, force: true })
      }),
    120_000
  )
})

describe("FileEventStore erasure cut short", () => {
  it.live(
    "given an eraser killed in the middle of erasing, when the store opens, then the stream reads as deleted and erased, nothing else is lost, and erasing again finishes the job",
    () =>
      Effect.gen(function*() {
        const directory = tempDirectory("kill-erase")
        const erased = StreamId.unsafeParse("killed-erased")
        const neighbours = [StreamId.unsafeParse("killed-left"), StreamId.unsafeParse("killed-right")]
        const acknowledged = new Map<string, StreamId.StreamId>()
        const erasedIds = yield* Effect.scoped(Effect.flatMap(instance(directory), (here) => interleaved(here, erased, neighbours, acknowledged)))

        const eraser = startStallingDeleter(directory, erased, true, 3)
        yield* Effect.promise(() => eraser.stalled)
        eraser.child.kill("SIGKILL")
        yield* Effect.promise(() => eraser.exited)

        yield* Effect.scoped(Effect.gen(function*() {
          const store = yield* instance(directory)
          const log = yield* readAllOf(store)
          expectHolds(log, acknowledged)
          expect(yield* store.isDeleted(erased)).toBe(true)
          expect(log.map((e) => e.streamId)).not.toContain(erased)
          expect(yield* readOf(store, erased)).toEqual([])
          // the next writer takes the dead eraser's lock over; the neighbours go on
          yield* appendTo(store, neighbours[0]!, 1, acknowledged)
          // erasing again overwrites what the killed eraser did not get to
          yield* store.deleteStream(erased, { erase: true })
          expectHolds(yield* readAllOf(store), acknowledged)
        }))
        const bytes = readFileSync(logOf(directory), "utf8")
        for (const id of erasedIds) expect(bytes, "an erased event is still in the log").not.toContain(id)
        rmSync(directory, { recursive: true, force: true })
      }),
    120_000
  )

  it.live(
    "given an erasure whose overwrites reached the disk only in part (a line torn half-way, another not at all), when the store opens, then it reads the stream as erased and nothing else is lost, with no damaged-line error",
    () =>
      Effect.gen(function*() {
        const directory = tempDirectory("torn-erase")
        const erased = StreamId.unsafeParse("torn-erased")
        const neighbours = [StreamId.unsafeParse("torn-left"), StreamId.unsafeParse("torn-right")]
        const acknowledged = new Map<string, StreamId.StreamId>()
        const before = yield* Effect.scoped(Effect.gen(function*() {
          const store = yield* instance(directory)
          yield* interleaved(store, erased, neighbours, acknowledged)
          const before = readFileSync(logOf(directory))
          yield* store.deleteStream(erased, { erase: true })
          return before
        }))
        const after = readFileSync(logOf(directory))
        // the erased lines: where the bytes changed, line by line
        const changed: Array<{ readonly from: number; readonly to: number }> = []
        for (let start = 0; start < before.length;) {
          const end = before.indexOf(0x0a, start) + 1
          if (!before.subarray(start, end).equals(after.subarray(start, end))) changed.push({ from: start, to: end })
          start = end
        }
        expect(changed.length).toBe(6)
        // one line torn half-way (its first half back as it was), another as if never overwritten
        const fd = openSync(logOf(directory), "r+")
        const torn = changed[1]!
        const half = Math.floor((torn.to - torn.from) / 2)
        writeSync(fd, before, torn.from, half, torn.from)
        const untouched = changed[4]!
        writeSync(fd, before, untouched.from, untouched.to - untouched.from, untouched.from)
        closeSync(fd)

        yield* Effect.scoped(Effect.gen(function*() {
          const store = yield* instance(directory)
          const log = yield* readAllOf(store)
          expectHolds(log, acknowledged)
          expect(log.map((e) => e.streamId)).not.toContain(erased)
          expect(yield* readOf(store, erased)).toEqual([])
          expect(yield* store.isDeleted(erased)).toBe(true)
          for (const neighbour of neighbours) expect((yield* readOf(store, neighbour)).length).toBeGreaterThan(0)
          yield* appendTo(store, neighbours[1]!, 1, acknowledged)
          expectHolds(yield* readAllOf(store), acknowledged)
        }))
        rmSync(directory, { recursive: true, force: true })
      }),
    60_000
  )

  it.live("damage outside an erased stretch is still a StoreError, even with an erasure in the log", () =>
    Effect.gen(function*() {
      const directory = tempDirectory("erase-damage")
      const erased = StreamId.unsafeParse("damage-erased")
      const kept = StreamId.unsafeParse("damage-kept")
      const acknowledged = new Map<string, StreamId.StreamId>()
      yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* instance(directory)
        yield* interleaved(store, erased, [kept], acknowledged)
        yield* store.deleteStream(erased, { erase: true })
      }))
      const bytes = readFileSync(logOf(directory))
      const target = bytes.indexOf(Buffer.from(`"streamId":"${kept}"`))
      const fd = openSync(logOf(directory), "r+")
      writeSync(fd, Buffer.from("Z"), 0, 1, target + 40)
      closeSync(fd)
      const error = yield* Effect.flip(Effect.scoped(Effect.flatMap(instance(directory), readAllOf)))
      expect(error._tag).toBe("StoreError")
      expect(error.message).toMatch(/damaged at byte \d+/)
      rmSync(directory, { recursive: true, force: true })
    }))
})
