/**
 * The memory store under a randomized concurrent workload (fibers in one
 * process), deletions and erasures included, its history, final log and
 * tombstones checked by the history checker.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { EventStore, MemoryEventStore } from "chronicle"
import { check, summarize } from "./checker.js"
import { memoryRecorder } from "./history.js"
import { runClient, runSeed, runStats, sized, storeLog, storeTombstones, streamsOf, testTimeout } from "./workload.js"

describe("memory store: history check", () => {
  it.live("many fibers mixing every kind of append, re-sends, reads, queries, decisions and deletions: no violations", () =>
    Effect.gen(function*() {
      const seed = runSeed("memory")
      const started = Date.now()
      const store = yield* EventStore.EventStore
      const recorder = memoryRecorder()
      const streams = Array.from({ length: 5 }, (_, i) => `m-${i}`)
      const clients = 12
      yield* Effect.all(
        Array.from({ length: clients }, (_, c) =>
          runClient(store, recorder, { seed, process: "main", client: `c${c}`, streams, run: "m", ops: sized(250), doomed: "m-d-" })),
        { concurrency: "unbounded", discard: true }
      )
      const log = yield* storeLog(store)
      const tombstones = yield* storeTombstones(store, streamsOf(recorder.entries))
      const ran = Date.now() - started
      const violations = check(recorder.entries, log, { tombstones })
      console.log(`[history memory] ${runStats(recorder.entries)}; ${log.length} events in the log, ${tombstones.length} streams deleted; run ${ran} ms, check ${Date.now() - started - ran} ms\n${summarize(violations)}`)
      expect(violations, summarize(violations, 10)).toEqual([])
      // the same history against a log with one acknowledged event dropped and two versions of a stream swapped
      // (the dropped event from another stream than the swapped pair, so each tamper stays visible)
      const [first, second] = log.filter((e) => e.stream === streams[0])
      const acknowledged = new Set(
        recorder.entries.flatMap((e) => (e.type === "ok" && e.value.f === "append" ? e.value.positions : []))
      )
      const dropped = log.find((e) => e.stream !== streams[0] && acknowledged.has(e.position))?.position
      const tampered = log.filter((e) => e.position !== dropped).map((e) =>
        e === first ? { ...e, position: second!.position } : e === second ? { ...e, position: first!.position } : e
      )
      const caught = new Set(check(recorder.entries, tampered, { tombstones }).map((v) => v.rule))
      expect(caught).toContain("lost-ack")
      expect(caught).toContain("stream-order")
      // and against a final state that forgot a tombstone
      expect(tombstones.length).toBeGreaterThan(0)
      expect(check(recorder.entries, log, { tombstones: tombstones.slice(1) }).map((v) => v.rule)).toContain("delete-lost")
    }).pipe(Effect.provide(MemoryEventStore.layer())), testTimeout)
})
