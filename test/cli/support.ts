/**
 * Runs the `chronicle` CLI as a real process (from the sources, through
 * scripts/chronicle-dev.js as `npm run cli` does; test/cli/bin.test.ts runs the
 * published bin on dist/), and seeds stores for it through the library.
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"
import { NodeContext } from "@effect/platform-node"
import { Chunk, Effect, Layer, Stream } from "effect"
import type { Event } from "chronicle"
import { CommandHandler, EventStore, FileEventStore, StreamId } from "chronicle"
import { AccountEvents, BankAccount } from "../../examples/BankAccount.js"

export const root = fileURLToPath(new URL("../..", import.meta.url))
const launcher = fileURLToPath(new URL("../../scripts/chronicle-dev.js", import.meta.url))

export interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export interface CliOptions {
  readonly env?: Record<string, string | undefined>
  readonly input?: string
}

/** The environment of a CLI process: no colour settings inherited from the test runner. */
const environment = (env: Record<string, string | undefined> = {}) => {
  const base: Record<string, string | undefined> = { ...process.env, FORCE_COLOR: undefined, NO_COLOR: undefined, CHRONICLE_STORE: undefined }
  for (const [key, value] of Object.entries(env)) base[key] = value
  return Object.fromEntries(Object.entries(base).filter((entry): entry is [string, string] => entry[1] !== undefined))
}

/** Starts the CLI; the caller reads its output and ends it. */
export const start = (args: ReadonlyArray<string>, options: CliOptions = {}): ChildProcess =>
  spawn(process.execPath, [launcher, ...args], { cwd: root, env: environment(options.env), stdio: ["pipe", "pipe", "pipe"] })

/** Runs the CLI to its end. */
export const cli = (args: ReadonlyArray<string>, options: CliOptions = {}): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = start(args, options)
    let stdout = ""
    let stderr = ""
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
    child.stdin!.end(options.input ?? "")
  })

/** Waits until `read()` satisfies `done`, or fails after `ms` (generous: a CLI process may start slowly on a loaded machine). */
export const waitFor = (read: () => string, done: (text: string) => boolean, ms = 90_000): Promise<string> =>
  new Promise((resolve, reject) => {
    const started = Date.now()
    const check = () => {
      const text = read()
      if (done(text)) return resolve(text)
      if (Date.now() - started > ms) return reject(new Error(`timed out waiting; got:\n${text}`))
      setTimeout(check, 25)
    }
    check()
  })

// eslint-disable-next-line no-control-regex
export const stripAnsi = (text: string): string => text.replace(/\u001b\[[0-9;]*m/g, "")

/** True when output shows a stack trace. */
export const hasStackTrace = (text: string): boolean => /^\s+at .+\(.+:\d+:\d+\)$/m.test(text) || /\bat file:\/\//.test(text)

export const accounts = CommandHandler.make(BankAccount, { codec: AccountEvents })
export const ada = StreamId.unsafeMake("account", "ada")
export const alan = StreamId.unsafeMake("account", "alan")

/** Two accounts: ada (opened, 100.00 in, 30.00 out, 5.00 in), alan (opened, 20.00 in). */
export const seedAccounts = Effect.gen(function*() {
  yield* accounts.handle(ada, { _tag: "OpenAccount", owner: "Ada", currency: "EUR" }, { metadata: { correlationId: "signup-ada" } })
  yield* accounts.handle(alan, { _tag: "OpenAccount", owner: "Alan", currency: "GBP" }, { metadata: { correlationId: "signup-alan" } })
  yield* accounts.handle(ada, { _tag: "Deposit", amount: 100_00 })
  yield* accounts.handle(ada, { _tag: "Withdraw", amount: 30_00 }, { metadata: { correlationId: "atm", teller: "north" } })
  yield* accounts.handle(alan, { _tag: "Deposit", amount: 20_00 })
  yield* accounts.handle(ada, { _tag: "Deposit", amount: 5_00 })
})

/** Runs `effect` against the filesystem store in `directory`, closing it afterwards. */
export const withFileStore = <A, E>(directory: string, effect: Effect.Effect<A, E, EventStore.EventStore>): Promise<A> =>
  Effect.runPromise(effect.pipe(Effect.provide(FileEventStore.layer({ directory }).pipe(Layer.provide(NodeContext.layer)))))

/** Every event of the store in context, in global order. */
export const allEvents: Effect.Effect<ReadonlyArray<Event.StoredEvent>, EventStore.ReadError, EventStore.EventStore> = EventStore.readAll()
  .pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

/** What a copy or an import must keep of an event, as JSON text (byte for byte). */
export const content = (event: Event.StoredEvent): string =>
  JSON.stringify({
    eventId: event.eventId,
    type: event.type,
    streamId: event.streamId,
    streamVersion: event.streamVersion,
    schemaVersion: event.schemaVersion,
    data: event.data,
    metadata: event.metadata,
    tags: event.tags
  })
