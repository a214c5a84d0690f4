/**
 * A heuristic for event type names: events are facts, so their names say
 * what happened in the past tense (`MoneyDeposited`, `OrderShipped`,
 * `PaymentDeclined`, `MoneyWithdrawn`), not what should happen (`Deposit`,
 * `ShipOrder`). A name passes when one of its words ends in `-ed` or is an
 * irregular past participle of a small list. A heuristic: it warns, it does
 * not fail.
 *
 * @since 0.1.0
 */

/** Irregular past participles (and past forms) common in event names. */
const irregular = new Set([
  "arisen", "awoken", "been", "begun", "bent", "bid", "bitten", "blown", "bought", "bound", "broken", "brought",
  "broadcast", "built", "burnt", "caught", "chosen", "come", "cost", "cut", "dealt", "done", "drawn", "driven",
  "dug", "eaten", "fallen", "fed", "felt", "fought", "found", "flown", "forbidden", "forecast", "forgiven",
  "forgotten", "frozen", "given", "gone", "got", "gotten", "grown", "had", "heard", "held", "hidden", "hit", "hung",
  "hurt", "kept", "known", "laid", "led", "left", "lent", "let", "lit", "lost", "made", "meant", "met", "mistaken",
  "overdrawn", "overridden", "overtaken", "overthrown", "paid", "proven", "put", "quit", "read", "rebuilt", "redone",
  "remade", "rerun", "reset", "resent", "retaken", "rewritten", "ridden", "risen", "rung", "run", "said", "seen",
  "sent", "set", "shaken", "shed", "shone", "shot", "shown", "shut", "slept", "slid", "sold", "sought", "spent",
  "split", "spoken", "spread", "spun", "stolen", "stood", "struck", "stuck", "sung", "sunk", "sworn", "taken",
  "taught", "thought", "thrown", "told", "torn", "undone", "understood", "upheld", "upset", "withdrawn", "withheld",
  "woken", "won", "worn", "wound", "written"
])

/**
 * The words of a type name: split at camel case, digits, and `_ - . : / ` and spaces.
 *
 * @category getters
 */
export const words = (name: string): ReadonlyArray<string> =>
  name
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
    .split(/[\s_.:/\\-]+|\d+/)
    .filter((word) => word.length > 0)
    .map((word) => word.toLowerCase())

/**
 * Whether an event type name reads as something that happened.
 *
 * @example
 * isPastTense("MoneyWithdrawn") // true
 * isPastTense("StudentSubscribedToCourse") // true
 * isPastTense("PlaceOrder") // false
 *
 * @category predicates
 */
export const isPastTense = (name: string): boolean =>
  words(name).some((word) => (word.length > 3 && word.endsWith("ed")) || irregular.has(word))
