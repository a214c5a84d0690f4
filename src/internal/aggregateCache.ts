import type * as Option from "effect/Option"

/** What a command handler keeps of an aggregate: its state, the version it is at, its last snapshot. */
export interface CachedAggregate {
  readonly state: unknown
  readonly version: number
  readonly snapshot: Option.Option<{ readonly version: number; readonly takenAt: Date }>
}

interface Slot {
  readonly aggregate: CachedAggregate
  readonly bytes: number
}

/** How a cache fared: lookups that hit and missed, entries evicted, what it holds now. */
export interface CacheStats {
  readonly hits: number
  readonly misses: number
  readonly evictions: number
  readonly entries: number
  readonly bytes: number
}

/** About what a state takes in memory: twice its JSON length (UTF-16), or undefined when it has no JSON. */
export const estimateBytes = (state: unknown): number | undefined => {
  try {
    const json = JSON.stringify(state)
    return json === undefined ? undefined : json.length * 2
  } catch {
    return undefined
  }
}

/**
 * A least-recently-used map bounded by entries and, when `maxBytes` is given,
 * by the estimated bytes of the states it holds. A `Map` keeps insertion
 * order, so re-inserting on use keeps the least recently used first.
 */
export class LruAggregates {
  private readonly slots = new Map<string, Slot>()
  private held = 0
  private hits = 0
  private misses = 0
  private evictions = 0

  constructor(readonly maxEntries: number, readonly maxBytes: number | undefined) {}

  get(key: string): CachedAggregate | undefined {
    const slot = this.slots.get(key)
    if (slot === undefined) {
      this.misses++
      return undefined
    }
    this.hits++
    this.slots.delete(key)
    this.slots.set(key, slot)
    return slot.aggregate
  }

  /** Keeps `aggregate` unless a later version of it is already held; one too big for the cache is dropped. */
  set(key: string, aggregate: CachedAggregate): void {
    const current = this.slots.get(key)
    if (current !== undefined && current.aggregate.version > aggregate.version) return
    const bytes = this.maxBytes === undefined ? 0 : estimateBytes(aggregate.state)
    this.remove(key)
    if (bytes === undefined || (this.maxBytes !== undefined && bytes > this.maxBytes)) return
    this.slots.set(key, { aggregate, bytes })
    this.held += bytes
    this.evict()
  }

  remove(key: string): void {
    const slot = this.slots.get(key)
    if (slot === undefined) return
    this.slots.delete(key)
    this.held -= slot.bytes
  }

  stats(): CacheStats {
    return { hits: this.hits, misses: this.misses, evictions: this.evictions, entries: this.slots.size, bytes: this.held }
  }

  private evict(): void {
    while (this.slots.size > this.maxEntries || (this.maxBytes !== undefined && this.held > this.maxBytes)) {
      const oldest = this.slots.keys().next()
      if (oldest.done === true) return
      this.remove(oldest.value)
      this.evictions++
    }
  }
}

const ids = new WeakMap<object, number>()
let nextId = 0

/** A number naming `value` for as long as it lives: handlers, codecs and stores tell cache keys apart by it. */
export const identityOf = (value: object): number => {
  let id = ids.get(value)
  if (id === undefined) {
    id = ++nextId
    ids.set(value, id)
  }
  return id
}
