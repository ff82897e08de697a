import * as net from "node:net"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as CassandraError from "effect-cassandra/CassandraError"
import { testConnection } from "../support/cassandra.ts"

/** How this suite reaches its node with a raw driver client. */
const clientOptions = (overrides: Partial<Cassandra.ClientOptions> = {}): Cassandra.ClientOptions => {
  const connection = testConnection()
  return {
    contactPoints: [...connection.contactPoints],
    localDataCenter: connection.localDataCenter,
    ...(connection.credentials === undefined ? {} : { credentials: connection.credentials }),
    ...overrides
  }
}

const nodeEndpoint = () => {
  const [host = "127.0.0.1", port = "9042"] = (clientOptions().contactPoints?.[0] ?? "").split(":")
  return { host, port: Number(port) }
}

const shutdown = (client: Cassandra.Client) => Effect.promise(() => client.shutdown())

const connectedClient = (options: Cassandra.ClientOptions) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Cassandra.Client(options)
      await client.connect()
      return client
    }),
    shutdown
  )

/** The error a driver call fails with, classified as the session does. */
const failureOf = (run: () => Promise<unknown>, context: CassandraError.ErrorContext) =>
  Effect.flip(Effect.tryPromise({ try: run, catch: (error) => CassandraError.fromDriverError(error, context) }))

const executeFailure = (client: Cassandra.Client, statement: string, params: Array<unknown> = [], options = {}) =>
  failureOf(() => client.execute(statement, params, options), { operation: "execute", statement })

const connectFailure = (options: Cassandra.ClientOptions) =>
  Effect.gen(function* () {
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => new Cassandra.Client(options)),
      shutdown
    )
    return yield* failureOf(() => client.connect(), { operation: "connect" })
  })

