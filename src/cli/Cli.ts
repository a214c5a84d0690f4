/**
 * The `chronicle` command line: inspect, replay, validate, move and measure
 * event stores. Each command takes `--store` (or `CHRONICLE_STORE`).
 *
 * @since 0.1.0
 */
import { Command } from "@effect/cli"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import type * as Terminal from "@effect/platform/Terminal"
import type * as Effect from "effect/Effect"
import * as bench from "./commands/bench.js"
import * as copy from "./commands/copy.js"
import * as exportCommand from "./commands/export.js"
import * as importCommand from "./commands/import.js"
import * as read from "./commands/read.js"
import * as replay from "./commands/replay.js"
import * as stats from "./commands/stats.js"
import * as streams from "./commands/streams.js"
import * as tail from "./commands/tail.js"
import * as ui from "./commands/ui.js"
import * as validate from "./commands/validate.js"

/**
 * The version the CLI reports.
 *
 * @category constants
 */
export const version = "0.1.0"

/**
 * The root command and its subcommands.
 *
 * @category commands
 */
export const command = Command.make("chronicle").pipe(
  Command.withDescription(
    "Inspect, replay, validate, export, import, copy and benchmark chronicle event stores. Every command takes --store (file:<dir>, postgres://…?schema=…, memory:; default file:./.chronicle, or CHRONICLE_STORE)."
  ),
  Command.withSubcommands([
    streams.command,
    stats.command,
    read.command,
    tail.command,
    replay.command,
    validate.command,
    exportCommand.command,
    importCommand.command,
    copy.command,
    bench.command,
    ui.command
  ])
)

/**
 * The names of the subcommands.
 *
 * @category constants
 */
export const commandNames: ReadonlyArray<string> = [
  "streams", "stats", "read", "tail", "replay", "validate", "export", "import", "copy", "bench", "ui"
]

/**
 * Runs the CLI on `argv` (as `process.argv`: the first two entries are skipped).
 *
 * @category running
 */
export const run: (argv: ReadonlyArray<string>) => Effect.Effect<void, unknown, FileSystem.FileSystem | Path.Path | Terminal.Terminal> =
  Command.run(command, { name: "chronicle", version })
