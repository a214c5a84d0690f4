// The runtime of `chronicle/nats` (its types are those of ../../nats.ts): checks its optional peers first.
import * as Peers from "../peers.js"

const entry: typeof import("../../nats.js") = await Peers.load({
  entry: "chronicle/nats",
  peers: ["@nats-io/jetstream", "@nats-io/transport-node"],
  load: () => import("../../nats.js")
})

export const { NatsForwarder } = entry
