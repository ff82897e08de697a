/**
 * The library's metrics, as Effect `Metric` handles under the `cassandra_` prefix, so they reach whatever metrics
 * backend the application already exports to (Prometheus, OpenTelemetry, …), and a readable summary with precise
 * latency percentiles.
 *
 * Metrics are recorded only when `layer` is provided to the session's layer; without it the request path does no
 * metrics work at all. The layer feeds them from three sources: the session itself (requests, latency, errors by
 * reason, pages, rows decoded), the driver's own hooks (its request tracker for per-node latency, its metrics
 * emitters for retries, speculative executions and per-attempt timeouts), and a fiber that polls the driver's
 * connection pools (connections, requests in flight and nodes up and down).
 *
 * Series are recorded in the `Metric.MetricRegistry` in effect where the session is built, with the
 * `Metric.CurrentMetricAttributes` in effect there added to each one (a cluster or service name, for example).
 *
 * | metric | type | attributes |
 * | --- | --- | --- |
 * | `cassandra_requests_total` | counter | `operation`, `keyspace`, `consistency`, `outcome` |
 * | `cassandra_request_duration_seconds` | histogram | `operation`, `keyspace`, `consistency`, `outcome` |
 * | `cassandra_node_request_duration_seconds` | histogram | `node`, `data_center`, `outcome` |
 * | `cassandra_errors_total` | counter | `operation`, `keyspace`, `reason` |
 * | `cassandra_client_timeouts_total` | counter | `scope` (and `node`, `data_center` for attempts) |
 * | `cassandra_retries_total` | counter | `node`, `data_center`, `reason` |
 * | `cassandra_speculative_executions_total` | counter | none |
 * | `cassandra_node_connections` | gauge | `node`, `data_center` |
 * | `cassandra_node_in_flight_requests` | gauge | `node`, `data_center` |
 * | `cassandra_nodes` | gauge | `data_center`, `state` |
 * | `cassandra_pages_fetched_total` | counter | `keyspace` |
 * | `cassandra_rows_decoded_total` | counter | none |
 * | `cassandra_row_decode_failures_total` | counter | none |
 * | `cassandra_tls_reloads_total` | counter | `outcome` |
 *
 * Attribute values: `operation` is the CQL verb (`SELECT`, `INSERT`, …; `BATCH` or `BATCH <verb>` for batches;
 * `OTHER` for a statement that does not start with one, so malformed text cannot mint new series);
 * `keyspace` is the keyspace the statement names, else the session's, else empty; `consistency` is the level's
 * lower-case name (`local_quorum`); `outcome` is `success`, `failure` or `interrupted`; `reason` is the tag of the
 * `CassandraError` reason (`Syntax`, `ReadTimeout`, …), or `Defect` for a request that died; `node` is the node's
 * `address:port` and `data_center` its data center; `state` is `up` or `down`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import type * as Latency from "./internal/metricsLatency.ts"
import { MetricsHub, makeMetricsHub } from "./internal/metricsRecorder.ts"

/**
 * Bucket boundaries of the latency histograms, in seconds: from 100 µs, doubling up to about 13 seconds.
 *
 * @since 0.1.0
 * @category metrics
 */
export const latencyBoundaries: ReadonlyArray<number> = Metric.exponentialBoundaries({
  start: 0.0001,
  factor: 2,
  count: 19
})

/**
 * Requests completed by the session, one per statement, batch or page of a stream; attributes `operation`,
 * `keyspace`, `consistency` and `outcome`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const requests: Metric.Counter<number> = Metric.counter("cassandra_requests_total", {
  description: "Requests completed by the session",
  incremental: true
})

/**
 * Latency of requests as the application sees it (retries and speculative executions included), in seconds;
 * attributes `operation`, `keyspace`, `consistency` and `outcome`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const requestDuration: Metric.Histogram<number> = Metric.histogram("cassandra_request_duration_seconds", {
  description: "End-to-end latency of requests, in seconds",
  boundaries: latencyBoundaries
})

/**
 * Latency of each execution the driver sent to a node as coordinator, in seconds: a retry or a speculative execution
 * counts at the node it went to, while preparing a statement is not an execution. Attributes `node`, `data_center`
 * and `outcome` (`success` or `failure`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const nodeRequestDuration: Metric.Histogram<number> = Metric.histogram(
  "cassandra_node_request_duration_seconds",
  { description: "Latency of executions per coordinator node, in seconds", boundaries: latencyBoundaries }
)

/**
 * Requests that failed, by the tag of their `CassandraError` reason; attributes `operation`, `keyspace` and `reason`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const errors: Metric.Counter<number> = Metric.counter("cassandra_errors_total", {
  description: "Failed requests by error reason",
  incremental: true
})

/**
 * Client-side timeouts. `scope="request"`: requests that failed because the client stopped waiting (the session's
 * `requestTimeout`, or the driver's per-attempt timeout on the last attempt). `scope="attempt"`: each attempt the
 * driver stopped waiting for at one node (it may have been retried), with `node` and `data_center`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const clientTimeouts: Metric.Counter<number> = Metric.counter("cassandra_client_timeouts_total", {
  description: "Requests and attempts the client stopped waiting for",
  incremental: true
})

/**
 * Retries decided by the driver's retry policy, at the node whose answer caused them; attributes `node`,
 * `data_center` and `reason` (`ReadTimeout`, `WriteTimeout`, `Unavailable`, `ClientTimeout` or `Other`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const retries: Metric.Counter<number> = Metric.counter("cassandra_retries_total", {
  description: "Retries by node and reason",
  incremental: true
})

/**
 * Speculative executions started by the driver (extra executions of slow idempotent requests).
 *
 * @since 0.1.0
 * @category metrics
 */
