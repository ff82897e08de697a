/**
 * Faults beyond clean maintenance, on one real 3-node cluster (RF 3, LOCAL_QUORUM) under fiber-concurrent idempotent
 * writes of fresh keys and reads: a frozen node (SIGSTOP), the frozen control-connection node, a node cut off by
 * firewall rules, statements first run and non-idempotent writes while a node shuts down, quorum lost, the whole
 * cluster restarted, and an interrupted batch import resumed. Each scenario
 * prints one line with the latencies of the requests started during the fault, the topology events seen and how long
 * the session took to recover, then checks what the scenario requires.
 */
import { assert, layer } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schedule from "effect/Schedule"
import * as BatchJob from "effect-cassandra/BatchJob"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Logging from "effect-cassandra/Logging"
import * as Session from "effect-cassandra/Session"
import * as Topology from "effect-cassandra/Topology"
import { defaults } from "../../src/internal/clientOptions.ts"
import * as LocalCassandra from "../../tools/cassandra/LocalCassandra.ts"
import { progressReaches } from "../support/batchJob.ts"
import { importOptions as importJobOptions, importRowCount, importTable } from "../support/importData.ts"
import { cqlReadyAt, loggedAt, troubleLogged } from "../support/nodeLogs.ts"
import {
  awaitCondition,
  firstEvent,
  type Run,
  underTraffic as runUnderTraffic,
  type Seen,
  successesSince
} from "../support/scenario.ts"
import { latencySummary, percentile, type Sample, startedBetween } from "../support/traffic.ts"

const firstAddress = 81
const addressOf = (index: number) => `127.0.0.${firstAddress + index - 1}`
const indexOf = (address: string) => Number(address.split(":")[0]!.split(".")[3]) - firstAddress + 1
const keyspace = "faults"
const clientFibers = 8
/**
 * The session runs with its default options, as an application would: one attempt may take this long before the
 * driver tries the next node (longer than Cassandra's own coordinator timeouts, so that a coordinator waiting for a
 * frozen replica is not given up on).
 */
const attemptTimeout = defaults.attemptTimeout
/** An idempotent request to a frozen node costs at most one timed-out attempt plus one retry elsewhere. */
const latencyBound = Duration.toMillis(attemptTimeout) * 2
const freezeFor = Duration.seconds(45)

const ClusterUnderTest = Context.Service<LocalCassandra.Cluster>("test/ClusterUnderTest")

const clusterLayer = Layer.effect(
  ClusterUnderTest,
  Effect.gen(function* () {
    const cluster = yield* LocalCassandra.start({ nodes: 3, firstAddress, name: "faults" })
    yield* Effect.scoped(
      Effect.gen(function* () {
        const session = yield* Session.make({
          contactPoints: cluster.contactPoints,
          localDataCenter: cluster.localDataCenter
        })
        const ddl = (query: string) => session.execute({ query, params: [], options: {} })
        yield* ddl(
          `CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}`
        )
        // A coordinator stops waiting for a frozen replica after the table's speculative retry delay, by default its
        // own 99th percentile read latency. A node resumed from the last scenario's 45 s freeze has measured reads that
        // long, so it would wait out its read timeout instead (a CI run's hung-control lost two reads so, coordinated by
        // the node hung-node had frozen): the delay is capped, as operators cap it.
        yield* ddl(`CREATE TABLE ${keyspace}.kv (k int PRIMARY KEY, v text) WITH speculative_retry = 'MIN(99p,200ms)'`)
        yield* ddl(`CREATE TABLE ${keyspace}.imported (p int, k int, v text, PRIMARY KEY (p, k))`)
        yield* ddl(`CREATE TABLE ${keyspace}.counts (k int PRIMARY KEY, c counter)`)
      })
    )
    return cluster
  })
)

const sessionLayer = (cluster: LocalCassandra.Cluster) =>
  Layer.fresh(
    CassandraLayer.layer({
      contactPoints: cluster.contactPoints,
      localDataCenter: cluster.localDataCenter,
      keyspace
    })
  )

