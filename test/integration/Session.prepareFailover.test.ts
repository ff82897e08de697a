/**
 * A statement whose first PREPARE a node refuses, run on the real node. One node cannot be made to refuse a PREPARE
 * (it does so while shutting down or joining), so a stand-in node that always answers OVERLOADED ("Server is shutting
 * down") comes first in every plan the driver prepares through; everything else, the statement's execution
 * included, reaches the real node.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as CassandraError from "effect-cassandra/CassandraError"
import * as Session from "effect-cassandra/Session"
import { testConnection } from "../support/cassandra.ts"
import { uniqueKeyspace } from "../support/session.ts"
import { standInNode } from "../support/standInNode.ts"

const refusingAddress = "192.0.2.1:9042"

/**
 * A load-balancing policy that puts a refusing stand-in node first in the plans the driver prepares through (those
 * without execution options, for the session's keyspace), and otherwise plans as the driver's default policy does.
 */
const refusingFirst = (localDataCenter: string) => {
  const refused: Array<string> = []
  const refusing = standInNode(refusingAddress, async (query) => {
    refused.push(query)
    throw new Cassandra.errors.ResponseError(Cassandra.types.responseErrorCodes.overloaded, "Server is shutting down")
  })
  const child = new Cassandra.policies.loadBalancing.DefaultLoadBalancingPolicy({ localDc: localDataCenter })
  class RefusingFirst extends Cassandra.policies.loadBalancing.LoadBalancingPolicy {
    override init(client: Cassandra.Client, hosts: Cassandra.HostMap, callback: (error: Error) => void) {
      child.init(client, hosts, callback)
    }
    override getDistance(host: Cassandra.Host) {
      return (host as unknown) === refusing ? Cassandra.types.distance.local : child.getDistance(host)
    }
    override newQueryPlan(
      keyspace: string,
      executionOptions: Cassandra.ExecutionOptions,
      callback: (error: Error, plan: Iterator<Cassandra.Host>) => void
    ) {
      child.newQueryPlan(keyspace, executionOptions, (error, plan) => {
        // The control connection plans with no keyspace; requests with their execution options.
        if (error || executionOptions !== null || typeof keyspace !== "string") return callback(error, plan)
        callback(
          error,
          [refusing as unknown as Cassandra.Host, ...{ [Symbol.iterator]: () => plan }][Symbol.iterator]()
        )
      })
    }
    override getOptions() {
      return child.getOptions()
    }
  }
  return { policy: new RefusingFirst(), refused }
}

/** A session over a client of the test node whose PREPAREs meet the refusing node first, in a new keyspace. */
const refusedSession = Effect.gen(function* () {
  const connection = testConnection()
  const keyspace = uniqueKeyspace("prepfail")
  const base = {
    contactPoints: [...connection.contactPoints],
    localDataCenter: connection.localDataCenter,
    ...(connection.credentials === undefined ? {} : { credentials: connection.credentials })
  }
  const admin = new Cassandra.Client(base)
  yield* Effect.acquireRelease(
    Effect.promise(async () => {
      await admin.execute(
        `CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`
      )
      await admin.execute(`CREATE TABLE ${keyspace}.kv (k int PRIMARY KEY, v text)`)
    }),
    () =>
      Effect.promise(async () => {
        await admin.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`)
        await admin.shutdown()
      })
  )
  const { policy, refused } = refusingFirst(connection.localDataCenter)
  const client = yield* Effect.acquireRelease(
    Effect.sync(() => new Cassandra.Client({ ...base, keyspace, policies: { loadBalancing: policy } })),
    (client) => Effect.promise(() => client.shutdown())
  )
  const logs: Array<{ readonly className: string; readonly message: string }> = []
  client.on("log", (_level: string, className: string, message: string) => logs.push({ className, message }))
  const session = yield* Session.makeFromClient(client)
  return { session, client, refused, logs }
})

const insert = "INSERT INTO kv (k, v) VALUES (?, ?)"
const select = "SELECT v FROM kv WHERE k = ?"

describe("a statement whose PREPARE a node refused, on the real node", () => {
  it.live(
    "is prepared on the next node and runs there, once, and later runs reuse it",
    () =>
      Effect.gen(function* () {
        const { session, refused, logs } = yield* refusedSession
        yield* session.execute({ query: insert, params: [1, "one"], options: {} })
        // The driver's PREPARE, then this recovery's own plan, both meeting the refusing node first.
        assert.deepStrictEqual(refused, [insert, insert])
        const recovered = logs.filter((log) => log.className === "RequestRefusal")
        assert.strictEqual(recovered.length, 1)
        assert.include(recovered[0]!.message, testConnection().contactPoints[0]!.split(":")[0]!)
        yield* session.execute({ query: insert, params: [2, "two"], options: {} })
        const result = yield* session.execute({ query: select, params: [1], options: {} })
        assert.strictEqual(result.first()?.get("v"), "one")
        assert.deepStrictEqual(refused, [insert, insert, select, select])
        assert.strictEqual(yield* session.inFlight, 0)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "reports a statement error from the node that answered it, with the statement",
    () =>
      Effect.gen(function* () {
        const { session } = yield* refusedSession
        const missing = "SELECT v FROM no_such_table WHERE k = ?"
        const error = yield* Effect.flip(session.execute({ query: missing, params: [1], options: {} }))
        assert.instanceOf(error.reason, CassandraError.Invalid)
        assert.include(error.reason.coordinator ?? "", testConnection().contactPoints[0]!.split(":")[0]!)
        assert.strictEqual(error.statement, missing)
        const syntax = "SELEC v FROM kv WHERE k = ?"
        const invalid = yield* Effect.flip(session.execute({ query: syntax, params: [1], options: {} }))
        assert.instanceOf(invalid.reason, CassandraError.Syntax)
        assert.include(invalid.reason.coordinator ?? "", testConnection().contactPoints[0]!.split(":")[0]!)
        assert.strictEqual(invalid.statement, syntax)
        // And the session keeps serving.
        yield* session.execute({ query: insert, params: [3, "three"], options: {} })
        assert.strictEqual(yield* session.inFlight, 0)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "prepares each statement of a batch once and applies the batch",
    () =>
      Effect.gen(function* () {
        const { session, refused } = yield* refusedSession
        const update = "UPDATE kv SET v = ? WHERE k = ?"
        yield* session.batch(
          [
            { query: insert, params: [10, "ten"] },
            { query: insert, params: [11, "eleven"] },
            { query: update, params: ["twelve", 12] }
          ],
          { type: "logged" }
        )
        // The driver prepares the batch's first statement and is refused; each distinct statement is then prepared
        // once past the refusing node, and the batch sent again finds both prepared.
        assert.deepStrictEqual(refused, [insert, insert, update])
        for (const [k, v] of [
          [10, "ten"],
          [11, "eleven"],
          [12, "twelve"]
        ] as const) {
          const row = yield* session.execute({ query: select, params: [k], options: {} })
          assert.strictEqual(row.first()?.get("v"), v)
        }
      }).pipe(Effect.scoped),
    60_000
  )
})
