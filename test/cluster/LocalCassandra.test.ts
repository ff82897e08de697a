import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import { Deferred, Duration, Effect, Exit, Fiber, Redacted, Schedule } from "effect"
import * as LocalCassandra from "../../tools/cassandra/LocalCassandra.ts"

// Every test waits on real JVMs, so they all run with the live clock (`it.live`); the test clock would never advance.
// They use the addresses 127.0.0.11 to 127.0.0.17 and 127.0.0.81, away from the integration suite's node on 127.0.0.1.
// The two-data-center cluster (127.0.0.21-24) is checked by Session.multiDc.test.ts, which runs its scenarios on it.

/** Whether `pid` is a process that has not exited (a zombie has). */
const isAlive = (pid: number): boolean => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return false
  }
}

/** Re-checks `condition` until it holds, failing the test when it still does not after `within`. */
const eventually = (what: string, condition: () => boolean, within: Duration.Input = Duration.seconds(90)) =>
  Effect.suspend(() => (condition() ? Effect.void : Effect.fail(new Error(`still not true: ${what}`)))).pipe(
    Effect.retry(Schedule.spaced("250 millis").pipe(Schedule.upTo({ duration: within }))),
    Effect.orDie
  )

const connectedClient = (options: Cassandra.ClientOptions) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Cassandra.Client(options)
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.shutdown())
  )

/** The error a client with these options fails to connect with. */
const connectionFailure = (options: Cassandra.ClientOptions) =>
  Effect.acquireUseRelease(
    Effect.sync(() => new Cassandra.Client(options)),
    (client) => Effect.flip(Effect.tryPromise({ try: () => client.connect(), catch: (error) => error })),
    (client) => Effect.promise(() => client.shutdown())
  )

// Reconnecting every half second keeps the "host is up again" checks short.
const clientOptions = (cluster: LocalCassandra.Cluster): Cassandra.ClientOptions => ({
  contactPoints: [...cluster.contactPoints],
  localDataCenter: cluster.localDataCenter,
  policies: { reconnection: new Cassandra.policies.reconnection.ConstantReconnectionPolicy(500) }
})

const upHosts = (client: Cassandra.Client): ReadonlyArray<string> =>
  client.hosts
    .values()
    .filter((host) => host.isUp())
    .map((host) => host.address)
    .sort()

const hostIsUp = (client: Cassandra.Client, address: string) => upHosts(client).includes(`${address}:9042`)

const pidOf = (cluster: LocalCassandra.Cluster, index: number) =>
  Effect.map(cluster.nodes, (nodes) => {
    const pid = nodes.find((node) => node.index === index)?.pid
    assert.isDefined(pid, `node ${index} has no pid`)
    return pid!
  })

const ring = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]

/** Whether a TCP connection to the node's CQL port opens, is refused, or gets no answer within 2 seconds. */
const tcpConnect = (host: string) =>
  Effect.callback<"connected" | "refused" | "timeout">((resume) => {
    const socket = Net.connect({ host, port: 9042, timeout: 2_000 })
    const settle = (outcome: "connected" | "refused" | "timeout") => () => {
      socket.destroy()
      resume(Effect.succeed(outcome))
    }
    socket.once("connect", settle("connected"))
    socket.once("timeout", settle("timeout"))
    socket.once("error", settle("refused"))
    return Effect.sync(() => socket.destroy())
  })

/** The firewall rules of this machine (empty where iptables is missing). */
const iptablesRules = () => ChildProcess.spawnSync("iptables", ["-w", "-S"], { encoding: "utf8" }).stdout ?? ""

