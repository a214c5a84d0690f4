/**
 * `chronicle streams`: every stream with its version, event count and payload
 * bytes, sorted by stream id.
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as StreamId from "../../StreamId.js"
import * as CommonOptions from "../CommonOptions.js"
import * as Output from "../Output.js"
import * as Scan from "../Scan.js"
import * as Stores from "../Stores.js"

const category = Options.text("category").pipe(
  Options.optional,
  Options.withDescription("Only the streams of this category (the part of the id before the first -).")
)

/**
 * The `streams` command.
 *
 * @category commands
 */
export const command = Command.make(
  "streams",
  { store: CommonOptions.store, json: CommonOptions.json, category, allowPartial: CommonOptions.allowPartial },
  (options) =>
    Stores.withStore(options.store, "read", (store) =>
      Effect.gen(function*() {
        yield* Stores.requireWholeLog(store, "streams", options.allowPartial)
        const wanted = Option.getOrUndefined(options.category)
        const summary = yield* Scan.summarize(store.events, {
          include: wanted === undefined ? undefined : (event) => StreamId.category(event.streamId) === wanted
        })
        const streams = [...summary.streams.values()].sort((a, b) => (a.streamId < b.streamId ? -1 : a.streamId > b.streamId ? 1 : 0))
        if (options.json) {
          return yield* Output.line(Output.json(streams.map((stream) => ({
            streamId: stream.streamId,
            version: stream.version,
            events: stream.events,
            bytes: stream.bytes,
            lastRecordedAt: stream.lastRecordedAt.toISOString()
          })), 2))
        }
        if (streams.length === 0) return yield* Output.line(`No streams in ${store.label}.`)
        const styles = Output.style()
        yield* Output.line(Output.table(streams, [
          { header: "STREAM", cell: (s) => s.streamId, style: styles.cyan },
          { header: "VERSION", cell: (s) => String(s.version), align: "right" },
          { header: "EVENTS", cell: (s) => Output.count(s.events), align: "right" },
          { header: "BYTES", cell: (s) => Output.count(s.bytes), align: "right" },
          { header: "LAST EVENT", cell: (s) => s.lastRecordedAt.toISOString() }
        ], styles))
        yield* Output.line(styles.dim(`${Output.count(streams.length)} streams, ${Output.count(summary.events)} events, ${Output.bytes(summary.bytes)} of payload`))
      })
    )
).pipe(Command.withDescription("List the streams: version, event count, payload bytes (data + metadata as JSON)."))
