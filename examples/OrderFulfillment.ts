/**
 * Order fulfillment: three deciders (an order, the stock of one SKU, the
 * payment of one order) and the process managers that drive an order from
 * placed to shipped, or compensate when it cannot be.
 *
 *   OrderPlaced     → reserve the stock             → StockReserved   (OutOfStock: cancel the order)
 *   StockReserved   → mark the order, charge it     → PaymentCharged  (declined: record PaymentDeclined)
 *   PaymentCharged  → mark the order paid, ship it  → OrderShipped
 *   PaymentDeclined → release the stock, cancel the order
 *
 * Process managers get every event at least once, so every command they send
 * is idempotent in its decider: a repeated command decides no events. Amounts
 * are integer cents.
 */
import { Effect, Schema } from "effect"
import { CommandHandler, Decider, EventCodec, ProcessManager, StreamId } from "chronicle"

const Quantity = Schema.Int.pipe(Schema.positive())
const Cents = Schema.Int.pipe(Schema.positive())

// streams ---------------------------------------------------------------------

/** The stream of an order: `order-<orderId>`. */
export const orderStream = (orderId: string): StreamId.StreamId => StreamId.unsafeMake("order", orderId)
/** The stream of one SKU's stock: `stock-<sku>`. */
export const stockStream = (sku: string): StreamId.StreamId => StreamId.unsafeMake("stock", sku)
/** The stream of an order's payment: `payment-<orderId>`. */
export const paymentStream = (orderId: string): StreamId.StreamId => StreamId.unsafeMake("payment", orderId)

// order -----------------------------------------------------------------------

export const OrderPlaced = Schema.TaggedStruct("OrderPlaced", {
  customer: Schema.NonEmptyString,
  sku: Schema.NonEmptyString,
  quantity: Quantity,
  amount: Cents,
  /** The most the customer's card accepts in one charge. */
  cardLimit: Schema.Int.pipe(Schema.nonNegative())
})
export const OrderStockReserved = Schema.TaggedStruct("OrderStockReserved", {})
export const OrderPaid = Schema.TaggedStruct("OrderPaid", { amount: Cents })
export const OrderShipped = Schema.TaggedStruct("OrderShipped", {})
export const OrderCancelled = Schema.TaggedStruct("OrderCancelled", { reason: Schema.String })

export const OrderEvent = Schema.Union(OrderPlaced, OrderStockReserved, OrderPaid, OrderShipped, OrderCancelled)
export type OrderEvent = typeof OrderEvent.Type
export const OrderEvents = EventCodec.make(OrderEvent)

export type OrderCommand =
  | {
    readonly _tag: "PlaceOrder"
    readonly customer: string
    readonly sku: string
    readonly quantity: number
    readonly amount: number
    readonly cardLimit: number
  }
  | { readonly _tag: "MarkStockReserved" }
  | { readonly _tag: "MarkPaid" }
  | { readonly _tag: "ShipOrder" }
  | { readonly _tag: "CancelOrder"; readonly reason: string }

export type OrderStatus = "none" | "placed" | "reserved" | "paid" | "shipped" | "cancelled"

export interface OrderState {
  readonly status: OrderStatus
  readonly customer: string
  readonly sku: string
  readonly quantity: number
  readonly amount: number
  readonly cardLimit: number
  /** Why the order was cancelled; empty otherwise. */
  readonly reason: string
}

/** A new order whose details do not make sense (an empty SKU, a fractional quantity, …). */
export class InvalidOrder extends Schema.TaggedError<InvalidOrder>()("InvalidOrder", { reason: Schema.String }) {}
/** The order was already placed, with other details. */
export class OrderAlreadyPlaced extends Schema.TaggedError<OrderAlreadyPlaced>()("OrderAlreadyPlaced", {}) {}
/** A command the order cannot take in its current status (shipping an unpaid order, cancelling a shipped one). */
export class InvalidOrderTransition extends Schema.TaggedError<InvalidOrderTransition>()("InvalidOrderTransition", {
  command: Schema.String,
  status: Schema.String
}) {
  override get message() {
    return `An order that is ${this.status} cannot take ${this.command}`
  }
}

