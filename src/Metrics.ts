/**
 * The metrics chronicle records. They are ordinary Effect `Metric`s: read them
 * with `Metric.value`, or export them with any Effect metrics exporter.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

/**
 * Successful appends (batches), tagged with the store.
 *
 * @since 0.1.0
 * @category metrics
 */
export const appends = Metric.counter("chronicle_appends_total", {
  description: "Successful append calls",
  incremental: true
})

/**
 * Events written by successful appends.
 *
 * @since 0.1.0
 * @category metrics
 */
export const eventsAppended = Metric.counter("chronicle_events_appended_total", {
  description: "Events written by appends",
  incremental: true
})

/**
 * Appends rejected because the stream was not at the expected version.
 *
 * @since 0.1.0
 * @category metrics
 */
export const concurrencyConflicts = Metric.counter("chronicle_concurrency_conflicts_total", {
  description: "Appends rejected with a ConcurrencyConflict",
  incremental: true
})

/**
 * Command attempts re-run after a concurrency conflict.
 *
 * @since 0.1.0
 * @category metrics
 */
export const commandRetries = Metric.counter("chronicle_command_retries_total", {
  description: "Command handler retries after a concurrency conflict",
  incremental: true
})

/**
 * Commands that gave up after their retry schedule ran out.
 *
 * @since 0.1.0
 * @category metrics
 */
export const commandRetriesExhausted = Metric.counter("chronicle_command_retries_exhausted_total", {
  description: "Commands that failed after exhausting their conflict retries",
  incremental: true
})

/**
 * Time to load an aggregate (read and fold its events), in milliseconds.
 *
 * @since 0.1.0
 * @category metrics
 */
export const aggregateLoadMillis = Metric.histogram(
  "chronicle_aggregate_load_ms",
  MetricBoundaries.exponential({ start: 0.25, factor: 2, count: 16 }),
  "Time to load an aggregate, in milliseconds"
)

/**
 * Events folded while loading aggregates.
 *
 * @since 0.1.0
 * @category metrics
 */
export const eventsLoaded = Metric.counter("chronicle_events_loaded_total", {
  description: "Events folded into aggregate state while loading",
  incremental: true
})

/**
 * Snapshots taken by command handlers.
 *
 * @since 0.1.0
 * @category metrics
 */
export const snapshotsTaken = Metric.counter("chronicle_snapshots_taken_total", {
  description: "Snapshots saved by command handlers",
  incremental: true
})

/**
 * Snapshots that could not be taken (the command still succeeded).
 *
 * @since 0.1.0
 * @category metrics
 */
export const snapshotFailures = Metric.counter("chronicle_snapshot_failures_total", {
  description: "Snapshots that failed to save; the command succeeded regardless",
  incremental: true
})

/**
 * Snapshots found but not used: unreadable or damaged (a checksum mismatch),
 * another state schema version, a state that does not decode, or a version
 * the stream never reached. The aggregate was replayed instead.
 *
 * @since 0.1.0
 * @category metrics
 */
export const snapshotsIgnored = Metric.counter("chronicle_snapshots_ignored_total", {
  description: "Snapshots ignored on load (damaged, state schema version, decoding, beyond the stream); replayed instead",
  incremental: true
})

/**
 * Events delivered to subscriptions, tagged by `store`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const subscriptionEvents = Metric.counter("chronicle_subscription_events_total", {
  description: "Events delivered to subscriptions",
  incremental: true
})

/**
 * Events handled by projections, tagged by `projection`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const projectionEvents = Metric.counter("chronicle_projection_events_total", {
  description: "Events handled by projections",
  incremental: true
})

/**
 * Projection handler attempts that failed and were retried, tagged by `projection`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const projectionRetries = Metric.counter("chronicle_projection_retries_total", {
  description: "Failed projection batches that were retried",
  incremental: true
})

/**
 * Projections parked after exhausting their retries, tagged by `projection`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const projectionsParked = Metric.counter("chronicle_projections_parked_total", {
  description: "Projections parked on an event their handler kept failing on",
  incremental: true
})

/**
 * Conditional appends refused because an event matched their condition, tagged by `store`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const appendConditionFailures = Metric.counter("chronicle_append_condition_failures_total", {
  description: "Conditional (DCB) appends refused: an event matched the condition's query",
  incremental: true
})

/**
 * Commands whose aggregate came from the `AggregateCache` (only the events after it were read).
 *
 * @since 0.2.0
 * @category metrics
 */
