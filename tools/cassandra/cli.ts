/**
 * The command line of the local Cassandra manager: `npm run cassandra -- <command>` (see `--help`).
 *
 * `start` leaves the nodes running after it exits (their state is in the cluster's `cluster.json`), so that the other
 * commands, run later, can find them; with `--foreground` it stops them on Ctrl-C instead. Bad input and environment
 * problems print one line, `cassandra: <what is wrong>: <what to do>`, and exit with status 1.
 *
 * @since 0.1.0
 */
import { parseArgs } from "node:util"
import { Cause, Effect, Exit, Fiber, Logger, Redacted, Scope } from "effect"
import * as LocalCassandra from "./LocalCassandra.ts"

const usage = `Usage: npm run cassandra -- <command> [options]

Runs Apache Cassandra nodes on 127.0.0.x with Java 17 (no Docker needed).

Commands:
  start [--nodes N] [--dcs D] [--version V] [--tls] [--mtls] [--auth] [--first-address K] [--heap-mb M] [--foreground]
                       start a fresh cluster (node i on 127.0.0.(K+i-1)) and leave it running;
                       --dcs D starts D data centers dc1..dcD of N nodes each (one seed per data center);
                       --version runs that cassandra-all release from Maven Central (default: newest 5.0.x);
                       --tls requires TLS from clients, --mtls also a client certificate,
                       --auth requires the login cassandra/cassandra, --foreground stops it on Ctrl-C
  status               show each node: address, data center/rack, pid, process, CQL, ring state
  stop                 stop every node of the cluster
  stop-node N          stop node N gracefully (SIGTERM)
  kill-node N          kill node N (SIGKILL)
  start-node N         start node N again and wait until it is up
  pause-node N         freeze node N (SIGSTOP): sockets stay open, nothing answers
  resume-node N        let a frozen node N run again (SIGCONT)
  cut-off N            drop every packet to and from node N (iptables; needs root)
  reconnect-node N     remove the rules of cut-off N
  add-node             bootstrap one more node
  decommission N       decommission node N and stop it
  nodetool N -- ARGS   run nodetool against node N

Every command takes --name NAME (default "local"): the cluster lives in .cache/cassandra/clusters/NAME.`

const commandOptions = {
  start: ["nodes", "dcs", "version", "tls", "mtls", "auth", "first-address", "heap-mb", "foreground", "name"],
  status: ["name"],
  stop: ["name"],
  "stop-node": ["name"],
  "kill-node": ["name"],
  "start-node": ["name"],
  "pause-node": ["name"],
  "resume-node": ["name"],
  "cut-off": ["name"],
  "reconnect-node": ["name"],
  "add-node": ["name"],
  decommission: ["name"],
  nodetool: ["name"]
} as const

type Command = keyof typeof commandOptions

const usageError = (what: string) =>
  new LocalCassandra.LocalCassandraError({
    reason: "InvalidOption",
    message: `${what}: see \`npm run cassandra -- --help\``
  })

const isCommand = (name: string): name is Command => Object.hasOwn(commandOptions, name)

const cliOptions = {
  nodes: { type: "string" },
  dcs: { type: "string" },
  version: { type: "string" },
  "first-address": { type: "string" },
  "heap-mb": { type: "string" },
  name: { type: "string" },
  tls: { type: "boolean" },
  mtls: { type: "boolean" },
  auth: { type: "boolean" },
  foreground: { type: "boolean" },
  help: { type: "boolean", short: "h" }
} as const

type CliValues = {
  readonly [Option in keyof typeof cliOptions]?: (typeof cliOptions)[Option]["type"] extends "string" ? string : boolean
}

