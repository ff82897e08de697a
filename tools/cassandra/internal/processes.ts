/**
 * Operating-system processes: running a command to completion, signalling a process group, reading a process's state
 * from /proc, terminating a node's JVM, and checking that a port is free.
 *
 * @since 0.1.0
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import type { Readable } from "node:stream"
import { Duration, Effect, Schedule } from "effect"
import { failure } from "./errors.ts"
import { configArgumentOf, daemonClass, nativePort, storagePort } from "./layout.ts"
import { withProgress } from "./progress.ts"
import type { NodeRecord } from "./state.ts"

const stopGracePeriod = Duration.seconds(90)

/**
 * How long a process may take to exit after SIGKILL, or to stop on SIGSTOP.
 *
 * @since 0.1.0
 * @category constants
 */
export const killGracePeriod = Duration.seconds(15)

const processPollInterval = Duration.millis(100)

interface CommandResult {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs a command to completion in its own process group, so that an interruption kills it with everything it started
 * (Maven, for one, runs a JVM under a shell script).
 *
 * @since 0.1.0
 * @category processes
 */
export const runCommand = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string; readonly onStdoutLine?: (line: string) => void } = {}
): Effect.Effect<CommandResult, NodeJS.ErrnoException> =>
  Effect.callback((resume) => {
    let child: ChildProcess.ChildProcessByStdio<null, Readable, Readable>
    try {
      child = ChildProcess.spawn(command, args, {
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        ...(options.cwd === undefined ? {} : { cwd: options.cwd })
      })
    } catch (error) {
      // spawn throws some errors (ENOTDIR, EINVAL) instead of emitting them.
      return resume(Effect.fail(error as NodeJS.ErrnoException))
    }
    let stdout = ""
    let stderr = ""
    let scanned = 0
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
      if (options.onStdoutLine === undefined) return
      const end = stdout.lastIndexOf("\n") + 1
      if (end > scanned) {
        for (const line of stdout.slice(scanned, end - 1).split("\n")) options.onStdoutLine(line)
        scanned = end
      }
    })
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk
    })
    child.once("error", (error) => resume(Effect.fail(error)))
    child.once("close", (code, signal) =>
      resume(Effect.succeed({ exitCode: code ?? (signal === null ? 1 : 128), stdout, stderr }))
    )
    return Effect.sync(() => signalGroup(child.pid, "SIGKILL"))
  })

const commandLineOf = (pid: number): ReadonlyArray<string> => {
  try {
    return Fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
  } catch {
    return []
  }
}

/**
 * Whether `pid` is a live Cassandra JVM of the node in `nodeDirectory` (an exited, unreaped JVM has no command line).
 *
 * @since 0.1.0
 * @category processes
 */
export const isNodeProcess = (pid: number, nodeDirectory: string): boolean => {
  const args = commandLineOf(pid)
  return args.includes(daemonClass) && args.includes(configArgumentOf(nodeDirectory))
}

/**
 * Whether `pid` has fully exited: gone, or a zombie whose every thread is dead. Only then are its sockets closed; its
 * command line is empty earlier, while the JVM's threads are still exiting.
 */
const hasExited = (pid: number): boolean => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return fields[0] === "Z" && fields[17] === "1"
  } catch {
    return true
  }
}

/**
 * Whether `pid` is stopped by a signal (state T).
 *
 * @since 0.1.0
 * @category processes
 */
export const isStopped = (pid: number): boolean => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("T")
  } catch {
    return false
  }
}

/**
 * Sends `signal` to the process group that `pid` leads; a process already gone is ignored.
 *
 * @since 0.1.0
 * @category processes
 */
export const signalGroup = (pid: number | undefined, signal: NodeJS.Signals): void => {
  if (pid === undefined) return
  try {
    // Every JVM and helper command leads its own process group (spawned detached), so this reaches its children too.
    process.kill(-pid, signal)
  } catch {
    // Already gone.
  }
}

/**
 * Re-checks `condition` until it holds; false when it still does not hold after `within`.
 *
 * @since 0.1.0
 * @category processes
 */
export const pollUntil = (condition: () => boolean, within: Duration.Input): Effect.Effect<boolean> =>
  Effect.suspend(() => (condition() ? Effect.succeed(true) : Effect.fail(false))).pipe(
    Effect.retry(Schedule.spaced(processPollInterval).pipe(Schedule.upTo({ duration: within }))),
    Effect.orElseSucceed(() => false)
  )

/**
 * Stops the node JVM `pid` (SIGTERM, then SIGKILL if it does not exit in time) and waits until it has fully exited.
 *
 * @since 0.1.0
 * @category processes
 */
export const terminate = Effect.fnUntraced(function* (pid: number, nodeDirectory: string, graceful: boolean) {
  if (!isNodeProcess(pid, nodeDirectory)) {
    // Either long gone, or exiting already (its command line is gone first): then wait until its sockets are closed.
    if (commandLineOf(pid).join("") === "") yield* pollUntil(() => hasExited(pid), killGracePeriod)
    return
  }
  // A frozen JVM only acts on SIGTERM once it runs again.
  signalGroup(pid, "SIGCONT")
  if (graceful) {
    signalGroup(pid, "SIGTERM")
    const exited = yield* withProgress(
      pollUntil(() => hasExited(pid), stopGracePeriod),
      (elapsed) => `waiting for pid ${pid} (${nodeDirectory}) to exit after SIGTERM: ${elapsed}`
    )
    if (exited) return
    yield* Effect.logWarning(`pid ${pid} ignored SIGTERM for ${Duration.format(stopGracePeriod)}: killing it`)
  }
  signalGroup(pid, "SIGKILL")
  if (yield* pollUntil(() => hasExited(pid), killGracePeriod)) return
  return yield* failure("NodeFailed", `pid ${pid} survived SIGKILL: stop it by hand (kill -9 ${pid})`)
})

const isPortFree = (host: string, port: number): Effect.Effect<boolean> =>
  Effect.callback((resume) => {
    const server = Net.createServer()
    server.once("error", () => resume(Effect.succeed(false)))
    server.listen({ host, port, exclusive: true }, () => server.close(() => resume(Effect.succeed(true))))
  })

/**
 * Fails with PortInUse, naming the port and its use, when a node's CQL, storage or JMX port is taken.
 *
 * @since 0.1.0
 * @category processes
 */
export const ensurePortsFree = Effect.fnUntraced(function* (node: NodeRecord) {
  const ports = [
    { host: node.address, port: nativePort, use: "CQL" },
    { host: node.address, port: storagePort, use: "storage" },
    { host: "127.0.0.1", port: node.jmxPort, use: `JMX of node ${node.index}` }
  ]
  for (const { host, port, use } of ports) {
    if (!(yield* isPortFree(host, port))) {
      return yield* failure(
        "PortInUse",
        `port ${port} on ${host} (${use}) is in use: stop the other Cassandra (\`npm run cassandra -- stop\`) or choose --first-address`
      )
    }
  }
})
