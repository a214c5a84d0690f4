/**
 * A global read's filter as a predicate over an event's stream and type, for
 * the stores that filter in memory.
 */
import type { LogRange } from "../EventStore.js"
import { category, type StreamId } from "../StreamId.js"

/** Whether an event of `streamId` and `type` passes `range`'s filter; `undefined` when it keeps all. */
export const keeps = (range: LogRange): ((streamId: StreamId, type: string) => boolean) | undefined => {
  const categories = range.categories === undefined ? undefined : new Set(range.categories)
  const types = range.types === undefined ? undefined : new Set(range.types)
  if (categories === undefined && types === undefined) return undefined
  return (streamId, type) => (types === undefined || types.has(type)) && (categories === undefined || categories.has(category(streamId)))
}
