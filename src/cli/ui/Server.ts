/**
 * The web console of `chronicle ui`: a read-only HTTP app over one store. A
 * JSON API (streams, a stream's events newest first, the log's last events,
 * projections, a decider's state after any event), the global log live as
 * server-sent events, and a page with its script and styles, all served from
 * the package (no CDN). It has no route that writes.
 *
 * @since 0.2.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type { StoredEvent } from "../../Event.js"
import * as StreamId from "../../StreamId.js"
import * as Toon from "../../Toon.js"
import * as CliError from "../CliError.js"
import * as Modules from "../Modules.js"
import * as Output from "../Output.js"
import * as Scan from "../Scan.js"
import type * as Stores from "../Stores.js"
import * as Assets from "./Assets.js"

/**
 * What the console serves: the store (or why it could not be opened) and the
 * decider module given with `--decider`, if any.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly label: string
  readonly store: Either.Either<Stores.Opened, CliError.CliError>
  readonly decider: Modules.Found | undefined
  /** How often the live log looks for new events when the store sends no signal. */
  readonly pollInterval?: number | undefined
  /**
   * The host names a request may name in its `Host` header (any when
   * absent). A console on a loopback address answers only to loopback names,
   * so a web page whose DNS name is made to point at 127.0.0.1 (DNS
   * rebinding) cannot read the store through the browser.
   */
  readonly allowedHosts?: ReadonlyArray<string> | undefined
}

/**
 * The host names a console bound to `host` answers to: loopback names for a
 * loopback address, any otherwise.
 *
 * @since 0.2.0
 * @category constructors
 */
export const allowedHostsFor = (host: string): ReadonlyArray<string> | undefined =>
  /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i.test(host) ? ["localhost", "127.0.0.1", "[::1]", host.includes(":") ? `[${host}]` : host] : undefined

const hostOf = (header: string | undefined) => {
  try {
    return header === undefined ? undefined : new URL(`http://${header}`).hostname.toLowerCase()
  } catch {
    return undefined
  }
}

/** How many events the projections page counts behind a checkpoint before it says "at least". */
const lagBound = 10_000

const securityHeaders = {
  "content-security-policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store"
}

const respondJson = (value: unknown, status = 200) =>
  HttpServerResponse.text(Output.json(value), { status, contentType: "application/json; charset=utf-8", headers: securityHeaders })

const asset = (body: string, contentType: string) => HttpServerResponse.text(body, { contentType, headers: securityHeaders })

/** A failure the page shows as it is: a message and an HTTP status. */
class Problem {
  constructor(readonly status: number, readonly message: string) {}
}

const searchParams = Effect.map(HttpServerRequest.HttpServerRequest, (request) => new URL(request.url, "http://localhost").searchParams)

const integerParam = (params: URLSearchParams, name: string, fallback: number | undefined, min: number, max: number) => {
  const text = params.get(name)
  if (text === null || text === "") return Effect.succeed(fallback)
  const value = Number(text)
  return Number.isInteger(value) && value >= min && value <= max
    ? Effect.succeed(value)
    : Effect.fail(new Problem(400, `${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`))
}

const streamIdParam = (params: URLSearchParams) => {
  const text = params.get("id") ?? ""
  return Effect.mapError(StreamId.parse(text), (error) => new Problem(400, `not a stream id: ${error.message}`))
}

