/**
 * Options every command shares: which store (`--store`, `CHRONICLE_STORE`)
 * and whether to print JSON.
 *
 * @since 0.1.0
 */
import { Options } from "@effect/cli"
import { Config } from "effect"
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
 * `--json`: machine-readable output.
 *
 * @category options
 */
export const json = Options.boolean("json").pipe(Options.withDescription("Print JSON instead of a table."))
