/**
 * Upcasters evolve stored events to the shape today's code expects, on read:
 * one per `(type, fromSchemaVersion)`, chained (v1 → v2 → v3), free to rename
 * an event or split it into several. Stored events are never rewritten.
 *
 * @example
 * const upcasters = [
 *   Upcaster.make("MoneyDeposited", 1, (e) => ({ ...e, schemaVersion: 2, data: { ...e.data, currency: "EUR" } })),
 *   Upcaster.make("AccountRenamed", 1, (e) => ({ type: "OwnerChanged", schemaVersion: 2, data: e.data }))
 * ]
 * const codec = EventCodec.make(AccountEvent, { schemaVersions: { MoneyDeposited: 2 }, upcasters })
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { EventPayload } from "./Event.js"

/**
 * An event as stored: its type, schema version and JSON payload.
 *
 * @since 0.1.0
 * @category models
 */
export interface RawEvent {
  readonly type: string
  readonly schemaVersion: number
  readonly data: any
}

/**
 * Turns an event of `type` at `fromVersion` into one or more events of a
 * later version (or of another type).
 *
 * @since 0.1.0
 * @category models
 */
export interface Upcaster {
  readonly type: string
  readonly fromVersion: number
  readonly upcast: (event: RawEvent) => RawEvent | ReadonlyArray<RawEvent>
}

/**
 * An upcaster threw, or gave back something that is not an event of a later
 * version (which would loop forever).
 *
 * @since 0.1.0
 * @category errors
 */
export class UpcastError extends Schema.TaggedError<UpcastError>()("UpcastError", {
  streamId: Schema.String,
  streamVersion: Schema.Number,
  type: Schema.String,
  step: Schema.String,
  issue: Schema.String
}) {
  override get message() {
    return `Upcasting ${this.type} at ${this.streamId}@${this.streamVersion} failed at step ${this.step}: ${this.issue}`
  }
}

/**
 * Builds an upcaster.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  type: string,
  fromVersion: number,
  upcast: (event: RawEvent) => RawEvent | ReadonlyArray<RawEvent>
): Upcaster => ({ type, fromVersion, upcast })

/**
 * A set of upcasters, applied as chains.
 *
 * @since 0.1.0
 * @category models
 */
export interface Upcasters {
  /** Whether any upcaster applies to events of this type and version. */
  readonly appliesTo: (type: string, schemaVersion: number) => boolean
  /** The events a stored event becomes once every applicable upcaster has run. */
  readonly apply: (event: EventPayload) => Either.Either<ReadonlyArray<RawEvent>, UpcastError>
}

const maxSteps = 64

const isRawEvent = (u: unknown): u is RawEvent =>
  typeof u === "object" && u !== null && typeof (u as RawEvent).type === "string" && (u as RawEvent).type.length > 0 &&
  Number.isSafeInteger((u as RawEvent).schemaVersion)

/**
 * Collects upcasters; two for the same `(type, fromVersion)` are a mistake.
 *
 * @since 0.1.0
 * @category constructors
 */
export const registry = (upcasters: ReadonlyArray<Upcaster>): Upcasters => {
  const byKey = new Map<string, Upcaster>()
  for (const upcaster of upcasters) {
    const key = `${upcaster.type}@${upcaster.fromVersion}`
    if (byKey.has(key)) throw new TypeError(`Upcaster.registry: two upcasters for ${upcaster.type} v${upcaster.fromVersion}`)
    byKey.set(key, upcaster)
  }
  const find = (type: string, version: number) => byKey.get(`${type}@${version}`)

  return {
    appliesTo: (type, schemaVersion) => find(type, schemaVersion) !== undefined,
    apply: (event) => {
      const fail = (step: string, issue: string) =>
        Either.left(
          new UpcastError({ streamId: event.streamId, streamVersion: event.streamVersion, type: event.type, step, issue })
        )
      const out: Array<RawEvent> = []
      const pending: Array<RawEvent> = [{ type: event.type, schemaVersion: event.schemaVersion, data: event.data }]
      let steps = 0
      while (pending.length > 0) {
        const current = pending.shift()!
        const upcaster = find(current.type, current.schemaVersion)
        if (upcaster === undefined) {
          out.push(current)
          continue
        }
        const step = `${current.type} v${current.schemaVersion}`
        if (++steps > maxSteps) return fail(step, `more than ${maxSteps} steps: do two upcasters undo each other?`)
        let result: RawEvent | ReadonlyArray<RawEvent>
        try {
          result = upcaster.upcast(current)
        } catch (error) {
          return fail(step, error instanceof Error ? error.message : String(error))
        }
        const results = Array.isArray(result) ? result : [result as RawEvent]
        for (const next of results) {
          if (!isRawEvent(next)) return fail(step, "the upcaster did not return events ({ type, schemaVersion, data })")
          if (next.type === current.type && next.schemaVersion <= current.schemaVersion) {
            return fail(step, `it returned ${next.type} v${next.schemaVersion}: an upcaster must raise the version or change the type`)
          }
        }
        pending.unshift(...results)
      }
      return Either.right(out)
    }
  }
}
