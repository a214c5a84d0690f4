import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { CommandHandler, MemoryEventStore, StreamId } from "chronicle"
import { AccountEvents, BankAccount, transfer } from "../../examples/BankAccount.js"
import { inMemory, treeOf } from "../../examples/InMemoryTelemetry.js"

const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents })

describe("OpenTelemetry export of appendMany", () => {
  it.effect("given two accounts, when a transfer runs, then handleMany spans the loads and one EventStore.appendMany naming both streams", () => {
    const { layer, spans } = inMemory("chronicle-test")
    return Effect.gen(function*() {
      const [from, to] = [StreamId.unsafeMake("account", "otel-from"), StreamId.unsafeMake("account", "otel-to")]
      for (const account of [from, to]) {
        yield* accounts.handle(account, { _tag: "OpenAccount", owner: "Ada", currency: "EUR" })
        yield* accounts.handle(account, { _tag: "Deposit", amount: 100 })
      }
      spans.reset()
      yield* transfer(from, to, 10)
      expect(treeOf(spans.getFinishedSpans())).toEqual([
        { "CommandHandler.handleMany": [{ "CommandHandler.load": ["EventStore.readPage"] }, { "CommandHandler.load": ["EventStore.readPage"] }, "EventStore.appendMany"] }
      ])
      const appendMany = spans.getFinishedSpans().find((span) => span.name === "EventStore.appendMany")!
      expect(appendMany.attributes).toMatchObject({ "chronicle.store": "memory", "chronicle.stream_count": 2, "chronicle.event_count": 2 })
      expect(JSON.parse(String(appendMany.attributes["chronicle.stream_ids"]))).toEqual([from, to])
    }).pipe(Effect.provide(MemoryEventStore.layer()), Effect.provide(layer))
  })
})
