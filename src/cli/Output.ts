/**
 * How the CLI writes: to stdout or a file with back-pressure, tables for
 * people, JSON for machines (bigints as strings), colours only on a terminal
 * and never with `NO_COLOR`.
 *
 * @since 0.1.0
 */
import * as NodeFs from "node:fs"
import * as NodeStream from "node:stream"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { StoredEvent } from "../Event.js"
import * as CliError from "./CliError.js"

/**
 * Somewhere to write text to. A write fails once the destination refused
 * bytes (a full disk, a closed pipe): the command stops instead of waiting for
 * a `drain` that never comes.
 *
 * @category models
 */
export interface Writer {
  readonly write: (text: string) => Effect.Effect<void, CliError.CliError>
}

const writerOf = (stream: NodeJS.WritableStream, name: string): Writer => {
  let failure: CliError.CliError | undefined
  const waiting = new Set<() => void>()
  stream.on("error", (error) => {
    failure ??= CliError.fail(`cannot write ${name}: ${CliError.messageOf(error)}`)
    for (const wake of [...waiting]) wake()
  })
  return {
    write: (text) =>
      Effect.async<void, CliError.CliError>((resume) => {
        if (failure !== undefined) return resume(Effect.fail(failure))
        if (stream.write(text)) return resume(Effect.void)
        const wake = () => {
          waiting.delete(wake)
          stream.off("drain", wake)
          resume(failure === undefined ? Effect.void : Effect.fail(failure))
        }
        waiting.add(wake)
        stream.once("drain", wake)
      })
  }
}

/**
 * Standard output.
 *
 * @category constructors
 */
export const stdout: Writer = writerOf(process.stdout, "to stdout")

/**
 * Standard error.
 *
 * @category constructors
 */
export const stderr: Writer = writerOf(process.stderr, "to stderr")

/**
 * Writes one line to stdout.
 *
 * @category combinators
 */
export const line = (text: string): Effect.Effect<void, CliError.CliError> => stdout.write(`${text}\n`)

interface OpenFile {
  readonly stream: NodeFs.WriteStream
  readonly writer: Writer
  /** Whether the path is a regular file (not a device or a pipe), which a failed write leaves partial. */
  readonly regular: boolean
}

const openFile = (path: string) =>
  Effect.async<OpenFile, CliError.CliError>((resume) => {
    const stream = NodeFs.createWriteStream(path)
    const writer = writerOf(stream, path)
    const failed = (error: Error) => resume(Effect.fail(CliError.usage(`cannot write ${path}: ${error.message}`)))
    stream.once("error", failed)
    stream.once("open", (fd: number) => {
      stream.off("error", failed)
      resume(Effect.succeed({ stream, writer, regular: NodeFs.fstatSync(fd).isFile() }))
    })
  })

const flushed = (stream: NodeFs.WriteStream, path: string) =>
  Effect.async<void, CliError.CliError>((resume) => {
    NodeStream.finished(stream, (error) =>
      resume(error === undefined || error === null ? Effect.void : Effect.fail(CliError.fail(`cannot write ${path}: ${CliError.messageOf(error)}`))))
    stream.end()
  })

const abandon = ({ regular, stream }: OpenFile, path: string) =>
  Effect.promise(async () => {
    stream.destroy()
    await new Promise((resolve) => (stream.closed ? resolve(undefined) : stream.once("close", () => resolve(undefined))))
    if (regular) await NodeFs.promises.rm(path, { force: true })
  })

/**
 * Runs `use` with a writer to the file at `path` (created or truncated), then
 * flushes and closes it; fails when any byte could not be written. When `use`
 * or the flush fails, or is interrupted, the partial file is removed (a device
 * or a pipe is only closed).
 *
 * @category combinators
 */
export const toFile = <A, E, R>(path: string, use: (writer: Writer) => Effect.Effect<A, E, R>): Effect.Effect<A, E | CliError.CliError, R> =>
  Effect.acquireUseRelease(
    openFile(path),
    (file) => Effect.zipLeft(use(file.writer), flushed(file.stream, path)),
    (file, exit) => (Exit.isSuccess(exit) ? Effect.void : abandon(file, path))
  )

