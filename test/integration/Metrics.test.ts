import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as CqlSchema from "effect-cassandra/CqlSchema"
import * as CqlType from "effect-cassandra/CqlType"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Metrics from "effect-cassandra/Metrics"
import * as Query from "effect-cassandra/Query"
import type * as Session from "effect-cassandra/Session"
import { CassandraClient } from "effect-cassandra/Session"
import { sessionWithKeyspace, testOptions, uniqueKeyspace } from "../support/session.ts"

const { cql, identifier } = Query

const setup = sessionWithKeyspace("observed_metrics")

/**
 * Runs a program on a session of its own with the metrics layer, recording into a fresh registry, so every count is
 * exactly what the program did.
 */
const observed = <A, E>(
  program: Effect.Effect<A, E, CassandraLayer.Services | Metrics.Metrics | Scope.Scope>,
  overrides: Partial<Session.Options> = {}
) =>
  program.pipe(
    Effect.provide(
      CassandraLayer.layer(testOptions({ keyspace: setup.keyspace, ...overrides })).pipe(
        Layer.provideMerge(Metrics.layer({ pollInterval: "20 millis" }))
      )
    ),
    Effect.provideService(Metric.MetricRegistry, new Map())
  )

const counted = (family: Metric.Counter<number>, attributes: Record<string, string>) =>
  Effect.map(Metric.value(Metric.withAttributes(family, attributes)), (state) => state.count)

const gaugeValue = (family: Metric.Gauge<number>, attributes: Record<string, string>) =>
  Effect.map(Metric.value(Metric.withAttributes(family, attributes)), (state) => state.value)

/** Observations in every series of a histogram family. */
const histogramCount = (family: Metric.Histogram<number>) =>
  Effect.map(Metric.snapshot, (snapshots) =>
    snapshots.reduce(
      (sum, snapshot) =>
        snapshot.id === family.id && snapshot.type === "Histogram" ? sum + snapshot.state.count : sum,
      0
    )
  )

/** The one node of the test cluster, as the metrics name it. */
const theNode = CassandraClient.use((client) => {
  const host = client.hosts.values()[0]
  return host === undefined
    ? Effect.die("the session knows no node")
    : Effect.succeed({ node: host.address, data_center: host.datacenter })
})

const createTables = Effect.gen(function* () {
  yield* cql`CREATE TABLE IF NOT EXISTS kv (k int PRIMARY KEY, v text)`
  yield* cql`CREATE TABLE IF NOT EXISTS series (p int, c int, v text, PRIMARY KEY (p, c))`
  yield* Effect.forEach(
    Array.from({ length: 10 }, (_, k) => k),
    (k) => cql`INSERT INTO kv (k, v) VALUES (${k}, ${`v${k}`})`,
    {
      discard: true
    }
  )
  yield* cql`INSERT INTO kv (k, v) VALUES (${100}, ${null})`
  yield* Effect.forEach(
    Array.from({ length: 10 }, (_, c) => c),
    (c) => cql`INSERT INTO series (p, c, v) VALUES (${1}, ${c}, ${`c${c}`})`,
    { discard: true }
  )
})

const KeyValue = Schema.Struct({ k: CqlType.Int, v: CqlType.Text })

