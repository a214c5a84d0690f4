/**
 * The history checker: a pure function over a recorded history and the final
 * log (read once every client is done) that lists every way the two
 * contradict what an event store promises. Each violation names its rule,
 * the operations and events involved, and says what was wrong.
 *
 * Times of different processes are compared with a slack (their clocks
 * agree only to a few ms): "A happened before B" across processes needs a
 * gap larger than the slack, so the checker never accuses on clock noise.
 */
import { ExpectedVersion, Query } from "chronicle"
import type { ConditionSpec, ErrorData, Expected, FinalTombstone, History, LogEvent, Op, SeenEvent, Value } from "./history.js"

/** The rules, in the order the checker reports them. */
export const rules = [
  "duplicate-event",
  "duplicate-position",
  "duplicate-version",
  "version-gap",
  "stream-order",
  "phantom-event",
  "event-mismatch",
  "partial-batch",
  "lost-ack",
  "ack-mismatch",
  "resend-mismatch",
  "ack-expected",
  "resend-refused",
  "append-stale",
  "conflict-matched",
  "conflict-actual",
  "duplicate-report",
  "condition-report",
  "dcb-condition",
  "dcb-unseen",
  "read-not-in-log",
  "read-order",
  "read-bounds",
  "read-hole",
  "read-mismatch",
  "delete-version",
  "append-after-delete",
  "delete-lost",
  "delete-phantom",
  "erase-leftover",
  "erase-partial",
  "erase-read",
  "position-reused"
] as const

export type Rule = typeof rules[number]

export interface Violation {
  readonly rule: Rule
  readonly message: string
  /** The operations involved. */
  readonly ops: ReadonlyArray<string>
  /** The event ids involved. */
  readonly events: ReadonlyArray<string>
}

export interface CheckOptions {
  /** How far apart two processes' clocks may be, in ms; default 25. */
  readonly crossProcessSlackMs?: number | undefined
  /**
   * The deleted streams of the final state, every one of them, read with the
   * final log. Without it, the rules about the final deletion state are
   * skipped (the history's own evidence is still checked).
   */
  readonly tombstones?: ReadonlyArray<FinalTombstone> | undefined
}

/** The refusals after which nothing of the batch may have been stored; any other failure leaves the outcome unknown. */
const definiteFailures = new Set([
  "ConcurrencyConflict",
  "DuplicateEventId",
  "AppendConditionFailed",
  "InvalidEvent",
  "StreamDeleted",
  "EventTooLarge"
])

/**
 * A StoreError saying the write was fenced off (the filesystem store's writer
 * lost its lock while it stalled): nothing of it was stored, a definite refusal.
 */
const fencedOff = (error: ErrorData) =>
  error.tag === "StoreError" && String(error.reason ?? error.message).includes("the write lock was lost")

const isDefinite = (error: ErrorData) => definiteFailures.has(error.tag) || fencedOff(error)

/** One operation, its invoke and completion paired. */
export interface Operation {
  readonly id: string
  readonly process: string
  readonly client: string
  readonly op: Op
  readonly invoke: number
  /** When it completed; `Infinity` when the outcome is unknown (never completed, or `info`). */
  readonly end: number
  readonly status: "ok" | "fail" | "unknown"
  readonly value?: Value | undefined
  readonly error?: ErrorData | undefined
}

type AppendOp = Operation & { readonly op: Extract<Op, { f: "append" }> }
type DeleteOp = Operation & { readonly op: Extract<Op, { f: "delete" }> }

/** The version an expected version pins the stream at, if it pins one. */
const pinned = (expected: Expected): number | undefined =>
  typeof expected === "number" ? expected : expected === "NoStream" ? 0 : undefined

/** Pairs invokes with completions. A `fail` that is not a definite refusal (a StoreError, unless fenced off) is unknown. */
export const operations = (history: History): Array<Operation> => {
  const invokes = new Map<string, Extract<History[number], { type: "invoke" }>>()
  const completions = new Map<string, History[number]>()
  for (const entry of history) {
    if (entry.type === "invoke") invokes.set(entry.id, entry)
    else completions.set(entry.id, entry)
  }
  const out: Array<Operation> = []
  for (const invoke of invokes.values()) {
    const done = completions.get(invoke.id)
    const base = { id: invoke.id, process: invoke.process, client: invoke.client, op: invoke.op, invoke: invoke.time }
    if (done?.type === "ok") out.push({ ...base, end: done.time, status: "ok", value: done.value })
    else if (done?.type === "fail" && isDefinite(done.error)) {
      out.push({ ...base, end: done.time, status: "fail", error: done.error })
    } else out.push({ ...base, end: Infinity, status: "unknown", error: done?.type === "fail" ? done.error : undefined })
  }
  return out.sort((a, b) => a.invoke - b.invoke)
}

