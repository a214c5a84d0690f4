import { spawn } from "node:child_process"
import { createServer } from "node:net"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import type { Msg } from "@nats-io/transport-node"
import { Chunk, Effect, Layer, Option, Schedule, Schema, Stream } from "effect"
import type { Event } from "chronicle"
import {
  CheckpointStore,
  EventId,
  EventStore,
  FileCheckpointStore,
  FileEventStore,
  MemoryCheckpointStore,
  MemoryEventStore,
  Projection,
  StreamId
} from "chronicle"
import { NatsForwarder } from "chronicle/nats"
import { removeAfter, tempDirectory } from "../support/filesystem.js"
import { inspector, natsAvailable, natsUrl, uniqueTarget } from "../support/nats.js"
import { pause } from "../support/time.js"

const workerScript = join(import.meta.dirname, "../support/natsForwarderWorker.ts")

const newEvents = (type: string, count: number, from = 0): ReadonlyArray<Event.NewEvent> =>
  Array.from({ length: count }, (_, i) => ({ eventId: EventId.unsafeGenerate(), type, data: { n: from + i } }))

const allEvents = Effect.flatMap(EventStore.EventStore, (store) =>
  Stream.runCollect(store.readAll()).pipe(Effect.map(Chunk.toReadonlyArray)))

// Tests compare errors by tag and fields: vitest overflows its stack printing an error
// that failed inside a span (Effect wraps it in a Proxy), so a failing toBeInstanceOf reads badly.

/** Waits (in real time) until `check` holds, up to 30 s. */
const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, what: string) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 1500; attempt++) {
      if (yield* check) return
      yield* pause(20)
    }
    return yield* Effect.die(new Error(`never: ${what}`))
  })

/** Counts, by `Nats-Msg-Id`, every message published under `prefix` (duplicates JetStream drops included). */
const tap = (connection: Inspector["connection"], prefix: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const seen = new Map<string, number>()
      const subscription = connection.subscribe(`${prefix}.>`, {
        callback: (_error: unknown, message: Msg) => {
          const id = message.headers?.get("Nats-Msg-Id") ?? ""
          seen.set(id, (seen.get(id) ?? 0) + 1)
        }
      })
      await connection.flush()
      return { seen, subscription }
    }),
    ({ subscription }) => Effect.sync(() => subscription.unsubscribe())
  ).pipe(Effect.map(({ seen }) => seen))

type Inspector = Effect.Effect.Success<ReturnType<typeof inspector>>

const checkpointAt = (name: string) =>
  Effect.map(CheckpointStore.load(name), Option.getOrElse(() => 0n))

const caughtUp = (name: string) =>
  Effect.gen(function*() {
    return (yield* checkpointAt(name)) === (yield* EventStore.headPosition)
  })

const memoryStores = () => Layer.merge(MemoryEventStore.layer(), MemoryCheckpointStore.layer())

const nats = NatsForwarder.connectionLayer({ servers: natsUrl })

describe("NatsForwarder.defaultSubject", () => {
  const event = (streamId: string, type: string) => ({ streamId: StreamId.unsafeParse(streamId), type }) as Event.StoredEvent

  it("is <prefix>.<stream category>.<event type>", () => {
    expect(NatsForwarder.defaultSubject("chronicle")(event("account-42", "Deposited"))).toBe("chronicle.account.Deposited")
    expect(NatsForwarder.defaultSubject()(event("audit", "Logged"))).toBe("chronicle.audit.Logged")
  })

  it("replaces '.', '*', '>' and whitespace in a token, so each part stays one token", () => {
    expect(NatsForwarder.defaultSubject("acme.events")(event("order.v2-7", "Line *Added>\tx"))).toBe(
      "acme.events.order_v2.Line__Added__x"
    )
    expect(NatsForwarder.sanitizeToken("")).toBe("_")
  })
})

describe("NatsForwarder.connectionLayer", () => {
  it.live("an unreachable server is a NatsConnectError naming the address", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(() =>
        new Promise<number>((resolve) => {
          const server = createServer().listen(0, "127.0.0.1", () => {
            const address = server.address()
            server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
          })
        })
      )
      const error = yield* Effect.flip(NatsForwarder.run({ stream: "UNUSED" }).pipe(
        Effect.provide(Layer.merge(memoryStores(), NatsForwarder.connectionLayer({ servers: `127.0.0.1:${port}`, timeout: "2 seconds" })))
      ))
      expect(error._tag).toBe("NatsConnectError")
      expect(error.message).toBe(`Cannot connect to NATS at 127.0.0.1:${port}: connection refused`)
    }))
})

