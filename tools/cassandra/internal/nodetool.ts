/**
 * Runs nodetool against a node over JMX.
 *
 * @since 0.1.0
 */
import * as Path from "node:path"
import { Effect, Ref } from "effect"
import { failure, firstLineOf, lastLine } from "./errors.ts"
import { toolDirectory } from "./layout.ts"
import { runCommand } from "./processes.ts"
import type { NodeRecord, Runtime } from "./state.ts"

/**
 * Runs nodetool against a node and returns its output; a failure quotes nodetool's own reason.
 *
 * @since 0.1.0
 * @category operations
 */
export const runNodetool = Effect.fnUntraced(function* (
  runtime: Runtime,
  node: NodeRecord,
  args: ReadonlyArray<string>
) {
  const state = yield* Ref.get(runtime.state)
  const command = `nodetool ${args.join(" ")}`
  const result = yield* runCommand(state.java, [
    ...runtime.jvmFlags,
    "-Xmx128m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    `-Dlogback.configurationFile=file://${Path.join(toolDirectory, "logback-tools.xml")}`,
    "-cp",
    `${runtime.jars.directory}/*`,
    "org.apache.cassandra.tools.NodeTool",
    "-h",
    "127.0.0.1",
    "-p",
    String(node.jmxPort),
    ...args
  ]).pipe(Effect.mapError((error) => failure("NodetoolFailed", `${command} could not run: ${firstLineOf(error)}`)))
  if (result.exitCode !== 0) {
    // nodetool says what went wrong on a line "error: …" or "nodetool: …", followed by a stack trace or a hint.
    const output = `${result.stdout}\n${result.stderr}`
    const reason =
      lastLine(output, /^(error|nodetool):/)?.replace(/^(error|nodetool):\s*/, "") ??
      lastLine(output) ??
      `exit code ${result.exitCode}`
    return yield* failure(
      "NodetoolFailed",
      `${command} on node ${node.index} failed (${reason}): check that the node runs (status) and read its logs`
    )
  }
  return result.stdout
})

/**
 * Each node's ring state ("UN", "DN", "UJ", …) in `nodetool status` of `node`, by address.
 *
 * @since 0.1.0
 * @category operations
 */
export const ringStates = (runtime: Runtime, node: NodeRecord) =>
  runNodetool(runtime, node, ["status"]).pipe(
    Effect.map((output) => {
      const states = new Map<string, string>()
      for (const match of output.matchAll(/^([UD][NLJM])\s+(\S+)/gm)) {
        states.set(match[2]!.replace(/:\d+$/, ""), match[1]!)
      }
      return states
    })
  )
