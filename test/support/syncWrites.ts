/**
 * Hooks into the synchronous writes and syncs of this process
 * (`fs.writeSync` and `fs.fdatasync`, which the filesystem store's
 * writer appends and syncs with) without touching the store: the hook sees
 * each write or sync of a file by path before it happens.
 */
import { createRequire, syncBuiltinESMExports } from "node:module"

/** The `node:fs` module object itself (an ESM namespace of it cannot be assigned to). */
const NodeFs = createRequire(import.meta.url)("node:fs") as typeof import("node:fs")

/** The path of an open descriptor (Linux). */
const pathOf = (fd: number) => {
  try {
    return NodeFs.readlinkSync(`/proc/self/fd/${fd}`)
  } catch {
    return ""
  }
}

/**
 * Calls `before(path)` before each `fs.writeSync` of this process, and
 * `after(path)` once it returned; returns the function that removes the hook.
 */
export const hookSyncWrites = (hooks: { readonly before?: (path: string) => void; readonly after?: (path: string) => void }) => {
  const original = NodeFs.writeSync
  const hooked = function(this: unknown, fd: number, ...rest: Array<unknown>) {
    const path = pathOf(fd)
    hooks.before?.(path)
    const written = (original as (...args: Array<unknown>) => number).call(this, fd, ...rest)
    hooks.after?.(path)
    return written
  }
  ;(NodeFs as { writeSync: unknown }).writeSync = hooked
  syncBuiltinESMExports()
  return () => {
    ;(NodeFs as { writeSync: unknown }).writeSync = original
    syncBuiltinESMExports()
  }
}

/**
 * Calls `before(path, onEventLoop)` before each `fs.fdatasync` and
 * `fs.fdatasyncSync` (`onEventLoop`) of this process (what it throws, the
 * sync fails with instead), and `after(path)` once it succeeded; returns the
 * function that removes the hook.
 */
export const hookSyncs = (
  hooks: { readonly before?: (path: string, onEventLoop: boolean) => void; readonly after?: (path: string) => void }
) => {
  const original = NodeFs.fdatasync
  const originalSync = NodeFs.fdatasyncSync
  const hooked = function(this: unknown, fd: number, callback: (error: NodeJS.ErrnoException | null) => void) {
    const path = pathOf(fd)
    try {
      hooks.before?.(path, false)
    } catch (error) {
      process.nextTick(() => callback(error as NodeJS.ErrnoException))
      return
    }
    original.call(this, fd, (error) => {
      if (!error) hooks.after?.(path)
      callback(error)
    })
  }
  const hookedSync = function(this: unknown, fd: number) {
    const path = pathOf(fd)
    hooks.before?.(path, true)
    originalSync.call(this, fd)
    hooks.after?.(path)
  }
  ;(NodeFs as { fdatasync: unknown }).fdatasync = hooked
  ;(NodeFs as { fdatasyncSync: unknown }).fdatasyncSync = hookedSync
  syncBuiltinESMExports()
  return () => {
    ;(NodeFs as { fdatasync: unknown }).fdatasync = original
    ;(NodeFs as { fdatasyncSync: unknown }).fdatasyncSync = originalSync
    syncBuiltinESMExports()
  }
}
