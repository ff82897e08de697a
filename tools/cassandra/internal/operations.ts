/**
 * The operations that change a running cluster (start, stop, add, decommission nodes) and the {@link Cluster} that
 * offers them.
 *
 * @since 0.1.0
 */
import { Effect, Redacted, Ref } from "effect"
import type { Cluster, NodeInfo, NodeStatus } from "../LocalCassandra.ts"
import { failure } from "./errors.ts"
import { cutOffNode, reconnectRecordedNode } from "./firewall.ts"
import { addressOf, jmxPortOf, rack } from "./layout.ts"
import { superuser, writeNodeFiles } from "./nodeConfig.ts"
import { pauseNode, resumeNode, spawnNode, stopRecordedNode } from "./nodeProcess.ts"
import { ringStates, runNodetool } from "./nodetool.ts"
import { answersCql, awaitNodeReady, waitUntilUp, withNodeClient } from "./probes.ts"
import { ensurePortsFree, isStopped } from "./processes.ts"
import { withProgress } from "./progress.ts"
import {
  type ClusterState,
  isRunning,
  type NodeRecord,
  nodeRecord,
  type Runtime,
  saveState,
  updateNode
} from "./state.ts"

/**
 * Starts a node's JVM and waits until it answers CQL (or fails with its logs if it exits first); `firstOfCluster`
 * marks the first node of a fresh start (see `nodeJvmArguments`).
 *
 * @since 0.1.0
 * @category operations
 */
export const launchNode = Effect.fnUntraced(function* (runtime: Runtime, node: NodeRecord, firstOfCluster = false) {
  yield* ensurePortsFree(node)
  yield* Effect.logInfo(`starting node ${node.index} (${node.address})`)
  const { exited } = yield* spawnNode(runtime, node, firstOfCluster)
  yield* saveState(runtime)
  yield* awaitNodeReady(runtime, node, exited)
  yield* Effect.logInfo(`node ${node.index} (${node.address}) answers CQL`)
})

/**
 * Stops every node of the cluster at once: gracefully (SIGTERM, then SIGKILL after the grace period), or killed.
 *
 * @since 0.1.0
 * @category operations
 */
export const stopAll = (runtime: Runtime, graceful: boolean) =>
  Effect.gen(function* () {
    const state = yield* Ref.get(runtime.state)
    yield* Effect.forEach(state.nodes, (node) => stopRecordedNode(runtime, node, graceful), {
      concurrency: "unbounded",
      discard: true
    })
  })

const nodeInfoOf = (runtime: Runtime, node: NodeRecord): NodeInfo => {
  const running = isRunning(runtime, node)
  return {
    index: node.index,
    address: node.address,
    dataCenter: node.dataCenter,
    rack: node.rack,
    jmxPort: node.jmxPort,
    pid: running && node.pid !== null ? node.pid : undefined,
    running,
    paused: running && node.pid !== null && isStopped(node.pid),
    decommissioned: node.decommissioned
  }
}

const status = (runtime: Runtime) =>
  Effect.gen(function* () {
    const state = yield* Ref.get(runtime.state)
    const nodes = yield* Effect.forEach(
      state.nodes,
      (node) => {
        const info = nodeInfoOf(runtime, node)
        return (info.running ? answersCql(runtime, node) : Effect.fail("not running")).pipe(
          Effect.match({ onFailure: () => false, onSuccess: () => true }),
          Effect.map((cql) => ({ node, info, cql }))
        )
      },
      { concurrency: "unbounded" }
    )
    const observer = nodes.find((entry) => entry.cql)
    const ring =
      observer === undefined
        ? new Map<string, string>()
        : yield* ringStates(runtime, observer.node).pipe(Effect.orElseSucceed(() => new Map<string, string>()))
    return nodes.map(({ node, info, cql }): NodeStatus => ({ ...info, cql, ring: ring.get(node.address) }))
  })

/** The midpoint of the widest gap between consecutive tokens of the Murmur3 ring (which wraps around). */
const tokenInLargestGap = (tokens: ReadonlyArray<bigint>): bigint => {
  const ringSize = 2n ** 64n
  const minimum = -(2n ** 63n)
  const sorted = [...tokens].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const gaps = sorted.map((token, position) => ({
    start: token,
    width: (sorted[position + 1] ?? sorted[0]! + ringSize) - token
  }))
  const widest = gaps.reduce((best, gap) => (gap.width > best.width ? gap : best))
  const middle = widest.start + widest.width / 2n
  return ((((middle - minimum) % ringSize) + ringSize) % ringSize) + minimum
}

/**
 * `count` tokens spread evenly over the Murmur3 ring.
 *
 * @since 0.1.0
 * @category utils
 */
export const balancedTokens = (count: number): ReadonlyArray<bigint> =>
  Array.from({ length: count }, (_, position) => -(2n ** 63n) + (2n ** 64n * BigInt(position)) / BigInt(count))

const startNode = Effect.fnUntraced(function* (runtime: Runtime, index: number) {
  const node = yield* nodeRecord(runtime, index)
  if (node.decommissioned) {
    return yield* failure("InvalidOption", `node ${index} was decommissioned: add a new node instead (add-node)`)
  }
  if (isRunning(runtime, node)) {
    return yield* failure("InvalidOption", `node ${index} is already running: stop it first (stop-node ${index})`)
  }
  yield* launchNode(runtime, node)
  yield* waitUntilUp(runtime)
})

const startStopped = Effect.fnUntraced(function* (runtime: Runtime) {
  const state = yield* Ref.get(runtime.state)
  const stopped = state.nodes.filter((node) => !node.decommissioned && !isRunning(runtime, node))
  yield* Effect.forEach(stopped, (node) => launchNode(runtime, node), { concurrency: "unbounded", discard: true })
  yield* waitUntilUp(runtime)
})