/** When the node `observer` last saw node `index` go down (or `up`), if that was at `from` or later. */
const sawSince = (cluster: LocalCassandra.Cluster, observer: number, index: number, from: number, state = "DOWN") => {
  try {
    const at = loggedAt(cluster, observer, `/${addressOf(index)}:7000 is now ${state}`)
    // The log has millisecond stamps; the clock read at `from` has finer ones.
    return at >= from - 1 ? at : undefined
  } catch {
    return undefined
  }
}

/** The node of the session's control connection: the driver exposes it only on its internal ControlConnection. */
const controlConnectionNode = Effect.gen(function* () {
  const client = yield* Session.CassandraClient
  const internal = client as unknown as { readonly controlConnection: { readonly host: Cassandra.Host | null } }
  const host = internal.controlConnection.host
  assert.isNotNull(host, "the control connection has no host")
  return indexOf(host!.address)
})

/** Puts every node back in service: running, not frozen, not cut off, and seen by the others. */
const heal = (cluster: LocalCassandra.Cluster) =>
  Effect.gen(function* () {
    for (const node of yield* cluster.nodes) {
      if (node.paused) yield* cluster.resumeNode(node.index)
      yield* cluster.reconnectNode(node.index).pipe(Effect.ignore)
    }
    yield* cluster.startStopped
  })

/** Runs `steps` under this suite's client traffic on its 3-node cluster (test/support/scenario.ts). */
const underTraffic = <A>(steps: (run: Run) => Effect.Effect<A, unknown, CassandraLayer.Services>) =>
  runUnderTraffic({ nodes: 3, indexOf, clientFibers }, steps)

const eventKinds = (events: ReadonlyArray<Seen>) =>
  events.length === 0 ? "none" : events.map((event) => `${event.kind}(${event.index})`).join(",")

const ms = (value: number) => (Number.isNaN(value) ? "-" : String(Math.round(value)))

const report = (
  name: string,
  run: Run,
  lost: number,
  during: ReadonlyArray<Sample>,
  recoverMs: number,
  extra: Record<string, string | number>
) => {
  const { p50, p99, max } = latencySummary(during)
  const fields = Object.entries(extra).map(([key, value]) => ` ${key}=${value}`)
  console.log(
    `faults ${name}: requests=${run.traffic.requests} failed=${run.traffic.failed} lost=${lost} ` +
      `p50_ms=${ms(p50)} p99_ms=${ms(p99)} max_ms=${ms(max)} events=${eventKinds(run.events)} ` +
      `recover_ms=${ms(recoverMs)}${fields.join("")}`
  )
  return { p99 }
}

/**
 * Waits until every node coordinates a quorum read promptly, three times in a row. A node back from a 45 s fault still
 * drops the internode messages it queued meanwhile for some seconds; a scenario started then is hit by the last
 * scenario's fault as well as its own (a CI run's hung-control failed twice so: both reads coordinated by the node
 * hung-node had resumed 4 s before). Run before each unresponsive-node scenario and each shutdown cycle.
 */
const settled = Effect.gen(function* () {
  const client = yield* Session.CassandraClient
  const options = { prepare: true, consistency: Cassandra.types.consistencies.localQuorum, readTimeout: 1_000 }
  const probe = Effect.tryPromise(async () => {
    for (const host of client.hosts.values())
      await client.execute(`SELECT v FROM ${keyspace}.kv WHERE k = ?`, [-1], { ...options, host })
  })
  yield* probe.pipe(
    Effect.repeat({ times: 2 }),
    Effect.retry(Schedule.spaced("500 millis")),
    Effect.timeoutOrElse({
      duration: "2 minutes",
      orElse: () => Effect.die(new Error("the cluster did not settle within 2 minutes before the scenario"))
    })
  )
})

/**
 * A node made unresponsive for 45 s without closing a socket, frozen or cut off: no request may fail or be lost,
 * requests started meanwhile take at most one timed-out attempt plus one retry, the node is reported down while it
 * does not answer and up once it does again.
 */
