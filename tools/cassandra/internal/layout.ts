/**
 * Where the local clusters live and how their nodes are reached: the cache directories, each node's directory, address,
 * ports and data center.
 *
 * @since 0.1.0
 */
import * as Path from "node:path"

/**
 * This directory: `pom.xml`, the JVM flag files and the logging configurations.
 *
 * @since 0.1.0
 * @category constants
 */
export const toolDirectory = Path.resolve(import.meta.dirname, "..")

/**
 * `.cache/cassandra` of the repository: the jars of each release and the clusters.
 *
 * @since 0.1.0
 * @category constants
 */
export const cacheDirectory = Path.resolve(toolDirectory, "..", "..", ".cache", "cassandra")

/**
 * The directory of the cluster named `name`: one `node<i>` directory per node (data, logs, pid file), the TLS
 * material and `cluster.json`.
 *
 * @since 0.1.0
 * @category utils
 */
export const clusterDirectory = (name: string): string => Path.join(cacheDirectory, "clusters", name)

/**
 * The directory of node `index` of the cluster in `directory`: its data, logs, configuration and pid file.
 *
 * @since 0.1.0
 * @category utils
 */
export const nodeDirectoryOf = (directory: string, index: number) => Path.join(directory, `node${index}`)

/**
 * The `cluster.json` of the cluster in `directory`.
 *
 * @since 0.1.0
 * @category utils
 */
export const stateFileOf = (directory: string) => Path.join(directory, "cluster.json")

/**
 * The JMX port (on 127.0.0.1) of the node on 127.0.0.`octet`.
 *
 * @since 0.1.0
 * @category utils
 */
export const jmxPortOf = (octet: number) => 7000 + 100 * octet

/**
 * The loopback address 127.0.0.`octet`.
 *
 * @since 0.1.0
 * @category utils
 */
export const addressOf = (octet: number) => `127.0.0.${octet}`

/**
 * The exact JVM argument that tells a JVM of ours apart from any other process, even after a pid was reused.
 *
 * @since 0.1.0
 * @category utils
 */
export const configArgumentOf = (nodeDirectory: string) =>
  `-Dcassandra.config=file://${Path.join(nodeDirectory, "conf", "cassandra.yaml")}`

/**
 * The CQL port of every node.
 *
 * @since 0.1.0
 * @category constants
 */
export const nativePort = 9042

/**
 * The internode port of every node.
 *
 * @since 0.1.0
 * @category constants
 */
export const storagePort = 7000

/**
 * The main class of a Cassandra node.
 *
 * @since 0.1.0
 * @category constants
 */
export const daemonClass = "org.apache.cassandra.service.CassandraDaemon"

/**
 * The data center of a cluster started without data centers: the name SimpleSnitch gives.
 *
 * @since 0.1.0
 * @category constants
 */
export const singleDataCenter = "datacenter1"

/**
 * The rack of every node.
 *
 * @since 0.1.0
 * @category constants
 */
export const rack = "rack1"

/**
 * dc1, dc2, … when data centers are asked for; else the one data center SimpleSnitch would have named.
 *
 * @since 0.1.0
 * @category utils
 */
export const dataCenterNames = (count: number | undefined): ReadonlyArray<string> =>
  count === undefined ? [singleDataCenter] : Array.from({ length: count }, (_, position) => `dc${position + 1}`)
