/**
 * The failures the CLI reports itself: one line on stderr, no stack trace,
 * and an exit code (1 for a failed operation, 2 for a command used wrongly).
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"

/**
 * A failure to report as `chronicle: <message>` with `exitCode`.
 *
 * @category errors
 */
export class CliError extends Data.TaggedError("CliError")<{
  readonly message: string
  readonly exitCode: number
}> {}

/**
 * A failed operation (exit code 1).
 *
 * @category constructors
 */
export const fail = (message: string): CliError => new CliError({ message, exitCode: 1 })

/**
 * A command used wrongly: a bad option value, a missing file (exit code 2).
 *
 * @category constructors
 */
export const usage = (message: string): CliError => new CliError({ message, exitCode: 2 })

/**
 * The message of any error on one line, with the innermost cause's message
 * when it says more ("Failed to acquire connection (connect ECONNREFUSED …)").
 *
 * @category getters
 */
export const messageOf = (error: unknown): string => {
  const own = ownMessage(error)
  let root: unknown = error
  for (let depth = 0; depth < 10; depth++) {
    const cause = typeof root === "object" && root !== null ? (root as { cause?: unknown }).cause : undefined
    if (cause === undefined || cause === null) break
    root = cause
  }
  const rootMessage = root === error ? undefined : ownMessage(root)
  return rootMessage === undefined || rootMessage.length === 0 || own.includes(rootMessage) ? own : `${own} (${rootMessage})`
}

const ownMessage = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "message" in error) {
    const message = String((error as { message: unknown }).message)
    if (message.length > 0) return message.split("\n").map((line) => line.trim()).filter((line) => line.length > 0).join(" ")
    if ("_tag" in error) return String((error as { _tag: unknown })._tag)
  }
  return String(error)
}

/**
 * Makes the process exit with `code` when the command is done, without an
 * error message (the command reported what it found).
 *
 * @category combinators
 */
export const exitCode = (code: number): Effect.Effect<void> =>
  Effect.sync(() => {
    process.exitCode = code
  })
