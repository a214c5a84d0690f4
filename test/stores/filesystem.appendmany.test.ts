import { spawn } from "node:child_process"
import { readFileSync, rmSync, truncateSync } from "node:fs"
import { join } from "node:path"
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

  it.live("a call torn inside its second stream's lines, sealed by the next writer, then that stream erased: none of its bytes are left", () =>
    Effect.gen(function*() {
      const directory = tempDirectory("many-torn-erase")
      const [a, b] = [StreamId.unsafeParse("sealed-a"), StreamId.unsafeParse("sealed-b")]
      const secret = (n: number) => Array.from({ length: n }, (_, i) => ({ type: "Secret", data: { secret: `b-secret-${i}` } }))
      yield* Effect.gen(function*() {
        yield* EventStore.append(a, events(1), { expectedVersion: "NoStream" })
        yield* EventStore.appendMany([
          { streamId: a, events: events(2), expectedVersion: 1 },
          { streamId: b, events: secret(2), expectedVersion: "NoStream" }
        ])
      }).pipe(Effect.provide(openStore(directory)))
      const offsets = lineOffsets(directory)
      // the call's lines: a, a, b (whole), b (cut after its secret)
      const cut = readFileSync(logOf(directory)).indexOf("b-secret-1", offsets[4]!) + "b-secret-1".length
      truncateSync(logOf(directory), cut)
      yield* Effect.gen(function*() {
        expect(yield* EventStore.streamVersion(b)).toBe(0)
        yield* EventStore.append(a, events(1), { expectedVersion: 1 })
      }).pipe(Effect.provide(openStore(directory)))
      yield* Effect.gen(function*() {
        yield* EventStore.deleteStream(b, { erase: true })
      }).pipe(Effect.provide(openStore(directory)))
      expect(readFileSync(logOf(directory), "utf8")).not.toContain("b-secret")
      rmSync(directory, { recursive: true, force: true })
    }))
})

const transferWriter = join(import.meta.dirname, "../support/transferWriter.ts")

describe("FileEventStore appendMany, crashes", () => {
  it.live("writers moving money both ways, killed with SIGKILL mid-write again and again: every acknowledged call whole, no call half-kept", () =>
    Effect.gen(function*() {
      const directory = tempDirectory("many-crash")
      const [a, b] = [StreamId.unsafeParse("crash-a"), StreamId.unsafeParse("crash-b")]
      const acknowledged = new Set<string>()
      const logged: Array<string> = []
      for (let round = 0; round < 4; round++) {
        const outputs = yield* Effect.forEach([[a, b], [b, a]] as const, ([from, to]) =>
          Effect.promise(() =>
            new Promise<string>((resolve) => {
              // big events (up to ~1 MB each) so a kill can land inside a write and tear it
              const child = spawn(process.execPath, ["--import", "tsx", transferWriter, directory, from, to, "100000", "500000"])
              let text = ""
              const killAfter = 2 + Math.floor(Math.random() * 6)
              let armed = false
              child.stdout.on("data", (data: Buffer) => {
                text += data.toString()
                if (!armed && text.split("\n").length > killAfter) {
                  armed = true
                  setTimeout(() => child.kill("SIGKILL"), Math.random() * 40)
                }
              })
              child.on("exit", () => resolve(text))
            })
          ), { concurrency: 2 })
        for (const line of outputs.join("").split("\n")) {
          // the writers' own log lines (a torn append sealed, say) are not acknowledgements
          if (line.startsWith("{")) acknowledged.add((JSON.parse(line) as { transfer: string }).transfer)
          else if (line.trim() !== "") logged.push(line)
        }
        const log = yield* Effect.flatMap(EventStore.EventStore, readAllOf).pipe(Effect.provide(openStore(directory)))
        const seen = new Map<string, Array<bigint>>()
        let total = 0
        for (const event of log) {
          const { amount, transfer } = event.data as { amount: number; transfer: string }
          seen.set(transfer, [...(seen.get(transfer) ?? []), event.globalPosition])
          total += amount
        }
        expect(total).toBe(0)
        for (const [transfer, positions] of seen) {
          expect(positions.length, `transfer ${transfer} half-kept`).toBe(2)
          expect(positions[1]).toBe(positions[0]! + 1n)
        }
        for (const transfer of acknowledged) expect(seen.has(transfer), `acknowledged transfer ${transfer} lost`).toBe(true)
      }
      expect(acknowledged.size).toBeGreaterThan(0)
      // a writer may only say that it sealed off a torn append (a killed writer's)
      expect(logged.filter((line) => !line.includes("sealing off a torn append"))).toEqual([])
      rmSync(directory, { recursive: true, force: true })
    }), { timeout: 240_000 })
})
