/**
 * Client traffic for the cluster suites: fibers that alternate idempotent writes of fresh keys with reads of keys
 * written before, recording every request's start, duration and outcome, so that a scenario can check that no
 * acknowledged write was lost and measure the latency of the requests started while a node was in trouble.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type * as CassandraError from "effect-cassandra/CassandraError"
import * as Query from "effect-cassandra/Query"
import type { Session } from "effect-cassandra/Session"

const { cql } = Query

/** One request: when it started (epoch ms), how long it took, and the reason it failed for, if it did. */
export interface Sample {
  readonly startedAt: number
  readonly ms: number
  readonly failure: CassandraError.CassandraError["reason"]["_tag"] | undefined
}

/** What the clients of one scenario did. */
export interface Traffic {
  requests: number
  failed: number
  /** The first failures: each one's message, coordinator and start time, to find it in the nodes' logs. */
  readonly failures: Array<string>
  readonly acknowledged: Array<number>
  /** The nodes that coordinated a successful request, read or write. */
  readonly coordinators: Set<string>
  readonly samples: Array<Sample>
  /** Set by {@link stopClients}: each client ends once its request in flight has. */
  stopping: boolean
}

export const newTraffic = (): Traffic => ({
  requests: 0,
  failed: 0,
  failures: [],
  acknowledged: [],
  coordinators: new Set(),
  samples: [],
  stopping: false
})

/** How many failure messages are kept (the count is always exact). */
const keptFailures = 20
const pauseAfterFailure = "50 millis"

// Keys are fresh across every scenario of a process, so that a write acknowledged in one is never overwritten later.
let nextKey = 0

/**
 * Makes the clients of this process (or worker thread) write keys from `first` on: workers writing the same table
 * from keys of their own cannot hide each other's lost writes by writing the same key and value.
 */
export const writeKeysFrom = (first: number) => {
  nextKey = first
}

const described = (failure: CassandraError.CassandraError, startedAt: number) => {
  const coordinator = "coordinator" in failure.reason ? failure.reason.coordinator : undefined
  return `${failure.message} (coordinator ${coordinator ?? "unknown"}, started ${new Date(startedAt).toISOString()})`
}

const timed = <A extends { readonly info: Query.ExecutionInfo }>(
  traffic: Traffic,
  request: Effect.Effect<A, CassandraError.CassandraError, Session>
) =>
  Effect.gen(function* () {
    const startedAt = Date.now()
    const result = yield* Effect.result(request)
    traffic.requests++
    if (result._tag === "Success" && result.success.info.coordinator !== undefined) {
      traffic.coordinators.add(result.success.info.coordinator)
    }
    const failure = result._tag === "Failure" ? result.failure : undefined
    traffic.samples.push({ startedAt, ms: Date.now() - startedAt, failure: failure?.reason._tag })
    if (failure !== undefined) {
      traffic.failed++
      if (traffic.failures.length < keptFailures) traffic.failures.push(described(failure, startedAt))
      // As a real client backs off: failing at once in a loop would starve the event loop while no node is up.
      yield* Effect.sleep(pauseAfterFailure)
    }
    return result
  })

/**
 * One client: alternates idempotent writes of fresh keys into `kv` and reads of keys written before, until stopped,
 * pausing `thinkTime` after each pair when given (a client serving users rather than saturating the machine).
 */
export const client = (traffic: Traffic, thinkTime?: Duration.Input) =>
  Effect.gen(function* () {
    while (!traffic.stopping) {
      const key = nextKey++
      const wrote = yield* timed(
        traffic,
        cql`INSERT INTO kv (k, v) VALUES (${key}, ${`value-${key}`})`.withOptions({ idempotent: true }).result
      )
      if (wrote._tag === "Success") traffic.acknowledged.push(key)
      const readKey = traffic.acknowledged[Math.floor(Math.random() * traffic.acknowledged.length)] ?? key
      yield* timed(traffic, cql`SELECT v FROM kv WHERE k = ${readKey}`.result)
      if (thinkTime !== undefined) yield* Effect.sleep(thinkTime)
    }
  })

