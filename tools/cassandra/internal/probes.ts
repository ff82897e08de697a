/**
 * Readiness probes over CQL: whether a node answers, and whether the running nodes see each other as normal ring
 * members.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import * as Cassandra from "cassandra-driver"
import { Duration, Effect, Ref, Schedule } from "effect"
import { failure, gistOf, type LocalCassandraError } from "./errors.ts"
import { cacheDirectory, nativePort } from "./layout.ts"
import { superuser } from "./nodeConfig.ts"
import { withProgress } from "./progress.ts"
import { type ClusterState, isRunning, type NodeRecord, type Runtime } from "./state.ts"

const probeAttemptTimeout = Duration.seconds(15)

const probeInterval = Duration.millis(500)

const probeClientOptions = (runtime: Runtime, state: ClusterState, node: NodeRecord): Cassandra.ClientOptions => {
  const loadBalancing = Cassandra.policies.loadBalancing
  return {
    contactPoints: [node.address],
    localDataCenter: node.dataCenter,
    // Pinned to this one node: a probe must say whether *this* node answers, never fail over to another.
    policies: {
      loadBalancing: new loadBalancing.AllowListPolicy(new loadBalancing.DCAwareRoundRobinPolicy(node.dataCenter), [
        `${node.address}:${nativePort}`
      ])
    },
    socketOptions: { connectTimeout: 5_000, readTimeout: 10_000 },
    isMetadataSyncEnabled: false,
    ...(state.auth
      ? { authProvider: new Cassandra.auth.PlainTextAuthProvider(superuser.username, superuser.password) }
      : {}),
    ...(runtime.tls === undefined
      ? {}
      : {
          sslOptions: {
            ca: [Fs.readFileSync(runtime.tls.caFile)],
            ...(state.tls === "mutual"
              ? { cert: Fs.readFileSync(runtime.tls.clientCertFile), key: Fs.readFileSync(runtime.tls.clientKeyFile) }
              : {})
          }
        })
  }
}

/**
 * Runs `use` with a short-lived client connected to one node; fails with the gist of the driver's message.
 *
 * @since 0.1.0
 * @category probes
 */
export const withNodeClient = <A>(
  runtime: Runtime,
  node: NodeRecord,
  use: (client: Cassandra.Client) => Promise<A>
): Effect.Effect<A, string> =>
  Effect.flatMap(Ref.get(runtime.state), (state) =>
    Effect.acquireUseRelease(
      Effect.sync(() => new Cassandra.Client(probeClientOptions(runtime, state, node))),
      (client) =>
        Effect.tryPromise({
          try: async () => {
            await client.connect()
            return await use(client)
          },
          catch: gistOf
        }).pipe(
          Effect.timeoutOrElse({
            duration: probeAttemptTimeout,
            orElse: () => Effect.fail(`no answer within ${Duration.format(probeAttemptTimeout)}`)
          })
        ),
      (client) => Effect.promise(() => client.shutdown().catch(() => undefined))
    )
  )

/**
 * Whether the node answers a CQL query; fails with the driver's message.
 *
 * @since 0.1.0
 * @category probes
 */
export const answersCql = (runtime: Runtime, node: NodeRecord) =>
  withNodeClient(runtime, node, (client) => client.execute("SELECT release_version FROM system.local"))

/**
 * Retries `attempt` until it succeeds, reporting `waiting` and the last answer every few seconds; after `within` the
 * last attempt's message becomes a Timeout failure saying `what` did not happen.
 */
const retryUntil = <A>(attempt: Effect.Effect<A, string>, within: Duration.Duration, what: string, waiting: string) =>
  Effect.suspend(() => {
    let lastAnswer = "none yet"
    return withProgress(
      attempt.pipe(
        Effect.tapError((message) =>
          Effect.sync(() => {
            lastAnswer = message
          })
        ),
        Effect.retry(Schedule.spaced(probeInterval).pipe(Schedule.upTo({ duration: within })))
      ),
      (elapsed) => `${waiting}: ${elapsed} (last answer: ${lastAnswer})`
    ).pipe(
      Effect.mapError((last) =>
        failure(
          "Timeout",
          `${what} within ${Duration.format(within)} (last answer: ${last}): look at the node logs under ${cacheDirectory}/clusters`
        )
      )
    )
  })

/**
 * Waits until a starting node answers CQL, failing early with its logs if its JVM exits.
 *
 * @since 0.1.0
 * @category probes
 */
export const awaitNodeReady = (runtime: Runtime, node: NodeRecord, exited: Effect.Effect<never, LocalCassandraError>) =>
  Effect.raceFirst(
    retryUntil(
      answersCql(runtime, node),
      runtime.startTimeout,
      `node ${node.index} (${node.address}) did not answer CQL`,
      `waiting for node ${node.index} (${node.address}) to answer CQL`
    ),
    exited
  )

/** One check of `waitUntilUp`: fails with what is still missing. */
const clusterConverged = (runtime: Runtime, count: number | undefined) =>
  Effect.gen(function* () {
    const state = yield* Ref.get(runtime.state)
    const running = state.nodes.filter((node) => !node.decommissioned && isRunning(runtime, node))
    if (count !== undefined && running.length < count) {
      return yield* Effect.fail(`${running.length} of ${count} nodes are running`)
    }
    for (const node of running) {
      const view = yield* withNodeClient(runtime, node, async (client) => {
        const peers = await client.execute("SELECT rpc_address FROM system.peers")
        const gossip = await client.execute("SELECT address, status_with_port, rpc_ready FROM system_views.gossip_info")
        return {
          peers: new Set(peers.rows.map((row) => String(row.rpc_address))),
          // A peer that shut down gossips "shutdown"; one that is joining or leaving, BOOT or LEAVING.
          normal: new Set(
            gossip.rows
              .filter((row) => String(row.status_with_port).startsWith("NORMAL") && row.rpc_ready === "true")
              .map((row) => String(row.address))
          )
        }
      })
      const missing = running.filter(
        (other) => other !== node && !(view.peers.has(other.address) && view.normal.has(other.address))
      )
      if (missing.length > 0) {
        return yield* Effect.fail(
          `node ${node.index} does not see ${missing.map((other) => other.address).join(", ")} as a normal peer yet`
        )
      }
    }
  })

/**
 * Waits until at least `count` nodes run and every running node sees the others as normal ring members.
 *
 * @since 0.1.0
 * @category probes
 */
export const waitUntilUp = (runtime: Runtime, count?: number) =>
  retryUntil(
    clusterConverged(runtime, count),
    runtime.startTimeout,
    "the running nodes did not see each other",
    "waiting for the running nodes to see each other"
  )
