/**
 * Turns an aggregate's typed events (a `Schema` union of tagged structs) into
 * the JSON a store keeps, and back. The event's `_tag` becomes the stored
 * `type`; the rest of its encoded form becomes `data`. Decoding an unknown type
 * or a payload that does not fit the schema is a typed error naming the
 * stream, version and type.
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as Stream from "effect/Stream"
import { dual } from "effect/Function"
import type { EventMetadata, EventPayload, NewEvent, StoredEvent } from "./Event.js"
import * as EventId from "./EventId.js"
import * as EventStore from "./EventStore.js"
import { StreamId } from "./StreamId.js"
import * as Upcaster from "./Upcaster.js"

/**
 * A stored event whose type the codec does not know.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownEventType extends Schema.TaggedError<UnknownEventType>()("UnknownEventType", {
  streamId: StreamId,
  streamVersion: Schema.Number,
  type: Schema.String,
  knownTypes: Schema.Array(Schema.String)
}) {
  override get message() {
    return `Unknown event type ${JSON.stringify(this.type)} at ${this.streamId}@${this.streamVersion} (known: ${
      this.knownTypes.join(", ")
    })`
  }
}

/**
 * A stored event whose payload does not decode with its type's schema.
 *
 * @since 0.1.0
 * @category errors
 */
export class EventDecodeError extends Schema.TaggedError<EventDecodeError>()("EventDecodeError", {
  streamId: StreamId,
  streamVersion: Schema.Number,
  type: Schema.String,
  schemaVersion: Schema.Number,
  issue: Schema.String
}) {
  override get message() {
    return `Cannot decode ${this.type} (schema v${this.schemaVersion}) at ${this.streamId}@${this.streamVersion}: ${this.issue}`
  }
}

/**
 * A typed event that does not encode with its schema (a value that breaks a
 * refinement, say).
 *
 * @since 0.1.0
 * @category errors
 */
export class EventEncodeError extends Schema.TaggedError<EventEncodeError>()("EventEncodeError", {
  type: Schema.String,
  issue: Schema.String
}) {
  override get message() {
    return `Cannot encode event ${this.type}: ${this.issue}`
  }
}

/**
 * Why a stored event could not become a typed one.
 *
 * @since 0.1.0
 * @category errors
 */
export type DecodeError = UnknownEventType | EventDecodeError | Upcaster.UpcastError

/**
 * Any event that carries its type in `_tag`, as `Schema.TaggedStruct` makes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Tagged {
  readonly _tag: string
}

/**
 * Options for encoding one event.
 *
 * @since 0.1.0
 * @category models
 */
export interface EncodeOptions {
  readonly eventId?: EventId.EventId | undefined
  readonly metadata?: EventMetadata | undefined
}

/**
 * The codec of one aggregate's events.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventCodec<E extends Tagged> {
  readonly schema: Schema.Schema<E, any>
  /** The event types (tags) this codec knows. */
  readonly types: ReadonlyArray<E["_tag"]>
  /** The current schema version of an event type. */
  readonly schemaVersion: (type: E["_tag"]) => number
  /** Encodes a typed event into a `NewEvent` with a fresh UUIDv7 (or the given) id. */
  readonly encode: (event: E, options?: EncodeOptions) => Either.Either<NewEvent, EventEncodeError>
  /**
   * Upcasts a stored event and decodes what it becomes: usually one event,
   * several when an upcaster splits it.
   */
  readonly decodeEvents: (stored: EventPayload) => Either.Either<ReadonlyArray<E>, DecodeError>
  /** Decodes a stored event into one typed event (an upcaster that splits it is an error here). */
  readonly decodeData: (stored: EventPayload) => Either.Either<E, DecodeError>
  /** Decodes a stored event into the same envelope with a typed payload. */
  readonly decode: (stored: StoredEvent) => Either.Either<StoredEvent<E>, DecodeError>
}

/**
 * @since 0.1.0
 * @category options
 */
export interface CodecOptions<Tag extends string, E = never> {
  /**
   * The current schema version per event type (default 1). Events stored
   * under a newer version than the codec knows fail to decode rather than
   * lose fields.
   */
  readonly schemaVersions?: { readonly [K in Tag]?: number } | undefined
  /** Upcasters run on read, before decoding (see `Upcaster`). */
  readonly upcasters?: ReadonlyArray<Upcaster.Upcaster> | undefined
  /**
   * The tags of an event, for Dynamic Consistency Boundaries: set on every
   * event this codec encodes (`course:c1`, `student:s7`).
   */
  readonly tags?: ((event: NoInfer<E>) => ReadonlyArray<string>) | undefined
}

