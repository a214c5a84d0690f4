/**
 * Forwards the global log to a NATS JetStream stream, every event once.
 *
 * The forwarder is a projection run by `ProjectionRunner`: it resumes from its
 * checkpoint, follows the log live, retries a failing chunk and parks when
 * the retries run out. Each chunk is published pipelined (all messages sent,
 * then every PubAck awaited) before the checkpoint is saved, so delivery is
 * at least once; each message carries `msgID = eventId`, and JetStream drops a
 * redelivery that arrives within the stream's duplicate window. Restart a
 * crashed forwarder within that window and the stream holds every event
 * exactly once, in global order. (One exception to the order: when a publish
 * fails while later ones of its chunk succeed, the retry stores it after
 * them; the `chronicle-position` header always gives the global order.)
 *
 * Import it from `chronicle/nats`, so the main entry never loads NATS.
 *
 * @example
 * import { NatsForwarder } from "chronicle/nats"
 *
 * const program = NatsForwarder.run({ stream: "ORDERS", prefix: "orders" }).pipe(
 *   Effect.provide(NatsForwarder.connectionLayer({ servers: "127.0.0.1:4222" }))
 * )
 *
 * @since 0.1.0
 */
import { JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager } from "@nats-io/jetstream"
import type { JetStreamClient, PubAck } from "@nats-io/jetstream"
import * as Nats from "@nats-io/transport-node"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Fiber from "effect/Fiber"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as CheckpointStore from "./CheckpointStore.js"
import type { StoredEvent } from "./Event.js"
import * as EventId from "./EventId.js"
import * as EventStore from "./EventStore.js"
import * as Projection from "./Projection.js"
import * as ProjectionRunner from "./ProjectionRunner.js"
import * as StreamId from "./StreamId.js"
import type * as Subscription from "./Subscription.js"

/**
 * The NATS connection the forwarder publishes through.
 *
 * @since 0.1.0
 * @category services
 */
export class NatsConnection extends Context.Tag("chronicle/NatsConnection")<NatsConnection, Nats.NatsConnection>() {}

/**
 * Connecting to NATS failed (no server listening, refused credentials, ...).
 *
 * @since 0.1.0
 * @category errors
 */
