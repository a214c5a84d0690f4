/**
 * The bank-account example, end to end on the embedded filesystem store
 * (`./.chronicle`, or the directory in CHRONICLE_DIR): open an account,
 * deposit, withdraw, race two writers on the same account, refuse an
 * overdraft with a typed domain error, and print the account's state and its
 * events. Each run opens a new account in the same store.
 *
 * Run: npm run example
 */
import { Console, Effect, Layer, Metric, Stream } from "effect"
import { NodeContext } from "@effect/platform-node"
import { CommandHandler, EventCodec, EventStore, FileEventStore, Metrics, StreamId } from "chronicle"
import { AccountEvents, BankAccount } from "./BankAccount.js"

const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents })

const euros = (cents: number) => `€${(cents / 100).toFixed(2)}`

const program = Effect.gen(function*() {
  const account = yield* StreamId.generate("account")
  const correlationId = "example-run"

  yield* accounts.handle(account, { _tag: "OpenAccount", owner: "Ada Lovelace", currency: "EUR" }, {
    metadata: { correlationId }
  })
  yield* accounts.handle(account, { _tag: "Deposit", amount: 100_00 }, { metadata: { correlationId } })
  yield* accounts.handle(account, { _tag: "Withdraw", amount: 30_00 }, { metadata: { correlationId } })

  // Two tellers deposit at the same moment: one append conflicts, re-reads, re-decides.
  yield* Effect.all([
    accounts.handle(account, { _tag: "Deposit", amount: 5_00 }, { metadata: { correlationId, teller: "north" } }),
    accounts.handle(account, { _tag: "Deposit", amount: 7_50 }, { metadata: { correlationId, teller: "south" } })
  ], { concurrency: "unbounded" })

  // An overdraft is a domain error, typed, and nothing is written.
  const refused = yield* accounts.handle(account, { _tag: "Withdraw", amount: 1_000_00 }).pipe(
    Effect.catchTag("InsufficientFunds", (error) =>
      Effect.succeed(`refused: balance ${euros(error.balance)}, requested ${euros(error.requested)}`))
  )

  const { state, version } = yield* accounts.load(account)
  console.log(`Account ${account}`)
  console.log(`  owner:   ${state.owner}`)
  console.log(`  status:  ${state.status}`)
  console.log(`  balance: ${euros(state.balance)} (version ${version})`)
  console.log(`  overdraft attempt: ${refused}`)
  console.log("Events:")
  yield* EventCodec.read(AccountEvents, account).pipe(
    Stream.runForEach((event) =>
      Console.log(
        `  #${event.streamVersion} @${event.globalPosition} ${event.type} ${JSON.stringify(event.data)} ${
          JSON.stringify(event.metadata)
        }`
      )
    )
  )
  const retries = yield* Metric.value(Metrics.commandRetries)
  console.log(`Conflict retries: ${retries.count}`)
  const total = yield* EventStore.readAll().pipe(Stream.runCount)
  console.log(`The store in ${process.env.CHRONICLE_DIR ?? ".chronicle"} now holds ${total} events.`)
})

const Store = FileEventStore.layerConfig(FileEventStore.environment).pipe(Layer.provide(NodeContext.layer))

program.pipe(Effect.provide(Store), Effect.runPromise).catch((error) => {
  console.error(error)
  process.exit(1)
})
