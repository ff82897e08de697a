import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as CassandraError from "effect-cassandra/CassandraError"
import * as Metrics from "effect-cassandra/Metrics"
import { type StatementTarget, statementTarget } from "../../src/internal/metricsAttributes.ts"
import { makeMetricsHub, type RequestRecorder } from "../../src/internal/metricsRecorder.ts"

// A driver client that is never connected: its metrics emitters, request tracker slot and (empty) pool state are
// the real ones, and nothing is sent anywhere.
const unconnectedClient = () => new Cassandra.Client({ contactPoints: ["192.0.2.1"], localDataCenter: "dc1" })

type Tracker = NonNullable<Cassandra.ClientOptions["requestTracker"]>
const trackerOf = (client: Cassandra.Client) =>
  (client as unknown as { options: { requestTracker: Tracker | null } }).options

const node = "192.0.2.7:9042"
const host = { address: node, datacenter: "dc1" } as Cassandra.Host

const select = statementTarget("SELECT * FROM orders WHERE id = ?")
const insert = statementTarget("INSERT INTO orders (id) VALUES (?)")
const page = { columns: [] } as unknown as Cassandra.types.ResultSet
const written = { columns: null } as unknown as Cassandra.types.ResultSet
const failure = (error: unknown) => Exit.fail(CassandraError.fromDriverError(error))

const counted = (family: Metric.Counter<number>, attributes: Record<string, string>) =>
  Effect.map(Metric.value(Metric.withAttributes(family, attributes)), (state) => state.count)

/** Records one request for `target` that started at `startedAt` and ended with `exit`, as the request path does. */
const completed = (
  recorder: RequestRecorder,
  target: StatementTarget,
  keyspace: string,
  consistency: string,
  startedAt: number,
  exit: Exit.Exit<Cassandra.types.ResultSet, CassandraError.CassandraError>
) => {
  const series = recorder.series(target, keyspace, consistency)
  if (exit._tag === "Success") return series.succeeded(startedAt, exit.value)
  const error = Exit.findErrorOption(exit)
  if (Option.isSome(error)) return series.failed(startedAt, error.value)
  if (Exit.hasInterrupts(exit)) return series.interrupted(startedAt)
  series.died(startedAt)
}

const withRegistry = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.provideService(effect, Metric.MetricRegistry, new Map())

