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
import { pause } from "../support/time.js"

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
      yield* store.subscribe({ pollInterval: "60 seconds" }).pipe(
        Stream.runForEach(() => Ref.update(seen, (n) => n + 1)),
        Effect.forkScoped
      )
      yield* pause(100)
      const exit = yield* Effect.async<number | null>((resume) => {
        const child = spawn(process.execPath, ["--import", "tsx", writerScript, directory, "watched-stream", "4", "3"], {
          stdio: "ignore"
        })
        child.on("exit", (code) => resume(Effect.succeed(code)))
      })
      expect(exit).toBe(0)
      const written = yield* store.streamVersion(StreamId.unsafeMake("watched-stream"))
      expect(written).toBeGreaterThanOrEqual(4)
      for (let waited = 0; (yield* Ref.get(seen)) < written; waited += 20) {
        if (waited > 10_000) return yield* Effect.die(new Error("the subscriber was not woken"))
        yield* pause(20)
      }
      expect(yield* Ref.get(seen)).toBe(written)
    }).pipe(Effect.scoped, Effect.provide(storesIn(directory)))
  }, 60_000)

  it.live("a damaged checkpoint file is a StoreError naming it, not a silent restart from zero", () => {
    const directory = tempDirectory("checkpoint-damage")
    return Effect.gen(function*() {
      const checkpoints = yield* CheckpointStore.CheckpointStore
      yield* checkpoints.save("orders", 42n)
      const dir = join(directory, "checkpoints")
      const [file] = readdirSync(dir)
      writeFileSync(join(dir, file!), `{"crc":1,"name":"orders","position":"43"}`)
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