const parseCommandLine = (argv: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const parsed = yield* Effect.try({
      try: () => parseArgs({ args: [...argv], strict: true, allowPositionals: true, options: cliOptions }),
      // parseArgs explains itself in its first sentence, e.g. "Unknown option '--bogus'".
      catch: (error) => usageError((error instanceof Error ? error.message : String(error)).split(". ")[0]!)
    })
    const values: CliValues = parsed.values
    const [command, ...rest] = parsed.positionals
    if (values.help === true || command === undefined || command === "help") return { help: true } as const
    if (!isCommand(command)) return yield* usageError(`unknown command "${command}"`)
    const allowed: ReadonlyArray<string> = commandOptions[command]
    const misplaced = Object.keys(values).find((option) => !allowed.includes(option))
    if (misplaced !== undefined) return yield* usageError(`option --${misplaced} does not apply to ${command}`)
    return { help: false, command, rest, values } as const
  })

const wholeNumber = (text: string | undefined, what: string) => {
  if (text === undefined) return Effect.succeed(undefined)
  return /^\d+$/.test(text) ? Effect.succeed(Number(text)) : Effect.fail(usageError(`${what} must be a whole number`))
}

const nodeIndex = (rest: ReadonlyArray<string>, command: string) => {
  const index = rest[0]
  return index !== undefined && /^\d+$/.test(index)
    ? Effect.succeed(Number(index))
    : Effect.fail(usageError(`${command} needs a node number, as in \`${command} 2\``))
}

const describeCluster = (cluster: LocalCassandra.Cluster) => {
  const lines = [
    `cluster ${cluster.name} (Cassandra ${cluster.version}) is running`,
    `  contact points: ${cluster.contactPoints.join(", ")}   local data center: ${cluster.localDataCenter}`
  ]
  if (cluster.dataCenters.length > 1) lines.push(`  data centers: ${cluster.dataCenters.join(", ")}`)
  if (cluster.tls !== undefined) {
    lines.push(`  TLS CA: ${cluster.tls.caFile}`)
    if (cluster.tls.clientCertFile !== undefined && cluster.tls.clientKeyFile !== undefined) {
      lines.push(`  client certificate: ${cluster.tls.clientCertFile}  key: ${cluster.tls.clientKeyFile}`)
    }
  }
  if (cluster.credentials !== undefined) {
    lines.push(`  login: ${cluster.credentials.username} / ${Redacted.value(cluster.credentials.password)}`)
  }
  return lines.join("\n")
}

const statusTable = (nodes: ReadonlyArray<LocalCassandra.NodeStatus>) => {
  const rows = [
    ["node", "address", "dc/rack", "pid", "process", "CQL", "ring"],
    ...nodes.map((node) => [
      String(node.index),
      node.address,
      `${node.dataCenter}/${node.rack}`,
      node.pid === undefined ? "-" : String(node.pid),
      node.decommissioned ? "decommissioned" : node.paused ? "paused" : node.running ? "running" : "stopped",
      node.cql ? "up" : "down",
      node.ring ?? "-"
    ])
  ]
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join("  ")
        .trimEnd()
    )
    .join("\n")
}

// Effect.never alone would let Node exit (with the nodes left running): an idle timer keeps this process alive.
const untilInterrupted = Effect.callback<never>(() => {
  const keepAlive = setInterval(() => {}, 2 ** 30)
  return Effect.sync(() => clearInterval(keepAlive))
})

const print = (text: string) => Effect.sync(() => process.stdout.write(`${text}\n`))

