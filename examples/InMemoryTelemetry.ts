/**
 * OpenTelemetry kept in memory: the SDK under `NodeSdk.layer` with exporters
 * the program reads itself, and finished spans as trees (what a tracing
 * backend's waterfall shows, in text). Used by the telemetry example and its
 * test.
 */
import { NodeSdk } from "@effect/opentelemetry"
import { MetricReader } from "@opentelemetry/sdk-metrics"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect } from "effect"

/** A metric reader read on demand; a service would use a periodic exporter. */
class OnDemandReader extends MetricReader {
  protected override onShutdown = () => Promise.resolve()
  protected override onForceFlush = () => Promise.resolve()
}

/** `NodeSdk.layer` exporting spans to memory and metrics to a reader read on demand. */
export const inMemory = (serviceName: string) => {
  const spans = new InMemorySpanExporter()
  const metrics = new OnDemandReader()
  const layer = NodeSdk.layer(() => ({
    resource: { serviceName },
    spanProcessor: new SimpleSpanProcessor(spans),
    metricReader: metrics
  }))
  const collectMetrics = Effect.promise(() => metrics.collect()).pipe(
    Effect.map(({ resourceMetrics }) => resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics))
  )
  return { spans, collectMetrics, layer }
}

export type SpanTree = string | { readonly [name: string]: ReadonlyArray<SpanTree> }

const startOrder = (a: ReadableSpan, b: ReadableSpan) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]

/** The spans as nested names, children sorted by name (spans started in one millisecond have no order). */
export const treeOf = (spans: ReadonlyArray<ReadableSpan>): ReadonlyArray<SpanTree> => {
  const ids = new Set(spans.map((span) => span.spanContext().spanId))
  const children = new Map<string, Array<ReadableSpan>>()
  const roots: Array<ReadableSpan> = []
  for (const span of [...spans].sort((a, b) => a.name.localeCompare(b.name))) {
    const parent = span.parentSpanContext?.spanId
    if (parent !== undefined && ids.has(parent)) children.set(parent, [...(children.get(parent) ?? []), span])
    else roots.push(span)
  }
  const render = (span: ReadableSpan): SpanTree => {
    const below = (children.get(span.spanContext().spanId) ?? []).map(render)
    return below.length === 0 ? span.name : { [span.name]: below }
  }
  return roots.map(render)
}

/** The tree as indented lines, each span with its duration and the attributes asked for. */
export const formatTree = (spans: ReadonlyArray<ReadableSpan>, attributes: ReadonlyArray<string>): string => {
  const ids = new Set(spans.map((span) => span.spanContext().spanId))
  const lines: Array<string> = []
  const visit = (span: ReadableSpan, depth: number) => {
    const millis = (span.duration[0] * 1e3 + span.duration[1] / 1e6).toFixed(2)
    const shown = attributes.filter((key) => span.attributes[key] !== undefined)
      .map((key) => `${key}=${String(span.attributes[key])}`)
    lines.push(`${"  ".repeat(depth)}${span.name} ${millis} ms${shown.length > 0 ? `  ${shown.join(" ")}` : ""}`)
    for (const child of spans.filter((s) => s.parentSpanContext?.spanId === span.spanContext().spanId).sort(startOrder)) {
      visit(child, depth + 1)
    }
  }
  for (const root of spans.filter((s) => !ids.has(s.parentSpanContext?.spanId ?? "")).sort(startOrder)) visit(root, 0)
  return lines.join("\n")
}
