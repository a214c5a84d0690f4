import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Stream } from "effect"
import type { Event } from "chronicle"
import { CheckpointStore, EventStore, MemoryCheckpointStore, MemoryEventStore, Projection, ProjectionRunner, StreamId } from "chronicle"
import { DeciderSpec, ProjectionSpec } from "chronicle/testing"
import type { OrderCommand } from "../../examples/OrderFulfillment.js"
import {
  Compensation,
  Fulfillment,
  FulfillmentEvents,
  InvalidAmount,
  InvalidOrder,
  InvalidOrderTransition,
  InvalidQuantity,
  Order,
  OrderAlreadyPlaced,
  OrderCancelled,
  OrderEvents,
  OrderPaid,
  OrderPlaced,
  orders,
  OrderShipped,
  OrderStockReserved,
  orderStream,
  OutOfStock,
  Payment,
  PaymentAlreadyCharged,
  PaymentCharged,
  PaymentDeclined,
  PaymentDeclinedEvent,
  PaymentEvents,
  payments,
  paymentStream,
  Stock,
  stock,
  StockAdded,
  StockEvents,
  StockReleased,
  StockReserved,
  stockStream
} from "../../examples/OrderFulfillment.js"

// deciders --------------------------------------------------------------------

describe("Order", () => {
  const spec = DeciderSpec.make(Order, { codec: OrderEvents })
  const details = { customer: "ada", sku: "keyboard", quantity: 1, amount: 4900, cardLimit: 50000 }
  const place: OrderCommand = { _tag: "PlaceOrder", ...details }
  const placed = OrderPlaced.make(details)
  const reserved = OrderStockReserved.make({})
  const paid = OrderPaid.make({ amount: 4900 })
  const shipped = OrderShipped.make({})

  it.effect("given nothing, when placing an order, then it is placed", () =>
    spec.given([]).when(place).then([placed]))

  it.effect("given a placed order, when placing it again with the same details, then nothing happens", () =>
    spec.given([placed]).when(place).thenNothing())

  it.effect("given a placed order, when placing it again with other details, then OrderAlreadyPlaced", () =>
    spec.given([placed]).when({ ...place, quantity: 2 }).then(new OrderAlreadyPlaced()))

  it.effect("given nothing, when placing an order of a fractional quantity, then InvalidOrder", () =>
    spec.given([]).when({ ...place, quantity: 1.5 }).thenFails((error) => error._tag === "InvalidOrder"))

  it.effect("given nothing, when placing an order without a SKU, then InvalidOrder", () =>
    spec.given([]).when({ ...place, sku: "" }).then(new InvalidOrder({ reason: "the SKU is missing" })))

  it.effect("given a placed order, when marking its stock reserved, then it is reserved", () =>
    spec.given([placed]).when({ _tag: "MarkStockReserved" }).then([reserved]))

  it.effect("given a reserved order, when marking its stock reserved again, then nothing happens", () =>
    spec.given([placed, reserved]).when({ _tag: "MarkStockReserved" }).thenNothing())

  it.effect("given a shipped order, when marking its stock reserved (a late redelivery), then nothing happens", () =>
    spec.given([placed, reserved, paid, shipped]).when({ _tag: "MarkStockReserved" }).thenNothing())

  it.effect("given no order, when marking its stock reserved, then InvalidOrderTransition", () =>
    spec.given([]).when({ _tag: "MarkStockReserved" })
      .then(new InvalidOrderTransition({ command: "MarkStockReserved", status: "none" })))

  it.effect("given a cancelled order, when marking its stock reserved, then InvalidOrderTransition", () =>
    spec.given([placed, OrderCancelled.make({ reason: "changed my mind" })]).when({ _tag: "MarkStockReserved" })
      .then(new InvalidOrderTransition({ command: "MarkStockReserved", status: "cancelled" })))

  it.effect("given a placed order without stock, when marking it paid, then InvalidOrderTransition", () =>
    spec.given([placed]).when({ _tag: "MarkPaid" })
      .then(new InvalidOrderTransition({ command: "MarkPaid", status: "placed" })))

  it.effect("given a reserved order, when marking it paid, then it is paid for its amount", () =>
    spec.given([placed, reserved]).when({ _tag: "MarkPaid" }).then([paid]))

  it.effect("given a paid order, when marking it paid again, then nothing happens", () =>
    spec.given([placed, reserved, paid]).when({ _tag: "MarkPaid" }).thenNothing())

  it.effect("given a reserved order, when shipping it unpaid, then InvalidOrderTransition", () =>
    spec.given([placed, reserved]).when({ _tag: "ShipOrder" })
      .then(new InvalidOrderTransition({ command: "ShipOrder", status: "reserved" })))

  it.effect("given a paid order, when shipping it, then it is shipped", () =>
    spec.given([placed, reserved, paid]).when({ _tag: "ShipOrder" }).then([shipped]))

  it.effect("given a shipped order, when shipping it again, then nothing happens", () =>
    spec.given([placed, reserved, paid, shipped]).when({ _tag: "ShipOrder" }).thenNothing())

  it.effect("given a reserved order, when cancelling it, then it is cancelled with the reason", () =>
    spec.given([placed, reserved]).when({ _tag: "CancelOrder", reason: "out of stock" })
      .thenState({ ...details, status: "cancelled", reason: "out of stock" }))

  it.effect("given a cancelled order, when cancelling it again, then nothing happens", () =>
    spec.given([placed, OrderCancelled.make({ reason: "first" })]).when({ _tag: "CancelOrder", reason: "second" })
      .thenNothing())

  it.effect("given a paid order, when cancelling it, then InvalidOrderTransition (refunds are not modelled)", () =>
    spec.given([placed, reserved, paid]).when({ _tag: "CancelOrder", reason: "too late" })
      .then(new InvalidOrderTransition({ command: "CancelOrder", status: "paid" })))

  it.effect("given a shipped order, when cancelling it, then InvalidOrderTransition", () =>
    spec.given([placed, reserved, paid, shipped]).when({ _tag: "CancelOrder", reason: "too late" })
      .then(new InvalidOrderTransition({ command: "CancelOrder", status: "shipped" })))
})

