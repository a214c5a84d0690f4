/**
 * Partitions of the global log by stream: FNV-1a (32 bits) over the UTF-8
 * bytes of a stream id, modulo the number of partitions. The PostgreSQL
 * store computes the same hash in SQL (`<schema>.stream_hash`).
 */

const utf8 = new TextEncoder()

/** FNV-1a, 32 bits, of `streamId`'s UTF-8 bytes: an unsigned integer below 2^32. */
export const streamHash = (streamId: string): number => {
  let hash = 0x811c9dc5
  for (const byte of utf8.encode(streamId)) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0
  return hash
}

/** `streamHash`, remembered per stream id in `cache`: a log's events hash each of their streams once. */
export const cachedHash = (cache: Map<string, number>) => (streamId: string): number => {
  let hash = cache.get(streamId)
  if (hash === undefined) {
    hash = streamHash(streamId)
    cache.set(streamId, hash)
  }
  return hash
}
