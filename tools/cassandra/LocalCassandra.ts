/**
 * Runs real Apache Cassandra 5.0 nodes on this machine, without Docker, for the test suites and for development.
 *
 * The jars come from Maven Central (`cassandra-all` and its dependencies, see `pom.xml`); each node is one Java 17 JVM
 * listening on its own loopback address 127.0.0.k (CQL 9042, storage 7000, JMX 7000 + 100·k on 127.0.0.1), with its
 * files under `.cache/cassandra/clusters/<name>/node<i>`. A started cluster is a scoped resource: closing the scope
 * stops every node it started. The state is also written to `cluster.json`, so that a later process (the CLI) can
 * find and operate the same nodes with {@link attach}.
 *
 * @since 0.1.0
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import type { Readable } from "node:stream"
import * as Cassandra from "cassandra-driver"
import { Duration, Effect, Redacted, Ref, Schedule, Schema, type Scope, Semaphore } from "effect"

// ---------------------------------------------------------------------------------------------------------------------
// Public model
// ---------------------------------------------------------------------------------------------------------------------

/**
 * What went wrong in a local Cassandra operation.
 *
 * @since 0.1.0
 * @category errors
 */
export const LocalCassandraErrorReason = Schema.Literals([
  "InvalidOption",
  "ClusterNotFound",
  "PortInUse",
  "JavaMissing",
  "MavenMissing",
  "MavenFailed",
  "TlsSetupFailed",
  "FileSystemFailed",
  "NodeFailed",
  "NodetoolFailed",
  "FirewallUnavailable",
  "Timeout"
])

/**
 * What went wrong in a local Cassandra operation.
 *
 * @since 0.1.0
 * @category errors
 */
export type LocalCassandraErrorReason = typeof LocalCassandraErrorReason.Type

/**
 * A failure of the local Cassandra manager; `message` is one line saying what is wrong and what to do about it.
 *
 * @since 0.1.0
 * @category errors
 */
export class LocalCassandraError extends Schema.TaggedError<LocalCassandraError>(
  "effect-cassandra/tools/LocalCassandraError"
)("LocalCassandraError", {
  reason: LocalCassandraErrorReason,
  message: Schema.String,
  /** The last lines of the node's logs, when a node failed. */
  logTail: Schema.optional(Schema.String)
}) {}

/**
 * How to start a local cluster.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClusterOptions {
  /** Number of nodes, started one after another; default 1. */
  readonly nodes?: number
  /** Last octet of node 1's address; node i listens on 127.0.0.(firstAddress + i - 1). Default 1. */
  readonly firstAddress?: number
  /** The cluster's directory is `.cache/cassandra/clusters/<name>`; default "local". */
  readonly name?: string
  /**
   * Require TLS from clients (no plaintext); with `clientCertificate`, clients must also present a certificate.
   * `serverCertificate` makes the node present a flawed certificate, to see clients refuse it: an expired one, or
   * one that names only the host `elsewhere.invalid`. Default "valid".
   */
  readonly tls?:
    | false
    | { readonly clientCertificate: boolean; readonly serverCertificate?: "valid" | "expired" | "otherHost" }
  /** Require a password login (PasswordAuthenticator, CassandraAuthorizer); the superuser is cassandra/cassandra. */
  readonly auth?: boolean
  /** Heap of each node in MiB; default 512. */
  readonly heapMb?: number
  /** How long one node may take to answer CQL after its JVM starts; default 180 seconds. */
  readonly startTimeout?: Duration.Input
}

/**
 * One node of a local cluster, as recorded by the manager.
 *
 * @since 0.1.0
 * @category models
 */
export interface NodeInfo {
  /** 1-based position in the cluster. */
  readonly index: number
  readonly address: string
  /** The node's JMX port on 127.0.0.1, used by nodetool. */
  readonly jmxPort: number
  /** The JVM's process id while it runs. */
  readonly pid: number | undefined
  /** Whether the node's JVM process is alive. */
  readonly running: boolean
  /** Whether the node's JVM is frozen by {@link Cluster.pauseNode} (stopped by SIGSTOP, sockets open). */
  readonly paused: boolean
  /** Whether the node left the ring through `decommissionNode`. */
  readonly decommissioned: boolean
}

/**
 * The observed health of one node.
 *
 * @since 0.1.0
 * @category models
 */
export interface NodeStatus extends NodeInfo {
  /** Whether the node answers a CQL query. */
  readonly cql: boolean
  /** The node's state in `nodetool status` of a running node ("UN", "DN", "UJ", "UL"…); undefined when none could say. */
  readonly ring: string | undefined
}

/**
 * A running local cluster and the operations that change it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Cluster {
  readonly name: string
  /** The cluster's directory (node data, logs, TLS material, `cluster.json`). */
  readonly directory: string
  /** The Cassandra release, e.g. "5.0.9". */
  readonly version: string
  readonly localDataCenter: "datacenter1"
  /** The addresses of the nodes the cluster was started with. */
  readonly contactPoints: ReadonlyArray<string>
  /** The superuser login, when the cluster requires one. */
  readonly credentials?: { readonly username: string; readonly password: Redacted.Redacted }
  /** PEM files for clients, when the cluster requires TLS. */
  readonly tls?: { readonly caFile: string; readonly clientCertFile?: string; readonly clientKeyFile?: string }
  readonly nodes: Effect.Effect<ReadonlyArray<NodeInfo>>
  /** Stops a node gracefully (SIGTERM), then forcibly (SIGKILL) if it does not exit in time. */
  readonly stopNode: (index: number) => Effect.Effect<void, LocalCassandraError>
  /** Kills a node at once (SIGKILL), as a crash would. */
  readonly killNode: (index: number) => Effect.Effect<void, LocalCassandraError>
  /**
   * Freezes a node (SIGSTOP), as a long GC pause or a frozen VM would: its sockets stay open and its kernel still
   * accepts connections, but nothing answers until {@link resumeNode}.
   */
  readonly pauseNode: (index: number) => Effect.Effect<void, LocalCassandraError>
  /** Lets a frozen node run again (SIGCONT). */
  readonly resumeNode: (index: number) => Effect.Effect<void, LocalCassandraError>
  /**
   * Cuts a node off the network, as a partition would: firewall rules drop every packet to and from its address,
   * clients' and other nodes' alike, without closing any connection. Needs root and iptables; fails with the reason
   * FirewallUnavailable, saying why, where the machine does not allow it.
   */
  readonly cutOffNode: (index: number) => Effect.Effect<void, LocalCassandraError>
  /** Removes the rules of {@link cutOffNode}, so that the node's packets flow again. */
  readonly reconnectNode: (index: number) => Effect.Effect<void, LocalCassandraError>
  /** Starts a stopped or killed node again and waits until it answers CQL and the others see it. */
  readonly startNode: (index: number) => Effect.Effect<void, LocalCassandraError>
  /**
   * Starts every stopped or killed node (not the decommissioned ones) at once, as after a whole-cluster outage, and
   * waits until they all answer CQL and see each other.
   */
  readonly startStopped: Effect.Effect<void, LocalCassandraError>
  /** Bootstraps one more node (token in the largest gap of the ring) and waits until it is ready. */
  readonly addNode: () => Effect.Effect<NodeInfo, LocalCassandraError>
  /** Streams a node's data away (`nodetool decommission`, forced only when the replication needs it) and stops it. */
  readonly decommissionNode: (index: number) => Effect.Effect<void, LocalCassandraError>
  /** Runs nodetool against a node and returns its output. */
  readonly nodetool: (index: number, args: ReadonlyArray<string>) => Effect.Effect<string, LocalCassandraError>
  readonly status: Effect.Effect<ReadonlyArray<NodeStatus>, LocalCassandraError>
  /**
   * Waits until at least `count` nodes (default: every node whose process runs) are running, and each running node
   * answers CQL and sees every other running node as a normal ring member.
   */
  readonly waitUntilUp: (count?: number) => Effect.Effect<void, LocalCassandraError>
  /** Stops every node; this is also what closing the scope of {@link start} does. */
  readonly stop: Effect.Effect<void, LocalCassandraError>
}

