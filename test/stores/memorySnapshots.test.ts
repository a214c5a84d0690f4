import { MemorySnapshotStore } from "chronicle"
import { snapshotStoreContract } from "../contract/SnapshotStoreContract.js"

snapshotStoreContract("memory", MemorySnapshotStore.layer())
