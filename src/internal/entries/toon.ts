// The runtime of `chronicle/toon` (its types are those of ../../toonFormat.ts): checks its optional peer first.
import * as Peers from "../peers.js"

const entry: typeof import("../../toonFormat.js") = await Peers.load({
  entry: "chronicle/toon",
  peers: ["@toon-format/toon"],
  load: () => import("../../toonFormat.js")
})

export const { Toon } = entry
