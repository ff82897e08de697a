/**
 * Runs real Apache Cassandra nodes (5.0 unless another release is asked for) on this machine, without Docker, for the
 * test suites and for development.
 *
 * The jars come from Maven Central (`cassandra-all` and its dependencies, see `pom.xml`); each node is one Java 17 JVM
 * listening on its own loopback address 127.0.0.k (CQL 9042, storage 7000, JMX 7000 + 100·k on 127.0.0.1), with its
 * files under `.cache/cassandra/clusters/<name>/node<i>`. A started cluster is a scoped resource: closing the scope
 * kills every node it started. The state is also written to `cluster.json`, so that a later process (the CLI) can
 * find and operate the same nodes with {@link attach}.
 *
 * This module is the manager's interface; its parts are under `internal/`: processes, Java, jars, TLS material, node
 * configuration, readiness probes and the cluster operations.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import { Duration, Effect, type Redacted, Schema, type Scope } from "effect"
import { failure, firstLineOf, type LocalCassandraError } from "./internal/errors.ts"
import { ensureJars, readJars, versionPattern } from "./internal/jars.ts"
import { resolveJava } from "./internal/java.ts"
import { addressOf, clusterDirectory, dataCenterNames, jmxPortOf, rack, stateFileOf } from "./internal/layout.ts"
import { writeNodeFiles } from "./internal/nodeConfig.ts"
import { killLeftovers } from "./internal/nodeProcess.ts"
import { balancedTokens, launchNode, makeCluster, replicateAuth, stopAll } from "./internal/operations.ts"
import { waitUntilUp } from "./internal/probes.ts"
import { ensurePortsFree } from "./internal/processes.ts"
import { type ClusterState, ClusterStateJson, makeRuntime, type NodeRecord, saveState } from "./internal/state.ts"
import { generateTls } from "./internal/tls.ts"

export { LocalCassandraError, LocalCassandraErrorReason } from "./internal/errors.ts"
export { clusterDirectory } from "./internal/layout.ts"

/**
 * How to start a local cluster.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClusterOptions {
  /** Number of nodes in each data center, started one after another; default 1. */
  readonly nodes?: number
  /**
   * Number of data centers, named dc1, dc2, …, each of `nodes` nodes in rack1 (GossipingPropertyFileSnitch), the
   * nodes of dc1 first. Without it the cluster has one data center, named datacenter1.
   */
  readonly dataCenters?: number
  /** Last octet of node 1's address; node i listens on 127.0.0.(firstAddress + i - 1). Default 1. */
  readonly firstAddress?: number
  /** The cluster's directory is `.cache/cassandra/clusters/<name>`; default "local". */
  readonly name?: string
  /**
   * Require TLS from clients (no plaintext); with `clientCertificate`, clients must also present a certificate.
   * `serverCertificate` makes the node present a flawed certificate, to see clients refuse it: an expired one, or
   * one that names only the host `elsewhere.invalid`. Default "valid".
   */
  readonly tls?:
    | false
    | { readonly clientCertificate: boolean; readonly serverCertificate?: "valid" | "expired" | "otherHost" }
  /** Require a password login (PasswordAuthenticator, CassandraAuthorizer); the superuser is cassandra/cassandra. */
  readonly auth?: boolean
  /**
   * The release of `org.apache.cassandra:cassandra-all` on Maven Central to run, e.g. "5.0.4" or "6.0-alpha2";
   * default the newest 5.0.x. Each version's jars are fetched once into their own directory.
   */
  readonly version?: string
  /** Heap of each node in MiB; default 512. */
  readonly heapMb?: number
  /** How long one node may take to answer CQL after its JVM starts; default 180 seconds. */
  readonly startTimeout?: Duration.Input
}

/**
 * One node of a local cluster, as recorded by the manager.
 *
 * @since 0.1.0
 * @category models
 */
