/**
 * The bank's HTTP service (examples/BankApi.ts with chronicle/http), called
 * over a real socket: conditional commands, ETags, and the documented status
 * and problem body for a stale version, exhausted retries, a domain error, a
 * deleted stream and bad input.
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Schedule, Schema } from "effect"
import { createServer } from "node:http"
import { CommandHandler, MemoryEventStore, StreamId } from "chronicle"
import { CommandHttp } from "chronicle/http"
import { AccountEvents, BankAccount } from "../../examples/BankAccount.js"
import { BankApiLive } from "../../examples/BankApi.js"

/** Serves `api` on a free port of 127.0.0.1 for the test's scope, and gives its base URL. */
const serving = (api: Layer.Layer<HttpApi.Api>) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      HttpApiBuilder.serve().pipe(
        Layer.provide(api),
        Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
      )
    )
    const server = Context.get(context, HttpServer.HttpServer)
    if (server.address._tag !== "TcpAddress") return yield* Effect.dieMessage("the server is not on TCP")
    return `http://127.0.0.1:${server.address.port}`
  })

interface Answer {
  readonly status: number
  readonly etag: string | null
  readonly link: string | null
  readonly contentType: string | null
  readonly body: any
}

const call = (base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  Effect.promise(async (): Promise<Answer> => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    const text = await response.text()
    return {
      status: response.status,
      etag: response.headers.get("etag"),
      link: response.headers.get("link"),
      contentType: response.headers.get("content-type"),
      body: text.length === 0 ? undefined : JSON.parse(text)
    }
  })

const bank = () => serving(BankApiLive.pipe(Layer.provide(MemoryEventStore.layer())))

const ada = { owner: "Ada", currency: "EUR" }