/**
 * Builds the console's app.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options) => {
  const store = Either.match(options.store, {
    onLeft: (error) => Effect.fail(new Problem(503, error.message)),
    onRight: Effect.succeed
  })
  const failed = (error: unknown) => new Problem(500, CliError.messageOf(error))

  // the summary of the whole log, read again only when the head has moved
  let cached: { readonly head: bigint; readonly summary: Scan.Summary } | undefined
  const summary = (opened: Stores.Opened) =>
    Effect.gen(function*() {
      const head = yield* opened.events.headPosition
      if (cached !== undefined && cached.head === head) return cached.summary
      const fresh = yield* Scan.summarize(opened.events)
      cached = { head: fresh.head, summary: fresh }
      return fresh
    })

  const info = Effect.gen(function*() {
    const head = Either.isRight(options.store) ? yield* Effect.either(options.store.right.events.headPosition) : undefined
    return {
      store: options.label,
      readOnly: true,
      error: Either.isLeft(options.store) ? options.store.left.message : null,
      head: head !== undefined && Either.isRight(head) ? head.right.toString() : null,
      decider: options.decider?.decider === undefined ? null : { name: options.decider.decider.name, path: options.decider.path }
    }
  })

  const streams = Effect.gen(function*() {
    const opened = yield* store
    const params = yield* searchParams
    const search = (params.get("search") ?? "").trim().toLowerCase()
    const cursor = params.get("cursor") ?? ""
    const limit = (yield* integerParam(params, "limit", 50, 1, 1000))!
    const all = yield* summary(opened)
    const matching = [...all.streams.values()]
      .filter((stream) => search === "" || stream.streamId.toLowerCase().includes(search))
      .sort((a, b) => (a.streamId < b.streamId ? -1 : a.streamId > b.streamId ? 1 : 0))
    const page = matching.filter((stream) => stream.streamId > cursor).slice(0, limit)
    const last = page.at(-1)
    return {
      total: all.streams.size,
      events: all.events,
      matching: matching.length,
      streams: page.map((stream) => ({
        streamId: stream.streamId,
        version: stream.version,
        events: stream.events,
        bytes: stream.bytes,
        lastRecordedAt: stream.lastRecordedAt.toISOString()
      })),
      nextCursor: last !== undefined && matching.at(-1) !== last ? last.streamId : null
    }
  })

  const unknownStream = (streamId: string) => new Problem(404, `unknown stream: ${streamId} has no events in ${options.label}`)

  const events = Effect.gen(function*() {
    const opened = yield* store
    const params = yield* searchParams
    const streamId = yield* streamIdParam(params)
    const version = yield* opened.events.streamVersion(streamId)
    if (version === 0) return yield* Effect.fail(unknownStream(streamId))
    const before = yield* integerParam(params, "before", version + 1, 1, Number.MAX_SAFE_INTEGER)
    const limit = (yield* integerParam(params, "limit", 20, 1, 500))!
    const page = yield* Stream.runCollect(opened.events.read(streamId, { direction: "backwards", toVersion: before! - 1, limit }))
    const list = [...page]
    const oldest = list.at(-1)
    return {
      streamId,
      version,
      events: list.map(Output.eventToJson),
      nextBefore: oldest !== undefined && oldest.streamVersion > 1 && list.length === limit ? oldest.streamVersion : null
    }
  })

  const log = Effect.gen(function*() {
    const opened = yield* store
    const params = yield* searchParams
    const limit = (yield* integerParam(params, "limit", 20, 1, 500))!
    const head = yield* opened.events.headPosition
    const last = head === 0n
      ? []
      : [...yield* Stream.runCollect(opened.events.readAll({ direction: "backwards", fromPosition: head, limit }))]
    return { head: head.toString(), events: last.map(Output.eventToJson) }
  })

  const projections = Effect.gen(function*() {
    const opened = yield* store
    const head = yield* opened.events.headPosition
    const names = yield* opened.checkpointNames
    const checkpoints = names.length === 0 ? undefined : yield* opened.checkpoints
    // positions may have gaps (PostgreSQL): the lag is the events after the checkpoint, counted up to a bound
    const behind = (after: bigint) =>
      after >= head ? Effect.succeed(0) : Stream.runCount(opened.events.readAll({ fromPosition: after + 1n, limit: lagBound }))
    const rows = yield* Effect.forEach(names, (name) =>
      Effect.gen(function*() {
        const position = yield* checkpoints!.load(name)
        const lag = yield* behind(Option.getOrElse(position, () => 0n))
        return { name, position: Option.getOrUndefined(position)?.toString() ?? null, lag, lagAtLeast: lag === lagBound }
      }))
    return { head: head.toString(), projections: rows }
  })

  const replay = Effect.gen(function*() {
    const opened = yield* store
    const found = options.decider
    const folder = found?.decider
    if (found === undefined || folder === undefined) {
      return yield* Effect.fail(new Problem(404, "no decider: start chronicle ui with --decider <module>[#Export] to see states"))
    }
    const params = yield* searchParams
    const streamId = yield* streamIdParam(params)
    const version = yield* opened.events.streamVersion(streamId)
    if (version === 0) return yield* Effect.fail(unknownStream(streamId))
    const at = (yield* integerParam(params, "at", version, 1, version))!
    const read = opened.events.read(streamId, { toVersion: at })
    let named = found.codecs.length === 1 ? found.codecs[0] : undefined
    if (named === undefined) {
      const types = new Set<string>()
      yield* Stream.runForEach(read, (event) => Effect.sync(() => types.add(event.type)))
      named = yield* Effect.fromNullable(found.codecs.length === 0 ? undefined : Modules.codecFor(found.codecs, types)).pipe(
        Effect.mapError(() => new Problem(422, `no codec of ${found.path} knows every type of ${streamId} (${[...types].join(", ")})`))
      )
    }
    const codec = named
    let state = folder.decider.initialState
    let last: StoredEvent | undefined
    yield* Stream.runForEach(read, (event) =>
      Effect.gen(function*() {
        const decoded = codec.codec.decodeEvents(event)
        if (Either.isLeft(decoded)) return yield* Effect.fail(new Problem(422, decoded.left.message))
        for (const typed of decoded.right) state = folder.decider.evolve(state, typed)
        last = event
      }))
    return {
      streamId,
      decider: folder.name,
      codec: codec.name,
      version: at,
      of: version,
      event: last === undefined ? null : Output.eventToJson(last),
      state: Toon.toPlain(state)
    }
  })

  const encoder = new TextEncoder()
  const tail = Effect.gen(function*() {
    const opened = yield* store
    const request = yield* HttpServerRequest.HttpServerRequest
    const params = yield* searchParams
    const resumed = request.headers["last-event-id"] ?? params.get("after") ?? undefined
    const after = resumed !== undefined && /^\d{1,19}$/.test(resumed) ? BigInt(resumed) : yield* opened.events.headPosition
    const poll = options.pollInterval
    const events = opened.events.subscribe({ after, pollInterval: poll === undefined ? undefined : `${poll} millis` }).pipe(
      Stream.map((event) => `id: ${event.globalPosition}\nevent: append\ndata: ${Output.json(Output.eventToJson(event))}\n\n`),
      Stream.catchAll((error) => Stream.make(`event: failure\ndata: ${Output.json({ error: CliError.messageOf(error) })}\n\n`))
    )
    const keepAlive = Stream.repeat(Stream.succeed(": keep-alive\n\n"), Schedule.spaced("15 seconds"))
    const body = Stream.concat(Stream.make(`: following after ${after}\nretry: 1000\n\n`), Stream.merge(events, keepAlive, { haltStrategy: "left" }))
    return HttpServerResponse.stream(Stream.map(body, (text) => encoder.encode(text)), {
      contentType: "text/event-stream",
      headers: { ...securityHeaders, "x-accel-buffering": "no" }
    })
  })

  const api = <A>(handler: Effect.Effect<A, unknown, HttpServerRequest.HttpServerRequest>) =>
    handler.pipe(
      Effect.flatMap((value) => (HttpServerResponse.isServerResponse(value) ? Effect.succeed(value) : respondJson(value))),
      Effect.catchAll((error) => {
        const problem = error instanceof Problem ? error : failed(error)
        return respondJson({ error: Output.printable(problem.message) }, problem.status)
      }),
      Effect.catchAllDefect((defect) => respondJson({ error: `unexpected error: ${Output.printable(CliError.messageOf(defect))}` }, 500))
    )

  const router = HttpRouter.empty.pipe(
    HttpRouter.get("/", asset(Assets.html, "text/html; charset=utf-8")),
    HttpRouter.get("/app.js", asset(Assets.script, "text/javascript; charset=utf-8")),
    HttpRouter.get("/app.css", asset(Assets.styles, "text/css; charset=utf-8")),
    HttpRouter.get("/api/info", api(info)),
    HttpRouter.get("/api/streams", api(streams)),
    HttpRouter.get("/api/events", api(events)),
    HttpRouter.get("/api/log", api(log)),
    HttpRouter.get("/api/projections", api(projections)),
    HttpRouter.get("/api/replay", api(replay)),
    HttpRouter.get("/api/tail", api(tail)),
    HttpRouter.all("*", api(Effect.fail(new Problem(404, "no such page (the console is read-only: it only answers GET on its own pages)"))))
  )
  const allowed = options.allowedHosts
  return allowed === undefined ? router : Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const host = hostOf(request.headers.host)
    return host !== undefined && allowed.includes(host)
      ? router
      : respondJson({ error: `this console answers only to ${allowed.join(", ")} (it listens on a loopback address); got Host ${Output.printable(request.headers.host ?? "(none)")}` }, 421)
  })
}

