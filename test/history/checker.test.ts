/**
 * The history checker on small hand-made histories: a clean one passes, and
 * each rule fires on a history that breaks it.
 */
import { describe, expect, it } from "vitest"
import { Query } from "chronicle"
import type { Rule, Violation } from "./checker.js"
import { check, rules } from "./checker.js"
import type { Entry, ErrorData, EventSpec, Expected, LogEvent, Op, SeenEvent, Value } from "./history.js"
import { decodeEntry, encodeEntry } from "./history.js"

/** A history written by hand: every entry one ms after the last, in one process unless told. */
const historyBuilder = () => {
  let time = 0
  const entries: Array<Entry> = []
  const base = (id: string, process: string) => ({ id, process, client: `${process}/c`, time: (time += 1) })
  return {
    entries,
    /** Moves the clock on without an entry. */
    wait: (ms: number) => void (time += ms),
    invoke: (id: string, op: Op, process = "p") => void entries.push({ ...base(id, process), type: "invoke", op }),
    ok: (id: string, value: Value, process = "p") => void entries.push({ ...base(id, process), type: "ok", value }),
    fail: (id: string, error: ErrorData, process = "p") => void entries.push({ ...base(id, process), type: "fail", error }),
    info: (id: string, reason: string, process = "p") => void entries.push({ ...base(id, process), type: "info", reason })
  }
}

const spec = (id: string, type = "A", tags: ReadonlyArray<string> = []): EventSpec => ({ id, type, tags })
const append = (stream: string, events: ReadonlyArray<EventSpec>, expected: Expected, condition?: Extract<Op, { f: "append" }>["condition"]): Op => ({
  f: "append",
  stream,
  events,
  expected,
  ...(condition === undefined ? {} : { condition })
})
const appended = (version: number, ...positions: ReadonlyArray<number>): Value => ({ f: "append", version, positions: positions.map(BigInt) })
const stored = (id: string, stream: string, version: number, position: number, type = "A", tags: ReadonlyArray<string> = []): LogEvent => ({
  id,
  stream,
  version,
  position: BigInt(position),
  type,
  tags
})
const events = (f: "read" | "readAll" | "query", ...list: ReadonlyArray<SeenEvent>): Value => ({ f, events: list })
const conflict = (stream: string, expected: Expected, actual: number): ErrorData => ({ tag: "ConcurrencyConflict", streamId: stream, expected, actual })
const remove = (stream: string, expected: Expected = "Any", erase = false): Op => ({ f: "delete", stream, expected, erase })
const removed: Value = { f: "delete" }
const deleted = (stream: string): ErrorData => ({ tag: "StreamDeleted", streamId: stream })
const isDeleted = (stream: string): Op => ({ f: "isDeleted", stream })
const fencedOff: ErrorData = {
  tag: "StoreError",
  operation: "deleteStream",
  reason: "/tmp/x: the write lock was lost (another process took it over while this one stalled past 2000 ms); the write was fenced off and nothing of it was stored"
}

/**
 * The clean run every test starts from:
 * a1 s1 [e1 e2] NoStream → v2 (1, 2); a2 s2 [e3] Any → v1 (3);
 * a3 s1 [e4] 2 → v3 (4); a4 s1 [e5] 2 → conflict, actual 3;
 * r1 reads s1 → e1 e2 e4; g1 reads the log → all four.
 */
const e1 = stored("e1", "s1", 1, 1)
const e2 = stored("e2", "s1", 2, 2)
const e3 = stored("e3", "s2", 1, 3)
const e4 = stored("e4", "s1", 3, 4)
const cleanLog: ReadonlyArray<LogEvent> = [e1, e2, e3, e4]