const unresponsiveNode = (
  cluster: LocalCassandra.Cluster,
  name: string,
  choose: (controlNode: number) => number,
  fault: {
    readonly begin: (index: number) => Effect.Effect<void, unknown>
    readonly end: (index: number) => Effect.Effect<void, unknown>
  }
) =>
  Effect.gen(function* () {
    yield* settled
    const { result, run, lost } = yield* underTraffic((run) =>
      Effect.gen(function* () {
        const index = choose(yield* controlConnectionNode)
        const from = Date.now()
        yield* fault.begin(index)
        yield* Effect.sleep(freezeFor)
        const to = Date.now()
        yield* fault.end(index)
        yield* awaitCondition(() => firstEvent(run.events, "NodeUp", index, to) !== undefined, "60 seconds")
        return { index, from, to }
      })
    )
    const { index, from, to } = result
    const ended = Date.now()
    const down = firstEvent(run.events, "NodeDown", index, from, to)
    const up = firstEvent(run.events, "NodeUp", index, to)
    const { p99 } = report(name, run, lost, startedBetween(run.traffic, from, to), (up?.at ?? Number.NaN) - to, {
      node: index,
      bound_ms: latencyBound,
      detect_ms: ms((down?.at ?? Number.NaN) - from)
    })
    assert.deepStrictEqual(
      run.traffic.failures.slice(0, 5),
      [],
      run.traffic.failed === 0
        ? ""
        : failedRequests(cluster, `${run.traffic.failed} requests`, from - Duration.toMillis(freezeFor), ended)
    )
    assert.strictEqual(lost, 0)
    assert.isAtMost(p99, latencyBound, "p99 of the requests started during the fault")
    assert.isDefined(down, `no NodeDown for node ${index} while it did not answer`)
    assert.isDefined(up, `no NodeUp for node ${index} once it answered again`)
  })

/**
 * The message of a scenario's failed requests: how many, and what the nodes logged of their own trouble meanwhile
 * (a request the server timed out is the server's story, told only in its logs). Built only when some failed: it
 * reads every node's whole log.
 */
const failedRequests = (cluster: LocalCassandra.Cluster, requests: string, from: number, to: number) =>
  `${requests} failed; the nodes logged meanwhile:\n${troubleLogged(cluster, 3, from, to).join("\n")}`

/**
 * Stops and restarts a node under traffic at most this often, until it refused both kinds of request: whether a
 * shutdown refuses any is a race, and a local CI run with a full benchmark running beside it on the same 2 cores saw
 * no refusal of either kind in 5 shutdowns, and the run the README shows needed 4. A cycle takes 35 to 60 s.
 */
const shutdownCycles = 10
const firstRunFibers = 32
const writerFibers = 16
const counterKeys = 100
/** The lines the session's log bridge reports for requests a node refused without running them, sent again. */
const preparedElsewhere = "another node refused to prepare"
const sentPastShutdown = "refused as it is shutting down"

/**
 * While a node other than the control connection's shuts down gracefully, fibers run statements never run before (each
 * prepared first) and others increment counters (not idempotent). In its last moments the node answers every request
 * with OVERLOADED ("Server is shutting down") before running it. Repeated until the session reported both a refused
 * PREPARE and a refused write (not every shutdown has both), each later shutdown with only the fibers of the kind not
 * refused yet: a refused write, or within a few refused PREPAREs (once the session's own preparation reaches the node
 * and is refused too), moves the node to the back of query plans, so in a shutdown where PREPAREs are refused first,
 * few writes reach the node before it stops (a CI run saw no refused write in 5 shutdowns of both kinds). Every first
 * run must succeed; a write may fail only with an outcome the client cannot know (its connection closed, a replica
 * timed out), never with the refusal, and the counters must hold every acknowledged increment and at most the unknown
 * ones besides.
 */
