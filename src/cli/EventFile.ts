/**
 * Event histories in files: JSON Lines (one event per line, streamed), one
 * JSON array, or TOON (`Toon.toToon`). Every format keeps the whole envelope:
 * event id, type, stream id and version, global position, recording time,
 * schema version, data, metadata and tags.
 *
 * @since 0.1.0
 */
import * as NodeFs from "node:fs"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type { StoredEvent } from "../Event.js"
import { EventId } from "../EventId.js"
import { StreamId } from "../StreamId.js"
import * as Toon from "../Toon.js"
import * as CliError from "./CliError.js"
import * as Output from "./Output.js"

/**
 * The formats of an event file.
 *
 * @category models
 */
export const formats = ["jsonl", "json", "toon"] as const

/**
 * One of `formats`.
 *
 * @category models
 */
export type Format = (typeof formats)[number]

/**
 * The format a file name suggests (`.jsonl`/`.ndjson`, `.json`, `.toon`), if any.
 *
 * @category constructors
 */
export const formatOfPath = (path: string): Format | undefined => {
  const lower = path.toLowerCase()
  if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson")) return "jsonl"
  if (lower.endsWith(".json")) return "json"
  if (lower.endsWith(".toon")) return "toon"
  return undefined
}

/**
 * The JSON form of a stored event, as `Output.eventToJson` writes it; the
 * global position may also be a number.
 *
 * @category models
 */
export const EventJson = Schema.Struct({
  globalPosition: Schema.Union(
    Schema.BigInt,
    Schema.transform(Schema.Int, Schema.BigIntFromSelf, { strict: true, decode: (n) => BigInt(n), encode: (n) => Number(n) })
  ),
  streamId: StreamId,
  streamVersion: Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)),
  eventId: EventId,
  type: Schema.NonEmptyString,
  recordedAt: Schema.DateFromString.pipe(Schema.filter((d) => !Number.isNaN(d.getTime()), { message: () => "a valid ISO time" })),
  schemaVersion: Schema.optionalWith(Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)), { default: () => 1 }),
  data: Schema.Unknown,
  metadata: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Unknown }), { default: () => ({}) }),
  tags: Schema.optionalWith(Schema.Array(Schema.NonEmptyString), { default: () => [] })
})

const decodeEvent = Schema.decodeUnknownEither(EventJson)

/**
 * A copy of a JSON object keeping every own key: Schema's record decoding
 * assigns keys, and assigning `__proto__` sets the prototype instead (the key
 * vanished on import, where the API and TOON keep it).
 */
const ownKeys = (record: object): Record<string, unknown> =>
  Object.defineProperties({}, Object.getOwnPropertyDescriptors(record)) as Record<string, unknown>

const rawMetadata = (value: unknown): object | undefined => {
  const metadata = typeof value === "object" && value !== null ? (value as { metadata?: unknown }).metadata : undefined
  return typeof metadata === "object" && metadata !== null ? metadata : undefined
}

/**
 * Decodes one event from its JSON form; `where` names it in the error.
 *
 * @category decoding
 */
export const eventFromJson = (value: unknown, where: string): Either.Either<StoredEvent, CliError.CliError> =>
  Either.mapBoth(decodeEvent(value), {
    onLeft: (error) => CliError.fail(`${where}: not an event: ${ParseResult.TreeFormatter.formatErrorSync(error).replace(/\n\s*/g, " ")}`),
    onRight: (event) => {
      const metadata = rawMetadata(value)
      return { ...event, data: event.data === undefined ? null : event.data, metadata: metadata === undefined ? event.metadata : ownKeys(metadata) }
    }
  })

// ---------------------------------------------------------------------------
// writing
// ---------------------------------------------------------------------------

/**
 * Writes a stream of events in `format`; returns how many. TOON needs the
 * whole history at once (it groups events by type), so it is collected first.
 *
 * @category encoding
 */