/** The traffic each running set of clients records into, so that {@link stopClients} can tell them to stop. */
const recordingInto = new WeakMap<Fiber.Fiber<unknown>, Traffic>()

/**
 * Runs `fibers` clients in the background of the scope, until {@link stopClients}; without `thinkTime` each sends its
 * next request as soon as the last one ended, saturating the machine.
 */
export const startClients = (
  traffic: Traffic,
  fibers: number,
  thinkTime?: Duration.Input
): Effect.Effect<Fiber.Fiber<unknown>, never, Session | Scope.Scope> =>
  Effect.forkScoped(
    Effect.all(
      Array.from({ length: fibers }, () => client(traffic, thinkTime)),
      { concurrency: "unbounded" }
    )
  ).pipe(Effect.tap((clients) => Effect.sync(() => recordingInto.set(clients, traffic))))

/**
 * Stops the clients and waits until their requests in flight have ended (each within the request timeout), so that
 * every request sent is counted: one interrupted instead would vanish from the samples, its failure or latency unseen.
 */
export const stopClients = (clients: Fiber.Fiber<unknown>) =>
  Effect.suspend(() => {
    const traffic = recordingInto.get(clients)
    if (traffic === undefined)
      return Effect.die(new Error("stopClients: these clients were not started by startClients"))
    traffic.stopping = true
    return Effect.asVoid(Fiber.await(clients))
  })

/** How a page of the write check is asked again: 7 times over about 13 s, as a node recovers from a fault. */
const verificationRetry = { schedule: Schedule.exponential("100 millis"), times: 7 }

const everyWrite = cql<{ readonly k: number; readonly v: string }>`SELECT k, v FROM kv`.withOptions({
  consistency: "QUORUM",
  idempotent: true,
  pageSize: 5_000,
  // A page of a range scan may take a loaded node up to its range_request_timeout (10 s): one attempt waits for it.
  timeout: "30 seconds"
})

/**
 * How many acknowledged keys do not read back with their value, at QUORUM. One paged scan of `kv` rather than a read
 * per key: a range read at QUORUM merges the answers of a quorum of replicas as a single-partition read does, so it
 * sees every write a quorum acknowledged, at a small part of the server's work per key (tens of thousands of point
 * reads took 20 to 40 s of each scenario on the 2-core test machines).
 */
export const lostWrites = (keys: ReadonlyArray<number>) =>
  Effect.gen(function* () {
    const values = new Map<number, string>()
    let pageState: string | undefined
    do {
      // Right after a fault a node that was frozen can still time out a QUORUM read on the server side: the scan only
      // checks the writes, so a retryable answer is asked again, page by page, rather than failing the scenario.
      const page = yield* everyWrite
        .page(pageState)
        .pipe(Effect.retry({ ...verificationRetry, while: (error) => error.isRetryable }))
      for (const row of page.rows) values.set(row.k, row.v)
      pageState = Option.getOrUndefined(page.pageState)
    } while (pageState !== undefined)
    return keys.filter((key) => values.get(key) !== `value-${key}`).length
  })

/** The requests started within `[from, to)` (epoch ms). */
export const startedBetween = (traffic: Traffic, from: number, to: number): ReadonlyArray<Sample> =>
  traffic.samples.filter((sample) => sample.startedAt >= from && sample.startedAt < to)

/** The `p`-th percentile (0..100) of `values` by the nearest-rank method; NaN when there are none. */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

/** p50, p99 and max of the durations of `samples`, in ms. */
export const latencySummary = (samples: ReadonlyArray<Sample>) => {
  const durations = samples.map((sample) => sample.ms)
  return {
    p50: percentile(durations, 50),
    p99: percentile(durations, 99),
    // Not Math.max(...durations): spreading hundreds of thousands of arguments overflows the stack.
    max: percentile(durations, 100)
  }
}
