/**
 * Connects, prints the cluster's nodes, then prints every topology event (nodes added, removed, up, down; schema
 * changes) as it happens, until interrupted with Ctrl-C:
 *
 *   CASSANDRA_CONTACT_POINTS=127.0.0.1 node --conditions=effect-cassandra/source examples/topology-watch.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer, Stream } from "effect"
import { CassandraLayer, Topology } from "effect-cassandra"

const describe = (event: Topology.TopologyEvent) =>
  event._tag === "SchemaChanged"
    ? `${event.change} ${event.target} ${event.keyspace}${event.name === undefined ? "" : `.${event.name}`}`
    : `${event._tag} ${event.node.address} (${event.node.dataCenter}/${event.node.rack}) now ${event.node.state}`

const program = Effect.gen(function* () {
  const topology = yield* Topology.Topology
  const nodes = yield* topology.nodes
  console.log("address            state  since                     data center  rack   version  host id")
  for (const node of nodes) {
    console.log(
      [
        node.address.padEnd(18),
        node.state.padEnd(6),
        node.since.toISOString().padEnd(25),
        node.dataCenter.padEnd(12),
        node.rack.padEnd(6),
        node.cassandraVersion.padEnd(8),
        node.hostId ?? "?"
      ].join(" ")
    )
  }
  console.log("watching topology events (Ctrl-C to stop)")
  yield* topology.events.pipe(
    Stream.runForEach((event) => Effect.sync(() => console.log(`${event.at.toISOString()} ${describe(event)}`)))
  )
})

const CassandraLive = CassandraLayer.layerConfig({
  contactPoints: Config.String("CASSANDRA_CONTACT_POINTS").pipe(Config.map((points) => points.split(","))),
  localDataCenter: Config.String("CASSANDRA_LOCAL_DC").pipe(Config.withDefault("datacenter1"))
})

program.pipe(Effect.provide(Layer.orDie(CassandraLive)), NodeRuntime.runMain)
