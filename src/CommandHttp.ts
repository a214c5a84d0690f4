/**
 * Commands over HTTP with `@effect/platform`'s `HttpApi`: conditional
 * requests mapped to expected versions, and chronicle's failures mapped to
 * problem responses (RFC 9457, `application/problem+json`).
 *
 * - `If-Match: "<version>"` pins the stream's version (a stale one answers
 *   412); `If-Match: *` asks that the stream exist; `If-None-Match: *` that it
 *   not exist (a create). Without either, concurrent writers are retried and,
 *   if retries run out, answered 409.
 * - A successful command answers `ETag: "<new version>"`, the value to send
 *   back as `If-Match` next time.
 * - A deleted stream answers 410; a decider's own domain error 422 naming its
 *   tag; a bad stream id or event 400. Payloads and paths that fail their
 *   Schema get `HttpApi`'s own 400 with the Schema's message.
 *
 * @example
 * import { HttpApiEndpoint, HttpApiSchema } from "@effect/platform"
 * import { Schema } from "effect"
 * import { CommandHttp } from "chronicle/http"
 *
 * const deposit = HttpApiEndpoint.post("deposit")`/accounts/${HttpApiSchema.param("id", Schema.String)}/deposits`
 *   .setPayload(Schema.Struct({ amount: Schema.Int }))
 *   .setHeaders(CommandHttp.Preconditions)
 *   .addSuccess(Schema.Struct({ version: Schema.Number }))
 *   .addError(CommandHttp.PreconditionFailed)
 *   .addError(CommandHttp.Conflict)
 *   .addError(CommandHttp.Gone)
 *   .addError(CommandHttp.DomainRejected)
 *   .addError(CommandHttp.InvalidInput)
 *
 * @since 0.2.0
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { CommandHandler, CommandResult, HandlerError } from "./CommandHandler.js"
import type * as ExpectedVersion from "./ExpectedVersion.js"
import type { EventMetadata } from "./Event.js"
import * as internal from "./internal/commandHttp.js"
import type { StreamId } from "./StreamId.js"

/**
 * The conditional request headers a command endpoint reads: set them with
 * `HttpApiEndpoint.setHeaders(CommandHttp.Preconditions)`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Preconditions = Schema.Struct({
  "if-match": Schema.optional(Schema.String),
  "if-none-match": Schema.optional(Schema.String)
})

/**
 * @since 0.2.0
 * @category schemas
 */
export type Preconditions = typeof Preconditions.Type

const problem = {
  type: Schema.String,
  title: Schema.String,
  status: Schema.Number,
  detail: Schema.String
}

/** A problem's HTTP status and its `application/problem+json` body. */
const problemAt = <A>(status: number): Schema.Annotations.Schema<A> => ({
  ...HttpApiSchema.annotations<A>({ status }),
  [HttpApiSchema.AnnotationEncoding]: { kind: "Json", contentType: "application/problem+json" }
})

/**
 * 412: the request's `If-Match` / `If-None-Match` does not hold, or another
 * writer moved the stream before this command's append. Read again and resend
 * with the new `ETag`.
 *
 * @since 0.2.0
 * @category errors
 */
export class PreconditionFailed extends Schema.TaggedError<PreconditionFailed>()("PreconditionFailed", {
  ...problem,
  streamId: Schema.String,
  expected: Schema.String,
  actual: Schema.Number
}, problemAt(412)) {}

/**
 * 409: no precondition was sent, and the command kept conflicting with
 * concurrent writers until its retries ran out.
 *
 * @since 0.2.0
 * @category errors
 */
export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", {
  ...problem,
  streamId: Schema.String,
  attempts: Schema.Number
}, problemAt(409)) {}

/**
 * 410: the stream was deleted; it takes no more events.
 *
 * @since 0.2.0
 * @category errors
 */
export class Gone extends Schema.TaggedError<Gone>()("Gone", {
  ...problem,
  streamId: Schema.String
}, problemAt(410)) {}

/**
 * 422: the decider refused the command. `error` is the domain error's tag,
 * `fields` its fields.
 *
 * @since 0.2.0
 * @category errors
 */
export class DomainRejected extends Schema.TaggedError<DomainRejected>()("DomainRejected", {
  ...problem,
  error: Schema.String,
  fields: Schema.Record({ key: Schema.String, value: Schema.Unknown })
}, problemAt(422)) {}

/**
 * 400: the stream id, a precondition header or an event the command produced
 * is not valid (chronicle's validity rules, not the payload's Schema, which
 * `HttpApi` checks itself).
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  ...problem,
  error: Schema.String
}, problemAt(400)) {}

/**
 * Every problem a command endpoint answers.
 *
 * @since 0.2.0
 * @category models
 */
export type Problem = PreconditionFailed | Conflict | Gone | DomainRejected | InvalidInput

/**
 * A 410 problem for a stream that is deleted (or, for a read, cannot exist).
 *
 * @since 0.2.0
 * @category constructors
 */
export const gone: (streamId: string, detail: string) => Gone = internal.gone

/**
 * A 400 problem naming the rule that `error` broke.
 *
 * @since 0.2.0
 * @category constructors
 */
export const invalidInput: (error: string, detail: string) => InvalidInput = internal.invalid

/**
 * The strong entity tag of a stream version: `"7"`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const etag = (version: number): string => `"${version}"`

/**
 * The expected version a request's preconditions ask for: `If-Match: "7"`
 * exactly 7, `If-Match: *` an existing stream, `If-None-Match: *` no stream,
 * neither any version. A malformed tag is an `InvalidInput`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const expectedVersion: (
  preconditions: Preconditions
) => Effect.Effect<ExpectedVersion.ExpectedVersion | undefined, InvalidInput> = internal.expectedVersion

/**
 * Runs a command for an HTTP request: its preconditions become the expected
 * version, the answer gets `ETag: "<new version>"`, and every failure becomes
 * the problem it is (`Problem`). Store failures and defects stay defects
 * (500).
 *
 * @example
 * // inside HttpApiBuilder.group(Api, "accounts", (handlers) => handlers.handle("deposit", ...))
 * ({ path, payload, headers }) =>
 *   CommandHttp.handle(accounts, StreamId.unsafeMake("account", path.id), { _tag: "Deposit", amount: payload.amount }, headers)
 *
 * @since 0.2.0
 * @category combinators
 */
export const handle: <C, E, S, Err, R, Needs>(
  handler: CommandHandler<C, E, S, Err, R, Needs>,
  streamId: StreamId | string,
  command: C,
  preconditions: Preconditions,
  options?: { readonly metadata?: EventMetadata | undefined }
) => Effect.Effect<CommandResult<E, S>, Problem, R | Needs> = internal.handle

/**
 * Maps a command's failure to its problem: `ConcurrencyConflict` (only met
 * with a precondition) to 412, `ConflictRetriesExhausted` to 409, `StreamDeleted` to 410, invalid input to 400, a
 * domain error to 422; store failures and decode errors become defects.
 *
 * @since 0.2.0
 * @category combinators
 */
export const toProblem: <Err>(error: Err | HandlerError) => Effect.Effect<never, Problem> = internal.toProblem
