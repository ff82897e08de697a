import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as CqlType from "effect-cassandra/CqlType"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Metrics from "effect-cassandra/Metrics"
import * as Query from "effect-cassandra/Query"
import * as SchemaCheck from "effect-cassandra/SchemaCheck"
import * as Session from "effect-cassandra/Session"
import * as Table from "effect-cassandra/Table"
import { testOptions, uniqueKeyspace } from "../support/session.ts"

const session = CassandraLayer.layer(testOptions())

/** A fresh keyspace holding the given DDL (each statement a `cql` fragment), dropped with the scope. */
const keyspaceWith = (prefix: string, ddl: (keyspace: Query.Identifier) => ReadonlyArray<Query.Statement>) => {
  const name = uniqueKeyspace(prefix)
  const keyspace = Query.identifier(name)
  return Effect.acquireRelease(
    Effect.gen(function* () {
      yield* Query.cql`CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`
      for (const statement of ddl(keyspace)) yield* statement
      return name
    }),
    () => Effect.ignore(Query.cql`DROP KEYSPACE IF EXISTS ${keyspace}`)
  )
}

interface Line {
  readonly level: string
  readonly message: unknown
}

const capturingLogger = () => {
  const lines: Array<Line> = []
  const layer = Logger.layer([
    Logger.map(Logger.formatStructured, (line) => {
      lines.push({ level: line.level, message: line.message })
    })
  ])
  const messages = (level: string) =>
    lines
      .filter((line) => line.level === level)
      .map((line) => (Array.isArray(line.message) ? line.message.join(" ") : String(line.message)))
  return { layer, messages }
}

const declaredAddress = CqlType.Udt("address", {
  street: CqlType.NullOr(CqlType.Text),
  zip: CqlType.NullOr(CqlType.Int),
  country: CqlType.NullOr(CqlType.Text)
})

const usersIn = (keyspace: string) =>
  Table.make({
    keyspace,
    name: "users",
    columns: {
      id: CqlType.Int,
      bucket: CqlType.Int,
      ts: CqlType.Timestamp,
      n: CqlType.Int,
      tags: CqlType.NullOr(CqlType.Frozen(CqlType.List(CqlType.Int))),
      note: CqlType.NullOr(CqlType.Text),
      missing_col: CqlType.NullOr(CqlType.Text),
      label: CqlType.NullOr(CqlType.Text),
      raw: Schema.NullOr(Schema.String),
      region: CqlType.NullOr(CqlType.Text)
    },
    partitionKey: ["id", "bucket"],
    clusteringKey: [{ column: "ts", order: "DESC" }],
    staticColumns: ["note"]
  })

