/**
 * One pass over the global log that sums up a store: its streams (version,
 * events, payload bytes), its event types and its time span. The event store
 * has no listing API, so `streams` and `stats` read every event once.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { StoredEvent } from "../Event.js"
import type * as EventStore from "../EventStore.js"
import * as CliError from "./CliError.js"
import * as Output from "./Output.js"
import * as Progress from "./Progress.js"

/**
 * What the log says of one stream.
 *
 * @category models
 */
export interface StreamSummary {
  readonly streamId: string
  version: number
  events: number
  bytes: number
  firstPosition: bigint
  lastRecordedAt: Date
}

/**
 * What the log says of one event type.
 *
 * @category models
 */
export interface TypeSummary {
  readonly type: string
  events: number
  bytes: number
}

/**
 * The whole store, summed up.
 *
 * @category models
 */
export interface Summary {
  readonly streams: Map<string, StreamSummary>
  readonly types: Map<string, TypeSummary>
  events: number
  bytes: number
  head: bigint
  first: Date | undefined
  last: Date | undefined
}

/**
 * Reads the whole log into a `Summary`, showing progress on a terminal.
 *
 * @category constructors
 */
export const summarize = (
  store: EventStore.EventStoreService,
  options: { readonly include?: ((event: StoredEvent) => boolean) | undefined } = {}
): Effect.Effect<Summary, CliError.CliError> =>
  Effect.gen(function*() {
    const head = yield* store.headPosition
    const summary: Summary = { streams: new Map(), types: new Map(), events: 0, bytes: 0, head, first: undefined, last: undefined }
    const progress = Progress.make({ label: "reading the log", unit: "events" })
    yield* store.readAll().pipe(
      Stream.runForEachChunk((chunk) =>
        Effect.suspend(() => {
          let last: StoredEvent | undefined
          for (const event of chunk) {
            last = event
            if (options.include !== undefined && !options.include(event)) continue
            const bytes = Output.payloadBytes(event)
            summary.events++
            summary.bytes += bytes
            if (summary.first === undefined || event.recordedAt < summary.first) summary.first = event.recordedAt
            if (summary.last === undefined || event.recordedAt > summary.last) summary.last = event.recordedAt
            const stream = summary.streams.get(event.streamId)
            if (stream === undefined) {
              summary.streams.set(event.streamId, {
                streamId: event.streamId,
                version: event.streamVersion,
                events: 1,
                bytes,
                firstPosition: event.globalPosition,
                lastRecordedAt: event.recordedAt
              })
            } else {
              stream.version = Math.max(stream.version, event.streamVersion)
              stream.events++
              stream.bytes += bytes
              stream.lastRecordedAt = event.recordedAt
            }
            const type = summary.types.get(event.type)
            if (type === undefined) summary.types.set(event.type, { type: event.type, events: 1, bytes })
            else {
              type.events++
              type.bytes += bytes
            }
          }
          return last === undefined || head === 0n
            ? Effect.void
            : progress.update(summary.events, Number(last.globalPosition) / Number(head))
        })
      ),
      Effect.ensuring(progress.finish)
    )
    return summary
  }).pipe(Effect.mapError((error) => (error instanceof CliError.CliError ? error : CliError.fail(error.message))))
