/**
 * Schema first: the tables are declared once, as values; migrations create them (applied once, whatever the number
 * of instances starting); the start-up check compares the declarations with the live schema before the application
 * runs; and the application reads and writes through the tables' typed statements.
 *
 *   CASSANDRA_CONTACT_POINTS=127.0.0.1 node --conditions=effect-cassandra/source examples/schema-first.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Option, Schema, Stream } from "effect"
import { CassandraLayer, CqlType, Migrator, Query, SchemaCheck, Table } from "effect-cassandra"

const keyspace = "example_schema_first"

// Each column's type is written once: the row Schemas, the CREATE TABLE statements and the drift check follow.
const users = Table.make({
  keyspace,
  name: "users",
  columns: { id: CqlType.Int, name: CqlType.Text, email: Schema.NullOr(CqlType.Text) },
  partitionKey: ["id"]
})

const orders = Table.make({
  keyspace,
  name: "orders",
  columns: { user_id: CqlType.Int, placed: CqlType.Timestamp, total: CqlType.Int },
  partitionKey: ["user_id"],
  clusteringKey: [{ column: "placed", order: "DESC" }]
})

const migrations = Migrator.fromRecord({
  "0001_create_users": Table.create(users, { ifNotExists: true }),
  "0002_create_orders": Table.create(orders, { ifNotExists: true })
})

const program = Effect.gen(function* () {
  yield* users.insert({ id: 1, name: "Ada", email: "ada@example.com" })
  yield* orders.insert({ user_id: 1, placed: new Date("2026-11-01T10:00:00Z"), total: 120 })
  yield* orders.insert({ user_id: 1, placed: new Date("2026-11-02T10:00:00Z"), total: 80 })
  const ada = yield* users.find({ id: 1 })
  const placed = yield* Stream.runCollect(orders.findPartition({ user_id: 1 }))
  const name = Option.match(ada, { onNone: () => "nobody", onSome: (user) => user.name })
  yield* Effect.log(
    `found ${name} with ${placed.length} orders, newest first: ${placed.map((o) => o.total).join(", ")}`
  )
})

const CassandraLive = CassandraLayer.layer({
  contactPoints: (process.env.CASSANDRA_CONTACT_POINTS ?? "127.0.0.1").split(","),
  localDataCenter: process.env.CASSANDRA_LOCAL_DC ?? "datacenter1"
})

// The keyspace's replication is a deployment's choice, so it is made before the migrations, which live in it.
const KeyspaceLive = Layer.effectDiscard(
  Query.cql`CREATE KEYSPACE IF NOT EXISTS ${Query.identifier(keyspace)}
    WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`
)

// Built in order: the session, the keyspace, the migrations, then the drift check, then the program. The check fails
// the start on any difference that breaks reads (a missing column, another type); here it only warns that `name` and
// `total` may be null in the cluster while their Schemas refuse null.
const AppLive = SchemaCheck.layer({ tables: [users, orders] }).pipe(
  Layer.provideMerge(Migrator.layer({ keyspace, loader: migrations })),
  Layer.provideMerge(KeyspaceLive),
  Layer.provideMerge(CassandraLive)
)

program.pipe(Effect.provide(AppLive), NodeRuntime.runMain)
