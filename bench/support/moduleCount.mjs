/* global process, console */
/**
 * Counts the modules a process loads, by package: `node --import
 * ./bench/support/moduleCount.mjs script.mjs` prints, once `script.mjs` has
 * run, `modules <total>` and one `<package> <count>` line a package (its own
 * files are `(app)`). The hooks run on a thread of their own and post every
 * module they load here.
 */
import { register } from "node:module"
import { MessageChannel } from "node:worker_threads"

const { port1, port2 } = new MessageChannel()
const loaded = new Set()
port1.on("message", (url) => loaded.add(url))
port1.unref()

const hooks = `
let port
export const initialize = (data) => { port = data.port }
export const load = async (url, context, next) => {
  port.postMessage(url)
  return next(url, context)
}
`
register(`data:text/javascript,${encodeURIComponent(hooks)}`, import.meta.url, { data: { port: port2 }, transferList: [port2] })

/** The package a module's URL belongs to: the last `node_modules/<name>` (or `@scope/name`) in it. */
const packageOf = (url) => {
  if (url.startsWith("node:")) return "(node)"
  const match = /.*node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
  return match === null ? "(app)" : match[1]
}

process.on("beforeExit", () => {
  if (loaded.size === 0) return
  const byPackage = new Map()
  for (const url of loaded) byPackage.set(packageOf(url), (byPackage.get(packageOf(url)) ?? 0) + 1)
  const total = [...byPackage].filter(([name]) => name !== "(node)").reduce((sum, [, count]) => sum + count, 0)
  console.log(`modules ${total}`)
  for (const [name, count] of [...byPackage].sort((a, b) => b[1] - a[1])) console.log(`${name} ${count}`)
  loaded.clear()
})