// ---------------------------------------------------------------------------------------------------------------------
// Locations and constants
// ---------------------------------------------------------------------------------------------------------------------

const toolDirectory = import.meta.dirname
const cacheDirectory = Path.resolve(toolDirectory, "..", "..", ".cache", "cassandra")
const libDirectory = Path.join(cacheDirectory, "lib")
// Written only after Maven finished, so that an interrupted copy is completed on the next start.
const libCompleteMarker = Path.join(libDirectory, ".complete")
const localDataCenter = "datacenter1"
const nativePort = 9042
const storagePort = 7000
const daemonClass = "org.apache.cassandra.service.CassandraDaemon"
const superuser = { username: "cassandra", password: "cassandra" } as const
const maxSeeds = 3
const stopGracePeriod = Duration.seconds(90)
const killGracePeriod = Duration.seconds(15)
const probeAttemptTimeout = Duration.seconds(15)
const probeInterval = Duration.millis(500)
const processPollInterval = Duration.millis(100)

/**
 * The directory of the cluster named `name`: one `node<i>` directory per node (data, logs, pid file), the TLS
 * material and `cluster.json`.
 *
 * @since 0.1.0
 * @category utils
 */
export const clusterDirectory = (name: string): string => Path.join(cacheDirectory, "clusters", name)
const nodeDirectoryOf = (directory: string, index: number) => Path.join(directory, `node${index}`)
const stateFileOf = (directory: string) => Path.join(directory, "cluster.json")
const jmxPortOf = (octet: number) => 7000 + 100 * octet
const addressOf = (octet: number) => `127.0.0.${octet}`
// The exact argument that tells a JVM of ours apart from any other process, even after a pid was reused.
const configArgumentOf = (nodeDirectory: string) =>
  `-Dcassandra.config=file://${Path.join(nodeDirectory, "conf", "cassandra.yaml")}`

const failure = (reason: LocalCassandraErrorReason, message: string, logTail?: string) =>
  new LocalCassandraError(logTail === undefined ? { reason, message } : { reason, message, logTail })

const firstLineOf = (cause: unknown): string => {
  const text = cause instanceof Error ? cause.message : String(cause)
  return text.split("\n")[0]!.trim()
}

// ---------------------------------------------------------------------------------------------------------------------
// Recorded state (cluster.json)
// ---------------------------------------------------------------------------------------------------------------------

const NodeRecord = Schema.Struct({
  index: Schema.Int,
  address: Schema.String,
  jmxPort: Schema.Int,
  token: Schema.String,
  /** Founding members start without bootstrapping and are the seeds; added nodes bootstrap. */
  founding: Schema.Boolean,
  pid: Schema.NullOr(Schema.Int),
  decommissioned: Schema.Boolean
})
type NodeRecord = typeof NodeRecord.Type

const ClusterState = Schema.Struct({
  name: Schema.String,
  version: Schema.String,
  java: Schema.String,
  firstAddress: Schema.Int,
  heapMb: Schema.Int,
  tls: Schema.Literals(["none", "server", "mutual"]),
  auth: Schema.Boolean,
  nodes: Schema.Array(NodeRecord)
})
type ClusterState = typeof ClusterState.Type

const ClusterStateJson = Schema.fromJsonString(ClusterState, { space: 2 })
const encodeState = Schema.encodeSync(ClusterStateJson)

// ---------------------------------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------------------------------

interface CommandResult {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs a command to completion in its own process group, so that an interruption kills it with everything it started
 * (Maven, for one, runs a JVM under a shell script).
 */
const runCommand = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string } = {}
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
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
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

const lastLine = (text: string, pattern?: RegExp): string | undefined =>
  text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && (pattern === undefined || pattern.test(line)))
    .at(-1)

const commandLineOf = (pid: number): ReadonlyArray<string> => {
  try {
    return Fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
  } catch {
    return []
  }
}

/** Whether `pid` is a live Cassandra JVM of the node in `nodeDirectory` (an exited, unreaped JVM has no command line). */
const isNodeProcess = (pid: number, nodeDirectory: string): boolean => {
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

/** Whether `pid` is stopped by a signal (state T). */
const isStopped = (pid: number): boolean => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("T")
  } catch {
    return false
  }
}

const signalGroup = (pid: number | undefined, signal: NodeJS.Signals): void => {
  if (pid === undefined) return
  try {
    // Every JVM and helper command leads its own process group (spawned detached), so this reaches its children too.
    process.kill(-pid, signal)
  } catch {
    // Already gone.
  }
}

/** Re-checks `condition` until it holds; false when it still does not hold after `within`. */
const pollUntil = (condition: () => boolean, within: Duration.Input): Effect.Effect<boolean> =>
  Effect.suspend(() => (condition() ? Effect.succeed(true) : Effect.fail(false))).pipe(
    Effect.retry(Schedule.spaced(processPollInterval).pipe(Schedule.upTo({ duration: within }))),
    Effect.orElseSucceed(() => false)
  )

