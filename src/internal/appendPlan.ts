import * as Either from "effect/Either"
import type { PendingEvent } from "../Event.js"
import type { AppendResult, PendingAppend } from "../EventStore.js"
import { ConcurrencyConflict, DuplicateEventId, StreamDeleted } from "../EventStore.js"
import * as ExpectedVersion from "../ExpectedVersion.js"
import type { StreamId } from "../StreamId.js"

/** Where a stored event sits. */
export interface Location {
  readonly streamId: StreamId
  readonly streamVersion: number
  readonly globalPosition: bigint
}

/**
 * How an in-process store should treat an append: write it, or report the
 * batch as already stored (an idempotent re-send after a lost reply).
 */
export type AppendPlan =
  | { readonly _tag: "Write" }
  | { readonly _tag: "AlreadyStored"; readonly result: AppendResult }

const write: AppendPlan = { _tag: "Write" }

/**
 * Decides an append against the current state of a store that keeps an index
 * of event ids (the rules `DuplicateEventId` documents):
 *
 * - no id of the batch is stored: write it if the expected version accepts
 *   the stream's version, else `ConcurrencyConflict`;
 * - every id is stored, in order, contiguously, in this stream, right after
 *   a version `v` the expected version accepts: a re-send, which succeeds
 *   again without writing;
 * - any other stored id (a partial re-send, a batch mixing stored and new
 *   ids, an id stored in another stream or elsewhere in this one):
 *   `DuplicateEventId` naming the batch's first stored event and where it is,
 *   whatever the expected version.
 */
export const planAppend = (
  streamId: StreamId,
  events: ReadonlyArray<PendingEvent>,
  expected: ExpectedVersion.ExpectedVersion,
  currentVersion: number,
  locate: (eventId: string) => Location | undefined
): Either.Either<AppendPlan, ConcurrencyConflict | DuplicateEventId> => {
  let firstStored: { readonly eventId: string; readonly found: Location } | undefined
  let resent = true
  let base = 0
  const positions: Array<bigint> = []
  for (let i = 0; i < events.length; i++) {
    const eventId = events[i]!.eventId
    const found = locate(eventId)
    if (found === undefined) {
      resent = false
      continue
    }
    if (firstStored === undefined) firstStored = { eventId, found }
    if (i === 0) base = found.streamVersion - 1
    if (found.streamId !== streamId || found.streamVersion !== base + 1 + i) resent = false
    // Stryker disable next-line ConditionalExpression: equivalent: the positions are used only when every event was re-sent
    if (resent) positions.push(found.globalPosition)
  }
  if (firstStored === undefined) {
    return ExpectedVersion.matches(expected, currentVersion)
      ? Either.right(write)
      : Either.left(new ConcurrencyConflict({ streamId, expected, actual: currentVersion }))
  }
  if (resent && ExpectedVersion.matches(expected, base)) {
    return Either.right({
      _tag: "AlreadyStored",
      result: { streamId, streamVersion: base + events.length, globalPositions: positions }
    })
  }
  return Either.left(
    new DuplicateEventId({
      streamId,
      eventId: firstStored.eventId,
      existingStreamId: firstStored.found.streamId,
      existingVersion: firstStored.found.streamVersion,
      existingPosition: firstStored.found.globalPosition
    })
  )
}

/**
 * How a store should treat an `appendMany` call: write it (at the streams'
 * current versions, in call order), or report it as stored already (a
 * re-send of the whole call).
 */
export type AppendManyPlan =
  | { readonly _tag: "Write"; readonly versions: ReadonlyArray<number> }
  | { readonly _tag: "AlreadyStored"; readonly results: ReadonlyArray<AppendResult> }

/**
 * Decides an `appendMany` call all or nothing: each append as `planAppend`
 * does (a tombstone refusing whatever is not a re-send), the first refusal in
 * call order deciding the call. A re-send of every non-empty append is a
 * re-send of the call; a call mixing stored and new batches fails with the
 * first stored batch's `DuplicateEventId`.
 */
export const planAppendMany = (
  appends: ReadonlyArray<PendingAppend>,
  versionOf: (streamId: StreamId) => number,
  isDeleted: (streamId: StreamId) => boolean,
  locate: (eventId: string) => Location | undefined
): Either.Either<AppendManyPlan, ConcurrencyConflict | DuplicateEventId | StreamDeleted> => {
  const versions: Array<number> = []
  const results: Array<AppendResult> = []
  let firstStored: PendingAppend | undefined
  let writes = false
  for (const { events, expectedVersion, streamId } of appends) {
    const current = versionOf(streamId)
    const planned = planAppend(streamId, events, expectedVersion, current, locate)
    if (Either.isRight(planned) && planned.right._tag === "AlreadyStored") {
      firstStored ??= { events, expectedVersion, streamId }
      results.push(planned.right.result)
      versions.push(current)
      continue
    }
    if (isDeleted(streamId)) return Either.left(new StreamDeleted({ streamId }))
    if (Either.isLeft(planned)) return Either.left(planned.left)
    if (events.length > 0) writes = true
    results.push({ streamId, streamVersion: current, globalPositions: [] })
    versions.push(current)
  }
  if (firstStored === undefined) return Either.right({ _tag: "Write", versions })
  if (!writes) return Either.right({ _tag: "AlreadyStored", results })
  const found = locate(firstStored.events[0]!.eventId)!
  return Either.left(
    new DuplicateEventId({
      streamId: firstStored.streamId,
      eventId: firstStored.events[0]!.eventId,
      existingStreamId: found.streamId,
      existingVersion: found.streamVersion,
      existingPosition: found.globalPosition
    })
  )
}
