/**
 * The line format of the filesystem store's log. One line per event, valid
 * JSON (so `jq` reads the log), with a CRC32 of the event's bytes:
 *
 *   {"crc":"1a2b3c4d","event":{"globalPosition":1,"streamId":"account-1",…,"batch":[0,2],"metadata":{…},"data":{…}}}
 *
 * `batch` is `[index, size]` of the event within its append (an `appendMany`
 * call is one batch across its streams), so recovery can tell a whole append
 * from a torn one. `tags` follows `batch` when the event
 * has any. The first line of an append carries `at`, the byte offset at which
 * its writer expected it to start (the end of the log as the writer saw it):
 * an append that starts anywhere else is void (see `scan`). The writer always
 * puts the envelope fields first, in this order, so the index can be rebuilt
 * without parsing payloads.
 *
 * A torn tail is never cut off (a stalled writer could cut off a newer
 * writer's appends); it is sealed instead by a line of its own:
 *
 *   {"crc":"1a2b3c4d","seal":{"from":1234,"at":1300}}
 *
 * which voids the bytes from `from` up to itself, and is void itself unless it
 * starts at `at`.
 *
 * A deleted stream gets a tombstone line (not an event: it takes no global
 * position), fenced like an append by its `at`:
 *
 *   {"crc":"1a2b3c4d","tombstone":{"streamId":"account-1","version":3,"deletedAt":"…","erase":true,"position":41,"at":5120,"erased":[[0,310],[940,1250]]}}
 *
 * `position` is the highest global position in the log when it was written
 * (erased events' positions are never handed out again). An erasing tombstone
 * lists the byte ranges of the stream's lines; once it is durable, those lines
 * are overwritten in place, same length, newlines where they were, with a
 * filler line:
 *
 *   {"crc":"a3a6bf43","erased":{}}                                   (spaces up to the old newline)
 *
 * A line inside a range of a valid erasing tombstone is erased whatever it
 * holds (a filler, the old line, or a mix of both where an overwrite was cut
 * short); a filler line anywhere is void.
 */
import { firstAtLeast } from "../sorted.js"
import { eventIn, knownPayloadIn, payloadIn } from "./lineDecoding.js"
import { crc32 } from "node:zlib"
import type { EventPayload, PendingEvent, StoredEvent } from "../../Event.js"
import type { EventId } from "../../EventId.js"
import type { StreamId } from "../../StreamId.js"

const prefix = "{\"crc\":\""
const middle = "\",\"event\":"
const eventStart = prefix.length + 8 + middle.length

/** What a log line holds, as JSON. */
interface LineEvent {
  readonly globalPosition: number
  readonly streamId: string
  readonly streamVersion: number
  readonly eventId: string
  readonly type: string
  readonly schemaVersion: number
  readonly recordedAt: string
  readonly batch: readonly [number, number]
  readonly tags?: ReadonlyArray<string>
  readonly at?: number
  readonly data: unknown
  readonly metadata: StoredEvent["metadata"]
}

/** A decoded line: the event and where its append starts and ends. */
export interface Line {
  readonly event: StoredEvent
  readonly batchIndex: number
  readonly batchSize: number
  readonly at?: number | undefined
}

/** What the index needs of a line: who it belongs to, what queries match on, and where its append ends. */
export interface IndexEntry {
  readonly globalPosition: number
  readonly streamId: StreamId
  readonly eventId: string
  readonly type: string
  readonly tags: ReadonlyArray<string>
  readonly batchIndex: number
  readonly batchSize: number
  /** On an append's first line: the offset its writer expected it at. Absent on lines older than the field. */
  readonly at?: number | undefined
}

const noTags: ReadonlyArray<string> = Object.freeze([])

/** Renders one event as a log line, newline included. */
export const encodeLine = (
  event: PendingEvent,
  serialized: { readonly data: string; readonly metadata: string },
  streamId: StreamId,
  streamVersion: number,
  globalPosition: number,
  recordedAt: string,
  batchIndex: number,
  batchSize: number,
  at?: number
): string => {
  const json = `{"globalPosition":${globalPosition},"streamId":${JSON.stringify(streamId)},"streamVersion":${streamVersion},"eventId":"${event.eventId}","type":${
    JSON.stringify(event.type)
  },"schemaVersion":${event.schemaVersion},"recordedAt":"${recordedAt}","batch":[${batchIndex},${batchSize}]${
    event.tags.length === 0 ? "" : `,"tags":${JSON.stringify(event.tags)}`
  }${at === undefined ? "" : `,"at":${at}`},"metadata":${serialized.metadata},"data":${serialized.data}}`
  return `${prefix}${crc32(json).toString(16).padStart(8, "0")}${middle}${json}}\n`
}