const requestsWhileShuttingDown = (cluster: LocalCassandra.Cluster) => {
  const logged = { preparedElsewhere: 0, sentPastShutdown: 0 }
  const capture = Logger.layer([
    Logger.map(Logger.formatStructured, (line) => {
      const message = String(line.message)
      if (message.includes(preparedElsewhere)) logged.preparedElsewhere++
      if (message.includes(sentPastShutdown)) logged.sentPastShutdown++
    })
  ])
  const session = CassandraLayer.layer({
    contactPoints: cluster.contactPoints,
    localDataCenter: cluster.localDataCenter,
    keyspace,
    // Every text is new: the driver's cache must not drop the ones prepared earlier, warning at each new one.
    driverOptions: { maxPrepared: 1_000_000 }
  }).pipe(Layer.provide(Logging.layer("info")), Layer.fresh)
  return Effect.gen(function* () {
    const { execute } = yield* Session.Session
    const topology = yield* Topology.Topology
    const index = ((yield* controlConnectionNode) % 3) + 1
    const firstRunFailures: Array<string> = []
    const writeFailures: Array<string> = []
    let next = 0
    let ran = 0
    let written = 0
    let cycles = 0
    const from = Date.now()
    while (cycles < shutdownCycles && (logged.preparedElsewhere === 0 || logged.sentPastShutdown === 0)) {
      cycles++
      yield* topology.awaitNodesUp(3, "180 seconds")
      // After the previous scenario's fault, or this one's last restart, as before an unresponsive-node scenario.
      yield* settled
      let running = true
      const firstRun = Effect.gen(function* () {
        while (running) {
          // A column alias makes each text new, so the driver prepares it before running it.
          const query = `SELECT v AS first_run_${next++} FROM kv WHERE k = ?`
          const result = yield* Effect.result(execute({ query, params: [0], options: {} }))
          if (result._tag === "Success") ran++
          else firstRunFailures.push(`${result.failure.message} (at ${new Date().toISOString()})`)
        }
      })
      const writer = Effect.gen(function* () {
        while (running) {
          const query = "UPDATE counts SET c = c + 1 WHERE k = ?"
          const key = Math.floor(Math.random() * counterKeys)
          const result = yield* Effect.result(execute({ query, params: [key], options: {} }))
          if (result._tag === "Success") written++
          else writeFailures.push(`${result.failure.reason._tag}: ${result.failure.message}`)
        }
      })
      const clients = yield* Effect.forkChild(
        Effect.all(
          [
            ...Array.from({ length: logged.preparedElsewhere === 0 ? firstRunFibers : 0 }, () => firstRun),
            ...Array.from({ length: logged.sentPastShutdown === 0 ? writerFibers : 0 }, () => writer)
          ],
          { concurrency: "unbounded", discard: true }
        )
      )
      const before = ran + written
      yield* awaitCondition(() => ran + written >= before + 200, "60 seconds")
      yield* cluster.stopNode(index)
      running = false
      yield* Fiber.join(clients)
      yield* cluster.startNode(index)
    }
    yield* topology.awaitNodesUp(3, "180 seconds")
    let counted = 0
    for (let key = 0; key < counterKeys; key++) {
      const rows = yield* execute({
        query: "SELECT c FROM counts WHERE k = ?",
        params: [key],
        options: { consistency: "QUORUM" }
      })
      counted += Number(rows.first()?.get("c") ?? 0)
    }
    console.log(
      `faults shutdown: requests=${ran + firstRunFailures.length + written + writeFailures.length} ` +
        `first_runs=${ran} first_runs_failed=${firstRunFailures.length} writes=${written} ` +
        `writes_unknown=${writeFailures.length} counted=${counted} node=${index} shutdowns=${cycles} ` +
        `prepared_elsewhere=${logged.preparedElsewhere} sent_past_shutdown=${logged.sentPastShutdown} ` +
        `write_failures=${[...new Set(writeFailures.map((failure) => failure.split(":")[0]))].join(",") || "none"}`
    )
    assert.deepStrictEqual(
      firstRunFailures.slice(0, 5),
      [],
      firstRunFailures.length === 0
        ? ""
        : failedRequests(cluster, `${firstRunFailures.length} first runs`, from, Date.now())
    )
    assert.deepStrictEqual(
      writeFailures.filter((failure) => failure.startsWith("Overloaded")).slice(0, 5),
      [],
      "a write the node refused without running it failed"
    )
    assert.isAtLeast(counted, written, "an acknowledged increment is missing")
    assert.isAtMost(counted, written + writeFailures.length, "more increments than sent")
    assert.isAbove(logged.preparedElsewhere, 0, `the node refused no PREPARE in ${cycles} shutdowns`)
    assert.isAbove(logged.sentPastShutdown, 0, `the node refused no write in ${cycles} shutdowns`)
  }).pipe(Effect.provide(session), Effect.provide(capture))
}

