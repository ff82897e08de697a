/**
 * Closing a session leaves nothing of the driver running, even when it is closed in the middle of a reconnection: on a
 * one-node cluster (127.0.0.86), a process whose session was closed while its control connection was connecting to
 * the frozen node must exit by itself once the node answers (test/cluster/programs/closeWhileReconnecting.ts), and
 * so must one whose node was marked down just before its client shut down (closeAsNodeGoesDown.ts).
 */
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
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
const startProgram = (cluster: LocalCassandra.Cluster, name: string, env: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.sync((): Program => {
      const child = ChildProcess.spawn(process.execPath, ["--conditions=effect-cassandra/source", programPath(name)], {
        env: {
          ...process.env,
          CASSANDRA_CONTACT_POINTS: cluster.contactPoints.join(","),
          CASSANDRA_LOCAL_DC: cluster.localDataCenter,
          ...env
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

/** test/cluster/programs/`name`.ts started over `cluster`, once the program's session serves. */
const connectedProgram = (cluster: LocalCassandra.Cluster, name: string, env: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const running = yield* startProgram(cluster, name, env)
    yield* until(running, "the session's connect", () => running.printed("connected"))
    return running
  })

/**
 * The one-node cluster the single-node tests share, one after another: starting it for each would cost more than
 * most of them take. Each test leaves its node running and resumed, except the last, which kills it.
 */
const SharedNode = Context.Service<LocalCassandra.Cluster>("test/SharedNode")

const sharedNode = Layer.effect(SharedNode, LocalCassandra.start({ nodes: 1, firstAddress, name: "shutdown1" }))

/** The shared node, running and not frozen, whatever a test before left it as. */
const sharedNodeRunning = Effect.gen(function* () {
  const cluster = yield* SharedNode
  if ((yield* cluster.nodes)[0]!.paused) yield* cluster.resumeNode(1)
  yield* cluster.startStopped
  return cluster
})

layer(sharedNode, { excludeTestServices: true, timeout: "10 minutes" })("closing a session on one node", (it) => {
  it.effect(
    "a process whose session closed during a reconnection of its control connection exits by itself",
    () =>
      Effect.gen(function* () {
        const cluster = yield* sharedNodeRunning
        const running = yield* connectedProgram(cluster, "closeWhileReconnecting")
        yield* cluster.pauseNode(1)
        yield* until(running, "the close during the reconnection", () => running.printed("closed")).pipe(
          Effect.ensuring(Effect.ignore(cluster.resumeNode(1)))
        )
        yield* exitsByItself(running)
      }).pipe(Effect.scoped),
    600_000
  )

  it.effect(
    "a process whose session closed while reconnecting to a frozen node exits by itself, the node still frozen",
    () =>
      Effect.gen(function* () {
        // The node stays frozen: the attempt in flight gives up after the program's connect timeout, shortened from its
        // 60 s so that the test does not wait for it; nothing is tried after it.
        const cluster = yield* sharedNodeRunning
        const running = yield* connectedProgram(cluster, "closeWhileReconnecting", {
          CONNECT_TIMEOUT_SECONDS: "15"
        })
        yield* cluster.pauseNode(1)
        yield* until(running, "the close during the reconnection", () => running.printed("closed")).pipe(
          Effect.andThen(exitsByItself(running)),
          Effect.ensuring(Effect.ignore(cluster.resumeNode(1)))
        )
      }).pipe(Effect.scoped),
    600_000
  )

  it.effect(
    "a caller's client outlives a session closed during its reconnection, then exits with the caller's shutdown",
    () =>
      Effect.gen(function* () {
        const cluster = yield* sharedNodeRunning
        const running = yield* connectedProgram(cluster, "closeOverCallersClient")
        yield* cluster.pauseNode(1)
        yield* until(running, "the close during the reconnection", () => running.printed("closed")).pipe(
          Effect.ensuring(Effect.ignore(cluster.resumeNode(1)))
        )
        yield* exitsByItself(running)
        assert.isTrue(running.printed("served"), running.output())
      }).pipe(Effect.scoped),
    600_000
  )

  it.effect(
    "a process whose node went down as its client shut down exits by itself",
    () =>
      Effect.gen(function* () {
        const cluster = yield* sharedNodeRunning
        const running = yield* connectedProgram(cluster, "closeAsNodeGoesDown")
        yield* cluster.pauseNode(1)
        running.child.stdin?.end("frozen\n")
        yield* until(running, "the close", () => running.printed("closed")).pipe(
          Effect.ensuring(Effect.ignore(cluster.resumeNode(1)))
        )
        yield* exitsByItself(running)
      }).pipe(Effect.scoped),
    600_000
  )

  it.effect(
    "a process whose session closed while reconnecting to a killed node exits by itself, the node still dead",
    () =>
      Effect.gen(function* () {
        const cluster = yield* sharedNodeRunning
        const running = yield* connectedProgram(cluster, "closeWhileReconnecting")
        yield* cluster.killNode(1)
        yield* until(running, "the close during the reconnection", () => running.printed("closed"))
        yield* exitsByItself(running)
      }).pipe(Effect.scoped),
    600_000
  )
})

describe("closing a session on three nodes", () => {
  it.live(
    "a process whose session closed while reconnecting to a frozen three-node cluster exits by itself",
    () =>
      Effect.gen(function* () {
        const cluster = yield* LocalCassandra.start({ nodes: 3, firstAddress, name: "shutdown3" })
        const running = yield* connectedProgram(cluster, "closeWhileReconnecting")
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
})