const flattenUnion = (ast: SchemaAST.AST): ReadonlyArray<SchemaAST.AST> =>
  SchemaAST.isUnion(ast) ? ast.types.flatMap(flattenUnion) : [ast]

const tagOf = (ast: SchemaAST.AST): string => {
  const tag = SchemaAST.getPropertySignatures(SchemaAST.encodedAST(ast)).find((p) => p.name === "_tag")
  if (tag !== undefined && SchemaAST.isLiteral(tag.type) && typeof tag.type.literal === "string") {
    return tag.type.literal
  }
  throw new TypeError(
    `EventCodec.make: every event schema must be a tagged struct with a string literal _tag; got ${String(ast)}`
  )
}

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * `{ ...data, _tag: tag }`, copied key by key when `data` is a plain object
 * (as `JSON.parse` makes them): V8 takes a slow path for a spread followed
 * by a property, and the object it makes is slower to decode.
 */
const withTag = (data: Record<string, unknown>, tag: string): Record<string, unknown> => {
  if (Object.getPrototypeOf(data) !== Object.prototype || Object.getOwnPropertySymbols(data).length > 0) {
    return { ...data, _tag: tag }
  }
  const copy: Record<string, unknown> = {}
  for (const key in data) {
    // assigning a key Object.prototype has (__proto__, toString) would set the copy's prototype or hit
    // that property (read-only when intrinsics are frozen): the spread defines such keys as fields
    if (key in Object.prototype || !Object.hasOwn(data, key)) return { ...data, _tag: tag }
    copy[key] = data[key]
  }
  copy._tag = tag
  return copy
}

const decodeFailure = (stored: EventPayload, issue: string) =>
  Either.left(
    new EventDecodeError({
      streamId: stored.streamId,
      streamVersion: stored.streamVersion,
      type: stored.type,
      schemaVersion: stored.schemaVersion,
      issue
    })
  )

const formatIssue = (error: ParseResult.ParseError) => ParseResult.TreeFormatter.formatErrorSync(error)

/**
 * Builds the codec of a union of tagged event schemas.
 *
 * @example
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Number })
 * const codec = EventCodec.make(Schema.Union(Deposited, Withdrawn))
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E extends Tagged, I>(
  schema: Schema.Schema<E, I, never>,
  options: CodecOptions<E["_tag"], E> = {}
): EventCodec<E> => {
  interface Member {
    readonly decode: (u: unknown) => Either.Either<E, ParseResult.ParseError>
    readonly encode: (e: E) => Either.Either<unknown, ParseResult.ParseError>
    readonly version: number
  }
  const members = new Map<string, Member>()
  for (const ast of flattenUnion(schema.ast)) {
    const tag = tagOf(ast)
    if (members.has(tag)) throw new TypeError(`EventCodec.make: the event type ${tag} appears twice`)
    const member = Schema.make<E, unknown, never>(ast)
    const version = (options.schemaVersions as Record<string, number | undefined> | undefined)?.[tag] ?? 1
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new TypeError(`EventCodec.make: the schema version of ${tag} must be a positive integer`)
    }
    members.set(tag, {
      decode: Schema.decodeUnknownEither(member),
      encode: Schema.encodeEither(member),
      version
    })
  }
  const types = [...members.keys()] as Array<E["_tag"]>

  const upcasters = options.upcasters === undefined || options.upcasters.length === 0
    ? undefined
    : Upcaster.registry(options.upcasters)

  /** Decodes `raw` (the stored event, or what an upcaster made of it), naming `stored` in errors. */
  const decodeRaw = (stored: EventPayload, raw: Upcaster.RawEvent): Either.Either<E, DecodeError> => {
    const member = members.get(raw.type)
    if (member === undefined) {
      return Either.left(
        new UnknownEventType({
          streamId: stored.streamId,
          streamVersion: stored.streamVersion,
          type: raw.type,
          knownTypes: types
        })
      )
    }
    if (raw.schemaVersion > member.version) {
      return decodeFailure(
        stored,
        `it was written with schema version ${raw.schemaVersion}, newer than this codec's ${member.version}`
      )
    }
    if (!isRecord(raw.data)) return decodeFailure(stored, "the payload is not a JSON object")
    const decoded = member.decode(withTag(raw.data, raw.type))
    return Either.isRight(decoded) ? Either.right(decoded.right) : decodeFailure(stored, formatIssue(decoded.left))
  }

  const needsUpcast = (stored: EventPayload) =>
    upcasters !== undefined && upcasters.appliesTo(stored.type, stored.schemaVersion)

  const decodeEvents = (stored: EventPayload): Either.Either<ReadonlyArray<E>, DecodeError> => {
    if (!needsUpcast(stored)) return Either.map(decodeRaw(stored, stored), (event) => [event])
    return Either.flatMap(upcasters!.apply(stored), (raws): Either.Either<ReadonlyArray<E>, DecodeError> => {
      const out: Array<E> = []
      for (const raw of raws) {
        const decoded = decodeRaw(stored, raw)
        if (Either.isLeft(decoded)) return Either.left(decoded.left)
        out.push(decoded.right)
      }
      return Either.right(out)
    })
  }

  const decodeData = (stored: EventPayload): Either.Either<E, DecodeError> => {
    if (!needsUpcast(stored)) return decodeRaw(stored, stored)
    return Either.flatMap(decodeEvents(stored), (events) =>
      events.length === 1
        ? Either.right(events[0]!)
        : decodeFailure(stored, `upcasting made ${events.length} events of it; read it with decodeEvents`))
  }

  return {
    schema,
    types,
    schemaVersion: (type) => members.get(type)?.version ?? 1,
    encode: (event, encodeOptions) => {
      const member = members.get(event._tag)
      if (member === undefined) {
        return Either.left(new EventEncodeError({ type: String(event._tag), issue: "not an event type of this codec" }))
      }
      return Either.match(member.encode(event), {
        onLeft: (error) => Either.left(new EventEncodeError({ type: event._tag, issue: formatIssue(error) })),
        onRight: (encoded) => {
          const { _tag, ...data } = encoded as Record<string, unknown>
          return Either.right({
            eventId: encodeOptions?.eventId ?? EventId.unsafeGenerate(),
            type: event._tag,
            data,
            metadata: encodeOptions?.metadata,
            schemaVersion: member.version,
            tags: options.tags?.(event)
          })
        }
      })
    },
    decodeEvents,
    decodeData,
    decode: (stored) => Either.map(decodeData(stored), (data) => ({ ...stored, data }))
  }
}

