/**
 * A bank account as a decider: the domain of the bank-account example.
 * Amounts are integer cents.
 */
import { Effect, Schedule, Schema } from "effect"
import { CommandHandler, Decider, EventCodec, type StreamId } from "chronicle"

// events ----------------------------------------------------------------------

export const AccountOpened = Schema.TaggedStruct("AccountOpened", {
  owner: Schema.NonEmptyString,
  currency: Schema.Literal("EUR", "USD", "GBP")
})
export const MoneyDeposited = Schema.TaggedStruct("MoneyDeposited", { amount: Schema.Int.pipe(Schema.positive()) })
export const MoneyWithdrawn = Schema.TaggedStruct("MoneyWithdrawn", { amount: Schema.Int.pipe(Schema.positive()) })
export const AccountClosed = Schema.TaggedStruct("AccountClosed", { reason: Schema.String })

export const AccountEvent = Schema.Union(AccountOpened, MoneyDeposited, MoneyWithdrawn, AccountClosed)
export type AccountEvent = typeof AccountEvent.Type

export const AccountEvents = EventCodec.make(AccountEvent)

// commands --------------------------------------------------------------------

export type AccountCommand =
  | { readonly _tag: "OpenAccount"; readonly owner: string; readonly currency: "EUR" | "USD" | "GBP" }
  | { readonly _tag: "Deposit"; readonly amount: number }
  | { readonly _tag: "Withdraw"; readonly amount: number }
  | { readonly _tag: "CloseAccount"; readonly reason: string }

// domain errors ---------------------------------------------------------------

export class AccountAlreadyOpened extends Schema.TaggedError<AccountAlreadyOpened>()("AccountAlreadyOpened", {}) {}
export class AccountNotOpen extends Schema.TaggedError<AccountNotOpen>()("AccountNotOpen", {
  status: Schema.String
}) {}
export class InvalidAmount extends Schema.TaggedError<InvalidAmount>()("InvalidAmount", { amount: Schema.Number }) {}
export class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  balance: Schema.Number,
  requested: Schema.Number
}) {}
export class BalanceNotZero extends Schema.TaggedError<BalanceNotZero>()("BalanceNotZero", {
  balance: Schema.Number
}) {}

export type AccountError = AccountAlreadyOpened | AccountNotOpen | InvalidAmount | InsufficientFunds | BalanceNotZero

// state -----------------------------------------------------------------------

/** The account's state as a Schema too, so it can be snapshotted. */
export const AccountState = Schema.Struct({
  status: Schema.Literal("unopened", "open", "closed"),
  owner: Schema.String,
  currency: Schema.String,
  balance: Schema.Number
})
export type AccountState = typeof AccountState.Type

const requireOpen = (state: AccountState) =>
  state.status === "open" ? Effect.void : Effect.fail(new AccountNotOpen({ status: state.status }))

const requirePositive = (amount: number) =>
  Number.isSafeInteger(amount) && amount > 0 ? Effect.void : Effect.fail(new InvalidAmount({ amount }))

const decide = (command: AccountCommand, state: AccountState) =>
  Effect.gen(function*() {
    switch (command._tag) {
      case "OpenAccount": {
        if (state.status !== "unopened") return yield* new AccountAlreadyOpened()
        return [AccountOpened.make({ owner: command.owner, currency: command.currency })]
      }
      case "Deposit": {
        yield* requireOpen(state)
        yield* requirePositive(command.amount)
        return [MoneyDeposited.make({ amount: command.amount })]
      }
      case "Withdraw": {
        yield* requireOpen(state)
        yield* requirePositive(command.amount)
        if (command.amount > state.balance) {
          return yield* new InsufficientFunds({ balance: state.balance, requested: command.amount })
        }
        return [MoneyWithdrawn.make({ amount: command.amount })]
      }
      case "CloseAccount": {
        yield* requireOpen(state)
        if (state.balance !== 0) return yield* new BalanceNotZero({ balance: state.balance })
        return [AccountClosed.make({ reason: command.reason })]
      }
    }
  })

export const BankAccount = Decider.make<AccountCommand, AccountEvent, AccountState, AccountError>({
  initialState: { status: "unopened", owner: "", currency: "", balance: 0 },
  decide,
  evolve: (state, event) => {
    switch (event._tag) {
      case "AccountOpened":
        return { ...state, status: "open", owner: event.owner, currency: event.currency }
      case "MoneyDeposited":
        return { ...state, balance: state.balance + event.amount }
      case "MoneyWithdrawn":
        return { ...state, balance: state.balance - event.amount }
      case "AccountClosed":
        return { ...state, status: "closed" }
    }
  }
})

// transfers -------------------------------------------------------------------

/** Transfers over busy accounts conflict often: retry them longer than the default. */
const transferRetries = Schedule.exponential("5 millis").pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(30)))

/**
 * Moves `amount` from one account to another: the withdrawal and the deposit
 * decided by the accounts' own rules, on both states at once, appended
 * together or not at all (a conflict on either account re-decides both).
 */
export const transfer = (from: StreamId.StreamId, to: StreamId.StreamId, amount: number) =>
  CommandHandler.handleMany(BankAccount, { codec: AccountEvents, retry: transferRetries }, [from, to], ([source, target]) =>
    Effect.all([
      BankAccount.decide({ _tag: "Withdraw", amount }, source!),
      BankAccount.decide({ _tag: "Deposit", amount }, target!)
    ]))
