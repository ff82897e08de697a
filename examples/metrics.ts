/**
 * Serves the library's metrics on `/metrics` for Prometheus to scrape while a small workload runs, then prints the
 * PromQL a dashboard would use and the readable summary:
 *
 *   CASSANDRA_CONTACT_POINTS=127.0.0.1 node --conditions=effect-cassandra/source examples/metrics.ts
 *
 * The endpoint listens on METRICS_HOST:METRICS_PORT (default 127.0.0.1 and a free port; the address is logged). With
 * METRICS_KEEP_SERVING=true it keeps serving after the workload until interrupted (Ctrl-C), so Prometheus can scrape
 * the final counts.
 *
 * The exposition is Effect's own `PrometheusMetrics.layerHttp` (from `effect/observability`, marked unstable in
 * effect 4.1): it serves every metric of the `Metric.MetricRegistry`, so application metrics come out beside the
 * library's `cassandra_` ones.
 */
import * as Http from "node:http"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer, Schema, Stream } from "effect"
import { HttpRouter } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import { CassandraLayer, CqlSchema, CqlType, Metrics, Query } from "effect-cassandra"

const { cql, identifier } = Query
const keyspace = identifier("example_metrics")
const events = identifier("example_metrics", "events")

const Event = Schema.Struct({ id: CqlType.Int, body: CqlType.Text })

const insertEvent = CqlSchema.void({
  Request: Event,
  execute: (event) => cql`INSERT INTO ${events} (id, body) VALUES (${event.id}, ${event.body})`
})

const findEvent = CqlSchema.findOne({
  Request: CqlType.Int,
  Result: Event,
  execute: (id) => cql`SELECT id, body FROM ${events} WHERE id = ${id}`
})

const allEvents = CqlSchema.stream({
  Request: Schema.Void,
  Result: Event,
  execute: () => cql`SELECT id, body FROM ${events}`.withOptions({ pageSize: 50 })
})

const eventCount = 200

const workload = Effect.gen(function* () {
  yield* cql`CREATE KEYSPACE IF NOT EXISTS ${keyspace}
    WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`
  yield* cql`CREATE TABLE IF NOT EXISTS ${events} (id int PRIMARY KEY, body text)`
  const ids = Array.from({ length: eventCount }, (_, id) => id)
  yield* Effect.forEach(ids, (id) => insertEvent({ id, body: `event ${id}` }), { concurrency: 16, discard: true })
  yield* Effect.forEach(ids.slice(0, 50), (id) => findEvent(id), { concurrency: 8, discard: true })
  const streamed = yield* Stream.runCount(allEvents(undefined))
  // Three statements the server rejects, to show errors by reason.
  yield* Effect.forEach([1, 2, 3], () => Effect.ignore(cql`SELEKT * FROM ${events}`), { discard: true })
  return streamed
})

/** What a dashboard would chart: the request rate by operation and outcome, and each node's p99 latency. */
const dashboardQueries = [
  "sum by (operation, outcome) (rate(cassandra_requests_total[5m]))",
  "histogram_quantile(0.99, sum by (node, le) (rate(cassandra_node_request_duration_seconds_bucket[5m])))"
]

const program = Effect.gen(function* () {
  const streamed = yield* workload
  yield* Effect.log(`streamed ${streamed} of ${eventCount} events`)
  console.log(`PromQL for a dashboard:\n${dashboardQueries.map((query) => `  ${query}`).join("\n")}`)
  console.log(Metrics.formatSummary(yield* Metrics.summary))
  if (yield* Config.Boolean("METRICS_KEEP_SERVING").pipe(Config.withDefault(false))) {
    yield* Effect.log("workload done; serving /metrics until interrupted")
    return yield* Effect.never
  }
})

const CassandraLive = CassandraLayer.layerConfig({
  contactPoints: Config.String("CASSANDRA_CONTACT_POINTS").pipe(Config.map((points) => points.split(","))),
  localDataCenter: Config.String("CASSANDRA_LOCAL_DC").pipe(Config.withDefault("datacenter1"))
}).pipe(Layer.provideMerge(Metrics.layer({ pollInterval: "1 second" })))

/** `GET /metrics` in the Prometheus text format, served for as long as the program runs. */
const MetricsEndpoint = HttpRouter.serve(PrometheusMetrics.layerHttp(), { disableLogger: true }).pipe(
  Layer.provide(
    NodeHttpServer.layerConfig(() => Http.createServer(), {
      host: Config.String("METRICS_HOST").pipe(Config.withDefault("127.0.0.1")),
      port: Config.Port("METRICS_PORT").pipe(Config.withDefault(0))
    })
  )
)

program.pipe(Effect.provide(Layer.orDie(Layer.merge(CassandraLive, MetricsEndpoint))), NodeRuntime.runMain)
