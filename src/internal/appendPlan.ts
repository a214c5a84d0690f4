import { Either } from "effect"
import type { PendingEvent } from "../Event.js"
import type { AppendResult } from "../EventStore.js"
import { ConcurrencyConflict, DuplicateEventId } from "../EventStore.js"
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
 * of event ids. A batch whose ids are all stored, in order, contiguously, in
 * this stream, right after a version the expected version accepts, was already
 * written: it succeeds again without writing. Any other stored id fails the
 * whole batch.
 */
export const planAppend = (
  streamId: StreamId,
  events: ReadonlyArray<PendingEvent>,
  expected: ExpectedVersion.ExpectedVersion,
  currentVersion: number,
  locate: (eventId: string) => Location | undefined
): Either.Either<AppendPlan, ConcurrencyConflict | DuplicateEventId> => {
  const conflict = () => Either.left(new ConcurrencyConflict({ streamId, expected, actual: currentVersion }))
  const first = events.length > 0 ? locate(events[0]!.eventId) : undefined
  if (first !== undefined && first.streamId === streamId) {
    const positions: Array<bigint> = []
    for (let i = 0; i < events.length; i++) {
      const found = i === 0 ? first : locate(events[i]!.eventId)
      if (found === undefined || found.streamId !== streamId || found.streamVersion !== first.streamVersion + i) {
        return Either.left(duplicate(streamId, events[i]!.eventId, found ?? first))
      }
      positions.push(found.globalPosition)
    }
    return ExpectedVersion.matches(expected, first.streamVersion - 1)
      ? Either.right({
        _tag: "AlreadyStored",
        result: { streamId, streamVersion: first.streamVersion + events.length - 1, globalPositions: positions }
      })
      : conflict()
  }
  for (const event of events) {
    const found = locate(event.eventId)
    if (found !== undefined) return Either.left(duplicate(streamId, event.eventId, found))
  }
  return ExpectedVersion.matches(expected, currentVersion) ? Either.right(write) : conflict()
}

const duplicate = (streamId: StreamId, eventId: string, found: Location) =>
  new DuplicateEventId({
    streamId,
    eventId,
    existingStreamId: found.streamId,
    existingVersion: found.streamVersion
  })