export interface NodeInfo {
  /** 1-based position in the cluster. */
  readonly index: number
  readonly address: string
  readonly dataCenter: string
  readonly rack: string
  /** The node's JMX port on 127.0.0.1, used by nodetool. */
  readonly jmxPort: number
  /** The JVM's process id while it runs. */
  readonly pid: number | undefined
  /** Whether the node's JVM process is alive. */
  readonly running: boolean
  /** Whether the node's JVM is frozen by {@link Cluster.pauseNode} (stopped by SIGSTOP, sockets open). */
  readonly paused: boolean
  /** Whether the node left the ring through `decommissionNode`. */
  readonly decommissioned: boolean
}

/**
 * The observed health of one node.
 *
 * @since 0.1.0
 * @category models
 */
export interface NodeStatus extends NodeInfo {
  /** Whether the node answers a CQL query. */
  readonly cql: boolean
  /** The node's state in `nodetool status` of a running node ("UN", "DN", "UJ", "UL"…); undefined when none could say. */
  readonly ring: string | undefined
}

/**
 * A running local cluster and the operations that change it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Cluster {
  readonly name: string
  /** The cluster's directory (node data, logs, TLS material, `cluster.json`). */
  readonly directory: string
  /** The Cassandra release, e.g. "5.0.9". */
  readonly version: string
  /** The first data center: the one the contact points are in first. */
  readonly localDataCenter: string
  /** Every data center, in the order of its nodes. */
  readonly dataCenters: ReadonlyArray<string>
  /** The addresses of the nodes the cluster was started with. */
  readonly contactPoints: ReadonlyArray<string>
  /** The superuser login, when the cluster requires one. */
  readonly credentials?: { readonly username: string; readonly password: Redacted.Redacted }
  /** PEM files for clients, when the cluster requires TLS. */
  readonly tls?: { readonly caFile: string; readonly clientCertFile?: string; readonly clientKeyFile?: string }
  readonly nodes: Effect.Effect<ReadonlyArray<NodeInfo>>
  /** Stops a node gracefully (SIGTERM), then forcibly (SIGKILL) if it does not exit in time. */
  readonly stopNode: (index: number) => Effect.Effect<void, LocalCassandraError>
  /** Kills a node at once (SIGKILL), as a crash would. */
  readonly killNode: (index: number) => Effect.Effect<void, LocalCassandraError>
  /**
   * Freezes a node (SIGSTOP), as a long GC pause or a frozen VM would: its sockets stay open and its kernel still
   * accepts connections, but nothing answers until {@link resumeNode}.
   */
  readonly pauseNode: (index: number) => Effect.Effect<void, LocalCassandraError>
  /** Lets a frozen node run again (SIGCONT). */
  readonly resumeNode: (index: number) => Effect.Effect<void, LocalCassandraError>
  /**
   * Cuts a node off the network, as a partition would: firewall rules drop every packet to and from its address,
   * clients' and other nodes' alike, without closing any connection. Needs root and iptables; fails with the reason
   * FirewallUnavailable, saying why, where the machine does not allow it.
   */
  readonly cutOffNode: (index: number) => Effect.Effect<void, LocalCassandraError>
  /** Removes the rules of {@link cutOffNode}, so that the node's packets flow again. */
  readonly reconnectNode: (index: number) => Effect.Effect<void, LocalCassandraError>
  /** Starts a stopped or killed node again and waits until it answers CQL and the others see it. */
  readonly startNode: (index: number) => Effect.Effect<void, LocalCassandraError>
  /**
   * Starts every stopped or killed node (not the decommissioned ones) at once, as after a whole-cluster outage, and
   * waits until they all answer CQL and see each other.
   */
  readonly startStopped: Effect.Effect<void, LocalCassandraError>
  /** Bootstraps one more node, in the first data center (token in the ring's largest gap), and waits until it is up. */
  readonly addNode: () => Effect.Effect<NodeInfo, LocalCassandraError>
  /** Streams a node's data away (`nodetool decommission`, forced only when the replication needs it) and stops it. */
  readonly decommissionNode: (index: number) => Effect.Effect<void, LocalCassandraError>
  /** Runs nodetool against a node and returns its output. */
  readonly nodetool: (index: number, args: ReadonlyArray<string>) => Effect.Effect<string, LocalCassandraError>
  readonly status: Effect.Effect<ReadonlyArray<NodeStatus>, LocalCassandraError>
  /**
   * Waits until at least `count` nodes (default: every node whose process runs) are running, and each running node
   * answers CQL and sees every other running node as a normal ring member.
   */
  readonly waitUntilUp: (count?: number) => Effect.Effect<void, LocalCassandraError>
  /** Stops every node gracefully (SIGTERM: each drains and announces its shutdown), killing one that ignores it. */
  readonly stop: Effect.Effect<void, LocalCassandraError>
}

