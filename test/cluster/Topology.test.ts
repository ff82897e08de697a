/**
 * Maintenance without downtime, on a real cluster started by the project's manager: fiber-concurrent clients keep
 * reading and writing at LOCAL_QUORUM on a keyspace replicated three times while nodes are restarted, killed, added
 * and decommissioned. Each scenario prints one line with its request count, failures, lost writes, the topology
 * events seen and how long the driver took to report the change.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Query from "effect-cassandra/Query"
import * as Topology from "effect-cassandra/Topology"
import * as LocalCassandra from "../../tools/cassandra/LocalCassandra.ts"
import { cqlReadyAt, loggedAt } from "../support/nodeLogs.ts"
import { lostWrites, newTraffic, startClients, stopClients, type Traffic } from "../support/traffic.ts"

const { cql } = Query
const firstAddress = 31
const addressOf = (index: number) => `127.0.0.${firstAddress + index - 1}`

interface Change {
  readonly kind: Topology.NodeEvent["_tag"]
  readonly address: string
  readonly at: () => number
}

/**
 * Runs one scenario under client traffic and checks it: no failed request, no lost acknowledged write, and the
 * topology events that match each change, whose detection delay is measured from the change.
 */
const scenario = (
  name: string,
  steps: (
    changes: Array<Change>,
    traffic: Traffic
  ) => Effect.Effect<void, unknown, Topology.Topology | CassandraLayer.Services>
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const topology = yield* Topology.Topology
      const events: Array<Topology.NodeEvent> = []
      const watcher = yield* topology.events.pipe(
        Stream.runForEach((event) => Effect.sync(() => event._tag !== "SchemaChanged" && events.push(event))),
        Effect.forkChild
      )
      const traffic = newTraffic()
      const clients = yield* startClients(traffic, 4)
      const changes: Array<Change> = []
      yield* steps(changes, traffic)
      const expected = (change: Change) =>
        events.find((event) => event._tag === change.kind && event.node.address.startsWith(`${change.address}:`))
      yield* Effect.sync(() => changes.every(expected)).pipe(
        Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (seen) => seen }),
        Effect.timeout("60 seconds")
      )
      yield* stopClients(clients)
      yield* Fiber.interrupt(watcher)
      const lost = yield* lostWrites(traffic.acknowledged)
      const detect = changes.map((change) => Math.max(0, (expected(change)?.at.getTime() ?? Number.NaN) - change.at()))
      const kinds = [...new Set(events.map((event) => event._tag))].join(",")
      console.log(
        `topology ${name}: requests=${traffic.requests} failed=${traffic.failed} lost=${lost} events=${kinds} detect_ms=${detect.join("/")}`
      )
      assert.isAbove(traffic.requests, 0)
      assert.deepStrictEqual(traffic.failures, [])
      assert.strictEqual(lost, 0)
      for (const change of changes) assert.isDefined(expected(change), `no ${change.kind} event for ${change.address}`)
      return traffic
    })
  )

const now = () => {
  const at = Date.now()
  return () => at
}

describe("topology on a real cluster", () => {
  it.live(
    "keeps serving through a rolling restart, a killed node, a node added and a node decommissioned",
    () =>
      Effect.gen(function* () {
        const cluster = yield* LocalCassandra.start({ nodes: 3, firstAddress, name: "topology" })
        const session = CassandraLayer.layer({
          contactPoints: cluster.contactPoints,
          localDataCenter: cluster.localDataCenter,
          keyspace: "zero_downtime"
        })
        const setup = CassandraLayer.layer({
          contactPoints: cluster.contactPoints,
          localDataCenter: cluster.localDataCenter
        })
        yield* Effect.gen(function* () {
          yield* cql`CREATE KEYSPACE zero_downtime WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}`
          yield* cql`CREATE TABLE zero_downtime.kv (k int PRIMARY KEY, v text)`
        }).pipe(Effect.provide(setup))

        yield* Effect.gen(function* () {
          const topology = yield* Topology.Topology
          yield* topology.awaitNodesUp(3, "60 seconds")

          yield* scenario("rolling-restart", (changes) =>
            Effect.forEach(
              [1, 2, 3],
              (index) =>
                Effect.gen(function* () {
                  changes.push({ kind: "NodeDown", address: addressOf(index), at: now() })
                  yield* cluster.stopNode(index)
                  yield* cluster.startNode(index)
                  changes.push({ kind: "NodeUp", address: addressOf(index), at: () => cqlReadyAt(cluster, index) })
                  yield* topology.awaitNodesUp(3, "120 seconds")
                }),
              { discard: true }
            )
          )

          yield* scenario("kill", (changes) =>
            Effect.gen(function* () {
              changes.push({ kind: "NodeDown", address: addressOf(2), at: now() })
              yield* cluster.killNode(2)
              yield* cluster.startNode(2)
              changes.push({ kind: "NodeUp", address: addressOf(2), at: () => cqlReadyAt(cluster, 2) })
              yield* topology.awaitNodesUp(3, "120 seconds")
            })
          )

          const added = yield* scenario("add-node", (changes, traffic) =>
            Effect.gen(function* () {
              const node = yield* cluster.addNode()
              changes.push({ kind: "NodeAdded", address: node.address, at: () => cqlReadyAt(cluster, node.index) })
              yield* topology.awaitNodesUp(4, "120 seconds")
              yield* Effect.sync(() => [...traffic.coordinators].some((c) => c.startsWith(`${node.address}:`))).pipe(
                Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (reached) => reached }),
                Effect.timeout("60 seconds"),
                Effect.ignore
              )
            })
          )
          assert.isTrue(
            [...added.coordinators].some((coordinator) => coordinator.startsWith(`${addressOf(4)}:`)),
            `no request was coordinated by the new node: ${[...added.coordinators].join(", ")}`
          )

          yield* scenario("decommission", (changes) =>
            Effect.gen(function* () {
              yield* cluster.decommissionNode(4)
              changes.push({
                kind: "NodeRemoved",
                address: addressOf(4),
                at: () => loggedAt(cluster, 4, "left the ring")
              })
            })
          )
        }).pipe(Effect.provide(Layer.fresh(session)))
      }).pipe(Effect.scoped),
    900_000
  )
})
