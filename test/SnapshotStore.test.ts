import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { SnapshotStore, StreamId } from "chronicle"

/** A store whose operations record the span they run in: its name and attributes. */
const recording = () => {
  const spans: Array<{ readonly name: string; readonly attributes: Record<string, unknown> }> = []
  const record = Effect.flatMap(Effect.orDie(Effect.currentSpan), (span) =>
    Effect.sync(() => spans.push({ name: span.name, attributes: Object.fromEntries(span.attributes) })))
  const service = SnapshotStore.make("recording", {
    save: () => Effect.asVoid(record),
    load: () => Effect.as(record, Option.none()),
    remove: () => Effect.asVoid(record)
  })
  return { spans, service }
}

describe("SnapshotStore.make", () => {
  it.effect("given a store's operations, each runs in a span named after it, with the store and stream", () =>
    Effect.gen(function*() {
      const { service, spans } = recording()
      const streamId = StreamId.unsafeMake("account", "ada")
      yield* service.save({ streamId, version: 7, state: {}, stateSchemaVersion: 1 })
      yield* service.load(streamId)
      yield* service.remove(streamId)
      expect(spans).toEqual([
        {
          name: "SnapshotStore.save",
          attributes: { "chronicle.store": "recording", "chronicle.stream_id": streamId, "chronicle.version": 7 }
        },
        { name: "SnapshotStore.load", attributes: { "chronicle.store": "recording", "chronicle.stream_id": streamId } },
        { name: "SnapshotStore.remove", attributes: { "chronicle.store": "recording", "chronicle.stream_id": streamId } }
      ])
    }))
})