const addNode = Effect.fnUntraced(function* (runtime: Runtime) {
  const state = yield* Ref.get(runtime.state)
  const index = state.nodes.length + 1
  const octet = state.firstAddress + index - 1
  if (octet > 254) {
    return yield* failure("InvalidOption", `node ${index} would need 127.0.0.${octet}: start the cluster lower`)
  }
  const token = tokenInLargestGap(state.nodes.filter((node) => !node.decommissioned).map((node) => BigInt(node.token)))
  const node: NodeRecord = {
    index,
    address: addressOf(octet),
    dataCenter: state.nodes[0]!.dataCenter,
    rack,
    jmxPort: jmxPortOf(octet),
    token: token.toString(),
    founding: false,
    pid: null,
    decommissioned: false
  }
  yield* ensurePortsFree(node)
  yield* Ref.update(runtime.state, (current) => ({ ...current, nodes: [...current.nodes, node] }))
  yield* writeNodeFiles(runtime, node)
  yield* launchNode(runtime, node)
  yield* waitUntilUp(runtime)
  return nodeInfoOf(runtime, yield* nodeRecord(runtime, index))
})

const decommissionNode = Effect.fnUntraced(function* (runtime: Runtime, index: number) {
  const node = yield* nodeRecord(runtime, index)
  if (!isRunning(runtime, node)) {
    return yield* failure("InvalidOption", `node ${index} is not running: start it before decommissioning it`)
  }
  yield* Effect.logInfo(`decommissioning node ${index} (${node.address})`)
  yield* withProgress(
    runNodetool(runtime, node, ["decommission"]).pipe(
      Effect.catchIf(
        // Cassandra refuses when the remaining nodes cannot hold every replica and asks for a forced decommission.
        (error) => /forceful|--force/i.test(error.message),
        () => runNodetool(runtime, node, ["decommission", "--force"])
      )
    ),
    (elapsed) => `decommissioning node ${index} (${node.address}), streaming its data away: ${elapsed}`
  )
  yield* stopRecordedNode(runtime, node, true)
  yield* updateNode(runtime, index, { decommissioned: true })
  yield* saveState(runtime)
})

/**
 * Gives system_auth one replica per node, so that logins keep working while any single node is down.
 *
 * @since 0.1.0
 * @category operations
 */
export const replicateAuth = Effect.fnUntraced(function* (runtime: Runtime) {
  const state = yield* Ref.get(runtime.state)
  const first = state.nodes[0]!
  yield* withNodeClient(runtime, first, (client) =>
    client.execute(
      `ALTER KEYSPACE system_auth WITH replication = {'class': 'SimpleStrategy', 'replication_factor': ${state.nodes.length}}`
    )
  ).pipe(
    Effect.mapError((message) =>
      failure("NodeFailed", `could not replicate system_auth: ${message}: look at ${runtime.directory}`)
    )
  )
  yield* withProgress(
    runNodetool(runtime, first, ["repair", "-full", "system_auth"]),
    (elapsed) => `repairing system_auth on node ${first.index}: ${elapsed}`
  )
})

/**
 * The {@link Cluster} over a runtime: its operations that change nodes run one at a time.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCluster = (runtime: Runtime, state: ClusterState): Cluster => {
  const serialized = <A, E>(effect: Effect.Effect<A, E>) => runtime.lock.withPermits(1)(effect)
  const tls = runtime.tls
  const dataCenters = [...new Set(state.nodes.map((node) => node.dataCenter))]
  return {
    name: state.name,
    directory: runtime.directory,
    version: state.version,
    localDataCenter: dataCenters[0]!,
    dataCenters,
    contactPoints: state.nodes.filter((node) => node.founding).map((node) => node.address),
    ...(state.auth
      ? { credentials: { username: superuser.username, password: Redacted.make(superuser.password) } }
      : {}),
    ...(tls === undefined
      ? {}
      : {
          tls:
            state.tls === "mutual"
              ? { caFile: tls.caFile, clientCertFile: tls.clientCertFile, clientKeyFile: tls.clientKeyFile }
              : { caFile: tls.caFile }
        }),
    nodes: Effect.map(Ref.get(runtime.state), (current) => current.nodes.map((node) => nodeInfoOf(runtime, node))),
    stopNode: (index) =>
      serialized(Effect.flatMap(nodeRecord(runtime, index), (node) => stopRecordedNode(runtime, node, true))),
    killNode: (index) =>
      serialized(Effect.flatMap(nodeRecord(runtime, index), (node) => stopRecordedNode(runtime, node, false))),
    pauseNode: (index) => serialized(pauseNode(runtime, index)),
    resumeNode: (index) => serialized(resumeNode(runtime, index)),
    cutOffNode: (index) => serialized(cutOffNode(runtime, index)),
    reconnectNode: (index) =>
      serialized(Effect.flatMap(nodeRecord(runtime, index), (node) => reconnectRecordedNode(runtime, node))),
    startNode: (index) => serialized(startNode(runtime, index)),
    startStopped: serialized(startStopped(runtime)),
    addNode: () => serialized(addNode(runtime)),
    decommissionNode: (index) => serialized(decommissionNode(runtime, index)),
    nodetool: (index, args) => Effect.flatMap(nodeRecord(runtime, index), (node) => runNodetool(runtime, node, args)),
    status: status(runtime),
    waitUntilUp: (count) => waitUntilUp(runtime, count),
    stop: serialized(stopAll(runtime, true))
  }
}
