/**
 * Which store a command works on, from `--store` or `CHRONICLE_STORE`:
 * `file:<directory>` (the embedded default, `file:./.chronicle`; a bare path
 * means the same), `postgres://user@host:5432/db?schema=chronicle` (the
 * `schema` parameter picks the PostgreSQL schema, default `chronicle`) or
 * `memory:` (empty, gone when the command ends: for `bench`).
 *
 * @since 0.1.0
 */
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import { printable } from "./Output.js"

/**
 * A `--store` value that names no store chronicle knows.
 *
 * @category errors
 */
export class InvalidStoreSpec extends Data.TaggedError("InvalidStoreSpec")<{
  readonly spec: string
  readonly reason: string
}> {
  override get message() {
    return `invalid store ${JSON.stringify(redact(this.spec))}: ${this.reason}`
  }
}

/**
 * A parsed store specification.
 *
 * @category models
 */
export type StoreSpec =
  | { readonly _tag: "File"; readonly directory: string }
  | { readonly _tag: "Postgres"; readonly url: Redacted.Redacted<string>; readonly schema: string }
  | { readonly _tag: "Memory" }

/**
 * The store used when neither `--store` nor `CHRONICLE_STORE` is given.
 *
 * @category constants
 */
export const defaultSpec = "file:./.chronicle"

const schemaName = /^[a-z_][a-z0-9_]{0,62}$/

/** The query parameters of a PostgreSQL URL that hold a secret. */
const secretParameters = ["password", "sslpassword"]

const userinfo = /([a-z][a-z0-9+.-]*:\/\/)([^\s/?#]*)@/gi
const secretParameter = new RegExp(`([?&](?:${secretParameters.join("|")})=)[^&#\\s]*`, "gi")

/**
 * Text with every credential of the URLs in it hidden: the password of the
 * user info (up to its last `@`, so an unencoded `@` in a password hides all
 * of it) and `password=` / `sslpassword=` query parameters. For error
 * messages, which may quote a URL a driver was given.
 *
 * @example
 * redact("postgres://app:p@ss@db/prod?sslpassword=k") // "postgres://app:***@db/prod?sslpassword=***"
 *
 * @category formatting
 */
export const redact = (text: string): string =>
  text
    .replace(userinfo, (_, scheme: string, info: string) => {
      const colon = info.indexOf(":")
      return colon === -1 ? `${scheme}${info}@` : `${scheme}${info.slice(0, colon)}:***@`
    })
    .replace(secretParameter, "$1***")

/**
 * Parses a store specification.
 *
 * @example
 * StoreSpec.parse("postgres://app@db:5432/prod?schema=billing")
 * // Right({ _tag: "Postgres", url: Redacted("postgres://app@db:5432/prod"), schema: "billing" })
 *
 * @category constructors
 */
export const parse = (spec: string): Either.Either<StoreSpec, InvalidStoreSpec> => {
  const fail = (reason: string) => Either.left(new InvalidStoreSpec({ spec, reason }))
  const trimmed = spec.trim()
  if (trimmed.length === 0) return fail("it is empty")
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(trimmed)?.[1]?.toLowerCase()
  if (scheme === undefined) return Either.right({ _tag: "File", directory: trimmed })
  switch (scheme) {
    case "file": {
      if (trimmed.startsWith("file://")) {
        try {
          return Either.right({ _tag: "File", directory: fileURLToPath(trimmed) })
        } catch (error) {
          return fail(error instanceof Error ? error.message : String(error))
        }
      }
      const directory = trimmed.slice("file:".length)
      return directory.length === 0 ? fail("file: needs a directory, e.g. file:./.chronicle") : Either.right({ _tag: "File", directory })
    }
    case "postgres":
    case "postgresql": {
      let url: URL
      try {
        url = new URL(trimmed)
      } catch {
        return fail("not a valid URL (postgres://user@host:5432/database?schema=chronicle)")
      }
      const schema = url.searchParams.get("schema") ?? "chronicle"
      if (!schemaName.test(schema)) return fail(`the schema ${JSON.stringify(schema)} must match ${schemaName.source}`)
      url.searchParams.delete("schema")
      return Either.right({ _tag: "Postgres", url: Redacted.make(url.toString()), schema })
    }
    case "memory":
      return Either.right({ _tag: "Memory" })
    default:
      return fail(`unknown scheme "${scheme}:" (expected file:<directory>, postgres://… or memory:)`)
  }
}

/**
 * A store's name for people and checkpoints: an absolute directory, or the
 * URL without its password (in the user info or a query parameter) and with
 * its schema; control characters escaped (`Output.printable`).
 *
 * @category getters
 */
export const label = (spec: StoreSpec): string => {
  switch (spec._tag) {
    case "File":
      return printable(`file:${NodePath.resolve(spec.directory)}`)
    case "Postgres": {
      const url = new URL(Redacted.value(spec.url))
      url.password = ""
      for (const name of secretParameters) url.searchParams.delete(name)
      url.searchParams.set("schema", spec.schema)
      return printable(url.toString())
    }
    case "Memory":
      return "memory:"
  }
}
