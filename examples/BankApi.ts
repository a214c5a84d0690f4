/**
 * The bank account as an HTTP service on `@effect/platform`'s `HttpApi`:
 * commands with `If-Match` / `ETag` and problem responses (chronicle/http),
 * a projection-backed query, and a stream's events page by page.
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpApp, HttpServerResponse } from "@effect/platform"
import { Effect, Layer, Option, Ref, Schema, Stream } from "effect"
import {
  CommandHandler,
  EventStore,
  MemoryCheckpointStore,
  Projection,
  ProjectionRunner,
  StreamId
} from "chronicle"
import { CommandHttp } from "chronicle/http"
import type { AccountState } from "./BankAccount.js"
import { AccountEvents, BankAccount } from "./BankAccount.js"

// the API ------------------------------------------------------------------------------------

const AccountId = Schema.Struct({ id: Schema.String })

/** An account as the API shows it: its state and the version to send back as If-Match. */
export const AccountView = Schema.Struct({
  id: Schema.String,
  version: Schema.Number,
  status: Schema.String,
  owner: Schema.String,
  currency: Schema.String,
  balance: Schema.Number
})

const Amount = Schema.Struct({ amount: Schema.Number })

const accounts = HttpApiGroup.make("accounts")
  .add(
    HttpApiEndpoint.put("open", "/accounts/:id")
      .setPath(AccountId)
      .setPayload(Schema.Struct({ owner: Schema.String, currency: Schema.Literal("EUR", "USD", "GBP") }))
      .setHeaders(CommandHttp.Preconditions)
      .addSuccess(AccountView, { status: 201 })
  )
  .add(
    HttpApiEndpoint.post("deposit", "/accounts/:id/deposits")
      .setPath(AccountId)
      .setPayload(Amount)
      .setHeaders(CommandHttp.Preconditions)
      .addSuccess(AccountView)
  )
  .add(
    HttpApiEndpoint.post("withdraw", "/accounts/:id/withdrawals")
      .setPath(AccountId)
      .setPayload(Amount)
      .setHeaders(CommandHttp.Preconditions)
      .addSuccess(AccountView)
  )
  .add(HttpApiEndpoint.get("get", "/accounts/:id").setPath(AccountId).addSuccess(AccountView))
  .add(HttpApiEndpoint.del("delete", "/accounts/:id").setPath(AccountId).addSuccess(Schema.Void))
  .addError(CommandHttp.PreconditionFailed)
  .addError(CommandHttp.Conflict)
  .addError(CommandHttp.Gone)
  .addError(CommandHttp.DomainRejected)
  .addError(CommandHttp.InvalidInput)

/** A row of the balances read model. */
export const Balance = Schema.Struct({ id: Schema.String, owner: Schema.String, balance: Schema.Number })

/** A stored event as `GET /streams/:id` shows it. */
export const EventView = Schema.Struct({
  eventId: Schema.String,
  type: Schema.String,
  streamVersion: Schema.Number,
  globalPosition: Schema.String,
  recordedAt: Schema.String,
  data: Schema.Unknown,
  metadata: Schema.Unknown
})

const queries = HttpApiGroup.make("queries")
  .add(
    HttpApiEndpoint.get("balances", "/balances")
      .setUrlParams(Schema.Struct({ min: Schema.optional(Schema.NumberFromString) }))
      .addSuccess(Schema.Struct({ position: Schema.String, accounts: Schema.Array(Balance) }))
  )
  .add(
    HttpApiEndpoint.get("stream", "/streams/:id")
      .setPath(AccountId)
      .setUrlParams(Schema.Struct({
        from: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.greaterThanOrEqualTo(1))),
        limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1000))),
        direction: Schema.optional(Schema.Literal("forward", "backward"))
      }))
      .addSuccess(Schema.Struct({ streamId: Schema.String, version: Schema.Number, events: Schema.Array(EventView) }))
      .addError(CommandHttp.InvalidInput)
  )

/** The bank's API: what a client (`HttpApiClient.make(BankApi)`) or an OpenAPI document is made from. */
export class BankApi extends HttpApi.make("bank").add(accounts).add(queries) {}

// the handlers -----------------------------------------------------------------------------

const handler = CommandHandler.make(BankAccount, { codec: AccountEvents })

const accountId = (id: string) => StreamId.make("account", id)

const view = (id: string, version: number, state: AccountState) => ({ id, version, ...state })

const withHeader = (name: string, value: string) =>
  HttpApp.appendPreResponseHandler((_request, response) => Effect.succeed(HttpServerResponse.setHeader(response, name, value)))

