/** Temporary directories for filesystem store tests, removed when the layer closes. */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import type { CheckpointStore, EventStore, SnapshotStore } from "chronicle"
import { FileCheckpointStore, FileEventStore, FileSnapshotStore } from "chronicle"

/** A fresh directory under the OS temp dir. */
export const tempDirectory = (label: string): string => mkdtempSync(join(tmpdir(), `chronicle-${label}-`))

/** Removes `directory` when the layer closes. */
export const removeAfter = (directory: string) =>
  Layer.scopedDiscard(Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true }))))

/** A filesystem event store in a fresh temp directory. */
export const fileStoreLayer = (
  label: string,
  options: Omit<FileEventStore.FileEventStoreOptions, "directory"> = {}
): Layer.Layer<EventStore.EventStore, unknown> => {
  const directory = tempDirectory(label)
  return Layer.merge(FileEventStore.layer({ ...options, directory }), removeAfter(directory)).pipe(
    Layer.provide(NodeContext.layer)
  )
}

/** A filesystem snapshot store in a fresh temp directory. */
export const fileSnapshotLayer = (label: string): Layer.Layer<SnapshotStore.SnapshotStore, unknown> => {
  const directory = tempDirectory(label)
  return Layer.merge(FileSnapshotStore.layer({ directory }), removeAfter(directory)).pipe(Layer.provide(NodeContext.layer))
}

/** A filesystem event store and its checkpoint store in one fresh temp directory. */
export const fileReadSideLayer = (
  label: string,
  options: Omit<FileEventStore.FileEventStoreOptions, "directory"> = {}
): Layer.Layer<EventStore.EventStore | CheckpointStore.CheckpointStore, unknown> => {
  const directory = tempDirectory(label)
  return Layer.mergeAll(
    FileEventStore.layer({ ...options, directory }),
    FileCheckpointStore.layer({ directory, fsync: options.fsync }),
    removeAfter(directory)
  ).pipe(Layer.provide(NodeContext.layer))
}
