/**
 * `chronicle validate`: checks every event of the store and reports what it
 * finds by stream and version. Errors: an envelope field missing or
 * malformed, stream versions out of sequence, an event id stored twice, a
 * payload over `--max-bytes`, and, with `--decider`, an event its codec does
 * not know or cannot decode. Warnings: event types not named in the past
 * tense (once per type). Exits non-zero on findings (`--fail-on error` lets
 * warnings pass).
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { StoredEvent } from "../../Event.js"
import * as CliError from "../CliError.js"
import * as CommonOptions from "../CommonOptions.js"
import * as Modules from "../Modules.js"
import * as Naming from "../Naming.js"
import * as Output from "../Output.js"
import * as Progress from "../Progress.js"
import * as Stores from "../Stores.js"

const deciders = Options.text("decider").pipe(
  Options.withAlias("d"),
  Options.repeated,
  Options.withDescription("A module whose event codecs every event must decode with: path[#Export]. Repeat for several modules. The module is imported: its code runs with your rights, so never point it at a file you would not run.")
)
const codec = Options.text("codec").pipe(Options.optional, Options.withDescription("Use only this codec export of the --decider module."))
const maxBytes = Options.integer("max-bytes").pipe(
  Options.withDefault(1024 * 1024),
  Options.withDescription("The payload size limit in bytes (data + metadata as JSON); default 1 MiB, the stores' own limit.")
)
const failOn = Options.choice("fail-on", ["warning", "error"]).pipe(
  Options.withDefault("warning" as const),
  Options.withDescription("Exit non-zero on any finding (warning, the default) or on errors only (error).")
)
const maxFindings = Options.integer("max-findings").pipe(Options.withDefault(1000), Options.withDescription("Report at most this many findings."))

/**
 * One thing `validate` found.
 *
 * @category models
 */