const cleanRun = () => {
  const h = historyBuilder()
  h.invoke("a1", append("s1", [spec("e1"), spec("e2")], "NoStream"))
  h.ok("a1", appended(2, 1, 2))
  h.invoke("a2", append("s2", [spec("e3")], "Any"))
  h.ok("a2", appended(1, 3))
  h.invoke("a3", append("s1", [spec("e4")], 2))
  h.ok("a3", appended(3, 4))
  h.invoke("a4", append("s1", [spec("e5")], 2))
  h.fail("a4", conflict("s1", 2, 3))
  h.invoke("r1", { f: "read", stream: "s1" })
  h.ok("r1", events("read", e1, e2, e4))
  h.invoke("g1", { f: "readAll", from: 1n, limit: 10 })
  h.ok("g1", events("readAll", e1, e2, e3, e4))
  return h
}

const rulesOf = (violations: ReadonlyArray<Violation>): Array<Rule> => [...new Set(violations.map((v) => v.rule))]

/** Checks and expects `rule` among the violations (printing them when it is missing). */
const expectRule = (rule: Rule, history: ReadonlyArray<Entry>, log: ReadonlyArray<LogEvent>) => {
  const violations = check(history, log)
  expect(rulesOf(violations), JSON.stringify(violations, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v), 2)).toContain(rule)
  return violations
}

const fired = new Set<Rule>()
const expectOnly = (rule: Rule, history: ReadonlyArray<Entry>, log: ReadonlyArray<LogEvent>) => {
  fired.add(rule)
  const violations = expectRule(rule, history, log)
  expect(rulesOf(violations)).toEqual([rule])
  return violations
}

