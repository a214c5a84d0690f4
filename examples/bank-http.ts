/**
 * The bank account as an HTTP service (examples/BankApi.ts) on the embedded
 * store: it starts the server, then plays a client against it over a real
 * socket (open, deposit with If-Match, a stale If-Match, an overdraft, a
 * deleted account, a bad payload, the balances query, a stream page) and
 * prints each exchange. With --serve it keeps serving on PORT (default 3000).
 *
 * Run: npm run example:http        (or: npm run example:http -- --serve)
 */
import { HttpApiBuilder, HttpServer } from "@effect/platform"
import { NodeContext, NodeHttpServer } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { createServer } from "node:http"
import { FileEventStore } from "chronicle"
import { BankApiLive } from "./BankApi.js"

const serve = process.argv.includes("--serve")
const port = serve ? Number(process.env.PORT ?? 3000) : 0

const Store = FileEventStore.layerConfig(FileEventStore.environment).pipe(Layer.provide(NodeContext.layer))

const Server = HttpApiBuilder.serve().pipe(
  Layer.provide(BankApiLive),
  Layer.provide(Store),
  HttpServer.withLogAddress,
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" }))
)

const exchange = (base: string) => async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  const shown = Object.entries(headers).map(([name, value]) => ` ${name}: ${value}`).join("")
  const etag = response.headers.get("etag")
  console.log(`${method} ${path}${shown} -> ${response.status}${etag === null ? "" : ` ETag ${etag}`} ${response.headers.get("content-type") ?? ""}`)
  if (text.length > 0) console.log(`  ${text.length > 300 ? `${text.slice(0, 300)}…` : text}`)
  return { status: response.status, etag }
}

const client = (base: string) =>
  Effect.promise(async () => {
    const call = exchange(base)
    const id = `http-${Date.now()}`
    const opened = await call("PUT", `/accounts/${id}`, { owner: "Ada Lovelace", currency: "EUR" }, { "if-none-match": "*" })
    const deposited = await call("POST", `/accounts/${id}/deposits`, { amount: 100_00 }, { "if-match": opened.etag ?? "" })
    await call("POST", `/accounts/${id}/deposits`, { amount: 5_00 }, { "if-match": opened.etag ?? "" })
    await call("POST", `/accounts/${id}/withdrawals`, { amount: 1_000_00 }, { "if-match": deposited.etag ?? "" })
    await call("POST", `/accounts/${id}/deposits`, { amount: "ten" })
    await call("PUT", `/accounts/${id}`, { owner: "Ada Lovelace", currency: "EUR" }, { "if-none-match": "*" })
    await call("GET", `/accounts/${id}`)
    await call("GET", `/balances?min=1`)
    await call("GET", `/streams/account-${id}?limit=2&direction=backward`)
    await call("DELETE", `/accounts/${id}`)
    await call("POST", `/accounts/${id}/deposits`, { amount: 1_00 })
  })

const program = Effect.gen(function*() {
  const server = yield* HttpServer.HttpServer
  const address = server.address._tag === "TcpAddress" ? `http://127.0.0.1:${server.address.port}` : ""
  if (serve) {
    yield* Console.log(`serving the bank on ${address} (Ctrl-C to stop)`)
    return yield* Effect.never
  }
  yield* client(address)
})

program.pipe(Effect.provide(Server), Effect.scoped, Effect.runPromise).catch((error) => {
  console.error(error)
  process.exit(1)
})
