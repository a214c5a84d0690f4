/**
 * What a user's tracing and metrics backend receives from chronicle through
 * `@effect/opentelemetry`: the spans of a real command as one tree, the
 * message ids as attributes, and the metrics under their documented names.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import {
  CommandHandler,
  EventStore,
  FileEventStore,
  MemoryCheckpointStore,
  MemoryEventStore,
  ProcessManager,
  ProjectionRunner,
  StreamId
} from "chronicle"
import { NodeContext } from "@effect/platform-node"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { AccountEvents, BankAccount } from "../../examples/BankAccount.js"
import { inMemory, treeOf } from "../../examples/InMemoryTelemetry.js"

const telemetry = () => inMemory("chronicle-test")

const metricNames = (collect: ReturnType<typeof telemetry>["collectMetrics"]) =>
  Effect.map(collect, (metrics) => new Set(metrics.map((metric) => metric.descriptor.name)))

const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents })

const open = { _tag: "OpenAccount", owner: "Ada", currency: "EUR" } as const

describe("OpenTelemetry export (NodeSdk.layer)", () => {
  it.effect("given an account, when a deposit command runs, then its spans form one tree: handle over a batch that loads and appends, and the decision", () => {
    const { layer, spans } = telemetry()
    return Effect.gen(function*() {
      const account = StreamId.unsafeMake("account", "otel-tree")
      yield* accounts.handle(account, open)
      spans.reset()
      yield* accounts.handle(account, { _tag: "Deposit", amount: 100 }).pipe(Effect.withSpan("request"))
      expect(treeOf(spans.getFinishedSpans())).toEqual([
        {
          request: [{
            "CommandHandler.handle": [
              {
                "CommandHandler.batch": [
                  { "CommandHandler.appendBatch": ["EventStore.append"] },
                  { "CommandHandler.load": ["EventStore.readPage"] }
                ]
              },
              "CommandHandler.decide"
            ]
          }]
        }
      ])
    }).pipe(Effect.provide(MemoryEventStore.layer()), Effect.provide(layer))
  })

  it.effect("given a command with correlation and causation ids, when it runs on the filesystem store, then the handle span carries them and the store spans name the store and stream", () => {
    const { layer, spans } = telemetry()
    const directory = mkdtempSync(join(tmpdir(), "chronicle-otel-"))
    return Effect.gen(function*() {
      const account = StreamId.unsafeMake("account", "otel-ids")
      yield* accounts.handle(account, open, { metadata: { correlationId: "order-7", causationId: "message-3" } })
      const finished = spans.getFinishedSpans()
      const handle = finished.find((span) => span.name === "CommandHandler.handle")
      expect(handle?.attributes).toMatchObject({
        "chronicle.stream_id": "account-otel-ids",
        "chronicle.command": "OpenAccount",
        "chronicle.correlation_id": "order-7",
        "chronicle.causation_id": "message-3"
      })
      const append = finished.find((span) => span.name === "EventStore.append")
      expect(append?.attributes).toMatchObject({ "chronicle.store": "filesystem", "chronicle.stream_id": "account-otel-ids" })
      expect(append?.parentSpanContext?.traceId).toBe(handle?.spanContext().traceId)
    }).pipe(
      Effect.provide(FileEventStore.layer({ directory })),
      Effect.provide(NodeContext.layer),
      Effect.provide(layer)
    )
  })

  it.live("given a command raced by another writer, when it retries, then appends, loads, conflicts and retries reach the metric reader under their names", () => {
    const { collectMetrics, layer } = telemetry()
    const outside = CommandHandler.make(BankAccount, { codec: AccountEvents, coalesce: false })
    let raced = false
    const Raced: typeof BankAccount = {
      ...BankAccount,
      decide: (command, state) =>
        raced || command._tag !== "Deposit"
          ? BankAccount.decide(command, state)
          : outside.handle(StreamId.unsafeMake("account", "otel-metrics"), { _tag: "Deposit", amount: 1 }).pipe(
            Effect.orDie,
            Effect.andThen(() => {
              raced = true
              return BankAccount.decide(command, state)
            })
          )
    } as typeof BankAccount
    const racedAccounts = CommandHandler.make(Raced, { codec: AccountEvents })
    return Effect.gen(function*() {
      const account = StreamId.unsafeMake("account", "otel-metrics")
      yield* racedAccounts.handle(account, open)
      const result = yield* racedAccounts.handle(account, { _tag: "Deposit", amount: 5 })
      expect(result.state.balance).toBe(6)
      const names = yield* metricNames(collectMetrics)
      for (
        const name of [
          "chronicle_appends_total",
          "chronicle_events_appended_total",
          "chronicle_events_loaded_total",
          "chronicle_aggregate_load_ms",
          "chronicle_concurrency_conflicts_total",
          "chronicle_command_retries_total",
          "chronicle_command_batch_size"
        ]
      ) expect(names, name).toContain(name)
    }).pipe(Effect.provide(MemoryEventStore.layer()), Effect.provide(layer))
  })
  it.effect("given a process manager, when it reacts to an event, then its span and the command it sends carry the event's correlation id and the event as causation", () => {
    const { layer, spans } = telemetry()
    const bonus = ProcessManager.make(AccountEvents, {
      name: "bonus",
      types: ["MoneyDeposited"],
      react: (event, metadata) =>
        event.streamVersion === 2
          ? Effect.orDie(accounts.handle(event.streamId, { _tag: "Deposit", amount: 1 }, { metadata }))
          : Effect.void
    })
    return Effect.gen(function*() {
      const account = StreamId.unsafeMake("account", "otel-process")
      yield* accounts.handle(account, open, { metadata: { correlationId: "signup-9" } })
      yield* accounts.handle(account, { _tag: "Deposit", amount: 50 }, { metadata: { correlationId: "signup-9" } })
      spans.reset()
      yield* ProjectionRunner.catchUp(bonus)
      const deposit = yield* EventStore.read(account).pipe(Stream.runCollect, Effect.map((events) => [...events].slice(1)))
      const finished = spans.getFinishedSpans()
      const react = finished.find((span) => span.name === "ProcessManager.react")
      expect(react?.attributes).toMatchObject({
        "chronicle.process": "bonus",
        "chronicle.event_type": "MoneyDeposited",
        "chronicle.correlation_id": "signup-9",
        "chronicle.causation_id": deposit[0]!.eventId
      })
      const sent = finished.find((span) =>
        span.name === "CommandHandler.handle" && span.parentSpanContext?.spanId === react?.spanContext().spanId
      )
      expect(sent?.attributes).toMatchObject({
        "chronicle.correlation_id": "signup-9",
        "chronicle.causation_id": deposit[0]!.eventId
      })
    }).pipe(Effect.provide(Layer.merge(MemoryEventStore.layer(), MemoryCheckpointStore.layer())), Effect.provide(layer))
  })
})
