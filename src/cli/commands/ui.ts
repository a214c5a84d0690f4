/**
 * `chronicle ui`: a read-only web console over a store, served on
 * 127.0.0.1:4600 (`--host`, `--port`): streams with search and counts, a
 * stream's events newest first, the global log live, projections with their
 * checkpoints and lag, and with `--decider` the state after any event.
 *
 * @since 0.2.0
 */
import { createServer } from "node:http"
import { Command, Options } from "@effect/cli"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as CliError from "../CliError.js"
import * as CommonOptions from "../CommonOptions.js"
import * as Modules from "../Modules.js"
import * as Output from "../Output.js"
import * as StoreSpec from "../StoreSpec.js"
import * as Stores from "../Stores.js"
import * as Server from "../ui/Server.js"

const port = Options.integer("port").pipe(
  Options.withAlias("p"),
  Options.withDefault(4600),
  Options.withDescription("The port to listen on (0: any free one; the address is printed).")
)
const host = Options.text("host").pipe(
  Options.withDefault("127.0.0.1"),
  Options.withDescription("The address to listen on. The default lets only this machine in; any other lets whoever reaches it read the whole store.")
)
const decider = Options.text("decider").pipe(
  Options.withAlias("d"),
  Options.optional,
  Options.withDescription(
    "A module with a decider (path[#Export], as replay takes it), to show the state after any event. The module is imported: its code runs with your rights, so never point it at a file you would not run."
  )
)
const codec = Options.text("codec").pipe(
  Options.optional,
  Options.withDescription("The export of the decider module holding the event codec (as replay takes it).")
)

/**
 * The `ui` command.
 *
 * @since 0.2.0
 * @category commands
 */
export const command = Command.make(
  "ui",
  { store: CommonOptions.store, port, host, decider, codec, pollInterval: CommonOptions.pollInterval },
  (options) =>
    Effect.scoped(Effect.gen(function*() {
      if (options.port < 0 || options.port > 65535) return yield* CliError.usage(`--port must be from 0 to 65535, got ${options.port}`)
      const reference = Option.getOrUndefined(options.decider)
      const found = reference === undefined
        ? undefined
        : yield* Modules.load(reference, { codec: Option.getOrUndefined(options.codec), needDecider: true })
      const store = yield* Effect.either(Stores.open(options.store, "read"))
      const parsed = StoreSpec.parse(options.store)
      const label = Either.isRight(store)
        ? store.right.label
        : Either.isRight(parsed)
        ? StoreSpec.label(parsed.right)
        : Output.printable(StoreSpec.redact(options.store))
      if (Either.isLeft(store)) {
        yield* Output.stderr.write(`chronicle: warning: ${Output.printable(StoreSpec.redact(store.left.message))}; the console shows this\n`)
      }
      const server = yield* NodeHttpServer.make(() => createServer(), { port: options.port, host: options.host }).pipe(
        Effect.mapError((error) => CliError.fail(`cannot listen on ${options.host}:${options.port}: ${CliError.messageOf(error)}`))
      )
      yield* server.serve(Server.make({
        label,
        store,
        decider: found,
        pollInterval: Option.getOrUndefined(options.pollInterval),
        allowedHosts: Server.allowedHostsFor(options.host)
      }))
      const address = server.address
      const where = address._tag === "TcpAddress"
        ? `http://${address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname}:${address.port}/`
        : address.path
      yield* Output.line(`chronicle ui: ${where} on ${label} (read-only; Ctrl-C to stop)`)
      return yield* Effect.never
    }))
).pipe(
  Command.withDescription(
    "Serve a read-only web console on 127.0.0.1:4600: streams, a stream's events, the log live, projections and their lag; with --decider, the state after any event."
  )
)
