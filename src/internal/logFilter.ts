/**
 * A global read's filter as a predicate over an event's stream and type, for
 * the stores that filter in memory.
 */
import type { LogRange } from "../EventStore.js"
import { category, type StreamId } from "../StreamId.js"
import { cachedHash } from "./partition.js"

/**
 * Whether an event of `streamId` and `type` passes `range`'s filter; `undefined`
 * when it keeps all. A partition hashes each stream once, remembered in
 * `hashes` (the store's own, so it outlives the read).
 */
export const keeps = (
  range: LogRange,
  hashes: Map<string, number> = new Map()
): ((streamId: StreamId, type: string) => boolean) | undefined => {
  const categories = range.categories === undefined ? undefined : new Set(range.categories)
  const types = range.types === undefined ? undefined : new Set(range.types)
  const partition = range.partition === undefined || range.partition.of === 1 ? undefined : range.partition
  if (categories === undefined && types === undefined && partition === undefined) return undefined
  const hash = cachedHash(hashes)
  return (streamId, type) =>
    (types === undefined || types.has(type)) && (categories === undefined || categories.has(category(streamId))) &&
    (partition === undefined || hash(streamId) % partition.of === partition.member)
}