export const speculativeExecutions: Metric.Counter<number> = Metric.counter("cassandra_speculative_executions_total", {
  description: "Speculative executions started",
  incremental: true
})

/**
 * Connections open to a node, as last polled; attributes `node` and `data_center`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const nodeConnections: Metric.Gauge<number> = Metric.gauge("cassandra_node_connections", {
  description: "Open connections per node"
})

/**
 * Requests in flight on a node's connections, as last polled; attributes `node` and `data_center`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const nodeInFlight: Metric.Gauge<number> = Metric.gauge("cassandra_node_in_flight_requests", {
  description: "Requests in flight per node"
})

/**
 * Nodes known to the driver, by `data_center` and `state` (`up` or `down`), as last polled.
 *
 * @since 0.1.0
 * @category metrics
 */
export const nodes: Metric.Gauge<number> = Metric.gauge("cassandra_nodes", {
  description: "Nodes up and down per data center"
})

/**
 * Pages of rows fetched: every successful request that returned rows (a query, or one page of a stream); attribute
 * `keyspace`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const pagesFetched: Metric.Counter<number> = Metric.counter("cassandra_pages_fetched_total", {
  description: "Pages of rows fetched",
  incremental: true
})

/**
 * Rows decoded by `CqlSchema` result Schemas.
 *
 * @since 0.1.0
 * @category metrics
 */
export const rowsDecoded: Metric.Counter<number> = Metric.counter("cassandra_rows_decoded_total", {
  description: "Rows decoded by result schemas",
  incremental: true
})

/**
 * Rows that a `CqlSchema` result Schema could not decode.
 *
 * @since 0.1.0
 * @category metrics
 */
export const decodeFailures: Metric.Counter<number> = Metric.counter("cassandra_row_decode_failures_total", {
  description: "Rows that failed to decode",
  incremental: true
})

/**
 * Changed TLS certificate sets a session looked at (see `Session.TlsOptions.reloadInterval`), by `outcome`: `loaded`
 * (new connections use them) or `rejected` (unusable: the session keeps the last set that loaded, and logs why).
 *
 * @since 0.1.0
 * @category metrics
 */
export const tlsReloads: Metric.Counter<number> = Metric.counter("cassandra_tls_reloads_total", {
  description: "Changed TLS certificate sets loaded or rejected",
  incremental: true
})

/**
 * Differences between the declared tables and types and the cluster's schema that would fail `SchemaCheck.layer`,
 * as its latest check found them (0 when the schema matches); attribute `keyspace`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const schemaDrift: Metric.Gauge<number> = Metric.gauge("cassandra_schema_drift", {
  description: "Differences from the declared schema found by the latest schema check"
})

/**
 * A latency distribution in seconds. Percentiles are nearest-rank (the ⌈q·n⌉-th smallest latency), read from a
 * log-linear histogram with 64 buckets per power of two: each is within 0.55% of the exact value (1 µs below
 * 1 µs), whatever the number of requests.
 *
 * @since 0.1.0
 * @category models
 */
export type LatencyStatistics = Latency.LatencyStatistics

/**
 * One node in the summary: its state and pool now, and what the driver sent it since the layer started.
 *
 * @since 0.1.0
 * @category models
 */
export interface NodeSummary {
  /** `address:port` of the node. */
  readonly node: string
  readonly dataCenter: string
  /** As the sessions' drivers see the node now; `unknown` once no open session knows it. */
  readonly state: "up" | "down" | "unknown"
  /** Connections open now. */
  readonly connections: number
  /** Requests in flight now. */
  readonly inFlight: number
  /** Latency of the executions this node coordinated (retries and speculative executions each count). */
  readonly latency: LatencyStatistics
  /** Executions this node coordinated that failed. */
  readonly failures: number
  /** Retries caused by this node's answers. */
  readonly retries: number
}

/**
 * What the sessions did since the metrics layer started, for people: counts, rate, latency percentiles, errors by
 * reason, and each node.
 *
 * @since 0.1.0
 * @category models
 */
