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
import type { ConditionSpec, ErrorData, History, LogEvent, Op, SeenEvent, Value } from "./history.js"

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
  "read-mismatch"
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

/** Pairs invokes with completions. A `fail` that is not a definite refusal (a StoreError) is unknown. */
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
    else if (done?.type === "fail" && definiteFailures.has(done.error.tag)) {
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
    let upper = 0
    for (const e of byStream.get(stream) ?? []) {
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
    for (const o of oks) {
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
        if (o.error?.tag === "ConcurrencyConflict" || o.error?.tag === "DuplicateEventId") {
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
  for (const o of appends) {
    if (o.status !== "fail" || o.error === undefined) continue
    const error = o.error
    const ids = o.op.events.map((e) => e.id)
    if (error.tag === "ConcurrencyConflict") {
      const actual = Number(error.actual)
      if (ExpectedVersion.matches(o.op.expected, actual)) {
        report("conflict-matched", `${showOp(o)} to ${o.op.stream} expected ${o.op.expected} and was refused as a conflict with actual ${actual}, which matches`, [o.id], ids)
        continue
      }
      const lower = lowerAt(o.op.stream, o.invoke, o.process)
      const upper = upperAt(o.op.stream, o.end, o.process)
      if (actual < lower || actual > upper) {
        report(
          "conflict-actual",
          `${showOp(o)} to ${o.op.stream} (expected ${o.op.expected}) reported actual ${actual}, but the stream was between ${lower} and ${upper} while it ran`,
          [o.id],
          ids
        )
      }
    }
    if (error.tag === "DuplicateEventId") {
      const found = byId.get(String(error.eventId))?.[0]
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
      const found = byPosition.get(position) ?? []
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
  const sameAsLog = (o: Operation, e: SeenEvent) => {
    const found = byId.get(e.id)
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
      if (value.version < lower || value.version > upper) {
        report("read-bounds", `${showOp(o)} read ${op.stream} at version ${value.version}, but it was between ${lower} and ${upper} while it ran`, [o.id])
      }
      continue
    }
    if (value.f === "append" || value.f === "version") continue
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
      if (events.length < lower || events.length > upper) {
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