layer(Layer.effectDiscard(createTables).pipe(Layer.provideMerge(setup.layer)), {
  timeout: 120_000,
  excludeTestServices: true
})("metrics against a real Cassandra", (it) => {
  it.effect("counts 100 successful requests and 3 syntax errors exactly, per session and per node", () =>
    observed(
      Effect.gen(function* () {
        yield* Effect.forEach(
          Array.from({ length: 100 }, (_, i) => i),
          (i) => cql`SELECT v FROM kv WHERE k = ${i % 10}`,
          { concurrency: 10, discard: true }
        )
        yield* Effect.forEach([1, 2, 3], () => Effect.flip(cql`SELEC v FROM kv`), { discard: true })
        const { node, data_center } = yield* theNode
        const request = { keyspace: setup.keyspace, consistency: "local_quorum" }

        assert.strictEqual(
          yield* counted(Metrics.requests, { ...request, operation: "SELECT", outcome: "success" }),
          100
        )
        assert.strictEqual(yield* counted(Metrics.requests, { ...request, operation: "OTHER", outcome: "failure" }), 3)
        assert.strictEqual(
          yield* counted(Metrics.errors, { operation: "OTHER", keyspace: setup.keyspace, reason: "Syntax" }),
          3
        )
        assert.strictEqual(yield* histogramCount(Metrics.requestDuration), 103)
        // The syntax errors fail while preparing, so only the 100 executions reach the node's request tracker.
        assert.strictEqual(yield* histogramCount(Metrics.nodeRequestDuration), 100)
        assert.strictEqual(
          (yield* Metric.value(
            Metric.withAttributes(Metrics.nodeRequestDuration, { node, data_center, outcome: "success" })
          )).count,
          100
        )
        assert.strictEqual(yield* counted(Metrics.pagesFetched, { keyspace: setup.keyspace }), 100)

        const summary = yield* Metrics.summary
        assert.strictEqual(summary.requests, 103)
        assert.strictEqual(summary.succeeded, 100)
        assert.strictEqual(summary.failed, 3)
        assert.strictEqual(summary.interrupted, 0)
        assert.deepStrictEqual(summary.errorsByReason, { Syntax: 3 })
        assert.strictEqual(summary.latency.count, 103)
        assert.isTrue(summary.latency.p50 > 0 && summary.latency.p50 <= summary.latency.p99)
        assert.isTrue(summary.latency.p99 <= summary.latency.max && summary.latency.min <= summary.latency.p50)
        assert.isTrue(summary.requestRate > 0)
        assert.strictEqual(summary.pagesFetched, 100)
        assert.deepStrictEqual(
          summary.nodes.map((entry) => [entry.node, entry.dataCenter, entry.state, entry.latency.count]),
          [[node, data_center, "up", 100]]
        )
        assert.match(Metrics.formatSummary(summary), /requests: 103 in .*: 100 succeeded, 3 failed/)
      })
    )
  )

  it.effect("shows requests in flight per node under load, back to 0 once they complete", () =>
    observed(
      Effect.gen(function* () {
        const { node, data_center } = yield* theNode
        const load = yield* Effect.forkChild(
          Effect.forEach(
            Array.from({ length: 2000 }, (_, i) => i),
            (i) => cql`SELECT v FROM kv WHERE k = ${i % 10}`,
            { concurrency: 64, discard: true }
          )
        )
        const inFlightNow = Effect.map(Metrics.summary, (summary) => summary.nodes[0]?.inFlight ?? 0)
        const busiest = yield* inFlightNow.pipe(
          Effect.repeat({ schedule: Schedule.spaced("1 millis"), until: (inFlight) => inFlight > 0 }),
          Effect.timeout("30 seconds")
        )
        assert.isTrue(busiest > 0)
        yield* Fiber.join(load)
        const settled = yield* gaugeValue(Metrics.nodeInFlight, { node, data_center }).pipe(
          Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (inFlight) => inFlight === 0 }),
          Effect.timeout("10 seconds")
        )
        assert.strictEqual(settled, 0)
        assert.strictEqual(yield* inFlightNow, 0)
        assert.isTrue((yield* gaugeValue(Metrics.nodeConnections, { node, data_center })) >= 1)
        assert.strictEqual(yield* gaugeValue(Metrics.nodes, { data_center, state: "up" }), 1)
        assert.strictEqual(yield* gaugeValue(Metrics.nodes, { data_center, state: "down" }), 0)
      })
    )
  )

  it.effect("counts pages, rows decoded and rows that fail to decode", () =>
    observed(
      Effect.gen(function* () {
        const pageOfSeries = CqlSchema.stream({
          Request: Schema.Void,
          Result: Schema.Struct({ c: CqlType.Int, v: CqlType.Text }),
          execute: () => cql`SELECT c, v FROM series WHERE p = ${1}`.withOptions({ pageSize: 3 })
        })
        const byKeys = CqlSchema.findAll({
          Request: Schema.Array(CqlType.Int),
          Result: KeyValue,
          execute: (keys) => cql`SELECT k, v FROM kv WHERE k IN ${keys}`
        })
        assert.strictEqual(yield* Stream.runCount(pageOfSeries(undefined)), 10)
        assert.lengthOf(yield* byKeys([1, 2, 3]), 3)
        // Row 100 holds a null where the schema wants text.
        yield* Effect.flip(byKeys([100]))

        assert.strictEqual(yield* counted(Metrics.pagesFetched, { keyspace: setup.keyspace }), 4 + 1 + 1)
        assert.strictEqual(yield* counted(Metrics.rowsDecoded, {}), 13)
        assert.strictEqual(yield* counted(Metrics.decodeFailures, {}), 1)
        const summary = yield* Metrics.summary
        assert.strictEqual(summary.rowsDecoded, 13)
        assert.strictEqual(summary.decodeFailures, 1)
        assert.strictEqual(summary.pagesFetched, 6)
      })
    )
  )

  it.effect("counts one speculative execution per idempotent request when they start at once", () =>
    observed(
      Effect.gen(function* () {
        yield* Effect.forEach(
          Array.from({ length: 7 }, (_, i) => i),
          (i) => cql`SELECT v FROM kv WHERE k = ${i}`,
          {
            discard: true
          }
        )
        // Writes are not idempotent unless declared so: never executed speculatively.
        yield* cql`INSERT INTO kv (k, v) VALUES (${50}, ${"w"})`
        assert.strictEqual(yield* counted(Metrics.speculativeExecutions, {}), 7)
        assert.strictEqual((yield* Metrics.summary).speculativeExecutions, 7)
      }),
      { speculativeExecution: { delay: "0 millis", maxExecutions: 1 } }
    )
  )

  it.effect("counts the retries the driver decides, at the node whose answer caused them", () => {
    const unreplicated = uniqueKeyspace("observed_quorum")
    return observed(
      Effect.gen(function* () {
        yield* Effect.acquireRelease(
          cql`CREATE KEYSPACE ${identifier(unreplicated)} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}`,
          () => Effect.ignore(cql`DROP KEYSPACE IF EXISTS ${identifier(unreplicated)}`)
        )
        yield* cql`CREATE TABLE ${identifier(unreplicated, "t")} (k int PRIMARY KEY)`
        const { node, data_center } = yield* theNode
        // Three replicas on one node: QUORUM is unavailable, and the default policy retries that once.
        const reasons = yield* Effect.forEach([1, 2], (k) =>
          Effect.flip(
            cql`SELECT k FROM ${identifier(unreplicated, "t")} WHERE k = ${k}`.withOptions({ consistency: "QUORUM" })
          ).pipe(Effect.map((error) => error.reason._tag))
        )
        assert.deepStrictEqual(reasons, ["Unavailable", "Unavailable"])
        assert.strictEqual(yield* counted(Metrics.retries, { node, data_center, reason: "Unavailable" }), 2)
        assert.strictEqual(
          yield* counted(Metrics.errors, { operation: "SELECT", keyspace: unreplicated, reason: "Unavailable" }),
          2
        )
        const summary = yield* Metrics.summary
        assert.strictEqual(summary.retries, 2)
        assert.strictEqual(summary.nodes[0]?.retries, 2)
      })
    )
  })
})
