/**
 * chronicle's spans and metrics leaving the process through OpenTelemetry
 * (`@effect/opentelemetry`'s `NodeSdk.layer`): the bank account on the
 * embedded store, two racing deposits, a projection catching up, then the
 * trace of each and the metrics as a backend would receive them.
 *
 * With OTEL_EXPORTER_OTLP_ENDPOINT set (for example http://localhost:4318 for
 * a local Jaeger or an OpenTelemetry Collector), spans and metrics go there
 * over OTLP/HTTP instead (`Otlp.layerJson`, no other package needed).
 *
 * Run: npm run example:telemetry
 */
import { Otlp } from "@effect/opentelemetry"
import { FetchHttpClient } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { CommandHandler, FileEventStore, MemoryCheckpointStore, Projection, ProjectionRunner, StreamId } from "chronicle"
import { AccountEvents, BankAccount } from "./BankAccount.js"
import { formatTree, inMemory } from "./InMemoryTelemetry.js"

const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents })

const commands = Effect.gen(function*() {
  const account = yield* StreamId.generate("account")
  const correlationId = `checkout-${Date.now()}`
  yield* accounts.handle(account, { _tag: "OpenAccount", owner: "Grace Hopper", currency: "USD" }, {
    metadata: { correlationId }
  }).pipe(Effect.withSpan("POST /accounts"))
  yield* Effect.all([
    accounts.handle(account, { _tag: "Deposit", amount: 20_00 }, { metadata: { correlationId, causationId: "payment-1" } })
      .pipe(Effect.withSpan("POST /accounts/:id/deposits")),
    accounts.handle(account, { _tag: "Deposit", amount: 5_00 }, { metadata: { correlationId, causationId: "payment-2" } })
      .pipe(Effect.withSpan("POST /accounts/:id/deposits"))
  ], { concurrency: "unbounded" })
  // a projection catching up on the account's events: its batches are spans too
  yield* ProjectionRunner.catchUp(Projection.fromCodec(AccountEvents, {
    name: `deposits-${Date.now()}`,
    types: ["MoneyDeposited"],
    handle: () => Effect.void
  })).pipe(Effect.provide(MemoryCheckpointStore.layer()))
  return account
})

const Store = FileEventStore.layerConfig(FileEventStore.environment).pipe(Layer.provide(NodeContext.layer))

const endpoint = process.env.OTEL_EXPORTER_OTLP_ENDPOINT

const exportOverOtlp = (baseUrl: string) =>
  commands.pipe(
    Effect.tap((account) => Effect.log(`commands on ${account} sent to ${baseUrl} over OTLP/HTTP`)),
    Effect.provide(Store),
    Effect.provide(Otlp.layerJson({ baseUrl, resource: { serviceName: "bank" } }).pipe(Layer.provide(FetchHttpClient.layer)))
  )

const printLocally = Effect.suspend(() => {
  const { collectMetrics, layer: Telemetry, spans } = inMemory("bank")
  return Effect.gen(function*() {
    const account = yield* commands
    console.log(`Traces of the commands on ${account}:`)
    console.log(formatTree(spans.getFinishedSpans(), [
      "chronicle.command",
      "chronicle.correlation_id",
      "chronicle.causation_id",
      "chronicle.commands",
      "chronicle.store",
      "chronicle.projection",
      "chronicle.event_count"
    ]))
    console.log("Metrics:")
    for (const metric of yield* collectMetrics) {
      if (metric.descriptor.name.startsWith("chronicle_")) {
        console.log(`  ${metric.descriptor.name}: ${metric.dataPoints.length} series`)
      }
    }
  }).pipe(Effect.provide(Store), Effect.provide(Telemetry))
})

;(endpoint === undefined ? printLocally : exportOverOtlp(endpoint)).pipe(Effect.runPromise).catch((error) => {
  console.error(error)
  process.exit(1)
})
