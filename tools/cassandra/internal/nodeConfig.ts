/**
 * Each node's configuration: `cassandra.yaml`, `cassandra-rackdc.properties` and the JVM's arguments.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect, Ref } from "effect"
import { failure, firstLineOf } from "./errors.ts"
import { configArgumentOf, daemonClass, nativePort, nodeDirectoryOf, storagePort, toolDirectory } from "./layout.ts"
import type { ClusterState, NodeRecord, Runtime } from "./state.ts"

/**
 * The superuser login of a cluster started with `auth`.
 *
 * @since 0.1.0
 * @category constants
 */
export const superuser = { username: "cassandra", password: "cassandra" } as const

const maxSeeds = 3

/**
 * The seeds: the first founding nodes of each data center, at most 3 in all and at least one per data center.
 *
 * @since 0.1.0
 * @category utils
 */
export const seedsOf = (nodes: ReadonlyArray<NodeRecord>): ReadonlyArray<NodeRecord> => {
  const founders = nodes.filter((node) => node.founding)
  const dataCenters = [...new Set(founders.map((node) => node.dataCenter))]
  const perDataCenter = Math.max(1, Math.floor(maxSeeds / dataCenters.length))
  return dataCenters.flatMap((dataCenter) =>
    founders.filter((node) => node.dataCenter === dataCenter).slice(0, perDataCenter)
  )
}

const rackDcPropertiesOf = (nodeDirectory: string) => Path.join(nodeDirectory, "conf", "cassandra-rackdc.properties")

const cassandraYaml = (runtime: Runtime, state: ClusterState, node: NodeRecord): string => {
  const directory = nodeDirectoryOf(runtime.directory, node.index)
  const seeds = seedsOf(state.nodes)
    .map((seed) => `${seed.address}:${storagePort}`)
    .join(",")
  const lines = [
    `cluster_name: '${state.name}'`,
    "num_tokens: 1",
    `initial_token: ${node.token}`,
    "partitioner: org.apache.cassandra.dht.Murmur3Partitioner",
    // Each node reads its data center and rack from its cassandra-rackdc.properties.
    "endpoint_snitch: GossipingPropertyFileSnitch",
    "seed_provider:",
    "  - class_name: org.apache.cassandra.locator.SimpleSeedProvider",
    "    parameters:",
    `      - seeds: "${seeds}"`,
    `listen_address: ${node.address}`,
    `rpc_address: ${node.address}`,
    `storage_port: ${storagePort}`,
    `native_transport_port: ${nativePort}`,
    "start_native_transport: true",
    `auto_bootstrap: ${!node.founding}`,
    `data_file_directories: [ ${Path.join(directory, "data")} ]`,
    `commitlog_directory: ${Path.join(directory, "commitlog")}`,
    `saved_caches_directory: ${Path.join(directory, "saved_caches")}`,
    `hints_directory: ${Path.join(directory, "hints")}`,
    `cdc_raw_directory: ${Path.join(directory, "cdc_raw")}`,
    "commitlog_sync: periodic",
    "commitlog_sync_period: 10000ms",
    `authenticator: ${state.auth ? "PasswordAuthenticator" : "AllowAllAuthenticator"}`,
    `authorizer: ${state.auth ? "CassandraAuthorizer" : "AllowAllAuthorizer"}`,
    "role_manager: CassandraRoleManager",
    // The features the driver's metadata API can describe, so that tests can create them.
    "materialized_views_enabled: true",
    "user_defined_functions_enabled: true",
    // Small-machine tuning: a 2-core box runs several nodes.
    "auto_snapshot: false",
    "concurrent_reads: 4",
    "concurrent_writes: 4",
    "concurrent_counter_writes: 4",
    "concurrent_compactors: 1",
    "memtable_flush_writers: 1",
    "compaction_throughput: 0MiB/s"
  ]
  if (runtime.tls !== undefined) {
    const mutual = state.tls === "mutual"
    lines.push(
      "client_encryption_options:",
      "  enabled: true",
      "  optional: false",
      "  ssl_context_factory:",
      "    class_name: org.apache.cassandra.security.PEMBasedSslContextFactory",
      `  keystore: ${runtime.tls.keystoreFile}`,
      `  require_client_auth: ${mutual}`,
      ...(mutual ? [`  truststore: ${runtime.tls.caFile}`] : [])
    )
  }
  return `${lines.join("\n")}\n`
}

/**
 * The arguments of a node's JVM: the flags of its Java, heap, system properties and main class. `firstOfCluster` is the
 * first node launched by a fresh start, which skips the check that its address is not in the ring already.
 *
 * @since 0.1.0
 * @category utils
 */
export const nodeJvmArguments = (
  runtime: Runtime,
  state: ClusterState,
  node: NodeRecord,
  firstOfCluster: boolean
): ReadonlyArray<string> => {
  const directory = nodeDirectoryOf(runtime.directory, node.index)
  return [
    ...runtime.jvmFlags,
    `-javaagent:${runtime.jars.jamm}`,
    `-Xms${state.heapMb}m`,
    `-Xmx${state.heapMb}m`,
    // SerialGC and C1 only: less CPU per JVM while several nodes share two cores.
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xss256k",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.net.preferIPv4Stack=true",
    `-Djava.io.tmpdir=${Path.join(directory, "tmp")}`,
    `-Dcassandra.jmx.local.port=${node.jmxPort}`,
    "-Dcom.sun.management.jmxremote.authenticate=false",
    configArgumentOf(directory),
    `-Dcassandra-rackdc.properties=file://${rackDcPropertiesOf(directory)}`,
    `-Dcassandra.storagedir=${directory}`,
    `-Dcassandra.logdir=${Path.join(directory, "logs")}`,
    `-Dlogback.configurationFile=file://${Path.join(toolDirectory, "logback-node.xml")}`,
    // Without it Cassandra closes stdout/stderr, and the JVM's own crash messages would be lost.
    "-Dcassandra-foreground=yes",
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    "-Dcassandra.superuser_setup_delay_ms=0",
    // Loopback gossip converges in well under a second; the 30 s default only slows bootstrap and decommission.
    "-Dcassandra.ring_delay_ms=5000",
    // The first node of a freshly wiped cluster has no peer to answer the shadow gossip round that checks its address is
    // not taken already: with other seeds listed, Cassandra 5.0 would wait ring_delay and a second for nobody (6.0
    // runs no such round and ignores the property).
    ...(firstOfCluster ? ["-Dcassandra.allow_unsafe_join=true"] : []),
    "-cp",
    `${runtime.jars.directory}/*`,
    daemonClass
  ]
}

/**
 * Writes a node's `cassandra.yaml` and `cassandra-rackdc.properties`, and makes its directories.
 *
 * @since 0.1.0
 * @category constructors
 */
export const writeNodeFiles = (runtime: Runtime, node: NodeRecord) =>
  Effect.flatMap(Ref.get(runtime.state), (state) =>
    Effect.try({
      try: () => {
        const directory = nodeDirectoryOf(runtime.directory, node.index)
        for (const sub of ["conf", "logs", "tmp"]) Fs.mkdirSync(Path.join(directory, sub), { recursive: true })
        Fs.writeFileSync(Path.join(directory, "conf", "cassandra.yaml"), cassandraYaml(runtime, state, node))
        Fs.writeFileSync(rackDcPropertiesOf(directory), `dc=${node.dataCenter}\nrack=${node.rack}\n`)
      },
      catch: (cause) => failure("FileSystemFailed", `could not write node ${node.index}'s files: ${firstLineOf(cause)}`)
    })
  )
