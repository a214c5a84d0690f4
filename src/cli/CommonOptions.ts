/**
 * Options every command shares: which store (`--store`, `CHRONICLE_STORE`)
 * and whether to print JSON.
 *
 * @since 0.1.0
 */
import { Options } from "@effect/cli"
import * as Config from "effect/Config"
import * as StoreSpec from "./StoreSpec.js"

/**
 * `--store`: `file:<dir>` (default `file:./.chronicle`), `postgres://…?schema=…` or `memory:`.
 *
 * @category options
 */
export const store = Options.text("store").pipe(
  Options.withAlias("s"),
  Options.withFallbackConfig(Config.string("CHRONICLE_STORE")),
  Options.withDefault(StoreSpec.defaultSpec),
  Options.withDescription(
    "The store: file:<directory> (default file:./.chronicle), postgres://user@host:5432/db?schema=chronicle, or memory:. Also CHRONICLE_STORE."
  )
)

/**
 * `--allow-partial`: read the global log even when an open transaction holds
 * committed events back from readers (PostgreSQL), with a warning.
 *
 * @category options
 */
export const allowPartial = Options.boolean("allow-partial").pipe(
  Options.withDescription(
    "Go on (with a warning) when an open transaction holds committed events back from readers (PostgreSQL); without it the command fails and says what it cannot see."
  )
)

/**
 * `--json`: machine-readable output.
 *
 * @category options
 */
export const json = Options.boolean("json").pipe(Options.withDescription("Print JSON instead of a table."))

/**
 * `--poll-ms`: how often a live read looks for new events when the store sends no signal.
 *
 * @since 0.2.0
 * @category options
 */
export const pollInterval = Options.integer("poll-ms").pipe(
  Options.optional,
  Options.withDescription("How often to look for new events when the store sends no signal, in ms (default: the store's).")
)