const sealPrefix = "{\"crc\":\""
const sealMiddle = "\",\"seal\":"

/** A seal: the bytes from `from` up to the seal are void; the seal counts only if it starts at `at`. */
export interface Seal {
  readonly from: number
  readonly at: number
}

/** Renders a seal as a log line, newline included. */
export const encodeSeal = (seal: Seal): string => {
  const json = `{"from":${seal.from},"at":${seal.at}}`
  return `${sealPrefix}${crc32(json).toString(16).padStart(8, "0")}${sealMiddle}${json}}\n`
}

/** The seal a line (without its newline) holds, if it is an intact seal line. */
export const decodeSeal = (text: string): Seal | undefined => {
  const start = sealPrefix.length + 8 + sealMiddle.length
  if (!text.startsWith(sealPrefix) || text.slice(sealPrefix.length + 8, start) !== sealMiddle || !text.endsWith("}")) {
    return undefined
  }
  const json = text.slice(start, -1)
  if (Number.parseInt(text.slice(sealPrefix.length, sealPrefix.length + 8), 16) !== crc32(json)) return undefined
  const parsed = JSON.parse(json) as Partial<Seal>
  return typeof parsed.from === "number" && typeof parsed.at === "number" ? { from: parsed.from, at: parsed.at } : undefined
}

/** A tombstone of `tombstones.jsonl` (stores written before tombstones went into the log): the stream was deleted at this version. */
export interface Tombstone {
  readonly streamId: StreamId
  readonly version: number
  readonly at: string
}

const tombstonePrefix = "{\"crc\":\""
const tombstoneMiddle = "\",\"tombstone\":"

/** Renders a tombstone as a line of `tombstones.jsonl`, newline included (the store no longer writes that file; tests do). */
export const encodeTombstone = (tombstone: Tombstone): string => {
  const json = `{"streamId":${JSON.stringify(tombstone.streamId)},"version":${tombstone.version},"at":"${tombstone.at}"}`
  return `${tombstonePrefix}${crc32(json).toString(16).padStart(8, "0")}${tombstoneMiddle}${json}}\n`
}

/** Decodes the complete lines of `tombstones.jsonl`; a damaged line is reported by its index. */
export const decodeTombstones = (text: string): ReadonlyArray<Tombstone> | { readonly damagedLine: number } => {
  const out: Array<Tombstone> = []
  const lines = text.split("\n")
  for (let i = 0; i < lines.length - 1; i++) {
    const line = lines[i]!
    const start = tombstonePrefix.length + 8 + tombstoneMiddle.length
    const json = line.slice(start, -1)
    const intact = line.startsWith(tombstonePrefix) && line.slice(tombstonePrefix.length + 8, start) === tombstoneMiddle &&
      line.endsWith("}") && Number.parseInt(line.slice(tombstonePrefix.length, tombstonePrefix.length + 8), 16) === crc32(json)
    if (!intact) return { damagedLine: i + 1 }
    out.push(JSON.parse(json) as Tombstone)
  }
  return out
}

/**
 * A tombstone line of the log: the stream was deleted at `version`. Void
 * unless it starts at `at`. With `erase`, `erased` lists the byte ranges
 * (`[from, to)`, whole lines) of the stream's lines, which are overwritten.
 */
export interface LogTombstone {
  readonly streamId: StreamId
  readonly version: number
  readonly deletedAt: string
  readonly erase: boolean
  /** The highest global position in the log when the tombstone was written. */
  readonly position: number
  readonly at: number
  readonly erased: ReadonlyArray<readonly [number, number]>
}

const logTombstoneStart = tombstonePrefix.length + 8 + tombstoneMiddle.length
const logTombstoneMarker = Buffer.from(tombstoneMiddle + "{")