// ---------------------------------------------------------------------------
// colours
// ---------------------------------------------------------------------------

/**
 * Whether to colour what goes to a stream: on a terminal, unless `NO_COLOR`
 * is set (or `TERM=dumb`); `FORCE_COLOR` colours anyway.
 *
 * @category predicates
 */
export const colorEnabled = (stream: { readonly isTTY?: boolean | undefined }): boolean => {
  const env = process.env
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "" && env.FORCE_COLOR !== "0") return true
  return stream.isTTY === true && env.TERM !== "dumb"
}

/**
 * Text styles, or no-ops when colours are off.
 *
 * @category models
 */
export interface Style {
  readonly bold: (text: string) => string
  readonly dim: (text: string) => string
  readonly red: (text: string) => string
  readonly green: (text: string) => string
  readonly yellow: (text: string) => string
  readonly cyan: (text: string) => string
}

const sgr = (open: number, close: number) => (text: string) => `\u001b[${open}m${text}\u001b[${close}m`
const plainText = (text: string) => text

/**
 * The styles for a stream.
 *
 * @category constructors
 */
export const styleFor = (stream: { readonly isTTY?: boolean | undefined }): Style =>
  colorEnabled(stream)
    ? { bold: sgr(1, 22), dim: sgr(2, 22), red: sgr(31, 39), green: sgr(32, 39), yellow: sgr(33, 39), cyan: sgr(36, 39) }
    : { bold: plainText, dim: plainText, red: plainText, green: plainText, yellow: plainText, cyan: plainText }

/**
 * The styles for stdout.
 *
 * @category constructors
 */
export const style = (): Style => styleFor(process.stdout)