const AccountsLive = HttpApiBuilder.group(BankApi, "accounts", (handlers) =>
  handlers
    .handle("open", ({ headers, path, payload }) =>
      CommandHttp.handle(handler, `account-${path.id}`, { _tag: "OpenAccount", ...payload }, headers).pipe(
        Effect.map((result) => view(path.id, result.streamVersion, result.state))
      ))
    .handle("deposit", ({ headers, path, payload }) =>
      CommandHttp.handle(handler, `account-${path.id}`, { _tag: "Deposit", amount: payload.amount }, headers).pipe(
        Effect.map((result) => view(path.id, result.streamVersion, result.state))
      ))
    .handle("withdraw", ({ headers, path, payload }) =>
      CommandHttp.handle(handler, `account-${path.id}`, { _tag: "Withdraw", amount: payload.amount }, headers).pipe(
        Effect.map((result) => view(path.id, result.streamVersion, result.state))
      ))
    .handle("get", ({ path }) =>
      Effect.gen(function*() {
        const id = yield* Effect.orElseFail(accountId(path.id), () => gone(`account-${path.id}`))
        if (yield* Effect.orDie(EventStore.isDeleted(id))) return yield* gone(id)
        const loaded = yield* Effect.orDie(handler.load(id))
        yield* withHeader("etag", CommandHttp.etag(loaded.version))
        return view(path.id, loaded.version, loaded.state)
      }))
    .handle("delete", ({ path }) =>
      Effect.gen(function*() {
        const id = yield* Effect.orElseFail(accountId(path.id), () => gone(`account-${path.id}`))
        yield* Effect.orDie(EventStore.deleteStream(id))
      })))

const gone = (streamId: string) => CommandHttp.gone(streamId, `${streamId} is deleted or cannot exist`)

/** The balances read model: kept in memory, filled by a projection over the global log. */
class Balances extends Effect.Service<Balances>()("examples/Balances", {
  scoped: Effect.gen(function*() {
    const rows = yield* Ref.make(new Map<string, typeof Balance.Type>())
    const position = yield* Ref.make(0n)
    const projection = Projection.fromCodec(AccountEvents, {
      name: "balances",
      handle: (event) =>
        Effect.andThen(
          Ref.update(rows, (current) => {
            const id = StreamId.entityId(event.streamId)
            const row = current.get(id) ?? { id, owner: "", balance: 0 }
            const next = new Map(current)
            switch (event.data._tag) {
              case "AccountOpened":
                next.set(id, { ...row, owner: event.data.owner })
                break
              case "MoneyDeposited":
                next.set(id, { ...row, balance: row.balance + event.data.amount })
                break
              case "MoneyWithdrawn":
                next.set(id, { ...row, balance: row.balance - event.data.amount })
                break
              case "AccountClosed":
                next.delete(id)
            }
            return next
          }),
          Ref.set(position, event.globalPosition)
        )
    })
    yield* ProjectionRunner.run(projection).pipe(Effect.forkScoped)
    return { rows, position }
  }),
  dependencies: [MemoryCheckpointStore.layer()]
}) {}

const QueriesLive = HttpApiBuilder.group(BankApi, "queries", (handlers) =>
  handlers
    .handle("balances", ({ urlParams }) =>
      Effect.gen(function*() {
        const { position, rows } = yield* Balances
        const all = [...(yield* Ref.get(rows)).values()]
        return {
          position: String(yield* Ref.get(position)),
          accounts: all.filter((row) => urlParams.min === undefined || row.balance >= urlParams.min)
            .sort((a, b) => a.id.localeCompare(b.id))
        }
      }))
    .handle("stream", ({ path, urlParams }) =>
      Effect.gen(function*() {
        const id = yield* StreamId.parse(path.id).pipe(
          Effect.mapError((error) => CommandHttp.invalidInput(error._tag, error.message))
        )
        const limit = urlParams.limit ?? 50
        const direction = urlParams.direction ?? "forward"
        const version = yield* Effect.orDie(EventStore.streamVersion(id))
        const from = urlParams.from ?? (direction === "forward" ? 1 : version)
        const events = yield* EventStore.read(id, direction === "forward"
          ? { fromVersion: from, limit }
          : { toVersion: from, direction: "backwards", limit }).pipe(Stream.runCollect, Effect.orDie)
        const last = Option.getOrUndefined(Option.map(Option.fromIterable([...events].slice(-1)), (e) => e.streamVersion))
        const next = last === undefined ? undefined : direction === "forward" ? last + 1 : last - 1
        if (events.length === limit && next !== undefined && next >= 1 && next <= version) {
          yield* withHeader(
            "link",
            `</streams/${encodeURIComponent(id)}?from=${next}&limit=${limit}&direction=${direction}>; rel="next"`
          )
        }
        yield* withHeader("etag", CommandHttp.etag(version))
        return {
          streamId: id,
          version,
          events: [...events].map((event) => ({
            eventId: event.eventId,
            type: event.type,
            streamVersion: event.streamVersion,
            globalPosition: String(event.globalPosition),
            recordedAt: event.recordedAt.toISOString(),
            data: event.data,
            metadata: event.metadata
          }))
        }
      })))

/** The API's handlers, over the EventStore in context. */
export const BankApiLive = HttpApiBuilder.api(BankApi).pipe(
  Layer.provide(AccountsLive),
  Layer.provide(QueriesLive),
  Layer.provide(Balances.Default)
)
