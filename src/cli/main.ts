/**
 * The entry point of the `chronicle` command line (see `Cli`): runs it on the
 * process's arguments, reports a failure as one line on stderr (no stack
 * trace; `CHRONICLE_DEBUG=1` shows the cause) and sets the exit code: 0, 1 for
 * a failed operation, 2 for a command used wrongly. Ctrl-C interrupts the
 * command cleanly (exit 0 for `tail`, 130 otherwise).
 *
 * @since 0.1.0
 */
import { ValidationError } from "@effect/cli"
// the modules, not the package's index: the index loads all of platform-node (sockets, workers, HTTP…), about a second of start-up
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Cli from "./Cli.js"
import * as CliError from "./CliError.js"
import * as Output from "./Output.js"
import * as StoreSpec from "./StoreSpec.js"

// a reader that goes away (`chronicle export | head`) ends the command, quietly; any other
// write error (`chronicle export > /mnt/full/file`: ENOSPC) ends it with one line and exit code 1
for (const [name, stream] of [["stdout", process.stdout], ["stderr", process.stderr]] as const) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0)
    if (name === "stdout") process.stderr.write(`chronicle: cannot write to stdout: ${CliError.messageOf(error)}\n`)
    process.exit(1)
  })
}

const debug = process.env.CHRONICLE_DEBUG !== undefined && process.env.CHRONICLE_DEBUG !== "" && process.env.CHRONICLE_DEBUG !== "0"

const report = (message: string, exitCode: number) =>
  Effect.sync(() => {
    process.stderr.write(`chronicle: ${Output.printable(StoreSpec.redact(message))}\n`)
    process.exitCode = exitCode
  })

const program = Cli.run(process.argv).pipe(
  Effect.catchAll((error) => {
    // @effect/cli has printed the usage error already
    if (ValidationError.isValidationError(error)) {
      return Effect.sync(() => {
        const command = Cli.commandNames.includes(process.argv[2] ?? "") ? ` ${process.argv[2]}` : ""
        process.stderr.write(`Run chronicle${command} --help for usage.\n`)
        process.exitCode = 2
      })
    }
    if (error instanceof CliError.CliError) return report(error.message, error.exitCode)
    return report(CliError.messageOf(error), 1)
  }),
  Effect.catchAllDefect((defect) =>
    Effect.zipRight(
      debug ? Effect.sync(() => process.stderr.write(`${Cause.pretty(Cause.die(defect))}\n`)) : Effect.void,
      report(`unexpected error: ${CliError.messageOf(defect)}`, 1)
    )
  ),
  Effect.provide(NodeContext.layer),
  // @effect/cli styles its help and usage errors even when piped: plain text unless the stream takes colours
  Output.withPlainConsole
)

const tailing = process.argv[2] === "tail" || process.argv[2] === "ui"

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit, onExit) =>
    onExit(
      Exit.isSuccess(exit)
        ? Number(process.exitCode ?? 0)
        : Cause.isInterruptedOnly(exit.cause)
        ? (tailing ? 0 : 130)
        : 1
    )
})
