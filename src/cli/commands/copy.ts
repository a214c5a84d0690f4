/**
 * `chronicle copy --from <store> --to <store>`: migrates events between
 * stores (filesystem ⇄ PostgreSQL, …) with their ids, stream ids, versions,
 * payloads and metadata, in global order; tombstones of deleted streams
 * follow their streams. Resumable: the target keeps a checkpoint of the last
 * source position copied (`chronicle-copy:<source>`), and a re-run continues
 * after it; events sent again after a crash are recognised by their ids.
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { StreamId } from "../../StreamId.js"
import * as CliError from "../CliError.js"
import * as CommonOptions from "../CommonOptions.js"
import * as Output from "../Output.js"
import * as Progress from "../Progress.js"
import * as Stores from "../Stores.js"
import * as StoreSpec from "../StoreSpec.js"
import * as Transfer from "../Transfer.js"

const from = Options.text("from").pipe(Options.withDescription("The source store (same forms as --store)."))
const to = Options.text("to").pipe(Options.withDescription("The target store (created when missing)."))
const limit = Options.integer("limit").pipe(Options.optional, Options.withDescription("Copy at most this many events now; the next run continues."))
const restart = Options.boolean("restart").pipe(
  Options.withDescription("Ignore the checkpoint and go through the whole source again (what is there is recognised, not written twice).")
)
const chunkSize = 1000

/**
 * The name of the checkpoint a copy from `source` keeps in its target.
 *
 * @category getters
 */
export const checkpointName = (source: string): string => `chronicle-copy:${source}`

/**
 * The `copy` command.
 *
 * @category commands
 */
export const command = Command.make(
  "copy",
  { from, to, json: CommonOptions.json, limit, restart, allowPartial: CommonOptions.allowPartial },
  (options) =>
    Effect.gen(function*() {
      const source = yield* Effect.mapError(StoreSpec.parse(options.from), (error) => CliError.usage(`--from: ${error.message}`))
      const target = yield* Effect.mapError(StoreSpec.parse(options.to), (error) => CliError.usage(`--to: ${error.message}`))
      if (StoreSpec.label(source) === StoreSpec.label(target)) {
        return yield* CliError.usage(`--from and --to are the same store (${StoreSpec.label(source)})`)
      }
      const max = Option.getOrElse(options.limit, () => Number.MAX_SAFE_INTEGER)
      if (max < 0) return yield* CliError.usage(`--limit must be >= 0, got ${max}`)
      yield* Effect.scoped(Effect.gen(function*() {
        const from = yield* Stores.openSpec(source, "read")
        yield* Stores.requireWholeLog(from, "copy", options.allowPartial)
        const into = yield* Stores.openSpec(target, "write")
        const checkpoints = yield* into.checkpoints
        const name = checkpointName(from.label)
        const saved = options.restart ? Option.none<bigint>() : yield* checkpoints.load(name)
        const after = Option.getOrElse(saved, () => 0n)
        const head = yield* from.events.headPosition
        const appender = Transfer.make(into.events)
        const progress = Progress.make({ label: `copying to ${into.label}`, unit: "events" })
        let copied = 0
        let tombstones = 0
        let last = after

        /** Deletes in the target the streams of `ids` deleted in the source, once all their events are copied. */
        const copyTombstones = (ids: ReadonlyArray<StreamId>) =>
          Effect.forEach(ids, (streamId) =>
            Effect.gen(function*() {
              if (!(yield* from.events.isDeleted(streamId))) return
              const version = yield* from.events.streamVersion(streamId)
              if ((appender.versions.get(streamId) ?? 0) < version) return
              yield* into.events.deleteStream(streamId)
              tombstones++
            }), { concurrency: 8, discard: true })

        yield* from.events.readAll({ fromPosition: after + 1n, chunkSize, limit: max }).pipe(
          Stream.rechunk(chunkSize),
          Stream.runForEachChunk((chunk) =>
            Effect.gen(function*() {
              const events = Chunk.toReadonlyArray(chunk)
              yield* appender.write(events)
              yield* copyTombstones([...new Set(events.map((event) => event.streamId))])
              last = events[events.length - 1]!.globalPosition
              yield* checkpoints.save(name, last)
              copied += events.length
              yield* progress.update(copied, head > after ? Number(last - after) / Number(head - after) : undefined)
            })
          ),
          Effect.ensuring(progress.finish)
        )
        const remaining = last < head
        const result = {
          from: from.label,
          to: into.label,
          resumedAfter: after,
          events: copied,
          appended: appender.totals.appended,
          alreadyPresent: appender.totals.present,
          streams: appender.versions.size,
          tombstones,
          lastPosition: last,
          complete: !remaining
        }
        if (options.json) return yield* Output.line(Output.json(result))
        yield* Output.line(
          `copied ${Output.count(appender.totals.appended)} events (${Output.count(appender.totals.present)} already there) in ${
            Output.count(appender.versions.size)
          } streams from ${from.label} to ${into.label}${after > 0n ? `, resuming after position ${after}` : ""}${
            tombstones > 0 ? `; ${tombstones} streams deleted as in the source` : ""
          }${remaining ? `; stopped at position ${last} of ${head}: run again to continue` : ""}`
        )
      }))
    })
).pipe(Command.withDescription("Copy every event from one store to another (--from, --to), keeping ids, versions and order; resumable."))
