/**
 * The filesystem event store's file I/O beneath the log format: positional
 * reads, syncing a directory, and watching it for other processes' appends.
 */
import * as NodeFs from "node:fs"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"

/** The most bytes one read of the log takes at once. */
export const readRunLimit = 4 * 1024 * 1024

/** Positional reads on the log's descriptor: no shared file position, so fibers may read at once. */
export const readBytes = (file: FileSystem.File, offset: number, length: number) =>
  Effect.async<Buffer, Error>((resume) => {
    const buffer = Buffer.allocUnsafe(length)
    const step = (filled: number) =>
      NodeFs.read(file.fd, buffer, filled, length - filled, offset + filled, (error, read) => {
        if (error) resume(Effect.fail(error))
        else if (read === 0 || filled + read === length) resume(Effect.succeed(buffer.subarray(0, filled + read)))
        else step(filled + read)
      })
    step(0)
  })

/**
 * Other processes' appends: watches the directory (earlier versions renamed a
 * compacted log into place) for changes of the file `logFileName`. Best
 * effort: where watching fails, subscriptions poll.
 */
export const watchDirectory = (directory: string, logFileName: string, onChange: () => void): NodeFs.FSWatcher | undefined => {
  try {
    return NodeFs.watch(directory, { persistent: false }, (_, file) => {
      if (file === logFileName) onChange()
    }).on("error", () => {})
  } catch {
    return undefined
  }
}

/** Syncs a directory (a file created in it survives a crash); best effort. */
export const syncDirectory = (fs: FileSystem.FileSystem, directory: string) =>
  Effect.scoped(Effect.flatMap(fs.open(directory, { flag: "r" }), (dir) => dir.sync)).pipe(Effect.ignore)

/** A buffer reads fill and decode before anything else runs; grown when a read needs more. */
export interface ReadBuffer {
  bytes: Buffer
}

/** A fresh read buffer. */
export const readBuffer = (): ReadBuffer => ({ bytes: Buffer.allocUnsafe(64 * 1024) })

/**
 * Reads `length` bytes at `offset` synchronously into `buffer` (throws on
 * failure); what it returns is overwritten by the next read into it.
 */
export const readInto = (buffer: ReadBuffer, file: FileSystem.File, offset: number, length: number): Buffer => {
  if (buffer.bytes.length < length) buffer.bytes = Buffer.allocUnsafe(Math.max(length, buffer.bytes.length * 2))
  const bytes = buffer.bytes
  let filled = 0
  while (filled < length) {
    const read = NodeFs.readSync(file.fd, bytes, filled, length - filled, offset + filled)
    if (read === 0) break
    filled += read
  }
  return bytes.subarray(0, filled)
}

/**
 * Reads `length` bytes at `offset` synchronously: a read from the page cache
 * costs less than a round trip through the thread pool.
 */
export const readBytesNow = (file: FileSystem.File, offset: number, length: number) =>
  Either.try(() => readInto({ bytes: Buffer.allocUnsafe(length) }, file, offset, length))

/**
 * Appends `buffer` to the log synchronously: a write into the page cache
 * costs less than a round trip through the thread pool. Returns how many `write`
 * calls it took: the bytes of one call land together (the file's end is
 * taken and written under one lock), those of several may not.
 */
export const appendNow = (file: FileSystem.File, buffer: Uint8Array) =>
  Either.try(() => {
    let written = 0
    let calls = 0
    for (; written < buffer.length; calls++) written += NodeFs.writeSync(file.fd, buffer, written, buffer.length - written)
    return calls
  })

/**
 * Makes the log's appended bytes durable with `fdatasync` on the event loop:
 * nothing else runs until the disk is done, but there is no round trip
 * through the thread pool (for an append that has no company to wait for).
 */
export const syncDataNow = (file: FileSystem.File) => Either.try(() => NodeFs.fdatasyncSync(file.fd))

/**
 * Makes the log's appended bytes durable with `fdatasync` (the data and the
 * size, not the times) on the thread pool: while the disk works, the event
 * loop runs on and the next group of appends gathers (group commit).
 */
export const syncData = (file: FileSystem.File) =>
  Effect.async<void, Error>((resume) => {
    NodeFs.fdatasync(file.fd, (error) => resume(error ? Effect.fail(error) : Effect.void))
  })
