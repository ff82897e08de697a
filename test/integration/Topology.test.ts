import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as Query from "effect-cassandra/Query"
import * as Session from "effect-cassandra/Session"
import * as Topology from "effect-cassandra/Topology"
import { sessionWithKeyspace } from "../support/session.ts"

const setup = sessionWithKeyspace("topology")

const driverListeners = (client: { listenerCount: (event: string) => number }) =>
  ["hostAdd", "hostRemove", "hostUp", "hostDown", "log"].reduce((sum, event) => sum + client.listenerCount(event), 0)

layer(setup.layer, { timeout: 120_000, excludeTestServices: true })("topology on a single node", (it) => {
  it.effect("describes every node with its address, host id, data center, rack, version and state", () =>
    Effect.gen(function* () {
      const topology = yield* Topology.Topology
      const nodes = yield* topology.nodes
      assert.lengthOf(nodes, 1)
      const [node] = nodes
      assert.match(node!.address, /^127\.0\.0\.\d+:9042$|:\d+$/)
      assert.match(node!.hostId ?? "", /^[0-9a-f-]{36}$/)
      assert.strictEqual(node!.dataCenter, "datacenter1")
      assert.strictEqual(node!.rack, "rack1")
      // The release the node reports itself, whichever the suite runs against (the server matrix runs 6.0).
      const [local] = yield* Query.cql<{ readonly release_version: string }>`SELECT release_version FROM system.local`
      assert.strictEqual(node!.cassandraVersion, local!.release_version)
      assert.strictEqual(node!.state, "up")
      assert.instanceOf(node!.since, Date)
      yield* topology.awaitNodesUp(1, "5 seconds")
      const error = yield* Effect.flip(topology.awaitNodesUp(2, "300 millis"))
      assert.strictEqual(error._tag, "NodesNotUpError")
      assert.strictEqual(error.up, 1)
    })
  )

  it.effect("starts the changes stream with the current cluster state", () =>
    Effect.gen(function* () {
      const topology = yield* Topology.Topology
      const [first] = yield* topology.changes.pipe(Stream.take(1), Stream.runCollect)
      assert.deepStrictEqual(
        first?.nodes.map((node) => node.state),
        ["up"]
      )
    })
  )

  it.effect("reports schema changes as events", () =>
    Effect.gen(function* () {
      const topology = yield* Topology.Topology
      const client = yield* Session.CassandraClient
      const baseline = driverListeners(client)
      const fiber = yield* topology.events.pipe(
        Stream.filter((event) => event._tag === "SchemaChanged" && event.target === "table"),
        Stream.take(2),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* Effect.sync(() => driverListeners(client)).pipe(
        Effect.repeat({ schedule: Schedule.spaced("1 millis"), until: (count) => count > baseline })
      )
      yield* Query.cql`CREATE TABLE watched (id int PRIMARY KEY)`
      yield* Query.cql`DROP TABLE watched`
      const events = yield* Fiber.join(fiber)
      assert.deepStrictEqual(
        events.map((event) => (event._tag === "SchemaChanged" ? [event.change, event.keyspace, event.name] : [])),
        [
          ["created", setup.keyspace, "watched"],
          ["dropped", setup.keyspace, "watched"]
        ]
      )
    })
  )

  it.effect("removes every driver listener when a subscription ends, over a thousand cycles", () =>
    Effect.gen(function* () {
      const topology = yield* Topology.Topology
      const client = yield* Session.CassandraClient
      const baseline = driverListeners(client)
      for (let cycle = 0; cycle < 1000; cycle++) {
        const subscription = cycle % 2 === 0 ? Stream.runDrain(topology.events) : Stream.runDrain(topology.changes)
        const fiber = yield* Effect.forkChild(subscription)
        yield* Effect.sync(() => driverListeners(client)).pipe(
          Effect.repeat({ schedule: Schedule.spaced("1 millis"), until: (count) => count > baseline })
        )
        yield* Fiber.interrupt(fiber)
      }
      assert.strictEqual(driverListeners(client), baseline)
    })
  )
})