export interface Summary {
  /** When the metrics layer started recording. */
  readonly since: Date
  readonly elapsedSeconds: number
  /** Requests completed (statements, batches and pages), whatever their outcome. */
  readonly requests: number
  /** Seconds during which requests ran: from the start of the first request to the end of the last. */
  readonly requestSeconds: number
  /**
   * Requests completed per second over `requestSeconds`: the rate while requests ran, however long the layer was
   * idle before the first or after the last.
   */
  readonly requestRate: number
  readonly succeeded: number
  readonly failed: number
  readonly interrupted: number
  /** End-to-end latency of every completed request. */
  readonly latency: LatencyStatistics
  readonly errorsByReason: Readonly<Record<string, number>>
  readonly clientTimeouts: number
  readonly retries: number
  readonly speculativeExecutions: number
  readonly pagesFetched: number
  readonly rowsDecoded: number
  readonly decodeFailures: number
  readonly nodes: ReadonlyArray<NodeSummary>
}

/**
 * The metrics service: the summary of what the sessions built with it did.
 *
 * @since 0.1.0
 * @category models
 */
export interface Metrics {
  readonly summary: Effect.Effect<Summary>
}

/**
 * The service key of the metrics service.
 *
 * @since 0.1.0
 * @category services
 */
export const Metrics: Context.Service<Metrics, Metrics> = Context.Service<Metrics>("effect-cassandra/Metrics")

/**
 * Settings of the metrics layer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How often the connection pools are polled for the gauges (default 5 seconds). */
  readonly pollInterval?: Duration.Input | undefined
}

/**
 * Records the metrics of every session built with this layer provided, and provides the summary. Provide it to the
 * session's layer, and merge it to read the summary:
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { CassandraLayer, Metrics } from "effect-cassandra"
 *
 * const CassandraLive = CassandraLayer.layer({ contactPoints: ["127.0.0.1"], localDataCenter: "datacenter1" }).pipe(
 *   Layer.provideMerge(Metrics.layer())
 * )
 *
 * const report = Effect.flatMap(Metrics.summary, (summary) => Effect.log(Metrics.formatSummary(summary)))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Metrics> =>
  Layer.effectContext(
    Effect.map(makeMetricsHub(options.pollInterval ?? "5 seconds"), (hub) =>
      Context.make(Metrics, { summary: hub.summary }).pipe(Context.add(MetricsHub, hub))
    )
  )

/**
 * The summary of what the sessions did since the metrics layer started.
 *
 * @since 0.1.0
 * @category accessors
 */
export const summary: Effect.Effect<Summary, never, Metrics> = Metrics.use((metrics) => metrics.summary)

const milliseconds = (seconds: number) => `${(seconds * 1000).toFixed(seconds < 0.01 ? 3 : 1)} ms`

const formatLatency = (latency: LatencyStatistics) =>
  latency.count === 0
    ? "no requests"
    : [
        `mean ${milliseconds(latency.mean)}`,
        `p50 ${milliseconds(latency.p50)}`,
        `p75 ${milliseconds(latency.p75)}`,
        `p95 ${milliseconds(latency.p95)}`,
        `p98 ${milliseconds(latency.p98)}`,
        `p99 ${milliseconds(latency.p99)}`,
        `p99.9 ${milliseconds(latency.p999)}`,
        `max ${milliseconds(latency.max)}`
      ].join(", ")

/**
 * Renders a summary as text, one fact per line.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatSummary = (summary: Summary): string => {
  const reasons = Object.entries(summary.errorsByReason)
    .sort(([, a], [, b]) => b - a)
    .map(([reason, count]) => `${reason} ${count}`)
  return [
    `requests: ${summary.requests} in ${summary.requestSeconds.toFixed(1)} s of requests (${summary.requestRate.toFixed(1)}/s), ${summary.elapsedSeconds.toFixed(1)} s since the layer started: ${summary.succeeded} succeeded, ${summary.failed} failed, ${summary.interrupted} interrupted`,
    `latency: ${formatLatency(summary.latency)}`,
    `errors by reason: ${reasons.length === 0 ? "none" : reasons.join(", ")}`,
    `client timeouts ${summary.clientTimeouts}, retries ${summary.retries}, speculative executions ${summary.speculativeExecutions}`,
    `pages fetched ${summary.pagesFetched}, rows decoded ${summary.rowsDecoded}, decode failures ${summary.decodeFailures}`,
    ...summary.nodes.map(
      (node) =>
        `node ${node.node} (${node.dataCenter}) ${node.state}: ${node.connections} connections, ${node.inFlight} in flight, ${node.latency.count} executions (${node.failures} failed, ${node.retries} retried): ${formatLatency(node.latency)}`
    )
  ].join("\n")
}
