/**
 * The filesystem store's read side: subscribers woken by another process's
 * appends (a directory watch, polling as fallback), and checkpoint files that
 * are damaged fail loudly instead of restarting a projection from scratch.
 */
import { spawn } from "node:child_process"
import { readdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Ref, Stream } from "effect"
import { CheckpointStore, EventStore, FileCheckpointStore, FileEventStore, StreamId } from "chronicle"
import { removeAfter, tempDirectory } from "../support/filesystem.js"
import { events } from "../contract/EventStoreContract.js"
import { eventually } from "../support/time.js"

const writerScript = join(import.meta.dirname, "../support/fileWriter.ts")

const storesIn = (directory: string) =>
  Layer.mergeAll(FileEventStore.layer({ directory }), FileCheckpointStore.layer({ directory }), removeAfter(directory)).pipe(
    Layer.provide(NodeContext.layer)
  )

describe("FileEventStore read side", () => {
  it.live("a subscriber is woken by another process's appends, well before its (one minute) poll", () => {
    const directory = tempDirectory("watch")
    return Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const seen = yield* Ref.make(0)
      const ours = yield* Ref.make(0)
      yield* store.subscribe({ pollInterval: "60 seconds" }).pipe(
        Stream.runForEach((event) => Ref.update(event.streamId === "watched-stream" ? seen : ours, (n) => n + 1)),
        Effect.forkScoped
      )
      // the subscriber is live once it has delivered an event of ours; from then on only a signal wakes it
      yield* store.append(StreamId.unsafeParse("own-stream"), events(1), { expectedVersion: "NoStream" })
      yield* eventually(Effect.map(Ref.get(ours), (n) => n === 1), "the subscriber delivered our own event")
      const exit = yield* Effect.async<number | null>((resume) => {
        const child = spawn(process.execPath, ["--import", "tsx", writerScript, directory, "watched-stream", "4", "3"], {
          stdio: "ignore"
        })
        child.on("exit", (code) => resume(Effect.succeed(code)))
      })
      expect(exit).toBe(0)
      const written = yield* store.streamVersion(StreamId.unsafeParse("watched-stream"))
      expect(written).toBeGreaterThanOrEqual(4)
      // well before the one-minute poll: the directory watch woke the subscriber
      yield* eventually(Effect.map(Ref.get(seen), (n) => n >= written), "the subscriber was woken by the other process's appends", 45_000)
      expect(yield* Ref.get(seen)).toBe(written)
    }).pipe(Effect.scoped, Effect.provide(storesIn(directory)))
  }, 60_000)

  it.live("a damaged checkpoint file is a StoreError naming it, not a silent restart from zero", () => {
    const directory = tempDirectory("checkpoint-damage")
    return Effect.gen(function*() {
      const checkpoints = yield* CheckpointStore.CheckpointStore
      yield* checkpoints.save("orders", 42n)
      const [folder] = readdirSync(join(directory, "checkpoints"))
      const dir = join(directory, "checkpoints", folder!)
      const [file] = readdirSync(dir)
      writeFileSync(join(dir, file!), `{"crc":1,"name":"orders","seq":1,"position":"43"}`)
      const error = yield* Effect.flip(checkpoints.load("orders"))
      expect(error._tag).toBe("StoreError")
      expect(error.message).toMatch(/damaged/)
      writeFileSync(join(dir, file!), "{not json")
      expect((yield* Effect.flip(checkpoints.load("orders"))).message).toMatch(/orders/)
      yield* checkpoints.save("orders", 44n)
      expect(yield* checkpoints.load("orders")).toEqual(Option.some(44n))
    }).pipe(Effect.provide(storesIn(directory)))
  }, 60_000)
})
