/**
 * `chronicle tail`: follows the global log live, from its end (or its start
 * with `--from-start`), until interrupted (Ctrl-C) or `--limit` events.
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { StoredEvent } from "../../Event.js"
import * as CommonOptions from "../CommonOptions.js"
import * as Output from "../Output.js"
import * as Stores from "../Stores.js"

const fromStart = Options.boolean("from-start").pipe(Options.withDescription("Start at the first event instead of the end of the log."))
const limit = Options.integer("limit").pipe(Options.optional, Options.withDescription("Stop after this many events."))

const categories = Options.text("category").pipe(
  Options.repeated,
  Options.withDescription("Only events of streams of this category (repeat for several); filtered in the store.")
)
const types = Options.text("type").pipe(
  Options.repeated,
  Options.withDescription("Only events of this type (repeat for several); filtered in the store.")
)

const humanLine = (styles: Output.Style) => (event: StoredEvent) =>
  `${styles.dim(event.recordedAt.toISOString())} ${String(event.globalPosition).padStart(8)} ${
    styles.cyan(`${Output.printable(event.streamId)}@${event.streamVersion}`)
  } ${styles.bold(Output.printable(event.type))} ${Output.printable(Output.json(event.data))}`

/**
 * The `tail` command.
 *
 * @category commands
 */
export const command = Command.make(
  "tail",
  { store: CommonOptions.store, json: CommonOptions.json, fromStart, limit, pollInterval: CommonOptions.pollInterval, categories, types },
  (options) =>
    Stores.withStore(options.store, "read", (store) =>
      Effect.gen(function*() {
        const after = options.fromStart ? 0n : yield* store.events.headPosition
        const styles = Output.style()
        const format = options.json ? (event: StoredEvent) => Output.json(Output.eventToJson(event)) : humanLine(styles)
        yield* Output.stderr.write(Output.styleFor(process.stderr).dim(`following ${store.label} after position ${after} (Ctrl-C to stop)\n`))
        const poll = Option.getOrUndefined(options.pollInterval)
        const filter = options.categories.length === 0 && options.types.length === 0 ? undefined : {
          categories: options.categories.length === 0 ? undefined : options.categories,
          types: options.types.length === 0 ? undefined : options.types
        }
        const events = store.events.subscribe({ after, filter, pollInterval: poll === undefined ? undefined : `${Math.max(1, poll)} millis` })
        const limited = Option.match(options.limit, { onNone: () => events, onSome: (n) => Stream.take(events, n) })
        yield* Stream.runForEach(limited, (event) => Output.line(format(event)))
      })
    )
).pipe(Command.withDescription("Follow the global log live (from its end, or --from-start; --category and --type filter it); Ctrl-C stops."))