/** Renders a tombstone as a log line, newline included. */
export const encodeLogTombstone = (tombstone: LogTombstone): string => {
  const json = `{"streamId":${JSON.stringify(tombstone.streamId)},"version":${tombstone.version},"deletedAt":"${tombstone.deletedAt}","erase":${tombstone.erase},"position":${tombstone.position},"at":${tombstone.at},"erased":${
    JSON.stringify(tombstone.erased)
  }}`
  return `${tombstonePrefix}${crc32(json).toString(16).padStart(8, "0")}${tombstoneMiddle}${json}}\n`
}

/** The tombstone a log line (without its newline) holds, if it is an intact tombstone line. */
export const decodeLogTombstone = (text: string): LogTombstone | undefined => {
  if (
    !text.startsWith(tombstonePrefix) || text.slice(tombstonePrefix.length + 8, logTombstoneStart) !== tombstoneMiddle ||
    !text.endsWith("}")
  ) return undefined
  const json = text.slice(logTombstoneStart, -1)
  if (Number.parseInt(text.slice(tombstonePrefix.length, tombstonePrefix.length + 8), 16) !== crc32(json)) return undefined
  let parsed: Partial<LogTombstone>
  try {
    parsed = JSON.parse(json) as Partial<LogTombstone>
  } catch {
    return undefined
  }
  return typeof parsed.streamId === "string" && typeof parsed.version === "number" && typeof parsed.at === "number" &&
      typeof parsed.position === "number" && typeof parsed.erase === "boolean" && Array.isArray(parsed.erased)
    ? parsed as LogTombstone
    : undefined
}

const fillerJson = "{}"
const filler = `${prefix}${crc32(fillerJson).toString(16).padStart(8, "0")}","erased":${fillerJson}}`

/**
 * The bytes that erase the lines in `bytes` (whole lines): each line becomes
 * a filler line of the same length, its newline where it was.
 */
export const eraseLines = (bytes: Buffer): Buffer => {
  const out = Buffer.alloc(bytes.length, 0x20)
  for (let start = 0; start < bytes.length;) {
    let end = bytes.indexOf(newline, start)
    if (end === -1) end = bytes.length
    if (end - start >= filler.length) out.write(filler, start, "latin1")
    if (end < bytes.length) out[end] = newline
    start = end + 1
  }
  return out
}

/** Whether a line (without its newline) is a filler line: an erased line, overwritten whole. */
export const isFiller = (text: string): boolean =>
  text.startsWith(filler) && (text.length === filler.length || text.slice(filler.length).trim() === "")

/**
 * A set of byte ranges `[from, to)`, kept sorted and merged: adding one is a
 * binary search and one splice, whatever the order ranges come in.
 */
export class RangeSet {
  private starts: Array<number> = []
  private ends: Array<number> = []

  /** Adds `[from, to)`, merging it with the ranges it overlaps or touches. */
  add(from: number, to: number): void {
    if (to <= from) return
    // the first range ending at or after `from`, and the first starting after `to`: those between merge with it
    const first = firstAtLeast(this.ends, from)
    const last = firstAtLeast(this.starts, to + 1)
    if (first < last) {
      from = Math.min(from, this.starts[first]!)
      to = Math.max(to, this.ends[last - 1]!)
    }
    this.starts.splice(first, last - first, from)
    this.ends.splice(first, last - first, to)
  }

  /** Whether the byte at `offset` is in a range. */
  covers(offset: number): boolean {
    const next = firstAtLeast(this.starts, offset + 1)
    return next > 0 && offset < this.ends[next - 1]!
  }

  /** The ranges, ascending and disjoint. */
  toArray(): ReadonlyArray<readonly [number, number]> {
    return this.starts.map((from, i) => [from, this.ends[i]!] as const)
  }

  /** Forgets every range. */
  clear(): void {
    this.starts = []
    this.ends = []
  }
}

/** `ranges` sorted and merged (overlapping or touching ones joined). */
export const mergeRanges = (ranges: ReadonlyArray<readonly [number, number]>): ReadonlyArray<readonly [number, number]> => {
  const set = new RangeSet()
  for (const [from, to] of ranges) set.add(from, to)
  return set.toArray()
}

/**
 * The byte ranges of the log erased by valid erasing tombstones: what a
 * scan must treat as erased whatever it finds there. Each stream's own
 * ranges are kept too (to finish an erasure). Learning a tombstone twice
 * (scans of overlapping windows) changes nothing.
 */
