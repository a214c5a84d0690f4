/**
 * The machinery of `CommandHttp`: preconditions to expected versions,
 * failures to problems, the `ETag` on the answer.
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Predicate from "effect/Predicate"
import type { CommandHandler, CommandResult } from "../CommandHandler.js"
import type * as CommandHttp from "../CommandHttp.js"
import { Conflict, DomainRejected, etag, Gone, InvalidInput, PreconditionFailed } from "../CommandHttp.js"
import type { EventMetadata } from "../Event.js"
import * as ExpectedVersion from "../ExpectedVersion.js"
import * as StreamId from "../StreamId.js"

/** The fields every problem has (RFC 9457). */
const head = (slug: string, title: string, status: number, detail: string) => ({
  type: `urn:chronicle:problem:${slug}`,
  title,
  status,
  detail
})

export const invalid = (error: string, detail: string) =>
  new InvalidInput({ ...head("invalid-input", "Invalid input", 400, detail), error })

export const gone = (streamId: string, detail: string) => new Gone({ ...head("gone", "Gone", 410, detail), streamId })

const strongTag = /^"(\d{1,15})"$/

export const expectedVersion = (
  preconditions: CommandHttp.Preconditions
): Effect.Effect<ExpectedVersion.ExpectedVersion | undefined, InvalidInput> => {
  const match = preconditions["if-match"]?.trim()
  const noneMatch = preconditions["if-none-match"]?.trim()
  if (match !== undefined && noneMatch !== undefined) {
    return Effect.fail(invalid("Preconditions", "send If-Match or If-None-Match, not both"))
  }
  if (noneMatch !== undefined) {
    return noneMatch === "*"
      ? Effect.succeed(ExpectedVersion.NoStream)
      : Effect.fail(invalid("Preconditions", `a command takes If-None-Match: * only (create), got ${JSON.stringify(noneMatch)}`))
  }
  if (match === undefined) return Effect.succeed(undefined)
  if (match === "*") return Effect.succeed(ExpectedVersion.StreamExists)
  const version = strongTag.exec(match)?.[1]
  return version === undefined
    ? Effect.fail(
      invalid("Preconditions", `If-Match takes one strong entity tag such as "3" (a stream version) or *, got ${JSON.stringify(match)}`)
    )
    : Effect.succeed(ExpectedVersion.exact(Number(version)))
}

const invalidInputTags = new Set(["InvalidStreamId", "InvalidEvent", "EventTooLarge"])
const defectTags = new Set(["StoreError", "TransactionConflict", "DecodeError", "EventEncodeError"])

/** A domain error's own fields, as JSON can carry them. */
const fieldsOf = (error: object): Record<string, unknown> => {
  const fields: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(error)) {
    if (key === "_tag") continue
    try {
      const json = JSON.stringify(value)
      if (json !== undefined) fields[key] = JSON.parse(json)
    } catch {
      fields[key] = String(value)
    }
  }
  return fields
}

const messageOf = (error: unknown): string =>
  Predicate.hasProperty(error, "message") && typeof error.message === "string" && error.message.length > 0
    ? error.message
    : String(Predicate.hasProperty(error, "_tag") ? error._tag : error)

export const toProblem = <Err>(error: Err): Effect.Effect<never, CommandHttp.Problem> => {
  if (!Predicate.hasProperty(error, "_tag") || typeof error._tag !== "string") return Effect.die(error)
  const tagged = error as { readonly _tag: string } & Record<string, unknown>
  switch (tagged._tag) {
    case "ConcurrencyConflict":
      return Effect.fail(
        new PreconditionFailed({
          ...head("precondition-failed", "Precondition failed", 412, messageOf(tagged)),
          streamId: String(tagged.streamId),
          expected: ExpectedVersion.format(tagged.expected as ExpectedVersion.ExpectedVersion),
          actual: Number(tagged.actual)
        })
      )
    case "ConflictRetriesExhausted":
      return Effect.fail(
        new Conflict({
          ...head("conflict", "Conflict", 409, messageOf(tagged)),
          streamId: String(tagged.streamId),
          attempts: Number(tagged.attempts)
        })
      )
    case "StreamDeleted":
      return Effect.fail(gone(String(tagged.streamId), messageOf(tagged)))
  }
  if (invalidInputTags.has(tagged._tag)) return Effect.fail(invalid(tagged._tag, messageOf(tagged)))
  if (defectTags.has(tagged._tag)) return Effect.die(error)
  const message = messageOf(tagged)
  return Effect.fail(
    new DomainRejected({
      ...head(
        `domain:${tagged._tag}`,
        tagged._tag,
        422,
        message.startsWith("{") || message === tagged._tag ? `The command was refused: ${tagged._tag}` : message
      ),
      error: tagged._tag,
      fields: fieldsOf(tagged)
    })
  )
}

const streamIdOf = (streamId: StreamId.StreamId | string) =>
  Either.match(StreamId.parse(streamId), {
    onLeft: (error) => Effect.fail(invalid(error._tag, error.message)),
    onRight: Effect.succeed
  })

export const handle = <C, E, S, Err, R, Needs>(
  handler: CommandHandler<C, E, S, Err, R, Needs>,
  streamId: StreamId.StreamId | string,
  command: C,
  preconditions: CommandHttp.Preconditions,
  options?: { readonly metadata?: EventMetadata | undefined }
): Effect.Effect<CommandResult<E, S>, CommandHttp.Problem, R | Needs> =>
  Effect.gen(function*() {
    const expected = yield* expectedVersion(preconditions)
    const id = yield* streamIdOf(streamId)
    const result = yield* handler.handle(id, command, { expectedVersion: expected, metadata: options?.metadata }).pipe(
      Effect.catchAll(toProblem)
    )
    yield* HttpApp.appendPreResponseHandler((_request, response) =>
      Effect.succeed(HttpServerResponse.setHeader(response, "etag", etag(result.streamVersion)))
    )
    return result
  }).pipe(
    // Stryker disable next-line all: tracing only (span name and attributes), no behaviour
    Effect.withSpan("CommandHttp.handle", { captureStackTrace: false, attributes: { "chronicle.stream_id": String(streamId) } })
  )