export class NatsConnectError extends Schema.TaggedError<NatsConnectError>()("NatsConnectError", {
  servers: Schema.String,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message() {
    return `Cannot connect to NATS at ${this.servers}: ${this.reason}`
  }
}

/**
 * The JetStream stream could not be found, created or used: JetStream is not
 * enabled, the name is invalid, or an existing stream of that name does not
 * capture the forwarder's subjects.
 *
 * @since 0.1.0
 * @category errors
 */
export class NatsStreamError extends Schema.TaggedError<NatsStreamError>()("NatsStreamError", {
  stream: Schema.String,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message() {
    return `JetStream stream ${this.stream}: ${this.reason}`
  }
}

/**
 * Publishing one event got no positive PubAck: a timeout, a subject no stream
 * captures, a message over the server's size limit. The forwarder retries its
 * chunk; when the retries run out it parks with this error as the cause.
 *
 * @since 0.1.0
 * @category errors
 */
export class NatsPublishError extends Schema.TaggedError<NatsPublishError>()("NatsPublishError", {
  subject: Schema.String,
  eventId: Schema.String,
  position: Schema.BigIntFromSelf,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message() {
    return `Publishing event ${this.eventId} (position ${this.position}) to ${this.subject} failed: ${this.reason}`
  }
}

/**
 * Where NATS is and how long to wait for it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionOptions {
  /** One or more `host:port` (or `nats://...`) addresses. */
  readonly servers: string | ReadonlyArray<string>
  /** The connection's name as the server shows it; default `"chronicle"`. */
  readonly name?: string | undefined
  /** How long to wait for the first connection; default 20 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * What the forwarder publishes where; every field has a default (`defaults`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The checkpoint name; default `"nats-forwarder"`. */
  readonly name?: string | undefined
  /** The JetStream stream, created when missing; default `"CHRONICLE"`. */
  readonly stream?: string | undefined
  /** The first subject token(s); the stream captures `<prefix>.>`. Default `"chronicle"`. */
  readonly prefix?: string | undefined
  /** The subject of an event; it must start with `<prefix>.`. Default `defaultSubject(prefix)`. */
  readonly subject?: ((event: StoredEvent) => string) | undefined
  /**
   * The duplicate window of a stream the forwarder creates (an existing one
   * keeps its own); default 10 minutes. A crashed forwarder restarted later
   * than this may store its last unacknowledged chunk twice.
   */
  readonly duplicateWindow?: Duration.DurationInput | undefined
  /** Most events published (pipelined) and checkpointed as one unit; default 500. */
  readonly batchSize?: number | undefined
  /** How long to wait for each PubAck; default 5 seconds. */
  readonly ackTimeout?: Duration.DurationInput | undefined
  /** Retries of a failing chunk before parking; default `ProjectionRunner.defaultRetrySchedule`. */
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
  /** Where to start without a checkpoint; default the beginning of the log. */
  readonly from?: Subscription.From | undefined
  /** How long a live forwarder waits for a change signal before reading anyway. */
  readonly pollInterval?: Duration.DurationInput | undefined
}

/**
 * The defaults of `Options`.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  name: "nats-forwarder",
  stream: "CHRONICLE",
  prefix: "chronicle",
  duplicateWindow: Duration.minutes(10),
  batchSize: 500,
  ackTimeout: Duration.seconds(5)
} as const

/**
 * The headers each message carries besides `Nats-Msg-Id` (the event id).
 *
 * @since 0.1.0
 * @category constants
 */
export const headerNames = {
  streamId: "chronicle-stream-id",
  streamVersion: "chronicle-stream-version",
  eventType: "chronicle-event-type",
  position: "chronicle-position",
  schemaVersion: "chronicle-schema-version"
} as const

/**
 * Makes `value` a valid subject token: `.`, `*`, `>` and whitespace become
 * `_`, and an empty token becomes `_`.
 *
 * @example
 * sanitizeToken("order.line *added") // "order_line__added"
 *
 * @since 0.1.0
 * @category constructors
 */
export const sanitizeToken = (value: string): string => value.length === 0 ? "_" : value.replace(/[.*>\s]/gu, "_")

/**
 * The default subject: `<prefix>.<stream category>.<event type>`, each token
 * sanitized.
 *
 * @example
 * defaultSubject("chronicle")(event) // "chronicle.account.Deposited"
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultSubject = (prefix: string = defaults.prefix) => (event: StoredEvent): string =>
  `${prefix}.${sanitizeToken(StreamId.category(event.streamId))}.${sanitizeToken(event.type)}`

/**
 * The message payload: the stored event's envelope as JSON, with
 * `globalPosition` as a decimal string and `recordedAt` as ISO-8601 (and
 * `tags` where the store records them). Decode a
 * message with `Schema.decodeUnknown(Schema.parseJson(Envelope))`.
 *
 * @since 0.1.0
 * @category models
 */
export const Envelope = Schema.Struct({
  eventId: EventId.EventId,
  type: Schema.String,
  streamId: StreamId.StreamId,
  streamVersion: Schema.Number,
  globalPosition: Schema.BigInt,
  recordedAt: Schema.Date,
  schemaVersion: Schema.Number,
  data: Schema.Unknown,
  metadata: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  tags: Schema.optional(Schema.Array(Schema.String))
})

/**
 * Encodes an event as the message payload (`Envelope` as JSON).
 *
 * @since 0.1.0
 * @category constructors
 */
export const encode = (event: StoredEvent): string =>
  JSON.stringify({ ...event, globalPosition: String(event.globalPosition), recordedAt: event.recordedAt.toISOString() })

const serversText = (servers: string | ReadonlyArray<string>) => typeof servers === "string" ? servers : servers.join(",")

const reasonOf = (cause: unknown) => cause instanceof Error ? cause.message : String(cause)

/**
 * Connects to NATS for the life of the scope; closing the scope drains the
 * connection (pending messages are flushed), then closes it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const connect = (options: ConnectionOptions): Effect.Effect<Nats.NatsConnection, NatsConnectError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () =>
        Nats.connect({
          servers: typeof options.servers === "string" ? options.servers : [...options.servers],
          name: options.name ?? "chronicle",
          timeout: Duration.toMillis(options.timeout ?? Duration.seconds(20))
        }),
      catch: (cause) => new NatsConnectError({ servers: serversText(options.servers), reason: reasonOf(cause), cause })
    }),
    (connection) =>
      connection.isClosed() ? Effect.void : Effect.promise(() => connection.drain()).pipe(
        Effect.timeout("10 seconds"),
        Effect.catchAllCause(() => Effect.promise(() => connection.close())),
        Effect.ignore
      )
  ).pipe(Effect.withSpan("NatsForwarder.connect", { attributes: { "nats.servers": serversText(options.servers) } }))

/**
 * The `NatsConnection` service for the life of the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const connectionLayer = (options: ConnectionOptions): Layer.Layer<NatsConnection, NatsConnectError> =>
  Layer.scoped(NatsConnection, connect(options))

/**
 * The `NatsConnection` service over a connection you manage yourself.
 *
 * @since 0.1.0
 * @category layers
 */
export const fromConnection = (connection: Nats.NatsConnection): Layer.Layer<NatsConnection> =>
  Layer.succeed(NatsConnection, connection)

const invalidToken = /[*>\s]/u

/** Whether `filter` (a stream subject, maybe with wildcards) captures every subject under `prefix`. */
const captures = (filter: string, prefix: string): boolean => {
  const tokens = filter.split(".")
  const wanted = [...prefix.split("."), ">"]
  for (let i = 0; i < tokens.length && i < wanted.length; i++) {
    const token = tokens[i]!
    if (token === ">") return true
    if (wanted[i] === ">" || (token !== "*" && token !== wanted[i])) return false
  }
  return false
}

/**
 * Makes sure the JetStream stream exists and captures `<prefix>.>`: creates it
 * (with the duplicate window) when missing, leaves an existing one as it is.
 * Safe to run concurrently.
 *
 * @since 0.1.0
 * @category constructors
 */
export const ensureStream = (options: {
  readonly stream?: string | undefined
  readonly prefix?: string | undefined
  readonly duplicateWindow?: Duration.DurationInput | undefined
}): Effect.Effect<void, NatsStreamError, NatsConnection> => {
  const stream = options.stream ?? defaults.stream
  const prefix = options.prefix ?? defaults.prefix
  const fail = (reason: string, cause?: unknown) => new NatsStreamError({ stream, reason, cause })
  if (stream.length === 0 || /[.*>/\\\s]/u.test(stream)) {
    return Effect.fail(fail("a stream name must be non-empty, without '.', '*', '>', '/', '\\' or whitespace"))
  }
  if (prefix.split(".").some((token) => token.length === 0 || invalidToken.test(token))) {
    return Effect.fail(fail(`the subject prefix ${JSON.stringify(prefix)} must be non-empty tokens without '*', '>' or whitespace`))
  }
  const subjects = `${prefix}.>`
  return Effect.flatMap(NatsConnection, (connection) =>
    Effect.tryPromise({
      try: async () => {
        const manager = await jetstreamManager(connection)
        const existing = () =>
          manager.streams.info(stream).then((info) => info, (error: unknown) => {
            if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return undefined
            throw error
          })
        const info = (await existing()) ?? await manager.streams.add({
          name: stream,
          subjects: [subjects],
          duplicate_window: Math.round(Duration.toMillis(options.duplicateWindow ?? defaults.duplicateWindow) * 1_000_000)
        }).catch(async (error: unknown) => {
          // another forwarder created it first (with another config)
          const raced = await existing()
          if (raced === undefined) throw error
          return raced
        })
        return info.config.subjects ?? []
      },
      catch: (cause) => fail(reasonOf(cause), cause)
    }).pipe(
      Effect.filterOrFail(
        (configured) => configured.some((filter) => captures(filter, prefix)),
        (configured) => fail(`it exists but captures ${configured.join(", ") || "no subjects"}, not ${subjects}`)
      ),
      Effect.asVoid
    )).pipe(Effect.withSpan("NatsForwarder.ensureStream", { attributes: { "nats.stream": stream, "nats.subjects": subjects } }))
}

/** A publish in flight: resolves to the failure, if any. Never rejects, so it may wait unobserved. */
type InFlight = Promise<NatsPublishError | PubAck>

const publishEvent = (
  js: JetStreamClient,
  subject: string,
  event: StoredEvent,
  timeout: number
): InFlight => {
  const failure = (reason: string, cause?: unknown) =>
    new NatsPublishError({ subject, eventId: event.eventId, position: event.globalPosition, reason, cause })
  const headers = Nats.headers()
  headers.set(headerNames.streamId, event.streamId)
  headers.set(headerNames.streamVersion, String(event.streamVersion))
  headers.set(headerNames.eventType, event.type)
  headers.set(headerNames.position, String(event.globalPosition))
  headers.set(headerNames.schemaVersion, String(event.schemaVersion))
  return js.publish(subject, encode(event), { msgID: event.eventId, headers, timeout }).then(
    (ack) => ack,
    (cause: unknown) =>
      failure(
        // the client reports "no stream captures this subject" as "jetstream is not enabled"
        cause instanceof Error && cause.name === "JetStreamNotEnabled"
          ? `no JetStream stream captures the subject (or JetStream is not enabled): ${cause.message}`
          : reasonOf(cause),
        cause
      )
  )
}

/**
 * Publishes a batch without waiting between messages, then awaits every
 * PubAck: the runner checkpoints only after the whole batch is acknowledged.
 */
const publishBatch = (js: JetStreamClient, settled: Settled) => (events: ReadonlyArray<StoredEvent>): Effect.Effect<void, NatsPublishError> =>
  Effect.suspend(() => {
    const inFlight: Array<InFlight> = []
    for (const event of events) {
      const subject = settled.subject(event)
      if (!subject.startsWith(`${settled.prefix}.`) || subject.split(".").some((token) => token.length === 0 || invalidToken.test(token))) {
        return Effect.fail(
          new NatsPublishError({
            subject,
            eventId: event.eventId,
            position: event.globalPosition,
            reason: `not a valid subject under ${settled.prefix}.> (the stream captures only those)`
          })
        )
      }
      inFlight.push(publishEvent(js, subject, event, settled.ackTimeout))
    }
    return Effect.promise(() => Promise.all(inFlight)).pipe(
      Effect.flatMap((outcomes) => {
        const failed = outcomes.find((outcome): outcome is NatsPublishError => outcome instanceof NatsPublishError)
        return failed === undefined
          ? Effect.annotateCurrentSpan("nats.duplicates", outcomes.filter((ack) => (ack as PubAck).duplicate).length)
          : Effect.fail(failed)
      }),
      Effect.withSpan("NatsForwarder.publish", {
        captureStackTrace: false,
        attributes: { "nats.stream": settled.stream, "chronicle.event_count": events.length }
      })
    )
  })

interface Settled {
  readonly name: string
  readonly stream: string
  readonly prefix: string
  readonly subject: (event: StoredEvent) => string
  readonly ackTimeout: number
}

const settle = (options: Options): Settled => {
  const prefix = options.prefix ?? defaults.prefix
  return {
    name: options.name ?? defaults.name,
    stream: options.stream ?? defaults.stream,
    prefix,
    subject: options.subject ?? defaultSubject(prefix),
    ackTimeout: Duration.toMillis(options.ackTimeout ?? defaults.ackTimeout)
  }
}

/**
 * Forwards the global log to JetStream forever: ensures the stream, then
 * publishes from the checkpoint on, chunk by chunk. Fails when the stream
 * cannot be set up, when it parks (`ProjectionParked` with a
 * `NatsPublishError` as the cause) or when the store fails.
 *
 * @since 0.1.0
 * @category runners
 */
export const run = (
  options: Options = {}
): Effect.Effect<
  never,
  NatsStreamError | ProjectionRunner.RunError,
  NatsConnection | EventStore.EventStore | CheckpointStore.CheckpointStore
> =>
  Effect.gen(function*() {
    const settled = settle(options)
    yield* ensureStream(options)
    const connection = yield* NatsConnection
    return yield* ProjectionRunner.run(
      Projection.batched({ name: settled.name, handleBatch: publishBatch(jetstream(connection), settled) }),
      {
        batchSize: options.batchSize ?? defaults.batchSize,
        retry: options.retry,
        from: options.from,
        pollInterval: options.pollInterval
      }
    )
  }).pipe(
    Effect.withSpan("NatsForwarder.run", {
      attributes: { "chronicle.projection": options.name ?? defaults.name, "nats.stream": options.stream ?? defaults.stream }
    })
  )

/**
 * Starts the forwarder in the background for the life of the scope. Closing
 * the scope stops it gracefully: the chunk in hand is published, acknowledged
 * and checkpointed first. Join the fiber to see why it stopped.
 *
 * @since 0.1.0
 * @category runners
 */
export const start = (
  options: Options = {}
): Effect.Effect<
  Fiber.RuntimeFiber<never, NatsStreamError | ProjectionRunner.RunError>,
  never,
  NatsConnection | EventStore.EventStore | CheckpointStore.CheckpointStore | Scope.Scope
> => Effect.forkScoped(run(options))
