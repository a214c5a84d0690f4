/**
 * chronicle/nats: the NATS JetStream integration, a subpath of its own so
 * the main entry never loads the NATS client.
 *
 * @since 0.1.0
 */

/** Forwards the global log to a NATS JetStream stream, every event once. */
export * as NatsForwarder from "./NatsForwarder.js"