export class Erasures {
  private readonly all = new RangeSet()
  private readonly streams = new Map<StreamId, RangeSet>()

  /** Records a valid erasing tombstone's ranges. */
  add(streamId: StreamId, ranges: ReadonlyArray<readonly [number, number]>): void {
    let own = this.streams.get(streamId)
    if (own === undefined) this.streams.set(streamId, own = new RangeSet())
    for (const [from, to] of ranges) {
      own.add(from, to)
      this.all.add(from, to)
    }
  }

  /** Whether the byte at `offset` is erased. */
  covers(offset: number): boolean {
    return this.all.covers(offset)
  }

  /** The ranges erased for `streamId` (ascending, disjoint), if any. */
  of(streamId: StreamId): ReadonlyArray<readonly [number, number]> | undefined {
    return this.streams.get(streamId)?.toArray()
  }

  /** Each erased stream's ranges (ascending, disjoint). */
  entries(): Array<readonly [StreamId, ReadonlyArray<readonly [number, number]>]> {
    return [...this.streams].map(([streamId, ranges]) => [streamId, ranges.toArray()] as const)
  }

  /** Whether some tombstone erased `streamId`. */
  has(streamId: StreamId): boolean {
    return this.streams.has(streamId)
  }

  /** Forgets every range (the log was replaced by another file). */
  clear(): void {
    this.all.clear()
    this.streams.clear()
  }
}

/**
 * Finds the valid erasing tombstones among the lines of `bytes` (which start
 * at file offset `base`, on a line start) and records their ranges, before
 * a scan meets the lines they erase.
 */
const learnErasures = (bytes: Buffer, base: number, erasures: Erasures) => {
  for (let hit = bytes.indexOf(logTombstoneMarker); hit !== -1; hit = bytes.indexOf(logTombstoneMarker, hit + 1)) {
    const start = hit - tombstonePrefix.length - 8
    if (start < 0 || (start > 0 && bytes[start - 1] !== newline)) continue
    const end = bytes.indexOf(newline, hit)
    if (end === -1) break
    const tombstone = decodeLogTombstone(bytes.toString("utf8", start, end))
    if (tombstone !== undefined && tombstone.erase && tombstone.at === base + start) erasures.add(tombstone.streamId, tombstone.erased)
  }
}

/** Why a line could not be read. */
export type LineProblem = "checksum" | "shape"

/** The end (exclusive) of the JSON string starting at `start` (a quote). */
const stringEnd = (json: string, start: number): number => {
  for (let i = start + 1; i < json.length; i++) {
    const c = json.charCodeAt(i)
    if (c === 0x5c) i++
    else if (c === 0x22) return i + 1
  }
  return -1
}

/** The end (exclusive) of the JSON array of strings starting at `start` (a bracket), or -1. */
const stringArrayEnd = (json: string, start: number): number => {
  let i = start + 1
  while (i < json.length) {
    const c = json.charCodeAt(i)
    if (c === 0x5d) return i + 1
    if (c === 0x22) {
      i = stringEnd(json, i)
      if (i === -1) return -1
    } else i++
  }
  return -1
}

const readString = (json: string, start: number, end: number): string => {
  const raw = json.slice(start + 1, end - 1)
  // (" " + raw).slice(1) copies: a plain slice would keep the whole line alive
  return raw.includes("\\") ? (JSON.parse(json.slice(start, end)) as string) : (" " + raw).slice(1)
}

/**
 * Reads the index fields of a line without parsing its payload: the writer
 * puts them first, in a fixed order. Falls back to a full parse for a line
 * laid out otherwise.
 */
export const indexLine = (text: string): IndexEntry | LineProblem => {
  const bytes = Buffer.from(text)
  return indexLineAt(bytes, 0, bytes.length)
}

