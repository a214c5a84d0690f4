/**
 * chronicle's filesystem store as a contender of `bench/embedded.ts`: only the
 * public API (`FileEventStore.layer`, `EventStore`, the bench accounts'
 * handler), so it measures whatever the store's internals are.
 */
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer, ManagedRuntime, Option, Stream } from "effect"
import { EventStore, ExpectedVersion, FileEventStore, StreamId } from "chronicle"
import type { Event } from "chronicle"
import { accounts, seedAccount } from "./accounts.js"
import type { EmbeddedContender, EmbeddedStore } from "./embedded-store.js"

const streamIdOf = (stream: string) => StreamId.unsafeMake("account", stream)

const deposits = (size: number): Array<Event.NewEvent> =>
  Array.from({ length: size }, () => ({ type: "MoneyDeposited", data: { amount: 1 } }))

const open = async (directory: string, fsync: boolean): Promise<EmbeddedStore> => {
  const runtime = ManagedRuntime.make(FileEventStore.layer({ directory, fsync }).pipe(Layer.provide(NodeContext.layer)))
  await runtime.runPromise(Effect.void)
  return {
    append: (stream, version, size) =>
      runtime.runPromise(
        Effect.map(
          EventStore.append(streamIdOf(stream), deposits(size), { expectedVersion: ExpectedVersion.exact(version) }),
          (result) => result.streamVersion
        )
      ),
    seed: (stream, eventCount, batchSize) => runtime.runPromise(seedAccount(streamIdOf(stream), eventCount, batchSize)),
    load: (stream) => runtime.runPromise(Effect.map(accounts.load(streamIdOf(stream)), (loaded) => loaded.version)),
    readLast: (stream) =>
      runtime.runPromise(
        Effect.map(
          Stream.runHead(EventStore.read(streamIdOf(stream), { direction: "backwards", limit: 1 })),
          Option.match({ onNone: () => 0, onSome: (event) => event.streamVersion })
        )
      ),
    close: () => runtime.dispose()
  }
}

const contender: EmbeddedContender = { name: "chronicle", open }

export default contender
