/**
 * A batch job: imports a generated data set (100,000 rows unless BATCH_JOB_ROWS says otherwise) in unlogged batches
 * per partition, with a progress bar, through a throttled session; then streams the table back and checks every row:
 *
 *   CASSANDRA_CONTACT_POINTS=127.0.0.1 node --conditions=effect-cassandra/source examples/batch-job.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer, Schedule, Stream } from "effect"
import { BatchJob, CassandraLayer, Query } from "effect-cassandra"

const { cql, identifier } = Query
const keyspace = identifier("example_batch_job")
const orders = identifier("example_batch_job", "orders")
const buckets = 64

interface Order {
  readonly bucket: number
  readonly id: number
  readonly customer: string
  readonly cents: bigint
}

/** The generated data set: every value follows from the id, so reading it back can check each row. */
const orderOf = (id: number): Order => ({
  bucket: id % buckets,
  id,
  customer: `customer-${(id * 7919) % 10_007}`,
  cents: BigInt(id) * 37n + 5n
})

const insertOrder = (order: Order) =>
  cql`INSERT INTO ${orders} (bucket, id, customer, cents)
      VALUES (${order.bucket}, ${order.id}, ${order.customer}, ${order.cents})`.withOptions({ idempotent: true })

const barWidth = 30

const renderProgress = (progress: BatchJob.Progress) => {
  const fraction = progress.total === 0 ? 1 : progress.completed / progress.total
  const filled = Math.round(fraction * barWidth)
  const bar = `[${"#".repeat(filled)}${"-".repeat(barWidth - filled)}]`
  const line = `${bar} ${(fraction * 100).toFixed(0).padStart(3)}% ${progress.completed}/${progress.total} rows, ${Math.round(progress.currentRate)} rows/s, ${progress.failed} failed`
  // On a terminal the bar redraws in place; in a log every sample is a line of its own.
  return Effect.sync(() =>
    process.stdout.isTTY
      ? process.stdout.write(`\r${line}\x1b[K${progress.done ? "\n" : ""}`)
      : process.stdout.write(`${line}\n`)
  )
}

const program = Effect.gen(function* () {
  const rowCount = yield* Config.Int("BATCH_JOB_ROWS").pipe(Config.withDefault(100_000))
  yield* cql`CREATE KEYSPACE IF NOT EXISTS ${keyspace}
    WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`
  yield* cql`CREATE TABLE IF NOT EXISTS ${orders} (
    bucket int, id int, customer text, cents bigint, PRIMARY KEY (bucket, id))`
  yield* cql`TRUNCATE ${orders}`

  const statements = Array.from({ length: rowCount }, (_, id) => insertOrder(orderOf(id)))
  const job = yield* BatchJob.start(statements, {
    concurrency: 64,
    partitionKey: (statement) => String(statement.params[0]),
    maxBatchSize: 20,
    retry: Schedule.max([Schedule.exponential("20 millis"), Schedule.recurs(5)]),
    progressInterval: "500 millis"
  })
  yield* Stream.runForEach(job.progress, renderProgress)
  const report = yield* job.report
  yield* Effect.log(`imported ${report.succeeded} of ${rowCount} rows, ${report.failures.length} failed`)
  if (report.failures.length > 0) return yield* Effect.die(report.failures[0]?.error)

  const seen = new Uint8Array(rowCount)
  const check = yield* cql<Order>`SELECT bucket, id, customer, cents FROM ${orders}`
    .withOptions({ pageSize: 5000 })
    .stream.pipe(
      Stream.runFold(
        () => ({ rows: 0, wrong: 0 }),
        (state, row) => {
          const expected = orderOf(row.id)
          const correct =
            seen[row.id] === 0 &&
            row.bucket === expected.bucket &&
            row.customer === expected.customer &&
            row.cents === expected.cents
          seen[row.id] = 1
          return { rows: state.rows + 1, wrong: state.wrong + (correct ? 0 : 1) }
        }
      )
    )
  yield* Effect.log(`streamed back ${check.rows} of ${rowCount} rows, all correct: ${check.wrong === 0}`)
  if (check.rows !== rowCount || check.wrong > 0) return yield* Effect.die("the table does not hold the data set")
})

const CassandraLive = CassandraLayer.layerConfig({
  contactPoints: Config.String("CASSANDRA_CONTACT_POINTS").pipe(Config.map((points) => points.split(","))),
  localDataCenter: Config.String("CASSANDRA_LOCAL_DC").pipe(Config.withDefault("datacenter1")),
  // Many fibers share the session; the throttle keeps them from piling requests onto the driver's connections.
  throttle: Config.succeed({ maxInFlight: 256, maxQueued: 100_000 })
})

program.pipe(Effect.scoped, Effect.provide(Layer.orDie(CassandraLive)), NodeRuntime.runMain)