export type OrderError = InvalidOrder | OrderAlreadyPlaced | InvalidOrderTransition

const isPositiveInt = (n: number) => Number.isSafeInteger(n) && n > 0

const place = (command: Extract<OrderCommand, { _tag: "PlaceOrder" }>, state: OrderState) =>
  Effect.gen(function*() {
    const { _tag, ...details } = command
    if (state.status !== "none") {
      const same = details.customer === state.customer && details.sku === state.sku &&
        details.quantity === state.quantity && details.amount === state.amount && details.cardLimit === state.cardLimit
      return same ? [] : yield* new OrderAlreadyPlaced()
    }
    if (details.customer.length === 0) return yield* new InvalidOrder({ reason: "the customer is missing" })
    if (details.sku.length === 0) return yield* new InvalidOrder({ reason: "the SKU is missing" })
    if (!isPositiveInt(details.quantity)) {
      return yield* new InvalidOrder({ reason: `the quantity must be a positive integer, got ${details.quantity}` })
    }
    if (!isPositiveInt(details.amount)) {
      return yield* new InvalidOrder({ reason: `the amount must be a positive number of cents, got ${details.amount}` })
    }
    if (!Number.isSafeInteger(details.cardLimit) || details.cardLimit < 0) {
      return yield* new InvalidOrder({ reason: `the card limit must be a whole number of cents, got ${details.cardLimit}` })
    }
    return [OrderPlaced.make(details)]
  })

/**
 * Moves the order from `from` to the next status with `event`; a command
 * already applied (the order is at or past `done`) decides nothing.
 */
const advance = (
  command: OrderCommand["_tag"],
  state: OrderState,
  from: OrderStatus,
  done: ReadonlyArray<OrderStatus>,
  event: OrderEvent
): Effect.Effect<ReadonlyArray<OrderEvent>, InvalidOrderTransition> =>
  state.status === from
    ? Effect.succeed([event])
    : done.includes(state.status)
    ? Effect.succeed([])
    : Effect.fail(new InvalidOrderTransition({ command, status: state.status }))

const decideOrder = (command: OrderCommand, state: OrderState): Effect.Effect<ReadonlyArray<OrderEvent>, OrderError> => {
  switch (command._tag) {
    case "PlaceOrder":
      return place(command, state)
    case "MarkStockReserved":
      return advance(command._tag, state, "placed", ["reserved", "paid", "shipped"], OrderStockReserved.make({}))
    case "MarkPaid":
      return advance(command._tag, state, "reserved", ["paid", "shipped"], OrderPaid.make({ amount: state.amount }))
    case "ShipOrder":
      return advance(command._tag, state, "paid", ["shipped"], OrderShipped.make({}))
    case "CancelOrder":
      // a paid order would need a refund first: not modelled here
      return state.status === "placed" || state.status === "reserved"
        ? Effect.succeed([OrderCancelled.make({ reason: command.reason })])
        : state.status === "cancelled"
        ? Effect.succeed([])
        : Effect.fail(new InvalidOrderTransition({ command: command._tag, status: state.status }))
  }
}

/** An order: placed, its stock reserved, paid, shipped; or cancelled before it is paid. */
export const Order = Decider.make<OrderCommand, OrderEvent, OrderState, OrderError>({
  initialState: { status: "none", customer: "", sku: "", quantity: 0, amount: 0, cardLimit: 0, reason: "" },
  decide: decideOrder,
  evolve: (state, event) => {
    switch (event._tag) {
      case "OrderPlaced": {
        const { _tag, ...details } = event
        return { ...state, ...details, status: "placed" }
      }
      case "OrderStockReserved":
        return { ...state, status: "reserved" }
      case "OrderPaid":
        return { ...state, status: "paid" }
      case "OrderShipped":
        return { ...state, status: "shipped" }
      case "OrderCancelled":
        return { ...state, status: "cancelled", reason: event.reason }
    }
  }
})

