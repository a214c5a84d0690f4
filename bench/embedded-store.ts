/**
 * What `bench/embedded.ts` asks of each embedded store it compares (chronicle's
 * filesystem store, raw SQLite, Emmett's SQLite store): the same bank-account
 * streams, written and folded through each store's own API. Each contender is
 * a module whose default export is an `EmbeddedContender`, imported by path
 * when it is measured, so a fresh process pays its import inside the timing.
 */

/** One open store in a directory. Streams are named by a key; versions count events (0: no stream). */
export interface EmbeddedStore {
  /** Appends `size` one-cent deposits to the stream, expecting it at `version`; resolves with its new version. */
  readonly append: (stream: string, version: number, size: number) => Promise<number>
  /** Writes an account's history of `eventCount` events (opened, then deposits) in appends of `batchSize`. */
  readonly seed: (stream: string, eventCount: number, batchSize: number) => Promise<void>
  /** Reads the stream and folds it into the account's state; resolves with the version it folded to. */
  readonly load: (stream: string) => Promise<number>
  /** Reads the stream's last event, known to be at `version` (the first read after an open); resolves with its version. */
  readonly readLast: (stream: string, version: number) => Promise<number>
  /** The stream's rows (type and JSON data), in version order, for a fold of the caller's own (raw SQLite only). */
  readonly rows?: ((stream: string) => Iterable<{ readonly type: string; readonly data: string }>) | undefined
  readonly close: () => Promise<void>
}

/** A store to measure: `open` creates or opens it in `directory`, durable per append when `fsync`. */
export interface EmbeddedContender {
  readonly name: string
  readonly open: (directory: string, fsync: boolean) => Promise<EmbeddedStore>
}

/** The account's state, folded the same way by the contenders that have no decider of their own. */
export interface PlainAccount {
  readonly opened: boolean
  readonly balance: number
}

export const accountOpenedData = { owner: "Ada Lovelace", currency: "EUR" }
export const depositData = { amount: 1 }

/** The event types and payloads of an account's history, event `version` (0-based) of it. */
export const plainHistoryEvent = (version: number) =>
  version === 0
    ? { type: "AccountOpened", data: accountOpenedData }
    : { type: "MoneyDeposited", data: depositData }

export const initialPlainAccount: PlainAccount = { opened: false, balance: 0 }

/** Folds one event of the account's history, given its type and parsed payload. */
export const evolvePlainAccount = (state: PlainAccount, type: string, data: { readonly amount?: number }): PlainAccount => {
  switch (type) {
    case "AccountOpened":
      return { opened: true, balance: state.balance }
    case "MoneyDeposited":
      return { opened: state.opened, balance: state.balance + (data.amount ?? 0) }
    case "MoneyWithdrawn":
      return { opened: state.opened, balance: state.balance - (data.amount ?? 0) }
    default:
      return state
  }
}