export const write = <E, R>(
  events: Stream.Stream<StoredEvent, E, R>,
  format: Format,
  writer: Output.Writer
): Effect.Effect<number, E | CliError.CliError, R> => {
  switch (format) {
    case "jsonl":
      return Stream.runFoldEffect(events, 0, (n, event) => Effect.as(writer.write(`${Output.json(Output.eventToJson(event))}\n`), n + 1))
    case "json":
      return Effect.gen(function*() {
        yield* writer.write("[")
        const n = yield* Stream.runFoldEffect(
          events,
          0,
          (n, event) => Effect.as(writer.write(`${n === 0 ? "\n" : ",\n"}  ${Output.json(Output.eventToJson(event))}`), n + 1)
        )
        yield* writer.write(n === 0 ? "]\n" : "\n]\n")
        return n
      })
    case "toon":
      return Effect.gen(function*() {
        const all = Chunk.toReadonlyArray(yield* Stream.runCollect(events))
        yield* writer.write(`${Toon.toToon(all)}\n`)
        return all.length
      })
  }
}

// ---------------------------------------------------------------------------
// reading
// ---------------------------------------------------------------------------

const inputStream = (path: string | undefined): NodeJS.ReadableStream =>
  path === undefined || path === "-" ? process.stdin : NodeFs.createReadStream(path)

/**
 * The longest line `read` accepts in a JSON Lines file by default: 16 MiB,
 * far above the stores' largest event (1 MiB of data and metadata).
 *
 * @category constants
 */
export const defaultMaxLineBytes = 16 * 1024 * 1024

/**
 * The largest whole document `read` accepts in the json and toon formats by
 * default: 128 MiB (they are parsed in memory; JSON Lines streams instead).
 *
 * @category constants
 */
export const defaultMaxDocumentBytes = 128 * 1024 * 1024

class LineTooLong {
  constructor(readonly line: number, readonly maxBytes: number) {}
}

const decodeLine = (pieces: ReadonlyArray<Buffer>): string => {
  const text = Buffer.concat(pieces).toString("utf8")
  return text.endsWith("\r") ? text.slice(0, -1) : text
}

/**
 * The lines of `input`, numbered from 1; fails with `LineTooLong` as soon as
 * a line passes `maxBytes`, before reading the rest of it, so memory stays
 * within `maxBytes` and one chunk.
 */
async function* linesOf(input: AsyncIterable<Buffer | string>, maxBytes: number): AsyncGenerator<readonly [string, number]> {
  let pieces: Array<Buffer> = []
  let length = 0
  let number = 0
  for await (const chunk of input) {
    const buffer = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk
    let start = 0
    for (;;) {
      const end = buffer.indexOf(10, start)
      length += (end === -1 ? buffer.length : end) - start
      if (length > maxBytes) throw new LineTooLong(number + 1, maxBytes)
      if (end === -1) {
        if (start < buffer.length) pieces.push(buffer.subarray(start))
        break
      }
      pieces.push(buffer.subarray(start, end))
      yield [decodeLine(pieces), ++number] as const
      pieces = []
      length = 0
      start = end + 1
    }
  }
  if (pieces.length > 0) yield [decodeLine(pieces), ++number] as const
}

const checkReadable = (path: string | undefined) =>
  path === undefined || path === "-"
    ? Effect.void
    : Effect.tryPromise({
      try: () => NodeFs.promises.access(path, NodeFs.constants.R_OK),
      catch: () => CliError.usage(`cannot read ${path}: no such file, or not readable`)
    })

class DocumentTooLarge {
  constructor(readonly maxBytes: number) {}
}

/** The whole of `path` (or stdin) as UTF-8 text, refused once it passes `maxBytes` without holding more. */
const readText = (path: string | undefined, maxBytes: number) =>
  Effect.zipRight(
    checkReadable(path),
    Effect.tryPromise({
      try: async () => {
        const input = inputStream(path)
        const pieces: Array<Buffer> = []
        let size = 0
        for await (const chunk of input as AsyncIterable<Buffer | string>) {
          const piece = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk
          size += piece.length
          if (size > maxBytes) {
            if (input !== process.stdin) (input as NodeFs.ReadStream).destroy()
            throw new DocumentTooLarge(maxBytes)
          }
          pieces.push(piece)
        }
        return Buffer.concat(pieces, size).toString("utf8")
      },
      catch: (error) =>
        error instanceof DocumentTooLarge
          ? CliError.fail(
            `${path ?? "stdin"}: the file is larger than ${error.maxBytes} bytes (--max-document-bytes); json and toon are read whole, so export larger histories as jsonl`
          )
          : CliError.fail(`cannot read ${path ?? "stdin"}: ${CliError.messageOf(error)}`)
    })
  )