const isPositiveInteger = (value: number) => Number.isInteger(value) && value > 0

const validateName = (name: string) =>
  /^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$/.test(name)
    ? Effect.succeed(name)
    : Effect.fail(
        failure("InvalidOption", `invalid cluster name "${name}": use letters, digits, "-" and "_" (at most 48)`)
      )

const decodeStartTimeout = (input: Duration.Input = Duration.seconds(180)) => {
  const duration = Duration.fromInput(input)
  return duration._tag === "Some" && Duration.isPositive(duration.value)
    ? Effect.succeed(duration.value)
    : Effect.fail(failure("InvalidOption", 'invalid start timeout: use a positive duration such as "3 minutes"'))
}

const validateOptions = Effect.fnUntraced(function* (options: ClusterOptions) {
  const nodesPerDataCenter = options.nodes ?? 1
  const firstAddress = options.firstAddress ?? 1
  const heapMb = options.heapMb ?? 512
  const name = yield* validateName(options.name ?? "local")
  if (!isPositiveInteger(nodesPerDataCenter)) {
    return yield* failure("InvalidOption", `invalid node count ${nodesPerDataCenter}: use a whole number of at least 1`)
  }
  if (options.dataCenters !== undefined && !isPositiveInteger(options.dataCenters)) {
    return yield* failure(
      "InvalidOption",
      `invalid data center count ${options.dataCenters}: use a whole number of at least 1`
    )
  }
  // The address range is checked before the data centers are named: a huge count must not allocate their names.
  const nodes = nodesPerDataCenter * (options.dataCenters ?? 1)
  if (!isPositiveInteger(firstAddress) || firstAddress + nodes - 1 > 254) {
    return yield* failure(
      "InvalidOption",
      `invalid first address ${firstAddress} for ${nodes} nodes: the nodes need 127.0.0.${firstAddress}..${firstAddress + nodes - 1} within 1..254`
    )
  }
  if (!isPositiveInteger(heapMb) || heapMb < 256) {
    return yield* failure("InvalidOption", `invalid heap of ${heapMb} MiB: use a whole number of at least 256`)
  }
  const version = options.version
  if (version !== undefined && !versionPattern.test(version)) {
    return yield* failure(
      "InvalidOption",
      `invalid Cassandra version "${version}": use a release of cassandra-all on Maven Central, such as 5.0.4 or 6.0-alpha2`
    )
  }
  const startTimeout = yield* decodeStartTimeout(options.startTimeout)
  const dataCenters = dataCenterNames(options.dataCenters)
  return { nodesPerDataCenter, dataCenters, firstAddress, heapMb, name, startTimeout, version }
})

