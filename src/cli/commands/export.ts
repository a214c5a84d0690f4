/**
 * `chronicle export`: the global log (or one stream) as JSON Lines, a JSON
 * array or TOON, to stdout or `--out`.
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as StreamId from "../../StreamId.js"
import * as CliError from "../CliError.js"
import * as CommonOptions from "../CommonOptions.js"
import * as EventFile from "../EventFile.js"
import * as Output from "../Output.js"
import * as Progress from "../Progress.js"
import * as Stores from "../Stores.js"

/**
 * `--format`, shared with `import`.
 *
 * @category options
 */
export const format = Options.choice("format", EventFile.formats).pipe(
  Options.withAlias("f"),
  Options.optional,
  Options.withDescription("jsonl (one event per line), json (one array) or toon; default: from the file name, else jsonl.")
)
const out = Options.text("out").pipe(Options.withAlias("o"), Options.optional, Options.withDescription("The file to write (default: stdout)."))
const stream = Options.text("stream").pipe(Options.optional, Options.withDescription("Export only this stream."))

/**
 * The `export` command.
 *
 * @category commands
 */
export const command = Command.make(
  "export",
  { store: CommonOptions.store, format, out, stream, allowPartial: CommonOptions.allowPartial },
  (options) =>
    Effect.gen(function*() {
      const path = Option.getOrUndefined(options.out)
      const chosen = Option.getOrElse(options.format, () => (path === undefined ? undefined : EventFile.formatOfPath(path)) ?? "jsonl")
      const only = Option.getOrUndefined(options.stream)
      const streamId = only === undefined ? undefined : yield* Effect.mapError(StreamId.parse(only), (error) => CliError.usage(error.message))
      yield* Stores.withStore(options.store, "read", (store) =>
        Effect.gen(function*() {
          if (streamId === undefined) yield* Stores.requireWholeLog(store, "export", options.allowPartial)
          const head = yield* store.events.headPosition
          const total = streamId === undefined ? undefined : yield* store.events.streamVersion(streamId)
          const progress = Progress.make({ label: `exporting ${streamId ?? "the log"}`, unit: "events", total })
          let n = 0
          const events = (streamId === undefined ? store.events.readAll() : store.events.read(streamId)).pipe(
            Stream.tap((event) => {
              n++
              return progress.update(n, streamId === undefined && head > 0n ? Number(event.globalPosition) / Number(head) : undefined)
            })
          )
          const writeTo = (writer: Output.Writer) => EventFile.write(events, chosen, writer)
          const written = yield* (path === undefined ? writeTo(Output.stdout) : Output.toFile(path, writeTo)).pipe(Effect.ensuring(progress.finish))
          if (path !== undefined || process.stderr.isTTY === true) {
            yield* Output.stderr.write(`exported ${Output.count(written)} events from ${store.label} as ${chosen}${path === undefined ? "" : ` to ${path}`}\n`)
          }
        }))
    })
).pipe(Command.withDescription("Export events (--format jsonl|json|toon) to stdout or --out, with their ids, versions and metadata."))
