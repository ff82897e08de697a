/**
 * The metrics layer at work: series handles created once per attribute set, the driver's hooks installed on each
 * session's client, the pool poller, and the summary.
 *
 * Series are made as metrics of their own with their attributes, not with `Metric.withAttributes`: they share the
 * registry entry of the exported family, while an update costs a map lookup instead of a context copy (about a tenth
 * of the time when several series alternate). Updates use the context captured when the layer was built, so the
 * request path never looks anything up in the fiber's context.
 */
import type * as Cassandra from "cassandra-driver"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type * as CassandraError from "../CassandraError.ts"
import * as Metrics from "../Metrics.ts"
import { metricOperation, type StatementTarget } from "./metricsAttributes.ts"
import { type LatencyHistogram, makeLatencyHistogram } from "./metricsLatency.ts"

/**
 * The series of requests for one statement target, keyspace and consistency, resolved once so that recording a
 * request does no lookup and no string work. `startedAt` is the request's `performance.now()` at its start.
 */
export interface RequestSeries {
  readonly succeeded: (startedAt: number, result: Cassandra.types.ResultSet) => void
  readonly failed: (startedAt: number, error: CassandraError.CassandraError) => void
  readonly interrupted: (startedAt: number) => void
  /** A request that died rather than failed: a failure whose reason is `Defect`. */
  readonly died: (startedAt: number) => void
}

/** What one session's request path reports to the metrics layer; absent when the layer is left out. */
export interface RequestRecorder {
  /** The series of requests for `target` in keyspace `keyspace` at `consistency` (the attribute's spelling). */
  readonly series: (target: StatementTarget, keyspace: string, consistency: string) => RequestSeries
}

/** What row decoding reports to the metrics layer. */
export interface DecodeRecorder {
  readonly decoded: (rows: number) => void
  readonly failed: () => void
}

/** The metrics layer's implementation, found by sessions in their context when they are built. */
export interface MetricsHub {
  /** Installs the driver hooks on a session's client for the scope's lifetime, and returns the request recorder. */
  readonly attach: (client: Cassandra.Client) => Effect.Effect<RequestRecorder, never, Scope.Scope>
  readonly summary: Effect.Effect<Metrics.Summary>
}

/** The metrics layer of the sessions being built, if one was provided. */
export const MetricsHub = Context.Reference<MetricsHub | undefined>("effect-cassandra/internal/MetricsHub", {
  defaultValue: () => undefined
})

const decodeRecorders = new WeakMap<Cassandra.Client, DecodeRecorder>()

/** The decode recorder of the session over this client, when its metrics are recorded. */
export const decodeRecorderOf = (client: Cassandra.Client): DecodeRecorder | undefined => decodeRecorders.get(client)

type Attributes = Readonly<Record<string, string>>

interface RequestMetrics {
  readonly requests: Metric.Counter<number>
  readonly duration: Metric.Histogram<number>
}

const counterSeries = (family: Metric.Counter<number>) => (attributes: Attributes) =>
  Metric.counter(family.id, { description: family.description ?? family.id, incremental: true, attributes })

const gaugeSeries = (family: Metric.Gauge<number>) => (attributes: Attributes) =>
  Metric.gauge(family.id, { description: family.description ?? family.id, attributes })

const histogramSeries = (family: Metric.Histogram<number>) => (attributes: Attributes) =>
  Metric.histogram(family.id, {
    description: family.description ?? family.id,
    boundaries: Metrics.latencyBoundaries,
    attributes
  })

/** A series with its attributes and how many times it was incremented, for the summary. */
interface Series<M> {
  readonly metric: M
  readonly attributes: Attributes
  count: number
}

/** A family's series by attribute set, each made on first use. */
const makeSeries = <M>(make: (attributes: Attributes) => M) => {
  const series = new Map<string, Series<M>>()
  return {
    get: (key: string, attributes: () => Attributes): Series<M> => {
      let entry = series.get(key)
      if (entry === undefined) {
        const resolved = attributes()
        entry = { metric: make(resolved), attributes: resolved, count: 0 }
        series.set(key, entry)
      }
      return entry
    },
    entries: () => series.values()
  }
}

/** The series of one operation, keyspace and consistency: one per outcome, pages and errors by reason. */
interface RequestKind {
  readonly key: string
  readonly attributes: Attributes
  readonly outcomes: Map<string, Series<RequestMetrics>>
  readonly errors: Map<string, Series<Metric.Counter<number>>>
  pages: Series<Metric.Counter<number>> | undefined
  series: RequestSeries | undefined
}