describe("Stock", () => {
  const spec = DeciderSpec.make(Stock, { codec: StockEvents })
  const added = StockAdded.make({ quantity: 3 })
  const reserved = StockReserved.make({ orderId: "o1", quantity: 2 })
  const released = StockReleased.make({ orderId: "o1", quantity: 2 })

  it.effect("given nothing, when adding stock, then it is available", () =>
    spec.given([]).when({ _tag: "AddStock", quantity: 3 }).thenState({ available: 3, reservations: {} }))

  it.effect("given nothing, when adding a non-positive quantity, then InvalidQuantity", () =>
    spec.given([]).when({ _tag: "AddStock", quantity: 0 }).then(new InvalidQuantity({ quantity: 0 })))

  it.effect("given 3 units, when reserving 2 for an order, then they are reserved and 1 remains", () =>
    spec.given([added]).when({ _tag: "ReserveStock", orderId: "o1", quantity: 2 })
      .thenState({ available: 1, reservations: { o1: { quantity: 2, released: false } } }))

  it.effect("given 3 units, when reserving exactly 3, then they are reserved", () =>
    spec.given([added]).when({ _tag: "ReserveStock", orderId: "o1", quantity: 3 })
      .then([StockReserved.make({ orderId: "o1", quantity: 3 })]))

  it.effect("given 3 units, when reserving 4, then OutOfStock and nothing is reserved", () =>
    spec.given([added]).when({ _tag: "ReserveStock", orderId: "o1", quantity: 4 })
      .then(new OutOfStock({ orderId: "o1", requested: 4, available: 3 })))

  it.effect("given no stock at all, when reserving, then OutOfStock", () =>
    spec.given([]).when({ _tag: "ReserveStock", orderId: "o1", quantity: 1 })
      .then(new OutOfStock({ orderId: "o1", requested: 1, available: 0 })))

  it.effect("given an order's reservation, when reserving for it again, then nothing happens", () =>
    spec.given([added, reserved]).when({ _tag: "ReserveStock", orderId: "o1", quantity: 2 }).thenNothing())

  it.effect("given an order's released reservation, when reserving for it again (a redelivery), then nothing happens", () =>
    spec.given([added, reserved, released]).when({ _tag: "ReserveStock", orderId: "o1", quantity: 2 }).thenNothing())

  it.effect("given an order's reservation, when another order reserves more than remains, then OutOfStock", () =>
    spec.given([added, reserved]).when({ _tag: "ReserveStock", orderId: "o2", quantity: 2 })
      .then(new OutOfStock({ orderId: "o2", requested: 2, available: 1 })))

  it.effect("given 3 units, when reserving a fractional quantity, then InvalidQuantity", () =>
    spec.given([added]).when({ _tag: "ReserveStock", orderId: "o1", quantity: 0.5 })
      .then(new InvalidQuantity({ quantity: 0.5 })))

  it.effect("given an order's reservation, when releasing it, then its units are available again", () =>
    spec.given([added, reserved]).when({ _tag: "ReleaseStock", orderId: "o1" }).then([released]))

  it.effect("given a released reservation, when releasing it again, then nothing happens", () =>
    spec.given([added, reserved, released]).when({ _tag: "ReleaseStock", orderId: "o1" }).thenNothing())

  it.effect("given no reservation for the order, when releasing, then nothing happens", () =>
    spec.given([added]).when({ _tag: "ReleaseStock", orderId: "o1" }).thenNothing())
})

