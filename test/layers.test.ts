import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Option } from "effect"
import {
  CheckpointStore,
  EventStore,
  FileCheckpointStore,
  FileEventStore,
  FileSnapshotStore,
  MemoryCheckpointStore,
  MemoryEventStore,
  MemorySnapshotStore,
  SnapshotStore,
  StreamId
} from "chronicle"
import { removeAfter, tempDirectory } from "./support/filesystem.js"

const fromEnvironment = (variables: Record<string, string>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(variables))))

const account = StreamId.unsafeMake("account", "1")
const opened = { type: "Opened", data: {} }

describe("Layer constructors: layer(options) everywhere, layerConfig(Config) on every store with settings", () => {
  it.effect("given a directory in the environment, the filesystem stores built by layerConfig keep their data there", () => {
    const directory = tempDirectory("layer-config")
    const stores = Layer.mergeAll(
      FileEventStore.layerConfig(FileEventStore.environment),
      FileCheckpointStore.layerConfig(FileEventStore.environment),
      FileSnapshotStore.layerConfig(FileEventStore.environment)
    ).pipe(
      Layer.provide(NodeContext.layer),
      Layer.provide(fromEnvironment({ CHRONICLE_DIR: directory, CHRONICLE_FSYNC: "false" })),
      Layer.merge(removeAfter(directory))
    )
    const reopened = FileEventStore.layer({ directory }).pipe(Layer.provide(NodeContext.layer))
    return Effect.gen(function*() {
      yield* EventStore.append(account, [opened], { expectedVersion: "NoStream" })
      yield* CheckpointStore.save("balances", 1n)
      expect(yield* CheckpointStore.load("balances")).toEqual(Option.some(1n))
      expect(yield* EventStore.streamVersion(account).pipe(Effect.provide(reopened))).toBe(1)
    }).pipe(Effect.provide(stores))
  })

  it.effect("given a setting the Config cannot read, building the layer fails with a ConfigError, not a defect", () =>
    Effect.gen(function*() {
      const failure = yield* Layer.build(
        FileEventStore.layerConfig(FileEventStore.environment).pipe(
          Layer.provide(NodeContext.layer),
          Layer.provide(fromEnvironment({ CHRONICLE_DIR: "/tmp/unused", CHRONICLE_FSYNC: "sometimes" }))
        )
      ).pipe(Effect.scoped, Effect.flip)
      expect(failure._tag).toBe("ConfigError")
      expect(String(failure)).toContain("CHRONICLE_FSYNC")
    }))

  it.effect("the memory stores are built by calling layer(), each call a fresh store", () =>
    Effect.gen(function*() {
      const first = Layer.mergeAll(MemoryEventStore.layer(), MemoryCheckpointStore.layer(), MemorySnapshotStore.layer())
      yield* Effect.gen(function*() {
        yield* CheckpointStore.save("p", 5n)
        yield* EventStore.append(account, [opened], { expectedVersion: "NoStream" })
      }).pipe(Effect.provide(first))
      const second = Layer.mergeAll(MemoryEventStore.layer(), MemoryCheckpointStore.layer(), MemorySnapshotStore.layer())
      yield* Effect.gen(function*() {
        expect(yield* CheckpointStore.load("p")).toEqual(Option.none())
        expect(yield* EventStore.streamVersion(account)).toBe(0)
        expect(yield* (yield* SnapshotStore.SnapshotStore).load(account)).toEqual(Option.none())
      }).pipe(Effect.provide(second))
    }))
})