/** `indexLine` of the line at `start` up to `end` (its newline, excluded) of `bytes`. */
export const indexLineAt = (bytes: Buffer, start: number, end: number): IndexEntry | LineProblem => {
  const json = verifiedAt(bytes, start, end)
  if (json === "shape" || json === "checksum") return json
  const streamKey = json.indexOf(",\"streamId\":")
  const streamStart = streamKey + 12
  const streamStop = streamKey === -1 ? -1 : stringEnd(json, streamStart)
  const idStart = streamStop === -1 ? -1 : json.indexOf(",\"eventId\":\"", streamStop)
  const typeKey = idStart === -1 ? -1 : json.indexOf(",\"type\":", idStart)
  const typeStop = typeKey === -1 ? -1 : stringEnd(json, typeKey + 8)
  const batchKey = typeStop === -1 ? -1 : json.indexOf(",\"batch\":[", typeStop)
  if (streamStop !== -1 && idStart !== -1 && typeStop !== -1 && batchKey !== -1 && batchKey < json.indexOf(",\"data\":")) {
    const comma = json.indexOf(",", batchKey + 10)
    const close = json.indexOf("]", comma)
    const tagsStart = json.startsWith(",\"tags\":[", close + 1) ? close + 9 : -1
    const tagsEnd = tagsStart === -1 ? -1 : stringArrayEnd(json, tagsStart)
    const atStart = json.startsWith(",\"at\":", tagsEnd === -1 ? close + 1 : tagsEnd) ? (tagsEnd === -1 ? close + 1 : tagsEnd) + 6 : -1
    return {
      globalPosition: Number(json.slice(json.indexOf(":") + 1, streamKey)),
      streamId: readString(json, streamStart, streamStop) as StreamId,
      // a fresh string: a slice would keep the whole line alive for as long as the index holds the id
      eventId: Buffer.from(json.slice(idStart + 12, idStart + 48), "latin1").toString("latin1"),
      type: readString(json, typeKey + 8, typeStop),
      tags: tagsEnd === -1 ? noTags : (JSON.parse(json.slice(tagsStart, tagsEnd)) as ReadonlyArray<string>),
      batchIndex: Number(json.slice(batchKey + 10, comma)),
      batchSize: Number(json.slice(comma + 1, close)),
      ...(atStart === -1 ? {} : { at: Number.parseInt(json.slice(atStart, atStart + 20), 10) })
    }
  }
  const line = decodeVerified(json)
  return typeof line === "string"
    ? line
    : {
      globalPosition: Number(line.event.globalPosition),
      streamId: line.event.streamId,
      eventId: line.event.eventId,
      type: line.event.type,
      tags: line.event.tags,
      batchIndex: line.batchIndex,
      batchSize: line.batchSize,
      ...(line.at === undefined ? {} : { at: line.at })
    }
}

/**
 * Decodes one line (without its newline), verifying its checksum. Returns the
 * problem instead when the line is damaged.
 */
export const decodeLine = (text: string): Line | LineProblem => {
  const bytes = Buffer.from(text)
  return decodeLineAt(bytes, 0, bytes.length)
}

const prefixBytes = Buffer.from(prefix)
const middleBytes = Buffer.from(middle)
const closingBrace = 0x7d

/**
 * Decodes the line at `start` up to `end` (its newline, excluded) of
 * `bytes`, verifying its checksum. Returns the problem instead when the line
 * is damaged.
 */
export const decodeLineAt = (bytes: Buffer, start: number, end: number): Line | LineProblem => {
  const problem = checkAt(bytes, start, end)
  if (problem !== undefined) return problem
  return eventIn(bytes, start + eventStart, end - 1) ?? decodeVerified(bytes.toString("utf8", start + eventStart, end - 1))
}

/** The event of the line at `start` up to `end` of `bytes` (as `decodeLineAt`), or the problem. */
export const decodeEventAt = (bytes: Buffer, start: number, end: number): StoredEvent | LineProblem => {
  const line = decodeLineAt(bytes, start, end)
  return typeof line === "string" ? line : line.event
}

/**
 * What a fold needs of the line at `start` up to `end` (its newline,
 * excluded) of `bytes`, its checksum verified as `decodeLineAt` does; the
 * rest of the envelope and the metadata are not decoded.
 */
export const decodePayloadAt = (bytes: Buffer, start: number, end: number): EventPayload | LineProblem => {
  const problem = checkAt(bytes, start, end)
  return problem ?? verifiedPayloadAt(bytes, start, end)
}