/**
 * Starts a fresh local cluster (wiping any earlier one of the same name) and waits until every node is up; closing
 * the scope kills every node it started, also after a failure or an interruption halfway. Killed, not drained: the
 * next start wipes the cluster's files anyway, and a graceful stop of three loaded nodes takes 10 to 15 s.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (options: ClusterOptions = {}): Effect.Effect<Cluster, LocalCassandraError, Scope.Scope> =>
  Effect.gen(function* () {
    const valid = yield* validateOptions(options)
    const java = yield* resolveJava()
    const jars = yield* ensureJars(valid.version)
    const directory = clusterDirectory(valid.name)
    yield* killLeftovers(directory)
    // Each data center gets its own balanced ring, shifted by its position so that no two nodes share a token.
    const tokens = balancedTokens(valid.nodesPerDataCenter)
    const nodes = valid.dataCenters.flatMap((dataCenter, dataCenterPosition) =>
      tokens.map((token, tokenPosition): NodeRecord => {
        const position = dataCenterPosition * valid.nodesPerDataCenter + tokenPosition
        const octet = valid.firstAddress + position
        return {
          index: position + 1,
          address: addressOf(octet),
          dataCenter,
          rack,
          jmxPort: jmxPortOf(octet),
          token: (token + BigInt(dataCenterPosition)).toString(),
          founding: true,
          pid: null,
          decommissioned: false
        }
      })
    )
    for (const node of nodes) yield* ensurePortsFree(node)
    yield* Effect.try({
      try: () => {
        Fs.rmSync(directory, { recursive: true, force: true })
        Fs.mkdirSync(directory, { recursive: true })
      },
      catch: (cause) => failure("FileSystemFailed", `could not reset ${directory}: ${firstLineOf(cause)}`)
    })
    const tls = options.tls
    if (tls) yield* generateTls(directory, tls.serverCertificate ?? "valid")
    const state: ClusterState = {
      name: valid.name,
      version: jars.version,
      libDirectory: jars.directory,
      java: java.path,
      javaMajor: java.major,
      firstAddress: valid.firstAddress,
      heapMb: valid.heapMb,
      tls: !tls ? "none" : tls.clientCertificate ? "mutual" : "server",
      auth: options.auth ?? false,
      nodes
    }
    // The finalizer is in place before the first JVM starts, and each pid is recorded as its JVM starts, so an
    // interruption at any point below leaves nothing running.
    const runtime = yield* Effect.acquireRelease(makeRuntime(directory, state, jars, valid.startTimeout), (r) =>
      stopAll(r, false).pipe(Effect.ignore)
    )
    yield* saveState(runtime)
    const launchedAt = Date.now()
    for (const node of nodes) {
      yield* writeNodeFiles(runtime, node)
      yield* launchNode(runtime, node, node === nodes[0])
    }
    yield* waitUntilUp(runtime)
    if (state.auth && nodes.length > 1) yield* replicateAuth(runtime)
    yield* Effect.logInfo(
      `cluster ${valid.name} (Cassandra ${jars.version}) is up on ${nodes.map((n) => n.address).join(", ")}, ` +
        `${nodes.length} node(s) started in ${((Date.now() - launchedAt) / 1000).toFixed(1)} s`
    )
    return makeCluster(runtime, state)
  }).pipe(Effect.annotateLogs({ cluster: options.name ?? "local" }))

/**
 * Finds a cluster that an earlier process started (from its `cluster.json`), to inspect or change it; nothing is
 * stopped when the caller finishes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const attach = (
  name = "local",
  options: { readonly startTimeout?: Duration.Input } = {}
): Effect.Effect<Cluster, LocalCassandraError> =>
  Effect.gen(function* () {
    yield* validateName(name)
    const directory = clusterDirectory(name)
    const text = yield* Effect.try({
      try: () => Fs.readFileSync(stateFileOf(directory), "utf8"),
      catch: () =>
        failure(
          "ClusterNotFound",
          `no cluster named ${name} was started here: start one (\`npm run cassandra -- start\`)`
        )
    })
    const state = yield* Schema.decodeUnknownEffect(ClusterStateJson)(text).pipe(
      Effect.mapError(() =>
        failure("ClusterNotFound", `${stateFileOf(directory)} is unreadable: start the cluster again`)
      )
    )
    const jars = yield* readJars(state.libDirectory)
    const startTimeout = yield* decodeStartTimeout(options.startTimeout)
    const runtime = yield* makeRuntime(directory, state, jars, startTimeout)
    return makeCluster(runtime, state)
  })
