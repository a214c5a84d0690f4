/**
 * `chronicle ui`'s stream list over a filesystem store: GET /api/streams when
 * the log has moved since the last request (a scan of the whole log) and when
 * it has not (the summary kept from the scan before), side by side in
 * interleaved rounds; and a stream's newest page (GET /api/events). The
 * console runs in this process on a free port; requests go through HTTP.
 *
 *   npx tsx bench/ui.ts [--streams 200] [--events 100] [--rounds 15]
 */
import { createServer } from "node:http"
import os from "node:os"
import { parseArgs } from "node:util"
import { NodeContext } from "@effect/platform-node"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Effect, Either, Layer } from "effect"
import { EventStore, ExpectedVersion, FileEventStore, StreamId } from "chronicle"
import * as Stores from "../src/cli/Stores.js"
import * as Server from "../src/cli/ui/Server.js"
import { decimal, integer, summarize, table, timedPromise, withTempDirectory } from "./support.js"

const { values } = parseArgs({ options: { streams: { type: "string" }, events: { type: "string" }, rounds: { type: "string" } } })
const streams = Number(values.streams ?? 200)
const eventsPerStream = Number(values.events ?? 100)
const rounds = Number(values.rounds ?? 15)

const idOf = (n: number) => StreamId.unsafeMake("account", `bench-${n}`)

const run = (directory: string) =>
  Effect.gen(function*() {
    const writer = yield* Layer.build(FileEventStore.layer({ directory }).pipe(Layer.provide(NodeContext.layer)))
    const append = (n: number, version: number, count: number) =>
      EventStore.append(
        idOf(n),
        Array.from({ length: count }, (_, i) => ({ type: "MoneyDeposited", data: { amount: version + i + 1 } })),
        { expectedVersion: version === 0 ? ExpectedVersion.NoStream : ExpectedVersion.exact(version) }
      ).pipe(Effect.provide(writer))
    for (let n = 0; n < streams; n++) yield* append(n, 0, eventsPerStream)

    const opened = yield* Stores.open(`file:${directory}`, "read")
    const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
    yield* server.serve(Server.make({ label: opened.label, store: Either.right(opened), decider: undefined }))
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0
    const get = (path: string) =>
      Effect.promise(() =>
        timedPromise(async () => {
          const response = await fetch(`http://127.0.0.1:${port}${path}`)
          if (!response.ok) throw new Error(`${path}: ${response.status}`)
          return (await response.json()) as { readonly events?: number }
        })
      )

    yield* get("/api/streams")
    const moved: Array<number> = []
    const kept: Array<number> = []
    const page: Array<number> = []
    let version = eventsPerStream
    for (let round = 0; round < rounds; round++) {
      yield* append(0, version, 1)
      version++
      const fresh = yield* get("/api/streams")
      if (fresh.value.events !== streams * eventsPerStream + round + 1) throw new Error("the scan missed the new event")
      moved.push(fresh.millis)
      kept.push((yield* get("/api/streams")).millis)
      page.push((yield* get(`/api/events?id=${idOf(1)}&limit=10`)).millis)
    }
    const row = (label: string, millis: ReadonlyArray<number>) => {
      const s = summarize(millis)
      return [label, decimal(s.median), `${decimal(s.min)}–${decimal(s.max)}`]
    }
    console.log(`chronicle ui over file: ${integer(streams)} streams × ${integer(eventsPerStream)} events (${integer(streams * eventsPerStream)}), ${rounds} interleaved rounds`)
    console.log(table(["request", "median ms", "range ms"], [
      row("GET /api/streams, log moved (scan)", moved),
      row("GET /api/streams, log unchanged", kept),
      row("GET /api/events, newest 10 of a stream", page)
    ]))
    console.log(`load average ${os.loadavg().map((n) => n.toFixed(2)).join(" ")} (${os.cpus().length} cores)`)
  })

await withTempDirectory("bench-ui", (directory) => Effect.runPromise(Effect.scoped(run(directory)).pipe(Effect.provide(NodeContext.layer))))