const startCluster = Effect.fnUntraced(function* (values: CliValues) {
  const nodes = yield* wholeNumber(values.nodes, "--nodes")
  const dataCenters = yield* wholeNumber(values.dcs, "--dcs")
  const firstAddress = yield* wholeNumber(values["first-address"], "--first-address")
  const heapMb = yield* wholeNumber(values["heap-mb"], "--heap-mb")
  const options: LocalCassandra.ClusterOptions = {
    ...(nodes === undefined ? {} : { nodes }),
    ...(dataCenters === undefined ? {} : { dataCenters }),
    ...(firstAddress === undefined ? {} : { firstAddress }),
    ...(heapMb === undefined ? {} : { heapMb }),
    ...(values.version === undefined ? {} : { version: values.version }),
    ...(values.name === undefined ? {} : { name: values.name }),
    ...(values.tls === true || values.mtls === true ? { tls: { clientCertificate: values.mtls === true } } : {}),
    ...(values.auth === true ? { auth: true } : {})
  }
  if (values.foreground === true) {
    return yield* Effect.scoped(
      Effect.gen(function* () {
        const cluster = yield* LocalCassandra.start(options)
        yield* print(`${describeCluster(cluster)}\n  press Ctrl-C to stop it`)
        // Stopped gracefully, not killed as the scope's close would: its files stay for `start-node` and `status`.
        return yield* untilInterrupted.pipe(Effect.ensuring(Effect.ignore(cluster.stop)))
      })
    )
  }
  // The scope is closed only when the start fails or is interrupted; after a success this process exits and leaves
  // the nodes running, for the later commands to find through cluster.json.
  const scope = yield* Scope.make()
  const cluster = yield* LocalCassandra.start(options).pipe(
    Scope.provide(scope),
    Effect.onExit((exit) => (Exit.isFailure(exit) ? Scope.close(scope, exit) : Effect.void))
  )
  yield* print(`${describeCluster(cluster)}\n  stop it with: npm run cassandra -- stop${nameFlag(cluster.name)}`)
})

const nameFlag = (name: string) => (name === "local" ? "" : ` --name ${name}`)

const run = Effect.fnUntraced(function* (argv: ReadonlyArray<string>) {
  const parsed = yield* parseCommandLine(argv)
  if (parsed.help) return yield* print(usage)
  const { command, rest, values } = parsed
  if (command === "start") return yield* startCluster(values)
  // Bad input is reported before the cluster is looked up.
  const index =
    command === "status" || command === "stop" || command === "add-node" ? 0 : yield* nodeIndex(rest, command)
  const cluster = yield* LocalCassandra.attach(values.name)
  switch (command) {
    case "status":
      return yield* Effect.flatMap(cluster.status, (nodes) => print(statusTable(nodes)))
    case "stop":
      yield* cluster.stop
      return yield* print(`cluster ${cluster.name} is stopped`)
    case "add-node": {
      const node = yield* cluster.addNode()
      return yield* print(`node ${node.index} is up on ${node.address}`)
    }
    case "stop-node":
      return yield* cluster.stopNode(index)
    case "kill-node":
      return yield* cluster.killNode(index)
    case "start-node":
      return yield* cluster.startNode(index)
    case "pause-node":
      return yield* cluster.pauseNode(index)
    case "resume-node":
      return yield* cluster.resumeNode(index)
    case "cut-off":
      return yield* cluster.cutOffNode(index)
    case "reconnect-node":
      return yield* cluster.reconnectNode(index)
    case "decommission":
      return yield* cluster.decommissionNode(index)
    case "nodetool":
      return yield* Effect.flatMap(cluster.nodetool(index, rest.slice(1)), (output) =>
        Effect.sync(() => process.stdout.write(output))
      )
  }
})

// Progress goes to stderr as plain lines, so that stdout carries only the command's result.
const progressLogger = Logger.make((options) => {
  const message = Array.isArray(options.message) ? options.message.join(" ") : String(options.message)
  process.stderr.write(`cassandra: ${message}\n`)
})

const fiber = Effect.runFork(run(process.argv.slice(2)).pipe(Effect.provide(Logger.layer([progressLogger]))))
const interrupt = () => Effect.runFork(Fiber.interrupt(fiber))
process.once("SIGINT", interrupt)
process.once("SIGTERM", interrupt)
fiber.addObserver((exit) => {
  if (Exit.isSuccess(exit)) process.exit(0)
  const cause = exit.cause
  const error = Cause.findErrorOption(cause)
  if (error._tag === "Some") {
    process.stderr.write(`cassandra: ${error.value.message}\n`)
    process.exit(1)
  }
  if (Cause.hasInterruptsOnly(cause)) {
    process.stderr.write("cassandra: interrupted: the nodes this command started were stopped\n")
    process.exit(130)
  }
  process.stderr.write(`cassandra: unexpected failure (a bug in the manager):\n${Cause.pretty(cause)}\n`)
  process.exit(1)
})
