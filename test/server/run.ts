/**
 * The server matrix: runs the integration suites about the server (session, typed queries, CQL types, errors, paging,
 * LWT, observability) and a topology scenario against another Cassandra release, started with the local manager:
 *
 *   npm run test:servers [-- --version 6.0-alpha2]     (default: the Cassandra 6.0 pre-release below)
 *
 * One node on 127.0.0.109 serves the integration suites; then a two-node cluster on 127.0.0.107-108 (replication
 * factor 2, requests at LOCAL_ONE: the smallest cluster where a stopped node must not fail a request) serves the
 * scenario: node 2 is stopped and started under client traffic, with no failed request, no lost acknowledged write,
 * and its NodeDown and NodeUp events seen. Every node is stopped at the end. Prints the time each part took; exits with
 * status 1 when any failed.
 */
import { spawn } from "node:child_process"
import * as Path from "node:path"
import { parseArgs } from "node:util"
import { Effect, Fiber, Layer, Schedule, Stream } from "effect"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Query from "effect-cassandra/Query"
import * as Topology from "effect-cassandra/Topology"
import * as LocalCassandra from "../../tools/cassandra/LocalCassandra.ts"
import { runMain } from "../support/runMain.ts"
import { lostWrites, newTraffic, startClients, stopClients } from "../support/traffic.ts"

const root = Path.resolve(import.meta.dirname, "..", "..")
/** The newest Cassandra 6.0 release on Maven Central (a pre-release until 6.0 ships). */
const defaultVersion = "6.0-alpha2"
const integrationAddress = 109
const topologyFirstAddress = 107

/** The integration suites that exercise the server (not the packaging, examples or README, which 5.0 covers). */
const integrationFiles = [
  "test/integration/Session.test.ts",
  "test/integration/Session.requestPath.test.ts",
  "test/integration/Query.test.ts",
  "test/integration/Query.attacks.test.ts",
  "test/integration/CqlType.roundtrip.test.ts",
  "test/integration/CqlOrder.test.ts",
  "test/integration/CassandraError.test.ts",
  "test/integration/CassandraError.facts.test.ts",
  "test/integration/BatchJob.test.ts",
  "test/integration/Metrics.test.ts",
  "test/integration/Logging.test.ts",
  "test/integration/Session.spans.test.ts",
  "test/integration/Topology.test.ts"
]

const { cql } = Query

const timed = <A, E, R>(what: string, effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const started = performance.now()
    return effect.pipe(
      Effect.ensuring(
        Effect.sync(() =>
          console.log(`server matrix: ${what} took ${((performance.now() - started) / 1000).toFixed(1)} s`)
        )
      )
    )
  })

/** Runs the integration suites with vitest against `contactPoint`, its output shown as it comes. */
const integrationSuites = (contactPoint: string) =>
  Effect.callback<void, Error>((resume) => {
    const child = spawn("npx", ["vitest", "run", "--project", "integration", ...integrationFiles], {
      cwd: root,
      stdio: "inherit",
      env: { ...process.env, CASSANDRA_CONTACT_POINTS: contactPoint }
    })
    child.once("close", (code) =>
      resume(code === 0 ? Effect.void : Effect.fail(new Error(`the integration suites failed (exit code ${code})`)))
    )
    return Effect.sync(() => child.kill("SIGTERM"))
  })

