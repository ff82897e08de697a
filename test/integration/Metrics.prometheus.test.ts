import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { testConnection } from "../support/cassandra.ts"
import * as Prometheus from "../support/prometheus.ts"
import { awaitReady, pollUntil, spawnServer } from "../support/serverProcess.ts"

// What examples/metrics.ts sends: 200 inserts; 50 lookups and a stream of the 200 rows in pages of 50, which takes 5
// pages (the server cannot tell that the fourth one was the last); two CREATE statements; and three statements the
// server refuses while preparing them, which is not an execution at a node.
const inserts = 200
const selects = 50 + 5
const nodeExecutions = 2 + inserts + selects
const syntaxErrors = 3

/** The example's `attemptTimeout` (the session's default): no execution at a node can be slower. */
const attemptTimeoutSeconds = 6

// The example listens on a port the kernel picks when it binds (its default), so no other process can take it first.
const exampleEnv = (): Record<string, string> => {
  const connection = testConnection()
  return {
    CASSANDRA_CONTACT_POINTS: connection.contactPoints.join(","),
    CASSANDRA_LOCAL_DC: connection.localDataCenter,
    METRICS_KEEP_SERVING: "true",
    ...(connection.credentials === undefined
      ? {}
      : { CASSANDRA_USERNAME: connection.credentials.username, CASSANDRA_PASSWORD: connection.credentials.password })
  }
}

/** The value of a query that must give exactly one series. */
const single = (prometheus: Prometheus.Prometheus, promql: string) =>
  Effect.map(prometheus.query(promql), (samples) => {
    assert.lengthOf(samples, 1, `${promql} gave ${JSON.stringify(samples)}`)
    return samples[0]!
  })

describe("Metrics in a real Prometheus", () => {
  it.live(
    "examples/metrics.ts serves /metrics that Prometheus scrapes: request counts, per-node latency and its p99",
    () =>
      Effect.gen(function* () {
        const example = yield* spawnServer(
          "examples/metrics.ts",
          process.execPath,
          ["--conditions=effect-cassandra/source", "examples/metrics.ts"],
          { env: exampleEnv() }
        )
        const listening = yield* pollUntil(
          example,
          "the address of /metrics logged",
          Effect.sync(() => /Listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(example.output())?.[1]),
          (port) => port !== undefined,
          "120 seconds"
        )
        const metricsPort = Number(listening)
        const prometheus = yield* Prometheus.start([`127.0.0.1:${metricsPort}`])
        yield* awaitReady(
          example,
          "the end of the workload",
          Effect.sync(() => /serving \/metrics until interrupted/.test(example.output())),
          "120 seconds"
        )
        // Counts are final once Prometheus has scraped the example after its workload ended.
        const workloadDone = Date.now() / 1000
        yield* pollUntil(
          example,
          "a scrape after the workload",
          prometheus.query('timestamp(up{job="test"} == 1)').pipe(Effect.orDie),
          (samples) => samples.some((sample) => sample.value > workloadDone),
          "30 seconds"
        )

        const insertCount = yield* single(prometheus, 'cassandra_requests_total{operation="INSERT"}')
        assert.deepStrictEqual(insertCount.labels, {
          __name__: "cassandra_requests_total",
          job: "test",
          instance: `127.0.0.1:${metricsPort}`,
          operation: "INSERT",
          keyspace: "example_metrics",
          consistency: "local_quorum",
          outcome: "success"
        })
        assert.strictEqual(insertCount.value, inserts)
        const selectCount = yield* single(prometheus, 'cassandra_requests_total{operation="SELECT",outcome="success"}')
        assert.strictEqual(selectCount.value, selects)
        const errors = yield* single(prometheus, 'cassandra_errors_total{reason="Syntax"}')
        assert.strictEqual(errors.value, syntaxErrors)
        // The example's malformed statements (`SELEKT …`) share the bounded operation value, not one of their own.
        assert.strictEqual(errors.labels.operation, "OTHER")

        const nodes = testConnection().contactPoints.map((point) => (point.includes(":") ? point : `${point}:9042`))
        const perNode = yield* prometheus.query("cassandra_node_request_duration_seconds_count")
        assert.isNotEmpty(perNode)
        for (const sample of perNode) {
          assert.include(nodes, sample.labels.node)
          assert.strictEqual(sample.labels.outcome, "success")
          assert.strictEqual(sample.labels.data_center, testConnection().localDataCenter)
        }
        const executions = yield* single(prometheus, "sum(cassandra_node_request_duration_seconds_count)")
        assert.strictEqual(executions.value, nodeExecutions)
        const inInfBucket = yield* single(prometheus, 'sum(cassandra_node_request_duration_seconds_bucket{le="+Inf"})')
        assert.strictEqual(inInfBucket.value, nodeExecutions)

        const p99 = yield* single(
          prometheus,
          "histogram_quantile(0.99, sum by (le) (cassandra_node_request_duration_seconds_bucket))"
        )
        assert.isTrue(Number.isFinite(p99.value), `p99 ${p99.value}`)
        assert.isAbove(p99.value, 0)
        assert.isBelow(p99.value, attemptTimeoutSeconds)

        // The PromQL the example prints for a dashboard is valid and names series Prometheus has.
        const printed = example
          .output()
          .split("\n")
          .filter((line) => line.startsWith("  ") && line.includes("cassandra_"))
          .map((line) => line.trim())
        assert.lengthOf(printed, 2, example.output())
        for (const query of printed) {
          const metric = /cassandra_[a-z_]+/.exec(query)?.[0] ?? ""
          assert.isNotEmpty(yield* prometheus.query(metric), `${metric} from ${query}`)
          yield* prometheus.query(query)
        }
      }),
    180_000
  )
})