describe("LocalCassandra", () => {
  // One cluster for the whole life cycle: starting the same three nodes again for each step would cost 30 to 40 s.
  it.live(
    "starts three nodes that a client sees up, stops, kills and restarts them, adds a fourth and decommissions it",
    () =>
      Effect.gen(function* () {
        const cluster = yield* LocalCassandra.start({ nodes: 3, firstAddress: 11, name: "manager-ring" })
        assert.deepStrictEqual(cluster.contactPoints, ring)
        assert.match(cluster.version, /^5\.0\.\d+$/)
        const started = yield* cluster.status
        assert.deepStrictEqual(
          started.map((node) => [node.address, node.running, node.cql, node.ring]),
          ring.map((address) => [address, true, true, "UN"])
        )

        const client = yield* connectedClient(clientOptions(cluster))
        const everyHost = ring.map((address) => `${address}:9042`)
        yield* eventually("the client sees all three hosts up", () => upHosts(client).join() === everyHost.join())

        const stoppedPid = yield* pidOf(cluster, 2)
        yield* cluster.stopNode(2)
        assert.isFalse(isAlive(stoppedPid))
        assert.isFalse((yield* cluster.nodes)[1]!.running)
        yield* eventually("the client sees node 2 down", () => !hostIsUp(client, "127.0.0.12"))
        yield* cluster.startNode(2)
        yield* eventually("the client sees node 2 up again", () => hostIsUp(client, "127.0.0.12"))

        const killedPid = yield* pidOf(cluster, 3)
        yield* cluster.killNode(3)
        assert.isFalse(isAlive(killedPid))
        yield* eventually("the client sees node 3 down", () => !hostIsUp(client, "127.0.0.13"))
        yield* cluster.startNode(3)
        yield* eventually("the client sees node 3 up again", () => hostIsUp(client, "127.0.0.13"))

        const restarted = yield* cluster.status
        assert.deepStrictEqual(
          restarted.map((node) => [node.address, node.running, node.cql, node.ring]),
          ring.map((address) => [address, true, true, "UN"])
        )
        const rows = yield* Effect.promise(() => client.execute("SELECT release_version FROM system.local"))
        assert.strictEqual(rows.first()?.get("release_version"), cluster.version)

        const added = yield* cluster.addNode()
        assert.deepStrictEqual(
          [added.index, added.address, added.jmxPort, added.running],
          [4, "127.0.0.14", 8400, true]
        )
        const grown = yield* cluster.status
        assert.deepStrictEqual(
          grown.map((node) => [node.address, node.cql, node.ring]),
          [...ring, "127.0.0.14"].map((address) => [address, true, "UN"])
        )
        yield* eventually("the client sees the new host up", () => hostIsUp(client, "127.0.0.14"))

        yield* cluster.decommissionNode(4)
        const shrunk = yield* cluster.status
        assert.deepStrictEqual(
          shrunk.map((node) => [node.address, node.running, node.decommissioned, node.ring]),
          [...ring.map((address) => [address, true, false, "UN"]), ["127.0.0.14", false, true, undefined]]
        )
        assert.notInclude(yield* cluster.nodetool(1, ["status"]), "127.0.0.14")
        yield* eventually(
          "the client forgets the decommissioned host",
          () => client.hosts.get("127.0.0.14:9042") === undefined
        )
      }),
    900_000
  )

  it.live("freezes, resumes, cuts off and reconnects a node, and stops a frozen one", () =>
    Effect.gen(function* () {
      // The fault suite's addresses: the cluster suites run one file at a time.
      const cluster = yield* LocalCassandra.start({ firstAddress: 81, name: "manager-faults" })
      const address = "127.0.0.81"
      const client = yield* connectedClient({ ...clientOptions(cluster), socketOptions: { readTimeout: 2_000 } })
      const query = Effect.tryPromise({
        try: () => client.execute("SELECT release_version FROM system.local"),
        catch: (error) => error
      })
      const paused = () => Effect.map(cluster.nodes, (nodes) => nodes[0]!.paused)

      yield* cluster.pauseNode(1)
      assert.isTrue(yield* paused())
      const frozen = yield* Effect.flip(query)
      assert.isTrue(
        frozen instanceof Cassandra.errors.OperationTimedOutError ||
          frozen instanceof Cassandra.errors.NoHostAvailableError,
        `a frozen node's query fails on the client's timeout: ${String(frozen)}`
      )
      yield* cluster.resumeNode(1)
      assert.isFalse(yield* paused())
      yield* query.pipe(Effect.retry(Schedule.spaced("500 millis").pipe(Schedule.upTo({ duration: "60 seconds" }))))

      const cut = yield* Effect.result(cluster.cutOffNode(1))
      if (cut._tag === "Failure") {
        // Where the machine has no usable firewall, the reason says so, and nothing was changed.
        assert.strictEqual(cut.failure.reason, "FirewallUnavailable")
        assert.match(cut.failure.message, /iptables/)
      } else {
        assert.strictEqual(yield* tcpConnect(address), "timeout", "a cut-off node's port neither accepts nor refuses")
        yield* cluster.reconnectNode(1)
        assert.strictEqual(yield* tcpConnect(address), "connected")
        assert.notInclude(iptablesRules(), "manager-faults", "the rules are gone once the node is reconnected")
        yield* cluster.cutOffNode(1)
      }

      const pid = yield* pidOf(cluster, 1)
      yield* cluster.pauseNode(1)
      yield* cluster.stop
      assert.isFalse(isAlive(pid), "a frozen node is stopped too")
      assert.notInclude(iptablesRules(), "manager-faults", "stopping a node removes its firewall rules")
    })
  )

  it.live("stops the nodes it started when its scope closes, once ready", () =>
    Effect.gen(function* () {
      const ready = yield* Deferred.make<ReadonlyArray<number>>()
      const running = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const cluster = yield* LocalCassandra.start({ firstAddress: 15, name: "manager-scope" })
            const nodes = yield* cluster.nodes
            yield* Deferred.succeed(
              ready,
              nodes.map((node) => node.pid!)
            )
            return yield* Effect.never
          })
        )
      )
      const pids = yield* Effect.raceFirst(Deferred.await(ready), Fiber.join(running))
      assert.lengthOf(pids, 1)
      assert.isTrue(isAlive(pids[0]!))
      yield* Fiber.interrupt(running)
      assert.isFalse(isAlive(pids[0]!))
    })
  )

  it.live("stops the JVM it started when interrupted while the node is still starting", () =>
    Effect.gen(function* () {
      const pidFile = Path.join(LocalCassandra.clusterDirectory("manager-scope"), "node1", "cassandra.pid")
      const starting = yield* Effect.forkChild(
        Effect.scoped(LocalCassandra.start({ firstAddress: 15, name: "manager-scope" }))
      )
      // A live pid in the pid file means the JVM was launched; the file of an earlier run names a dead process.
      const launchedPid = () => {
        try {
          const pid = Number.parseInt(Fs.readFileSync(pidFile, "utf8"), 10)
          return isAlive(pid) ? pid : undefined
        } catch {
          return undefined
        }
      }
      yield* eventually("the JVM is launched", () => launchedPid() !== undefined, Duration.minutes(5))
      const pid = launchedPid()!
      yield* Fiber.interrupt(starting)
      const exit = yield* Fiber.await(starting)
      assert.isTrue(Exit.hasInterrupts(exit), "the start was interrupted before the node was ready")
      assert.isFalse(isAlive(pid))
    })
  )

  it.live("reports a port in use, a missing Java and invalid options as typed reasons", () =>
    Effect.gen(function* () {
      yield* Effect.acquireRelease(
        Effect.callback<Net.Server>((resume) => {
          const server = Net.createServer()
          server.listen({ host: "127.0.0.16", port: 9042 }, () => resume(Effect.succeed(server)))
        }),
        (server) =>
          Effect.callback<void>((resume) => {
            server.close(() => resume(Effect.void))
          })
      )
      const portTaken = yield* Effect.flip(
        Effect.scoped(LocalCassandra.start({ firstAddress: 16, name: "manager-ports" }))
      )
      assert.strictEqual(portTaken.reason, "PortInUse")
      assert.include(portTaken.message, "port 9042 on 127.0.0.16")

      const invalid = yield* Effect.flip(Effect.scoped(LocalCassandra.start({ nodes: 0, name: "manager-ports" })))
      assert.strictEqual(invalid.reason, "InvalidOption")
      const noDataCenter = yield* Effect.flip(
        Effect.scoped(LocalCassandra.start({ dataCenters: 0, name: "manager-ports" }))
      )
      assert.deepStrictEqual(
        [noDataCenter.reason, noDataCenter.message],
        ["InvalidOption", "invalid data center count 0: use a whole number of at least 1"]
      )
      const tooManyNodes = yield* Effect.flip(
        Effect.scoped(LocalCassandra.start({ dataCenters: 3, nodes: 2, firstAddress: 250, name: "manager-ports" }))
      )
      assert.include(tooManyNodes.message, "127.0.0.250..255")
      const badVersion = yield* Effect.flip(
        Effect.scoped(LocalCassandra.start({ version: "6.0 -Dx=y", name: "manager-ports" }))
      )
      assert.strictEqual(badVersion.reason, "InvalidOption")
      assert.include(badVersion.message, 'invalid Cassandra version "6.0 -Dx=y"')

      yield* Effect.acquireRelease(
        Effect.sync(() => {
          const previous = process.env.CASSANDRA_JAVA_HOME
          process.env.CASSANDRA_JAVA_HOME = "/nonexistent/jdk-17"
          return previous
        }),
        (previous) =>
          Effect.sync(() => {
            if (previous === undefined) delete process.env.CASSANDRA_JAVA_HOME
            else process.env.CASSANDRA_JAVA_HOME = previous
          })
      )
      const noJava = yield* Effect.flip(Effect.scoped(LocalCassandra.start({ firstAddress: 16, name: "manager-java" })))
      assert.strictEqual(noJava.reason, "JavaMissing")
      assert.include(noJava.message, "CASSANDRA_JAVA_HOME=/nonexistent/jdk-17")
    })
  )

  it.live("the CLI rejects an unknown flag with one line and exit status 1", () =>
    Effect.sync(() => {
      const cli = Path.resolve(import.meta.dirname, "..", "..", "tools", "cassandra", "cli.ts")
      const result = ChildProcess.spawnSync(process.execPath, [cli, "start", "--bogus"], { encoding: "utf8" })
      assert.strictEqual(result.status, 1)
      assert.strictEqual(result.stdout, "")
      const lines = result.stderr.split("\n").filter((line) => line.length > 0)
      assert.lengthOf(lines, 1)
      assert.match(lines[0]!, /^cassandra: Unknown option '--bogus': /)

      const missingNode = ChildProcess.spawnSync(process.execPath, [cli, "pause-node"], { encoding: "utf8" })
      assert.strictEqual(missingNode.status, 1)
      assert.strictEqual(
        missingNode.stderr,
        "cassandra: pause-node needs a node number, as in `pause-node 2`: see `npm run cassandra -- --help`\n"
      )
    })
  )

  it.live("a TLS and password node accepts a client with the CA and login, and rejects a plaintext one", () =>
    Effect.gen(function* () {
      const cluster = yield* LocalCassandra.start({
        firstAddress: 17,
        name: "manager-secure",
        tls: { clientCertificate: false },
        auth: true
      })
      assert.isDefined(cluster.tls)
      assert.isDefined(cluster.credentials)
      const ca = [Fs.readFileSync(cluster.tls!.caFile)]
      const login = new Cassandra.auth.PlainTextAuthProvider(
        cluster.credentials!.username,
        Redacted.value(cluster.credentials!.password)
      )
      const base = { contactPoints: [...cluster.contactPoints], localDataCenter: cluster.localDataCenter }

      const client = yield* connectedClient({ ...base, sslOptions: { ca }, authProvider: login })
      const rows = yield* Effect.promise(() => client.execute("SELECT release_version FROM system.local"))
      assert.strictEqual(rows.first()?.get("release_version"), cluster.version)

      const plaintext = yield* connectionFailure({
        ...base,
        authProvider: login,
        socketOptions: { connectTimeout: 5000 }
      })
      assert.instanceOf(plaintext, Cassandra.errors.NoHostAvailableError)

      const anonymous = yield* connectionFailure({ ...base, sslOptions: { ca } })
      assert.instanceOf(anonymous, Cassandra.errors.NoHostAvailableError)
      const causes = Object.values((anonymous as Cassandra.errors.NoHostAvailableError).innerErrors)
      assert.isTrue(causes.some((cause) => cause instanceof Cassandra.errors.AuthenticationError))
    })
  )
})
