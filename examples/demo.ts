/**
 * The demo behind `npm run demo`: uses the Cassandra named by CASSANDRA_CONTACT_POINTS, or one already listening on
 * 127.0.0.1:9042, or else starts a local node with the project's manager (and stops it at the end). Then it runs a
 * small service through the session layer: the cluster's topology as a stream, a concurrent import with progress,
 * typed reads of a paged stream, and the metrics summary.
 */
import * as Net from "node:net"
import { NodeRuntime } from "@effect/platform-node"
import { BigDecimal, Effect, Layer, Redacted, Schema, Stream } from "effect"
import { BatchJob, CassandraLayer, CqlSchema, CqlType, Metrics, Query, Topology } from "effect-cassandra"
import * as LocalCassandra from "../tools/cassandra/LocalCassandra.ts"

const { cql, identifier } = Query
const orders = identifier("demo", "orders")

const Order = Schema.Struct({
  customer: CqlType.Text,
  id: CqlType.Int,
  placed: CqlType.Timestamp,
  total: CqlType.Decimal,
  items: CqlType.List(CqlType.Text)
})

const encode = Schema.encodeEffect(Order)

/** The insert of one order, its values encoded by the Order schema. */
const encodeOrder = (order: typeof Order.Type) =>
  Effect.map(encode(order), (row) =>
    cql`INSERT INTO ${orders} (customer, id, placed, total, items)
          VALUES (${row.customer}, ${row.id}, ${row.placed}, ${row.total}, ${row.items})`.withOptions({
      idempotent: true
    })
  )

const ordersOf = CqlSchema.stream({
  Request: CqlType.Text,
  Result: Order,
  execute: (customer) => cql`SELECT * FROM ${orders} WHERE customer = ${customer}`.withOptions({ pageSize: 100 })
})

const orderCount = 1_000

const service = Effect.gen(function* () {
  const topology = yield* Topology.Topology
  // The topology stream starts with the current cluster state; later node events would follow it.
  const [cluster] = yield* topology.changes.pipe(Stream.take(1), Stream.runCollect)
  for (const node of cluster?.nodes ?? []) {
    yield* Effect.log(
      `node ${node.address} ${node.state} dc=${node.dataCenter} rack=${node.rack} cassandra=${node.cassandraVersion}`
    )
  }
  yield* cql`CREATE KEYSPACE IF NOT EXISTS ${identifier("demo")}
    WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`
  yield* cql`CREATE TABLE IF NOT EXISTS ${orders} (
    customer text, id int, placed timestamp, total decimal, items list<text>, PRIMARY KEY (customer, id))`

  const started = Date.now()
  const statements = yield* Effect.forEach(
    Array.from({ length: orderCount }, (_, id) => id),
    (id) =>
      encodeOrder({
        customer: "ada",
        id,
        placed: new Date(started + id),
        total: BigDecimal.fromStringUnsafe(`${id}.99`),
        items: ["notebook", `pen-${id % 7}`]
      })
  )
  const job = yield* BatchJob.start(statements, { concurrency: 32, progressInterval: "200 millis" })
  yield* Stream.runForEach(job.progress, (progress) =>
    Effect.sync(() =>
      console.log(`  imported ${progress.completed}/${progress.total} at ${Math.round(progress.currentRate)}/s`)
    )
  )
  const report = yield* job.report
  yield* Effect.log(
    `imported ${report.succeeded} orders (${report.failures.length} failed) in ${Date.now() - started} ms`
  )

  const summary = yield* ordersOf("ada").pipe(
    Stream.runFold(
      () => ({ count: 0, revenue: BigDecimal.fromNumberUnsafe(0) }),
      (acc, order) => ({ count: acc.count + 1, revenue: BigDecimal.sum(acc.revenue, order.total) })
    )
  )
  yield* Effect.log(
    `streamed ${summary.count} orders back, page by page; revenue ${BigDecimal.format(summary.revenue)}`
  )
  if (summary.count !== orderCount) return yield* Effect.die(`expected ${orderCount} orders, read ${summary.count}`)
  console.log(Metrics.formatSummary(yield* Metrics.summary))
}).pipe(Effect.scoped)

const reachable = (host: string, port: number) =>
  Effect.callback<boolean>((resume) => {
    const socket = Net.connect({ host, port, timeout: 1000 })
    const done = (ok: boolean) => {
      socket.destroy()
      resume(Effect.succeed(ok))
    }
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
    socket.once("timeout", () => done(false))
  })

/** The session layer of whichever Cassandra the demo uses; a node it starts lives as long as the layer. */
const CassandraLive = Layer.unwrap(
  Effect.gen(function* () {
    const given = process.env.CASSANDRA_CONTACT_POINTS?.split(",").map((point) => point.trim())
    const localDataCenter = process.env.CASSANDRA_LOCAL_DC ?? "datacenter1"
    const { CASSANDRA_USERNAME: username, CASSANDRA_PASSWORD: password } = process.env
    const credentials =
      username === undefined || password === undefined ? undefined : { username, password: Redacted.make(password) }
    if (given !== undefined) return CassandraLayer.layer({ contactPoints: given, localDataCenter, credentials })
    if (yield* reachable("127.0.0.1", 9042)) {
      yield* Effect.log("using the Cassandra already listening on 127.0.0.1:9042")
      return CassandraLayer.layer({ contactPoints: ["127.0.0.1"], localDataCenter })
    }
    yield* Effect.log("no Cassandra reachable: starting a local node (Apache Cassandra 5.0 from Maven Central)")
    const cluster = yield* LocalCassandra.start({ name: "demo" })
    return CassandraLayer.layer({ contactPoints: cluster.contactPoints, localDataCenter: cluster.localDataCenter })
  })
)

// runMain interrupts the program on Ctrl-C, so a node the demo started is stopped then too.
service.pipe(Effect.provide(CassandraLive.pipe(Layer.provideMerge(Metrics.layer()))), NodeRuntime.runMain)
