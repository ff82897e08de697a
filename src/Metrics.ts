/**
 * The library's metrics, as Effect `Metric` handles under the `cassandra_` prefix, so they reach whatever metrics
 * backend the application already exports to.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"

/**
 * Requests completed by the session, with the attributes `operation` (the CQL verb) and `outcome`
 * (`success` or the error reason's tag).
 *
 * @since 0.1.0
 * @category metrics
 */
export const requests: Metric.Counter<number> = Metric.counter("cassandra_requests_total", {
  description: "Requests completed by the session, by operation and outcome",
  incremental: true
})

/**
 * Latency of requests as the application sees it (retries and speculative executions included), in seconds.
 *
 * @since 0.1.0
 * @category metrics
 */
export const requestDuration: Metric.Histogram<number> = Metric.histogram("cassandra_request_duration_seconds", {
  description: "End-to-end latency of requests, in seconds",
  boundaries: Metric.exponentialBoundaries({ start: 0.0005, factor: 2, count: 16 })
})
