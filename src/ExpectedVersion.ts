/**
 * What a writer expects a stream's version to be when it appends: the heart
 * of optimistic concurrency. Stream versions are 1-based; version 0 means the
 * stream has no events.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The stream must not exist yet (same as the exact version 0).
 *
 * @since 0.1.0
 * @category constructors
 */
export const NoStream = "NoStream" as const

/**
 * The stream must have at least one event.
 *
 * @since 0.1.0
 * @category constructors
 */
export const StreamExists = "StreamExists" as const

/**
 * No check: append whatever the stream's version.
 *
 * @since 0.1.0
 * @category constructors
 */
export const Any = "Any" as const

/**
 * An exact version (a non-negative integer) or one of `NoStream`,
 * `StreamExists`, `Any`.
 *
 * @since 0.1.0
 * @category models
 */
export const ExpectedVersion = Schema.Union(
  Schema.NonNegativeInt,
  Schema.Literal(NoStream, StreamExists, Any)
)

/**
 * @since 0.1.0
 * @category models
 */
export type ExpectedVersion = typeof ExpectedVersion.Type

/**
 * Whether a stream at `actual` satisfies `expected`.
 *
 * @since 0.1.0
 * @category predicates
 */
export const matches = (expected: ExpectedVersion, actual: number): boolean => {
  switch (expected) {
    case Any:
      return true
    case NoStream:
      return actual === 0
    case StreamExists:
      return actual > 0
    default:
      return expected === actual
  }
}

/**
 * The expected version that pins a stream to the version a reader saw:
 * `NoStream` for 0, the exact number otherwise.
 *
 * @since 0.1.0
 * @category constructors
 */
export const exact = (version: number): ExpectedVersion => (version === 0 ? NoStream : version)

/**
 * A short human form, for messages: `3`, `NoStream`, …
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (expected: ExpectedVersion): string => String(expected)
