/**
 * NATS for tests: the real server (JetStream enabled) at NATS_URL, one
 * JetStream stream and subject prefix per test, deleted afterwards. Under
 * CI=true an unreachable server fails the run.
 */
import { jetstreamManager } from "@nats-io/jetstream"
import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import type { NatsConnection } from "@nats-io/transport-node"
import { Effect } from "effect"
import type { Scope } from "effect"
import { serviceAvailable } from "./service.js"

export const natsUrl = process.env.NATS_URL ?? "127.0.0.1:4222"

const [natsHost, natsPort] = natsUrl.replace(/^nats:\/\//, "").split(":")

/** Whether NATS tests run; in CI an unreachable server throws instead. */
export const natsAvailable = serviceAvailable("NATS", natsUrl, natsHost ?? "127.0.0.1", Number(natsPort ?? 4222))

let names = 0
/** A JetStream stream name and a subject prefix no other test or run uses. */
export const uniqueTarget = (label: string): { readonly stream: string; readonly prefix: string } => {
  const id = `${label}_${process.pid}_${Date.now().toString(36)}_${++names}`.replace(/[^A-Za-z0-9_]/g, "_")
  return { stream: `T_${id}`.toUpperCase(), prefix: `t_${id}`.toLowerCase() }
}

/** A connection and a JetStream manager for inspecting streams; `stream` is deleted when the scope closes. */
export const inspector = (stream: string): Effect.Effect<Inspector, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const connection = await connect({ servers: natsUrl, name: "chronicle-test-inspector" })
      return { connection, manager: await jetstreamManager(connection) }
    }),
    ({ connection, manager }) =>
      Effect.promise(async () => {
        await manager.streams.delete(stream).catch(() => false)
        await connection.close()
      })
  ).pipe(Effect.map(({ connection, manager }) => makeInspector(connection, manager, stream)))

/** Reads a test's JetStream stream. */
export interface Inspector {
  readonly connection: NatsConnection
  readonly manager: JetStreamManager
  /** Messages in the stream (0 when it does not exist yet). */
  readonly count: Effect.Effect<number>
  /** Every message of the stream in sequence order. */
  readonly messages: Effect.Effect<ReadonlyArray<StoredMsg>>
  /** Waits (in real time) until the stream holds `count` messages, failing after 30 s. */
  readonly awaitCount: (count: number) => Effect.Effect<void, Error>
}

const makeInspector = (connection: NatsConnection, manager: JetStreamManager, stream: string): Inspector => {
  const count = Effect.promise(() => manager.streams.info(stream).then((info) => info.state.messages, () => 0))
  return {
    connection,
    manager,
    count,
    messages: Effect.promise(async () => {
      const info = await manager.streams.info(stream)
      if (info.state.messages === 0) return []
      const sequences = Array.from({ length: info.state.last_seq - info.state.first_seq + 1 }, (_, i) => info.state.first_seq + i)
      const all: Array<StoredMsg | null> = []
      for (let i = 0; i < sequences.length; i += 200) {
        all.push(...await Promise.all(sequences.slice(i, i + 200).map((seq) => manager.streams.getMessage(stream, { seq }))))
      }
      return all.filter((message): message is StoredMsg => message !== null)
    }),
    awaitCount: (expected) =>
      Effect.gen(function*() {
        for (let attempt = 0; attempt < 1500; attempt++) {
          if ((yield* count) >= expected) return
          yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
        }
        return yield* Effect.fail(new Error(`stream ${stream} never reached ${expected} messages (has ${yield* count})`))
      })
  }
}
