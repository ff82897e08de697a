/**
 * A node's JVM: starting it detached, stopping, killing, freezing and resuming it, and reading its logs when it fails.
 *
 * @since 0.1.0
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect, Ref } from "effect"
import { failure, firstLineOf, type LocalCassandraError, lastLine } from "./errors.ts"
import { reconnectRecordedNode } from "./firewall.ts"
import { nodeDirectoryOf } from "./layout.ts"
import { nodeJvmArguments } from "./nodeConfig.ts"
import { isNodeProcess, isStopped, killGracePeriod, pollUntil, signalGroup, terminate } from "./processes.ts"
import { type NodeRecord, type Runtime, runningRecord, saveState, updateNode } from "./state.ts"

const logTailOf = (runtime: Runtime, node: NodeRecord): { readonly summary: string; readonly tail: string } => {
  const logs = Path.join(nodeDirectoryOf(runtime.directory, node.index), "logs")
  const read = (file: string) => {
    try {
      return Fs.readFileSync(Path.join(logs, file), "utf8").split("\n").slice(-200).join("\n")
    } catch {
      return ""
    }
  }
  const system = read("system.log")
  const stdout = read("stdout.log")
  const summary =
    lastLine(system, /^ERROR|Exception|Error:/) ?? lastLine(stdout) ?? lastLine(system) ?? "the logs are empty"
  const tail = [system, stdout]
    .map((text) => text.split("\n").filter(Boolean).slice(-20).join("\n"))
    .filter(Boolean)
    .join("\n---\n")
  return { summary, tail }
}

const nodeFailed = (runtime: Runtime, node: NodeRecord, what: string) =>
  Effect.suspend(() => {
    const { summary, tail } = logTailOf(runtime, node)
    const logs = Path.join(nodeDirectoryOf(runtime.directory, node.index), "logs", "system.log")
    return Effect.fail(
      failure("NodeFailed", `node ${node.index} (${node.address}) ${what}: ${summary} (see ${logs})`, tail)
    )
  })

/**
 * Starts the node's JVM, detached and logging to files, and records its pid before anything can interrupt.
 *
 * @since 0.1.0
 * @category operations
 */
export const spawnNode = (runtime: Runtime, node: NodeRecord, firstOfCluster: boolean) =>
  Effect.uninterruptible(
    Effect.gen(function* () {
      const state = yield* Ref.get(runtime.state)
      const directory = nodeDirectoryOf(runtime.directory, node.index)
      const child = yield* Effect.try({
        try: () => {
          const output = Fs.openSync(Path.join(directory, "logs", "stdout.log"), "a")
          try {
            // Detached, with files rather than pipes, so that a cluster started by the CLI outlives the CLI.
            return ChildProcess.spawn(state.java, nodeJvmArguments(runtime, state, node, firstOfCluster), {
              cwd: directory,
              detached: true,
              stdio: ["ignore", output, output]
            })
          } finally {
            Fs.closeSync(output)
          }
        },
        catch: (cause) => failure("NodeFailed", `could not start node ${node.index}'s JVM: ${firstLineOf(cause)}`)
      })
      child.unref()
      const exited = Effect.callback<never, LocalCassandraError>((resume) => {
        const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
          resume(nodeFailed(runtime, node, `exited (${signal ?? `code ${code}`}) before it answered CQL`))
        const onError = (error: Error) => resume(nodeFailed(runtime, node, `could not start: ${firstLineOf(error)}`))
        if (child.exitCode !== null || child.signalCode !== null) onExit(child.exitCode, child.signalCode)
        child.once("exit", onExit)
        child.once("error", onError)
        return Effect.sync(() => {
          child.off("exit", onExit)
          child.off("error", onError)
        })
      })
      if (child.pid !== undefined) {
        Fs.writeFileSync(Path.join(directory, "cassandra.pid"), `${child.pid}\n`)
        yield* updateNode(runtime, node.index, { pid: child.pid })
      }
      return { exited }
    })
  )

/**
 * Stops a node (gracefully, else by SIGKILL), removing its firewall rules first, and records that it stopped.
 *
 * @since 0.1.0
 * @category operations
 */
export const stopRecordedNode = Effect.fnUntraced(function* (runtime: Runtime, node: NodeRecord, graceful: boolean) {
  yield* reconnectRecordedNode(runtime, node).pipe(Effect.ignore)
  if (node.pid !== null) {
    yield* terminate(node.pid, nodeDirectoryOf(runtime.directory, node.index), graceful)
  }
  yield* updateNode(runtime, node.index, { pid: null })
  yield* saveState(runtime)
})

/**
 * Freezes a running node (SIGSTOP) and waits until the kernel shows it stopped.
 *
 * @since 0.1.0
 * @category operations
 */
export const pauseNode = Effect.fnUntraced(function* (runtime: Runtime, index: number) {
  const { pid } = yield* runningRecord(runtime, index, "pause")
  signalGroup(pid, "SIGSTOP")
  if (!(yield* pollUntil(() => isStopped(pid), killGracePeriod))) {
    return yield* failure("NodeFailed", `node ${index} (pid ${pid}) did not stop on SIGSTOP: look at ps -o stat ${pid}`)
  }
})

/**
 * Lets a frozen node run again (SIGCONT) and waits until the kernel shows it running.
 *
 * @since 0.1.0
 * @category operations
 */
export const resumeNode = Effect.fnUntraced(function* (runtime: Runtime, index: number) {
  const { pid } = yield* runningRecord(runtime, index, "resume")
  signalGroup(pid, "SIGCONT")
  if (!(yield* pollUntil(() => !isStopped(pid), killGracePeriod))) {
    return yield* failure("NodeFailed", `node ${index} (pid ${pid}) did not run on SIGCONT: look at ps -o stat ${pid}`)
  }
})

/**
 * Kills the JVMs that the pid files of a previous, crashed run left behind. Only ours: checked by command line.
 *
 * @since 0.1.0
 * @category operations
 */
export const killLeftovers = Effect.fnUntraced(function* (directory: string) {
  if (!Fs.existsSync(directory)) return
  for (const entry of Fs.readdirSync(directory)) {
    const nodeDirectory = Path.join(directory, entry)
    const pidFile = Path.join(nodeDirectory, "cassandra.pid")
    if (!/^node\d+$/.test(entry) || !Fs.existsSync(pidFile)) continue
    const pid = Number.parseInt(Fs.readFileSync(pidFile, "utf8"), 10)
    if (Number.isInteger(pid) && isNodeProcess(pid, nodeDirectory)) {
      yield* Effect.logWarning(`killing pid ${pid}, left running by an earlier run in ${nodeDirectory}`)
      yield* terminate(pid, nodeDirectory, false)
    }
  }
})
