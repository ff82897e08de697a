/**
 * Closing a session leaves nothing of the driver running, even when it is closed in the middle of a reconnection: on a
 * one-node cluster (127.0.0.86), a process whose session was closed while its control connection was connecting to
 * the frozen node must exit by itself once the node answers (test/cluster/programs/closeWhileReconnecting.ts), and
 * so must one whose node was marked down just before its client shut down (closeAsNodeGoesDown.ts).
 */
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as LocalCassandra from "../../tools/cassandra/LocalCassandra.ts"

const firstAddress = 86
const programPath = (name: string) => Path.join(import.meta.dirname, "programs", `${name}.ts`)
/** From the node's resume until the program must have exited: its reconnection ends within seconds once answered. */
const naturalExitWithin = "90 seconds"

interface Program {
  readonly child: ChildProcess.ChildProcess
  readonly printed: (line: string) => boolean
  readonly output: () => string
}

/**
 * Starts test/cluster/programs/`name`.ts for the life of the scope; closing the scope kills it if it is still running.
 */
const startProgram = (cluster: LocalCassandra.Cluster, name: string) =>
  Effect.acquireRelease(
    Effect.sync((): Program => {
      const child = ChildProcess.spawn(process.execPath, ["--conditions=effect-cassandra/source", programPath(name)], {
        env: {
          ...process.env,
          CASSANDRA_CONTACT_POINTS: cluster.contactPoints.join(","),
          CASSANDRA_LOCAL_DC: cluster.localDataCenter
        },
        stdio: ["pipe", "pipe", "pipe"]
      })
      let output = ""
      child.stdout?.on("data", (chunk) => (output += chunk))
      child.stderr?.on("data", (chunk) => (output += chunk))
      return { child, printed: (line) => output.split("\n").includes(line), output: () => output }
    }),
    ({ child }) =>
      Effect.sync(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      })
  )

/** Polls until `condition` holds, failing with what was awaited and the program's output. */
const until = (running: Program, what: string, condition: () => boolean, timeout: Duration.Input = "120 seconds") =>
  Effect.sync(condition).pipe(
    Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (holds) => holds }),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail(new Error(`${what} did not happen; the program printed:\n${running.output()}`))
    })
  )

/** Fails unless the program exits by itself, with status 0, within `naturalExitWithin`. */
const exitsByItself = (running: Program) =>
  Effect.gen(function* () {
    const exited = yield* until(
      running,
      "the program's own exit",
      () => running.child.exitCode !== null || running.child.signalCode !== null,
      naturalExitWithin
    ).pipe(
      Effect.as(true),
      Effect.orElseSucceed(() => false)
    )
    assert.isTrue(exited, `the program did not exit by itself once its session closed:\n${running.output()}`)
    assert.strictEqual(running.child.exitCode, 0, running.output())
  })

/** A cluster of `nodes` and test/cluster/programs/`name`.ts started over it, once the program's session serves. */
const connectedProgram = (name: string, nodes = 1) =>
  Effect.gen(function* () {
    const cluster = yield* LocalCassandra.start({ nodes, firstAddress, name: `shutdown${nodes}` })
    const running = yield* startProgram(cluster, name)
    yield* until(running, "the session's connect", () => running.printed("connected"))
    return { cluster, running }
  })

describe("closing a session", () => {
  it.live(
    "a process whose session closed during a reconnection of its control connection exits by itself",
    () =>
      Effect.gen(function* () {
        const { cluster, running } = yield* connectedProgram("closeWhileReconnecting")
        yield* cluster.pauseNode(1)
        yield* until(running, "the close during the reconnection", () => running.printed("closed")).pipe(
          Effect.ensuring(Effect.ignore(cluster.resumeNode(1)))
        )
        yield* exitsByItself(running)
      }).pipe(Effect.scoped),
    600_000
  )

  it.live(
    "a process whose session closed while reconnecting to a killed node exits by itself, the node still dead",
    () =>
      Effect.gen(function* () {
        const { cluster, running } = yield* connectedProgram("closeWhileReconnecting")
        yield* cluster.killNode(1)
        yield* until(running, "the close during the reconnection", () => running.printed("closed"))
        yield* exitsByItself(running)
      }).pipe(Effect.scoped),
    600_000
  )

  it.live(
    "a process whose session closed while reconnecting to a frozen node exits by itself, the node still frozen",
    () =>
      Effect.gen(function* () {
        const { cluster, running } = yield* connectedProgram("closeWhileReconnecting")
        yield* cluster.pauseNode(1)
        // The attempt in flight gives up after the program's connect timeout; nothing is tried after it.
        yield* until(running, "the close during the reconnection", () => running.printed("closed")).pipe(
          Effect.andThen(exitsByItself(running)),
          Effect.ensuring(Effect.ignore(cluster.resumeNode(1)))
        )
      }).pipe(Effect.scoped),
    600_000
  )

  it.live(
    "a process whose session closed while reconnecting to a frozen three-node cluster exits by itself",
    () =>
      Effect.gen(function* () {
        const { cluster, running } = yield* connectedProgram("closeWhileReconnecting", 3)
        const nodes = [1, 2, 3]
        yield* Effect.forEach(nodes, cluster.pauseNode)
        // Resumed in the reverse order: the contact point the attempt in flight waits for comes back last or not.
        yield* until(running, "the close during the reconnection", () => running.printed("closed")).pipe(
          Effect.ensuring(Effect.forEach(nodes.toReversed(), (node) => Effect.ignore(cluster.resumeNode(node))))
        )
        yield* exitsByItself(running)
      }).pipe(Effect.scoped),
    600_000
  )

  it.live(
    "a caller's client outlives a session closed during its reconnection, then exits with the caller's shutdown",
    () =>
      Effect.gen(function* () {
        const { cluster, running } = yield* connectedProgram("closeOverCallersClient")
        yield* cluster.pauseNode(1)
        yield* until(running, "the close during the reconnection", () => running.printed("closed")).pipe(
          Effect.ensuring(Effect.ignore(cluster.resumeNode(1)))
        )
        yield* exitsByItself(running)
        assert.isTrue(running.printed("served"), running.output())
      }).pipe(Effect.scoped),
    600_000
  )

  it.live(
    "a process whose node went down as its client shut down exits by itself",
    () =>
      Effect.gen(function* () {
        const { cluster, running } = yield* connectedProgram("closeAsNodeGoesDown")
        yield* cluster.pauseNode(1)
        running.child.stdin?.end("frozen\n")
        yield* until(running, "the close", () => running.printed("closed")).pipe(
          Effect.ensuring(Effect.ignore(cluster.resumeNode(1)))
        )
        yield* exitsByItself(running)
      }).pipe(Effect.scoped),
    600_000
  )
})
