/**
 * `chronicle read <stream>`: a stream's events, forwards or backwards, within
 * a range of versions.
 *
 * @since 0.1.0
 */
import { Args, Command, Options } from "@effect/cli"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { StoredEvent } from "../../Event.js"
import * as StreamId from "../../StreamId.js"
import * as CliError from "../CliError.js"
import * as CommonOptions from "../CommonOptions.js"
import * as Output from "../Output.js"
import * as Stores from "../Stores.js"

const stream = Args.text({ name: "stream" }).pipe(Args.withDescription("The stream id, e.g. account-42."))
const from = Options.integer("from").pipe(Options.optional, Options.withDescription("The first version to read (inclusive)."))
const to = Options.integer("to").pipe(Options.optional, Options.withDescription("The last version to read (inclusive)."))
const backwards = Options.boolean("backwards").pipe(Options.withDescription("Newest first."))
const limit = Options.integer("limit").pipe(Options.optional, Options.withDescription("At most this many events."))

/**
 * One event as a line of a table row set.
 *
 * @category formatting
 */
export const eventColumns = (styles: Output.Style): ReadonlyArray<Output.Column<StoredEvent>> => [
  { header: "VERSION", cell: (e) => String(e.streamVersion), align: "right" },
  { header: "POSITION", cell: (e) => e.globalPosition.toString(), align: "right" },
  { header: "RECORDED", cell: (e) => e.recordedAt.toISOString(), style: styles.dim },
  { header: "TYPE", cell: (e) => e.type, style: styles.cyan },
  { header: "DATA", cell: (e) => Output.json(e.data) }
]

const nonNegative = (name: string, value: Option.Option<number>) =>
  Option.isSome(value) && value.value < 0 ? Effect.fail(CliError.usage(`--${name} must be >= 0, got ${value.value}`)) : Effect.void

/**
 * The `read` command.
 *
 * @category commands
 */
export const command = Command.make(
  "read",
  { store: CommonOptions.store, json: CommonOptions.json, stream, from, to, backwards, limit },
  (options) =>
    Effect.gen(function*() {
      yield* nonNegative("from", options.from)
      yield* nonNegative("to", options.to)
      yield* nonNegative("limit", options.limit)
      const streamId = yield* Effect.mapError(StreamId.parse(options.stream), (error) => CliError.usage(error.message))
      yield* Stores.withStore(options.store, "read", (store) =>
        Effect.gen(function*() {
          const version = yield* store.events.streamVersion(streamId)
          if (version === 0) return yield* CliError.fail(`stream ${streamId} has no events in ${store.label}`)
          const events = store.events.read(streamId, {
            fromVersion: Option.getOrUndefined(options.from),
            toVersion: Option.getOrUndefined(options.to),
            direction: options.backwards ? "backwards" : "forwards",
            limit: Option.getOrUndefined(options.limit)
          })
          if (options.json) {
            yield* Output.stdout.write("[")
            const n = yield* Stream.runFoldEffect(events, 0, (n, event) =>
              Effect.as(Output.stdout.write(`${n === 0 ? "\n" : ",\n"}  ${Output.json(Output.eventToJson(event))}`), n + 1))
            return yield* Output.stdout.write(n === 0 ? "]\n" : "\n]\n")
          }
          const all = yield* Stream.runCollect(events)
          const styles = Output.style()
          yield* Output.line(Output.table([...all], eventColumns(styles), styles))
          yield* Output.line(styles.dim(`${all.length} of ${version} events of ${Output.printable(streamId)}`))
        }))
    })
).pipe(Command.withDescription("Read a stream's events (--from/--to versions, --backwards, --limit)."))