describe("the bank over HTTP (chronicle/http)", () => {
  it.scopedLive("given no account, when it is opened with If-None-Match: *, then 201 with ETag \"1\"; opening it again is 412", () =>
    Effect.gen(function*() {
      const base = yield* bank()
      const opened = yield* call(base, "PUT", "/accounts/a1", ada, { "if-none-match": "*" })
      expect(opened).toMatchObject({ status: 201, etag: "\"1\"", body: { id: "a1", version: 1, status: "open" } })
      const again = yield* call(base, "PUT", "/accounts/a1", ada, { "if-none-match": "*" })
      expect(again.status).toBe(412)
      expect(again.contentType).toBe("application/problem+json")
      expect(again.body).toMatchObject({ _tag: "PreconditionFailed", status: 412, expected: "NoStream", actual: 1 })
    }))

  it.scopedLive("given an account at version 2, when a command carries If-Match \"1\", then 412 names the versions and nothing is written; with \"2\" it succeeds with the next ETag", () =>
    Effect.gen(function*() {
      const base = yield* bank()
      yield* call(base, "PUT", "/accounts/a2", ada)
      yield* call(base, "POST", "/accounts/a2/deposits", { amount: 10 })
      const stale = yield* call(base, "POST", "/accounts/a2/deposits", { amount: 5 }, { "if-match": "\"1\"" })
      expect(stale.status).toBe(412)
      expect(stale.contentType).toBe("application/problem+json")
      expect(stale.body).toMatchObject({
        _tag: "PreconditionFailed",
        type: "urn:chronicle:problem:precondition-failed",
        title: "Precondition failed",
        streamId: "account-a2",
        expected: "1",
        actual: 2
      })
      const current = yield* call(base, "GET", "/accounts/a2")
      expect(current).toMatchObject({ status: 200, etag: "\"2\"", body: { balance: 10 } })
      const fresh = yield* call(base, "POST", "/accounts/a2/deposits", { amount: 5 }, { "if-match": current.etag! })
      expect(fresh).toMatchObject({ status: 200, etag: "\"3\"", body: { balance: 15, version: 3 } })
      const exists = yield* call(base, "POST", "/accounts/a2/deposits", { amount: 1 }, { "if-match": "*" })
      expect(exists).toMatchObject({ status: 200, etag: "\"4\"" })
    }))

  it.scopedLive("given a malformed precondition, then 400 InvalidInput and nothing is written", () =>
    Effect.gen(function*() {
      const base = yield* bank()
      yield* call(base, "PUT", "/accounts/a3", ada)
      for (const headers of [{ "if-match": "W/\"1\"" }, { "if-match": "1" }, { "if-match": "\"1\", \"2\"" }, { "if-none-match": "\"1\"" }, { "if-match": "\"1\"", "if-none-match": "*" }]) {
        const answer = yield* call(base, "POST", "/accounts/a3/deposits", { amount: 1 }, headers)
        expect(answer.status, JSON.stringify(headers)).toBe(400)
        expect(answer.body).toMatchObject({ _tag: "InvalidInput", error: "Preconditions" })
      }
      expect((yield* call(base, "GET", "/accounts/a3")).etag).toBe("\"1\"")
    }))

  it.scopedLive("given an open account, when an overdraft is asked, then 422 problem+json names the domain error and its fields", () =>
    Effect.gen(function*() {
      const base = yield* bank()
      yield* call(base, "PUT", "/accounts/a4", ada)
      yield* call(base, "POST", "/accounts/a4/deposits", { amount: 100 })
      const refused = yield* call(base, "POST", "/accounts/a4/withdrawals", { amount: 1000 })
      expect(refused.status).toBe(422)
      expect(refused.contentType).toBe("application/problem+json")
      expect(refused.body).toEqual({
        _tag: "DomainRejected",
        type: "urn:chronicle:problem:domain:InsufficientFunds",
        title: "InsufficientFunds",
        status: 422,
        detail: "The command was refused: InsufficientFunds",
        error: "InsufficientFunds",
        fields: { balance: 100, requested: 1000 }
      })
    }))

  it.scopedLive("given a deleted account, when a command comes, then 410 Gone; reading it is 410 too", () =>
    Effect.gen(function*() {
      const base = yield* bank()
      yield* call(base, "PUT", "/accounts/a5", ada)
      expect((yield* call(base, "DELETE", "/accounts/a5")).status).toBe(204)
      const gone = yield* call(base, "POST", "/accounts/a5/deposits", { amount: 1 })
      expect(gone.status).toBe(410)
      expect(gone.contentType).toBe("application/problem+json")
      expect(gone.body).toMatchObject({ _tag: "Gone", streamId: "account-a5" })
      expect((yield* call(base, "GET", "/accounts/a5")).status).toBe(410)
    }))

  it.scopedLive("given bad input, then 400: the payload's Schema message, or chronicle's rule for an id", () =>
    Effect.gen(function*() {
      const base = yield* bank()
      const payload = yield* call(base, "POST", "/accounts/a6/deposits", { amount: "ten" })
      expect(payload.status).toBe(400)
      expect(payload.body.message).toContain("Expected number, actual \"ten\"")
      const id = yield* call(base, "PUT", `/accounts/${encodeURIComponent("bad\u0007id")}`, ada)
      expect(id.status).toBe(400)
      expect(id.body).toMatchObject({ _tag: "InvalidInput", error: "InvalidStreamId" })
      const currency = yield* call(base, "PUT", "/accounts/a6", { owner: "Ada", currency: "XXX" })
      expect(currency.status).toBe(400)
    }))

  it.scopedLive("given 20 concurrent deposits without If-Match, then all succeed and the balance is their sum", () =>
    Effect.gen(function*() {
      const base = yield* bank()
      yield* call(base, "PUT", "/accounts/a7", ada)
      const answers = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i + 1),
        (amount) => call(base, "POST", "/accounts/a7/deposits", { amount }),
        { concurrency: "unbounded" }
      )
      expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(200))
      expect(new Set(answers.map((answer) => answer.etag)).size).toBe(20)
      expect((yield* call(base, "GET", "/accounts/a7")).body).toMatchObject({ balance: 210, version: 21 })
    }))

  it.scopedLive("given a stream of 5 events, when it is paged backwards by 2, then newest first with a next link until the first", () =>
    Effect.gen(function*() {
      const base = yield* bank()
      yield* call(base, "PUT", "/accounts/a8", ada)
      for (const amount of [1, 2, 3, 4]) yield* call(base, "POST", "/accounts/a8/deposits", { amount })
      const versions: Array<number> = []
      let next: string | undefined = "/streams/account-a8?limit=2&direction=backward"
      while (next !== undefined) {
        const page: Answer = yield* call(base, "GET", next)
        expect(page.status).toBe(200)
        expect(page.etag).toBe("\"5\"")
        versions.push(...page.body.events.map((event: { streamVersion: number }) => event.streamVersion))
        next = /<([^>]+)>; rel="next"/.exec(page.link ?? "")?.[1]
      }
      expect(versions).toEqual([5, 4, 3, 2, 1])
      const forward = yield* call(base, "GET", "/streams/account-a8?from=4")
      expect(forward.body.events.map((event: { type: string }) => event.type)).toEqual(["MoneyDeposited", "MoneyDeposited"])
    }))

  it.scopedLive("given deposits, then the balances query (a projection over the global log) catches up to them", () =>
    Effect.gen(function*() {
      const base = yield* bank()
      yield* call(base, "PUT", "/accounts/a9", ada)
      yield* call(base, "POST", "/accounts/a9/deposits", { amount: 42 })
      const caughtUp = yield* call(base, "GET", "/balances").pipe(
        Effect.filterOrFail((answer) => answer.body.position === "2"),
        Effect.retry(Schedule.spaced("10 millis")),
        Effect.timeout("60 seconds")
      )
      expect(caughtUp.body.accounts).toEqual([{ id: "a9", owner: "Ada", balance: 42 }])
    }))

  it.scopedLive("given a command that keeps conflicting and no If-Match, when its retries run out, then 409 Conflict with the attempts", () =>
    Effect.gen(function*() {
      const store = Layer.succeedContext(yield* Layer.build(MemoryEventStore.layer()))
      const account = StreamId.unsafeMake("account", "contested")
      const outside = CommandHandler.make(BankAccount, { codec: AccountEvents, coalesce: false })
      const contested = CommandHandler.make({
        ...BankAccount,
        decide: (command, state) =>
          command._tag === "Deposit"
            ? Effect.zipRight(
              Effect.orDie(outside.handle(account, { _tag: "Deposit", amount: 1 })),
              BankAccount.decide(command, state)
            )
            : BankAccount.decide(command, state)
      } as typeof BankAccount, { codec: AccountEvents, retry: Schedule.recurs(2) })
      const Api = HttpApi.make("contested").add(
        HttpApiGroup.make("accounts").add(
          HttpApiEndpoint.post("deposit", "/deposits")
            .setHeaders(CommandHttp.Preconditions)
            .addSuccess(Schema.Struct({ version: Schema.Number }))
            .addError(CommandHttp.Conflict)
            .addError(CommandHttp.PreconditionFailed)
            .addError(CommandHttp.Gone)
            .addError(CommandHttp.DomainRejected)
            .addError(CommandHttp.InvalidInput)
        )
      )
      const Live = HttpApiBuilder.api(Api).pipe(
        Layer.provide(HttpApiBuilder.group(Api, "accounts", (handlers) =>
          handlers.handle("deposit", ({ headers }) =>
            CommandHttp.handle(contested, account, { _tag: "Deposit", amount: 5 }, headers).pipe(
              Effect.map((result) => ({ version: result.streamVersion }))
            )))),
        Layer.provide(store)
      )
      const base = yield* serving(Live)
      yield* Effect.orDie(outside.handle(account, { _tag: "OpenAccount", owner: "Ada", currency: "EUR" })).pipe(
        Effect.provide(store)
      )
      const answer = yield* call(base, "POST", "/deposits")
      expect(answer.status).toBe(409)
      expect(answer.contentType).toBe("application/problem+json")
      expect(answer.body).toMatchObject({ _tag: "Conflict", status: 409, streamId: "account-contested", attempts: 3 })
    }))
})
