/**
 * Transfers between bank accounts, on the embedded filesystem store
 * (`./.chronicle`, or the directory in CHRONICLE_DIR): two accounts, two
 * tellers moving money between them in opposite directions at the same
 * time. Each transfer is a withdrawal on one account and a deposit on the
 * other, appended together or not at all (`CommandHandler.handleMany` over
 * `EventStore.appendMany`): the total never changes. An overdraft refuses
 * the whole transfer.
 *
 * Run: npm run example:transfer
 */
import { Effect, Layer } from "effect"
import { NodeContext } from "@effect/platform-node"
import { CommandHandler, FileEventStore, StreamId } from "chronicle"
import { AccountEvents, BankAccount, transfer } from "./BankAccount.js"

const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents })

const euros = (cents: number) => `€${(cents / 100).toFixed(2)}`

const balances = (ids: ReadonlyArray<StreamId.StreamId>) =>
  Effect.forEach(ids, (id) => Effect.map(accounts.load(id), (loaded) => loaded.state.balance))

const program = Effect.gen(function*() {
  const alice = yield* StreamId.generate("account")
  const bob = yield* StreamId.generate("account")
  for (const [account, owner] of [[alice, "Alice"], [bob, "Bob"]] as const) {
    yield* accounts.handle(account, { _tag: "OpenAccount", owner, currency: "EUR" })
    yield* accounts.handle(account, { _tag: "Deposit", amount: 500_00 })
  }
  const before = yield* balances([alice, bob])
  console.log(`Before: Alice ${euros(before[0]!)}, Bob ${euros(before[1]!)}, total ${euros(before[0]! + before[1]!)}`)

  // two tellers, opposite directions, at the same time: conflicts re-decide both accounts
  const rounds = 25
  yield* Effect.all([
    Effect.forEach(Array.from({ length: rounds }, (_, i) => i), (i) => transfer(alice, bob, 10_00 + i)),
    Effect.forEach(Array.from({ length: rounds }, (_, i) => i), (i) => transfer(bob, alice, 7_00 + i))
  ], { concurrency: "unbounded" })

  const after = yield* balances([alice, bob])
  console.log(`After ${2 * rounds} transfers: Alice ${euros(after[0]!)}, Bob ${euros(after[1]!)}, total ${euros(after[0]! + after[1]!)}`)
  if (after[0]! + after[1]! !== before[0]! + before[1]!) return yield* Effect.die(new Error("money was created or lost"))

  // an overdraft refuses the whole transfer: neither account changes
  const refused = yield* transfer(alice, bob, 1_000_000_00).pipe(
    Effect.as("accepted?!"),
    Effect.catchTag("InsufficientFunds", (error) =>
      Effect.succeed(`refused: balance ${euros(error.balance)}, requested ${euros(error.requested)}`))
  )
  console.log(`Overdraft transfer: ${refused}`)
  const unchanged = yield* balances([alice, bob])
  console.log(`Afterwards: Alice ${euros(unchanged[0]!)}, Bob ${euros(unchanged[1]!)}`)
})

const Store = FileEventStore.layerConfig(FileEventStore.environment).pipe(Layer.provide(NodeContext.layer))

program.pipe(Effect.provide(Store), Effect.runPromise).catch((error) => {
  console.error(error)
  process.exit(1)
})
