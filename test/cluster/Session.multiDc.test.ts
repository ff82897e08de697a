/**
 * Two data centers on one real cluster of 2 DCs x 2 nodes (GossipingPropertyFileSnitch: dc1, dc2, rack1), a keyspace
 * replicated dc1:2, dc2:2 (NetworkTopologyStrategy), and sessions local to dc1 running fiber-concurrent idempotent
 * writes of fresh keys and reads at LOCAL_QUORUM. Each scenario prints one line `multidc <scenario>: requests=N
 * failed=F lost=L ...`: which nodes coordinated, the whole remote DC stopped under traffic (and EACH_QUORUM meanwhile),
 * the whole local DC stopped. One cluster serves every scenario, including the manager's own placement checks.
 */
import { assert, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Query from "effect-cassandra/Query"
import * as Session from "effect-cassandra/Session"
import * as Topology from "effect-cassandra/Topology"
import * as LocalCassandra from "../../tools/cassandra/LocalCassandra.ts"
import { cqlReadyAt, firstLoggedSince } from "../support/nodeLogs.ts"
import * as scenario from "../support/scenario.ts"
import { awaitCondition, firstEvent, type Run, successesSince } from "../support/scenario.ts"
import {
  latencySummary,
  lostWrites,
  percentile,
  type Sample,
  startedBetween,
  type Traffic
} from "../support/traffic.ts"

const { cql } = Query

const firstAddress = 21
const addressOf = (index: number) => `127.0.0.${firstAddress + index - 1}`
const indexOf = (address: string) => Number(address.split(":")[0]!.split(".")[3]) - firstAddress + 1
const localNodes = [1, 2]
const remoteNodes = [3, 4]
const localCoordinators = localNodes.map((index) => `${addressOf(index)}:9042`)
const keyspace = "multidc"
const clientFibers = 8
/** EACH_QUORUM writes sent one after another while the remote DC is down. */
const probeCount = 20

const ClusterUnderTest = Context.Service<LocalCassandra.Cluster>("test/ClusterUnderTest")

const clusterLayer = Layer.effect(
  ClusterUnderTest,
  Effect.gen(function* () {
    const cluster = yield* LocalCassandra.start({ dataCenters: 2, nodes: 2, firstAddress, name: "multidc" })
    yield* Effect.scoped(
      Effect.gen(function* () {
        const session = yield* Session.make({ contactPoints: cluster.contactPoints, localDataCenter: "dc1" })
        const ddl = (query: string) => session.execute({ query, params: [], options: {} })
        yield* ddl(
          `CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 2, 'dc2': 2}`
        )
        yield* ddl(`CREATE TABLE ${keyspace}.kv (k int PRIMARY KEY, v text)`)
      })
    )
    return cluster
  })
)

const sessionLayer = (cluster: LocalCassandra.Cluster) =>
  Layer.fresh(CassandraLayer.layer({ contactPoints: cluster.contactPoints, localDataCenter: "dc1", keyspace }))

/**
 * Reads `keys` through a second session local to dc2, at LOCAL_QUORUM: how many read back with their value, and the
 * nodes that coordinated. This is the move to another data center that the application, not the driver, makes.
 */
const readThroughDc2 = (cluster: LocalCassandra.Cluster, keys: ReadonlyArray<number>) =>
  Effect.forEach(keys, (key) => cql<{ readonly v: string }>`SELECT v FROM kv WHERE k = ${key}`.result, {
    concurrency: 8
  }).pipe(
    Effect.map((results) => ({
      found: results.filter((result, position) => result.rows[0]?.v === `value-${keys[position]}`).length,
      coordinators: [...new Set(results.map((result) => result.info.coordinator))].sort()
    })),
    Effect.provide(
      Layer.fresh(CassandraLayer.layer({ contactPoints: cluster.contactPoints, localDataCenter: "dc2", keyspace }))
    )
  )

/** When node `observer` first logged, at `from` or later, that node `index` went `state`; NaN if it has not. */
const seenSince = (
  cluster: LocalCassandra.Cluster,
  observer: number,
  index: number,
  state: "UP" | "DOWN",
  from: number
) => firstLoggedSince(cluster, observer, `/${addressOf(index)}:7000 is now ${state}`, from)

/**
 * When node `coordinator` could serve a request needing `replicas` again after `from`: answering CQL and seeing them
 * all up.
 */
const servingSince = (
  cluster: LocalCassandra.Cluster,
  coordinator: number,
  replicas: ReadonlyArray<number>,
  from: number
) =>
  Math.max(
    cqlReadyAt(cluster, coordinator),
    ...replicas.map((index) => seenSince(cluster, coordinator, index, "UP", from))
  )

/** Starts every stopped node again, so that a failed scenario does not leave the next one a broken cluster. */
const heal = (cluster: LocalCassandra.Cluster) => cluster.startStopped

/**
 * Runs `steps` under the clients' traffic; every step that stops nodes ends by waiting until the session sees all
 * four up again, so that the writes are checked at QUORUM (3 of the 4 replicas, at least one answer from each DC).
 */
const underTraffic = <A>(steps: (run: Run) => Effect.Effect<A, unknown, CassandraLayer.Services>) =>
  scenario.underTraffic({ nodes: 4, indexOf, clientFibers }, (run) =>
    Effect.tap(steps(run), () =>
      Effect.flatMap(Effect.service(Topology.Topology), (topology) => topology.awaitNodesUp(4, "180 seconds"))
    )
  )

const ms = (value: number) => (Number.isNaN(value) ? "-" : String(Math.round(value)))

const coordinatorList = (traffic: Traffic) => [...traffic.coordinators].sort().join(",") || "none"

const report = (name: string, run: Run, lost: number, extra: Record<string, string | number>) => {
  const fields = Object.entries(extra).map(([key, value]) => ` ${key}=${value}`)
  console.log(
    `multidc ${name}: requests=${run.traffic.requests} failed=${run.traffic.failed} lost=${lost} ` +
      `coordinators=${coordinatorList(run.traffic)}${fields.join("")}`
  )
}

/** Every successful request of the run was coordinated by a node of dc1. */
const assertLocalCoordinators = (traffic: Traffic) => {
  assert.isAbove(traffic.coordinators.size, 0, "no request succeeded")
  for (const coordinator of traffic.coordinators) {
    assert.include(localCoordinators, coordinator, `a request was coordinated by ${coordinator}, outside dc1`)
  }
}

const latencyFields = (samples: ReadonlyArray<Sample>) => {
  const { p50, p99, max } = latencySummary(samples)
  return { p50_ms: ms(p50), p99_ms: ms(p99), max_ms: ms(max) }
}

const reasonsOf = (samples: ReadonlyArray<Sample>) => [...new Set(samples.map((sample) => sample.failure ?? "Success"))]

// Probe keys are negative, away from the traffic's fresh keys, so that lostWrites checks them the same way.
let nextProbeKey = -1

interface Probe {
  readonly key: number
  readonly ms: number
  readonly endedAt: number
  readonly outcome: "Success" | ReasonTag
}

type ReasonTag = Exclude<Sample["failure"], undefined>

/** One idempotent write at EACH_QUORUM, timed; the reason's details when it is Unavailable. */
const eachQuorumWrite = Effect.gen(function* () {
  const key = nextProbeKey--
  const startedAt = Date.now()
  const result = yield* Effect.result(
    cql`INSERT INTO kv (k, v) VALUES (${key}, ${`value-${key}`})`.withOptions({
      consistency: "EACH_QUORUM",
      idempotent: true
    })
  )
  const endedAt = Date.now()
  const probe: Probe = {
    key,
    ms: endedAt - startedAt,
    endedAt,
    outcome: result._tag === "Success" ? "Success" : result.failure.reason._tag
  }
  const unavailable =
    result._tag === "Failure" && result.failure.reason._tag === "Unavailable" ? result.failure.reason : undefined
  return { probe, unavailable }
})

layer(clusterLayer, { excludeTestServices: true, timeout: "15 minutes" })("two data centers", (it) => {
  it.effect(
    "placement: the manager starts two data centers whose nodes report their data center and rack to a session local to dc1",
    () =>
      Effect.gen(function* () {
        const cluster = yield* ClusterUnderTest
        const placement = [
          ["127.0.0.21", "dc1", "rack1"],
          ["127.0.0.22", "dc1", "rack1"],
          ["127.0.0.23", "dc2", "rack1"],
          ["127.0.0.24", "dc2", "rack1"]
        ]
        assert.deepStrictEqual(cluster.dataCenters, ["dc1", "dc2"])
        assert.strictEqual(cluster.localDataCenter, "dc1")
        const recorded = yield* cluster.nodes
        assert.deepStrictEqual(
          recorded.map((node) => [node.address, node.dataCenter, node.rack]),
          placement
        )
        const seen = yield* Effect.flatMap(Effect.service(Topology.Topology), (topology) => topology.nodes).pipe(
          Effect.provide(sessionLayer(cluster))
        )
        assert.deepStrictEqual(
          seen.map((node) => [node.address, node.dataCenter, node.rack]).sort(),
          placement.map(([address, dataCenter, rack]) => [`${address}:9042`, dataCenter, rack])
        )
      }),
    600_000
  )

  it.effect(
    "local-coordinators: every request is coordinated by a node of the local data center",
    () =>
      Effect.gen(function* () {
        const cluster = yield* ClusterUnderTest
        const { run, lost } = yield* underTraffic((run) =>
          awaitCondition(() => successesSince(run.traffic, 0) >= 4000, "120 seconds")
        ).pipe(Effect.provide(sessionLayer(cluster)))
        report("local-coordinators", run, lost, latencyFields(run.traffic.samples))
        assert.deepStrictEqual(run.traffic.failures.slice(0, 5), [], `${run.traffic.failed} requests failed`)
        assert.strictEqual(lost, 0)
        assertLocalCoordinators(run.traffic)
        assert.deepStrictEqual([...run.traffic.coordinators].sort(), localCoordinators, "both local nodes coordinate")
      }),
    600_000
  )

  it.effect(
    "remote-dc-down: LOCAL_QUORUM traffic loses nothing while the remote DC is down; EACH_QUORUM fails with Unavailable, then recovers in the same session",
    () =>
      Effect.gen(function* () {
        const cluster = yield* ClusterUnderTest
        const { result, run, lost } = yield* underTraffic((run) =>
          Effect.gen(function* () {
            const before = (yield* eachQuorumWrite).probe
            const from = Date.now()
            for (const index of remoteNodes) yield* cluster.stopNode(index)
            const stopped = Date.now()
            // Until both local nodes have convicted the remote ones, a coordinator may still wait for them; from then
            // on it knows too few replicas alive and answers at once.
            yield* awaitCondition(
              () =>
                remoteNodes.every(
                  (index) =>
                    firstEvent(run.events, "NodeDown", index, from) !== undefined &&
                    localNodes.every((observer) => !Number.isNaN(seenSince(cluster, observer, index, "DOWN", from)))
                ),
              "120 seconds"
            )
            const detected = Date.now()
            const probes: Array<Probe> = []
            const unavailable: Array<{ consistency: string; required: number; alive: number }> = []
            for (let n = 0; n < probeCount; n++) {
              const { probe, unavailable: reason } = yield* eachQuorumWrite
              probes.push(probe)
              if (reason !== undefined) unavailable.push(reason)
            }
            yield* awaitCondition(() => startedBetween(run.traffic, detected, Date.now()).length >= 2000, "30 seconds")
            const to = Date.now()
            // The same session, no rebuild: EACH_QUORUM is polled from the restart on, and succeeds once the local
            // coordinators see the remote DC up again.
            const polls: Array<Probe> = []
            const poller = yield* eachQuorumWrite.pipe(
              Effect.tap(({ probe }) => Effect.sync(() => polls.push(probe))),
              Effect.repeat({
                schedule: Schedule.spaced("250 millis"),
                until: ({ probe }) => probe.outcome === "Success"
              }),
              Effect.timeout("300 seconds"),
              Effect.ignore,
              Effect.forkChild
            )
            for (const index of remoteNodes) yield* cluster.startNode(index)
            // Either local node coordinates: EACH_QUORUM can succeed once one of them sees both remote nodes up (their
            // gossip is back before their CQL port).
            const returned = Math.min(...localNodes.map((index) => servingSince(cluster, index, remoteNodes, to)))
            yield* Fiber.join(poller)
            const after: Array<Probe> = []
            for (let n = 0; n < probeCount; n++) after.push((yield* eachQuorumWrite).probe)
            return { before, from, stopped, detected, to, probes, unavailable, returned, polls, after }
          })
        ).pipe(Effect.provide(sessionLayer(cluster)), Effect.ensuring(Effect.ignore(heal(cluster))))
        const { before, from, stopped, detected, to, probes, unavailable, returned, polls, after } = result
        const recovered = polls.find((probe) => probe.outcome === "Success")
        const outage = startedBetween(run.traffic, from, to)
        report("remote-dc-down", run, lost, {
          outage_requests: outage.length,
          ...latencyFields(outage),
          stop_ms: stopped - from,
          seen_down_ms: detected - stopped,
          outage_s: ((to - from) / 1000).toFixed(0)
        })
        const probeMs = probes.map((probe) => probe.ms)
        const acknowledged = [before, ...polls, ...after]
          .filter((probe) => probe.outcome === "Success")
          .map((probe) => probe.key)
        const probeLost = yield* lostWrites(acknowledged).pipe(Effect.provide(sessionLayer(cluster)))
        const requests = 1 + probes.length + polls.length + after.length
        const failed = [before, ...probes, ...polls, ...after].filter((probe) => probe.outcome !== "Success").length
        console.log(
          `multidc each-quorum: requests=${requests} failed=${failed} lost=${probeLost} ` +
            `down_reasons=${[...new Set(probes.map((probe) => probe.outcome))].join(",")} ` +
            `consistency=${unavailable[0]?.consistency ?? "-"} required=${unavailable[0]?.required ?? "-"} ` +
            `alive=${unavailable[0]?.alive ?? "-"} fail_p50_ms=${ms(percentile(probeMs, 50))} ` +
            `fail_max_ms=${ms(percentile(probeMs, 100))} polls=${polls.length} ` +
            `poll_reasons=${[...new Set(polls.map((probe) => probe.outcome))].join(",")} ` +
            `recover_ms=${ms((recovered?.endedAt ?? Number.NaN) - returned)} after_ok=${after.filter((probe) => probe.outcome === "Success").length}/${after.length}`
        )

        assert.deepStrictEqual(run.traffic.failures.slice(0, 5), [], `${run.traffic.failed} requests failed`)
        assert.strictEqual(lost, 0)
        assertLocalCoordinators(run.traffic)

        assert.strictEqual(before.outcome, "Success", "EACH_QUORUM with both data centers up")
        assert.deepStrictEqual(
          probes.map((probe) => probe.outcome),
          probes.map(() => "Unavailable"),
          "EACH_QUORUM with the remote DC down"
        )
        for (const reason of unavailable) {
          assert.deepStrictEqual([reason.consistency, reason.required, reason.alive], ["EACH_QUORUM", 2, 0])
        }
        assert.isDefined(recovered, "EACH_QUORUM never succeeded again once the remote DC returned")
        assert.deepStrictEqual(
          after.map((probe) => probe.outcome),
          after.map(() => "Success"),
          "EACH_QUORUM once recovered"
        )
        assert.strictEqual(probeLost, 0)
      }),
    900_000
  )

  it.effect(
    "local-dc-down: requests fail fast with NoHostAvailable while the local DC is down, and recover by themselves",
    () =>
      Effect.gen(function* () {
        const cluster = yield* ClusterUnderTest
        const { result, run, lost } = yield* underTraffic((run) =>
          Effect.gen(function* () {
            const from = Date.now()
            for (const index of localNodes) yield* cluster.stopNode(index)
            const stopped = Date.now()
            yield* awaitCondition(
              () => localNodes.every((index) => firstEvent(run.events, "NodeDown", index, from) !== undefined),
              "120 seconds"
            )
            const detected = Date.now()
            // One request's whole error, beyond the traffic's reason tags: which hosts were tried, and why.
            const refused = yield* Effect.flip(cql`SELECT v FROM kv WHERE k = ${0}`)
            // Keys acknowledged well before the stop, so that their copies in dc2 were surely written.
            const written = run.traffic.acknowledged.slice(0, Math.min(200, run.traffic.acknowledged.length / 2))
            const dc2 = yield* readThroughDc2(cluster, written)
            yield* awaitCondition(() => startedBetween(run.traffic, detected, Date.now()).length >= 500, "30 seconds")
            const to = Date.now()
            // LOCAL_QUORUM needs both local replicas: requests can succeed once the second local node is back.
            for (const index of localNodes) yield* cluster.startNode(index)
            yield* awaitCondition(() => successesSince(run.traffic, to) > 0, "180 seconds")
            const returned = Math.min(servingSince(cluster, 1, [2], to), servingSince(cluster, 2, [1], to))
            const firstSuccess = run.traffic.samples.find(
              (sample) => sample.failure === undefined && sample.startedAt >= to
            )
            const recoverMs =
              (firstSuccess === undefined ? Number.NaN : firstSuccess.startedAt + firstSuccess.ms) - returned
            // The session reconnected to the first returning node once a request reached a coordinator again.
            const answered = run.traffic.samples.find(
              (sample) => sample.startedAt >= to && sample.failure !== "NoHostAvailable"
            )
            const reconnectMs =
              (answered === undefined ? Number.NaN : answered.startedAt + answered.ms) - cqlReadyAt(cluster, 1)
            const recovered = firstSuccess !== undefined
            return {
              from,
              stopped,
              detected,
              refused,
              written: written.length,
              dc2,
              to,
              recovered,
              recoverMs,
              reconnectMs
            }
          })
        ).pipe(Effect.provide(sessionLayer(cluster)), Effect.ensuring(Effect.ignore(heal(cluster))))
        const { from, stopped, detected, refused, written, dc2, to, recovered, recoverMs, reconnectMs } = result
        const down = startedBetween(run.traffic, detected, to)
        const failMs = down.filter((sample) => sample.failure !== undefined).map((sample) => sample.ms)
        const reasons = reasonsOf(down)
        report("local-dc-down", run, lost, {
          down_requests: down.length,
          reasons: reasons.join(","),
          stopping_reasons: reasonsOf(startedBetween(run.traffic, from, detected)).join(","),
          fail_p50_ms: ms(percentile(failMs, 50)),
          fail_max_ms: ms(percentile(failMs, 100)),
          stop_ms: stopped - from,
          seen_down_ms: detected - stopped,
          reconnect_ms: ms(reconnectMs),
          recover_ms: ms(recoverMs),
          outage_s: ((to - from) / 1000).toFixed(0),
          dc2_session_read: `${dc2.found}/${written}`,
          dc2_coordinators: dc2.coordinators.join(",")
        })
        console.log(
          `multidc local-dc-down error: ${refused.reason._tag} retryable=${refused.isRetryable}: ${refused.message}`
        )
        assert.isAbove(down.length, 0, "no request was sent while the local DC was down")
        assert.deepStrictEqual(reasons, ["NoHostAvailable"], "requests while the local DC is down")
        // No remote node is in the plan: nothing is tried, and the request may be retried once a local node is back.
        assert.deepStrictEqual(
          refused.reason._tag === "NoHostAvailable" ? [refused.reason.hosts, refused.isRetryable] : refused.reason._tag,
          [[], true]
        )
        assert.isTrue(recovered, "no request succeeded once the local nodes returned")
        assert.isAbove(written, 0)
        assert.strictEqual(dc2.found, written, "a session local to dc2 reads what dc1 acknowledged")
        assert.deepStrictEqual(dc2.coordinators, ["127.0.0.23:9042", "127.0.0.24:9042"])
        assert.strictEqual(lost, 0)
        assertLocalCoordinators(run.traffic)
      }),
    900_000
  )
})
