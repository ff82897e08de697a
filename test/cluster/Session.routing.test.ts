/**
 * Token-aware routing on a real 3-node cluster: the driver's metadata behind a session must know each keyspace's
 * replication, so that every key maps to as many replicas as the replication factor says (and the driver can choose
 * among them), for SimpleStrategy and NetworkTopologyStrategy and after the replication changes. A frozen node
 * (SIGSTOP) must cost an idempotent read one attempt, not the request.
 */
import { assert, describe, it } from "@effect/vitest"
import type * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Query from "effect-cassandra/Query"
import * as Session from "effect-cassandra/Session"
import * as LocalCassandra from "../../tools/cassandra/LocalCassandra.ts"

const { cql } = Query

/** The routing key of an `int` partition key: its 4 bytes, big-endian. */
const routingKeyOf = (key: number) => {
  const buffer = Buffer.alloc(4)
  buffer.writeInt32BE(key)
  return buffer
}

const keys = Array.from({ length: 32 }, (_, key) => key)

/** How many distinct replicas each key has, as the driver's own token map says. */
const replicaCounts = (client: Cassandra.Client, keyspace: string) =>
  keys.map((key) => new Set(client.getReplicas(keyspace, routingKeyOf(key)).map((host) => host.address)).size)

/** Waits until the driver's metadata has caught up with a keyspace change, then returns the replicas per key. */
const replicasOnceKnown = (client: Cassandra.Client, keyspace: string, replicationFactor: number) =>
  Effect.sync(() => replicaCounts(client, keyspace)).pipe(
    Effect.repeat({
      schedule: Schedule.spaced("200 millis"),
      until: (counts) => counts.every((count) => count === replicationFactor)
    }),
    Effect.timeoutOption("30 seconds"),
    Effect.map(() => replicaCounts(client, keyspace))
  )

describe("token-aware routing on a real cluster", () => {
  it.live(
    "maps every key to as many replicas as the keyspace's replication factor, and retries a frozen node elsewhere",
    () =>
      Effect.gen(function* () {
        const cluster = yield* LocalCassandra.start({ nodes: 3, firstAddress: 61, name: "routing" })
        const session = yield* Session.make({
          contactPoints: cluster.contactPoints,
          localDataCenter: cluster.localDataCenter,
          attemptTimeout: "2 seconds",
          requestTimeout: "10 seconds"
        })
        const client = session.client
        const run = <A, E>(effect: Effect.Effect<A, E, Session.Session>) =>
          Effect.provideService(effect, Session.Session, session)
        const ddl = (query: string) => session.execute({ query, params: [], options: {} })

        const replication = [
          ["routing_simple2", "{'class': 'SimpleStrategy', 'replication_factor': 2}", 2],
          ["routing_simple3", "{'class': 'SimpleStrategy', 'replication_factor': 3}", 3],
          ["routing_nts3", "{'class': 'NetworkTopologyStrategy', 'datacenter1': 3}", 3]
        ] as const
        for (const [keyspace, settings, replicationFactor] of replication) {
          yield* ddl(`CREATE KEYSPACE ${keyspace} WITH replication = ${settings}`)
          const counts = yield* replicasOnceKnown(client, keyspace, replicationFactor)
          assert.deepStrictEqual(
            counts,
            keys.map(() => replicationFactor),
            keyspace
          )
          assert.isString(client.metadata.keyspaces[keyspace]?.strategy, keyspace)
        }

        yield* ddl(
          "ALTER KEYSPACE routing_simple2 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        assert.deepStrictEqual(
          yield* replicasOnceKnown(client, "routing_simple2", 1),
          keys.map(() => 1),
          "after ALTER KEYSPACE"
        )
        yield* ddl(
          "ALTER KEYSPACE routing_nts3 WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 2}"
        )
        assert.deepStrictEqual(
          yield* replicasOnceKnown(client, "routing_nts3", 2),
          keys.map(() => 2),
          "after ALTER KEYSPACE"
        )

        // A frozen node keeps its sockets open: only the per-attempt timeout moves an idempotent read elsewhere. The
        // other coordinators stop waiting for the frozen replica after the table's speculative retry delay, fixed
        // here: by default it follows read latencies the fresh table has not measured yet.
        yield* ddl("CREATE TABLE routing_simple3.kv (k int PRIMARY KEY, v text) WITH speculative_retry = '50ms'")
        yield* run(
          Effect.forEach(keys, (key) => cql`INSERT INTO routing_simple3.kv (k, v) VALUES (${key}, ${`v${key}`})`, {
            discard: true
          })
        )
        const frozen = (yield* cluster.nodes).find((node) => node.index === 2)?.pid
        assert.isDefined(frozen)
        yield* Effect.acquireUseRelease(
          Effect.sync(() => process.kill(frozen as number, "SIGSTOP")),
          () =>
            run(
              Effect.forEach(
                keys,
                (key) =>
                  cql`SELECT v FROM routing_simple3.kv WHERE k = ${key}`.withOptions({
                    consistency: "LOCAL_QUORUM",
                    idempotent: true
                  }),
                { concurrency: 8 }
              )
            ).pipe(
              Effect.map((results) =>
                assert.deepStrictEqual(
                  results.map((rows) => rows.length),
                  keys.map(() => 1)
                )
              )
            ),
          () => Effect.sync(() => process.kill(frozen as number, "SIGCONT"))
        )
      }).pipe(Effect.scoped)
  )
})
