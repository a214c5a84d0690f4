/**
 * Writes events read elsewhere (an export file, another store) into a store
 * as they were: same event ids, stream ids, versions, types, payloads,
 * metadata and tags, in the same order. Each run of consecutive events of one
 * stream is one append at the exact version before it, so versions match the
 * source or the append fails. Runs already in the target are sent again and
 * recognised by their event ids (the store's idempotent re-send), which checks
 * them without writing: importing twice, or resuming a copy, is safe.
 *
 * The target gives the events new global positions and recording times: a
 * store assigns both, and its API takes neither.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type { NewEvent, StoredEvent } from "../Event.js"
import type * as EventStore from "../EventStore.js"
import * as ExpectedVersion from "../ExpectedVersion.js"
import type { StreamId } from "../StreamId.js"
import * as CliError from "./CliError.js"

/**
 * What a transfer did so far.
 *
 * @category models
 */
export interface Totals {
  /** Events written to the target. */
  appended: number
  /** Events the target already held (recognised by id, not written again). */
  present: number
  /** Appends (and re-sends) made. */
  batches: number
}

/**
 * An appender into one target store.
 *
 * @category models
 */
export interface Appender {
  /** Writes events given in source order (a chunk of them at a time). */
  readonly write: (events: ReadonlyArray<StoredEvent>) => Effect.Effect<void, CliError.CliError>
  /** The version of each stream written to, as of the last write. */
  readonly versions: ReadonlyMap<StreamId, number>
  readonly totals: Totals
}

const toNew = (event: StoredEvent): NewEvent => ({
  eventId: event.eventId,
  type: event.type,
  data: event.data,
  metadata: event.metadata,
  schemaVersion: event.schemaVersion,
  tags: event.tags
})

/** Splits events into runs of consecutive versions of one stream. */
const runsOf = (events: ReadonlyArray<StoredEvent>): Array<Array<StoredEvent>> => {
  const runs: Array<Array<StoredEvent>> = []
  let current: Array<StoredEvent> | undefined
  for (const event of events) {
    const last = current?.[current.length - 1]
    if (current !== undefined && last !== undefined && last.streamId === event.streamId && last.streamVersion + 1 === event.streamVersion) {
      current.push(event)
    } else {
      current = [event]
      runs.push(current)
    }
  }
  return runs
}

/**
 * An appender into `target`.
 *
 * @category constructors
 */
export const make = (target: EventStore.EventStoreService): Appender => {
  const versions = new Map<StreamId, number>()
  const totals: Totals = { appended: 0, present: 0, batches: 0 }

  const versionOf = (streamId: StreamId) =>
    versions.has(streamId)
      ? Effect.succeed(versions.get(streamId)!)
      : target.streamVersion(streamId).pipe(
        Effect.tap((version) => Effect.sync(() => versions.set(streamId, version))),
        Effect.mapError((error) => CliError.fail(`cannot read the version of ${streamId} in the target: ${error.message}`))
      )

  const send = (run: ReadonlyArray<StoredEvent>, already: boolean) => {
    const first = run[0]!
    const streamId = first.streamId
    const last = run[run.length - 1]!
    return target.append(streamId, run.map(toNew), { expectedVersion: ExpectedVersion.exact(first.streamVersion - 1) }).pipe(
      Effect.mapError((error) => {
        const where = `${streamId}@${first.streamVersion}${run.length > 1 ? `..${last.streamVersion}` : ""}`
        switch (error._tag) {
          case "ConcurrencyConflict":
            return CliError.fail(
              already
                ? `the target's ${streamId} holds other events at versions ${first.streamVersion}..${last.streamVersion} than the source`
                : `cannot write ${where}: the target's ${streamId} is at version ${error.actual}, expected ${first.streamVersion - 1}`
            )
          case "DuplicateEventId":
            return CliError.fail(
              `cannot write ${where}: event ${error.eventId} is already stored as ${error.existingStreamId}@${error.existingVersion}`
            )
          default:
            return CliError.fail(`cannot write ${where}: ${error.message}`)
        }
      }),
      Effect.tap((result) =>
        Effect.sync(() => {
          totals.batches++
          if (already) totals.present += run.length
          else totals.appended += run.length
          versions.set(streamId, Math.max(versions.get(streamId) ?? 0, result.streamVersion))
        })
      )
    )
  }

  const writeRun = (run: ReadonlyArray<StoredEvent>) =>
    Effect.gen(function*() {
      const version = yield* versionOf(run[0]!.streamId)
      const present = run.filter((event) => event.streamVersion <= version)
      const fresh = run.filter((event) => event.streamVersion > version)
      if (present.length > 0) yield* send(present, true)
      if (fresh.length > 0) yield* send(fresh, false)
    })

  return {
    write: (events) => Effect.forEach(runsOf(events), writeRun, { discard: true }),
    versions,
    totals
  }
}