export interface Finding {
  readonly severity: "error" | "warning"
  readonly check: "envelope" | "sequence" | "duplicate-id" | "size" | "decode" | "naming"
  readonly streamId: string
  readonly streamVersion: number
  readonly globalPosition: bigint
  readonly type: string
  readonly message: string
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * The envelope problems of one event.
 *
 * @category checks
 */
export const envelopeProblems = (event: StoredEvent): ReadonlyArray<string> => {
  const problems: Array<string> = []
  if (typeof event.eventId !== "string" || !uuid.test(event.eventId)) problems.push(`eventId ${JSON.stringify(event.eventId)} is not a UUID`)
  if (typeof event.type !== "string" || event.type.length === 0) problems.push("type is missing")
  if (typeof event.streamId !== "string" || event.streamId.length === 0) problems.push("streamId is missing")
  if (!Number.isSafeInteger(event.streamVersion) || event.streamVersion < 1) problems.push(`streamVersion ${event.streamVersion} is not a positive integer`)
  if (typeof event.globalPosition !== "bigint" || event.globalPosition < 1n) problems.push(`globalPosition ${String(event.globalPosition)} is not positive`)
  if (!(event.recordedAt instanceof Date) || Number.isNaN(event.recordedAt.getTime())) problems.push("recordedAt is not a valid time")
  if (!Number.isSafeInteger(event.schemaVersion) || event.schemaVersion < 1) problems.push(`schemaVersion ${event.schemaVersion} is not a positive integer`)
  if (event.data === undefined) problems.push("data is missing")
  if (typeof event.metadata !== "object" || event.metadata === null || Array.isArray(event.metadata)) problems.push("metadata is not an object")
  else {
    for (const key of ["correlationId", "causationId"] as const) {
      const value = event.metadata[key]
      if (value !== undefined && typeof value !== "string") problems.push(`metadata.${key} is not a string`)
    }
  }
  if (!Array.isArray(event.tags) || event.tags.some((tag) => typeof tag !== "string" || tag.length === 0)) problems.push("tags are not non-empty strings")
  return problems
}

/**
 * The `validate` command.
 *
 * @category commands
 */
export const command = Command.make(
  "validate",
  { store: CommonOptions.store, json: CommonOptions.json, deciders, codec, maxBytes, failOn, maxFindings },
  (options) =>
    Effect.gen(function*() {
      const codecName = Option.getOrUndefined(options.codec)
      if (codecName !== undefined && options.deciders.length === 0) return yield* CliError.usage("--codec needs --decider <module>")
      const codecs: Array<Modules.NamedCodec> = []
      for (const reference of options.deciders) {
        const found = yield* Modules.load(reference, { codec: codecName, needDecider: false })
        codecs.push(...found.codecs)
      }
      const knownBy = new Map<string, Modules.NamedCodec>()
      for (const named of codecs) for (const type of named.codec.types) if (!knownBy.has(type)) knownBy.set(type, named)

      yield* Stores.withStore(options.store, "read", (store) =>
        Effect.gen(function*() {
          const head = yield* store.events.headPosition
          const findings: Array<Finding> = []
          let total = 0
          const counts = { error: 0, warning: 0 }
          const report = (event: StoredEvent, severity: Finding["severity"], check: Finding["check"], message: string) => {
            counts[severity]++
            if (findings.length < options.maxFindings) {
              findings.push({
                severity,
                check,
                streamId: event.streamId,
                streamVersion: event.streamVersion,
                globalPosition: event.globalPosition,
                type: event.type,
                message
              })
            }
          }
          const versions = new Map<string, number>()
          const ids = new Map<string, string>()
          const namingChecked = new Map<string, { event: StoredEvent; count: number }>()
          let events = 0
          const progress = Progress.make({ label: "validating", unit: "events" })
          yield* Stream.runForEachChunk(store.events.readAll(), (chunk) =>
            Effect.suspend(() => {
              let last: StoredEvent | undefined
              for (const event of chunk) {
                last = event
                events++
                for (const problem of envelopeProblems(event)) report(event, "error", "envelope", problem)
                const previous = versions.get(event.streamId) ?? 0
                if (event.streamVersion !== previous + 1) {
                  report(event, "error", "sequence", `version ${event.streamVersion} follows version ${previous} of the stream`)
                }
                versions.set(event.streamId, Math.max(previous, event.streamVersion))
                const seen = ids.get(event.eventId)
                if (seen !== undefined) report(event, "error", "duplicate-id", `event id ${event.eventId} is also ${seen}`)
                else ids.set(event.eventId, `${event.streamId}@${event.streamVersion}`)
                const size = Output.payloadBytes(event)
                if (size > options.maxBytes) report(event, "error", "size", `payload is ${Output.count(size)} bytes, over ${Output.count(options.maxBytes)}`)
                if (codecs.length > 0) {
                  const named = knownBy.get(event.type)
                  if (named === undefined) report(event, "error", "decode", `no codec knows the type ${event.type}`)
                  else {
                    const decoded = named.codec.decodeEvents(event)
                    if (Either.isLeft(decoded)) report(event, "error", "decode", `${named.name}: ${decoded.left.message}`)
                  }
                }
                const naming = namingChecked.get(event.type)
                if (naming === undefined) namingChecked.set(event.type, { event, count: 1 })
                else naming.count++
              }
              total = events
              return last === undefined || head === 0n ? Effect.void : progress.update(events, Number(last.globalPosition) / Number(head))
            })).pipe(Effect.ensuring(progress.finish))
          for (const [type, { count, event }] of namingChecked) {
            if (!Naming.isPastTense(type)) {
              report(event, "warning", "naming", `event type ${type} is not in the past tense (${count} events; first here)`)
            }
          }
          findings.sort((a, b) =>
            a.streamId < b.streamId ? -1 : a.streamId > b.streamId ? 1 : a.streamVersion - b.streamVersion || (a.check < b.check ? -1 : 1)
          )
          const failed = counts.error > 0 || (options.failOn === "warning" && counts.warning > 0)
          if (options.json) {
            yield* Output.line(Output.json({
              store: store.label,
              events: total,
              streams: versions.size,
              errors: counts.error,
              warnings: counts.warning,
              findings
            }, 2))
          } else {
            const styles = Output.style()
            if (findings.length > 0) {
              yield* Output.line(Output.table(findings, [
                { header: "STREAM", cell: (f) => f.streamId, style: styles.cyan },
                { header: "VERSION", cell: (f) => String(f.streamVersion), align: "right" },
                { header: "SEVERITY", cell: (f) => f.severity, style: (severity) => (severity === "error" ? styles.red(severity) : styles.yellow(severity)) },
                { header: "CHECK", cell: (f) => f.check },
                { header: "MESSAGE", cell: (f) => f.message }
              ], styles))
              const shown = findings.length
              const all = counts.error + counts.warning
              if (shown < all) yield* Output.line(styles.dim(`… and ${all - shown} more (--max-findings)`))
            }
            const summary = `${Output.count(total)} events in ${Output.count(versions.size)} streams: ${counts.error} errors, ${counts.warning} warnings`
            yield* Output.line(failed ? styles.red(summary) : counts.warning > 0 ? styles.yellow(summary) : styles.green(summary))
          }
          if (failed) yield* CliError.exitCode(1)
        }))
    })
).pipe(Command.withDescription("Check every event: envelope, version sequence, duplicate ids, payload size, decoding (--decider), past-tense names."))
