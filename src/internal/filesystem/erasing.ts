/**
 * Erasure on the filesystem store: a stream's lines overwritten in place with
 * filler lines of the same length, once its erasing tombstone is known valid.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import type { StoreError } from "../../EventStore.js"
import type { StreamId } from "../../StreamId.js"
import { readBytes, readRunLimit } from "./io.js"
import { eraseLines, indexLineAt } from "./logFormat.js"
import { endOf, type View } from "./reading.js"

/** What erasing needs of the store. */
export interface ErasingStore {
  readonly fs: FileSystem.FileSystem
  readonly logPath: string
  /** `fsync` after overwriting. */
  readonly durable: boolean
  readonly fail: (operation: string, error: unknown) => StoreError
}

/**
 * The byte ranges of the lines at `slots` (ascending) of the view, adjacent
 * lines in one range: each line is read up to its newline (void bytes may
 * follow). What an erasing tombstone lists.
 */
export const rangesOf = (
  store: Pick<ErasingStore, "logPath" | "fail">,
  view: View,
  slots: ReadonlyArray<number>
) =>
  Effect.gen(function*() {
    const { index, log } = view
    const ranges: Array<[number, number]> = []
    for (let i = 0; i < slots.length;) {
      const low = index.offsets.get(slots[i]!)
      let j = i
      while (j + 1 < slots.length && slots[j + 1] === slots[j]! + 1 && endOf(slots[j + 1]!, view) - low <= readRunLimit) j++
      const bytes = yield* readBytes(log, low, endOf(slots[j]!, view) - low)
      for (let k = i; k <= j; k++) {
        const from = index.offsets.get(slots[k]!)
        const newline = bytes.indexOf(0x0a, from - low)
        if (newline === -1) return yield* store.fail("deleteStream", new Error(`no line end after byte ${from} of ${store.logPath}`))
        const last = ranges.at(-1)
        if (last !== undefined && last[1] === from) last[1] = low + newline + 1
        else ranges.push([from, low + newline + 1])
      }
      i = j + 1
    }
    return ranges
  })

/**
 * Overwrites the lines in `ranges` (of `streamId`, validly tombstoned
 * with erasure) in place with filler lines of the same length, then syncs.
 * Those bytes sit below the tombstone and never change otherwise, so a
 * holder that stalled here and resumes after another took the lock over
 * overwrites nothing of anyone else's. Lines erased already are skipped:
 * erasing again finishes an erasure cut short.
 */
export const eraseInPlace = (
  store: ErasingStore,
  streamId: StreamId,
  ranges: ReadonlyArray<readonly [number, number]>
) => {
  const { durable, fail, fs, logPath } = store
  return Effect.scoped(Effect.gen(function*() {
    // not the log's O_APPEND descriptor: positional writes there would land at the end
    const file = yield* fs.open(logPath, { flag: "r+" })
    let wrote = false
    for (const [from, to] of ranges) {
      for (let at = from; at < to;) {
        let bytes = yield* readBytes(file, at, Math.min(readRunLimit, to - at))
        if (bytes.length === 0) break
        let cut = bytes.lastIndexOf(0x0a) + 1
        if (cut === 0) {
          bytes = yield* readBytes(file, at, to - at)
          cut = bytes.length
        }
        const lines = bytes.subarray(0, cut)
        for (let start = 0; start < lines.length;) {
          const end = lines.indexOf(0x0a, start)
          const entry = indexLineAt(lines, start, end === -1 ? lines.length : end)
          // a tombstone names its stream's lines only; anything else there is a bug, and is left alone
          if (typeof entry !== "string" && entry.streamId !== streamId) {
            return yield* fail("deleteStream", new Error(`byte ${at + start} of ${logPath} is not a line of ${streamId}`))
          }
          start = end === -1 ? lines.length : end + 1
        }
        const erased = eraseLines(lines)
        if (!erased.equals(lines)) {
          yield* file.seek(at, "start")
          yield* file.writeAll(erased)
          wrote = true
        }
        at += cut
      }
    }
    if (wrote && durable) yield* file.sync
  }))
}