// stock -----------------------------------------------------------------------

export const StockAdded = Schema.TaggedStruct("StockAdded", { quantity: Quantity })
export const StockReserved = Schema.TaggedStruct("StockReserved", { orderId: Schema.NonEmptyString, quantity: Quantity })
export const StockReleased = Schema.TaggedStruct("StockReleased", { orderId: Schema.NonEmptyString, quantity: Quantity })

export const StockEvent = Schema.Union(StockAdded, StockReserved, StockReleased)
export type StockEvent = typeof StockEvent.Type
export const StockEvents = EventCodec.make(StockEvent)

export type StockCommand =
  | { readonly _tag: "AddStock"; readonly quantity: number }
  | { readonly _tag: "ReserveStock"; readonly orderId: string; readonly quantity: number }
  | { readonly _tag: "ReleaseStock"; readonly orderId: string }

export interface StockState {
  /** Units on hand and not reserved. */
  readonly available: number
  /** Every reservation ever made, by order id: one per order, never re-made once released. */
  readonly reservations: { readonly [orderId: string]: { readonly quantity: number; readonly released: boolean } }
}

/** Fewer units are available than the order asks for. */
export class OutOfStock extends Schema.TaggedError<OutOfStock>()("OutOfStock", {
  orderId: Schema.String,
  requested: Schema.Number,
  available: Schema.Number
}) {
  override get message() {
    return `Out of stock for order ${this.orderId}: ${this.requested} requested, ${this.available} available`
  }
}
/** A quantity that is not a positive integer. */
export class InvalidQuantity extends Schema.TaggedError<InvalidQuantity>()("InvalidQuantity", {
  quantity: Schema.Number
}) {}

export type StockError = OutOfStock | InvalidQuantity

const decideStock = (command: StockCommand, state: StockState) =>
  Effect.gen(function*() {
    switch (command._tag) {
      case "AddStock": {
        if (!isPositiveInt(command.quantity)) return yield* new InvalidQuantity({ quantity: command.quantity })
        return [StockAdded.make({ quantity: command.quantity })]
      }
      case "ReserveStock": {
        // reserved before (or reserved and released): the order's reservation is already decided
        if (state.reservations[command.orderId] !== undefined) return []
        if (!isPositiveInt(command.quantity)) return yield* new InvalidQuantity({ quantity: command.quantity })
        if (command.quantity > state.available) {
          return yield* new OutOfStock({ orderId: command.orderId, requested: command.quantity, available: state.available })
        }
        return [StockReserved.make({ orderId: command.orderId, quantity: command.quantity })]
      }
      case "ReleaseStock": {
        const reservation = state.reservations[command.orderId]
        if (reservation === undefined || reservation.released) return []
        return [StockReleased.make({ orderId: command.orderId, quantity: reservation.quantity })]
      }
    }
  })

/** The stock of one SKU: units added, reserved for orders, released back. */
export const Stock = Decider.make<StockCommand, StockEvent, StockState, StockError>({
  initialState: { available: 0, reservations: {} },
  decide: decideStock,
  evolve: (state, event) => {
    switch (event._tag) {
      case "StockAdded":
        return { ...state, available: state.available + event.quantity }
      case "StockReserved":
        return {
          available: state.available - event.quantity,
          reservations: { ...state.reservations, [event.orderId]: { quantity: event.quantity, released: false } }
        }
      case "StockReleased":
        return {
          available: state.available + event.quantity,
          reservations: { ...state.reservations, [event.orderId]: { quantity: event.quantity, released: true } }
        }
    }
  }
})

// payment ---------------------------------------------------------------------

export const PaymentCharged = Schema.TaggedStruct("PaymentCharged", { orderId: Schema.NonEmptyString, amount: Cents })
/**
 * The event `PaymentDeclined`: the card's refusal, recorded so that the
 * process managers can react to it. (The error of the same name is what
 * `ChargePayment` fails with.)
 */
