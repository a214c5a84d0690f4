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
import { Data, Either } from "effect"

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
  | { readonly _tag: "Postgres"; readonly url: string; readonly schema: string }
  | { readonly _tag: "Memory" }

/**
 * The store used when neither `--store` nor `CHRONICLE_STORE` is given.
 *
 * @category constants
 */
export const defaultSpec = "file:./.chronicle"

const schemaName = /^[a-z_][a-z0-9_]{0,62}$/

/** Hides the password of a URL-like spec. */
const redact = (spec: string): string => spec.replace(/^([a-z]+:\/\/[^:/@]*):[^@/]*@/i, "$1:***@")

/**
 * Parses a store specification.
 *
 * @example
 * StoreSpec.parse("postgres://app@db:5432/prod?schema=billing")
 * // Right({ _tag: "Postgres", url: "postgres://app@db:5432/prod", schema: "billing" })
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
      return Either.right({ _tag: "Postgres", url: url.toString(), schema })
    }
    case "memory":
      return Either.right({ _tag: "Memory" })
    default:
      return fail(`unknown scheme "${scheme}:" (expected file:<directory>, postgres://… or memory:)`)
  }
}

/**
 * A store's name for people and checkpoints: an absolute directory, or the
 * URL without its password and with its schema.
 *
 * @category getters
 */
export const label = (spec: StoreSpec): string => {
  switch (spec._tag) {
    case "File":
      return `file:${NodePath.resolve(spec.directory)}`
    case "Postgres": {
      const url = new URL(spec.url)
      url.password = ""
      url.searchParams.set("schema", spec.schema)
      return url.toString()
    }
    case "Memory":
      return "memory:"
  }
}