export const aggregateCacheHits = Metric.counter("chronicle_aggregate_cache_hits_total", {
  description: "Commands whose aggregate was found in the AggregateCache",
  incremental: true
})

/**
 * Commands that found no aggregate in the `AggregateCache` and loaded the stream.
 *
 * @since 0.2.0
 * @category metrics
 */
export const aggregateCacheMisses = Metric.counter("chronicle_aggregate_cache_misses_total", {
  description: "Commands whose aggregate was not in the AggregateCache",
  incremental: true
})

/**
 * Commands whose events went out in one append of the command handler: 1
 * when a command ran alone, more when concurrent commands to one stream were
 * coalesced.
 *
 * @since 0.2.0
 * @category metrics
 */
export const commandBatchSize = Metric.histogram(
  "chronicle_command_batch_size",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 10 }),
  "Commands per append of the command handler (coalesced commands to one stream)"
)

/**
/**
 * Successful `appendMany` calls (atomic appends across streams), tagged by
 * `store`; their events count in `chronicle_events_appended_total`.
 *
 * @since 0.2.0
 * @category metrics
 */
export const appendManyCalls = Metric.counter("chronicle_append_many_total", {
  description: "Successful atomic appends across streams (appendMany calls)",
  incremental: true
})

/**
 * Partitions a consumer group member holds (runs a lane for), tagged with the group.
 *
 * @since 0.2.0
 * @category metrics
 */
export const consumerGroupPartitions = Metric.gauge("chronicle_consumer_group_partitions", {
  description: "Partitions this member of a consumer group holds"
})

/**
 * Partitions a consumer group member took or gave back (rebalancing), tagged with the group.
 *
 * @since 0.2.0
 * @category metrics
 */
export const consumerGroupRebalances = Metric.counter("chronicle_consumer_group_rebalances_total", {
  description: "Partitions claimed or released by members of a consumer group",
  incremental: true
})

/**
 * Filesystem store opens that loaded the index checkpoint (and scanned only the log after it).
 *
 * @since 0.2.0
 * @category metrics
 */
export const filesystemCheckpointsLoaded = Metric.counter("chronicle_filesystem_checkpoints_loaded_total", {
  description: "Filesystem store opens that loaded the index checkpoint",
  incremental: true
})

/**
 * Index checkpoints found but ignored (damaged, foreign, of another format, or covering more than the log): the log was scanned in full.
 *
 * @since 0.2.0
 * @category metrics
 */
export const filesystemCheckpointsIgnored = Metric.counter("chronicle_filesystem_checkpoints_ignored_total", {
  description: "Index checkpoints that did not check out and were ignored",
  incremental: true
})

/**
 * Index checkpoints written (in the background, or when the store closed).
 *
 * @since 0.2.0
 * @category metrics
 */
export const filesystemCheckpointsWritten = Metric.counter("chronicle_filesystem_checkpoints_written_total", {
  description: "Index checkpoints written by filesystem stores",
  incremental: true
})

/**
 * Verifications of a loaded checkpoint that found a block of the log changed (an erasure, or damage) and scanned the log in full.
 *
 * @since 0.2.0
 * @category metrics
 */
export const filesystemCheckpointFullScans = Metric.counter("chronicle_filesystem_checkpoint_full_scans_total", {
  description: "Checkpoint verifications that fell back to a full scan of the log",
  incremental: true
})