const show = (e: SeenEvent) => `${e.stream}@${e.version} (position ${e.position}, id ${e.id})`
const showOp = (o: Operation) => `${o.id} [${o.client}]`

/**
 * Checks a history against the final log. Returns the violations, empty
 * when the run kept every promise the checker knows of.
 */
export const check = (history: History, log: ReadonlyArray<LogEvent>, options: CheckOptions = {}): Array<Violation> => {
  const slack = options.crossProcessSlackMs ?? 25
  const violations: Array<Violation> = []
  const report = (rule: Rule, message: string, ops: ReadonlyArray<string> = [], events: ReadonlyArray<string> = []) =>
    void violations.push({ rule, message, ops, events })

  /** Surely before: `a` ended before `b` began, beyond clock noise. */
  const before = (aTime: number, aProcess: string, bTime: number, bProcess: string) =>
    aTime + (aProcess === bProcess ? 0 : slack) < bTime
  /** Possibly before: `a` may have begun before `b` ended. */
  const mayPrecede = (aTime: number, aProcess: string, bTime: number, bProcess: string) =>
    aTime <= bTime + (aProcess === bProcess ? 0 : slack)

  const ops = operations(history)
  const appends = ops.filter((o): o is AppendOp => o.op.f === "append")

  // ---- the log on its own -------------------------------------------------
  const byId = new Map<string, Array<LogEvent>>()
  const byPosition = new Map<bigint, Array<LogEvent>>()
  const byStream = new Map<string, Array<LogEvent>>()
  for (const event of log) {
    byId.set(event.id, [...(byId.get(event.id) ?? []), event])
    byPosition.set(event.position, [...(byPosition.get(event.position) ?? []), event])
    const stream = byStream.get(event.stream) ?? []
    stream.push(event)
    byStream.set(event.stream, stream)
  }
  for (const [id, found] of byId) {
    if (found.length > 1) report("duplicate-event", `event ${id} is stored ${found.length} times: ${found.map(show).join(", ")}`, [], [id])
  }
  for (const [position, found] of byPosition) {
    if (found.length > 1) {
      report("duplicate-position", `global position ${position} holds ${found.length} events: ${found.map(show).join(", ")}`, [], found.map((e) => e.id))
    }
  }
  for (const [stream, events] of byStream) {
    events.sort((a, b) => a.version - b.version || (a.position < b.position ? -1 : a.position > b.position ? 1 : 0))
    const versions = new Map<number, Array<LogEvent>>()
    for (const e of events) versions.set(e.version, [...(versions.get(e.version) ?? []), e])
    for (const [version, found] of versions) {
      if (found.length > 1) {
        report("duplicate-version", `${stream} has ${found.length} events at version ${version}: ${found.map(show).join(", ")}`, [], found.map((e) => e.id))
      }
    }
    const distinct = [...versions.keys()].sort((a, b) => a - b)
    const missing = []
    for (let v = 1, i = 0; i < distinct.length; v++) {
      if (distinct[i] === v) i++
      else missing.push(v)
      if (missing.length > 20) break
    }
    if (missing.length > 0 || (distinct[0] ?? 1) < 1) {
      report("version-gap", `${stream} has versions ${distinct.length} distinct up to ${distinct.at(-1)}, missing ${missing.join(", ")}`)
    }
    for (let i = 1; i < events.length; i++) {
      const lower = events[i - 1]!
      const higher = events[i]!
      if (higher.version > lower.version && higher.position <= lower.position) {
        report(
          "stream-order",
          `${stream}: version ${higher.version} is at global position ${higher.position}, not after version ${lower.version} at ${lower.position}`,
          [],
          [lower.id, higher.id]
        )
      }
    }
  }

  // ---- deletions: what may have taken effect, and what proves it did -------------
  const deletes = ops.filter((o): o is DeleteOp => o.op.f === "delete")
  const final = options.tombstones === undefined ? undefined : new Map(options.tombstones.map((t) => [t.stream, t]))
  const deletesOf = new Map<string, Array<DeleteOp>>()
  for (const o of deletes) deletesOf.set(o.op.stream, [...(deletesOf.get(o.op.stream) ?? []), o])
  /** The deletes of a stream that may have taken effect: acknowledged, or of unknown outcome. */
  const effective = (stream: string) => (deletesOf.get(stream) ?? []).filter((o) => o.status !== "fail")
  const erases = (stream: string) => effective(stream).filter((o) => o.op.erase)
  const mayBeErased = (stream: string) => erases(stream).length > 0 || final?.get(stream)?.erased === true
  const surelyErased = (stream: string) => erases(stream).some((o) => o.status === "ok") || final?.get(stream)?.erased === true
  /** An erasure of the stream acknowledged before `time`. */
  const erasedBefore = (stream: string, time: number, process: string) =>
    erases(stream).find((o) => o.status === "ok" && before(o.end, o.process, time, process))
  /** Whether an erasure of the stream may have begun by `time`. */
  const erasingBy = (stream: string, time: number, process: string) => erases(stream).some((o) => mayPrecede(o.invoke, o.process, time, process))
  /** What proves a stream deleted, and when: an acknowledged delete, an append refused with StreamDeleted, an isDeleted read saying so. */
  const proofs = new Map<string, Array<Operation>>()
  for (const o of ops) {
    const proof = (o.op.f === "delete" && o.status === "ok") ||
      (o.op.f === "append" && o.status === "fail" && o.error?.tag === "StreamDeleted") ||
      (o.op.f === "isDeleted" && o.value?.f === "isDeleted" && o.value.deleted)
    if (proof && "stream" in o.op) proofs.set(o.op.stream, [...(proofs.get(o.op.stream) ?? []), o])
  }
  /** A proof that the stream was deleted before `time`. */
  const deletedBefore = (stream: string, time: number, process: string) =>
    proofs.get(stream)?.find((p) => before(p.end, p.process, time, process))
  /**
   * What clients learned of the events of streams that may have been erased
   * (the log no longer says): from acknowledgements, then from reads.
   */
  const ghosts = new Map<string, SeenEvent>()
  for (const o of appends) {
    if (o.status !== "ok" || o.value?.f !== "append" || !mayBeErased(o.op.stream)) continue
    const { version, positions } = o.value
    o.op.events.forEach((e, i) => {
      const position = positions[i]
      if (position !== undefined && !ghosts.has(e.id)) {
        ghosts.set(e.id, { id: e.id, stream: o.op.stream, version: version - o.op.events.length + 1 + i, position, type: e.type, tags: e.tags })
      }
    })
  }
  for (const o of ops) {
    if (o.status !== "ok" || o.value === undefined || !("events" in o.value)) continue
    for (const e of o.value.events) if (mayBeErased(e.stream) && !byId.has(e.id) && !ghosts.has(e.id)) ghosts.set(e.id, e)
  }
  const ghostsOf = (stream: string) => [...ghosts.values()].filter((e) => e.stream === stream)
  const ghostsAt = (position: bigint) => [...ghosts.values()].filter((e) => e.position === position)

  // ---- batches: the appends that sent the same events to the same stream ------
  const batches = new Map<string, Array<AppendOp>>()
  /** Every batch that carried an event id. */
  const batchesOf = new Map<string, Array<string>>()
  for (const o of appends) {
    if (o.op.events.length === 0) continue
    const batch = `${o.op.stream}|${o.op.events.map((e) => e.id).join(",")}`
    const sent = batches.get(batch)
    if (sent !== undefined) {
      sent.push(o)
      continue
    }
    batches.set(batch, [o])
    for (const e of o.op.events) batchesOf.set(e.id, [...(batchesOf.get(e.id) ?? []), batch])
  }

  for (const event of log) {
    const carriers = batchesOf.get(event.id)
    if (carriers === undefined) {
      report("phantom-event", `${show(event)} was never sent by any append of the history`, [], [event.id])
      continue
    }
    const sent = carriers.flatMap((batch) => batches.get(batch)!)
    if (sent.every((o) => o.status === "fail")) {
      report(
        "phantom-event",
        `${show(event)} is stored, but every append that sent it was refused: ${sent.map((o) => `${showOp(o)} ${o.error?.tag}`).join(", ")}`,
        sent.map((o) => o.id),
        [event.id]
      )
    }
    const tags = [...event.tags].sort().join(",")
    const sameAsSent = sent.some((o) =>
      o.op.stream === event.stream &&
      o.op.events.some((e) => e.id === event.id && e.type === event.type && [...e.tags].sort().join(",") === tags)
    )
    if (!sameAsSent) {
      const spec = sent[0]!.op.events.find((e) => e.id === event.id)!
      report(
        "event-mismatch",
        `${show(event)} is stored as ${event.type} [${event.tags.join(",")}] but was sent to ${sent[0]!.op.stream} as ${spec.type} [${spec.tags.join(",")}]`,
        sent.map((o) => o.id),
        [event.id]
      )
    }
  }

  /** Per stream: versions clients saw (acknowledged appends, reads) and when. */
  const observed = new Map<string, Array<{ readonly end: number; readonly process: string; readonly version: number }>>()
  const observe = (stream: string, end: number, process: string, version: number) => {
    const list = observed.get(stream) ?? []
    list.push({ end, process, version })
    observed.set(stream, list)
  }
  for (const o of ops) {
    if (o.status !== "ok" || o.value === undefined) continue
    if (o.op.f === "append" && o.value.f === "append" && o.op.events.length > 0) observe(o.op.stream, o.end, o.process, o.value.version)
    if (o.op.f === "read" && o.value.f === "read") observe(o.op.stream, o.end, o.process, o.value.events.at(-1)?.version ?? 0)
    if (o.op.f === "version" && o.value.f === "version") observe(o.op.stream, o.end, o.process, o.value.version)
  }
  /** The least version the stream surely had at `time`: what some client saw before. */
  const lowerAt = (stream: string, time: number, process: string) => {
    let lower = 0
    for (const seen of observed.get(stream) ?? []) {
      if (seen.version > lower && before(seen.end, seen.process, time, process)) lower = seen.version
    }
    return lower
  }
  /** When each stored event's append was first invoked. */
  const firstInvoke = new Map<string, Operation>()
  for (const sent of batches.values()) {
    const first = sent.reduce((a, b) => (a.invoke <= b.invoke ? a : b))
    for (const e of sent[0]!.op.events) {
      const known = firstInvoke.get(e.id)
      if (known === undefined || first.invoke < known.invoke) firstInvoke.set(e.id, first)
    }
  }
  /** The greatest version the stream may have had at `time`: events whose append may have begun by then. */
  const upperAt = (stream: string, time: number, process: string) => {
    // an erased stream's unacknowledged events left no trace: its versions are unknown
    if (mayBeErased(stream) && appends.some((o) => o.op.stream === stream && o.status === "unknown")) return Infinity
    let upper = 0
    for (const e of [...(byStream.get(stream) ?? []), ...(mayBeErased(stream) ? ghostsOf(stream) : [])]) {
      const o = firstInvoke.get(e.id)
      if (e.version > upper && (o === undefined || mayPrecede(o.invoke, o.process, time, process))) upper = e.version
    }
    return upper
  }

  // ---- appends against the log ---------------------------------------------
  for (const [batch, sent] of batches) {
    const specs = sent[0]!.op.events
    const stored = specs.map((e) => byId.get(e.id)?.find((found) => found.stream === sent[0]!.op.stream))
    const present = stored.filter((e): e is LogEvent => e !== undefined)
    const oks = sent.filter((o) => o.status === "ok")
    const ids = specs.map((e) => e.id)
    if (present.length > 0 && present.length < specs.length) {
      report(
        "partial-batch",
        `only ${present.length} of the ${specs.length} events of ${sent.map(showOp).join(", ")} are stored: ${present.map(show).join(", ")}`,
        sent.map((o) => o.id),
        ids
      )
    }
    if (present.length === specs.length) {
      const v1 = present[0]!.version
      const torn = present.some((e, i) => e.version !== v1 + i || (i > 0 && e.position <= present[i - 1]!.position))
      if (torn) {
        report("partial-batch", `the batch of ${sent.map(showOp).join(", ")} is not stored contiguously: ${present.map(show).join(", ")}`, sent.map((o) => o.id), ids)
      }
      const firstOp = sent.reduce((a, b) => (a.invoke <= b.invoke ? a : b))
      const lower = lowerAt(firstOp.op.stream, firstOp.invoke, firstOp.process)
      if (v1 - 1 < lower) {
        report(
          "append-stale",
          `${showOp(firstOp)} to ${firstOp.op.stream} was stored at version ${v1} (after ${v1 - 1}), but version ${lower} had been seen before it was invoked`,
          sent.map((o) => o.id),
          ids
        )
      }
      for (const o of oks) {
        if (!ExpectedVersion.matches(o.op.expected, v1 - 1)) {
          report(
            "ack-expected",
            `${showOp(o)} expected ${o.op.expected} and succeeded, but its batch was stored after version ${v1 - 1}`,
            [o.id],
            ids
          )
        }
      }
    }
    const firstSend = sent.reduce((a, b) => (a.invoke <= b.invoke ? a : b))
    const proof = deletedBefore(firstSend.op.stream, firstSend.invoke, firstSend.process)
    if (proof !== undefined && (present.length > 0 || oks.length > 0)) {
      report(
        "append-after-delete",
        `${showOp(firstSend)} sent a batch to ${firstSend.op.stream} after ${showOp(proof)} (${proof.op.f}) showed it deleted, yet the batch was ${
          oks.length > 0 ? `acknowledged (${oks.map(showOp).join(", ")})` : "stored"
        }${present.length > 0 ? `: ${present.map(show).join(", ")}` : ""}`,
        [proof.id, ...sent.map((o) => o.id)],
        ids
      )
    }
    for (const o of oks) {
      if (present.length < specs.length && mayBeErased(o.op.stream)) {
        // erased with its stream: fine, unless the erasure left some of the stream behind
        const left = byStream.get(o.op.stream) ?? []
        if (left.length > 0) {
          report(
            "erase-partial",
            `${o.op.stream} may have been erased (${erases(o.op.stream).map(showOp).join(", ")}): ${showOp(o)}'s acknowledged events are gone, but ${
              left.slice(0, 3).map(show).join(", ")
            }${left.length > 3 ? ` and ${left.length - 3} more` : ""} are still in the log`,
            [o.id, ...erases(o.op.stream).map((d) => d.id)],
            [...ids, ...left.map((e) => e.id)]
          )
        }
        continue
      }
      if (present.length < specs.length) {
        report(
          "lost-ack",
          `${showOp(o)} to ${o.op.stream} was acknowledged (version ${o.value?.f === "append" ? o.value.version : "?"}) but ${specs.length - present.length} of its ${specs.length} events are not in the log`,
          [o.id],
          ids
        )
        continue
      }
      if (o.value?.f !== "append") continue
      const positions = present.map((e) => e.position)
      if (o.value.version !== present.at(-1)!.version || o.value.positions.join(",") !== positions.join(",")) {
        report(
          "ack-mismatch",
          `${showOp(o)} was acknowledged as version ${o.value.version} at positions [${o.value.positions.join(", ")}], but the log holds ${present.map(show).join(", ")}`,
          [o.id],
          ids
        )
      }
    }
    const results = new Set(oks.map((o) => (o.value?.f === "append" ? `${o.value.version}:${o.value.positions.join(",")}` : "")))
    if (results.size > 1) {
      report(
        "resend-mismatch",
        `the sends of batch ${batch} were acknowledged differently: ${oks.map((o) => `${showOp(o)} → ${o.value?.f === "append" ? `v${o.value.version} [${o.value.positions.join(",")}]` : "?"}`).join("; ")}`,
        oks.map((o) => o.id),
        ids
      )
    }
    for (const acked of oks) {
      for (const o of sent) {
        if (o === acked || o.status !== "fail" || o.op.stream !== acked.op.stream || o.op.expected !== acked.op.expected) continue
        if (o.op.condition !== undefined || acked.op.condition !== undefined) continue
        if (!before(acked.end, acked.process, o.invoke, o.process)) continue
        // a tombstone keeps a stored batch recognised; an erasure may forget it
        if (
          o.error?.tag === "ConcurrencyConflict" || o.error?.tag === "DuplicateEventId" ||
          (o.error?.tag === "StreamDeleted" && !mayBeErased(o.op.stream))
        ) {
          report(
            "resend-refused",
            `${showOp(o)} re-sent the batch ${showOp(acked)} had stored (same stream, expected ${o.op.expected}) and was refused with ${o.error.tag}`,
            [acked.id, o.id],
            ids
          )
        }
      }
    }
  }

  // ---- refusals --------------------------------------------------------------
  for (const o of [...appends, ...deletes]) {
    if (o.status !== "fail" || o.error?.tag !== "ConcurrencyConflict") continue
    const ids = o.op.f === "append" ? o.op.events.map((e) => e.id) : []
    const what = o.op.f === "append" ? "" : " (a delete)"
    const actual = Number(o.error.actual)
    if (ExpectedVersion.matches(o.op.expected, actual)) {
      report("conflict-matched", `${showOp(o)}${what} to ${o.op.stream} expected ${o.op.expected} and was refused as a conflict with actual ${actual}, which matches`, [o.id], ids)
      continue
    }
    const lower = lowerAt(o.op.stream, o.invoke, o.process)
    const upper = upperAt(o.op.stream, o.end, o.process)
    if (actual < lower || actual > upper) {
      report(
        "conflict-actual",
        `${showOp(o)}${what} to ${o.op.stream} (expected ${o.op.expected}) reported actual ${actual}, but the stream was between ${lower} and ${upper} while it ran`,
        [o.id],
        ids
      )
    }
  }
  for (const o of appends) {
    if (o.status !== "fail" || o.error === undefined) continue
    const error = o.error
    const ids = o.op.events.map((e) => e.id)
    if (error.tag === "DuplicateEventId") {
      const found = byId.get(String(error.eventId))?.[0] ?? ghosts.get(String(error.eventId))
      if (found === undefined || found.stream !== error.existingStreamId || found.version !== Number(error.existingVersion)) {
        report(
          "duplicate-report",
          `${showOp(o)} was refused: event ${String(error.eventId)} already stored as ${String(error.existingStreamId)}@${String(error.existingVersion)}; the log has ${found === undefined ? "no such event" : show(found)}`,
          [o.id],
          ids
        )
      }
    }
    if (error.tag === "AppendConditionFailed" && o.op.condition !== undefined) {
      const position = typeof error.position === "bigint" ? error.position : BigInt(String(error.position))
      const found = [...(byPosition.get(position) ?? []), ...ghostsAt(position)]
      const culprit = found.find((e) => !ids.includes(e.id) && Query.matches(o.op.condition!.query, e))
      if (culprit === undefined) {
        report(
          "condition-report",
          `${showOp(o)} was refused: an event matching ${Query.format(o.op.condition.query)} at position ${position}; the log has ${found.length === 0 ? "nothing there" : found.map(show).join(", ")}`,
          [o.id],
          ids
        )
      }
    }
  }

  // ---- conditional appends -------------------------------------------------------
  for (const o of appends) {
    const condition: ConditionSpec | undefined = o.op.condition
    if (condition === undefined || o.status === "fail") continue
    const ids = new Set(o.op.events.map((e) => e.id))
    const stored = o.op.events.map((e) => byId.get(e.id)?.[0])
    if (stored.length === 0 || stored.some((e) => e === undefined)) continue
    const at = stored[0]!.position
    const seen = condition.seen === undefined ? undefined : new Set(condition.seen)
    for (const e of log) {
      if (ids.has(e.id) || e.position >= at || !Query.matches(condition.query, e)) continue
      if (e.position > condition.after) {
        report(
          "dcb-condition",
          `${showOp(o)} appended at position ${at} on the condition that nothing matching ${Query.format(condition.query)} came after ${condition.after}, but ${show(e)} [${e.type} ${e.tags.join(",")}] did`,
          [o.id, ...(firstInvoke.get(e.id) === undefined ? [] : [firstInvoke.get(e.id)!.id])],
          [...ids, e.id]
        )
      } else if (seen !== undefined && !seen.has(e.id)) {
        report(
          "dcb-unseen",
          `${showOp(o)} appended at position ${at} on a decision read that never saw ${show(e)} [${e.type} ${e.tags.join(",")}], which matches ${Query.format(condition.query)} and sits before it`,
          [o.id, ...(firstInvoke.get(e.id) === undefined ? [] : [firstInvoke.get(e.id)!.id])],
          [...ids, e.id]
        )
      }
    }
  }

  // ---- reads -----------------------------------------------------------------------
  const erasedReads = new Set<string>()
  const sameAsLog = (o: Operation, e: SeenEvent) => {
    const erased = erasedBefore(e.stream, o.invoke, o.process)
    if (erased !== undefined) {
      // once per read and stream
      if (!erasedReads.has(`${o.id}|${e.stream}`)) {
        erasedReads.add(`${o.id}|${e.stream}`)
        report("erase-read", `${showOp(o)} (${o.op.f}) returned ${show(e)}, though ${showOp(erased)} had erased ${e.stream} before it was invoked`, [erased.id, o.id], [e.id])
      }
      return
    }
    const found = byId.get(e.id) ?? (ghosts.has(e.id) ? [ghosts.get(e.id)!] : undefined)
    if (found === undefined || !found.some((f) => f.stream === e.stream && f.version === e.version && f.position === e.position)) {
      report("read-not-in-log", `${showOp(o)} (${o.op.f}) returned ${show(e)}; the log has ${found === undefined ? "no such event" : found.map(show).join(", ")}`, [o.id], [e.id])
    }
  }
  const increasing = (o: Operation, events: ReadonlyArray<SeenEvent>) => {
    for (let i = 1; i < events.length; i++) {
      if (events[i]!.position <= events[i - 1]!.position) {
        report("read-order", `${showOp(o)} (${o.op.f}) returned ${show(events[i]!)} after ${show(events[i - 1]!)}`, [o.id], [events[i - 1]!.id, events[i]!.id])
        return
      }
    }
  }
  for (const o of ops) {
    if (o.status !== "ok" || o.value === undefined) continue
    const op = o.op
    const value = o.value
    if (op.f === "version" && value.f === "version") {
      const lower = lowerAt(op.stream, o.invoke, o.process)
      const upper = upperAt(op.stream, o.end, o.process)
      // an erased stream may read as version 0 (or keep its version: stores differ)
      const erasedAway = value.version === 0 && erasingBy(op.stream, o.end, o.process)
      if ((value.version < lower && !erasedAway) || value.version > upper) {
        report("read-bounds", `${showOp(o)} read ${op.stream} at version ${value.version}, but it was between ${lower} and ${upper} while it ran`, [o.id])
      }
      continue
    }
    if (value.f === "append" || value.f === "version" || value.f === "delete" || value.f === "isDeleted") continue
    const events = value.events
    for (const e of events) sameAsLog(o, e)
    // a stream read comes in version order; whether that is global order too is the log's stream-order rule
    if (op.f !== "read") increasing(o, events)
    if (op.f === "read") {
      const wrong = events.findIndex((e, i) => e.version !== i + 1 || e.stream !== op.stream)
      if (wrong !== -1) {
        report("read-order", `${showOp(o)} read ${op.stream} and got ${show(events[wrong]!)} as its event #${wrong + 1}`, [o.id], [events[wrong]!.id])
      }
      const lower = lowerAt(op.stream, o.invoke, o.process)
      const upper = upperAt(op.stream, o.end, o.process)
      // a read that overlaps an erasure may see any prefix of the stream: lines vanish under it
      const erasedAway = erasingBy(op.stream, o.end, o.process)
      if ((events.length < lower && !erasedAway) || events.length > upper) {
        report("read-bounds", `${showOp(o)} read ${events.length} events of ${op.stream}, but it was between versions ${lower} and ${upper} while it ran`, [o.id])
      }
    }
    if (op.f === "readAll" && events.length > 0) {
      if (events[0]!.position < op.from || events.length > op.limit) {
        report("read-mismatch", `${showOp(o)} read ${events.length} events from position ${op.from} (limit ${op.limit}) and got the first at ${events[0]!.position}`, [o.id])
      }
      const last = events.at(-1)!.position
      const returned = new Set(events.map((e) => e.id))
      const missed = log.filter((e) => e.position >= op.from && e.position <= last && !returned.has(e.id))
      if (missed.length > 0) {
        report("read-hole", `${showOp(o)} read the log from ${op.from} up to ${last} without ${missed.slice(0, 5).map(show).join(", ")}${missed.length > 5 ? ` and ${missed.length - 5} more` : ""}`, [o.id], missed.map((e) => e.id))
      }
    }
    if (op.f === "query" || op.f === "decide") {
      const after = op.f === "query" ? op.after : 0n
      const wrong = events.find((e) => e.position <= after || !Query.matches(op.query, e))
      if (wrong !== undefined || (op.f === "query" && events.length > op.limit)) {
        report("read-mismatch", `${showOp(o)} queried ${Query.format(op.query)} after ${after} and got ${wrong === undefined ? `${events.length} events` : show(wrong)}`, [o.id])
      }
      if (op.f === "query" && events.length > 0) {
        const last = events.at(-1)!.position
        const returned = new Set(events.map((e) => e.id))
        const missed = log.filter((e) => e.position > after && e.position <= last && !returned.has(e.id) && Query.matches(op.query, e))
        if (missed.length > 0) {
          report("read-hole", `${showOp(o)} queried ${Query.format(op.query)} after ${after} up to ${last} without ${missed.slice(0, 5).map(show).join(", ")}`, [o.id], missed.map((e) => e.id))
        }
      }
    }
  }

  // ---- deletions ---------------------------------------------------------------------
  const deletedReads = ops.filter((o) => o.op.f === "isDeleted" && o.value?.f === "isDeleted" && !o.value.deleted)
  for (const stream of new Set([...deletesOf.keys(), ...proofs.keys(), ...(final?.keys() ?? [])])) {
    const candidates = effective(stream)
    const refused = (deletesOf.get(stream) ?? []).filter((o) => o.status === "fail")
    const refusedNote = refused.length === 0 ? "" : ` (refused: ${refused.map((o) => `${showOp(o)} ${o.error?.tag}`).join(", ")})`
    const logged = byStream.get(stream) ?? []
    const proven = proofs.get(stream) ?? []
    const tombstone = final?.get(stream)
    for (const p of proven) {
      if (p.op.f === "delete" || candidates.some((d) => mayPrecede(d.invoke, d.process, p.end, p.process))) continue
      report("delete-phantom", `${showOp(p)} (${p.op.f}) found ${stream} deleted, but no delete of it that may have taken effect had begun by then${refusedNote}`, [p.id, ...refused.map((o) => o.id)])
    }
    if (tombstone !== undefined && candidates.length === 0) {
      report("delete-phantom", `the final state has ${stream} deleted, but no delete of it that may have taken effect was ever sent${refusedNote}`, refused.map((o) => o.id))
    }
    if (final !== undefined && tombstone === undefined && proven.length > 0) {
      report("delete-lost", `${showOp(proven[0]!)} (${proven[0]!.op.f}) showed ${stream} deleted, but the final state has it open`, [proven[0]!.id])
    }
    for (const o of deletedReads) {
      if (o.op.f !== "isDeleted" || o.op.stream !== stream) continue
      const p = deletedBefore(stream, o.invoke, o.process)
      if (p !== undefined) report("delete-lost", `${showOp(o)} read ${stream} as not deleted, after ${showOp(p)} (${p.op.f}) had shown it deleted`, [p.id, o.id])
    }
    if (surelyErased(stream) && logged.length > 0) {
      report(
        "erase-leftover",
        `${stream} was erased (${erases(stream).filter((o) => o.status === "ok").map(showOp).join(", ") || "its final tombstone says so"}), but the log still holds ${
          logged.slice(0, 3).map(show).join(", ")
        }${logged.length > 3 ? ` and ${logged.length - 3} more` : ""}`,
        erases(stream).map((o) => o.id),
        logged.map((e) => e.id)
      )
    }
    // the version the stream was deleted at: the first delete to take effect began before every proof of it
    const first = proven.length > 0
      ? candidates.filter((d) => proven.every((p) => mayPrecede(d.invoke, d.process, p.end, p.process)))
      : tombstone !== undefined ? candidates : []
    const pins = first.map((d) => pinned(d.op.expected))
    if (first.length > 0 && pins.every((v) => v !== undefined)) {
      const allowed = new Set(pins as Array<number>)
      const acked = appends.flatMap((o) => (o.op.stream === stream && o.status === "ok" && o.value?.f === "append" && o.op.events.length > 0 ? [o.value.version] : []))
      const top = Math.max(0, ...logged.map((e) => e.version), ...acked, ...ghostsOf(stream).map((e) => e.version))
      const exact = tombstone?.version ?? (mayBeErased(stream) ? undefined : logged.at(-1)?.version ?? 0)
      const at = [...allowed].join(" or ")
      if (top > Math.max(...allowed) || (exact !== undefined && !allowed.has(exact))) {
        report(
          "delete-version",
          `${stream} was deleted at version ${at} (${first.map((d) => `${showOp(d)} expected ${d.op.expected}`).join(", ")}), but ${
            top > Math.max(...allowed) ? `reached version ${top}` : `ended at version ${exact}`
          }`,
          first.map((d) => d.id)
        )
      }
    }
    if (tombstone?.version !== undefined && !mayBeErased(stream) && (logged.at(-1)?.version ?? 0) !== tombstone.version) {
      report("delete-version", `the final tombstone of ${stream} says version ${tombstone.version}, but the log's last version of it is ${logged.at(-1)?.version ?? 0}`)
    }
    const late = tombstone?.position === undefined ? [] : logged.filter((e) => e.position > tombstone.position!)
    if (late.length > 0) {
      report(
        "append-after-delete",
        `${stream}'s tombstone was written when the log ended at position ${tombstone!.position}, but ${late.map(show).join(", ")} came after it`,
        [],
        late.map((e) => e.id)
      )
    }
  }

  // ---- positions of erased events are not handed out again -----------------------------
  const holders = new Map<bigint, Set<string>>()
  const hold = (position: bigint, id: string) => holders.set(position, (holders.get(position) ?? new Set()).add(id))
  for (const e of log) hold(e.position, e.id)
  for (const e of ghosts.values()) hold(e.position, e.id)
  for (const o of appends) {
    if (o.status === "ok" && o.value?.f === "append") o.op.events.forEach((e, i) => o.value?.f === "append" && o.value.positions[i] !== undefined && hold(o.value.positions[i]!, e.id))
  }
  for (const [position, ids] of holders) {
    const gone = [...ids].filter((id) => !byId.has(id) && ghosts.has(id))
    if (ids.size > 1 && gone.length > 0) {
      report(
        "position-reused",
        `global position ${position} was held by ${[...ids].map((id) => (byId.has(id) ? show(byId.get(id)![0]!) : ghosts.has(id) ? `${show(ghosts.get(id)!)} (erased)` : id)).join(", ")}`,
        [],
        [...ids]
      )
    }
  }

  const order = new Map(rules.map((rule, i) => [rule, i]))
  return violations.sort((a, b) => order.get(a.rule)! - order.get(b.rule)!)
}

/** A short report: counts per rule and the first few violations of each. */
export const summarize = (violations: ReadonlyArray<Violation>, perRule = 3): string => {
  if (violations.length === 0) return "no violations"
  const byRule = new Map<Rule, Array<Violation>>()
  for (const v of violations) byRule.set(v.rule, [...(byRule.get(v.rule) ?? []), v])
  const lines = [`${violations.length} violation(s):`]
  for (const [rule, list] of byRule) {
    lines.push(`  ${rule}: ${list.length}`)
    for (const v of list.slice(0, perRule)) lines.push(`    - ${v.message}`)
  }
  return lines.join("\n")
}