describe("Payment", () => {
  const spec = DeciderSpec.make(Payment, { codec: PaymentEvents })
  const charged = PaymentCharged.make({ orderId: "o1", amount: 4900 })
  const declined = PaymentDeclinedEvent.make({ orderId: "o1", amount: 9800, limit: 5000 })

  it.effect("given nothing, when charging within the card limit, then the payment is charged", () =>
    spec.given([]).when({ _tag: "ChargePayment", orderId: "o1", amount: 4900, cardLimit: 5000 }).then([charged]))

  it.effect("given nothing, when charging exactly the card limit, then the payment is charged", () =>
    spec.given([]).when({ _tag: "ChargePayment", orderId: "o1", amount: 5000, cardLimit: 5000 })
      .then([PaymentCharged.make({ orderId: "o1", amount: 5000 })]))

  it.effect("given nothing, when charging over the card limit, then PaymentDeclined", () =>
    spec.given([]).when({ _tag: "ChargePayment", orderId: "o1", amount: 9800, cardLimit: 5000 })
      .then(new PaymentDeclined({ orderId: "o1", amount: 9800, limit: 5000 })))

  it.effect("given nothing, when charging nothing, then InvalidAmount", () =>
    spec.given([]).when({ _tag: "ChargePayment", orderId: "o1", amount: 0, cardLimit: 5000 })
      .then(new InvalidAmount({ amount: 0 })))

  it.effect("given a charged payment, when charging again, then nothing happens", () =>
    spec.given([charged]).when({ _tag: "ChargePayment", orderId: "o1", amount: 4900, cardLimit: 5000 }).thenNothing())

  it.effect("given a declined payment, when charging again, then it is declined again", () =>
    spec.given([declined]).when({ _tag: "ChargePayment", orderId: "o1", amount: 9800, cardLimit: 5000 })
      .then(new PaymentDeclined({ orderId: "o1", amount: 9800, limit: 5000 })))

  it.effect("given nothing, when recording a decline, then PaymentDeclined is recorded", () =>
    spec.given([]).when({ _tag: "RecordDecline", orderId: "o1", amount: 9800, limit: 5000 }).then([declined]))

  it.effect("given a declined payment, when recording the decline again, then nothing happens", () =>
    spec.given([declined]).when({ _tag: "RecordDecline", orderId: "o1", amount: 9800, limit: 5000 }).thenNothing())

  it.effect("given a charged payment, when recording a decline, then PaymentAlreadyCharged", () =>
    spec.given([charged]).when({ _tag: "RecordDecline", orderId: "o1", amount: 4900, limit: 0 })
      .then(new PaymentAlreadyCharged({ orderId: "o1" })))
})

// process managers, one reaction at a time ------------------------------------

