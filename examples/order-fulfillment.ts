/**
 * The order-fulfillment example, end to end on the embedded filesystem store
 * (a fresh temporary directory, or the one in CHRONICLE_DIR): starts the
 * process managers in the background, places three orders (one that ships,
 * one out of stock, one whose payment is declined), waits until each is
 * shipped or cancelled, and prints each order's events across the order,
 * stock and payment streams with their correlation and causation ids.
 *
 * Run: npm run example:orders
 */
import { Chunk, Config, Console, Duration, Effect, Either, Layer, Option, Stream } from "effect"
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { EventStore, FileCheckpointStore, FileEventStore, ProjectionRunner, StreamId } from "chronicle"
import type { Event } from "chronicle"
import type { OrderState } from "./OrderFulfillment.js"
import { FulfillmentEvents, orders, processManagers, stock, stockStream } from "./OrderFulfillment.js"

const euros = (cents: number) => `€${(cents / 100).toFixed(2)}`
/** The distinctive tail of a UUIDv7 (its head is a timestamp, alike for events of one run). */
const short = (id: string | undefined) => (id === undefined ? "—" : `…${id.slice(-6)}`)

const isFinal = (state: OrderState) => state.status === "shipped" || state.status === "cancelled"

/** Polls the order until it is shipped or cancelled: every 20 ms, for 10 s at most. */
const settled = (order: StreamId.StreamId) =>
  Effect.gen(function*() {
    for (let polls = 0; polls < 500; polls++) {
      const { state } = yield* orders.load(order)
      if (isFinal(state)) return state
      yield* Effect.sleep(Duration.millis(20))
    }
    return yield* Effect.fail(new Error(`${order} is neither shipped nor cancelled after 10 s`))
  })

const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi
/** Ids cut to their tails, so that a trace line fits on a screen. */
const compact = (text: string) => text.replace(uuid, (id) => short(id))

/** Two lines per event: where and what, then its id and the event that caused it. */
const trace = (event: Event.StoredEvent, log: ReadonlyMap<string, Event.StoredEvent>) => {
  const decoded = FulfillmentEvents.decode(event)
  const { _tag, ...fields } = Either.isRight(decoded) ? decoded.right.data : { _tag: event.type }
  const data = Object.entries(fields).map(([key, value]) => `${key}=${String(value)}`).join(" ")
  const causationId = event.metadata.causationId
  const cause = causationId === undefined ? undefined : log.get(causationId)
  const causedBy = causationId === undefined
    ? "placed by the customer"
    : `caused by ${short(causationId)}${cause === undefined ? "" : ` (@${cause.globalPosition} ${cause.type})`}`
  return [
    `  @${String(event.globalPosition).padEnd(3)} ${_tag.padEnd(19)} ${compact(event.streamId).padEnd(17)} ${compact(data)}`.trimEnd(),
    `       id ${short(event.eventId)}, ${causedBy}`
  ].join("\n")
}

const program = Effect.gen(function*() {
  for (const manager of processManagers) yield* ProjectionRunner.start(manager)

  // Stock is per SKU and shared by every run in the same directory: keyboards
  // are restocked each run, the desk lamp never is.
  yield* stock.handle(stockStream("keyboard"), { _tag: "AddStock", quantity: 3 })

  const checkouts = [
    { label: "ships", customer: "ada", sku: "keyboard", quantity: 1, amount: 49_00, cardLimit: 500_00 },
    { label: "out of stock", customer: "grace", sku: "desk-lamp", quantity: 2, amount: 80_00, cardLimit: 500_00 },
    { label: "payment declined", customer: "alan", sku: "keyboard", quantity: 2, amount: 98_00, cardLimit: 50_00 }
  ] as const

  const placed = yield* Effect.forEach(checkouts, ({ label, ...details }) =>
    Effect.gen(function*() {
      const order = yield* StreamId.generate("order")
      // the checkout's id: every event the order causes carries it
      const correlationId = `checkout-${StreamId.entityId(order).slice(-6)}`
      yield* orders.handle(order, { _tag: "PlaceOrder", ...details }, { metadata: { correlationId } })
      return { label, order, correlationId }
    }))

  const outcomes = yield* Effect.forEach(placed, (entry) => Effect.map(settled(entry.order), (state) => ({ ...entry, state })), {
    concurrency: "unbounded"
  })

  const log = yield* EventStore.readAll().pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
  const byId = new Map(log.map((event) => [event.eventId as string, event]))
  for (const { correlationId, label, order, state } of outcomes) {
    const outcome = state.status === "cancelled" ? `cancelled (${state.reason})` : state.status
    yield* Console.log(`\n${compact(order)}: ${state.customer}, ${state.quantity} × ${state.sku}, ${euros(state.amount)} — ${label}`)
    yield* Console.log(`  correlation ${correlationId}; outcome: ${outcome}`)
    for (const event of log) {
      if (event.metadata.correlationId === correlationId) yield* Console.log(trace(event, byId))
    }
  }
  const keyboards = yield* stock.load(stockStream("keyboard"))
  yield* Console.log(`\nKeyboards available: ${keyboards.state.available}. The log holds ${log.length} events.`)
})

/** The store's directory: CHRONICLE_DIR, or a temporary one removed at the end. */
const Stores = Layer.unwrapScoped(
  Effect.gen(function*() {
    const configured = yield* Config.option(Config.string("CHRONICLE_DIR"))
    const directory = Option.isSome(configured)
      ? configured.value
      : yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "chronicle-orders-" }))
    yield* Console.log(`Store: ${directory}`)
    return Layer.merge(FileEventStore.layer({ directory }), FileCheckpointStore.layer({ directory }))
  })
).pipe(Layer.provide(NodeContext.layer))

program.pipe(Effect.scoped, Effect.provide(Stores), Effect.runPromise).catch((error) => {
  console.error(error)
  process.exit(1)
})
