/**
 * `chronicle replay <stream> --decider <module>[#Export]`: folds a stream
 * through a decider's `evolve`, showing each event and the state after it;
 * `--at-version N` and `--until <time>` stop where the stream was then.
 * `--final` prints only the end state, loaded by `CommandHandler.loadAt`.
 *
 * @since 0.1.0
 */
import { Args, Command, Options } from "@effect/cli"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as CommandHandler from "../../CommandHandler.js"
import type { StoredEvent } from "../../Event.js"
import * as EventStore from "../../EventStore.js"
import * as StreamId from "../../StreamId.js"
import * as Toon from "../../Toon.js"
import * as CliError from "../CliError.js"
import * as CommonOptions from "../CommonOptions.js"
import * as Modules from "../Modules.js"
import * as Output from "../Output.js"
import * as Progress from "../Progress.js"
import * as Stores from "../Stores.js"

const stream = Args.text({ name: "stream" }).pipe(Args.withDescription("The stream to replay."))
const decider = Options.text("decider").pipe(
  Options.withAlias("d"),
  Options.withDescription(
    "The module with the decider: path[#Export]. The export is a decider or { decider, codec }; without one, the module's `chronicle` export, its default, or its only decider. The module is imported: its code runs with your rights, so never point it at a file you would not run."
  )
)
const codec = Options.text("codec").pipe(
  Options.optional,
  Options.withDescription("The export holding the event codec (default: the codec of { decider, codec }, or the module's codec that knows the stream's types).")
)
const atVersion = Options.integer("at-version").pipe(Options.optional, Options.withDescription("Stop after this version."))
const until = Options.date("until").pipe(Options.optional, Options.withDescription("Stop at the last event recorded at or before this ISO time."))
const final = Options.boolean("final").pipe(Options.withDescription("Print only the state at the end (or at --at-version / --until)."))

const indent = (text: string, by: string) => text.split("\n").map((line) => (line.length === 0 ? line : by + line)).join("\n")

/**
 * The `replay` command.
 *
 * @category commands
 */
export const command = Command.make(
  "replay",
  { store: CommonOptions.store, json: CommonOptions.json, stream, decider, codec, atVersion, until, final },
  (options) =>
    Effect.gen(function*() {
      const streamId = yield* Effect.mapError(StreamId.parse(options.stream), (error) => CliError.usage(error.message))
      const atVersion = Option.getOrUndefined(options.atVersion)
      if (atVersion !== undefined && atVersion < 0) return yield* CliError.usage(`--at-version must be >= 0, got ${atVersion}`)
      const until = Option.getOrUndefined(options.until)
      const found = yield* Modules.load(options.decider, { codec: Option.getOrUndefined(options.codec), needDecider: true })
      const folder = found.decider!
      yield* Stores.withStore(options.store, "read", (store) =>
        Effect.gen(function*() {
          const version = yield* store.events.streamVersion(streamId)
          if (version === 0) return yield* CliError.fail(`stream ${streamId} has no events in ${store.label}`)
          const range = { toVersion: atVersion }
          // the codec: the one given, or the one that knows every type of the stream
          let named = found.codecs.length === 1 ? found.codecs[0]! : undefined
          if (named === undefined) {
            const types = new Set<string>()
            yield* Stream.runForEach(store.events.read(streamId, range), (event) => Effect.sync(() => types.add(event.type)))
            named = Modules.codecFor(found.codecs, types)
            if (named === undefined) {
              return yield* CliError.usage(
                `no codec of ${found.path} knows every type of ${streamId} (${[...types].join(", ")}); pick one with --codec`
              )
            }
          }
          const chosen = named
          const heading = Output.printable(`${streamId} through ${folder.name} (${found.path}) with ${chosen.name}`)

          if (options.final) {
            const at = until !== undefined
              ? { time: until }
              : atVersion !== undefined
              ? { version: atVersion }
              : undefined
            const loaded = yield* CommandHandler.load(folder.decider, chosen.codec, streamId, { at }).pipe(
              Effect.provideService(EventStore.EventStore, store.events),
              Effect.mapError((error) => CliError.fail(error.message))
            )
            if (options.json) {
              return yield* Output.line(Output.json({ streamId, version: loaded.version, state: Toon.toPlain(loaded.state) }, 2))
            }
            const styles = Output.style()
            yield* Output.line(styles.bold(`${heading}: state at version ${loaded.version}`))
            return yield* Output.line(Output.printableLines(Toon.stateToToon(loaded.state)))
          }

          const styles = Output.style()
          const progress = Progress.make({ label: `replaying ${Output.printable(streamId)}`, unit: "events", total: Math.min(version, atVersion ?? version) })
          let state = folder.decider.initialState
          let last = 0
          let steps = 0
          if (options.json) yield* Output.stdout.write(`{"streamId":${JSON.stringify(streamId)},"steps":[`)
          else yield* Output.line(styles.bold(heading))
          const events = store.events.read(streamId, range).pipe(
            Stream.takeWhile((event) => until === undefined || event.recordedAt.getTime() <= until.getTime())
          )
          yield* Stream.runForEach(events, (event: StoredEvent) =>
            Effect.gen(function*() {
              const decoded = chosen.codec.decodeEvents(event)
              if (Either.isLeft(decoded)) return yield* CliError.fail(decoded.left.message)
              for (const typed of decoded.right) state = folder.decider.evolve(state, typed)
              last = event.streamVersion
              if (options.json) {
                yield* Output.stdout.write(`${steps === 0 ? "\n" : ",\n"}  ${Output.json({
                  streamVersion: event.streamVersion,
                  globalPosition: event.globalPosition,
                  recordedAt: event.recordedAt.toISOString(),
                  type: event.type,
                  data: event.data,
                  state: Toon.toPlain(state)
                })}`)
              } else {
                yield* Output.line(
                  `\n${styles.bold(`#${event.streamVersion}`)} ${styles.cyan(Output.printable(event.type))} ${Output.printable(Output.json(event.data))} ${
                    styles.dim(`@${event.globalPosition} ${event.recordedAt.toISOString()}`)
                  }`
                )
                yield* Output.line(indent(Output.printableLines(Toon.stateToToon(state)), "  "))
              }
              steps++
              yield* progress.update(steps)
            })).pipe(Effect.ensuring(progress.finish))
          if (options.json) {
            return yield* Output.line(`${steps === 0 ? "" : "\n"}],"version":${last},"state":${Output.json(Toon.toPlain(state))}}`)
          }
          yield* Output.line(styles.dim(`\n${steps} events replayed; state at version ${last} of ${version}`))
        }))
    })
).pipe(Command.withDescription("Replay a stream through a decider, showing the state after each event (--at-version, --until, --final)."))
