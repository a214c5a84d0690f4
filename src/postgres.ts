/**
 * chronicle/postgres: the PostgreSQL stores, an entry of its own so the main
 * entry never loads `pg`. Needs the optional peers `@effect/sql`,
 * `@effect/sql-pg` and `pg` (`npm i @effect/sql @effect/sql-pg pg`).
 *
 * @example
 * import { PostgresEventStore } from "chronicle/postgres"
 * const Store = PostgresEventStore.layerFromUrl({ url: process.env.DATABASE_URL!, schema: "billing" })
 *
 * @since 0.1.0
 */

/** The PostgreSQL event store. */
export * as PostgresEventStore from "./stores/postgres/PostgresEventStore.js"
/** The PostgreSQL checkpoint store. */
export * as PostgresCheckpointStore from "./stores/postgres/PostgresCheckpointStore.js"
/** The PostgreSQL snapshot store. */
export * as PostgresSnapshotStore from "./stores/postgres/PostgresSnapshotStore.js"
/** The PostgreSQL consumer group store: members, leases and fencing of partitions. */
export * as PostgresConsumerGroupStore from "./stores/postgres/PostgresConsumerGroupStore.js"
