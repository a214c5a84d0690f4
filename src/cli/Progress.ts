/**
 * Progress of long operations on stderr (count, rate, ETA), redrawn in place
 * at most ten times a second, and only when stderr is a terminal: piped or
 * redirected output stays clean.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Output from "./Output.js"

/**
 * A progress line being shown (or a silent one).
 *
 * @category models
 */
export interface Progress {
  /**
   * Reports `done` units so far; `fraction` (0..1) is how far along the work
   * is when there is no total to divide by (a position in the log, say).
   */
  readonly update: (done: number, fraction?: number) => Effect.Effect<void>
  /** Clears the line. */
  readonly finish: Effect.Effect<void>
}

/**
 * What to show.
 *
 * @category models
 */
export interface ProgressOptions {
  readonly label: string
  /** What is counted: `events`, `appends`, … */
  readonly unit: string
  /** The number of units in all, when known. */
  readonly total?: number | undefined
  /** Show even when stderr is not a terminal (tests); default: only on a terminal. */
  readonly force?: boolean | undefined
}

const silent: Progress = { update: () => Effect.void, finish: Effect.void }

/**
 * A progress line on stderr, silent unless stderr is a terminal.
 *
 * @category constructors
 */
export const make = (options: ProgressOptions): Progress => {
  const tty = process.stderr.isTTY === true
  if (!tty && options.force !== true) return silent
  const styles = Output.styleFor(process.stderr)
  const started = performance.now()
  // the first line after 250 ms: a rate measured over less says little
  let drawn = started + 150
  let shown = false
  const draw = (done: number, fraction: number | undefined) => {
    const now = performance.now()
    if (now - drawn < 100) return
    drawn = now
    const elapsed = now - started
    const rate = elapsed > 0 ? (done / elapsed) * 1000 : 0
    const part = fraction ?? (options.total !== undefined && options.total > 0 ? done / options.total : undefined)
    const parts = [
      `${options.label}: ${Output.count(done)}${options.total !== undefined ? `/${Output.count(options.total)}` : ""} ${options.unit}`,
      `${Output.count(Math.round(rate))}/s`
    ]
    if (part !== undefined && part > 0) {
      parts.push(`${Math.min(100, Math.floor(part * 100))}%`)
      parts.push(`ETA ${Output.duration((elapsed * (1 - Math.min(1, part))) / part)}`)
    }
    process.stderr.write(`${tty ? "\r\u001b[K" : ""}${styles.dim(parts.join(" · "))}${tty ? "" : "\n"}`)
    shown = true
  }
  return {
    update: (done, fraction) => Effect.sync(() => draw(done, fraction)),
    finish: Effect.sync(() => {
      if (shown && tty) process.stderr.write("\r\u001b[K")
    })
  }
}