// eslint-disable-next-line no-control-regex
const ansi = /\u001b\[[0-9;]*m/g

/**
 * Text without its ANSI colour codes.
 *
 * @category formatting
 */
export const stripAnsi = (text: string): string => text.replace(ansi, "")

const plainArgs = (args: ReadonlyArray<unknown>) => args.map((arg) => (typeof arg === "string" ? stripAnsi(arg) : arg))

/**
 * Runs `effect` with the ANSI codes taken out of what it writes through the
 * Effect `Console` to stdout (`log`, `info`) or stderr (`error`, `warn`) when
 * that stream gets no colours (piped, `NO_COLOR`). @effect/cli styles its help
 * and its usage errors whatever the stream; under this they come out plain.
 *
 * @category combinators
 */
export const withPlainConsole = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Console.consoleWith((base) => {
    const out = colorEnabled(process.stdout)
    const err = colorEnabled(process.stderr)
    const plain: Console.Console = {
      ...base,
      log: (...args) => base.log(...(out ? args : plainArgs(args))),
      info: (...args) => base.info(...(out ? args : plainArgs(args))),
      error: (...args) => base.error(...(err ? args : plainArgs(args))),
      warn: (...args) => base.warn(...(err ? args : plainArgs(args))),
      unsafe: {
        ...base.unsafe,
        log: (...args) => base.unsafe.log(...(out ? args : plainArgs(args))),
        info: (...args) => base.unsafe.info(...(out ? args : plainArgs(args))),
        error: (...args) => base.unsafe.error(...(err ? args : plainArgs(args))),
        warn: (...args) => base.unsafe.warn(...(err ? args : plainArgs(args)))
      }
    }
    return Effect.withConsole(effect, plain)
  })

// ---------------------------------------------------------------------------
// escaping
// ---------------------------------------------------------------------------

// eslint-disable-next-line no-control-regex
const unprintable = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
const named: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" }

/**
 * Text safe to print for a person: control characters (C0, tab and
 * newline included, DEL, C1), Unicode line separators and bidi
 * overrides become escapes (`\x1b`, `\n`, `\u202e`), so a stream id or an
 * event type can neither drive the terminal nor forge table rows. For tables,
 * labels and errors; JSON output is never escaped (it stays exact).
 *
 * @example
 * printable("acct-1\u001b]0;owned\u0007") // "acct-1\\x1b]0;owned\\x07"
 *
 * @category formatting
 */
export const printable = (text: string): string =>
  text.replace(unprintable, (c) => {
    const code = c.charCodeAt(0)
    return named[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`)
  })

/**
 * Multi-line text safe to print for a person: each line as `printable`
 * makes it, the line breaks kept (for TOON state and other indented blocks).
 *
 * @category formatting
 */
export const printableLines = (text: string): string => text.split("\n").map(printable).join("\n")

// ---------------------------------------------------------------------------
// tables
// ---------------------------------------------------------------------------

/**
 * A column of a table: its header, how a row shows in it, and its alignment.
 *
 * @category models
 */
export interface Column<A> {
  readonly header: string
  /** The cell's text, escaped by `table` (`printable`) before it is styled. */
  readonly cell: (row: A) => string
  readonly style?: ((text: string) => string) | undefined
  readonly align?: "left" | "right" | undefined
}

/**
 * Rows as an aligned text table with a header line (the last column is not
 * padded).
 *
 * @category formatting
 */
export const table = <A>(rows: ReadonlyArray<A>, columns: ReadonlyArray<Column<A>>, styles: Style = style()): string => {
  const cells = rows.map((row) => columns.map((column) => (column.style ?? plainText)(printable(column.cell(row)))))
  const widths = columns.map((column, i) =>
    Math.max(column.header.length, ...cells.map((row) => stripAnsi(row[i]!).length))
  )
  const render = (values: ReadonlyArray<string>) =>
    values.map((value, i) => {
      const last = i === values.length - 1
      const pad = widths[i]! - stripAnsi(value).length
      if (columns[i]!.align === "right") return " ".repeat(pad) + value
      return last ? value : value + " ".repeat(pad)
    }).join("  ").trimEnd()
  return [styles.bold(render(columns.map((column) => column.header))), ...cells.map(render)].join("\n")
}

// ---------------------------------------------------------------------------
// values
// ---------------------------------------------------------------------------

/**
 * JSON text of any value, bigints as strings.
 *
 * @category formatting
 */
export const json = (value: unknown, indent?: number): string =>
  JSON.stringify(value, (_, item) => (typeof item === "bigint" ? item.toString() : item), indent)

/**
 * A stored event as a plain JSON object: the envelope with its global
 * position as a string (it is a 64-bit integer) and its time in ISO 8601.
 *
 * @category formatting
 */
export const eventToJson = (event: StoredEvent): Record<string, unknown> => ({
  globalPosition: event.globalPosition.toString(),
  streamId: event.streamId,
  streamVersion: event.streamVersion,
  eventId: event.eventId,
  type: event.type,
  recordedAt: event.recordedAt.toISOString(),
  schemaVersion: event.schemaVersion,
  data: event.data,
  metadata: event.metadata,
  tags: event.tags
})

/**
 * A count with thousands separators.
 *
 * @category formatting
 */
export const count = (n: number | bigint): string => n.toLocaleString("en-US")

/**
 * A byte size in B, KiB, MiB, GiB.
 *
 * @category formatting
 */
export const bytes = (n: number): string => {
  if (n < 1024) return `${n} B`
  const units = ["KiB", "MiB", "GiB", "TiB"]
  let value = n / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`
}

/**
 * A duration in milliseconds as `1h02m`, `3m05s`, `12s`, `850ms`.
 *
 * @category formatting
 */
export const duration = (ms: number): string => {
  if (!Number.isFinite(ms)) return "?"
  if (ms < 1000) return `${Math.round(ms)}ms`
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`
}

/**
 * UTF-8 bytes of an event's payload: its data and metadata as JSON, the
 * measure stores apply their size limit to.
 *
 * @category getters
 */
export const payloadBytes = (event: Pick<StoredEvent, "data" | "metadata">): number =>
  Buffer.byteLength(JSON.stringify(event.data) ?? "", "utf8") + Buffer.byteLength(JSON.stringify(event.metadata) ?? "", "utf8")