/** Node handles the process holds, by kind (Timeout, TCPSocketWrap, …). */
const activeResources = (): Map<string, number> => {
  const counts = new Map<string, number>()
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1)
  return counts
}

/** The handles held now beyond those of `baseline`, as "kind×count". */
const resourcesBeyond = (baseline: Map<string, number>): ReadonlyArray<string> =>
  [...activeResources()].flatMap(([kind, count]) =>
    count > (baseline.get(kind) ?? 0) ? [`${kind}x${count - (baseline.get(kind) ?? 0)}`] : []
  )

/** The longest time between two successive successful requests: the outage clients saw. */
const longestGap = (samples: ReadonlyArray<Sample>) => {
  const ends = samples
    .filter((sample) => sample.failure === undefined)
    .map((sample) => sample.startedAt + sample.ms)
    .sort((a, b) => a - b)
  return ends.reduce((gap, end, position) => (position === 0 ? gap : Math.max(gap, end - ends[position - 1]!)), 0)
}

const rowCount = importRowCount
const importOptions = importJobOptions(32)
const { row: importRow, check: checkImported } = importTable(keyspace)

/**
 * Whether this machine does not let the manager drop a node's packets (tried on a node, and undone at once); the
 * scenario `name` then prints why and is not run. Where iptables is meant to work (CI sets the variable once it
 * installed it), a firewall that refuses fails the scenario instead of letting it pass unseen.
 */
const firewallUnavailable = (cluster: LocalCassandra.Cluster, name: string) =>
  cluster.cutOffNode(3).pipe(
    Effect.andThen(cluster.reconnectNode(3)),
    Effect.as(false),
    Effect.catchIf(
      (error) => error.reason === "FirewallUnavailable",
      (error) =>
        Effect.sync(() => {
          assert.isUndefined(process.env.EFFECT_CASSANDRA_REQUIRE_FIREWALL, `${name} cannot run: ${error.message}`)
          console.log(`faults ${name}: skipped: ${error.message}`)
          return true
        })
    )
  )