const readLog = EventStore.readAll().pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
const typesOf = (streamId: StreamId.StreamId) =>
  EventStore.read(streamId).pipe(Stream.map((event) => event.type), Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
const lastOf = (streamId: StreamId.StreamId) =>
  EventStore.read(streamId).pipe(Stream.runLast, Effect.map((last) => last._tag === "Some" ? last.value : undefined))

/**
 * ProjectionSpec runs every scenario on memory stores of its own, but its type
 * still asks for the EventStore the process managers send commands through.
 * This satisfies the type; the spec's own store is the one used.
 */
const specStores = Effect.provide(Layer.merge(MemoryEventStore.layer(), MemoryCheckpointStore.layer()))

const keyboard = "stock-keyboard"
const placedOrder = (quantity: number, cardLimit = 50000, sku = "keyboard") =>
  OrderPlaced.make({ customer: "ada", sku, quantity, amount: quantity * 4900, cardLimit })

describe("Fulfillment", () => {
  const spec = ProjectionSpec.make(Fulfillment, FulfillmentEvents)

  it.effect("given 3 keyboards, when an order for 2 is placed, then 2 are reserved for it, caused by the order", () =>
    spec.given([[keyboard, StockAdded.make({ quantity: 3 })]]).when([["order-o1", placedOrder(2)]]).then(
      Effect.gen(function*() {
        const [placed] = yield* EventStore.read(StreamId.unsafeParse("order-o1")).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
        const reservation = yield* lastOf(StreamId.unsafeParse(keyboard))
        expect(reservation?.type).toBe("StockReserved")
        expect(reservation?.data).toEqual({ orderId: "o1", quantity: 2 })
        expect(reservation?.metadata).toEqual({ correlationId: placed!.eventId, causationId: placed!.eventId })
      })
    ).pipe(specStores))

  it.effect("given no desk lamps, when an order for one is placed, then the order is cancelled as out of stock", () =>
    spec.given([]).when([["order-o1", placedOrder(1, 50000, "desk-lamp")]]).then(
      Effect.gen(function*() {
        expect(yield* typesOf(StreamId.unsafeParse("order-o1"))).toEqual(["OrderPlaced", "OrderCancelled"])
        expect(yield* typesOf(StreamId.unsafeParse("stock-desk-lamp"))).toEqual([])
        const { state } = yield* orders.load(orderStream("o1"))
        expect(state.reason).toBe("out of stock: 1 requested, 0 available")
      })
    ).pipe(specStores))

  it.effect("given a placed order whose stock was reserved, then it is marked reserved and charged", () =>
    spec.given([
      [keyboard, StockAdded.make({ quantity: 3 })],
      ["order-o1", placedOrder(1)],
      [keyboard, StockReserved.make({ orderId: "o1", quantity: 1 })]
    ]).then(Effect.gen(function*() {
      // the OrderPlaced reaction found the reservation made: it reserved nothing more
      expect(yield* typesOf(StreamId.unsafeParse(keyboard))).toEqual(["StockAdded", "StockReserved"])
      // (the spec catches up twice, and the second reacts to what the first caused: paid and shipped)
      expect((yield* typesOf(orderStream("o1"))).slice(0, 2)).toEqual(["OrderPlaced", "OrderStockReserved"])
      expect(yield* typesOf(paymentStream("o1"))).toEqual(["PaymentCharged"])
    })).pipe(specStores))

  it.effect("given an order over its card limit whose stock was reserved, then the decline is recorded as an event", () =>
    spec.given([
      [keyboard, StockAdded.make({ quantity: 3 })],
      ["order-o1", placedOrder(2, 5000)],
      [keyboard, StockReserved.make({ orderId: "o1", quantity: 2 })]
    ]).then(Effect.gen(function*() {
      const decline = yield* lastOf(paymentStream("o1"))
      expect(decline?.type).toBe("PaymentDeclined")
      expect(decline?.data).toEqual({ orderId: "o1", amount: 9800, limit: 5000 })
    })).pipe(specStores))

  it.effect("given an order the customer cancelled, when stock is reserved for it, then the stock is released", () =>
    spec.given([
      [keyboard, StockAdded.make({ quantity: 3 })],
      ["order-o1", placedOrder(2)],
      ["order-o1", OrderCancelled.make({ reason: "changed my mind" })]
    ]).when([[keyboard, StockReserved.make({ orderId: "o1", quantity: 2 })]]).then(
      Effect.gen(function*() {
        expect(yield* typesOf(StreamId.unsafeParse(keyboard))).toEqual(["StockAdded", "StockReserved", "StockReleased"])
        expect((yield* stock.load(stockStream("keyboard"))).state.available).toBe(3)
        expect(yield* typesOf(paymentStream("o1"))).toEqual([])
      })
    ).pipe(specStores))

  it.effect("given a charged payment, when it is charged, then the order is paid and shipped", () =>
    spec.given([["order-o1", placedOrder(1)], ["order-o1", OrderStockReserved.make({})]])
      .when([["payment-o1", PaymentCharged.make({ orderId: "o1", amount: 4900 })]])
      .then(Effect.map(typesOf(orderStream("o1")), (types) =>
        expect(types).toEqual(["OrderPlaced", "OrderStockReserved", "OrderPaid", "OrderShipped"]))).pipe(specStores))
})

describe("Compensation", () => {
  const spec = ProjectionSpec.make(Compensation, FulfillmentEvents)

  it.effect("given a reserved order, when its payment is declined, then its stock is released and it is cancelled", () =>
    spec.given([
      [keyboard, StockAdded.make({ quantity: 3 })],
      ["order-o1", placedOrder(2, 5000)],
      [keyboard, StockReserved.make({ orderId: "o1", quantity: 2 })],
      ["order-o1", OrderStockReserved.make({})]
    ]).when([["payment-o1", PaymentDeclinedEvent.make({ orderId: "o1", amount: 9800, limit: 5000 })]]).then(
      Effect.gen(function*() {
        expect(yield* typesOf(StreamId.unsafeParse(keyboard))).toEqual(["StockAdded", "StockReserved", "StockReleased"])
        const { state } = yield* orders.load(orderStream("o1"))
        expect(state.status).toBe("cancelled")
        expect(state.reason).toBe("payment declined: 9800 is over the card limit of 5000")
      })
    ).pipe(specStores))

  it.effect("given no such order, when a payment is declined, then the process manager parks on it", () =>
    spec.given([]).when([["payment-o9", PaymentDeclinedEvent.make({ orderId: "o9", amount: 1, limit: 0 })]])
      .thenParks((parked) => parked.type === "PaymentDeclined" && parked.cause instanceof InvalidOrderTransition)
      .pipe(specStores))
})

// process managers, end to end ------------------------------------------------

const stores = Layer.merge(MemoryEventStore.layer(), MemoryCheckpointStore.layer())

/** Catches both process managers up, again and again, until a round appends nothing. */
const settle = (fulfillment: Projection.Projection<unknown, EventStore.EventStore> = Fulfillment) =>
  Effect.gen(function*() {
    let head = yield* EventStore.headPosition
    for (let round = 0; round < 50; round++) {
      yield* ProjectionRunner.catchUp(fulfillment)
      yield* ProjectionRunner.catchUp(Compensation)
      const reached = yield* EventStore.headPosition
      if (reached === head) return head
      head = reached
    }
    return yield* Effect.die(new Error("the process managers did not settle in 50 rounds"))
  })

/** Three checkouts: one ships, one is out of stock, one's payment is declined. Only the first names its correlation id. */
const shop = Effect.gen(function*() {
  yield* stock.handle(stockStream("keyboard"), { _tag: "AddStock", quantity: 3 })
  yield* orders.handle(orderStream("ships"), {
    _tag: "PlaceOrder",
    customer: "ada",
    sku: "keyboard",
    quantity: 1,
    amount: 4900,
    cardLimit: 50000
  }, { metadata: { correlationId: "checkout-1" } })
  yield* orders.handle(orderStream("lamp"), {
    _tag: "PlaceOrder",
    customer: "grace",
    sku: "desk-lamp",
    quantity: 2,
    amount: 8000,
    cardLimit: 50000
  })
  yield* orders.handle(orderStream("declined"), {
    _tag: "PlaceOrder",
    customer: "alan",
    sku: "keyboard",
    quantity: 2,
    amount: 9800,
    cardLimit: 5000
  })
})

/** The types of every stream the example writes to, for comparing whole outcomes. */
const outcome = Effect.gen(function*() {
  const streams = [
    ...["ships", "lamp", "declined"].flatMap((id) => [orderStream(id), paymentStream(id)]),
    stockStream("keyboard"),
    stockStream("desk-lamp")
  ]
  return Object.fromEntries(yield* Effect.forEach(streams, (streamId) => Effect.map(typesOf(streamId), (types) => [streamId, types])))
})

/** Whether an event concerns the order `orderId`: on its streams, or a stock event naming it. */
const concerns = (orderId: string) => (event: Event.StoredEvent) =>
  event.streamId === orderStream(orderId) || event.streamId === paymentStream(orderId) ||
  (event.streamId.startsWith("stock-") && (event.data as { orderId?: string }).orderId === orderId)

describe("order fulfillment end to end", () => {
  it.effect("given stock and a card within its limit, when an order is placed, then it is reserved, charged and shipped", () =>
    Effect.gen(function*() {
      yield* shop
      yield* settle()
      const order = yield* orders.load(orderStream("ships"))
      expect(order.state.status).toBe("shipped")
      expect(yield* typesOf(orderStream("ships"))).toEqual(["OrderPlaced", "OrderStockReserved", "OrderPaid", "OrderShipped"])
      expect((yield* payments.load(paymentStream("ships"))).state).toEqual({ status: "charged", amount: 4900, limit: 0 })
      const keyboards = yield* stock.load(stockStream("keyboard"))
      expect(keyboards.state.reservations["ships"]).toEqual({ quantity: 1, released: false })
      expect(keyboards.state.available).toBe(2)
    }).pipe(Effect.provide(stores)))

  it.effect("given no desk lamps, when an order for two is placed, then it is cancelled and nothing is reserved or charged", () =>
    Effect.gen(function*() {
      yield* shop
      yield* settle()
      const order = yield* orders.load(orderStream("lamp"))
      expect(order.state.status).toBe("cancelled")
      expect(order.state.reason).toBe("out of stock: 2 requested, 0 available")
      expect(yield* typesOf(stockStream("desk-lamp"))).toEqual([])
      expect(yield* typesOf(paymentStream("lamp"))).toEqual([])
    }).pipe(Effect.provide(stores)))

  it.effect("given a card under the amount, when an order is placed, then the payment is declined, the stock released and the order cancelled", () =>
    Effect.gen(function*() {
      yield* shop
      yield* settle()
      const order = yield* orders.load(orderStream("declined"))
      expect(order.state.status).toBe("cancelled")
      expect(order.state.reason).toContain("payment declined")
      expect(yield* typesOf(orderStream("declined"))).toEqual(["OrderPlaced", "OrderStockReserved", "OrderCancelled"])
      expect(yield* typesOf(paymentStream("declined"))).toEqual(["PaymentDeclined"])
      const keyboards = yield* stock.load(stockStream("keyboard"))
      expect(keyboards.state.reservations["declined"]).toEqual({ quantity: 2, released: true })
      // the shipped order's unit stays reserved; the declined order's two are back
      expect(keyboards.state.available).toBe(2)
    }).pipe(Effect.provide(stores)))

  it.effect("every event an order causes carries its correlation id and a causation id of an event in the log", () =>
    Effect.gen(function*() {
      yield* shop
      yield* settle()
      const log = yield* readLog
      const byId = new Map(log.map((event) => [event.eventId as string, event]))
      for (const orderId of ["ships", "lamp", "declined"]) {
        const [placed, ...caused] = log.filter(concerns(orderId))
        expect(placed?.type).toBe("OrderPlaced")
        // the checkout's own correlation id when it gave one, the OrderPlaced event's id otherwise
        const correlationId = placed!.metadata.correlationId ?? placed!.eventId
        expect(caused.length).toBeGreaterThan(0)
        expect(log.filter((event) => event.metadata.correlationId === correlationId && event !== placed)).toEqual(caused)
        for (const event of caused) {
          const cause = byId.get(event.metadata.causationId ?? "")
          expect(cause, `the cause of ${event.type} ${event.eventId}`).toBeDefined()
          expect(cause!.globalPosition < event.globalPosition).toBe(true)
          expect(cause === placed || cause!.metadata.correlationId === correlationId).toBe(true)
        }
      }
      expect(log.find((event) => event.type === "OrderShipped")?.metadata.correlationId).toBe("checkout-1")
    }).pipe(Effect.provide(stores)))

  it.effect("given every order settled, when the process managers forget their checkpoints and run again, then nothing changes", () =>
    Effect.gen(function*() {
      yield* shop
      yield* settle()
      const before = yield* readLog
      const checkpoints = yield* CheckpointStore.CheckpointStore
      yield* checkpoints.remove(Fulfillment.name)
      yield* checkpoints.remove(Compensation.name)
      yield* settle()
      expect(yield* readLog).toEqual(before)
    }).pipe(Effect.provide(stores)))

  it.effect("when every reaction runs twice, as a redelivery mid-flight would, then the outcome is the same as once", () =>
    Effect.gen(function*() {
      const once = yield* Effect.zipRight(Effect.zipRight(shop, settle()), outcome).pipe(Effect.provide(stores))
      const stuttering = Projection.make({
        ...Fulfillment,
        handle: (event) => Effect.zipRight(Fulfillment.handle(event), Fulfillment.handle(event))
      })
      const twice = yield* Effect.zipRight(Effect.zipRight(shop, settle(stuttering)), outcome).pipe(Effect.provide(stores))
      expect(twice).toEqual(once)
      expect(once[orderStream("ships")]).toEqual(["OrderPlaced", "OrderStockReserved", "OrderPaid", "OrderShipped"])
    }))
})