describe.runIf(natsAvailable())("NatsForwarder over JetStream", () => {
  it.live("forwards every event of several streams once, in global order, with msgID = eventId", () =>
    Effect.gen(function*() {
      const { prefix, stream } = uniqueTarget("order")
      const js = yield* inspector(stream)
      const store = yield* EventStore.EventStore
      for (let round = 0; round < 5; round++) {
        yield* store.append(StreamId.unsafeMake("account", "1"), newEvents("Deposited", 20, round * 20), {
          expectedVersion: round === 0 ? "NoStream" : round * 20
        })
        yield* store.append(StreamId.unsafeMake("order.v2", "7"), newEvents("Line Added", 15), {
          expectedVersion: round === 0 ? "NoStream" : round * 15
        })
        yield* store.append(StreamId.unsafeParse("audit"), newEvents("Logged", 5), {
          expectedVersion: round === 0 ? "NoStream" : round * 5
        })
      }
      const log = yield* allEvents
      yield* NatsForwarder.start({ stream, prefix, batchSize: 64 })
      yield* js.awaitCount(log.length)
      yield* eventually(caughtUp(NatsForwarder.defaults.name), "the checkpoint reaches the head")

      const messages = yield* js.messages
      expect(messages).toHaveLength(log.length)
      expect(messages.map((message) => message.header.get("Nats-Msg-Id"))).toEqual(log.map((event) => event.eventId))
      expect(new Set(messages.map((message) => message.subject))).toEqual(
        new Set([`${prefix}.account.Deposited`, `${prefix}.order_v2.Line_Added`, `${prefix}.audit.Logged`])
      )
      const decode = Schema.decodeUnknownSync(Schema.parseJson(NatsForwarder.Envelope))
      messages.forEach((message, i) => {
        const event = log[i]!
        expect(message.subject).toBe(NatsForwarder.defaultSubject(prefix)(event))
        expect(message.header.get(NatsForwarder.headerNames.streamId)).toBe(event.streamId)
        expect(message.header.get(NatsForwarder.headerNames.eventType)).toBe(event.type)
        expect(message.header.get(NatsForwarder.headerNames.position)).toBe(String(event.globalPosition))
        expect(decode(message.string())).toEqual({ ...event })
      })
    }).pipe(Effect.scoped, Effect.provide(Layer.merge(memoryStores(), nats))))

  it.live("killed with SIGKILL between PubAcks and checkpoint, then restarted, the stream holds every event exactly once", () => {
    const directory = tempDirectory("nats-crash")
    const stores = Layer.merge(
      FileEventStore.layer({ directory, fsync: false }),
      FileCheckpointStore.layer({ directory })
    ).pipe(Layer.provide(NodeContext.layer), Layer.merge(removeAfter(directory)))
    const startWorker = (stream: string, prefix: string, stallAt?: bigint) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const child = spawn(
            process.execPath,
            ["--import", "tsx", workerScript, directory, natsUrl, stream, prefix, ...(stallAt === undefined ? [] : [String(stallAt)])],
            { stdio: ["ignore", "ignore", "pipe"] }
          )
          let stderr = ""
          child.stderr.on("data", (chunk) => (stderr += String(chunk)))
          const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()))
          return { child, exited, stderr: () => stderr }
        }),
        ({ child, exited }) => Effect.promise(() => (child.kill("SIGKILL"), exited))
      )
    const stop = (worker: Effect.Effect.Success<ReturnType<typeof startWorker>>, signal: NodeJS.Signals) =>
      Effect.promise(() => (worker.child.kill(signal), worker.exited))

    return Effect.gen(function*() {
      const { prefix, stream } = uniqueTarget("crash")
      const js = yield* inspector(stream)
      const published = yield* tap(js.connection, prefix)
      const store = yield* EventStore.EventStore
      for (let s = 0; s < 40; s++) {
        yield* store.append(StreamId.unsafeMake(s % 2 === 0 ? "even" : "odd", String(s)), newEvents("Happened", 50), {
          expectedVersion: "NoStream"
        })
      }
      const log = yield* allEvents
      const total = log.length
      expect(total).toBe(2000)

      // first run: its checkpoint never gets past event 1000, and it is killed once that event is in the stream
      const stallAt = log[999]!.globalPosition
      const first = yield* startWorker(stream, prefix, stallAt)
      yield* js.awaitCount(1000).pipe(Effect.tapError(() => Effect.sync(() => console.error(first.stderr()))))
      yield* stop(first, "SIGKILL")
      const stored = yield* js.count
      const checkpoint = yield* checkpointAt(NatsForwarder.defaults.name)
      expect(stored).toBeLessThan(total)
      // published and acknowledged, but not checkpointed: the restart publishes these again
      expect(checkpoint).toBeLessThan(log[stored - 1]!.globalPosition)

      const second = yield* startWorker(stream, prefix)
      yield* js.awaitCount(total).pipe(Effect.tapError(() => Effect.sync(() => console.error(second.stderr()))))
      yield* eventually(caughtUp(NatsForwarder.defaults.name), "the restarted forwarder checkpoints the head")
      yield* stop(second, "SIGTERM")
      yield* Effect.promise(() => js.connection.flush())

      const messages = yield* js.messages
      expect(messages).toHaveLength(total)
      expect(messages.map((message) => message.header.get("Nats-Msg-Id"))).toEqual(log.map((event) => event.eventId))
      const redelivered = [...published.values()].filter((times) => times > 1).length
      expect(redelivered).toBeGreaterThan(0)
      expect(new Set(published.keys())).toEqual(new Set(log.map((event) => event.eventId)))
    }).pipe(Effect.scoped, Effect.provide(stores))
  }, 60_000)

  it.live("stopped gracefully and started again, forwards the new events and does not republish the old", () =>
    Effect.gen(function*() {
      const { prefix, stream } = uniqueTarget("resume")
      const js = yield* inspector(stream)
      const store = yield* EventStore.EventStore
      const streamId = StreamId.unsafeMake("account", "9")
      yield* store.append(streamId, newEvents("Deposited", 30), { expectedVersion: "NoStream" })
      // each run has a connection of its own, closed after the forwarder stops
      const forwarding = <A, E, R>(until: Effect.Effect<A, E, R>) =>
        Effect.scoped(Effect.zipRight(NatsForwarder.start({ stream, prefix, batchSize: 8 }), until)).pipe(Effect.provide(nats))
      yield* forwarding(js.awaitCount(30))
      expect(yield* checkpointAt(NatsForwarder.defaults.name)).toBe(yield* EventStore.headPosition)

      const published = yield* tap(js.connection, prefix)
      const added = newEvents("Withdrawn", 12)
      yield* store.append(streamId, added, { expectedVersion: 30 })
      yield* forwarding(Effect.zipRight(
        js.awaitCount(42),
        eventually(caughtUp(NatsForwarder.defaults.name), "the checkpoint reaches the head")
      ))
      yield* Effect.promise(() => js.connection.flush())

      expect([...published.keys()]).toEqual(added.map((event) => event.eventId))
      expect([...published.values()].every((times) => times === 1)).toBe(true)
      const messages = yield* js.messages
      expect(messages.slice(30).map((message) => message.header.get("Nats-Msg-Id"))).toEqual(added.map((event) => event.eventId))
    }).pipe(Effect.scoped, Effect.provide(memoryStores())))

  it.live("a subject outside the stream's prefix parks the forwarder with a NatsPublishError naming subject and event", () =>
    Effect.gen(function*() {
      const { prefix, stream } = uniqueTarget("parked")
      yield* inspector(stream)
      const store = yield* EventStore.EventStore
      const [event] = newEvents("Deposited", 1)
      yield* store.append(StreamId.unsafeMake("account", "1"), [event!], { expectedVersion: "NoStream" })
      const error = yield* Effect.flip(NatsForwarder.run({ stream, prefix, subject: () => "elsewhere.account", retry: Schedule.recurs(1) }))
      expect(error._tag).toBe("ProjectionParked")
      const { _tag, eventId, subject } = (error as Projection.ProjectionParked).cause as NatsForwarder.NatsPublishError
      expect({ _tag, subject, eventId }).toEqual({ _tag: "NatsPublishError", subject: "elsewhere.account", eventId: event!.eventId })
      expect(yield* CheckpointStore.load(NatsForwarder.defaults.name)).toEqual(Option.none())
    }).pipe(Effect.scoped, Effect.provide(Layer.merge(memoryStores(), nats))))

  it.live("a message the stream refuses parks the forwarder after its retries, with the NatsPublishError as the cause", () =>
    Effect.gen(function*() {
      const { prefix, stream } = uniqueTarget("refused")
      const js = yield* inspector(stream)
      yield* Effect.promise(() => js.manager.streams.add({ name: stream, subjects: [`${prefix}.>`], max_msg_size: 1024 }))
      const store = yield* EventStore.EventStore
      const small = newEvents("Noted", 3)
      const large = { eventId: EventId.unsafeGenerate(), type: "Noted", data: { text: "x".repeat(2000) } }
      yield* store.append(StreamId.unsafeMake("note", "1"), [...small, large], { expectedVersion: "NoStream" })
      const error = yield* Effect.flip(NatsForwarder.run({ stream, prefix, retry: Schedule.recurs(2) }))
      expect(error._tag).toBe("ProjectionParked")
      const parked = error as Projection.ProjectionParked
      expect(parked.attempts).toBe(3)
      const { _tag, eventId, reason, subject } = parked.cause as NatsForwarder.NatsPublishError
      expect({ _tag, subject, eventId }).toEqual({ _tag: "NatsPublishError", subject: `${prefix}.note.Noted`, eventId: large.eventId })
      expect(reason).toMatch(/size/i)
      // the chunk was not checkpointed: a fixed stream gets it again
      expect(yield* CheckpointStore.load(NatsForwarder.defaults.name)).toEqual(Option.none())
      expect(yield* js.count).toBe(3)
    }).pipe(Effect.scoped, Effect.provide(Layer.merge(memoryStores(), nats))))

  it.live("an existing stream that does not capture <prefix>.> is a NatsStreamError", () =>
    Effect.gen(function*() {
      const { prefix, stream } = uniqueTarget("foreign")
      const js = yield* inspector(stream)
      yield* Effect.promise(() => js.manager.streams.add({ name: stream, subjects: [`${prefix}_other.>`] }))
      const error = yield* Effect.flip(NatsForwarder.run({ stream, prefix }))
      expect(error._tag).toBe("NatsStreamError")
      expect(error.message).toContain(`${prefix}.>`)
    }).pipe(Effect.scoped, Effect.provide(Layer.merge(memoryStores(), nats))))
})