layer(clusterLayer, { excludeTestServices: true, timeout: "10 minutes" })("faults on a real cluster", (it) => {
  it.effect(
    "hung-node: a frozen node costs no request and is reported down, then up",
    () =>
      Effect.gen(function* () {
        const cluster = yield* ClusterUnderTest
        yield* unresponsiveNode(cluster, "hung-node", (control) => (control % 3) + 1, {
          begin: cluster.pauseNode,
          end: cluster.resumeNode
        }).pipe(Effect.provide(sessionLayer(cluster)), Effect.ensuring(Effect.ignore(heal(cluster))))
      }),
    600_000
  )

  it.effect(
    "hung-control: a frozen control-connection node costs no request and is reported down, then up",
    () =>
      Effect.gen(function* () {
        const cluster = yield* ClusterUnderTest
        yield* unresponsiveNode(cluster, "hung-control", (control) => control, {
          begin: cluster.pauseNode,
          end: cluster.resumeNode
        }).pipe(Effect.provide(sessionLayer(cluster)), Effect.ensuring(Effect.ignore(heal(cluster))))
      }),
    600_000
  )

  it.effect(
    "cut-off: a node whose packets are dropped costs no request and is reported down, then up",
    () =>
      Effect.gen(function* () {
        const cluster = yield* ClusterUnderTest
        if (yield* firewallUnavailable(cluster, "cut-off")) return
        yield* unresponsiveNode(cluster, "cut-off", (control) => (control % 3) + 1, {
          begin: cluster.cutOffNode,
          end: cluster.reconnectNode
        }).pipe(Effect.provide(sessionLayer(cluster)), Effect.ensuring(Effect.ignore(heal(cluster))))
      }),
    600_000
  )

  it.effect(
    "shutdown: first runs and non-idempotent writes while a node shuts down succeed, though it refuses some of them",
    () =>
      Effect.gen(function* () {
        const cluster = yield* ClusterUnderTest
        yield* requestsWhileShuttingDown(cluster).pipe(Effect.ensuring(Effect.ignore(heal(cluster))))
      }),
    900_000
  )

  it.effect(
    "quorum-lost: with two nodes killed requests fail fast, and succeed again once one returns",
    () =>
      Effect.gen(function* () {
        const cluster = yield* ClusterUnderTest
        const { result, run, lost } = yield* underTraffic((run) =>
          Effect.gen(function* () {
            const control = yield* controlConnectionNode
            const killed = [1, 2, 3].filter((index) => index !== control)
            const from = Date.now()
            for (const index of killed) yield* cluster.killNode(index)
            // Until the surviving node's failure detector convicts the killed ones, it waits for them as a coordinator
            // (Cassandra's own read and write timeouts); from then on every request must fail at once.
            yield* awaitCondition(
              () =>
                killed.every(
                  (index) =>
                    firstEvent(run.events, "NodeDown", index, from) !== undefined &&
                    sawSince(cluster, control, index, from) !== undefined
                ),
              "60 seconds"
            )
            const detected = Date.now()
            yield* awaitCondition(() => startedBetween(run.traffic, detected, Date.now()).length >= 200, "20 seconds")
            const to = Date.now()
            yield* cluster.startNode(killed[0]!)
            // Requests can succeed once the coordinator sees a second replica again.
            const returned = sawSince(cluster, control, killed[0]!, to, "UP") ?? Number.NaN
            yield* awaitCondition(() => successesSince(run.traffic, to) > 0, "60 seconds")
            const firstSuccess = run.traffic.samples.find(
              (sample) => sample.failure === undefined && sample.startedAt >= to
            )
            const recoverMs =
              (firstSuccess === undefined ? Number.NaN : firstSuccess.startedAt + firstSuccess.ms) - returned
            return { killed, from, detected, to, recoverMs }
          })
        ).pipe(
          // The other killed node comes back once the traffic has stopped: a quorum needs only the first, and a node
          // restarting under the clients' load takes two to three times as long on two cores.
          Effect.tap(({ result }) => cluster.startNode(result.killed[1]!)),
          Effect.provide(sessionLayer(cluster)),
          Effect.ensuring(Effect.ignore(heal(cluster)))
        )
        const { killed, from, detected, to, recoverMs } = result
        const failing = startedBetween(run.traffic, detected, to)
        const failMs = percentile(
          failing.filter((sample) => sample.failure !== undefined).map((sample) => sample.ms),
          99
        )
        const reasons = [...new Set(failing.map((sample) => sample.failure ?? "Success"))]
        report("quorum-lost", run, lost, startedBetween(run.traffic, from, to), recoverMs, {
          nodes: killed.join("+"),
          server_detect_ms: detected - from,
          fail_p99_ms: ms(failMs),
          reasons: reasons.join(",")
        })
        assert.includeMembers(
          ["Unavailable", "NoHostAvailable"],
          reasons,
          "requests without a quorum fail for want of replicas"
        )
        assert.isAtMost(failMs, Duration.toMillis(attemptTimeout), "a request without a quorum fails without waiting")
        assert.isFalse(Number.isNaN(recoverMs), "no request succeeded once a node returned")
        assert.strictEqual(lost, 0)
      }),
    600_000
  )

  it.effect(
    "full-restart: the session recovers by itself, reports no removal, and leaves nothing behind once closed",
    () =>
      Effect.gen(function* () {
        const cluster = yield* ClusterUnderTest
        const baseline = activeResources()
        const { result, run, lost } = yield* underTraffic(() =>
          Effect.gen(function* () {
            const from = Date.now()
            yield* cluster.stop
            yield* cluster.startStopped
            const to = Date.now()
            const firstReady = Math.min(...[1, 2, 3].map((index) => cqlReadyAt(cluster, index)))
            // Recovered by itself: the same session sees every node up again.
            const allUp = yield* (yield* Topology.Topology).awaitNodesUp(3, "120 seconds").pipe(
              Effect.as(true),
              Effect.orElseSucceed(() => false)
            )
            return { from, to, firstReady, allUp, allUpMs: Date.now() - firstReady }
          })
        ).pipe(Effect.provide(sessionLayer(cluster)), Effect.ensuring(Effect.ignore(heal(cluster))))
        const { from, to, firstReady, allUp, allUpMs } = result
        // The session's scope is closed: its driver's sockets close asynchronously, so they are waited for.
        yield* awaitCondition(() => resourcesBeyond(baseline).length === 0, "20 seconds")
        const left = resourcesBeyond(baseline)
        const firstSuccess = run.traffic.samples.find(
          (sample) => sample.failure === undefined && sample.startedAt + sample.ms >= firstReady
        )
        const removals = run.events.filter((event) => event.kind === "NodeRemoved" || event.kind === "NodeAdded")
        report(
          "full-restart",
          run,
          lost,
          startedBetween(run.traffic, from, to),
          (firstSuccess === undefined ? Number.NaN : firstSuccess.startedAt + firstSuccess.ms) - firstReady,
          {
            outage_ms: longestGap(run.traffic.samples),
            all_up_ms: allUp ? allUpMs : "never",
            handles_left: left.length === 0 ? "none" : left.join(",")
          }
        )
        assert.strictEqual(lost, 0)
        assert.isDefined(firstSuccess, "the session never served again")
        assert.isTrue(allUp, "the session did not see every node up again")
        assert.deepStrictEqual(removals, [], "a node that only restarted was reported removed or added")
        assert.deepStrictEqual(left, [], "handles left once the session was closed")
      }),
    600_000
  )

  it.effect(
    "batch-interrupted: an import interrupted partway resumes from what the interruption returned",
    () =>
      Effect.gen(function* () {
        const statements = Array.from({ length: rowCount }, (_, k) => importRow(k))
        const startedAt = Date.now()
        const job = yield* Effect.scoped(
          Effect.gen(function* () {
            yield* (yield* Topology.Topology).awaitNodesUp(3, "120 seconds")
            const job = yield* BatchJob.start(statements, { ...importOptions, progressInterval: "10 millis" })
            yield* progressReaches(job, rowCount / 5)
            return job
          })
        )
        const interrupted = yield* job.report.pipe(Effect.timeout("60 seconds"))
        const unfinished = BatchJob.unfinished(interrupted)
        const resumed = yield* BatchJob.run(unfinished, importOptions)
        const table = yield* checkImported
        const correct = table.distinct - table.wrong
        console.log(
          `faults batch-interrupted: requests=${interrupted.succeeded + unfinished.length} ` +
            `failed=${resumed.failures.length} lost=${rowCount - correct} p50_ms=- p99_ms=- max_ms=- events=none ` +
            `recover_ms=- interrupted_at=${interrupted.succeeded} resumed=${unfinished.length} rows=${table.rows} ` +
            `elapsed_ms=${Date.now() - startedAt}`
        )
        assert.isAbove(interrupted.succeeded, 0)
        assert.isBelow(interrupted.succeeded, rowCount)
        assert.deepStrictEqual(resumed.failures, [])
        assert.deepStrictEqual(table, { rows: rowCount, distinct: rowCount, wrong: 0 })
      }).pipe(Effect.provide(Layer.unwrap(Effect.map(Effect.service(ClusterUnderTest), sessionLayer)))),
    600_000
  )
})
