/**
 * Times read from the logs of the local manager's nodes, for the cluster suites that measure how long the session
 * took to notice a change the nodes themselves logged.
 */
import { readFileSync } from "node:fs"
import * as Path from "node:path"
import type * as LocalCassandra from "../../tools/cassandra/LocalCassandra.ts"

const logLines = (cluster: LocalCassandra.Cluster, index: number): ReadonlyArray<string> =>
  readFileSync(Path.join(cluster.directory, `node${index}`, "logs", "system.log"), "utf8").split("\n")

/** When a log line was written (Cassandra logs in local time), or undefined for a line without a stamp. */
const stampOf = (line: string): number | undefined => {
  const stamp = /(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}),(\d{3})/.exec(line)
  return stamp === null ? undefined : new Date(`${stamp[1]}T${stamp[2]}.${stamp[3]}`).getTime()
}

/** When node `index` logged each line holding `text`, in order. */
const loggedTimes = (cluster: LocalCassandra.Cluster, index: number, text: string): ReadonlyArray<number> =>
  logLines(cluster, index)
    .filter((line) => line.includes(text))
    .flatMap((line) => {
      const at = stampOf(line)
      return at === undefined ? [] : [at]
    })

/**
 * What the nodes logged of their own trouble: messages they dropped, pauses, pending stages, warnings and errors.
 * A request the server timed out is the server's story, so a failed scenario shows it beside the client's failures.
 */
const trouble = /dropped|pause|pending tasks|GCInspector|^(WARN|ERROR) /
const troubleLinesShown = 20
const troubleLineLength = 240

/** The nodes' trouble lines within `[from, to]` (epoch ms), as `node<i>: line`, at most 20 of them, earliest first. */
export const troubleLogged = (
  cluster: LocalCassandra.Cluster,
  nodes: number,
  from: number,
  to: number
): ReadonlyArray<string> =>
  Array.from({ length: nodes }, (_, position) => position + 1)
    .flatMap((index) =>
      logLines(cluster, index).flatMap((line) => {
        const at = stampOf(line)
        return at !== undefined && at >= from && at <= to && trouble.test(line.trimStart())
          ? [{ at, line: `node${index}: ${line.trim().slice(0, troubleLineLength)}` }]
          : []
      })
    )
    .sort((a, b) => a.at - b.at)
    .slice(0, troubleLinesShown)
    .map(({ line }) => line)

/** When node `index` last logged a line holding `text`; throws if it never did. */
export const loggedAt = (cluster: LocalCassandra.Cluster, index: number, text: string): number => {
  const last = loggedTimes(cluster, index, text).at(-1)
  if (last === undefined) throw new Error(`node ${index} never logged "${text}"`)
  return last
}

/**
 * When node `index` first logged a line holding `text` at `from` (epoch ms) or later; NaN if it has not. A node may
 * log the same news twice (gossip marks a returning peer up more than once), so "since when" is the first line.
 */
export const firstLoggedSince = (cluster: LocalCassandra.Cluster, index: number, text: string, from: number): number =>
  // The log has millisecond stamps; the clock read at `from` has finer ones.
  loggedTimes(cluster, index, text).find((at) => at >= from - 1) ?? Number.NaN

/** When node `index` last started listening for CQL clients. */
export const cqlReadyAt = (cluster: LocalCassandra.Cluster, index: number): number =>
  loggedAt(cluster, index, "Starting listening for CQL clients")
