/**
 * A NATS forwarder process for the crash tests.
 *
 *   node --import tsx test/support/natsForwarderWorker.ts <directory> <servers> <stream> <prefix> [stallAt]
 *
 * Forwards the filesystem store in `directory` to the JetStream stream,
 * checkpointing in the same directory, until killed (SIGTERM stops it
 * gracefully). With `stallAt`, the first checkpoint at or past that position
 * is never saved: the process hangs after publishing that chunk, so a kill
 * then lands between the PubAcks and the checkpoint.
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { CheckpointStore, FileCheckpointStore, FileEventStore } from "../../src/index.js"
import { NatsForwarder } from "../../src/nats.js"

const [directory, servers, stream, prefix, stallArg] = process.argv.slice(2)
const stallAt = stallArg === undefined ? undefined : BigInt(stallArg)

const checkpoints = Layer.effect(
  CheckpointStore.CheckpointStore,
  Effect.map(CheckpointStore.CheckpointStore, (store) => ({
    ...store,
    compareAndSet: (name: string, change: CheckpointStore.CheckpointChange) =>
      stallAt !== undefined && change.next >= stallAt ? Effect.never : store.compareAndSet(name, change)
  }))
).pipe(Layer.provide(FileCheckpointStore.layer({ directory: directory! })))

const layers = Layer.mergeAll(
  FileEventStore.layer({ directory: directory! }),
  checkpoints,
  NatsForwarder.connectionLayer({ servers: servers! })
).pipe(Layer.provide(NodeContext.layer))

NatsForwarder.run({ stream: stream!, prefix: prefix!, batchSize: 200, pollInterval: "100 millis" }).pipe(
  Effect.provide(layers),
  NodeRuntime.runMain
)
