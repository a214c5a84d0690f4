/**
 * `chronicle import`: writes an exported history into a store with the same
 * event ids, stream ids, versions, payloads and metadata. Importing again is
 * safe: events already stored are recognised by their ids.
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as CliError from "../CliError.js"
import * as CommonOptions from "../CommonOptions.js"
import * as EventFile from "../EventFile.js"
import * as Output from "../Output.js"
import * as Progress from "../Progress.js"
import * as Stores from "../Stores.js"
import * as Transfer from "../Transfer.js"
import { format } from "./export.js"

const input = Options.text("in").pipe(Options.withAlias("i"), Options.optional, Options.withDescription("The file to read (default: stdin)."))
const maxLineBytes = Options.integer("max-line-bytes").pipe(
  Options.withDefault(EventFile.defaultMaxLineBytes),
  Options.withDescription(`The longest JSON Lines line accepted, in bytes (default ${EventFile.defaultMaxLineBytes}, 16 MiB); a longer one stops the import.`)
)
const maxDocumentBytes = Options.integer("max-document-bytes").pipe(
  Options.withDefault(EventFile.defaultMaxDocumentBytes),
  Options.withDescription(
    `The largest json or toon file accepted, in bytes (default ${EventFile.defaultMaxDocumentBytes}, 128 MiB); these formats are read whole, jsonl streams.`
  )
)

/**
 * The `import` command.
 *
 * @category commands
 */
export const command = Command.make(
  "import",
  { store: CommonOptions.store, json: CommonOptions.json, format, input, maxLineBytes, maxDocumentBytes },
  (options) =>
    Effect.gen(function*() {
      const path = Option.getOrUndefined(options.input)
      const chosen = Option.getOrElse(options.format, () => (path === undefined ? undefined : EventFile.formatOfPath(path)) ?? "jsonl")
      if (options.maxLineBytes < 1) return yield* CliError.usage(`--max-line-bytes must be >= 1, got ${options.maxLineBytes}`)
      if (options.maxDocumentBytes < 1) return yield* CliError.usage(`--max-document-bytes must be >= 1, got ${options.maxDocumentBytes}`)
      const events = EventFile.read(path, chosen, { maxLineBytes: options.maxLineBytes, maxDocumentBytes: options.maxDocumentBytes })
      yield* Stores.withStore(options.store, "write", (store) =>
        Effect.gen(function*() {
          const appender = Transfer.make(store.events)
          const progress = Progress.make({ label: "importing", unit: "events" })
          let read = 0
          yield* events.pipe(
            Stream.rechunk(1000),
            Stream.runForEachChunk((chunk) =>
              Effect.gen(function*() {
                yield* appender.write([...chunk])
                read += chunk.length
                yield* progress.update(read)
              })
            ),
            Effect.ensuring(progress.finish)
          )
          const { appended, batches, present } = appender.totals
          if (options.json) {
            return yield* Output.line(Output.json({ store: store.label, read, appended, alreadyPresent: present, streams: appender.versions.size, batches }))
          }
          yield* Output.line(
            `imported ${Output.count(appended)} events into ${store.label} (${Output.count(present)} already there) in ${
              Output.count(appender.versions.size)
            } streams`
          )
        }))
    })
).pipe(Command.withDescription("Import events exported by `export` (--in file or stdin; --format jsonl|json|toon), idempotently."))
