/**
 * The recorded state of a cluster (`cluster.json`) and the runtime that holds it while the manager operates the
 * cluster.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import { type Duration, Effect, Ref, Schema, Semaphore } from "effect"
import { failure, firstLineOf } from "./errors.ts"
import { type Jars, libDirectoryOf } from "./jars.ts"
import { readJvmFlags } from "./java.ts"
import { nodeDirectoryOf, rack, singleDataCenter, stateFileOf } from "./layout.ts"
import { isNodeProcess } from "./processes.ts"
import { type TlsFiles, tlsFilesOf } from "./tls.ts"

/**
 * One node as `cluster.json` records it.
 *
 * @since 0.1.0
 * @category models
 */
export const NodeRecord = Schema.Struct({
  index: Schema.Int,
  address: Schema.String,
  // The defaults read the files of clusters recorded before data centers could be chosen.
  dataCenter: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed(singleDataCenter))),
  rack: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed(rack))),
  jmxPort: Schema.Int,
  token: Schema.String,
  /** Founding members start without bootstrapping and are the seeds; added nodes bootstrap. */
  founding: Schema.Boolean,
  pid: Schema.NullOr(Schema.Int),
  decommissioned: Schema.Boolean
})

/**
 * One node as `cluster.json` records it.
 *
 * @since 0.1.0
 * @category models
 */
export type NodeRecord = typeof NodeRecord.Type

/**
 * A cluster as `cluster.json` records it.
 *
 * @since 0.1.0
 * @category models
 */
export const ClusterState = Schema.Struct({
  name: Schema.String,
  version: Schema.String,
  // The defaults read the files of clusters recorded before versions could be chosen.
  libDirectory: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed(libDirectoryOf(undefined)))),
  java: Schema.String,
  javaMajor: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(17))),
  firstAddress: Schema.Int,
  heapMb: Schema.Int,
  tls: Schema.Literals(["none", "server", "mutual"]),
  auth: Schema.Boolean,
  nodes: Schema.Array(NodeRecord)
})

/**
 * A cluster as `cluster.json` records it.
 *
 * @since 0.1.0
 * @category models
 */
export type ClusterState = typeof ClusterState.Type

/**
 * `cluster.json`: the recorded state as indented JSON.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ClusterStateJson = Schema.fromJsonString(ClusterState, { space: 2 })

const encodeState = Schema.encodeSync(ClusterStateJson)

/**
 * A cluster while the manager operates it: where it lives, how its JVMs run, and its recorded state.
 *
 * @since 0.1.0
 * @category models
 */
export interface Runtime {
  readonly directory: string
  readonly jvmFlags: ReadonlyArray<string>
  readonly jars: Jars
  readonly startTimeout: Duration.Duration
  readonly tls: TlsFiles | undefined
  readonly state: Ref.Ref<ClusterState>
  /** Serialises the operations that change the cluster, so that two of them never race on one node. */
  readonly lock: Semaphore.Semaphore
}

/**
 * The runtime of a recorded cluster.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRuntime = (
  directory: string,
  state: ClusterState,
  jars: Jars,
  startTimeout: Duration.Duration
): Effect.Effect<Runtime> =>
  Effect.gen(function* () {
    return {
      directory,
      jvmFlags: readJvmFlags(state.javaMajor),
      jars,
      startTimeout,
      tls: state.tls === "none" ? undefined : tlsFilesOf(directory),
      state: yield* Ref.make(state),
      lock: yield* Semaphore.make(1)
    }
  })

/**
 * Writes the recorded state to `cluster.json`.
 *
 * @since 0.1.0
 * @category state
 */
export const saveState = (runtime: Runtime) =>
  Effect.flatMap(Ref.get(runtime.state), (state) =>
    Effect.try({
      try: () => Fs.writeFileSync(stateFileOf(runtime.directory), `${encodeState(state)}\n`),
      catch: (cause) =>
        failure("FileSystemFailed", `could not write ${stateFileOf(runtime.directory)}: ${firstLineOf(cause)}`)
    })
  )

/**
 * Changes the record of node `index`.
 *
 * @since 0.1.0
 * @category state
 */
export const updateNode = (runtime: Runtime, index: number, change: Partial<NodeRecord>) =>
  Ref.update(runtime.state, (state) => ({
    ...state,
    nodes: state.nodes.map((node) => (node.index === index ? { ...node, ...change } : node))
  }))

/**
 * The record of node `index`; fails with InvalidOption, naming the valid range, when there is none.
 *
 * @since 0.1.0
 * @category state
 */
export const nodeRecord = Effect.fnUntraced(function* (runtime: Runtime, index: number) {
  const state = yield* Ref.get(runtime.state)
  const node = state.nodes.find((candidate) => candidate.index === index)
  if (node === undefined) {
    return yield* failure(
      "InvalidOption",
      `cluster ${state.name} has no node ${index}: choose one of 1..${state.nodes.length}`
    )
  }
  return node
})

/**
 * Whether the node's recorded JVM is alive.
 *
 * @since 0.1.0
 * @category state
 */
export const isRunning = (runtime: Runtime, node: NodeRecord): boolean =>
  node.pid !== null && isNodeProcess(node.pid, nodeDirectoryOf(runtime.directory, node.index))

/**
 * The record and pid of node `index`; fails with InvalidOption when it is not running, saying that `action` needs it
 * to.
 *
 * @since 0.1.0
 * @category state
 */
export const runningRecord = Effect.fnUntraced(function* (runtime: Runtime, index: number, action: string) {
  const node = yield* nodeRecord(runtime, index)
  if (!isRunning(runtime, node) || node.pid === null) {
    return yield* failure("InvalidOption", `node ${index} is not running: start it before you ${action} it`)
  }
  return { node, pid: node.pid }
})
