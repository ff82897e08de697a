/**
 * Times read from the logs of the local manager's nodes, for the cluster suites that measure how long the session
 * took to notice a change the nodes themselves logged.
 */
import { readFileSync } from "node:fs"
import * as Path from "node:path"
import type * as LocalCassandra from "../../tools/cassandra/LocalCassandra.ts"

/** When node `index` last logged a line holding `text` (Cassandra logs in local time); throws if it never did. */
export const loggedAt = (cluster: LocalCassandra.Cluster, index: number, text: string): number => {
  const log = readFileSync(Path.join(cluster.directory, `node${index}`, "logs", "system.log"), "utf8")
  const lines = log.split("\n").filter((line) => line.includes(text))
  const stamp = /(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}),(\d{3})/.exec(lines.at(-1) ?? "")
  if (stamp === null) throw new Error(`node ${index} never logged "${text}"`)
  return new Date(`${stamp[1]}T${stamp[2]}.${stamp[3]}`).getTime()
}

/** When node `index` last started listening for CQL clients. */
export const cqlReadyAt = (cluster: LocalCassandra.Cluster, index: number): number =>
  loggedAt(cluster, index, "Starting listening for CQL clients")
