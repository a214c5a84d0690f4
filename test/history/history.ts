/**
 * The history of a concurrent run, Jepsen style: every operation a client
 * performs is an `invoke` entry (with its arguments) followed by `ok` (with
 * what it returned), `fail` (a definite refusal, with the error's tag and
 * fields) or `info` (the outcome is unknown: a lost connection, a timeout).
 * An invoke without any completion (its process was killed) is unknown too.
 *
 * Entries are plain data, so a process can write them as JSON lines and the
 * checker can read them back (`encodeEntry` / `decodeEntry`: bigints survive).
 */
import { appendFileSync, readFileSync } from "node:fs"
import type { Query } from "chronicle"

/** An expected version as the store takes it. */
export type Expected = number | "NoStream" | "StreamExists" | "Any"

/** An event as an append sends it: what the checker needs to recognise it in the log. */
export interface EventSpec {
  readonly id: string
  readonly type: string
  readonly tags: ReadonlyArray<string>
}

/** An event as a read returned it. */
export interface SeenEvent {
  readonly id: string
  readonly stream: string
  readonly version: number
  readonly position: bigint
  readonly type: string
  readonly tags: ReadonlyArray<string>
}

/** An event of the final log: the ground truth read once the run is over. */
export type LogEvent = SeenEvent

/**
 * A deleted stream of the final state, with what the store keeps of its
 * tombstone: the version it was deleted at, whether it was erased, the
 * highest global position when the tombstone was written (each when the
 * store records it).
 */
export interface FinalTombstone {
  readonly stream: string
  readonly version?: number | undefined
  readonly erased?: boolean | undefined
  readonly position?: bigint | undefined
}

/** A conditional append's condition, with the ids the decision read returned when it came from one. */
export interface ConditionSpec {
  readonly query: Query.Query
  readonly after: bigint
  /** The event ids the decision read (`queryForDecision`) returned; absent for a hand-built condition. */
  readonly seen?: ReadonlyArray<string> | undefined
}

/** What a client asked the store. */
export type Op =
  | {
    readonly f: "append"
    readonly stream: string
    readonly events: ReadonlyArray<EventSpec>
    readonly expected: Expected
    readonly condition?: ConditionSpec | undefined
  }
  | { readonly f: "read"; readonly stream: string }
  | { readonly f: "version"; readonly stream: string }
  | { readonly f: "readAll"; readonly from: bigint; readonly limit: number }
  | { readonly f: "query"; readonly query: Query.Query; readonly after: bigint; readonly limit: number }
  | { readonly f: "decide"; readonly query: Query.Query }
  | { readonly f: "delete"; readonly stream: string; readonly expected: Expected; readonly erase: boolean }
  | { readonly f: "isDeleted"; readonly stream: string }

/** What an operation returned. */
export type Value =
  | { readonly f: "append"; readonly version: number; readonly positions: ReadonlyArray<bigint> }
  | { readonly f: "read" | "readAll" | "query"; readonly events: ReadonlyArray<SeenEvent> }
  | { readonly f: "decide"; readonly events: ReadonlyArray<SeenEvent>; readonly after: bigint }
  | { readonly f: "version"; readonly version: number }
  | { readonly f: "delete" }
  | { readonly f: "isDeleted"; readonly deleted: boolean }

/** A failure as data: the error's tag and its fields (`actual`, `position`, …). */
export interface ErrorData {
  readonly tag: string
  readonly [field: string]: unknown
}

interface EntryBase {
  /** The operation's id, unique in the run. */
  readonly id: string
  /** The clock the time was read from: one per OS process. */
  readonly process: string
  /** The client (a fiber, one at a time) that performed the operation. */
  readonly client: string
  /** Milliseconds, `performance.timeOrigin + performance.now()` of `process`. */
  readonly time: number
}

export type Entry =
  | EntryBase & { readonly type: "invoke"; readonly op: Op }
  | EntryBase & { readonly type: "ok"; readonly value: Value }
  | EntryBase & { readonly type: "fail"; readonly error: ErrorData }
  | EntryBase & { readonly type: "info"; readonly reason: string }

export type History = ReadonlyArray<Entry>

/** The current time of this process, comparable (within a few ms) with other processes' times. */
export const now = (): number => performance.timeOrigin + performance.now()

// ---------------------------------------------------------------------------
// JSON lines (bigints written as "123n")
// ---------------------------------------------------------------------------

const bigintPattern = /^-?\d+n$/

export const encodeEntry = (entry: Entry): string =>
  JSON.stringify(entry, (_key, value: unknown) => (typeof value === "bigint" ? `${value}n` : value))

export const decodeEntry = (line: string): Entry =>
  JSON.parse(line, (_key, value: unknown) =>
    typeof value === "string" && bigintPattern.test(value) ? BigInt(value.slice(0, -1)) : value) as Entry

/** Reads a history file; a torn last line (its writer was killed mid-write) is dropped. */
export const readHistoryFile = (path: string): Array<Entry> => {
  const entries: Array<Entry> = []
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.length === 0) continue
    try {
      entries.push(decodeEntry(line))
    } catch {
      // the torn last line of a killed writer
    }
  }
  return entries
}

/** Where a client records entries. */
export interface Recorder {
  readonly record: (entry: Entry) => void
}

/** Records into an array (in-process runs). */
export const memoryRecorder = (): Recorder & { readonly entries: Array<Entry> } => {
  const entries: Array<Entry> = []
  return { entries, record: (entry) => void entries.push(entry) }
}

/** Records to a JSON-lines file, synchronously: an entry is on disk before the operation it announces starts. */
export const fileRecorder = (path: string): Recorder => ({
  record: (entry) => appendFileSync(path, `${encodeEntry(entry)}\n`)
})

/** Merges histories of several processes in time order. */
export const merge = (...histories: ReadonlyArray<History>): Array<Entry> =>
  histories.flat().sort((a, b) => a.time - b.time)

/** The error of a failed effect as data: its `_tag` and its own fields. */
export const errorData = (error: unknown): ErrorData => {
  if (typeof error !== "object" || error === null) return { tag: "Unknown", message: String(error) }
  const record = error as Record<string, unknown>
  const tag = typeof record._tag === "string" ? record._tag : "Unknown"
  const fields: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(record)) {
    if (key === "_tag" || key === "cause" || key === "query") continue
    if (typeof value === "string" || typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") {
      fields[key] = value
    }
  }
  if (tag === "StoreError" || tag === "Unknown") fields.message = error instanceof Error ? error.message : String(error)
  return { ...fields, tag }
}