/** A connected client and a keyspace replicated once more than there are nodes, so ALL can never be met. */
class Fixture extends Context.Service<Fixture, { readonly client: Cassandra.Client; readonly keyspace: string }>()(
  "test/CassandraError/Fixture"
) {
  static readonly layer = Layer.effect(
    Fixture,
    Effect.gen(function* () {
      const client = yield* connectedClient(clientOptions())
      const keyspace = `cassandra_error_${process.pid}`
      const replicationFactor = client.hosts.length + 1
      yield* Effect.acquireRelease(
        Effect.promise(async () => {
          await client.execute(
            `CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': ${replicationFactor}}`
          )
          await client.execute(`CREATE TABLE ${keyspace}.users (id int PRIMARY KEY, name text, age int)`)
        }),
        () => Effect.promise(() => client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`))
      )
      return { client, keyspace }
    })
  )
}

interface Relay {
  readonly endpoint: string
  /** Stops forwarding requests to the node: they are never answered. */
  readonly stall: () => void
  /** Closes every relayed connection, as a network failure would. */
  readonly dropConnections: () => void
}

/**
 * A TCP relay in front of the real node that can stall or cut the connections: a network partition, which is what
 * makes a client-side timeout and a dropped connection deterministic (the node itself is never touched).
 */
const relay = Effect.acquireRelease(
  Effect.callback<Relay & { readonly server: net.Server; readonly sockets: Set<net.Socket> }>((resume) => {
    const node = nodeEndpoint()
    const sockets = new Set<net.Socket>()
    let stalled = false
    const server = net.createServer((fromClient) => {
      const toNode = net.connect(node.port, node.host)
      const close = () => {
        fromClient.destroy()
        toNode.destroy()
      }
      for (const socket of [fromClient, toNode]) {
        sockets.add(socket)
        socket.on("error", close)
        socket.on("close", close)
      }
      fromClient.on("data", (data) => {
        if (!stalled) toNode.write(data)
      })
      toNode.on("data", (data) => fromClient.write(data))
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      resume(
        Effect.succeed({
          endpoint: `127.0.0.1:${port}`,
          server,
          sockets,
          stall: () => {
            stalled = true
          },
          dropConnections: () => {
            for (const socket of sockets) socket.destroy()
          }
        })
      )
    })
  }),
  ({ server, sockets }) =>
    Effect.callback<void>((resume) => {
      for (const socket of sockets) socket.destroy()
      server.close(() => resume(Effect.void))
    })
)

/** A client that reaches the node only through the relay, with the host it will query. */
const clientThroughRelay = Effect.gen(function* () {
  const through = yield* relay
  const client = yield* connectedClient(clientOptions({ contactPoints: [through.endpoint] }))
  const host = client.hosts.values().find((host) => host.address.endsWith(`:${through.endpoint.split(":")[1]}`))
  assert.isDefined(host)
  return { through, client, queryOptions: { host, readTimeout: 500 } }
})

layer(Fixture.layer, { timeout: 120_000 })("CassandraError from a real node", (it) => {
  it.effect("classifies a syntax error with the server's text and the coordinator", () =>
    Effect.gen(function* () {
      const { client } = yield* Fixture
      const error = yield* executeFailure(client, "SELEC * FROM system.local")
      assert.instanceOf(error.reason, CassandraError.Syntax)
      assert.include(error.reason.serverMessage, "SELEC")
      assert.isString(error.reason.coordinator)
      assert.strictEqual(error.statement, "SELEC * FROM system.local")
      assert.isFalse(error.isRetryable)
    })
  )

  it.effect("classifies an unknown keyspace and an unknown table as Invalid", () =>
    Effect.gen(function* () {
      const { client, keyspace } = yield* Fixture
      const noKeyspace = yield* executeFailure(client, "SELECT * FROM no_such_keyspace.users")
      const noTable = yield* executeFailure(client, `SELECT * FROM ${keyspace}.no_such_table`)
      assert.strictEqual(noKeyspace.reason._tag, "Invalid")
      assert.include(noKeyspace.message, "no_such_keyspace")
      assert.strictEqual(noTable.reason._tag, "Invalid")
      assert.include(noTable.message, "no_such_table")
    })
  )

  it.effect("classifies CREATE of an existing table or keyspace as AlreadyExists", () =>
    Effect.gen(function* () {
      const { client, keyspace } = yield* Fixture
      const table = yield* executeFailure(client, `CREATE TABLE ${keyspace}.users (id int PRIMARY KEY)`)
      const space = yield* executeFailure(
        client,
        `CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`
      )
      assert.deepInclude(table.reason, { _tag: "AlreadyExists", keyspace, table: "users" })
      assert.deepInclude(space.reason, { _tag: "AlreadyExists", keyspace })
      assert.isUndefined((space.reason as CassandraError.AlreadyExists).table)
    })
  )

  it.effect("classifies a write to a system keyspace as Unauthorized", () =>
    Effect.gen(function* () {
      const { client } = yield* Fixture
      const error = yield* executeFailure(client, "CREATE TABLE system_auth.cassandra_error_probe (k int PRIMARY KEY)")
      assert.strictEqual(error.reason._tag, "Unauthorized")
      assert.include(error.message, "system_auth")
    })
  )

  it.effect("classifies too few replicas for the consistency level as Unavailable with the server's counts", () =>
    Effect.gen(function* () {
      const { client, keyspace } = yield* Fixture
      const error = yield* executeFailure(client, `SELECT * FROM ${keyspace}.users`, [], {
        consistency: Cassandra.types.consistencies.all
      })
      assert.deepInclude(error.reason, {
        _tag: "Unavailable",
        consistency: "ALL",
        required: client.hosts.length + 1,
        alive: client.hosts.length
      })
      assert.include(
        error.message,
        `${client.hosts.length} of ${client.hosts.length + 1} required replicas alive at ALL`
      )
      assert.isTrue(error.isRetryable)
    })
  )

  it.effect("classifies a bound value that does not fit its column as InvalidArgument, without the value", () =>
    Effect.gen(function* () {
      const { client, keyspace } = yield* Fixture
      const error = yield* executeFailure(
        client,
        `INSERT INTO ${keyspace}.users (id, name) VALUES (?, ?)`,
        [1, { password: "hunter2" }],
        { prepare: true }
      )
      assert.strictEqual(error.reason._tag, "InvalidArgument")
      assert.include(String((error.driverError as Error).message), "hunter2")
      assert.notInclude(error.message, "hunter2")
      assert.notInclude(JSON.stringify(error), "hunter2")
    })
  )

  it.effect("redacts a bound value the server echoes in its error text", () =>
    Effect.gen(function* () {
      const { client, keyspace } = yield* Fixture
      const error = yield* executeFailure(
        client,
        `INSERT INTO ${keyspace}.users JSON ?`,
        ['{"id": 1, "age": "hunter2"}'],
        {
          prepare: true
        }
      )
      assert.strictEqual(error.reason._tag, "Invalid")
      assert.include(String((error.driverError as Error).message), "hunter2")
      assert.notInclude(error.message, "hunter2")
    })
  )

  it.effect("classifies a request the node never answers as ClientTimeout on that host", () =>
    Effect.gen(function* () {
      const { through, client, queryOptions } = yield* clientThroughRelay
      through.stall()
      const error = yield* executeFailure(client, "SELECT release_version FROM system.local", [], queryOptions)
      assert.deepInclude(error.reason, { _tag: "ClientTimeout", coordinator: queryOptions.host?.address })
      assert.include(error.message, "did not reply before timeout 500 ms")
      assert.isTrue(error.isRetryable)
    })
  )

  it.effect("classifies a connection dropped during a request as Connection", () =>
    Effect.gen(function* () {
      const { through, client, queryOptions } = yield* clientThroughRelay
      through.stall()
      const pending = executeFailure(client, "SELECT release_version FROM system.local", [], {
        ...queryOptions,
        readTimeout: 60_000
      })
      const fiber = yield* Effect.forkChild(pending)
      yield* Effect.promise(() => pollUntil(() => client.getState().getInFlightQueries(queryOptions.host!) > 0))
      through.dropConnections()
      const error = yield* Fiber.join(fiber)
      assert.deepInclude(error.reason, { _tag: "Connection", coordinator: queryOptions.host?.address })
      assert.isTrue(error.isRetryable)
    })
  )
})

/** Resolves once the condition holds, checking on every turn of the event loop. */
const pollUntil = (condition: () => boolean) =>
  new Promise<void>((resolve) => {
    const check = () => (condition() ? resolve() : setImmediate(check))
    check()
  })

describe("CassandraError when connecting", () => {
  it.effect("classifies an unreachable contact point as NoHostAvailable with the host's Connection failure", () =>
    Effect.gen(function* () {
      // Nothing listens on port 1, so the refusal is immediate whatever runs on this address.
      const error = yield* connectFailure(
        clientOptions({ contactPoints: ["127.0.0.49:1"], socketOptions: { connectTimeout: 1_000 } })
      )
      assert.instanceOf(error.reason, CassandraError.NoHostAvailable)
      assert.deepInclude(error.reason.hosts[0], { address: "127.0.0.49:1", reason: "Connection", retryable: true })
      assert.include(error.message, "ECONNREFUSED")
      assert.strictEqual(error.operation, "connect")
      assert.isTrue(error.isRetryable)
    })
  )

  it.effect("classifies a local data center that does not exist as InvalidArgument, naming the real ones", () =>
    Effect.gen(function* () {
      const error = yield* connectFailure(clientOptions({ localDataCenter: "no_such_dc" }))
      assert.strictEqual(error.reason._tag, "InvalidArgument")
      assert.include(error.message, "no_such_dc")
      assert.include(error.message, "datacenter1")
      assert.isFalse(error.isRetryable)
    })
  )
})
