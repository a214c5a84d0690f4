/**
 * The PostgreSQL consumer group store: the `group_members` and
 * `group_partitions` tables of the event store's schema. Leases expire in
 * database time; the fence is a `FOR SHARE` lock on the partition's row,
 * taken inside the checkpoint's transaction (use the same `SqlClient` as the
 * checkpoint store), which a takeover's update has to wait for. A lane's
 * transaction sets its own `idle_in_transaction_session_timeout`
 * (`limitIdle`), so a stalled member's batch ends with its lease.
 *
 * @since 0.2.0
 */
import { SqlClient } from "@effect/sql"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ConsumerGroup from "../../ConsumerGroup.js"
import { StoreError } from "../../EventStore.js"
import { storeError } from "../../internal/postgres/errors.js"
import { prepare } from "../../internal/postgres/schema.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface PostgresConsumerGroupStoreOptions {
  /** The PostgreSQL schema of the store; default `chronicle`. */
  readonly schema?: string | undefined
  /** Apply the schema migrations when the store is built; default true. */
  readonly migrate?: boolean | undefined
}

interface LeaseRow {
  readonly partition: number
  readonly generation: string
}

const leases = (rows: ReadonlyArray<LeaseRow>): ReadonlyArray<ConsumerGroup.Lease> =>
  rows.map((row) => ({ partition: row.partition, generation: BigInt(row.generation) }))

/**
 * Builds the consumer group store over the `SqlClient` in context.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  options: PostgresConsumerGroupStoreOptions = {}
): Effect.Effect<ConsumerGroup.ConsumerGroupStoreService, StoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const tables = yield* prepare(options)
    const sql = yield* SqlClient.SqlClient
    const members = `${tables.schema}.group_members`
    const partitions = `${tables.schema}.group_partitions`
    const expiry = `now() + $3::bigint * interval '1 millisecond'`
    const statements = {
      create: `INSERT INTO ${partitions} (group_name, partition, partitions)
        SELECT $1, p, $2 FROM generate_series(0, $2::int - 1) AS p
         WHERE NOT EXISTS (SELECT 1 FROM ${partitions} WHERE group_name = $1)
        ON CONFLICT DO NOTHING`,
      shape: `SELECT count(*)::int AS count, min(partitions) AS low, max(partitions) AS high FROM ${partitions} WHERE group_name = $1`,
      live: `INSERT INTO ${members} AS m (group_name, member, expires_at) VALUES ($1, $2, ${expiry})
        ON CONFLICT (group_name, member) DO UPDATE SET expires_at = EXCLUDED.expires_at`,
      renew: `UPDATE ${partitions} SET expires_at = ${expiry} WHERE group_name = $1 AND owner = $2
        RETURNING partition, generation::text AS generation`,
      members: `SELECT member FROM ${members} WHERE group_name = $1 AND expires_at > now() ORDER BY member`,
      // free or expired ones; a row a lane's commit holds (FOR SHARE) is skipped until it commits
      claim: `UPDATE ${partitions} AS gp SET owner = $2, generation = gp.generation + 1, expires_at = ${expiry}
        FROM (SELECT partition FROM ${partitions}
               WHERE group_name = $1 AND (owner IS NULL OR expires_at < now())
               ORDER BY partition LIMIT $4 FOR UPDATE SKIP LOCKED) AS free
        WHERE gp.group_name = $1 AND gp.partition = free.partition
        RETURNING gp.partition, gp.generation::text AS generation`,
      release: `UPDATE ${partitions} SET owner = NULL, expires_at = '-infinity'
        WHERE group_name = $1 AND owner = $2 AND partition = $3 AND generation = $4`,
      releaseAll: `UPDATE ${partitions} SET owner = NULL, expires_at = '-infinity' WHERE group_name = $1 AND owner = $2`,
      forget: `DELETE FROM ${members} WHERE group_name = $1 AND member = $2`,
      fence: `SELECT 1 FROM ${partitions} WHERE group_name = $1 AND partition = $2 AND owner = $3 AND generation = $4 FOR SHARE`,
      // set_config(..., true) is SET LOCAL with a parameter: it ends with the transaction
      limitIdle: `SELECT set_config('idle_in_transaction_session_timeout', $1, true)`
    }
    const span = (operation: string, group: string, member?: string) =>
      Effect.withSpan(`ConsumerGroupStore.${operation}`, {
        kind: "client",
        captureStackTrace: false,
        attributes: { "chronicle.store": "postgres", "chronicle.group": group, ...(member === undefined ? {} : { "chronicle.member": member }) }
      })
    const failing = (operation: string) => Effect.mapError((error: unknown) => error instanceof StoreError ? error : storeError(operation, error))
    const ms = (ttl: Duration.Duration) => String(Math.max(1, Math.round(Duration.toMillis(ttl))))

    return {
      join: (group, count) =>
        Effect.gen(function*() {
          yield* sql.unsafe(statements.create, [group, count])
          const [shape] = yield* sql.unsafe<{ count: number; low: number; high: number }>(statements.shape, [group])
          if (shape?.count !== count || shape.low !== count || shape.high !== count) {
            return yield* Effect.fail(
              new StoreError({
                operation: "joinConsumerGroup",
                reason: `group ${JSON.stringify(group)} has ${shape?.count ?? 0} partitions, not ${count}: every member must use the same count`
              })
            )
          }
        }).pipe(failing("joinConsumerGroup"), span("join", group)),
      heartbeat: (group, member, ttl) =>
        Effect.gen(function*() {
          yield* sql.unsafe(statements.live, [group, member, ms(ttl)])
          const owned = yield* sql.unsafe<LeaseRow>(statements.renew, [group, member, ms(ttl)])
          const live = yield* sql.unsafe<{ member: string }>(statements.members, [group])
          return { members: live.map((row) => row.member), owned: leases(owned) }
        }).pipe(failing("consumerGroupHeartbeat"), span("heartbeat", group, member)),
      claim: (group, member, ttl, count) =>
        sql.unsafe<LeaseRow>(statements.claim, [group, member, ms(ttl), count]).pipe(
          Effect.map(leases),
          failing("claimPartitions"),
          span("claim", group, member)
        ),
      release: (group, member, lease) =>
        sql.unsafe(statements.release, [group, member, lease.partition, lease.generation.toString()]).pipe(
          Effect.asVoid,
          failing("releasePartition"),
          span("release", group, member)
        ),
      leave: (group, member) =>
        Effect.zipRight(sql.unsafe(statements.releaseAll, [group, member]), sql.unsafe(statements.forget, [group, member])).pipe(
          Effect.asVoid,
          failing("leaveConsumerGroup"),
          span("leave", group, member)
        ),
      fence: (group, member, lease) =>
        sql.unsafe(statements.fence, [group, lease.partition, member, lease.generation.toString()]).pipe(
          failing("fencePartition"),
          Effect.flatMap((rows) =>
            rows.length === 1
              ? Effect.void
              : Effect.fail(new ConsumerGroup.PartitionLost({ group, partition: lease.partition, member, generation: lease.generation }))
          ),
          span("fence", group, member)
        ),
      limitIdle: (timeout) =>
        sql.unsafe(statements.limitIdle, [ms(timeout)]).pipe(Effect.asVoid, failing("limitIdleInTransaction"))
    }
  })

/**
 * The consumer group store as a Layer over the `SqlClient` in context.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: PostgresConsumerGroupStoreOptions = {}
): Layer.Layer<ConsumerGroup.ConsumerGroupStore, StoreError, SqlClient.SqlClient> =>
  Layer.effect(ConsumerGroup.ConsumerGroupStore, make(options))