const terminate = Effect.fnUntraced(function* (pid: number, nodeDirectory: string, graceful: boolean) {
  if (!isNodeProcess(pid, nodeDirectory)) {
    // Either long gone, or exiting already (its command line is gone first): then wait until its sockets are closed.
    if (commandLineOf(pid).join("") === "") yield* pollUntil(() => hasExited(pid), killGracePeriod)
    return
  }
  // A frozen JVM only acts on SIGTERM once it runs again.
  signalGroup(pid, "SIGCONT")
  if (graceful) {
    signalGroup(pid, "SIGTERM")
    if (yield* pollUntil(() => hasExited(pid), stopGracePeriod)) return
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

const ensurePortsFree = Effect.fnUntraced(function* (node: NodeRecord) {
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

// ---------------------------------------------------------------------------------------------------------------------
// Java, jars, TLS material
// ---------------------------------------------------------------------------------------------------------------------

const javaMissingHint = "install openjdk-17-jdk-headless or set CASSANDRA_JAVA_HOME to a Java 17 JDK"

const javaMajorVersion = (javaHome: string): Effect.Effect<string | undefined> =>
  runCommand(Path.join(javaHome, "bin", "java"), ["-version"]).pipe(
    Effect.map((result) => /version "(\d+)/.exec(result.stderr)?.[1]),
    Effect.orElseSucceed(() => undefined)
  )

/** Finds Java 17: CASSANDRA_JAVA_HOME, else JAVA_HOME when it is 17, else /usr/lib/jvm/*17*. Cassandra 5.0 cannot run on 24+. */
const resolveJava = Effect.fnUntraced(function* () {
  const explicit = process.env.CASSANDRA_JAVA_HOME
  if (explicit !== undefined && explicit !== "") {
    const major = yield* javaMajorVersion(explicit)
    if (major === "17") return Path.join(explicit, "bin", "java")
    const found = major === undefined ? "has no working bin/java" : `is Java ${major}`
    return yield* failure("JavaMissing", `CASSANDRA_JAVA_HOME=${explicit} ${found}: ${javaMissingHint}`)
  }
  const installed = Fs.existsSync("/usr/lib/jvm")
    ? Fs.readdirSync("/usr/lib/jvm")
        .filter((entry) => entry.includes("17"))
        .sort()
        .map((entry) => Path.join("/usr/lib/jvm", entry))
        .filter((home) => Fs.existsSync(Path.join(home, "bin", "java")))
    : []
  const candidates = [process.env.JAVA_HOME, ...installed].filter((home): home is string => !!home)
  for (const home of candidates) {
    if ((yield* javaMajorVersion(home)) === "17") return Path.join(home, "bin", "java")
  }
  return yield* failure("JavaMissing", `Java 17 was not found: ${javaMissingHint}`)
})

interface Jars {
  readonly version: string
  readonly jamm: string
}

const readJars = Effect.fnUntraced(function* () {
  const files = Fs.readdirSync(libDirectory)
  const versions = files.flatMap((file) => /^cassandra-all-(.+)\.jar$/.exec(file)?.[1] ?? [])
  const jamm = files.find((file) => /^jamm-.*\.jar$/.test(file))
  if (versions.length !== 1 || jamm === undefined) {
    return yield* failure(
      "MavenFailed",
      `${libDirectory} holds ${versions.length} cassandra-all jars and ${jamm === undefined ? "no" : "a"} jamm jar: delete the directory and start again`
    )
  }
  return { version: versions[0]!, jamm: Path.join(libDirectory, jamm) } satisfies Jars
})

/** Copies cassandra-all and its runtime dependencies from Maven into .cache/cassandra/lib, once. */
const ensureJars = Effect.fnUntraced(function* () {
  if (Fs.existsSync(libCompleteMarker)) return yield* readJars()
  yield* Effect.logInfo(`fetching Apache Cassandra with Maven into ${libDirectory}`)
  Fs.mkdirSync(libDirectory, { recursive: true })
  const result = yield* runCommand("mvn", [
    "-B",
    "-q",
    "-f",
    Path.join(toolDirectory, "pom.xml"),
    "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
    "-DincludeScope=runtime",
    `-DoutputDirectory=${libDirectory}`
  ]).pipe(
    Effect.mapError((error) =>
      error.code === "ENOENT"
        ? failure("MavenMissing", "Maven (mvn) was not found: install maven (apt-get install maven)")
        : failure("MavenFailed", `Maven could not run: ${firstLineOf(error)}`)
    )
  )
  if (result.exitCode !== 0) {
    const output = `${result.stdout}\n${result.stderr}`
    const reason = lastLine(output, /\[ERROR\]/) ?? lastLine(output) ?? `exit code ${result.exitCode}`
    return yield* failure(
      "MavenFailed",
      `Maven could not fetch Cassandra (${reason.replace(/^\[ERROR\]\s*/, "")}): check access to Maven Central or ~/.m2/settings.xml`
    )
  }
  Fs.writeFileSync(libCompleteMarker, `${new Date().toISOString()}\n`)
  return yield* readJars()
})

interface TlsFiles {
  readonly caFile: string
  /** The server's private key followed by its certificate chain: Cassandra's PEM keystore. */
  readonly keystoreFile: string
  readonly clientCertFile: string
  readonly clientKeyFile: string
}

const tlsFilesOf = (directory: string): TlsFiles => {
  const tls = Path.join(directory, "tls")
  return {
    caFile: Path.join(tls, "ca.pem"),
    keystoreFile: Path.join(tls, "server-keystore.pem"),
    clientCertFile: Path.join(tls, "client.pem"),
    clientKeyFile: Path.join(tls, "client.key")
  }
}

/**
 * A throw-away CA, a server certificate valid for every 127.0.0.x address (or flawed as asked), and a client
 * certificate, all PEM.
 */
const generateTls = Effect.fnUntraced(function* (
  clusterPath: string,
  serverCertificate: "valid" | "expired" | "otherHost"
) {
  const files = tlsFilesOf(clusterPath)
  const directory = Path.dirname(files.caFile)
  Fs.mkdirSync(directory, { recursive: true })
  // The arguments are the space-separated `words`, then `subject` (which holds spaces) when given.
  const openssl = Effect.fnUntraced(function* (words: string, subject?: string) {
    const args = [...words.split(" "), ...(subject === undefined ? [] : [subject])]
    const result = yield* runCommand("openssl", args, { cwd: directory }).pipe(
      Effect.mapError((error) =>
        failure(
          "TlsSetupFailed",
          error.code === "ENOENT"
            ? "openssl was not found: install openssl (apt-get install openssl)"
            : `openssl could not run: ${firstLineOf(error)}`
        )
      )
    )
    if (result.exitCode !== 0) {
      return yield* failure(
        "TlsSetupFailed",
        `openssl ${args[0]} failed (${lastLine(result.stderr) ?? result.exitCode}): check the openssl installation`
      )
    }
  })
  const serverNames =
    serverCertificate === "otherHost"
      ? "DNS:elsewhere.invalid"
      : ["DNS:localhost", ...Array.from({ length: 254 }, (_, octet) => `IP:${addressOf(octet + 1)}`)].join(",")
  Fs.writeFileSync(
    Path.join(directory, "server.ext"),
    `subjectAltName=${serverNames}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n`
  )
  Fs.writeFileSync(
    Path.join(directory, "client.ext"),
    "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
  )
  yield* openssl(
    "req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout ca.key -out ca.pem -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -subj",
    "/CN=effect-cassandra local test CA"
  )
  // OpenSSL 3.0 has no option for a start date; a negative validity ends the certificate a day before it starts.
  const serverDays = serverCertificate === "expired" ? -1 : 3650
  for (const [name, subject, days] of [
    ["server", "/CN=localhost", serverDays],
    ["client", "/CN=cassandra", 3650]
  ] as const) {
    yield* openssl(`req -newkey rsa:2048 -nodes -keyout ${name}.key -out ${name}.csr -subj`, subject)
    yield* openssl(
      `x509 -req -in ${name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days ${days} -extfile ${name}.ext -out ${name}.pem`
    )
  }
  Fs.writeFileSync(
    files.keystoreFile,
    ["server.key", "server.pem", "ca.pem"].map((file) => Fs.readFileSync(Path.join(directory, file), "utf8")).join("")
  )
  return files
})

// ---------------------------------------------------------------------------------------------------------------------
// The cluster runtime
// ---------------------------------------------------------------------------------------------------------------------

interface Runtime {
  readonly directory: string
  readonly jvmFlags: ReadonlyArray<string>
  readonly jamm: string
  readonly startTimeout: Duration.Duration
  readonly tls: TlsFiles | undefined
  readonly state: Ref.Ref<ClusterState>
  /** Serialises the operations that change the cluster, so that two of them never race on one node. */
  readonly lock: Semaphore.Semaphore
}

const readJvmFlags = (): ReadonlyArray<string> =>
  Fs.readFileSync(Path.join(toolDirectory, "jvm17.flags"), "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith("#"))

const saveState = (runtime: Runtime) =>
  Effect.flatMap(Ref.get(runtime.state), (state) =>
    Effect.try({
      try: () => Fs.writeFileSync(stateFileOf(runtime.directory), `${encodeState(state)}\n`),
      catch: (cause) =>
        failure("FileSystemFailed", `could not write ${stateFileOf(runtime.directory)}: ${firstLineOf(cause)}`)
    })
  )

const updateNode = (runtime: Runtime, index: number, change: Partial<NodeRecord>) =>
  Ref.update(runtime.state, (state) => ({
    ...state,
    nodes: state.nodes.map((node) => (node.index === index ? { ...node, ...change } : node))
  }))

const nodeRecord = Effect.fnUntraced(function* (runtime: Runtime, index: number) {
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

const isRunning = (runtime: Runtime, node: NodeRecord): boolean =>
  node.pid !== null && isNodeProcess(node.pid, nodeDirectoryOf(runtime.directory, node.index))

const cassandraYaml = (runtime: Runtime, state: ClusterState, node: NodeRecord): string => {
  const directory = nodeDirectoryOf(runtime.directory, node.index)
  const seeds = state.nodes
    .filter((candidate) => candidate.founding)
    .slice(0, maxSeeds)
    .map((seed) => `${seed.address}:${storagePort}`)
    .join(",")
  const lines = [
    `cluster_name: '${state.name}'`,
    "num_tokens: 1",
    `initial_token: ${node.token}`,
    "partitioner: org.apache.cassandra.dht.Murmur3Partitioner",
    // SimpleSnitch puts every node in datacenter1 / rack1.
    "endpoint_snitch: SimpleSnitch",
    "seed_provider:",
    "  - class_name: org.apache.cassandra.locator.SimpleSeedProvider",
    "    parameters:",
    `      - seeds: "${seeds}"`,
    `listen_address: ${node.address}`,
    `rpc_address: ${node.address}`,
    `storage_port: ${storagePort}`,
    `native_transport_port: ${nativePort}`,
    "start_native_transport: true",
    `auto_bootstrap: ${!node.founding}`,
    `data_file_directories: [ ${Path.join(directory, "data")} ]`,
    `commitlog_directory: ${Path.join(directory, "commitlog")}`,
    `saved_caches_directory: ${Path.join(directory, "saved_caches")}`,
    `hints_directory: ${Path.join(directory, "hints")}`,
    `cdc_raw_directory: ${Path.join(directory, "cdc_raw")}`,
    "commitlog_sync: periodic",
    "commitlog_sync_period: 10000ms",
    `authenticator: ${state.auth ? "PasswordAuthenticator" : "AllowAllAuthenticator"}`,
    `authorizer: ${state.auth ? "CassandraAuthorizer" : "AllowAllAuthorizer"}`,
    "role_manager: CassandraRoleManager",
    // The features the driver's metadata API can describe, so that tests can create them.
    "materialized_views_enabled: true",
    "user_defined_functions_enabled: true",
    // Small-machine tuning: a 2-core box runs several nodes.
    "auto_snapshot: false",
    "concurrent_reads: 4",
    "concurrent_writes: 4",
    "concurrent_counter_writes: 4",
    "concurrent_compactors: 1",
    "memtable_flush_writers: 1",
    "compaction_throughput: 0MiB/s"
  ]
  if (runtime.tls !== undefined) {
    const mutual = state.tls === "mutual"
    lines.push(
      "client_encryption_options:",
      "  enabled: true",
      "  optional: false",
      "  ssl_context_factory:",
      "    class_name: org.apache.cassandra.security.PEMBasedSslContextFactory",
      `  keystore: ${runtime.tls.keystoreFile}`,
      `  require_client_auth: ${mutual}`,
      ...(mutual ? [`  truststore: ${runtime.tls.caFile}`] : [])
    )
  }
  return `${lines.join("\n")}\n`
}

const nodeJvmArguments = (runtime: Runtime, state: ClusterState, node: NodeRecord): ReadonlyArray<string> => {
  const directory = nodeDirectoryOf(runtime.directory, node.index)
  return [
    ...runtime.jvmFlags,
    `-javaagent:${runtime.jamm}`,
    `-Xms${state.heapMb}m`,
    `-Xmx${state.heapMb}m`,
    // SerialGC and C1 only: less CPU per JVM while several nodes share two cores.
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xss256k",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.net.preferIPv4Stack=true",
    `-Djava.io.tmpdir=${Path.join(directory, "tmp")}`,
    `-Dcassandra.jmx.local.port=${node.jmxPort}`,
    "-Dcom.sun.management.jmxremote.authenticate=false",
    configArgumentOf(directory),
    `-Dcassandra.storagedir=${directory}`,
    `-Dcassandra.logdir=${Path.join(directory, "logs")}`,
    `-Dlogback.configurationFile=file://${Path.join(toolDirectory, "logback-node.xml")}`,
    // Without it Cassandra closes stdout/stderr, and the JVM's own crash messages would be lost.
    "-Dcassandra-foreground=yes",
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    "-Dcassandra.superuser_setup_delay_ms=0",
    // Loopback gossip converges in well under a second; the 30 s default only slows bootstrap and decommission.
    "-Dcassandra.ring_delay_ms=5000",
    "-cp",
    `${libDirectory}/*`,
    daemonClass
  ]
}

const writeNodeFiles = (runtime: Runtime, node: NodeRecord) =>
  Effect.flatMap(Ref.get(runtime.state), (state) =>
    Effect.try({
      try: () => {
        const directory = nodeDirectoryOf(runtime.directory, node.index)
        for (const sub of ["conf", "logs", "tmp"]) Fs.mkdirSync(Path.join(directory, sub), { recursive: true })
        Fs.writeFileSync(Path.join(directory, "conf", "cassandra.yaml"), cassandraYaml(runtime, state, node))
      },
      catch: (cause) => failure("FileSystemFailed", `could not write node ${node.index}'s files: ${firstLineOf(cause)}`)
    })
  )

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

/** Starts the node's JVM, detached and logging to files, and records its pid before anything can interrupt. */
const spawnNode = (runtime: Runtime, node: NodeRecord) =>
  Effect.uninterruptible(
    Effect.gen(function* () {
      const state = yield* Ref.get(runtime.state)
      const directory = nodeDirectoryOf(runtime.directory, node.index)
      const child = yield* Effect.try({
        try: () => {
          const output = Fs.openSync(Path.join(directory, "logs", "stdout.log"), "a")
          try {
            // Detached, with files rather than pipes, so that a cluster started by the CLI outlives the CLI.
            return ChildProcess.spawn(state.java, nodeJvmArguments(runtime, state, node), {
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

// ---------------------------------------------------------------------------------------------------------------------
// CQL probes
// ---------------------------------------------------------------------------------------------------------------------

const probeClientOptions = (runtime: Runtime, state: ClusterState, address: string): Cassandra.ClientOptions => {
  const loadBalancing = Cassandra.policies.loadBalancing
  return {
    contactPoints: [address],
    localDataCenter,
    // Pinned to this one node: a probe must say whether *this* node answers, never fail over to another.
    policies: {
      loadBalancing: new loadBalancing.AllowListPolicy(new loadBalancing.DCAwareRoundRobinPolicy(localDataCenter), [
        `${address}:${nativePort}`
      ])
    },
    socketOptions: { connectTimeout: 5_000, readTimeout: 10_000 },
    isMetadataSyncEnabled: false,
    ...(state.auth
      ? { authProvider: new Cassandra.auth.PlainTextAuthProvider(superuser.username, superuser.password) }
      : {}),
    ...(runtime.tls === undefined
      ? {}
      : {
          sslOptions: {
            ca: [Fs.readFileSync(runtime.tls.caFile)],
            ...(state.tls === "mutual"
              ? { cert: Fs.readFileSync(runtime.tls.clientCertFile), key: Fs.readFileSync(runtime.tls.clientKeyFile) }
              : {})
          }
        })
  }
}

/** Runs `use` with a short-lived client connected to one node; fails with the driver's message. */
const withNodeClient = <A>(
  runtime: Runtime,
  address: string,
  use: (client: Cassandra.Client) => Promise<A>
): Effect.Effect<A, string> =>
  Effect.flatMap(Ref.get(runtime.state), (state) =>
    Effect.acquireUseRelease(
      Effect.sync(() => new Cassandra.Client(probeClientOptions(runtime, state, address))),
      (client) =>
        Effect.tryPromise({
          try: async () => {
            await client.connect()
            return await use(client)
          },
          catch: firstLineOf
        }).pipe(
          Effect.timeoutOrElse({
            duration: probeAttemptTimeout,
            orElse: () => Effect.fail(`no answer within ${Duration.format(probeAttemptTimeout)}`)
          })
        ),
      (client) => Effect.promise(() => client.shutdown().catch(() => undefined))
    )
  )

const answersCql = (runtime: Runtime, address: string) =>
  withNodeClient(runtime, address, (client) => client.execute("SELECT release_version FROM system.local"))

/** Retries `attempt` until it succeeds; after `within` the last attempt's message becomes a Timeout failure. */
const retryUntil = <A>(attempt: Effect.Effect<A, string>, within: Duration.Duration, what: string) =>
  attempt.pipe(
    Effect.retry(Schedule.spaced(probeInterval).pipe(Schedule.upTo({ duration: within }))),
    Effect.mapError((last) =>
      failure(
        "Timeout",
        `${what} within ${Duration.format(within)} (last answer: ${last}): look at the node logs under ${cacheDirectory}/clusters`
      )
    )
  )

const awaitNodeReady = (runtime: Runtime, node: NodeRecord, exited: Effect.Effect<never, LocalCassandraError>) =>
  Effect.raceFirst(
    retryUntil(
      answersCql(runtime, node.address),
      runtime.startTimeout,
      `node ${node.index} (${node.address}) did not answer CQL`
    ),
    exited
  )

/** One check of `waitUntilUp`: fails with what is still missing. */
const clusterConverged = (runtime: Runtime, count: number | undefined) =>
  Effect.gen(function* () {
    const state = yield* Ref.get(runtime.state)
    const running = state.nodes.filter((node) => !node.decommissioned && isRunning(runtime, node))
    if (count !== undefined && running.length < count) {
      return yield* Effect.fail(`${running.length} of ${count} nodes are running`)
    }
    for (const node of running) {
      const view = yield* withNodeClient(runtime, node.address, async (client) => {
        const peers = await client.execute("SELECT rpc_address FROM system.peers")
        const gossip = await client.execute("SELECT address, status_with_port, rpc_ready FROM system_views.gossip_info")
        return {
          peers: new Set(peers.rows.map((row) => String(row.rpc_address))),
          // A peer that shut down gossips "shutdown"; one that is joining or leaving, BOOT or LEAVING.
          normal: new Set(
            gossip.rows
              .filter((row) => String(row.status_with_port).startsWith("NORMAL") && row.rpc_ready === "true")
              .map((row) => String(row.address))
          )
        }
      })
      const missing = running.filter(
        (other) => other !== node && !(view.peers.has(other.address) && view.normal.has(other.address))
      )
      if (missing.length > 0) {
        return yield* Effect.fail(
          `node ${node.index} does not see ${missing.map((other) => other.address).join(", ")} as a normal peer yet`
        )
      }
    }
  })

const waitUntilUp = (runtime: Runtime, count?: number) =>
  retryUntil(clusterConverged(runtime, count), runtime.startTimeout, "the running nodes did not see each other")

// ---------------------------------------------------------------------------------------------------------------------
// Node operations
// ---------------------------------------------------------------------------------------------------------------------

const launchNode = Effect.fnUntraced(function* (runtime: Runtime, node: NodeRecord) {
  yield* ensurePortsFree(node)
  yield* Effect.logInfo(`starting node ${node.index} (${node.address})`)
  const { exited } = yield* spawnNode(runtime, node)
  yield* saveState(runtime)
  yield* awaitNodeReady(runtime, node, exited)
  yield* Effect.logInfo(`node ${node.index} (${node.address}) answers CQL`)
})

const stopRecordedNode = Effect.fnUntraced(function* (runtime: Runtime, node: NodeRecord, graceful: boolean) {
  yield* reconnectRecordedNode(runtime, node).pipe(Effect.ignore)
  if (node.pid !== null) {
    yield* terminate(node.pid, nodeDirectoryOf(runtime.directory, node.index), graceful)
  }
  yield* updateNode(runtime, node.index, { pid: null })
  yield* saveState(runtime)
})

const runningRecord = Effect.fnUntraced(function* (runtime: Runtime, index: number, action: string) {
  const node = yield* nodeRecord(runtime, index)
  if (!isRunning(runtime, node) || node.pid === null) {
    return yield* failure("InvalidOption", `node ${index} is not running: start it before you ${action} it`)
  }
  return { node, pid: node.pid }
})

const pauseNode = Effect.fnUntraced(function* (runtime: Runtime, index: number) {
  const { pid } = yield* runningRecord(runtime, index, "pause")
  signalGroup(pid, "SIGSTOP")
  if (!(yield* pollUntil(() => isStopped(pid), killGracePeriod))) {
    return yield* failure("NodeFailed", `node ${index} (pid ${pid}) did not stop on SIGSTOP: look at ps -o stat ${pid}`)
  }
})

const resumeNode = Effect.fnUntraced(function* (runtime: Runtime, index: number) {
  const { pid } = yield* runningRecord(runtime, index, "resume")
  signalGroup(pid, "SIGCONT")
  if (!(yield* pollUntil(() => !isStopped(pid), killGracePeriod))) {
    return yield* failure("NodeFailed", `node ${index} (pid ${pid}) did not run on SIGCONT: look at ps -o stat ${pid}`)
  }
})

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

const cutOffNode = Effect.fnUntraced(function* (runtime: Runtime, index: number) {
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

/** Deletes the node's rules, each as often as it was added; a machine without iptables has none to delete. */
const reconnectRecordedNode = (runtime: Runtime, node: NodeRecord) =>
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

const stopAll = (runtime: Runtime) =>
  Effect.gen(function* () {
    const state = yield* Ref.get(runtime.state)
    yield* Effect.forEach(state.nodes, (node) => stopRecordedNode(runtime, node, true), {
      concurrency: "unbounded",
      discard: true
    })
  })

const runNodetool = Effect.fnUntraced(function* (runtime: Runtime, node: NodeRecord, args: ReadonlyArray<string>) {
  const state = yield* Ref.get(runtime.state)
  const command = `nodetool ${args.join(" ")}`
  const result = yield* runCommand(state.java, [
    ...runtime.jvmFlags,
    "-Xmx128m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    `-Dlogback.configurationFile=file://${Path.join(toolDirectory, "logback-tools.xml")}`,
    "-cp",
    `${libDirectory}/*`,
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

const ringStates = (runtime: Runtime, node: NodeRecord) =>
  runNodetool(runtime, node, ["status"]).pipe(
    Effect.map((output) => {
      const states = new Map<string, string>()
      for (const match of output.matchAll(/^([UD][NLJM])\s+(\S+)/gm)) {
        states.set(match[2]!.replace(/:\d+$/, ""), match[1]!)
      }
      return states
    })
  )

const nodeInfoOf = (runtime: Runtime, node: NodeRecord): NodeInfo => {
  const running = isRunning(runtime, node)
  return {
    index: node.index,
    address: node.address,
    jmxPort: node.jmxPort,
    pid: running && node.pid !== null ? node.pid : undefined,
    running,
    paused: running && node.pid !== null && isStopped(node.pid),
    decommissioned: node.decommissioned
  }
}

const status = (runtime: Runtime) =>
  Effect.gen(function* () {
    const state = yield* Ref.get(runtime.state)
    const nodes = yield* Effect.forEach(
      state.nodes,
      (node) => {
        const info = nodeInfoOf(runtime, node)
        return (info.running ? answersCql(runtime, node.address) : Effect.fail("not running")).pipe(
          Effect.match({ onFailure: () => false, onSuccess: () => true }),
          Effect.map((cql) => ({ node, info, cql }))
        )
      },
      { concurrency: "unbounded" }
    )
    const observer = nodes.find((entry) => entry.cql)
    const ring =
      observer === undefined
        ? new Map<string, string>()
        : yield* ringStates(runtime, observer.node).pipe(Effect.orElseSucceed(() => new Map<string, string>()))
    return nodes.map(({ node, info, cql }): NodeStatus => ({ ...info, cql, ring: ring.get(node.address) }))
  })

/** The midpoint of the widest gap between consecutive tokens of the Murmur3 ring (which wraps around). */
const tokenInLargestGap = (tokens: ReadonlyArray<bigint>): bigint => {
  const ringSize = 2n ** 64n
  const minimum = -(2n ** 63n)
  const sorted = [...tokens].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const gaps = sorted.map((token, position) => ({
    start: token,
    width: (sorted[position + 1] ?? sorted[0]! + ringSize) - token
  }))
  const widest = gaps.reduce((best, gap) => (gap.width > best.width ? gap : best))
  const middle = widest.start + widest.width / 2n
  return ((((middle - minimum) % ringSize) + ringSize) % ringSize) + minimum
}

const balancedTokens = (count: number): ReadonlyArray<bigint> =>
  Array.from({ length: count }, (_, position) => -(2n ** 63n) + (2n ** 64n * BigInt(position)) / BigInt(count))

const startNode = Effect.fnUntraced(function* (runtime: Runtime, index: number) {
  const node = yield* nodeRecord(runtime, index)
  if (node.decommissioned) {
    return yield* failure("InvalidOption", `node ${index} was decommissioned: add a new node instead (add-node)`)
  }
  if (isRunning(runtime, node)) {
    return yield* failure("InvalidOption", `node ${index} is already running: stop it first (stop-node ${index})`)
  }
  yield* launchNode(runtime, node)
  yield* waitUntilUp(runtime)
})

const startStopped = Effect.fnUntraced(function* (runtime: Runtime) {
  const state = yield* Ref.get(runtime.state)
  const stopped = state.nodes.filter((node) => !node.decommissioned && !isRunning(runtime, node))
  yield* Effect.forEach(stopped, (node) => launchNode(runtime, node), { concurrency: "unbounded", discard: true })
  yield* waitUntilUp(runtime)
})

const addNode = Effect.fnUntraced(function* (runtime: Runtime) {
  const state = yield* Ref.get(runtime.state)
  const index = state.nodes.length + 1
  const octet = state.firstAddress + index - 1
  if (octet > 254) {
    return yield* failure("InvalidOption", `node ${index} would need 127.0.0.${octet}: start the cluster lower`)
  }
  const token = tokenInLargestGap(state.nodes.filter((node) => !node.decommissioned).map((node) => BigInt(node.token)))
  const node: NodeRecord = {
    index,
    address: addressOf(octet),
    jmxPort: jmxPortOf(octet),
    token: token.toString(),
    founding: false,
    pid: null,
    decommissioned: false
  }
  yield* ensurePortsFree(node)
  yield* Ref.update(runtime.state, (current) => ({ ...current, nodes: [...current.nodes, node] }))
  yield* writeNodeFiles(runtime, node)
  yield* launchNode(runtime, node)
  yield* waitUntilUp(runtime)
  return nodeInfoOf(runtime, yield* nodeRecord(runtime, index))
})

const decommissionNode = Effect.fnUntraced(function* (runtime: Runtime, index: number) {
  const node = yield* nodeRecord(runtime, index)
  if (!isRunning(runtime, node)) {
    return yield* failure("InvalidOption", `node ${index} is not running: start it before decommissioning it`)
  }
  yield* Effect.logInfo(`decommissioning node ${index} (${node.address})`)
  yield* runNodetool(runtime, node, ["decommission"]).pipe(
    Effect.catchIf(
      // Cassandra refuses when the remaining nodes cannot hold every replica and asks for a forced decommission.
      (error) => /forceful|--force/i.test(error.message),
      () => runNodetool(runtime, node, ["decommission", "--force"])
    )
  )
  yield* stopRecordedNode(runtime, node, true)
  yield* updateNode(runtime, index, { decommissioned: true })
  yield* saveState(runtime)
})

/** Gives system_auth one replica per node, so that logins keep working while any single node is down. */
const replicateAuth = Effect.fnUntraced(function* (runtime: Runtime) {
  const state = yield* Ref.get(runtime.state)
  const first = state.nodes[0]!
  yield* withNodeClient(runtime, first.address, (client) =>
    client.execute(
      `ALTER KEYSPACE system_auth WITH replication = {'class': 'SimpleStrategy', 'replication_factor': ${state.nodes.length}}`
    )
  ).pipe(
    Effect.mapError((message) =>
      failure("NodeFailed", `could not replicate system_auth: ${message}: look at ${runtime.directory}`)
    )
  )
  yield* runNodetool(runtime, first, ["repair", "-full", "system_auth"])
})

const makeCluster = (runtime: Runtime, state: ClusterState): Cluster => {
  const serialized = <A, E>(effect: Effect.Effect<A, E>) => runtime.lock.withPermits(1)(effect)
  const tls = runtime.tls
  return {
    name: state.name,
    directory: runtime.directory,
    version: state.version,
    localDataCenter,
    contactPoints: state.nodes.filter((node) => node.founding).map((node) => node.address),
    ...(state.auth
      ? { credentials: { username: superuser.username, password: Redacted.make(superuser.password) } }
      : {}),
    ...(tls === undefined
      ? {}
      : {
          tls:
            state.tls === "mutual"
              ? { caFile: tls.caFile, clientCertFile: tls.clientCertFile, clientKeyFile: tls.clientKeyFile }
              : { caFile: tls.caFile }
        }),
    nodes: Effect.map(Ref.get(runtime.state), (current) => current.nodes.map((node) => nodeInfoOf(runtime, node))),
    stopNode: (index) =>
      serialized(Effect.flatMap(nodeRecord(runtime, index), (node) => stopRecordedNode(runtime, node, true))),
    killNode: (index) =>
      serialized(Effect.flatMap(nodeRecord(runtime, index), (node) => stopRecordedNode(runtime, node, false))),
    pauseNode: (index) => serialized(pauseNode(runtime, index)),
    resumeNode: (index) => serialized(resumeNode(runtime, index)),
    cutOffNode: (index) => serialized(cutOffNode(runtime, index)),
    reconnectNode: (index) =>
      serialized(Effect.flatMap(nodeRecord(runtime, index), (node) => reconnectRecordedNode(runtime, node))),
    startNode: (index) => serialized(startNode(runtime, index)),
    startStopped: serialized(startStopped(runtime)),
    addNode: () => serialized(addNode(runtime)),
    decommissionNode: (index) => serialized(decommissionNode(runtime, index)),
    nodetool: (index, args) => Effect.flatMap(nodeRecord(runtime, index), (node) => runNodetool(runtime, node, args)),
    status: status(runtime),
    waitUntilUp: (count) => waitUntilUp(runtime, count),
    stop: serialized(stopAll(runtime))
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------------------------------

const isPositiveInteger = (value: number) => Number.isInteger(value) && value > 0

const validateName = (name: string) =>
  /^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$/.test(name)
    ? Effect.succeed(name)
    : Effect.fail(
        failure("InvalidOption", `invalid cluster name "${name}": use letters, digits, "-" and "_" (at most 48)`)
      )

const decodeStartTimeout = (input: Duration.Input = Duration.seconds(180)) => {
  const duration = Duration.fromInput(input)
  return duration._tag === "Some" && Duration.isPositive(duration.value)
    ? Effect.succeed(duration.value)
    : Effect.fail(failure("InvalidOption", 'invalid start timeout: use a positive duration such as "3 minutes"'))
}

const validateOptions = Effect.fnUntraced(function* (options: ClusterOptions) {
  const nodes = options.nodes ?? 1
  const firstAddress = options.firstAddress ?? 1
  const heapMb = options.heapMb ?? 512
  const name = yield* validateName(options.name ?? "local")
  if (!isPositiveInteger(nodes)) {
    return yield* failure("InvalidOption", `invalid node count ${nodes}: use a whole number of at least 1`)
  }
  if (!isPositiveInteger(firstAddress) || firstAddress + nodes - 1 > 254) {
    return yield* failure(
      "InvalidOption",
      `invalid first address ${firstAddress} for ${nodes} nodes: the nodes need 127.0.0.${firstAddress}..${firstAddress + nodes - 1} within 1..254`
    )
  }
  if (!isPositiveInteger(heapMb) || heapMb < 256) {
    return yield* failure("InvalidOption", `invalid heap of ${heapMb} MiB: use a whole number of at least 256`)
  }
  const startTimeout = yield* decodeStartTimeout(options.startTimeout)
  return { nodes, firstAddress, heapMb, name, startTimeout }
})

/** Kills the JVMs that the pid files of a previous, crashed run left behind. Only ours: checked by command line. */
const killLeftovers = Effect.fnUntraced(function* (directory: string) {
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

const makeRuntime = (
  directory: string,
  state: ClusterState,
  jamm: string,
  startTimeout: Duration.Duration
): Effect.Effect<Runtime> =>
  Effect.gen(function* () {
    return {
      directory,
      jvmFlags: readJvmFlags(),
      jamm,
      startTimeout,
      tls: state.tls === "none" ? undefined : tlsFilesOf(directory),
      state: yield* Ref.make(state),
      lock: yield* Semaphore.make(1)
    }
  })

/**
 * Starts a fresh local cluster (wiping any earlier one of the same name) and waits until every node is up; closing
 * the scope stops every node it started, also after a failure or an interruption halfway.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (options: ClusterOptions = {}): Effect.Effect<Cluster, LocalCassandraError, Scope.Scope> =>
  Effect.gen(function* () {
    const valid = yield* validateOptions(options)
    const java = yield* resolveJava()
    const jars = yield* ensureJars()
    const directory = clusterDirectory(valid.name)
    yield* killLeftovers(directory)
    const tokens = balancedTokens(valid.nodes)
    const nodes = tokens.map((token, position): NodeRecord => {
      const octet = valid.firstAddress + position
      return {
        index: position + 1,
        address: addressOf(octet),
        jmxPort: jmxPortOf(octet),
        token: token.toString(),
        founding: true,
        pid: null,
        decommissioned: false
      }
    })
    for (const node of nodes) yield* ensurePortsFree(node)
    yield* Effect.try({
      try: () => {
        Fs.rmSync(directory, { recursive: true, force: true })
        Fs.mkdirSync(directory, { recursive: true })
      },
      catch: (cause) => failure("FileSystemFailed", `could not reset ${directory}: ${firstLineOf(cause)}`)
    })
    const tls = options.tls
    if (tls) yield* generateTls(directory, tls.serverCertificate ?? "valid")
    const state: ClusterState = {
      name: valid.name,
      version: jars.version,
      java,
      firstAddress: valid.firstAddress,
      heapMb: valid.heapMb,
      tls: !tls ? "none" : tls.clientCertificate ? "mutual" : "server",
      auth: options.auth ?? false,
      nodes
    }
    // The finalizer is in place before the first JVM starts, and each pid is recorded as its JVM starts, so an
    // interruption at any point below leaves nothing running.
    const runtime = yield* Effect.acquireRelease(makeRuntime(directory, state, jars.jamm, valid.startTimeout), (r) =>
      stopAll(r).pipe(Effect.ignore)
    )
    yield* saveState(runtime)
    const launchedAt = Date.now()
    for (const node of nodes) {
      yield* writeNodeFiles(runtime, node)
      yield* launchNode(runtime, node)
    }
    yield* waitUntilUp(runtime)
    if (state.auth && nodes.length > 1) yield* replicateAuth(runtime)
    yield* Effect.logInfo(
      `cluster ${valid.name} (Cassandra ${jars.version}) is up on ${nodes.map((n) => n.address).join(", ")}, ` +
        `${nodes.length} node(s) started in ${((Date.now() - launchedAt) / 1000).toFixed(1)} s`
    )
    return makeCluster(runtime, state)
  }).pipe(Effect.annotateLogs({ cluster: options.name ?? "local" }))

/**
 * Finds a cluster that an earlier process started (from its `cluster.json`), to inspect or change it; nothing is
 * stopped when the caller finishes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const attach = (
  name = "local",
  options: { readonly startTimeout?: Duration.Input } = {}
): Effect.Effect<Cluster, LocalCassandraError> =>
  Effect.gen(function* () {
    yield* validateName(name)
    const directory = clusterDirectory(name)
    const text = yield* Effect.try({
      try: () => Fs.readFileSync(stateFileOf(directory), "utf8"),
      catch: () =>
        failure(
          "ClusterNotFound",
          `no cluster named ${name} was started here: start one (\`npm run cassandra -- start\`)`
        )
    })
    const state = yield* Schema.decodeUnknownEffect(ClusterStateJson)(text).pipe(
      Effect.mapError(() =>
        failure("ClusterNotFound", `${stateFileOf(directory)} is unreadable: start the cluster again`)
      )
    )
    const jars = yield* readJars()
    const startTimeout = yield* decodeStartTimeout(options.startTimeout)
    const runtime = yield* makeRuntime(directory, state, jars.jamm, startTimeout)
    return makeCluster(runtime, state)
  })