/** The payload of a line whose checksum was verified: in place, or parsed whole when it is laid out otherwise. */
const verifiedPayloadAt = (bytes: Buffer, start: number, end: number): EventPayload | LineProblem => {
  const payload = payloadIn(bytes, start + eventStart, end - 1)
  if (payload !== undefined) return payload
  const line = decodeVerified(bytes.toString("utf8", start + eventStart, end - 1))
  return typeof line === "string" ? line : line.event
}

/** The problem of the line at `start` up to `end` of `bytes`, if its shape or checksum fails (the checksum taken over the bytes). */
const checkAt = (bytes: Buffer, start: number, end: number): LineProblem | undefined => {
  const crcStart = start + prefix.length
  if (end - start < eventStart + 1 || bytes[end - 1] !== closingBrace) return "shape"
  for (let i = 0; i < prefixBytes.length; i++) if (bytes[start + i] !== prefixBytes[i]) return "shape"
  for (let i = 0; i < middleBytes.length; i++) if (bytes[crcStart + 8 + i] !== middleBytes[i]) return "shape"
  let expected = 0
  for (let i = crcStart; i < crcStart + 8; i++) {
    const digit = hexDigit(bytes[i]!)
    if (digit === -1) return "checksum"
    expected = expected * 16 + digit
  }
  return crc32(bytes.subarray(start + eventStart, end - 1)) === expected ? undefined : "checksum"
}

/**
 * `decodePayloadAt` for a line whose stream, version and type the index
 * gives (`typeKey`: `typeKeyOf(type)`): only its schema version and data
 * are read from the line.
 */
export const decodeKnownPayloadAt = (
  bytes: Buffer,
  start: number,
  end: number,
  streamId: StreamId,
  streamVersion: number,
  typeKey: Buffer,
  type: string
): EventPayload | LineProblem => {
  const problem = checkAt(bytes, start, end)
  if (problem !== undefined) return problem
  // another layout (an older writer's): the checksum holds already
  return knownPayloadIn(bytes, start + eventStart, end - 1, streamId, streamVersion, typeKey, type) ??
    verifiedPayloadAt(bytes, start, end)
}

/** The value of a lowercase hexadecimal digit's byte (as the writer writes them: a letter's case flipped is damage), or -1. */
const hexDigit = (byte: number): number => byte >= 0x30 && byte <= 0x39 ? byte - 0x30 : byte >= 0x61 && byte <= 0x66 ? byte - 0x57 : -1

/** The event JSON of the line at `start` up to `end` of `bytes` if its shape and checksum hold, or the problem. */
const verifiedAt = (bytes: Buffer, start: number, end: number): string | LineProblem =>
  checkAt(bytes, start, end) ?? bytes.toString("utf8", start + eventStart, end - 1)

const decodeVerified = (json: string): Line | LineProblem => {
  let parsed: LineEvent
  try {
    parsed = JSON.parse(json) as LineEvent
  } catch {
    return "shape"
  }
  return {
    event: {
      eventId: parsed.eventId as EventId,
      type: parsed.type,
      streamId: parsed.streamId as StreamId,
      streamVersion: parsed.streamVersion,
      globalPosition: BigInt(parsed.globalPosition),
      recordedAt: new Date(parsed.recordedAt),
      schemaVersion: parsed.schemaVersion,
      data: parsed.data,
      metadata: parsed.metadata,
      tags: parsed.tags ?? noTags
    },
    batchIndex: parsed.batch[0],
    batchSize: parsed.batch[1],
    ...(parsed.at === undefined ? {} : { at: parsed.at })
  }
}

/** A line found in a buffer: its index fields and byte span. */
export interface ScannedLine {
  readonly entry: IndexEntry
  readonly offset: number
  readonly length: number
}

/** The outcome of scanning log bytes. */
export interface Scan {
  /** Complete, valid appends, in order. */
  readonly lines: ReadonlyArray<ScannedLine>
  /** Bytes consumed: the end of the last complete append (or void bytes, or seal) read. */
  readonly consumed: number
  /** A damaged complete line, if any: scanning stopped there. */
  readonly damaged?: { readonly offset: number; readonly problem: LineProblem } | undefined
  /** Where an unsealed torn tail starts, if the bytes end in one: a write in progress, or one cut short. */
  readonly torn?: number | undefined
  /** Valid tombstones among the bytes consumed, in order. */
  readonly tombstones: ReadonlyArray<LogTombstone>
  /** Void stretches among the bytes consumed that hold a stream's lines (fenced-off appends, sealed torn ones). */
  readonly voids: ReadonlyArray<VoidSpan>
}