/**
 * The first integer literal in JSON text beyond ±2^53 (outside strings), which
 * `JSON.parse` would silently round: importing it would change the event.
 *
 * @category decoding
 */
export const imprecise = (text: string): string | undefined => {
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++
      else if (c === 34) inString = false
      continue
    }
    if (c === 34) {
      inString = true
      continue
    }
    if ((c >= 48 && c <= 57) || c === 45) {
      let end = i + 1
      while (end < text.length && /[0-9.eE+-]/.test(text[end]!)) end++
      const literal = text.slice(i, end)
      if (/^-?\d{16,}$/.test(literal) && !Number.isSafeInteger(Number(literal))) return literal
      i = end - 1
    }
  }
  return undefined
}

const parseJson = (text: string, where: string): Effect.Effect<unknown, CliError.CliError> =>
  Effect.flatMap(
    Effect.try({ try: () => JSON.parse(text) as unknown, catch: () => CliError.fail(`${where}: not JSON`) }),
    (value) => {
      const literal = imprecise(text)
      return literal === undefined
        ? Effect.succeed(value)
        : CliError.fail(`${where}: the number ${literal} is beyond 2^53 and would lose precision; store it as a string`)
    }
  )

/**
 * How `read` reads: the longest JSON Lines line it accepts, in UTF-8 bytes
 * (default `defaultMaxLineBytes`), and the largest json or toon document
 * (default `defaultMaxDocumentBytes`).
 *
 * @category models
 */
export interface ReadOptions {
  readonly maxLineBytes?: number | undefined
  readonly maxDocumentBytes?: number | undefined
}

/**
 * Reads the events of a file (or stdin, for `undefined` or `-`) in `format`.
 * JSON Lines are streamed line by line, each line at most `maxLineBytes`; the
 * other formats are read whole, at most `maxDocumentBytes`.
 *
 * @category decoding
 */
export const read = (path: string | undefined, format: Format, options: ReadOptions = {}): Stream.Stream<StoredEvent, CliError.CliError> => {
  const name = path === undefined || path === "-" ? "stdin" : path
  switch (format) {
    case "jsonl": {
      const maxBytes = options.maxLineBytes ?? defaultMaxLineBytes
      return Stream.unwrap(Effect.as(checkReadable(path), Stream.fromAsyncIterable(
        { [Symbol.asyncIterator]: () => linesOf(inputStream(path) as AsyncIterable<Buffer | string>, maxBytes) },
        (error) =>
          error instanceof LineTooLong
            ? CliError.fail(`${name}:${error.line}: the line is longer than ${error.maxBytes} bytes (--max-line-bytes)`)
            : CliError.fail(`cannot read ${name}: ${CliError.messageOf(error)}`)
      ))).pipe(
        Stream.filter(([text]) => text.trim().length > 0),
        Stream.mapEffect(([text, number]) => {
          const where = `${name}:${number}`
          return Effect.flatMap(parseJson(text, where), (value) => eventFromJson(value, where))
        })
      )
    }
    case "json":
      return Stream.unwrap(Effect.gen(function*() {
        const text = yield* readText(path, options.maxDocumentBytes ?? defaultMaxDocumentBytes)
        const value = yield* parseJson(text, name)
        if (!Array.isArray(value)) return yield* CliError.fail(`${name}: expected a JSON array of events`)
        const events: Array<StoredEvent> = []
        for (let i = 0; i < value.length; i++) events.push(yield* eventFromJson(value[i], `${name}[${i}]`))
        return Stream.fromIterable(events)
      }))
    case "toon":
      return Stream.unwrap(Effect.gen(function*() {
        const text = yield* readText(path, options.maxDocumentBytes ?? defaultMaxDocumentBytes)
        const events = yield* Either.mapLeft(Toon.fromToon(text), (error) => CliError.fail(`${name}: ${error.message}`))
        return Stream.fromIterable(events)
      }))
  }
}
