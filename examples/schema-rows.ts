/**
 * Typed reads and writes of a table that uses many CQL types, then a stream over a large partition that holds at
 * most one page of rows in memory at a time:
 *
 *   CASSANDRA_CONTACT_POINTS=127.0.0.1 node --conditions=effect-cassandra/source examples/schema-rows.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { BigDecimal, Config, Effect, Layer, Schema, Stream } from "effect"
import { CassandraLayer, CqlSchema, CqlType, Query } from "effect-cassandra"

const { cql, identifier } = Query
const keyspace = identifier("example_rows")
const readings = identifier("example_rows", "readings")

const Reading = Schema.Struct({
  sensor: CqlType.Uuid,
  at: CqlType.Timestamp,
  seq: CqlType.BigInt,
  celsius: CqlType.Double,
  price: CqlType.NullOr(CqlType.Decimal),
  source: CqlType.NullOr(CqlType.Inet),
  day: CqlType.Date,
  tags: CqlType.NullOr(CqlType.Set(CqlType.Text)),
  samples: CqlType.NullOr(CqlType.List(CqlType.Float)),
  labels: CqlType.NullOr(CqlType.Map(CqlType.Text, CqlType.Int)),
  raw: CqlType.NullOr(CqlType.Blob),
  embedding: CqlType.NullOr(CqlType.Vector(CqlType.Float, 3))
})

const insertReading = CqlSchema.void({
  Request: Reading,
  execute: (r) =>
    cql`INSERT INTO ${readings} (sensor, at, seq, celsius, price, source, day, tags, samples, labels, raw, embedding)
        VALUES (${r.sensor}, ${r.at}, ${r.seq}, ${r.celsius}, ${r.price}, ${r.source}, ${r.day}, ${r.tags},
                ${r.samples}, ${r.labels}, ${r.raw}, ${r.embedding})`
})

const readingsOf = CqlSchema.stream({
  Request: CqlType.Uuid,
  Result: Reading,
  execute: (sensor) => cql`SELECT * FROM ${readings} WHERE sensor = ${sensor}`.withOptions({ pageSize: 500 })
})

const rowCount = 5_000

const program = Effect.gen(function* () {
  yield* cql`CREATE KEYSPACE IF NOT EXISTS ${keyspace}
    WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`
  yield* cql`CREATE TABLE IF NOT EXISTS ${readings} (
    sensor uuid, at timestamp, seq bigint, celsius double, price decimal, source inet, day date,
    tags set<text>, samples list<float>, labels map<text, int>, raw blob, embedding vector<float, 3>,
    PRIMARY KEY (sensor, seq))`
  const sensor = crypto.randomUUID()
  const started = Date.now()
  yield* Effect.forEach(
    Array.from({ length: rowCount }, (_, seq) => seq),
    (seq) =>
      insertReading({
        sensor,
        at: new Date(started + seq),
        seq: BigInt(seq),
        celsius: 20 + (seq % 10) / 4,
        price: BigDecimal.fromStringUnsafe(`${seq}.25`),
        source: "192.0.2.7",
        day: "2026-11-26",
        tags: new Set(["lab", seq % 2 === 0 ? "even" : "odd"]),
        samples: [0.5, 1.5],
        labels: new Map([["floor", 3]]),
        raw: new Uint8Array([seq % 256]),
        embedding: [0.25, 0.5, 0.75]
      }),
    { concurrency: 64, discard: true }
  )
  const summary = yield* readingsOf(sensor).pipe(
    Stream.runFold(
      () => ({ rows: 0, lastSeq: -1n, ordered: true }),
      (state, reading) => ({
        rows: state.rows + 1,
        lastSeq: reading.seq,
        ordered: state.ordered && reading.seq > state.lastSeq
      })
    )
  )
  yield* Effect.log(`streamed ${summary.rows} of ${rowCount} readings, in order: ${summary.ordered}`)
  if (summary.rows !== rowCount || !summary.ordered) return yield* Effect.die("the stream lost or reordered rows")
})

const CassandraLive = CassandraLayer.layerConfig({
  contactPoints: Config.String("CASSANDRA_CONTACT_POINTS").pipe(Config.map((points) => points.split(","))),
  localDataCenter: Config.String("CASSANDRA_LOCAL_DC").pipe(Config.withDefault("datacenter1"))
})

program.pipe(Effect.provide(Layer.orDie(CassandraLive)), NodeRuntime.runMain)
