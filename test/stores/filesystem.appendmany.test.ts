import { readFileSync, rmSync, truncateSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { EventStore, StreamId } from "chronicle"
import { appendManyContract } from "../contract/AppendManyContract.js"
import { events } from "../contract/EventStoreContract.js"
import { logOf, openStore, readAllOf } from "../support/fencing.js"
import { fileStoreLayer, tempDirectory } from "../support/filesystem.js"

appendManyContract("filesystem", fileStoreLayer("appendmany"))

/** The byte offset where each line of the log starts. */
const lineOffsets = (directory: string) => {
  const bytes = readFileSync(logOf(directory))
  const offsets = [0]
  for (let i = bytes.indexOf(10); i !== -1 && i < bytes.length - 1; i = bytes.indexOf(10, i + 1)) offsets.push(i + 1)
  return offsets
}

describe("FileEventStore appendMany, torn writes", () => {
  for (const [label, into] of [["at a line boundary", 0], ["inside a line", 17]] as const) {
    it.live(`a call spanning two streams cut ${label} after the first stream's lines is dropped whole on reopen`, () =>
      Effect.gen(function*() {
        const directory = tempDirectory("many-torn")
        const [a, b] = [StreamId.unsafeParse("torn-a"), StreamId.unsafeParse("torn-b")]
        yield* Effect.gen(function*() {
          yield* EventStore.append(a, events(1), { expectedVersion: "NoStream" })
          yield* EventStore.appendMany([
            { streamId: a, events: events(2), expectedVersion: 1 },
            { streamId: b, events: events(2), expectedVersion: "NoStream" }
          ])
        }).pipe(Effect.provide(openStore(directory)))
        const offsets = lineOffsets(directory)
        expect(offsets.length).toBe(5)
        // the first append's line, then the call's: a's two lines whole, b's first cut short (or not begun)
        truncateSync(logOf(directory), offsets[3]! + into)
        const after = yield* Effect.gen(function*() {
          expect(yield* EventStore.streamVersion(a)).toBe(1)
          expect(yield* EventStore.streamVersion(b)).toBe(0)
          const results = yield* EventStore.appendMany([
            { streamId: b, events: events(1), expectedVersion: "NoStream" },
            { streamId: a, events: events(1), expectedVersion: 1 }
          ])
          expect(results.map((r) => r.streamVersion)).toEqual([1, 2])
          return yield* readAllOf(yield* EventStore.EventStore)
        }).pipe(Effect.provide(openStore(directory)))
        expect(after.map((e) => [e.streamId, e.streamVersion])).toEqual([[a, 1], [b, 1], [a, 2]])
        rmSync(directory, { recursive: true, force: true })
      }))
  }
})

describe("FileEventStore appendMany, erasure", () => {
  it.live("one stream of a call erased: a fresh open still reads the other streams' events of the call", () =>
    Effect.gen(function*() {
      const directory = tempDirectory("many-erase")
      const [a, b] = [StreamId.unsafeParse("erase-a"), StreamId.unsafeParse("erase-b")]
      const [ea, eb] = [events(2), events(2)]
      yield* Effect.gen(function*() {
        yield* EventStore.appendMany([
          { streamId: a, events: ea, expectedVersion: "NoStream" },
          { streamId: b, events: eb, expectedVersion: "NoStream" }
        ])
        yield* EventStore.deleteStream(a, { erase: true })
      }).pipe(Effect.provide(openStore(directory)))
      const log = yield* Effect.gen(function*() {
        yield* EventStore.append(b, events(1), { expectedVersion: 2 })
        return yield* readAllOf(yield* EventStore.EventStore)
      }).pipe(Effect.provide(openStore(directory)))
      expect(log.map((e) => [e.streamId, e.streamVersion])).toEqual([[b, 1], [b, 2], [b, 3]])
      rmSync(directory, { recursive: true, force: true })
    }))
})