describe("history checker", () => {
  it("a clean run has no violations", () => {
    expect(check(cleanRun().entries, cleanLog)).toEqual([])
  })

  it("the history survives JSON lines, bigints included", () => {
    const entries = cleanRun().entries
    expect(entries.map((e) => decodeEntry(encodeEntry(e)))).toEqual(entries)
  })

  it("an append whose outcome is unknown may be stored wholly or not at all", () => {
    const h = cleanRun()
    h.invoke("k1", append("s3", [spec("e6"), spec("e7")], "NoStream"))
    h.invoke("k2", append("s4", [spec("e8")], "NoStream"))
    h.fail("k2", { tag: "StoreError", operation: "append", reason: "connection lost" })
    expect(check(h.entries, [...cleanLog, stored("e6", "s3", 1, 5), stored("e7", "s3", 2, 6), stored("e8", "s4", 1, 7)])).toEqual([])
    expect(check(h.entries, cleanLog)).toEqual([])
  })

  it("deletions kept: a tombstone refuses appends, keeps re-sends recognised, and a conflicting delete changes nothing", () => {
    const h = cleanRun()
    h.invoke("d1", remove("s2", 1))
    h.ok("d1", removed)
    h.invoke("a5", append("s2", [spec("e6")], "Any"))
    h.fail("a5", deleted("s2"))
    h.invoke("a6", append("s2", [spec("e3")], "Any"))
    h.ok("a6", appended(1, 3))
    h.invoke("i1", isDeleted("s2"))
    h.ok("i1", { f: "isDeleted", deleted: true })
    h.invoke("d2", remove("s1", 1))
    h.fail("d2", conflict("s1", 1, 3))
    h.invoke("d3", remove("s1", 3))
    h.fail("d3", fencedOff)
    h.invoke("r2", { f: "read", stream: "s2" })
    h.ok("r2", events("read", e3))
    expect(check(h.entries, cleanLog, { tombstones: [{ stream: "s2", version: 1, position: 4n }] })).toEqual([])
  })

  it("erasure kept: the stream's events leave the log, earlier reads of them stand, later reads see nothing, other streams keep theirs", () => {
    const h = cleanRun()
    h.invoke("d1", remove("s1", "Any", true))
    h.ok("d1", removed)
    h.invoke("r2", { f: "read", stream: "s1" })
    h.ok("r2", events("read"))
    h.invoke("v1", { f: "version", stream: "s1" })
    h.ok("v1", { f: "version", version: 0 })
    h.invoke("a5", append("s2", [spec("e6")], 1))
    h.ok("a5", appended(2, 5))
    h.invoke("g2", { f: "readAll", from: 1n, limit: 10 })
    h.ok("g2", events("readAll", e3, stored("e6", "s2", 2, 5)))
    expect(check(h.entries, [e3, stored("e6", "s2", 2, 5)], { tombstones: [{ stream: "s1", version: 3, erased: true }] })).toEqual([])
  })

  it("a delete of unknown outcome may have taken effect or not; one refused as fenced off had none", () => {
    const h = cleanRun()
    h.invoke("d1", remove("s2", "Any", true))
    h.fail("d1", { tag: "StoreError", operation: "deleteStream", reason: "connection lost" })
    expect(check(h.entries, cleanLog, { tombstones: [] })).toEqual([])
    expect(check(h.entries, [e1, e2, e4], { tombstones: [{ stream: "s2" }] })).toEqual([])
    const fenced = cleanRun()
    fenced.invoke("d1", remove("s2", "Any", true))
    fenced.fail("d1", fencedOff)
    // its events gone too: the erasure it claims it never made
    expect(rulesOf(check(fenced.entries, [e1, e2, e4], { tombstones: [{ stream: "s2" }] })).sort()).toEqual(["delete-phantom", "lost-ack", "read-not-in-log"])
  })

  it("a re-send acknowledged with the original versions is fine", () => {
    const h = cleanRun()
    h.invoke("a5", append("s2", [spec("e3")], "Any"))
    h.ok("a5", appended(1, 3))
    expect(check(h.entries, cleanLog)).toEqual([])
  })

  describe("each rule fires on a history that breaks it", () => {
    it("duplicate-event: one event id stored twice", () => {
      const h = cleanRun()
      h.invoke("a5", append("s2", [spec("e3")], "Any"))
      h.info("a5", "timed out")
      // the re-send was written again instead of recognised (a second copy at version 2)
      expectOnly("duplicate-event", h.entries, [...cleanLog, stored("e3", "s2", 2, 5)])
    })

    it("duplicate-position: two events at one global position", () => {
      const h = cleanRun()
      h.invoke("a5", append("s3", [spec("e6")], "NoStream"))
      h.info("a5", "killed")
      expectOnly("duplicate-position", h.entries.filter((e) => e.id !== "g1"), [...cleanLog, stored("e6", "s3", 1, 4)])
    })

    it("duplicate-version: two events at one stream version (a stale writer)", () => {
      const h = historyBuilder()
      h.invoke("a1", append("s1", [spec("e1")], "Any"), "p1")
      h.invoke("a2", append("s1", [spec("e2")], "Any"), "p2")
      h.ok("a2", appended(1, 1), "p2")
      h.ok("a1", appended(1, 2), "p1")
      const violations = expectRule("duplicate-version", h.entries, [stored("e1", "s1", 1, 2), stored("e2", "s1", 1, 1)])
      fired.add("duplicate-version")
      expect(violations.find((v) => v.rule === "duplicate-version")?.events).toEqual(["e2", "e1"])
    })

    it("version-gap: a stream skips a version", () => {
      const h = cleanRun()
      h.invoke("a5", append("s2", [spec("e6")], "Any"))
      h.info("a5", "killed")
      expectOnly("version-gap", h.entries, [...cleanLog, stored("e6", "s2", 3, 5)])
    })

    it("stream-order: a later version at a lower global position (PostgreSQL group commit)", () => {
      const h = historyBuilder()
      h.invoke("a1", append("b", [spec("e1")], "NoStream"))
      h.ok("a1", appended(1, 10))
      h.invoke("slow", append("b", [spec("e2")], "Any"), "i1")
      h.invoke("fast", append("b", [spec("e3")], "Any"), "i2")
      h.ok("fast", appended(2, 30), "i2")
      h.ok("slow", appended(3, 20), "i1")
      expectOnly("stream-order", h.entries, [stored("e1", "b", 1, 10), stored("e3", "b", 2, 30), stored("e2", "b", 3, 20)])
    })

    it("phantom-event: an event no append sent, or one a refused append sent", () => {
      const h = cleanRun()
      const never = expectOnly("phantom-event", h.entries, [...cleanLog, stored("e9", "s3", 1, 5)])
      expect(never[0]!.message).toContain("never sent")
      const refused = expectOnly("phantom-event", h.entries, [...cleanLog, stored("e5", "s1", 4, 5)])
      expect(refused[0]!.message).toContain("refused")
    })

    it("event-mismatch: an event stored with another type than it was sent with", () => {
      expectOnly("event-mismatch", cleanRun().entries, [e1, e2, stored("e3", "s2", 1, 3, "B"), e4])
    })

    it("partial-batch: part of a batch stored, or a batch not contiguous", () => {
      const h = cleanRun()
      h.invoke("k1", append("s3", [spec("e6"), spec("e7")], "NoStream"))
      h.invoke("k2", append("s3", [spec("e8")], "Any"))
      expectOnly("partial-batch", h.entries, [...cleanLog, stored("e6", "s3", 1, 5)])
      expectOnly("partial-batch", h.entries, [...cleanLog, stored("e6", "s3", 1, 5), stored("e8", "s3", 2, 6), stored("e7", "s3", 3, 7)])
    })

    it("lost-ack: an acknowledged event missing from the log", () => {
      expectOnly("lost-ack", cleanRun().entries.filter((e) => e.id !== "g1"), [e1, e2, e4])
    })

    it("ack-mismatch: an acknowledgement that disagrees with the log", () => {
      const h = historyBuilder()
      h.invoke("a1", append("s1", [spec("e1")], "Any"))
      h.ok("a1", appended(1, 7))
      expectOnly("ack-mismatch", h.entries, [stored("e1", "s1", 1, 1)])
    })

    it("resend-mismatch: two sends of one batch acknowledged differently", () => {
      const h = historyBuilder()
      h.invoke("a1", append("s1", [spec("e1")], "Any"))
      h.ok("a1", appended(1, 1))
      h.invoke("a2", append("s1", [spec("e1")], "Any"))
      h.ok("a2", appended(2, 2))
      const violations = expectRule("resend-mismatch", h.entries, [stored("e1", "s1", 1, 1)])
      fired.add("resend-mismatch")
      expect(rulesOf(violations).sort()).toEqual(["ack-mismatch", "resend-mismatch"])
    })

    it("ack-expected: an append acknowledged although its expected version did not hold", () => {
      const h = historyBuilder()
      h.invoke("a1", append("s1", [spec("e1")], "NoStream"))
      h.ok("a1", appended(1, 1))
      h.invoke("a2", append("s1", [spec("e2")], "NoStream"))
      h.ok("a2", appended(2, 2))
      expectOnly("ack-expected", h.entries, [stored("e1", "s1", 1, 1), stored("e2", "s1", 2, 2)])
    })

    it("resend-refused: a re-send of a stored batch refused as a conflict", () => {
      const h = cleanRun()
      h.invoke("a5", append("s1", [spec("e1"), spec("e2")], "NoStream"))
      h.fail("a5", conflict("s1", "NoStream", 3))
      expectOnly("resend-refused", h.entries, cleanLog)
    })

    it("append-stale: a batch stored below a version seen before it was invoked", () => {
      const h = historyBuilder()
      h.invoke("a1", append("s1", [spec("e1"), spec("e2")], "NoStream"))
      h.ok("a1", appended(2, 1, 2))
      h.invoke("a2", append("s1", [spec("e3")], "Any"))
      h.info("a2", "timed out")
      // e3 took version 2 (e2 was erased from the log by a bad rewrite): stored after version 1 though 2 was acknowledged
      const violations = expectRule("append-stale", h.entries, [stored("e1", "s1", 1, 1), stored("e3", "s1", 2, 3)])
      fired.add("append-stale")
      expect(rulesOf(violations).sort()).toEqual(["append-stale", "lost-ack", "partial-batch"])
    })

    it("conflict-matched: a conflict reported although the expected version matched", () => {
      const h = cleanRun()
      h.invoke("a5", append("s1", [spec("e6")], 3))
      h.fail("a5", conflict("s1", 3, 3))
      expectOnly("conflict-matched", h.entries, cleanLog)
      const any = cleanRun()
      any.invoke("a5", append("s1", [spec("e6")], "Any"))
      any.fail("a5", conflict("s1", "Any", 3))
      expectOnly("conflict-matched", any.entries, cleanLog)
    })

    it("conflict-actual: a conflict's actual version the stream never had while it ran", () => {
      const stale = cleanRun()
      stale.invoke("a5", append("s1", [spec("e6")], 1))
      stale.fail("a5", conflict("s1", 1, 2))
      expectOnly("conflict-actual", stale.entries, cleanLog)
      const future = cleanRun()
      future.invoke("a5", append("s1", [spec("e6")], 1))
      future.fail("a5", conflict("s1", 1, 9))
      expectOnly("conflict-actual", future.entries, cleanLog)
    })

    it("conflict-actual leaves clock noise between processes alone", () => {
      const h = historyBuilder()
      h.invoke("a1", append("s1", [spec("e1")], "NoStream"), "p1")
      h.invoke("a2", append("s1", [spec("e2")], "NoStream"), "p2")
      h.ok("a1", appended(1, 1), "p1")
      h.fail("a2", conflict("s1", "NoStream", 1), "p2")
      h.invoke("a3", append("s1", [spec("e3")], 0), "p2")
      // within the slack of a1's acknowledgement (other process): actual 0 might have been true
      h.fail("a3", conflict("s1", 0, 0), "p2")
      expect(rulesOf(check(h.entries, [stored("e1", "s1", 1, 1)]))).toEqual(["conflict-matched"])
      const later = historyBuilder()
      later.invoke("a1", append("s1", [spec("e1")], "NoStream"), "p1")
      later.ok("a1", appended(1, 1), "p1")
      later.wait(100)
      later.invoke("a3", append("s1", [spec("e3")], 5), "p2")
      later.fail("a3", conflict("s1", 5, 0), "p2")
      expectOnly("conflict-actual", later.entries, [stored("e1", "s1", 1, 1)])
    })

    it("duplicate-report: a DuplicateEventId naming an event the log does not hold there", () => {
      const h = cleanRun()
      h.invoke("a5", append("s3", [spec("e3")], "Any"))
      h.fail("a5", { tag: "DuplicateEventId", streamId: "s3", eventId: "e3", existingStreamId: "s2", existingVersion: 4 })
      expectOnly("duplicate-report", h.entries, cleanLog)
    })

    it("condition-report: a failed condition naming an event that does not match", () => {
      const h = cleanRun()
      h.invoke("c1", append("s3", [spec("e6", "R", ["k:1"])], "Any", { query: Query.tagged("k:1"), after: 0n }))
      h.fail("c1", { tag: "AppendConditionFailed", streamId: "s3", after: 0n, position: 3n })
      expectOnly("condition-report", h.entries, cleanLog)
    })

    it("dcb-condition: a conditional append stored although a matching event came after its position", () => {
      const h = historyBuilder()
      h.invoke("t1", append("t", [spec("e1", "Reserved", ["k:1"])], "Any"))
      h.invoke("c1", append("c", [spec("e2", "Reserved", ["k:2"])], "NoStream", { query: Query.make(Query.item(["Reserved"])), after: 0n, seen: [] }))
      h.ok("c1", appended(1, 20))
      h.ok("t1", appended(1, 10))
      expectOnly("dcb-condition", h.entries, [stored("e1", "t", 1, 10, "Reserved", ["k:1"]), stored("e2", "c", 1, 20, "Reserved", ["k:2"])])
    })

    it("dcb-unseen: a conditional append stored after a matching event its decision read never saw, below its after", () => {
      const h = historyBuilder()
      h.invoke("x1", append("x", [spec("e1", "A", ["k:1"])], "Any"))
      h.invoke("t1", append("t", [spec("e2", "A", ["k:1"])], "Any"))
      h.ok("x1", appended(1, 30))
      h.invoke("c1", append("c", [spec("e3", "A", ["k:1"])], "Any", { query: Query.tagged("k:1"), after: 30n, seen: ["e1"] }))
      h.ok("c1", appended(1, 40))
      h.ok("t1", appended(1, 10))
      expectOnly("dcb-unseen", h.entries, [stored("e2", "t", 1, 10, "A", ["k:1"]), stored("e1", "x", 1, 30, "A", ["k:1"]), stored("e3", "c", 1, 40, "A", ["k:1"])])
    })

    it("read-not-in-log: a read returning an event the log holds elsewhere", () => {
      const h = cleanRun()
      h.invoke("r2", { f: "read", stream: "s1" })
      h.ok("r2", events("read", e1, e2, { ...e4, position: 9n }))
      expectOnly("read-not-in-log", h.entries, cleanLog)
    })

    it("read-order: a stream read with a gap, or a log read out of order", () => {
      const h = cleanRun()
      h.invoke("r2", { f: "read", stream: "s1" })
      h.ok("r2", events("read", e1, e4))
      expect(rulesOf(check(h.entries, cleanLog)).sort()).toEqual(["read-bounds", "read-order"])
      const g = cleanRun()
      g.invoke("g2", { f: "readAll", from: 1n, limit: 10 })
      g.ok("g2", events("readAll", e1, e3, e2, e4))
      expectOnly("read-order", g.entries, cleanLog)
    })

    it("read-bounds: a stream read that misses an append acknowledged before it began", () => {
      const h = cleanRun()
      h.invoke("r2", { f: "read", stream: "s1" })
      h.ok("r2", events("read", e1, e2))
      expectOnly("read-bounds", h.entries, cleanLog)
      const v = cleanRun()
      v.invoke("v1", { f: "version", stream: "s1" })
      v.ok("v1", { f: "version", version: 2 })
      expectOnly("read-bounds", v.entries, cleanLog)
    })

    it("read-hole: a log read or a query that skips an event below its last", () => {
      const h = cleanRun()
      h.invoke("g2", { f: "readAll", from: 1n, limit: 10 })
      h.ok("g2", events("readAll", e1, e2, e4))
      expectOnly("read-hole", h.entries, cleanLog)
    })

    it("read-mismatch: a query returning an event that does not match", () => {
      const h = cleanRun()
      h.invoke("q1", { f: "query", query: Query.tagged("k:1"), after: 0n, limit: 10 })
      h.ok("q1", events("query", e1))
      expectOnly("read-mismatch", h.entries, cleanLog)
    })

    it("delete-version: a stream deleted at an expected version ends above it", () => {
      const h = cleanRun()
      h.invoke("k1", append("s2", [spec("e6")], "Any"))
      h.invoke("d1", remove("s2", 1))
      h.ok("d1", removed)
      // k1 (unknown) was stored after the version check of d1
      expectOnly("delete-version", h.entries, [...cleanLog, stored("e6", "s2", 2, 5)])
      // the final tombstone disagrees with the log
      const t = cleanRun()
      t.invoke("d1", remove("s2"))
      t.ok("d1", removed)
      const violations = check(t.entries, cleanLog, { tombstones: [{ stream: "s2", version: 4 }] })
      expect(rulesOf(violations)).toEqual(["delete-version"])
    })

    it("conflict-matched and conflict-actual hold for deletes too", () => {
      const h = cleanRun()
      h.invoke("d1", remove("s1", 3))
      h.fail("d1", conflict("s1", 3, 3))
      expect(rulesOf(check(h.entries, cleanLog))).toEqual(["conflict-matched"])
      const a = cleanRun()
      a.invoke("d1", remove("s1", 1))
      a.fail("d1", conflict("s1", 1, 7))
      expect(rulesOf(check(a.entries, cleanLog))).toEqual(["conflict-actual"])
    })

    it("append-after-delete: an append sent after a stream was shown deleted is stored or acknowledged", () => {
      const h = cleanRun()
      h.invoke("d1", remove("s2"))
      h.ok("d1", removed)
      h.invoke("a5", append("s2", [spec("e6")], "Any"))
      h.ok("a5", appended(2, 5))
      expectOnly("append-after-delete", h.entries, [...cleanLog, stored("e6", "s2", 2, 5)])
      // an unknown append stored after the tombstone's position
      const t = cleanRun()
      t.invoke("k1", append("s2", [spec("e6")], "Any"))
      t.invoke("d1", remove("s2"))
      t.ok("d1", removed)
      const violations = check(t.entries, [...cleanLog, stored("e6", "s2", 2, 5)], { tombstones: [{ stream: "s2", version: 2, position: 4n }] })
      expect(rulesOf(violations)).toEqual(["append-after-delete"])
    })

    it("delete-lost: an acknowledged delete undone", () => {
      const h = cleanRun()
      h.invoke("d1", remove("s2"))
      h.ok("d1", removed)
      h.invoke("i1", isDeleted("s2"))
      h.ok("i1", { f: "isDeleted", deleted: false })
      expectOnly("delete-lost", h.entries, cleanLog)
      const final = cleanRun()
      final.invoke("a5", append("s2", [spec("e6")], "Any"))
      final.fail("a5", deleted("s2"))
      final.entries.splice(0, 0, { id: "d0", process: "p", client: "p/c", time: 0.5, type: "invoke", op: remove("s2") })
      const violations = check(final.entries, cleanLog, { tombstones: [] })
      expect(rulesOf(violations)).toEqual(["delete-lost"])
    })

    it("delete-phantom: a stream deleted that no delete could have deleted", () => {
      const h = cleanRun()
      h.invoke("a5", append("s2", [spec("e6")], "Any"))
      h.fail("a5", deleted("s2"))
      expectOnly("delete-phantom", h.entries, cleanLog)
      // a delete refused as a conflict took effect after all
      const c = cleanRun()
      c.invoke("d1", remove("s2", 0))
      c.fail("d1", conflict("s2", 0, 1))
      expect(rulesOf(check(c.entries, cleanLog, { tombstones: [{ stream: "s2" }] }))).toEqual(["delete-phantom"])
    })

    it("erase-leftover: an acknowledged erasure left events of the stream in the log", () => {
      const h = cleanRun()
      h.invoke("d1", remove("s2", "Any", true))
      h.ok("d1", removed)
      expectOnly("erase-leftover", h.entries, cleanLog)
    })

    it("erase-partial: an erasure that removed part of a stream", () => {
      const h = cleanRun()
      h.invoke("d1", remove("s1", "Any", true))
      h.info("d1", "killed")
      expectOnly("erase-partial", h.entries, [e1, e2, e3])
    })

    it("erase-read: a read after an acknowledged erasure returns the stream's events", () => {
      const h = cleanRun()
      h.invoke("d1", remove("s1", "Any", true))
      h.ok("d1", removed)
      h.invoke("r2", { f: "read", stream: "s1" })
      h.ok("r2", events("read", e1, e2, e4))
      expectOnly("erase-read", h.entries, [e3])
    })

    it("position-reused: a position of an erased event handed out again", () => {
      const h = cleanRun()
      h.invoke("d1", remove("s1", "Any", true))
      h.ok("d1", removed)
      h.invoke("a5", append("s2", [spec("e6")], 1))
      h.ok("a5", appended(2, 4))
      const violations = expectRule("position-reused", h.entries, [e3, stored("e6", "s2", 2, 4)])
      fired.add("position-reused")
      // the log read before the erasure had position 4 as e4; e6 now sits there
      expect(rulesOf(violations).sort()).toEqual(["position-reused", "read-hole"])
    })

    it("every rule has a test above that fires it", () => {
      expect(rules.filter((rule) => !fired.has(rule))).toEqual([])
    })
  })
})
