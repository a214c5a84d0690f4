/**
 * The SnapshotStore contract: every snapshot store Layer must pass this suite.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer, Option, TestClock } from "effect"
import { SnapshotStore, StreamId } from "chronicle"
import { freshStream } from "./EventStoreContract.js"

const save = (snapshot: SnapshotStore.NewSnapshot) => Effect.flatMap(SnapshotStore.SnapshotStore, (s) => s.save(snapshot))
const load = (streamId: StreamId.StreamId) => Effect.flatMap(SnapshotStore.SnapshotStore, (s) => s.load(streamId))
const remove = (streamId: StreamId.StreamId) => Effect.flatMap(SnapshotStore.SnapshotStore, (s) => s.remove(streamId))

/**
 * `timedByDatabase`: the store takes a snapshot's time from its database
 * (PostgreSQL's `now()`), not from Effect's Clock.
 */
export const snapshotStoreContract = <E>(
  name: string,
  storeLayer: Layer.Layer<SnapshotStore.SnapshotStore, E>,
  options: { readonly timedByDatabase?: boolean } = {}
) =>
  layer(storeLayer, { timeout: "60 seconds" })(`SnapshotStore contract: ${name}`, (it) => {
    describe("save and load", () => {
      it.effect("a stream without a snapshot loads none", () =>
        Effect.gen(function*() {
          expect(yield* load(freshStream("snap"))).toEqual(Option.none())
        }))

      it.effect("a saved snapshot loads back with its version, state, schema version and time", () =>
        Effect.gen(function*() {
          const streamId = freshStream("snap")
          const state = { balance: 1250, owner: "ada", history: [1, 2, { nested: true }], none: null }
          yield* save({ streamId, version: 42, state, stateSchemaVersion: 3 })
          const loaded = Option.getOrThrow(yield* load(streamId))
          expect(loaded).toMatchObject({ streamId, version: 42, state, stateSchemaVersion: 3 })
          expect(loaded.takenAt).toBeInstanceOf(Date)
          expect(Number.isNaN(loaded.takenAt.getTime())).toBe(false)
        }))

      it.effect(
        options.timedByDatabase === true
          ? "a snapshot's time is the database's when it was saved, whatever Effect's Clock says"
          : "a snapshot's time is Effect's Clock's when it was saved (a TestClock's in a test)",
        () =>
          Effect.gen(function*() {
            const streamId = freshStream("snap")
            yield* TestClock.setTime(3_600_000)
            yield* save({ streamId, version: 1, state: {}, stateSchemaVersion: 1 })
            yield* TestClock.adjust("1 minute")
            const { takenAt } = Option.getOrThrow(yield* load(streamId))
            // the database's now(): today on the wall clock, not the TestClock's 1970
            if (options.timedByDatabase === true) expect(Math.abs(takenAt.getTime() - Date.now())).toBeLessThan(86_400_000)
            else expect(takenAt).toEqual(new Date(3_600_000))
          })
      )

      it.effect("the latest snapshot wins; an older one saved later is ignored", () =>
        Effect.gen(function*() {
          const streamId = freshStream("snap")
          yield* save({ streamId, version: 10, state: { n: 10 }, stateSchemaVersion: 1 })
          yield* save({ streamId, version: 20, state: { n: 20 }, stateSchemaVersion: 1 })
          yield* save({ streamId, version: 15, state: { n: 15 }, stateSchemaVersion: 1 })
          expect(Option.getOrThrow(yield* load(streamId))).toMatchObject({ version: 20, state: { n: 20 } })
          yield* save({ streamId, version: 20, state: { n: 21 }, stateSchemaVersion: 2 })
          expect(Option.getOrThrow(yield* load(streamId))).toMatchObject({ version: 20, state: { n: 21 }, stateSchemaVersion: 2 })
        }))

      it.effect("snapshots of different streams, unicode ids included, are kept apart", () =>
        Effect.gen(function*() {
          const a = StreamId.unsafeParse(`café-☕ ${Date.now()} ${Math.random()}`)
          const b = freshStream("snap")
          yield* save({ streamId: a, version: 1, state: "a", stateSchemaVersion: 1 })
          yield* save({ streamId: b, version: 2, state: "b", stateSchemaVersion: 1 })
          expect(Option.getOrThrow(yield* load(a)).state).toBe("a")
          expect(Option.getOrThrow(yield* load(b)).state).toBe("b")
        }))

      it.effect("a large state round trips", () =>
        Effect.gen(function*() {
          const streamId = freshStream("snap")
          const state = { items: Array.from({ length: 20_000 }, (_, i) => ({ i, sku: `sku-${i}`, note: "é✓" })) }
          yield* save({ streamId, version: 1_000_000, state, stateSchemaVersion: 1 })
          expect(Option.getOrThrow(yield* load(streamId)).state).toEqual(state)
        }))

      it.effect("remove forgets a stream's snapshot", () =>
        Effect.gen(function*() {
          const streamId = freshStream("snap")
          yield* save({ streamId, version: 1, state: {}, stateSchemaVersion: 1 })
          yield* remove(streamId)
          expect(yield* load(streamId)).toEqual(Option.none())
        }))
    })

    describe("bad input", () => {
      it.effect("a state that is not JSON, a negative version or a bad schema version is a StoreError; nothing is kept", () =>
        Effect.gen(function*() {
          const streamId = freshStream("snap")
          const bad: ReadonlyArray<SnapshotStore.NewSnapshot> = [
            { streamId, version: 1, state: { n: 1n }, stateSchemaVersion: 1 },
            { streamId, version: -1, state: {}, stateSchemaVersion: 1 },
            { streamId, version: 1, state: {}, stateSchemaVersion: 0 }
          ]
          for (const snapshot of bad) {
            const error = yield* Effect.flip(save(snapshot))
            expect(error._tag).toBe("StoreError")
            expect(error.message).toContain(streamId)
          }
          expect(yield* load(streamId)).toEqual(Option.none())
        }))
    })
  })