export const PaymentDeclinedEvent = Schema.TaggedStruct("PaymentDeclined", {
  orderId: Schema.NonEmptyString,
  amount: Cents,
  limit: Schema.Int.pipe(Schema.nonNegative())
})

export const PaymentEvent = Schema.Union(PaymentCharged, PaymentDeclinedEvent)
export type PaymentEvent = typeof PaymentEvent.Type
export const PaymentEvents = EventCodec.make(PaymentEvent)

export type PaymentCommand =
  | { readonly _tag: "ChargePayment"; readonly orderId: string; readonly amount: number; readonly cardLimit: number }
  | { readonly _tag: "RecordDecline"; readonly orderId: string; readonly amount: number; readonly limit: number }

export interface PaymentState {
  readonly status: "none" | "charged" | "declined"
  readonly amount: number
  readonly limit: number
}

/** The card refused the charge: the amount is over its limit. Deterministic, so tests can provoke it. */
export class PaymentDeclined extends Schema.TaggedError<PaymentDeclined>()("PaymentDeclined", {
  orderId: Schema.String,
  amount: Schema.Number,
  limit: Schema.Number
}) {
  override get message() {
    return `Payment for order ${this.orderId} declined: ${this.amount} is over the card limit of ${this.limit}`
  }
}
/** A decline recorded for a payment that was charged. */
export class PaymentAlreadyCharged extends Schema.TaggedError<PaymentAlreadyCharged>()("PaymentAlreadyCharged", {
  orderId: Schema.String
}) {}
/** An amount that is not a positive number of cents. */
export class InvalidAmount extends Schema.TaggedError<InvalidAmount>()("InvalidAmount", { amount: Schema.Number }) {}

export type PaymentError = PaymentDeclined | PaymentAlreadyCharged | InvalidAmount

const decidePayment = (command: PaymentCommand, state: PaymentState) =>
  Effect.gen(function*() {
    switch (command._tag) {
      case "ChargePayment": {
        if (state.status === "charged") return []
        // a decline is final: charging again is declined again
        if (state.status === "declined") {
          return yield* new PaymentDeclined({ orderId: command.orderId, amount: state.amount, limit: state.limit })
        }
        if (!isPositiveInt(command.amount)) return yield* new InvalidAmount({ amount: command.amount })
        if (command.amount > command.cardLimit) {
          return yield* new PaymentDeclined({ orderId: command.orderId, amount: command.amount, limit: command.cardLimit })
        }
        return [PaymentCharged.make({ orderId: command.orderId, amount: command.amount })]
      }
      case "RecordDecline": {
        if (state.status === "declined") return []
        if (state.status === "charged") return yield* new PaymentAlreadyCharged({ orderId: command.orderId })
        return [PaymentDeclinedEvent.make({ orderId: command.orderId, amount: command.amount, limit: command.limit })]
      }
    }
  })

/** The payment of one order: charged once, or declined for good. */
export const Payment = Decider.make<PaymentCommand, PaymentEvent, PaymentState, PaymentError>({
  initialState: { status: "none", amount: 0, limit: 0 },
  decide: decidePayment,
  evolve: (state, event) => {
    switch (event._tag) {
      case "PaymentCharged":
        return { ...state, status: "charged", amount: event.amount }
      case "PaymentDeclined":
        return { status: "declined", amount: event.amount, limit: event.limit }
    }
  }
})

// command handlers ------------------------------------------------------------

export const orders = CommandHandler.make(Order, { codec: OrderEvents })
export const stock = CommandHandler.make(Stock, { codec: StockEvents })
export const payments = CommandHandler.make(Payment, { codec: PaymentEvents })

/** Every event of the example, for reading the log as a whole (traces, specs). */
export const FulfillmentEvents = EventCodec.make(Schema.Union(OrderEvent, StockEvent, PaymentEvent))

// process managers ------------------------------------------------------------