/**
 * Encodes a batch of typed events, all with the same metadata.
 *
 * @since 0.1.0
 * @category combinators
 */
export const encodeAll = <E extends Tagged>(
  codec: EventCodec<E>,
  events: ReadonlyArray<E>,
  metadata?: EventMetadata
): Effect.Effect<ReadonlyArray<NewEvent>, EventEncodeError> =>
  Effect.suspend(() => {
    const out: Array<NewEvent> = []
    for (const event of events) {
      const encoded = codec.encode(event, { metadata })
      if (Either.isLeft(encoded)) return Effect.fail(encoded.left)
      out.push(encoded.right)
    }
    return Effect.succeed(out)
  })

/**
 * Decodes a stream of stored events chunk by chunk, failing on the first
 * event that does not decode. Pipeable (`stream.pipe(EventCodec.decodeStream(codec))`)
 * or data-first (`EventCodec.decodeStream(stream, codec)`).
 *
 * @since 0.1.0
 * @category combinators
 */
export const decodeStream: {
  <E extends Tagged>(
    codec: EventCodec<E>
  ): <Err, R>(stream: Stream.Stream<StoredEvent, Err, R>) => Stream.Stream<StoredEvent<E>, Err | DecodeError, R>
  <E extends Tagged, Err, R>(
    stream: Stream.Stream<StoredEvent, Err, R>,
    codec: EventCodec<E>
  ): Stream.Stream<StoredEvent<E>, Err | DecodeError, R>
} = dual(2, <E extends Tagged, Err, R>(
  stream: Stream.Stream<StoredEvent, Err, R>,
  codec: EventCodec<E>
): Stream.Stream<StoredEvent<E>, Err | DecodeError, R> =>
  Stream.mapChunksEffect(stream, (chunk) =>
    Effect.suspend(() => {
      const out: Array<StoredEvent<E>> = []
      for (const stored of chunk) {
        const decoded = codec.decode(stored)
        if (Either.isLeft(decoded)) return Effect.fail(decoded.left)
        out.push(decoded.right)
      }
      return Effect.succeed(Chunk.unsafeFromArray(out))
    })))

/**
 * Reads a stream through the EventStore in context and decodes it.
 *
 * @since 0.1.0
 * @category accessors
 */
export const read = <E extends Tagged>(
  codec: EventCodec<E>,
  streamId: StreamId,
  options?: EventStore.ReadOptions
): Stream.Stream<StoredEvent<E>, EventStore.ReadError | DecodeError, EventStore.EventStore> =>
  decodeStream(EventStore.read(streamId, options), codec)