describe("metrics recorder", () => {
  it.effect("counts requests by outcome, errors by reason, pages and client timeouts", () =>
    withRegistry(
      Effect.gen(function* () {
        const hub = yield* makeMetricsHub("1 hour")
        const recorder = yield* hub.attach(unconnectedClient())
        const started = performance.now()
        completed(recorder, select, "shop", "local_quorum", started, Exit.succeed(page))
        completed(recorder, select, "shop", "local_quorum", started, Exit.succeed(page))
        completed(recorder, insert, "shop", "local_quorum", started, Exit.succeed(written))
        completed(
          recorder,
          select,
          "shop",
          "one",
          started,
          failure(new Cassandra.errors.OperationTimedOutError("no answer", node))
        )
        completed(recorder, select, "shop", "one", started, failure(new Cassandra.errors.ResponseError(0x2000, "bad")))
        completed(recorder, select, "shop", "one", started, Exit.interrupt())

        const attributes = { operation: "SELECT", keyspace: "shop" }
        assert.strictEqual(
          yield* counted(Metrics.requests, { ...attributes, consistency: "local_quorum", outcome: "success" }),
          2
        )
        assert.strictEqual(
          yield* counted(Metrics.requests, { ...attributes, consistency: "one", outcome: "failure" }),
          2
        )
        assert.strictEqual(
          yield* counted(Metrics.requests, { ...attributes, consistency: "one", outcome: "interrupted" }),
          1
        )
        assert.strictEqual(yield* counted(Metrics.errors, { ...attributes, reason: "ClientTimeout" }), 1)
        assert.strictEqual(yield* counted(Metrics.errors, { ...attributes, reason: "Syntax" }), 1)
        assert.strictEqual(yield* counted(Metrics.clientTimeouts, { scope: "request" }), 1)
        assert.strictEqual(yield* counted(Metrics.pagesFetched, { keyspace: "shop" }), 2)

        const summary = yield* hub.summary
        assert.strictEqual(summary.requests, 6)
        assert.deepStrictEqual([summary.succeeded, summary.failed, summary.interrupted], [3, 2, 1])
        assert.strictEqual(summary.latency.count, 6)
        assert.deepStrictEqual(summary.errorsByReason, { ClientTimeout: 1, Syntax: 1 })
        assert.strictEqual(summary.clientTimeouts, 1)
        assert.strictEqual(summary.pagesFetched, 2)
      })
    )
  )

  it.effect("records statements that do not start with a CQL verb under one `OTHER` operation", () =>
    withRegistry(
      Effect.gen(function* () {
        const hub = yield* makeMetricsHub("1 hour")
        const recorder = yield* hub.attach(unconnectedClient())
        const started = performance.now()
        const syntax = failure(new Cassandra.errors.ResponseError(0x2000, "bad"))
        for (const text of ["SELEC v FROM orders", "SELEKT v FROM orders", "  "]) {
          completed(recorder, statementTarget(text), "shop", "one", started, syntax)
        }
        const attributes = { operation: "OTHER", keyspace: "shop" }
        assert.strictEqual(
          yield* counted(Metrics.requests, { ...attributes, consistency: "one", outcome: "failure" }),
          3
        )
        assert.strictEqual(yield* counted(Metrics.errors, { ...attributes, reason: "Syntax" }), 3)
      })
    )
  )

  it.effect("reports the request rate over the time requests ran, not over the layer's life", () =>
    withRegistry(
      Effect.gen(function* () {
        const hub = yield* makeMetricsHub("1 hour")
        const recorder = yield* hub.attach(unconnectedClient())
        // Three requests that ran together for ten seconds, recorded by a layer built moments ago.
        const started = performance.now() - 10_000
        for (let i = 0; i < 3; i++) completed(recorder, select, "shop", "one", started, Exit.succeed(page))
        const summary = yield* hub.summary
        assert.isAtLeast(summary.requestSeconds, 10)
        // 3 requests in a little over 10 seconds; the time the test itself takes only lowers it.
        assert.isAtMost(summary.requestRate, 0.3)
        assert.isAtLeast(summary.requestRate, 0.25)
        assert.match(Metrics.formatSummary(summary), /requests: 3 in 10\.\d s of requests \(0\.3\/s\)/)
      })
    )
  )

  it.effect("counts the driver's retries, per-attempt timeouts and speculative executions per node", () =>
    withRegistry(
      Effect.gen(function* () {
        const client = unconnectedClient()
        const hub = yield* makeMetricsHub("1 hour")
        yield* hub.attach(client)
        const unavailable = Object.assign(new Cassandra.errors.ResponseError(0x1000, "unavailable"), {
          coordinator: node
        })
        client.metrics.onUnavailableRetry(unavailable)
        client.metrics.onUnavailableRetry(unavailable)
        client.metrics.onReadTimeoutRetry(Object.assign(new Error("read timeout"), { coordinator: node }))
        client.metrics.onClientTimeoutError(new Cassandra.errors.OperationTimedOutError("no answer", node))
        client.metrics.onSpeculativeExecution()

        const at = { node, data_center: "" }
        assert.strictEqual(yield* counted(Metrics.retries, { ...at, reason: "Unavailable" }), 2)
        assert.strictEqual(yield* counted(Metrics.retries, { ...at, reason: "ReadTimeout" }), 1)
        assert.strictEqual(yield* counted(Metrics.clientTimeouts, { scope: "attempt", ...at }), 1)
        assert.strictEqual(yield* counted(Metrics.speculativeExecutions, {}), 1)
        const summary = yield* hub.summary
        assert.deepStrictEqual([summary.retries, summary.clientTimeouts, summary.speculativeExecutions], [3, 1, 1])
      })
    )
  )

  it.effect("records each execution at its node through the request tracker, keeping the caller's tracker", () =>
    withRegistry(
      Effect.gen(function* () {
        const client = unconnectedClient()
        const calls: Array<string> = []
        const callersTracker: Tracker = {
          onSuccess: () => calls.push("success"),
          onError: () => calls.push("error"),
          shutdown: () => calls.push("shutdown")
        }
        trackerOf(client).requestTracker = callersTracker
        const hub = yield* makeMetricsHub("1 hour")
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* hub.attach(client)
            const tracker = trackerOf(client).requestTracker
            assert.notStrictEqual(tracker, callersTracker)
            tracker?.onSuccess(host, "SELECT 1", [], {} as Cassandra.ExecutionOptions, 10, 20, [0, 2_000_000])
            tracker?.onSuccess(host, "SELECT 1", [], {} as Cassandra.ExecutionOptions, 10, 20, [0, 4_000_000])
            tracker?.onError(host, "SELECT 1", [], {} as Cassandra.ExecutionOptions, 10, new Error("x"), [1, 0])
          })
        )
        assert.strictEqual(trackerOf(client).requestTracker, callersTracker, "the caller's tracker is back")
        assert.deepStrictEqual(calls, ["success", "success", "error"])

        const success = yield* Metric.value(
          Metric.withAttributes(Metrics.nodeRequestDuration, { node, data_center: "dc1", outcome: "success" })
        )
        assert.deepStrictEqual([success.count, success.min, success.max], [2, 0.002, 0.004])
        const summary = yield* hub.summary
        assert.deepStrictEqual(
          summary.nodes.map((entry) => [entry.node, entry.dataCenter, entry.latency.count, entry.failures]),
          [[node, "dc1", 3, 1]]
        )
        assert.strictEqual(summary.nodes[0]?.latency.max, 1)
      })
    )
  )

  it.effect("stops listening to the driver when the session's scope closes", () =>
    withRegistry(
      Effect.gen(function* () {
        const client = unconnectedClient()
        const hub = yield* makeMetricsHub("1 hour")
        yield* Effect.scoped(hub.attach(client))
        client.metrics.onSpeculativeExecution()
        assert.strictEqual(yield* counted(Metrics.speculativeExecutions, {}), 0)
        assert.isNull(trackerOf(client).requestTracker)
      })
    )
  )
})