/**
 * Drives an order forward. Each reaction passes `metadata` (the correlation
 * id of the order, and the event it reacts to as the causation) to every
 * command it sends.
 *
 * - OrderPlaced: reserve the stock; out of stock, cancel the order.
 * - StockReserved: mark the order reserved and charge its payment; a declined
 *   charge is recorded as a PaymentDeclined event (see `Compensation`). An
 *   order cancelled meanwhile gets its stock released instead.
 * - PaymentCharged: mark the order paid and ship it.
 */
export const Fulfillment = ProcessManager.make(
  EventCodec.make(Schema.Union(OrderPlaced, StockReserved, PaymentCharged)),
  {
    name: "order-fulfillment",
    types: ["OrderPlaced", "StockReserved", "PaymentCharged"],
    react: (event, metadata) =>
      Effect.gen(function*() {
        const data = event.data
        switch (data._tag) {
          case "OrderPlaced": {
            const { state } = yield* orders.load(event.streamId)
            // cancelled or already moving on: a redelivery
            if (state.status !== "placed") return
            const orderId = StreamId.entityId(event.streamId)
            yield* stock.handle(stockStream(data.sku), { _tag: "ReserveStock", orderId, quantity: data.quantity }, {
              metadata
            }).pipe(
              Effect.catchTag("OutOfStock", (outOfStock) =>
                orders.handle(event.streamId, {
                  _tag: "CancelOrder",
                  reason: `out of stock: ${outOfStock.requested} requested, ${outOfStock.available} available`
                }, { metadata }))
            )
            return
          }
          case "StockReserved": {
            const order = orderStream(data.orderId)
            const { state } = yield* orders.load(order)
            if (state.status === "cancelled") {
              // cancelled while its stock was being reserved: give the stock back. (Cancelled
              // between this load and the command below, the command fails, and the retry lands here.)
              yield* stock.handle(event.streamId, { _tag: "ReleaseStock", orderId: data.orderId }, { metadata })
              return
            }
            const { state: marked } = yield* orders.handle(order, { _tag: "MarkStockReserved" }, { metadata })
            // paid or shipped already: a redelivery
            if (marked.status !== "reserved") return
            const payment = paymentStream(data.orderId)
            yield* payments.handle(payment, {
              _tag: "ChargePayment",
              orderId: data.orderId,
              amount: marked.amount,
              cardLimit: marked.cardLimit
            }, { metadata }).pipe(
              Effect.catchTag("PaymentDeclined", (declined) =>
                payments.handle(payment, {
                  _tag: "RecordDecline",
                  orderId: declined.orderId,
                  amount: declined.amount,
                  limit: declined.limit
                }, { metadata }))
            )
            return
          }
          case "PaymentCharged": {
            const order = orderStream(data.orderId)
            yield* orders.handle(order, { _tag: "MarkPaid" }, { metadata })
            yield* orders.handle(order, { _tag: "ShipOrder" }, { metadata })
            return
          }
        }
      })
  }
)

/**
 * Compensates a declined payment: releases the order's stock, then cancels
 * the order (so an order seen cancelled holds no stock).
 */
export const Compensation = ProcessManager.make(EventCodec.make(PaymentDeclinedEvent), {
  name: "order-compensation",
  types: ["PaymentDeclined"],
  react: (event, metadata) =>
    Effect.gen(function*() {
      const order = orderStream(event.data.orderId)
      const { state } = yield* orders.load(order)
      if (state.status !== "none") {
        yield* stock.handle(stockStream(state.sku), { _tag: "ReleaseStock", orderId: event.data.orderId }, { metadata })
      }
      // fails with InvalidOrderTransition (and parks) for an order that was never placed
      yield* orders.handle(order, { _tag: "CancelOrder", reason: `payment declined: ${event.data.amount} is over the card limit of ${event.data.limit}` }, { metadata })
    })
})

/** The process managers of the example, to run side by side. */
export const processManagers = [Fulfillment, Compensation] as const
