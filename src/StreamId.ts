/**
 * Stream identifiers. A stream id follows the `category-id` convention: the
 * category (everything before the first `-`) names the aggregate type, so
 * projections and tools can filter streams by it.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { identity } from "effect/Function"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { v7 as uuidv7 } from "uuid"
import { maxIdBytes, unfitForId } from "./internal/text.js"
import { streamHash } from "./internal/partition.js"

/**
 * The longest stream id, in UTF-8 bytes (1024): every store indexes ids, and
 * PostgreSQL refuses index rows much longer, so every store refuses longer ones.
 *
 * @since 0.2.0
 * @category models
 */
export const maxBytes: number = maxIdBytes

/**
 * A branded, non-empty stream id such as `account-0192f1c4-…`: any text but
 * control characters (U+0000–U+001F, U+007F–U+009F) and lone UTF-16
 * surrogates, which no store keeps alike, of at most `maxBytes` UTF-8 bytes.
 *
 * @since 0.1.0
 * @category models
 */
export const StreamId = Schema.String.pipe(
  Schema.minLength(1, { message: () => "a stream id must not be empty" }),
  Schema.filter((value) => {
    const problem = unfitForId(value)
    return problem === undefined || `a stream id must not hold ${problem}`
  }),
  Schema.brand("chronicle/StreamId")
)

/**
 * @since 0.1.0
 * @category models
 */
export type StreamId = typeof StreamId.Type

/**
 * A stream id that is not well formed: empty, holding a control character or
 * a lone surrogate, or built from a category that contains the `-`
 * separator. Stores refuse such ids (the brand bypassed) with it too.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidStreamId extends Schema.TaggedError<InvalidStreamId>()("InvalidStreamId", {
  value: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    const shown = this.value.length > 200 ? `${JSON.stringify(this.value.slice(0, 100))}… (${this.value.length} characters)` : JSON.stringify(this.value)
    return `Invalid stream id ${shown}: ${this.reason}`
  }
}

const decodeEither = Schema.decodeEither(StreamId)

/**
 * Validates any non-empty string without control characters or lone
 * surrogates as a stream id (ids without a category are allowed; their
 * category is the whole id).
 *
 * @since 0.1.0
 * @category constructors
 */
export const parse = (value: string): Either.Either<StreamId, InvalidStreamId> =>
  Either.mapLeft(
    decodeEither(value),
    (error) => new InvalidStreamId({ value, reason: ParseResult.TreeFormatter.formatErrorSync(error) })
  )

/**
 * Validates a string as a stream id, throwing `InvalidStreamId` when it is
 * not one. For ids known to be valid (constants, tests); `parse` is the
 * total version.
 *
 * @since 0.2.0
 * @category unsafe
 */
export const unsafeParse = (value: string): StreamId => Either.getOrThrowWith(parse(value), identity)

/**
 * Builds `category-id`, or fails with `InvalidStreamId` when the category is
 * empty or contains `-`, the id is empty, or the text holds a control
 * character or a lone surrogate. The id may contain anything else (UUIDs
 * contain dashes). An `Either`, so `yield*` it inside `Effect.gen`.
 *
 * @example
 * const id = yield* StreamId.make("account", "42") // "account-42"
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (category: string, id: string): Either.Either<StreamId, InvalidStreamId> => {
  if (category.length === 0 || category.includes("-")) {
    return Either.left(
      new InvalidStreamId({
        value: `${category}-${id}`,
        reason: `the category ${JSON.stringify(category)} must be non-empty and must not contain "-"`
      })
    )
  }
  if (id.length === 0) {
    return Either.left(new InvalidStreamId({ value: `${category}-`, reason: "the id after the category must not be empty" }))
  }
  const problem = unfitForId(`${category}-${id}`)
  return problem === undefined
    ? Either.right(`${category}-${id}` as StreamId)
    : Either.left(new InvalidStreamId({ value: `${category}-${id}`, reason: `a stream id must not hold ${problem}` }))
}

/**
 * `make` for ids known to be valid: throws `InvalidStreamId` otherwise.
 *
 * @example
 * StreamId.unsafeMake("account", "42") // "account-42"
 *
 * @since 0.1.0
 * @category unsafe
 */
export const unsafeMake = (category: string, id: string): StreamId => Either.getOrThrowWith(make(category, id), identity)

/**
 * A new stream id in `category`, with a time-ordered UUIDv7 as its id: unique
 * without coordination, and sorted by creation time. Fails with
 * `InvalidStreamId` when the category is not one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const generate = (category: string): Effect.Effect<StreamId, InvalidStreamId> =>
  Effect.suspend(() => make(category, uuidv7()))

/**
 * The category of a stream id: the part before the first `-`, or the whole id
 * when it has none.
 *
 * @since 0.1.0
 * @category getters
 */
export const category = (streamId: StreamId): string => {
  const dash = streamId.indexOf("-")
  return dash === -1 ? streamId : streamId.slice(0, dash)
}

/**
 * The entity part of a stream id: everything after the first `-`, or `""`.
 *
 * @since 0.1.0
 * @category getters
 */
export const entityId = (streamId: StreamId): string => {
  const dash = streamId.indexOf("-")
  return dash === -1 ? "" : streamId.slice(dash + 1)
}

/**
 * Which of `partitions` partitions a stream belongs to: FNV-1a (32 bits) of
 * its id's UTF-8 bytes, modulo `partitions`. Stable across processes,
 * machines and versions, so workers that split a projection by stream
 * (`ProjectionRunner` with `partition`) always agree.
 *
 * @since 0.2.0
 * @category getters
 */
export const partitionOf = (streamId: StreamId, partitions: number): number => streamHash(streamId) % partitions