/** A node's execution series and latency histogram, resolved once per driver host object. */
interface NodeExecutions {
  readonly success: Series<Metric.Histogram<number>>
  readonly failure: Series<Metric.Histogram<number>>
  readonly histogram: LatencyHistogram
}

const countBy = (entries: Iterable<Series<unknown>>, attribute: string) => {
  const counts = new Map<string, number>()
  for (const entry of entries) {
    const value = entry.attributes[attribute] ?? ""
    counts.set(value, (counts.get(value) ?? 0) + entry.count)
  }
  return counts
}

const total = (entries: Iterable<Series<unknown>>) => {
  let sum = 0
  for (const entry of entries) sum += entry.count
  return sum
}

const secondsOf = (latency: ReadonlyArray<number>) => (latency[0] ?? 0) + (latency[1] ?? 0) / 1e9

/** The driver's metrics emitters, present when the client uses its `DefaultMetrics`. */
interface Emitter {
  readonly on: (event: "increment", listener: (error?: unknown) => void) => unknown
  readonly off: (event: "increment", listener: (error?: unknown) => void) => unknown
}

interface DriverMetricsEmitters {
  readonly errors: { readonly clientTimeout: Emitter }
  readonly retries: Record<"clientTimeout" | "other" | "readTimeout" | "unavailable" | "writeTimeout", Emitter>
  readonly speculativeExecutions: Emitter
}

const hasEmitters = (metrics: unknown): metrics is DriverMetricsEmitters => {
  const candidate = metrics as Partial<DriverMetricsEmitters> | undefined
  return (
    typeof candidate?.speculativeExecutions?.on === "function" &&
    typeof candidate.retries?.readTimeout?.on === "function" &&
    typeof candidate.errors?.clientTimeout?.on === "function"
  )
}

const retryReasons = {
  readTimeout: "ReadTimeout",
  writeTimeout: "WriteTimeout",
  unavailable: "Unavailable",
  clientTimeout: "ClientTimeout",
  other: "Other"
} as const

/** The node a driver error names: the coordinator the driver marked on it, or the host of a timeout. */
const nodeOfError = (error: unknown): string | undefined => {
  if (typeof error !== "object" || error === null) return undefined
  const { coordinator, host } = error as { readonly coordinator?: unknown; readonly host?: unknown }
  if (typeof coordinator === "string") return coordinator
  return typeof host === "string" ? host : undefined
}

type DriverTracker = NonNullable<Cassandra.ClientOptions["requestTracker"]>

interface ClientWithOptions {
  readonly options: { requestTracker: DriverTracker | null }
}