describe("SchemaCheck", () => {
  it.live(
    "fails the layer with one error listing every difference that breaks reads or writes, with exact messages",
    () =>
      Effect.gen(function* () {
        const keyspace = yield* keyspaceWith("drift_all", (ks) => [
          Query.cql`CREATE TYPE ${ks}.address (street text, zip text, extra int)`,
          Query.cql`CREATE TABLE ${ks}.users (id int, bucket int, ts timestamp, n bigint, tags list<int>, note text, label text, raw text, extra_col text, region text static, PRIMARY KEY ((id), bucket, ts)) WITH CLUSTERING ORDER BY (bucket ASC, ts ASC)`
        ])
        const missingKeyspace = `${keyspace}_gone`
        const logs = capturingLogger()
        const exit = yield* Effect.exit(
          Layer.build(
            SchemaCheck.layer({
              types: [
                Table.userType(keyspace, declaredAddress),
                Table.userType(keyspace, CqlType.Udt("nothing", { a: CqlType.Int }))
              ],
              tables: [
                usersIn(keyspace),
                Table.make({ keyspace, name: "absent", columns: { id: CqlType.Int }, partitionKey: ["id"] }),
                Table.make({ keyspace: missingKeyspace, name: "t", columns: { id: CqlType.Int }, partitionKey: ["id"] })
              ]
            })
          ).pipe(Effect.provide(logs.layer))
        )
        assert.isTrue(Exit.isFailure(exit))
        const error = yield* Effect.flip(exit)
        assert.instanceOf(error, SchemaCheck.SchemaDriftError)
        if (!(error instanceof SchemaCheck.SchemaDriftError)) return
        const expected = [
          `field ${keyspace}.address.zip is int in the code but text in the cluster`,
          `type ${keyspace}.address has no field country (declared as text)`,
          `type ${keyspace}.nothing does not exist`,
          `column ${keyspace}.users.n is int in the code but bigint in the cluster`,
          `column ${keyspace}.users.tags is frozen<list<int>> in the code but list<int> in the cluster`,
          `column ${keyspace}.users.note is static in the code but not in the cluster`,
          `table ${keyspace}.users has no column missing_col (declared as text)`,
          `column ${keyspace}.users.raw has a schema without a CQL type (use the schemas of CqlType)`,
          `table ${keyspace}.users has partition key (id, bucket) in the code but (id) in the cluster`,
          `table ${keyspace}.users has clustering key (ts DESC) in the code but (bucket ASC, ts ASC) in the cluster`,
          `table ${keyspace}.absent does not exist`,
          `keyspace ${missingKeyspace} does not exist`
        ]
        assert.deepStrictEqual(
          error.differences.map((difference) => difference.message),
          expected
        )
        assert.deepStrictEqual(
          error.differences.map((difference) => difference.kind),
          [
            "FieldType",
            "MissingField",
            "MissingType",
            "ColumnType",
            "ColumnType",
            "NotStatic",
            "MissingColumn",
            "NoCqlType",
            "PartitionKey",
            "ClusteringKey",
            "MissingTable",
            "MissingKeyspace"
          ]
        )
        assert.strictEqual(
          error.message,
          `The cluster's schema differs from the declared one (12 differences):\n${expected.map((line) => `- ${line}`).join("\n")}`
        )
        // Schema-backed: the error encodes to JSON and back.
        const encoded = Schema.encodeSync(SchemaCheck.SchemaDriftError)(error)
        assert.deepStrictEqual(Schema.decodeSync(SchemaCheck.SchemaDriftError)(encoded).differences, error.differences)
        // Safe differences are warnings in the log, not in the error.
        assert.includeMembers(logs.messages("WARN"), [
          `field ${keyspace}.address.extra (int) exists in the cluster but not in the code, which does not read it`,
          `column ${keyspace}.users.extra_col (text) exists in the cluster but not in the code, which does not read it`,
          `column ${keyspace}.users.n can be null in the cluster (it is not in the primary key) but its schema does not accept null`,
          `column ${keyspace}.users.region is static in the cluster but not in the code`
        ])
      }).pipe(Effect.scoped, Effect.provide(session))
  )

  it.live("passes a schema created from the definitions, warning about a column the application does not read", () =>
    Effect.gen(function* () {
      const keyspace = yield* keyspaceWith("drift_none", () => [])
      const address = Table.userType(keyspace, declaredAddress)
      const users = Table.make({
        keyspace,
        name: "users",
        columns: {
          id: CqlType.Int,
          ts: CqlType.Timestamp,
          home: CqlType.NullOr(CqlType.Frozen(declaredAddress)),
          pair: CqlType.NullOr(CqlType.Tuple([CqlType.Int, CqlType.Text])),
          note: CqlType.NullOr(CqlType.Text)
        },
        partitionKey: ["id"],
        clusteringKey: [{ column: "ts", order: "DESC" }],
        staticColumns: ["note"]
      })
      yield* Table.createType(address)
      yield* Table.create(users)
      yield* Query.cql`ALTER TABLE ${Query.identifier(keyspace, "users")} ADD unread text`
      const logs = capturingLogger()
      const differences = yield* SchemaCheck.differences.pipe(
        Effect.provide(SchemaCheck.layer({ types: [address], tables: [users] })),
        Effect.provide(logs.layer)
      )
      assert.deepStrictEqual(
        differences.map((difference) => [difference.severity, difference.message]),
        [
          [
            "warning",
            `column ${keyspace}.users.unread (text) exists in the cluster but not in the code, which does not read it`
          ]
        ]
      )
      assert.deepStrictEqual(logs.messages("WARN"), [differences[0]!.message])
    }).pipe(Effect.scoped, Effect.provide(session))
  )

  it.live(
    "reports drift that appears while the application runs through the log and the metric, and keeps serving",
    () =>
      Effect.gen(function* () {
        const keyspace = yield* keyspaceWith("drift_runtime", () => [])
        const events = Table.make({
          keyspace,
          name: "events",
          columns: { id: CqlType.Int, note: CqlType.NullOr(CqlType.Text), size: CqlType.NullOr(CqlType.Int) },
          partitionKey: ["id"]
        })
        yield* Table.create(events)
        yield* events.insert({ id: 1, note: "a", size: 3 })
        const logs = capturingLogger()
        const drift = Effect.map(
          Metric.value(Metric.withAttributes(Metrics.schemaDrift, { keyspace })),
          (state) => state.value
        )
        yield* Effect.gen(function* () {
          assert.deepStrictEqual(yield* SchemaCheck.differences, [])
          assert.strictEqual(yield* drift, 0)
          yield* Query.cql`ALTER TABLE ${Query.identifier(keyspace, "events")} DROP note`
          const differences = yield* SchemaCheck.differences.pipe(
            Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (found) => found.length > 0 }),
            Effect.timeout("60 seconds")
          )
          const message = `table ${keyspace}.events has no column note (declared as text)`
          assert.deepStrictEqual(
            differences.map((difference) => [difference.severity, difference.message]),
            [["failure", message]]
          )
          assert.strictEqual(yield* drift, 1)
          assert.include(logs.messages("ERROR"), `Schema drift: ${message}`)
          // The session keeps serving what still works.
          const rows = yield* Query.cql`SELECT id, size FROM ${Query.identifier(keyspace, "events")} WHERE id = ${1}`
          assert.deepStrictEqual(
            rows.map((row) => row.size),
            [3]
          )
          yield* Query.cql`ALTER TABLE ${Query.identifier(keyspace, "events")} ADD note text`
          yield* SchemaCheck.differences.pipe(
            Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (found) => found.length === 0 }),
            Effect.timeout("60 seconds")
          )
          assert.strictEqual(yield* drift, 0)
          assert.include(logs.messages("INFO"), `Schema drift resolved: ${message}`)
          // Each re-check waited for the node's agreement on the schema, which a single node gives at once.
          assert.deepStrictEqual(
            logs.messages("WARN").filter((line) => line.includes("did not agree")),
            []
          )
        }).pipe(Effect.provide(SchemaCheck.layer({ tables: [events] })), Effect.provide(logs.layer))
      }).pipe(
        Effect.scoped,
        Effect.provide(session.pipe(Layer.provideMerge(Metrics.layer()))),
        Effect.provideService(Metric.MetricRegistry, new Map())
      )
  )

  it.live("releases its schema event subscription and its re-check when its scope closes, even mid re-check", () =>
    Effect.gen(function* () {
      const keyspace = yield* keyspaceWith("drift_scope", (ks) => [
        Query.cql`CREATE TABLE ${ks}.t (id int PRIMARY KEY)`
      ])
      const table = Table.make({ keyspace, name: "t", columns: { id: CqlType.Int }, partitionKey: ["id"] })
      const client = yield* Session.CassandraClient
      // The topology's schema events come from the driver's log listener, held as long as a subscription lives.
      const listeners = () => client.listenerCount("log")
      const before = listeners()
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(SchemaCheck.layer({ tables: [table] }), scope)
      assert.isAbove(listeners(), before)
      // A change starts a re-check (waiting for agreement, then reading); the scope closes while it runs.
      yield* Query.cql`ALTER TABLE ${Query.identifier(keyspace, "t")} ADD extra int`
      yield* Scope.close(scope, Exit.void).pipe(Effect.timeout("30 seconds"))
      assert.strictEqual(listeners(), before)

      // A layer that fails its first check releases it too.
      const absent = Table.make({ keyspace, name: "absent", columns: { id: CqlType.Int }, partitionKey: ["id"] })
      const failed = yield* Effect.exit(Effect.scoped(Layer.build(SchemaCheck.layer({ tables: [absent] }))))
      assert.isTrue(Exit.isFailure(failed))
      assert.strictEqual(listeners(), before)

      // And one interrupted during its first check.
      const interrupted = yield* Effect.exit(
        Effect.scoped(Layer.build(SchemaCheck.layer({ tables: [table] }))).pipe(Effect.timeout("1 millis"))
      )
      assert.isTrue(Exit.isFailure(interrupted))
      assert.strictEqual(listeners(), before)
    }).pipe(Effect.scoped, Effect.provide(session))
  )

  it.live("warns, without failing, of a user-defined type whose fields are declared in another order", () =>
    Effect.gen(function* () {
      const keyspace = yield* keyspaceWith("drift_field_order", (ks) => [
        Query.cql`CREATE TYPE ${ks}.address (street text, zip int, country text)`
      ])
      const reordered = CqlType.Udt("address", {
        zip: CqlType.NullOr(CqlType.Int),
        street: CqlType.NullOr(CqlType.Text),
        country: CqlType.NullOr(CqlType.Text)
      })
      const differences = yield* SchemaCheck.differences.pipe(
        Effect.provide(SchemaCheck.layer({ types: [Table.userType(keyspace, reordered)] }))
      )
      assert.deepStrictEqual(
        differences.map((difference) => [difference.kind, difference.severity]),
        [["FieldOrder", "warning"]]
      )
    }).pipe(Effect.scoped, Effect.provide(session))
  )
})
