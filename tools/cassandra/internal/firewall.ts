/**
 * Cutting a node off the network with iptables rules, and removing them again.
 *
 * @since 0.1.0
 */
import * as Path from "node:path"
import { Effect } from "effect"
import { failure, firstLineOf, lastLine } from "./errors.ts"
import { runCommand } from "./processes.ts"
import { type NodeRecord, type Runtime, runningRecord } from "./state.ts"

// Every rule carries the cluster's and the node's name, so that reconnecting removes exactly the rules added here.
const firewallRulesOf = (runtime: Runtime, node: NodeRecord) => {
  const comment = [
    "-m",
    "comment",
    "--comment",
    `effect-cassandra:${Path.basename(runtime.directory)}:node${node.index}`
  ]
  return [
    ["INPUT", "-d", node.address, ...comment, "-j", "DROP"],
    ["INPUT", "-s", node.address, ...comment, "-j", "DROP"]
  ]
}

const firewallHint = "cutting a node off needs root and iptables with a netfilter kernel (apt-get install iptables)"

const runIptables = (args: ReadonlyArray<string>) =>
  runCommand("iptables", ["-w", ...args]).pipe(
    Effect.mapError((error) =>
      failure(
        "FirewallUnavailable",
        error.code === "ENOENT"
          ? `iptables was not found: ${firewallHint}`
          : `iptables could not run (${firstLineOf(error)}): ${firewallHint}`
      )
    )
  )

/**
 * Cuts a running node off the network: iptables rules drop every packet to and from its address.
 *
 * @since 0.1.0
 * @category operations
 */
export const cutOffNode = Effect.fnUntraced(function* (runtime: Runtime, index: number) {
  const { node } = yield* runningRecord(runtime, index, "cut off")
  for (const rule of firewallRulesOf(runtime, node)) {
    const result = yield* runIptables(["-I", ...rule])
    if (result.exitCode !== 0) {
      yield* reconnectRecordedNode(runtime, node).pipe(Effect.ignore)
      const reason = lastLine(result.stderr) ?? `exit code ${result.exitCode}`
      return yield* failure("FirewallUnavailable", `iptables refused a rule (${reason}): ${firewallHint}`)
    }
  }
})

/**
 * Deletes the node's rules, each as often as it was added; a machine without iptables has none to delete.
 *
 * @since 0.1.0
 * @category operations
 */
export const reconnectRecordedNode = (runtime: Runtime, node: NodeRecord) =>
  Effect.forEach(
    firewallRulesOf(runtime, node),
    (rule) =>
      runIptables(["-D", ...rule]).pipe(
        Effect.repeat({ until: (result) => result.exitCode !== 0 }),
        Effect.catchIf(
          (error) => error.message.startsWith("iptables was not found"),
          () => Effect.void
        )
      ),
    { discard: true }
  )
