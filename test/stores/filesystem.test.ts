import { eventStoreContract } from "../contract/EventStoreContract.js"
import { snapshotStoreContract } from "../contract/SnapshotStoreContract.js"
import { streamLifecycleContract } from "../contract/StreamLifecycleContract.js"
import { dcbContract } from "../contract/DcbContract.js"
import { subscriptionContract } from "../contract/SubscriptionContract.js"
import { fileReadSideLayer, fileSnapshotLayer, fileStoreLayer } from "../support/filesystem.js"

eventStoreContract("filesystem", fileStoreLayer("contract"))
eventStoreContract("filesystem without fsync, 4 KiB events", fileStoreLayer("contract-nosync", { fsync: false, maxEventBytes: 4096 }), {
  maxEventBytes: 4096
})
snapshotStoreContract("filesystem", fileSnapshotLayer("snapshots"))
streamLifecycleContract("filesystem", fileStoreLayer("lifecycle"), { erase: true })
subscriptionContract("filesystem", fileReadSideLayer("subscriptions"))
dcbContract("filesystem", fileStoreLayer("dcb"))