/** Node 2 stopped and started under client traffic: no failure, no lost write, its NodeDown and NodeUp seen. */
const stopStartUnderTraffic = (cluster: LocalCassandra.Cluster) =>
  Effect.gen(function* () {
    const connection = { contactPoints: cluster.contactPoints, localDataCenter: cluster.localDataCenter }
    yield* Effect.gen(function* () {
      yield* cql`CREATE KEYSPACE server_matrix WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}`
      yield* cql`CREATE TABLE server_matrix.kv (k int PRIMARY KEY, v text)`
    }).pipe(Effect.provide(CassandraLayer.layer(connection)))

    yield* Effect.gen(function* () {
      const topology = yield* Topology.Topology
      yield* topology.awaitNodesUp(2, "60 seconds")
      const stopped = `${cluster.contactPoints[1]}:`
      const seen: Array<string> = []
      const watcher = yield* topology.events.pipe(
        Stream.runForEach((event) =>
          Effect.sync(
            () => event._tag !== "SchemaChanged" && event.node.address.startsWith(stopped) && seen.push(event._tag)
          )
        ),
        Effect.forkScoped
      )
      const traffic = newTraffic()
      const clients = yield* startClients(traffic, 4)
      yield* cluster.stopNode(2)
      yield* cluster.startNode(2)
      yield* topology.awaitNodesUp(2, "120 seconds")
      yield* Effect.sync(() => seen.includes("NodeDown") && seen.includes("NodeUp")).pipe(
        Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (both) => both }),
        Effect.timeout("60 seconds"),
        Effect.ignore
      )
      yield* stopClients(clients)
      yield* Fiber.interrupt(watcher)
      const lost = yield* lostWrites(traffic.acknowledged)
      console.log(
        `topology stop-start (Cassandra ${cluster.version}): requests=${traffic.requests} failed=${traffic.failed} lost=${lost} events=${seen.join(",")}`
      )
      if (
        traffic.requests === 0 ||
        traffic.failed > 0 ||
        lost > 0 ||
        !seen.includes("NodeDown") ||
        !seen.includes("NodeUp")
      ) {
        return yield* Effect.fail(
          new Error(`the topology scenario failed; first failures: ${traffic.failures.join(" | ")}`)
        )
      }
    }).pipe(
      // Replication factor 2 at LOCAL_ONE: every request must reach the replica that is up, or fail.
      Effect.provide(
        Layer.fresh(CassandraLayer.layer({ ...connection, keyspace: "server_matrix", consistency: "LOCAL_ONE" }))
      ),
      Effect.scoped
    )
  })

/**
 * Cassandra 6.0's new write errors, CHECK constraint violations, as the library types them: an Invalid reason, not
 * retryable, whose message keeps the column's rule but not the refused value.
 */
const constraintViolations = (contactPoint: string) =>
  Effect.gen(function* () {
    yield* cql`CREATE KEYSPACE server_matrix_errors WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`
    yield* cql`CREATE TABLE server_matrix_errors.checked (k int PRIMARY KEY, v int CHECK v > 0, j text CHECK JSON())`
    const refused = [
      yield* Effect.flip(cql`INSERT INTO server_matrix_errors.checked (k, v) VALUES (${1}, ${-424242})`),
      yield* Effect.flip(cql`INSERT INTO server_matrix_errors.checked (k, j) VALUES (${1}, ${"{424242"})`)
    ]
    yield* cql`DROP KEYSPACE server_matrix_errors`
    for (const error of refused) {
      console.log(`constraint violation: reason=${error.reason._tag} retryable=${error.isRetryable} ${error.message}`)
      if (error.reason._tag !== "Invalid" || error.isRetryable || error.message.includes("424242")) {
        return yield* Effect.fail(new Error(`a constraint violation is not an Invalid reason without its value`))
      }
    }
  }).pipe(Effect.provide(CassandraLayer.layer({ contactPoints: [contactPoint], localDataCenter: "datacenter1" })))

const program = Effect.gen(function* () {
  const { values } = parseArgs({ options: { version: { type: "string", default: defaultVersion } } })
  const version = values.version
  yield* timed(
    `Cassandra ${version}: integration suites`,
    Effect.scoped(
      Effect.gen(function* () {
        const node = yield* LocalCassandra.start({
          name: "server-matrix",
          nodes: 1,
          firstAddress: integrationAddress,
          version
        })
        yield* integrationSuites(node.contactPoints[0]!)
        // CHECK constraints came with Cassandra 6.0: an earlier release refuses the table.
        if (Number.parseInt(node.version, 10) >= 6) yield* constraintViolations(node.contactPoints[0]!)
      })
    )
  )
  yield* timed(
    `Cassandra ${version}: topology stop-start under traffic`,
    Effect.scoped(
      Effect.gen(function* () {
        const cluster = yield* LocalCassandra.start({
          name: "server-matrix-topology",
          nodes: 2,
          firstAddress: topologyFirstAddress,
          version
        })
        yield* stopStartUnderTraffic(cluster)
      })
    )
  )
})

await runMain(program)
