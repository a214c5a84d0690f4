/**
 * `chronicle stats`: how many events and streams, of which types, the largest
 * streams, and the room the store takes (its files, or its tables).
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import * as Effect from "effect/Effect"
import * as StreamId from "../../StreamId.js"
import * as CommonOptions from "../CommonOptions.js"
import * as Output from "../Output.js"
import * as Scan from "../Scan.js"
import * as Stores from "../Stores.js"

const top = Options.integer("top").pipe(
  Options.withDefault(10),
  Options.withDescription("How many of the largest streams to list.")
)

/**
 * The `stats` command.
 *
 * @category commands
 */
export const command = Command.make(
  "stats",
  { store: CommonOptions.store, json: CommonOptions.json, top, allowPartial: CommonOptions.allowPartial },
  (options) =>
    Stores.withStore(options.store, "read", (store) =>
      Effect.gen(function*() {
        yield* Stores.requireWholeLog(store, "stats", options.allowPartial)
        const summary = yield* Scan.summarize(store.events)
        const size = yield* store.size
        const categories = new Set([...summary.streams.keys()].map((id) => StreamId.category(id as StreamId.StreamId)))
        const types = [...summary.types.values()].sort((a, b) => b.events - a.events || (a.type < b.type ? -1 : 1))
        const largest = [...summary.streams.values()]
          .sort((a, b) => b.bytes - a.bytes || b.events - a.events || (a.streamId < b.streamId ? -1 : 1))
          .slice(0, Math.max(0, options.top))
        const sizeTotal = size.parts.reduce((sum, part) => sum + part.bytes, 0)
        if (options.json) {
          return yield* Output.line(Output.json({
            store: store.label,
            events: summary.events,
            streams: summary.streams.size,
            categories: categories.size,
            payloadBytes: summary.bytes,
            headPosition: summary.head,
            firstRecordedAt: summary.first?.toISOString() ?? null,
            lastRecordedAt: summary.last?.toISOString() ?? null,
            types: types.map((t) => ({ type: t.type, events: t.events, bytes: t.bytes })),
            largestStreams: largest.map((s) => ({ streamId: s.streamId, version: s.version, events: s.events, bytes: s.bytes })),
            size: { kind: size.kind, bytes: sizeTotal, parts: size.parts }
          }, 2))
        }
        const styles = Output.style()
        const label = (text: string) => styles.bold(text.padEnd(12))
        const lines = [
          `${label("Store")}${store.label}`,
          `${label("Events")}${Output.count(summary.events)} (head position ${summary.head})`,
          `${label("Streams")}${Output.count(summary.streams.size)} in ${Output.count(categories.size)} ${categories.size === 1 ? "category" : "categories"}`,
          `${label("Payload")}${Output.bytes(summary.bytes)} (data + metadata as JSON)`,
          `${label(`Size`)}${Output.bytes(sizeTotal)} ${size.kind}${
            size.parts.length > 0 ? styles.dim(` (${size.parts.map((part) => `${part.name} ${Output.bytes(part.bytes)}`).join(", ")})`) : ""
          }`
        ]
        if (summary.first !== undefined && summary.last !== undefined) {
          lines.push(`${label("Recorded")}${summary.first.toISOString()} .. ${summary.last.toISOString()}`)
        }
        yield* Output.line(lines.join("\n"))
        if (types.length > 0) {
          yield* Output.line(`\n${styles.bold("Event types")}`)
          yield* Output.line(Output.table(types, [
            { header: "TYPE", cell: (t) => t.type, style: styles.cyan },
            { header: "EVENTS", cell: (t) => Output.count(t.events), align: "right" },
            { header: "SHARE", cell: (t) => `${((t.events / summary.events) * 100).toFixed(1)}%`, align: "right" },
            { header: "BYTES", cell: (t) => Output.count(t.bytes), align: "right" }
          ], styles))
        }
        if (largest.length > 0) {
          yield* Output.line(`\n${styles.bold("Largest streams")}`)
          yield* Output.line(Output.table(largest, [
            { header: "STREAM", cell: (s) => s.streamId, style: styles.cyan },
            { header: "VERSION", cell: (s) => String(s.version), align: "right" },
            { header: "EVENTS", cell: (s) => Output.count(s.events), align: "right" },
            { header: "BYTES", cell: (s) => Output.count(s.bytes), align: "right" }
          ], styles))
        }
      })
    )
).pipe(Command.withDescription("Sum up the store: events, streams, event types, largest streams, size on disk or in tables."))
