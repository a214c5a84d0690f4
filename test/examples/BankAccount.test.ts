import { describe, it } from "@effect/vitest"
import { DeciderSpec } from "chronicle/testing"
import {
  AccountAlreadyOpened,
  AccountClosed,
  AccountEvents,
  AccountNotOpen,
  AccountOpened,
  BalanceNotZero,
  BankAccount,
  InsufficientFunds,
  InvalidAmount,
  MoneyDeposited,
  MoneyWithdrawn
} from "../../examples/BankAccount.js"

const spec = DeciderSpec.make(BankAccount, { codec: AccountEvents })
const opened = AccountOpened.make({ owner: "ada", currency: "EUR" })

describe("BankAccount", () => {
  it.effect("given nothing, when opening, then the account is opened", () =>
    spec.given([]).when({ _tag: "OpenAccount", owner: "ada", currency: "EUR" }).then([opened]))

  it.effect("given an open account, when opening again, then AccountAlreadyOpened", () =>
    spec.given([opened]).when({ _tag: "OpenAccount", owner: "bob", currency: "USD" }).then(new AccountAlreadyOpened()))

  it.effect("given an open account, when depositing, then the money is deposited", () =>
    spec.given([opened]).when({ _tag: "Deposit", amount: 250 }).then([MoneyDeposited.make({ amount: 250 })]))

  it.effect("given no account, when depositing, then AccountNotOpen", () =>
    spec.given([]).when({ _tag: "Deposit", amount: 250 }).then(new AccountNotOpen({ status: "unopened" })))

  it.effect("given an open account, when depositing a non-positive or fractional amount, then InvalidAmount", () =>
    spec.given([opened]).when({ _tag: "Deposit", amount: 1.5 }).then(new InvalidAmount({ amount: 1.5 })))

  it.effect("given a balance of 100, when withdrawing 60, then the money is withdrawn and 40 remain", () =>
    spec.given([opened, MoneyDeposited.make({ amount: 100 })]).when({ _tag: "Withdraw", amount: 60 })
      .thenState({ status: "open", owner: "ada", currency: "EUR", balance: 40 }))

  it.effect("given a balance of 100, when withdrawing 100, then MoneyWithdrawn", () =>
    spec.given([opened, MoneyDeposited.make({ amount: 100 })]).when({ _tag: "Withdraw", amount: 100 })
      .then([MoneyWithdrawn.make({ amount: 100 })]))

  it.effect("given a balance of 100, when withdrawing 101, then InsufficientFunds", () =>
    spec.given([opened, MoneyDeposited.make({ amount: 100 })]).when({ _tag: "Withdraw", amount: 101 })
      .then(new InsufficientFunds({ balance: 100, requested: 101 })))

  it.effect("given a non-zero balance, when closing, then BalanceNotZero", () =>
    spec.given([opened, MoneyDeposited.make({ amount: 1 })]).when({ _tag: "CloseAccount", reason: "moving" })
      .then(new BalanceNotZero({ balance: 1 })))

  it.effect("given a closed account, when depositing, then AccountNotOpen", () =>
    spec.given([opened, AccountClosed.make({ reason: "moving" })]).when({ _tag: "Deposit", amount: 1 })
      .then(new AccountNotOpen({ status: "closed" })))
})