/**
 * A void stretch of the log holding (part of) one append of one stream: no
 * reader sees it, yet its bytes are the stream's, for erasure to overwrite.
 * `stream` is the stream id as JSON text as far as the bytes hold it: whole,
 * or cut short (then every stream id it begins matches).
 */
export interface VoidSpan {
  readonly from: number
  readonly to: number
  readonly stream: string
}

/** Whether a void stretch holds lines of `streamId`. */
export const voidOf = (span: VoidSpan, streamId: StreamId): boolean => JSON.stringify(streamId).startsWith(span.stream)

const streamField = /^\{"crc":"[0-9a-f]{8}","event":\{"globalPosition":\d+,"streamId":("(?:[^"\\]|\\.)*"?)/

/** The stream id (as JSON text, maybe cut short) of the possibly torn line at `start`, if it got that far. */
const streamTextAt = (bytes: Buffer, start: number): string | undefined => {
  const end = bytes.indexOf(newline, start)
  const match = streamField.exec(bytes.toString("utf8", start, end === -1 ? bytes.length : end))
  return match !== null && match[1]!.length > 1 ? match[1] : undefined
}

const newline = 0x0a

/**
 * The void spans of the stretch `from`..`to` of the log (file offsets; the
 * stretch lies in `bytes`, which start at `base`): each line's bytes owned by
 * the stream its line names, as far as it got (consecutive lines of one
 * stream as one span). An appendMany call's lines name several streams.
 */
const voidLines = (bytes: Buffer, base: number, from: number, to: number): Array<VoidSpan> => {
  const spans: Array<VoidSpan> = []
  for (let start = from - base; start < to - base;) {
    const next = bytes.indexOf(newline, start)
    const end = next === -1 || next >= to - base ? to - base : next + 1
    const stream = streamTextAt(bytes, start)
    const last = spans.at(-1)
    if (stream !== undefined && last !== undefined && last.stream === stream && last.to === base + start) {
      spans[spans.length - 1] = { ...last, to: base + end }
    } else if (stream !== undefined) {
      spans.push({ from: base + start, to: base + end, stream })
    }
    start = end
  }
  return spans
}

/**
 * Scans `bytes` (which start at file offset `base`; `atEnd` when they run to
 * the end of the log) for complete appends.
 *
 * - An append whose first line's `at` is not its offset is void: its writer
 *   planned it against a shorter log, so it was fenced off (a stalled lock
 *   holder's write landing after a newer holder's). It is consumed, not kept.
 * - Trailing bytes without a newline, and the lines of an append whose last
 *   line is missing, are a write in progress or torn: not consumed, reported
 *   as `torn` once the bytes reach the end of the log.
 * - A torn stretch followed by a valid seal for it is consumed, seal included.
 * - A tombstone is consumed, and returned when it starts at its `at`.
 * - A line in a range of a valid erasing tombstone (known to `erasures`, or
 *   found further on in `bytes`) is consumed whatever it holds, and so is a
 *   filler line: erased lines.
 * - Anything else out of place is damage: a complete line whose checksum or
 *   shape fails, or a valid append right after an unsealed torn stretch.
 *   Damage is only reported with `atEnd`: an erasing tombstone further on
 *   (beyond `bytes`) may yet cover it.
 */
export const scan = (bytes: Buffer, base: number, atEnd = true, erasures: Erasures = new Erasures()): Scan => {
  learnErasures(bytes, base, erasures)
  const lines: Array<ScannedLine> = []
  const tombstones: Array<LogTombstone> = []
  const voids: Array<VoidSpan> = []
  let consumed = 0
  let pending: Array<ScannedLine> = []
  let pendingVoid = false
  /** Erased lines since the last whole batch: of a batch spanning streams, some lines may be erased, others not. */
  let erased = 0
  let start = 0
  const settle = (to: number) => {
    if (!pendingVoid) for (const line of pending) lines.push(line)
    else voids.push(...voidLines(bytes, base, pending[0]!.offset, to))
    pending = []
    erased = 0
    consumed = to - base
  }
  while (start < bytes.length) {
    const end = bytes.indexOf(newline, start)
    if (end === -1) break
    if (erasures.covers(base + start)) {
      erased++
      if (pending.length === 0) consumed = end + 1
      else if (pending.length + erased === pending[0]!.entry.batchSize) settle(base + end + 1)
      start = end + 1
      continue
    }
    const decoded = indexLineAt(bytes, start, end)
    // a batch's first readable line: its first line, or (its earlier lines erased) one that says where it was planned
    const opens = typeof decoded !== "string" && pending.length === 0 &&
      (decoded.batchIndex === 0 || (decoded.batchIndex <= erased && decoded.at !== undefined))
    if (typeof decoded !== "string" && (opens || (pending.length > 0 && decoded.batchIndex === pending.length + erased))) {
      if (opens) {
        pendingVoid = decoded.at !== undefined && decoded.at !== base + start
        erased = decoded.batchIndex
      }
      pending.push({ entry: decoded, offset: base + start, length: end + 1 - start })
      if (decoded.batchIndex === decoded.batchSize - 1) settle(base + end + 1)
      start = end + 1
      continue
    }
    const text = bytes.toString("utf8", start, end)
    if (pending.length === 0 && (end === start || decodeSeal(text) !== undefined || isFiller(text))) {
      // a seal outside a torn stretch: a stalled writer's (void), or one whose stretch was read as sealed already;
      // an empty line: a stalled sealer's leading newline, landed after a newer writer's whole line; an erased line
      consumed = start = end + 1
      continue
    }
    const tombstone = pending.length === 0 ? decodeLogTombstone(text) : undefined
    if (tombstone !== undefined) {
      // one that landed elsewhere than planned is a stalled deleter's: void
      if (tombstone.at === base + start) tombstones.push(tombstone)
      consumed = start = end + 1
      continue
    }
    const from = pending.length === 0 ? base + start : pending[0]!.offset
    const problem = sealFor(bytes, base, start, from, erasures)
    if (problem.sealedTo !== -1) {
      voids.push(...voidLines(bytes, base, from, base + problem.sealAt))
      pending = []
      consumed = start = problem.sealedTo
      continue
    }
    if (!atEnd) return { lines, consumed, tombstones, voids }
    if (problem.damaged !== undefined) return { lines, consumed, damaged: problem.damaged, tombstones, voids }
    if (problem.validAppend) return { lines, consumed, damaged: { offset: base + start, problem: "shape" }, tombstones, voids }
    return { lines, consumed, torn: from, tombstones, voids }
  }
  if (atEnd && (pending.length > 0 || start < bytes.length)) {
    return { lines, consumed, torn: pending.length > 0 ? pending[0]!.offset : base + start, tombstones, voids }
  }
  return { lines, consumed, tombstones, voids }
}

/**
 * Looks from `start` on for the seal of the torn stretch starting at `from`:
 * where the seal starts (`sealAt`, in `bytes`) and ends, or -1 with what the stretch holds (a damaged line, a valid
 * append) to tell damage from a torn tail.
 */
const sealFor = (bytes: Buffer, base: number, start: number, from: number, erasures: Erasures) => {
  let damaged: { readonly offset: number; readonly problem: LineProblem } | undefined
  let validAppend = false
  for (let at = start; at < bytes.length;) {
    const end = bytes.indexOf(newline, at)
    if (end === -1) break
    const text = bytes.toString("utf8", at, end)
    const seal = decodeSeal(text)
    const tombstone = seal === undefined ? decodeLogTombstone(text) : undefined
    if (seal !== undefined) {
      if (seal.from === from && seal.at === base + at) return { sealedTo: end + 1, sealAt: at, damaged, validAppend }
    } else if (tombstone !== undefined) {
      if (tombstone.at === base + at) validAppend = true
    } else if (!erasures.covers(base + at) && !isFiller(text)) {
      const decoded = indexLineAt(bytes, at, end)
      if (typeof decoded === "string") {
        if (end > at) damaged ??= { offset: base + at, problem: decoded }
      }
      else if (decoded.batchIndex === 0 && (decoded.at === undefined || decoded.at === base + at)) validAppend = true
    }
    at = end + 1
  }
  return { sealedTo: -1, sealAt: -1, damaged, validAppend }
}
