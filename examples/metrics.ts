/**
 * Runs a small workload with the metrics layer on, then prints every `cassandra_` metric in the Prometheus text
 * exposition format and the readable summary:
 *
 *   CASSANDRA_CONTACT_POINTS=127.0.0.1 node --conditions=effect-cassandra/source examples/metrics.ts
 *
 * Effect ships a Prometheus serializer (`PrometheusMetrics.format` in `effect/observability`), but it is marked
 * unstable in effect 4.1, so this example writes the text format itself from `Metric.snapshot`, which is stable.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer, Metric, Schema, Stream } from "effect"
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

const labels = (
  attributes: Readonly<Record<string, string>> | undefined,
  extra: ReadonlyArray<[string, string]> = []
) => {
  const pairs = [...Object.entries(attributes ?? {}), ...extra].map(
    ([key, value]) => `${key}="${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`
  )
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`
}

const prometheusType = { Counter: "counter", Gauge: "gauge", Histogram: "histogram", Summary: "summary" } as const

/** The Prometheus text exposition format (version 0.0.4) of the library's metrics. */
const prometheusText = Effect.map(Metric.snapshot, (snapshots) => {
  const families = new Map<string, Array<Metric.Metric.Snapshot>>()
  for (const snapshot of snapshots) {
    if (!snapshot.id.startsWith("cassandra_")) continue
    families.set(snapshot.id, [...(families.get(snapshot.id) ?? []), snapshot])
  }
  const lines: Array<string> = []
  for (const [name, series] of [...families].sort(([a], [b]) => a.localeCompare(b))) {
    const first = series[0]
    if (first === undefined || first.type === "Frequency") continue
    if (first.description !== undefined) lines.push(`# HELP ${name} ${first.description}`)
    lines.push(`# TYPE ${name} ${prometheusType[first.type]}`)
    for (const snapshot of series) {
      switch (snapshot.type) {
        case "Counter":
          lines.push(`${name}${labels(snapshot.attributes)} ${snapshot.state.count}`)
          break
        case "Gauge":
          lines.push(`${name}${labels(snapshot.attributes)} ${snapshot.state.value}`)
          break
        case "Histogram":
          for (const [boundary, count] of snapshot.state.buckets) {
            const le = boundary === Number.POSITIVE_INFINITY ? "+Inf" : String(boundary)
            lines.push(`${name}_bucket${labels(snapshot.attributes, [["le", le]])} ${count}`)
          }
          lines.push(`${name}_sum${labels(snapshot.attributes)} ${snapshot.state.sum}`)
          lines.push(`${name}_count${labels(snapshot.attributes)} ${snapshot.state.count}`)
          break
      }
    }
  }
  return `${lines.join("\n")}\n`
})

const program = Effect.gen(function* () {
  const streamed = yield* workload
  yield* Effect.log(`streamed ${streamed} of ${eventCount} events`)
  console.log(yield* prometheusText)
  console.log(Metrics.formatSummary(yield* Metrics.summary))
})

const CassandraLive = CassandraLayer.layerConfig({
  contactPoints: Config.String("CASSANDRA_CONTACT_POINTS").pipe(Config.map((points) => points.split(","))),
  localDataCenter: Config.String("CASSANDRA_LOCAL_DC").pipe(Config.withDefault("datacenter1"))
}).pipe(Layer.provideMerge(Metrics.layer({ pollInterval: "1 second" })))

program.pipe(Effect.provide(Layer.orDie(CassandraLive)), NodeRuntime.runMain)
