/**
 * Tokens of an event history as JSON and as TOON (`Toon.toToon`), counted
 * with gpt-tokenizer (o200k_base, the GPT-4o / GPT-5 encoding), for the
 * example domains: the bank account, order fulfillment (with its process
 * managers) and course subscriptions (DCB, tagged events) when that example
 * is present. Each history is what the CLI's `export` writes: the whole
 * envelope (ids, stream, version, position, time, schema version, data,
 * metadata, tags).
 *
 * Run: npm run bench:toon
 */
import { existsSync } from "node:fs"
import { countTokens } from "gpt-tokenizer"
import { Chunk, Effect, Layer, Stream } from "effect"
import type { Event } from "chronicle"
import { CommandHandler, EventStore, MemoryCheckpointStore, MemoryEventStore, ProjectionRunner, StreamId } from "chronicle"
import { Toon } from "chronicle/toon"
import { AccountEvents, BankAccount } from "../examples/BankAccount.js"
import { orders, processManagers, stock, stockStream } from "../examples/OrderFulfillment.js"
import { eventToJson } from "../src/cli/Output.js"

const Store = Layer.merge(MemoryEventStore.layer(), MemoryCheckpointStore.layer())
const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents })

const log = EventStore.readAll().pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

/** 20 accounts, each opened, then deposits and withdrawals interleaved across accounts; a few closed. */
const bankHistory = Effect.gen(function*() {
  const ids = Array.from({ length: 20 }, (_, i) => StreamId.unsafeMake("account", `acc${String(i + 1).padStart(3, "0")}`))
  for (const [i, id] of ids.entries()) {
    yield* accounts.handle(id, { _tag: "OpenAccount", owner: `Customer ${i + 1}`, currency: i % 3 === 0 ? "GBP" : "EUR" }, {
      metadata: { correlationId: `signup-${i + 1}` }
    })
  }
  for (let round = 0; round < 4; round++) {
    for (const [i, id] of ids.entries()) {
      yield* accounts.handle(id, { _tag: "Deposit", amount: 1000 + ((i * 37 + round * 101) % 9000) }, { metadata: { correlationId: `batch-${round}` } })
      if ((i + round) % 2 === 0) {
        yield* accounts.handle(id, { _tag: "Withdraw", amount: 500 }, { metadata: { correlationId: `batch-${round}` } })
      }
    }
  }
  return yield* log
}).pipe(Effect.provide(Store))

/** 12 checkouts driven by the process managers to shipped or cancelled (out of stock, card declined). */
const orderHistory = Effect.gen(function*() {
  yield* stock.handle(stockStream("keyboard"), { _tag: "AddStock", quantity: 10 })
  yield* stock.handle(stockStream("mouse"), { _tag: "AddStock", quantity: 4 })
  const skus = ["keyboard", "mouse", "desk-lamp"]
  for (let i = 0; i < 12; i++) {
    const order = StreamId.unsafeMake("order", `o${String(i + 1).padStart(3, "0")}`)
    yield* orders.handle(order, {
      _tag: "PlaceOrder",
      customer: `customer-${(i % 5) + 1}`,
      sku: skus[i % 3]!,
      quantity: 1 + (i % 2),
      amount: 25_00 + i * 5_00,
      cardLimit: i % 4 === 3 ? 10_00 : 500_00
    }, { metadata: { correlationId: `checkout-${i + 1}` } })
  }
  yield* ProjectionRunner.catchUpAll(processManagers)
  return yield* log
}).pipe(Effect.provide(Store))

/** Courses defined, students registered, and subscriptions (some refused) through the DCB handlers. */
const courseHistory = Effect.gen(function*() {
  // loaded by path: the example may not be there
  const path = "../examples/CourseSubscriptions.js"
  const courses = yield* Effect.promise(() => import(path) as Promise<Record<string, any>>)
  for (const [course, capacity] of [["algebra", 3], ["biology", 4], ["chemistry", 5]] as const) {
    yield* courses.courses.handle({ _tag: "DefineCourse", courseId: course, capacity })
  }
  const students = ["ada", "alan", "barbara", "edsger", "grace", "john", "katherine", "linus"]
  for (const student of students) yield* courses.students.handle({ _tag: "RegisterStudent", studentId: student, maxCourses: 2 })
  for (const [i, student] of students.entries()) {
    for (const course of [["algebra", "biology"], ["biology", "chemistry"], ["chemistry", "algebra"]][i % 3]!) {
      yield* Effect.either(courses.subscriptions.handle({ _tag: "SubscribeStudentToCourse", courseId: course, studentId: student }))
    }
  }
  yield* Effect.either(courses.subscriptions.handle({ _tag: "UnsubscribeStudentFromCourse", courseId: "algebra", studentId: "ada" }))
  return yield* log
}).pipe(Effect.provide(Store)) as Effect.Effect<ReadonlyArray<Event.StoredEvent>, unknown>

const histories: Array<[string, Effect.Effect<ReadonlyArray<Event.StoredEvent>, unknown>]> = [
  ["bank account", bankHistory],
  ["order fulfillment", orderHistory]
]
if (existsSync(new URL("../examples/CourseSubscriptions.ts", import.meta.url))) histories.push(["course subscriptions", courseHistory])

const rows: Array<Record<string, string | number>> = []
for (const [name, history] of histories) {
  const events = await Effect.runPromise(history)
  const json = countTokens(JSON.stringify(events.map(eventToJson)))
  const pretty = countTokens(JSON.stringify(events.map(eventToJson), null, 2))
  const jsonl = countTokens(events.map((event) => JSON.stringify(eventToJson(event))).join("\n"))
  const toon = countTokens(Toon.toToon(events))
  const types = new Set(events.map((event) => event.type)).size
  rows.push({
    history: name,
    events: events.length,
    types,
    "JSON (compact)": json,
    "JSON (pretty)": pretty,
    JSONL: jsonl,
    TOON: toon,
    "saved vs compact": `${((1 - toon / json) * 100).toFixed(1)}%`,
    "saved vs pretty": `${((1 - toon / pretty) * 100).toFixed(1)}%`
  })
}

const columns = Object.keys(rows[0]!)
console.log(`| ${columns.join(" | ")} |`)
console.log(`|${columns.map((c, i) => (i === 0 ? "---" : "---:")).join("|")}|`)
for (const row of rows) console.log(`| ${columns.map((c) => String(row[c])).join(" | ")} |`)
console.log("\nTokens counted with gpt-tokenizer (o200k_base).")