/** Creates the metrics layer's state and its pool poller, which runs as long as the scope. */
export const makeMetricsHub = Effect.fnUntraced(function* (pollInterval: Duration.Input) {
  const context = yield* Effect.context<never>()
  const startedAt = Date.now()
  const clients = new Set<Cassandra.Client>()
  const latency = makeLatencyHistogram()
  // The span of time requests ran, from the start of the first to the end of the last (`performance.now()`): the
  // request rate is taken over it, not over the layer's life, which may be mostly idle.
  let firstRequestStart = Number.POSITIVE_INFINITY
  let lastRequestEnd = Number.NEGATIVE_INFINITY

  /** Seconds a request that started at `startedAt` took, as it ends now; recorded in the summary's latency. */
  const ended = (startedAt: number) => {
    const now = performance.now()
    if (startedAt < firstRequestStart) firstRequestStart = startedAt
    lastRequestEnd = now
    const seconds = (now - startedAt) / 1000
    latency.record(seconds)
    return seconds
  }

  const requestSeries = makeSeries<RequestMetrics>((attributes) => ({
    requests: counterSeries(Metrics.requests)(attributes),
    duration: histogramSeries(Metrics.requestDuration)(attributes)
  }))
  const errorSeries = makeSeries(counterSeries(Metrics.errors))
  const nodeDurationSeries = makeSeries(histogramSeries(Metrics.nodeRequestDuration))
  const nodeLatency = new Map<string, { readonly dataCenter: string; readonly histogram: LatencyHistogram }>()
  const timeoutSeries = makeSeries(counterSeries(Metrics.clientTimeouts))
  const retrySeries = makeSeries(counterSeries(Metrics.retries))
  const pageSeries = makeSeries(counterSeries(Metrics.pagesFetched))
  const connectionSeries = makeSeries(gaugeSeries(Metrics.nodeConnections))
  const inFlightSeries = makeSeries(gaugeSeries(Metrics.nodeInFlight))
  const nodeStateSeries = makeSeries(gaugeSeries(Metrics.nodes))
  const speculativeSeries = makeSeries(counterSeries(Metrics.speculativeExecutions)).get("", () => ({}))
  const rowsDecodedSeries = makeSeries(counterSeries(Metrics.rowsDecoded)).get("", () => ({}))
  const decodeFailureSeries = makeSeries(counterSeries(Metrics.decodeFailures)).get("", () => ({}))
  // Counters without attributes are exported from the start, so a backend sees 0 rather than no series.
  for (const entry of [speculativeSeries, rowsDecodedSeries, decodeFailureSeries]) entry.metric.updateUnsafe(0, context)

  const add = (entry: Series<Metric.Counter<number>>, amount: number) => {
    entry.metric.updateUnsafe(amount, context)
    entry.count += amount
  }

  const observe = (entry: Series<RequestMetrics>, seconds: number) => {
    entry.metric.requests.updateUnsafe(1, context)
    entry.metric.duration.updateUnsafe(seconds, context)
    entry.count++
  }

  const dataCenterOf = (node: string) => {
    for (const client of clients) {
      const host = client.hosts.get(node)
      if (host !== undefined) return host.datacenter
    }
    return ""
  }

  const outcomeSeries = (kind: RequestKind, outcome: string) => {
    let entry = kind.outcomes.get(outcome)
    if (entry === undefined) {
      entry = requestSeries.get(`${kind.key}\u0000${outcome}`, () => ({ ...kind.attributes, outcome }))
      kind.outcomes.set(outcome, entry)
    }
    return entry
  }

  const errorSeriesOf = (kind: RequestKind, reason: string) => {
    let entry = kind.errors.get(reason)
    if (entry === undefined) {
      const { operation = "", keyspace = "" } = kind.attributes
      entry = errorSeries.get(`${operation}\u0000${keyspace}\u0000${reason}`, () => ({ operation, keyspace, reason }))
      kind.errors.set(reason, entry)
    }
    return entry
  }

  const seriesOf = (kind: RequestKind, keyspace: string): RequestSeries => {
    let success: Series<RequestMetrics> | undefined
    const failed = (startedAt: number, reason: string) => {
      observe(outcomeSeries(kind, "failure"), ended(startedAt))
      add(errorSeriesOf(kind, reason), 1)
      if (reason === "ClientTimeout")
        add(
          timeoutSeries.get("request", () => ({ scope: "request" })),
          1
        )
    }
    return {
      succeeded: (startedAt, result) => {
        success ??= outcomeSeries(kind, "success")
        observe(success, ended(startedAt))
        if (result.columns === null) return
        kind.pages ??= pageSeries.get(keyspace, () => ({ keyspace }))
        add(kind.pages, 1)
      },
      failed: (startedAt, error) => failed(startedAt, error.reason._tag),
      interrupted: (startedAt) => observe(outcomeSeries(kind, "interrupted"), ended(startedAt)),
      died: (startedAt) => failed(startedAt, "Defect")
    }
  }

  const makeRecorder = (): RequestRecorder => {
    // Statement targets are cached by text, so a target object stands for its statement for the session's life.
    const kinds = new WeakMap<StatementTarget, Map<string, RequestKind>>()
    const series = (target: StatementTarget, keyspace: string, consistency: string) => {
      let byConsistency = kinds.get(target)
      if (byConsistency === undefined) {
        byConsistency = new Map()
        kinds.set(target, byConsistency)
      }
      let kind = byConsistency.get(consistency)
      if (kind === undefined) {
        const operation = metricOperation(target.operation)
        kind = {
          key: `${operation}\u0000${keyspace}\u0000${consistency}`,
          attributes: { operation, keyspace, consistency },
          outcomes: new Map(),
          errors: new Map(),
          pages: undefined,
          series: undefined
        }
        byConsistency.set(consistency, kind)
      }
      kind.series ??= seriesOf(kind, keyspace)
      return kind.series
    }
    return { series }
  }

  const decodeRecorder: DecodeRecorder = {
    decoded: (rows) => add(rowsDecodedSeries, rows),
    failed: () => add(decodeFailureSeries, 1)
  }

  const nodeExecutions = new WeakMap<Cassandra.Host, NodeExecutions>()

  const executionsOf = (host: Cassandra.Host) => {
    let executions = nodeExecutions.get(host)
    if (executions === undefined) {
      const node = host.address
      const data_center = host.datacenter
      let latencyOfNode = nodeLatency.get(node)
      if (latencyOfNode === undefined) {
        latencyOfNode = { dataCenter: data_center, histogram: makeLatencyHistogram() }
        nodeLatency.set(node, latencyOfNode)
      }
      executions = {
        success: nodeDurationSeries.get(`${node}\u0000success`, () => ({ node, data_center, outcome: "success" })),
        failure: nodeDurationSeries.get(`${node}\u0000failure`, () => ({ node, data_center, outcome: "failure" })),
        histogram: latencyOfNode.histogram
      }
      nodeExecutions.set(host, executions)
    }
    return executions
  }

  const recordExecution = (
    host: Cassandra.Host,
    latencyParts: ReadonlyArray<number>,
    outcome: "success" | "failure"
  ) => {
    const seconds = secondsOf(latencyParts)
    const executions = executionsOf(host)
    const entry = executions[outcome]
    entry.metric.updateUnsafe(seconds, context)
    entry.count++
    executions.histogram.record(seconds)
  }

  const nodeAttributes = (node: string) => () => ({ node, data_center: dataCenterOf(node) })

  const onAttemptTimeout = (error?: unknown) => {
    const node = nodeOfError(error) ?? ""
    add(
      timeoutSeries.get(`attempt\u0000${node}`, () => ({ scope: "attempt", ...nodeAttributes(node)() })),
      1
    )
  }

  const retryListeners = Object.entries(retryReasons).map(
    ([kind, reason]) =>
      [
        kind as keyof typeof retryReasons,
        (error?: unknown) => {
          const node = nodeOfError(error) ?? ""
          add(
            retrySeries.get(`${node}\u0000${reason}`, () => ({ ...nodeAttributes(node)(), reason })),
            1
          )
        }
      ] as const
  )

  const onSpeculativeExecution = () => add(speculativeSeries, 1)

  const installEmitters = (client: Cassandra.Client) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const emitters = client.metrics
        if (!hasEmitters(emitters)) return undefined
        emitters.errors.clientTimeout.on("increment", onAttemptTimeout)
        for (const [kind, listener] of retryListeners) emitters.retries[kind].on("increment", listener)
        emitters.speculativeExecutions.on("increment", onSpeculativeExecution)
        return emitters
      }),
      (emitters) =>
        Effect.sync(() => {
          if (emitters === undefined) return
          emitters.errors.clientTimeout.off("increment", onAttemptTimeout)
          for (const [kind, listener] of retryListeners) emitters.retries[kind].off("increment", listener)
          emitters.speculativeExecutions.off("increment", onSpeculativeExecution)
        })
    )

  // The driver reads its tracker from the client's options at every response, so it can be installed on a client
  // built elsewhere too; a tracker the caller set keeps being called.
  const installTracker = (client: Cassandra.Client) => {
    const options = (client as unknown as ClientWithOptions).options
    return Effect.acquireRelease(
      Effect.sync(() => {
        const previous = options.requestTracker
        options.requestTracker = {
          onSuccess: (host, query, parameters, executionOptions, requestLength, responseLength, latencyParts) => {
            recordExecution(host, latencyParts, "success")
            previous?.onSuccess(host, query, parameters, executionOptions, requestLength, responseLength, latencyParts)
          },
          onError: (host, query, parameters, executionOptions, requestLength, error, latencyParts) => {
            recordExecution(host, latencyParts, "failure")
            previous?.onError(host, query, parameters, executionOptions, requestLength, error, latencyParts)
          },
          shutdown: () => previous?.shutdown()
        }
        return previous
      }),
      (previous) =>
        Effect.sync(() => {
          options.requestTracker = previous
        })
    )
  }

  const nodesNow = () => {
    const known = new Map<string, { dataCenter: string; up: boolean; connections: number; inFlight: number }>()
    for (const client of clients) {
      client.hosts.forEach((host) => {
        const node = known.get(host.address)
        const up = host.isUp()
        if (node === undefined)
          known.set(host.address, { dataCenter: host.datacenter, up, connections: 0, inFlight: 0 })
        else node.up ||= up
      })
      const state = client.getState()
      for (const host of state.getConnectedHosts()) {
        const node = known.get(host.address)
        if (node === undefined) continue
        node.connections += state.getOpenConnections(host)
        node.inFlight += state.getInFlightQueries(host)
      }
    }
    return known
  }

  // Nodes no longer seen (their session closed, or they left) read 0 rather than their last value.
  const poll = Effect.sync(() => {
    const known = nodesNow()
    for (const [node, { dataCenter }] of known) {
      const attributes = () => ({ node, data_center: dataCenter })
      connectionSeries.get(node, attributes)
      inFlightSeries.get(node, attributes)
      for (const state of ["up", "down"]) {
        nodeStateSeries.get(`${dataCenter}\u0000${state}`, () => ({ data_center: dataCenter, state }))
      }
    }
    for (const entry of connectionSeries.entries()) {
      entry.metric.updateUnsafe(known.get(entry.attributes.node ?? "")?.connections ?? 0, context)
    }
    for (const entry of inFlightSeries.entries()) {
      entry.metric.updateUnsafe(known.get(entry.attributes.node ?? "")?.inFlight ?? 0, context)
    }
    for (const entry of nodeStateSeries.entries()) {
      const up = entry.attributes.state === "up"
      let count = 0
      for (const node of known.values()) if (node.dataCenter === entry.attributes.data_center && node.up === up) count++
      entry.metric.updateUnsafe(count, context)
    }
  })

  const register = (client: Cassandra.Client) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        clients.add(client)
        decodeRecorders.set(client, decodeRecorder)
      }),
      () =>
        Effect.andThen(
          Effect.sync(() => {
            clients.delete(client)
            if (decodeRecorders.get(client) === decodeRecorder) decodeRecorders.delete(client)
          }),
          poll
        )
    )

  yield* Effect.forkScoped(Effect.repeat(poll, Schedule.spaced(pollInterval)))

  const summary = Effect.sync((): Metrics.Summary => {
    const elapsedSeconds = (Date.now() - startedAt) / 1000
    const requestSeconds = lastRequestEnd > firstRequestStart ? (lastRequestEnd - firstRequestStart) / 1000 : 0
    const outcomes = countBy(requestSeries.entries(), "outcome")
    const requests = total(requestSeries.entries())
    const failuresByNode = countBy(
      [...nodeDurationSeries.entries()].filter((entry) => entry.attributes.outcome === "failure"),
      "node"
    )
    const retriesByNode = countBy(retrySeries.entries(), "node")
    const known = nodesNow()
    const nodeNames = [...new Set([...known.keys(), ...nodeLatency.keys()])].sort()
    return {
      since: new Date(startedAt),
      elapsedSeconds,
      requests,
      requestSeconds,
      requestRate: requestSeconds > 0 ? requests / requestSeconds : 0,
      succeeded: outcomes.get("success") ?? 0,
      failed: outcomes.get("failure") ?? 0,
      interrupted: outcomes.get("interrupted") ?? 0,
      latency: latency.statistics(),
      errorsByReason: Object.fromEntries(countBy(errorSeries.entries(), "reason")),
      clientTimeouts: total(timeoutSeries.entries()),
      retries: total(retrySeries.entries()),
      speculativeExecutions: speculativeSeries.count,
      pagesFetched: total(pageSeries.entries()),
      rowsDecoded: rowsDecodedSeries.count,
      decodeFailures: decodeFailureSeries.count,
      nodes: nodeNames.map((node) => {
        const now = known.get(node)
        return {
          node,
          dataCenter: now?.dataCenter ?? nodeLatency.get(node)?.dataCenter ?? "",
          state: now === undefined ? "unknown" : now.up ? "up" : "down",
          connections: now?.connections ?? 0,
          inFlight: now?.inFlight ?? 0,
          latency: (nodeLatency.get(node)?.histogram ?? makeLatencyHistogram()).statistics(),
          failures: failuresByNode.get(node) ?? 0,
          retries: retriesByNode.get(node) ?? 0
        }
      })
    }
  })

  const hub: MetricsHub = {
    attach: (client) =>
      Effect.gen(function* () {
        yield* register(client)
        yield* installEmitters(client)
        yield* installTracker(client)
        yield* poll
        return makeRecorder()
      }),
    summary
  }
  return hub
})
