/**
 * Stream lifecycle contract: tombstones over every store; erasure where the
 * store supports it (a store that does not must refuse with a StoreError).
 */
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Layer, Schedule, Stream } from "effect"
import { CommandHandler, EventStore } from "chronicle"
import { AccountEvents, BankAccount } from "../../examples/BankAccount.js"
import { events, freshStream } from "./EventStoreContract.js"

const readIds = (streamId: Parameters<typeof EventStore.read>[0], options?: EventStore.ReadOptions) =>
  EventStore.read(streamId, options).pipe(
    Stream.map((e) => e.eventId as string),
    Stream.runCollect,
    Effect.map(Chunk.toReadonlyArray)
  )

export const streamLifecycleContract = <E>(
  name: string,
  storeLayer: Layer.Layer<EventStore.EventStore, E>,
  capabilities: { readonly erase: boolean }
) =>
  layer(storeLayer, { timeout: "60 seconds" })(`Stream lifecycle contract: ${name}`, (it) => {
    describe("tombstones", () => {
      it.effect("a deleted stream takes no more events: StreamDeleted, and nothing is written", () =>
        Effect.gen(function*() {
          const streamId = freshStream("life")
          yield* EventStore.append(streamId, events(2), { expectedVersion: "NoStream" })
          yield* EventStore.deleteStream(streamId, { expectedVersion: 2 })
          expect(yield* EventStore.isDeleted(streamId)).toBe(true)
          for (const expectedVersion of [2, "Any", "StreamExists"] as const) {
            const error = yield* Effect.flip(EventStore.append(streamId, events(1), { expectedVersion }))
            expect(error).toEqual(new EventStore.StreamDeleted({ streamId }))
          }
          expect(yield* EventStore.streamVersion(streamId)).toBe(2)
        }))

      it.effect("its history stays readable by default, and can be hidden", () =>
        Effect.gen(function*() {
          const streamId = freshStream("life")
          const batch = events(3)
          const { globalPositions } = yield* EventStore.append(streamId, batch, { expectedVersion: "NoStream" })
          yield* EventStore.deleteStream(streamId)
          expect(yield* readIds(streamId)).toEqual(batch.map((e) => e.eventId))
          expect(yield* readIds(streamId, { deleted: "hide" })).toEqual([])
          const log = yield* EventStore.readAll({ fromPosition: globalPositions[0]! }).pipe(
            Stream.filter((e) => e.streamId === streamId),
            Stream.runCount
          )
          expect(log).toBe(3)
        }))

      it.effect("deleting checks the expected version; a conflict leaves the stream open", () =>
        Effect.gen(function*() {
          const streamId = freshStream("life")
          yield* EventStore.append(streamId, events(2), { expectedVersion: "NoStream" })
          const error = yield* Effect.flip(EventStore.deleteStream(streamId, { expectedVersion: 1 }))
          expect(error).toEqual(new EventStore.ConcurrencyConflict({ streamId, expected: 1, actual: 2 }))
          expect(yield* EventStore.isDeleted(streamId)).toBe(false)
          yield* EventStore.append(streamId, events(1), { expectedVersion: 2 })
        }))

      it.effect("deleting twice succeeds; a re-sent batch from before the tombstone is still recognised", () =>
        Effect.gen(function*() {
          const streamId = freshStream("life")
          const batch = events(2)
          const first = yield* EventStore.append(streamId, batch, { expectedVersion: "NoStream" })
          yield* EventStore.deleteStream(streamId)
          yield* EventStore.deleteStream(streamId, { expectedVersion: 5 })
          expect(yield* EventStore.append(streamId, batch, { expectedVersion: "NoStream" })).toEqual(first)
        }))

      it.effect("a stream that never existed can be deleted, which reserves its id", () =>
        Effect.gen(function*() {
          const streamId = freshStream("life")
          yield* EventStore.deleteStream(streamId, { expectedVersion: "NoStream" })
          const error = yield* Effect.flip(EventStore.append(streamId, events(1), { expectedVersion: "NoStream" }))
          expect(error._tag).toBe("StreamDeleted")
          expect(yield* EventStore.isDeleted(freshStream("life"))).toBe(false)
        }))

      it.effect("the command handler fails with StreamDeleted at once, without retrying", () =>
        Effect.gen(function*() {
          const streamId = freshStream("life")
          const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents, retry: Schedule.recurs(3) })
          yield* accounts.handle(streamId, { _tag: "OpenAccount", owner: "ada", currency: "EUR" })
          yield* EventStore.deleteStream(streamId)
          const error = yield* Effect.flip(accounts.handle(streamId, { _tag: "Deposit", amount: 1 }))
          expect(error._tag).toBe("StreamDeleted")
        }))
    })

    describe("erasure", () => {
      if (capabilities.erase) {
        it.effect("erasing removes the stream's events from stream reads and the global log; the tombstone stays", () =>
          Effect.gen(function*() {
            const streamId = freshStream("erase")
            const other = freshStream("erase")
            const { globalPositions } = yield* EventStore.append(streamId, events(3), { expectedVersion: "NoStream" })
            const kept = events(2)
            yield* EventStore.append(other, kept, { expectedVersion: "NoStream" })
            yield* EventStore.deleteStream(streamId, { erase: true })
            expect(yield* readIds(streamId)).toEqual([])
            const log = yield* EventStore.readAll({ fromPosition: globalPositions[0]! }).pipe(
              Stream.map((e) => e.streamId as string),
              Stream.runCollect,
              Effect.map(Chunk.toReadonlyArray)
            )
            expect(log).not.toContain(streamId)
            expect(yield* readIds(other)).toEqual(kept.map((e) => e.eventId))
            expect((yield* Effect.flip(EventStore.append(streamId, events(1), { expectedVersion: "Any" })))._tag).toBe(
              "StreamDeleted"
            )
            expect(yield* EventStore.isDeleted(streamId)).toBe(true)
          }))

        it.effect("after erasing the last events of the log, headPosition is the last readable event's position (so a copy can finish)", () =>
          Effect.gen(function*() {
            const kept = freshStream("erase")
            const erased = freshStream("erase")
            const { globalPositions } = yield* EventStore.append(kept, events(2), { expectedVersion: "NoStream" })
            yield* EventStore.append(erased, events(2), { expectedVersion: "NoStream" })
            yield* EventStore.deleteStream(erased, { erase: true })
            const store = yield* EventStore.EventStore
            expect(yield* store.headPosition).toBe(globalPositions[1]!)
            const next = yield* EventStore.append(kept, events(1), { expectedVersion: 2 })
            expect(next.globalPositions[0]! > globalPositions[1]! + 2n).toBe(true)
          }))

        it.effect("an already deleted stream can be erased later", () =>
          Effect.gen(function*() {
            const streamId = freshStream("erase")
            yield* EventStore.append(streamId, events(2), { expectedVersion: "NoStream" })
            yield* EventStore.deleteStream(streamId)
            yield* EventStore.deleteStream(streamId, { erase: true })
            expect(yield* readIds(streamId)).toEqual([])
          }))
      } else {
        it.effect("erasure is refused with a StoreError that says why; nothing changes", () =>
          Effect.gen(function*() {
            const streamId = freshStream("erase")
            yield* EventStore.append(streamId, events(2), { expectedVersion: "NoStream" })
            const error = yield* Effect.flip(EventStore.deleteStream(streamId, { erase: true }))
            expect(error._tag).toBe("StoreError")
            expect(error.message).toMatch(/cannot erase/)
            expect(yield* EventStore.isDeleted(streamId)).toBe(false)
            expect((yield* readIds(streamId)).length).toBe(2)
          }))
      }
    })
  })
