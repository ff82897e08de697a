import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as CqlType from "effect-cassandra/CqlType"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Query from "effect-cassandra/Query"
import * as Table from "effect-cassandra/Table"
import { testOptions, uniqueKeyspace } from "../support/session.ts"

const Address = CqlType.Udt("Address", { street: CqlType.NullOr(CqlType.Text), zip: CqlType.NullOr(CqlType.Int) })

const readings = (keyspace: string) =>
  Table.make({
    keyspace,
    name: "readings",
    columns: {
      sensor: CqlType.Text,
      day: CqlType.Date,
      at: CqlType.Timestamp,
      seq: CqlType.Int,
      site: CqlType.NullOr(CqlType.Frozen(Address)),
      values: CqlType.NullOr(CqlType.Map(CqlType.Text, CqlType.Frozen(CqlType.List(CqlType.Double)))),
      embedding: CqlType.NullOr(CqlType.Vector(CqlType.Float, 3))
    },
    partitionKey: ["sensor", "day"],
    clusteringKey: [{ column: "at", order: "DESC" }, "seq"],
    staticColumns: ["site"]
  })

describe("Table", () => {
  it.live("creates its table and type, and its typed statements write and read rows by key and by partition", () =>
    Effect.gen(function* () {
      const keyspace = uniqueKeyspace("table_statements")
      yield* Effect.acquireRelease(
        Query.cql`CREATE KEYSPACE ${Query.identifier(keyspace)} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
        () => Effect.ignore(Query.cql`DROP KEYSPACE IF EXISTS ${Query.identifier(keyspace)}`)
      )
      const table = readings(keyspace)
      yield* Table.createType(Table.userType(keyspace, Address))
      yield* Table.create(table)
      // IF NOT EXISTS leaves the existing table alone.
      yield* Table.create(table, { ifNotExists: true })
      const site = { street: "Storgata 1", zip: 150 }
      const rows = [1, 2, 3].map((seq) => ({
        sensor: "s1",
        day: "2024-02-29",
        at: new Date(Date.UTC(2024, 1, 29, 12, seq)),
        seq,
        site,
        values: new Map([["t", [20.5, 21 + seq]]]),
        embedding: [0.5, 1, seq]
      }))
      yield* Effect.forEach(rows, (row) => table.insert(row))
      const found = yield* table.find({ sensor: "s1", day: "2024-02-29", at: rows[1]!.at, seq: 2 })
      assert.deepStrictEqual(Option.getOrThrow(found), rows[1])
      assert.isTrue(Option.isNone(yield* table.find({ sensor: "s1", day: "2024-03-01", at: rows[1]!.at, seq: 2 })))
      const partition = yield* Stream.runCollect(table.findPartition({ sensor: "s1", day: "2024-02-29" }))
      // Newest first: the clustering order is `at DESC`.
      assert.deepStrictEqual(
        partition.map((row) => row.seq),
        [3, 2, 1]
      )
      const error = yield* Effect.flip(table.insert({ ...rows[0]!, seq: 2 ** 40 }))
      assert.strictEqual(error._tag, "CqlSchemaError")
      // The error names the column and the rule, never the value.
      assert.include(error.message, "seq")
      assert.notInclude(error.message, String(2 ** 40))
    }).pipe(Effect.scoped, Effect.provide(CassandraLayer.layer(testOptions())))
  )

  it.live(
    "a counter table refuses insert before sending anything, and counts with increment; rows update and delete by key",
    () =>
      Effect.gen(function* () {
        const keyspace = uniqueKeyspace("table_counters")
        yield* Effect.acquireRelease(
          Query.cql`CREATE KEYSPACE ${Query.identifier(keyspace)} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
          () => Effect.ignore(Query.cql`DROP KEYSPACE IF EXISTS ${Query.identifier(keyspace)}`)
        )
        const views = Table.make({
          keyspace,
          name: "page_views",
          columns: {
            page: CqlType.Text,
            day: CqlType.Date,
            total: CqlType.NullOr(CqlType.Counter),
            views: CqlType.NullOr(CqlType.Counter),
            visits: CqlType.NullOr(CqlType.Counter)
          },
          partitionKey: ["page"],
          clusteringKey: ["day"],
          staticColumns: ["total"]
        })
        yield* Table.create(views)
        const key = { page: "/", day: "2024-02-29" }
        const refused = yield* Effect.flip(views.insert({ ...key, total: 1n, views: 1n, visits: 1n }))
        assert.strictEqual(refused._tag, "CassandraError")
        if (refused._tag !== "CassandraError") return
        assert.strictEqual(refused.reason._tag, "Configuration")
        assert.strictEqual(
          refused.message,
          `Table.insert: table ${keyspace}.page_views has counter columns (total, views, visits), which INSERT cannot write: use increment`
        )
        yield* views.increment(key, { views: 3n, visits: 1n, total: 3n })
        yield* views.increment(key, { views: -1n })
        assert.deepStrictEqual(Option.getOrThrow(yield* views.find(key)), { ...key, total: 3n, views: 2n, visits: 1n })
        const notCounter = yield* Effect.flip(views.increment(key, { day: 1n } as never))
        assert.include(notCounter.message, `column day of ${keyspace}.page_views is not a counter column`)
        const nothing = yield* Effect.flip(views.increment(key, {}))
        assert.include(nothing.message, `an increment of ${keyspace}.page_views names no counter column`)
        yield* views.delete(key)
        assert.isTrue(Option.isNone(yield* views.find(key)))

        const table = readings(keyspace)
        yield* Table.createType(Table.userType(keyspace, Address))
        yield* Table.create(table)
        const row = {
          sensor: "s1",
          day: "2024-02-29",
          at: new Date(Date.UTC(2024, 1, 29, 12)),
          seq: 1,
          site: null,
          values: new Map([["t", [20.5]]]),
          embedding: [0.5, 1, 2]
        }
        yield* table.insert(row)
        const primaryKey = { sensor: "s1", day: "2024-02-29", at: row.at, seq: 1 }
        // Only the named columns change; null clears one.
        yield* table.update(primaryKey, { embedding: null, site: { street: "Storgata 1", zip: 150 } })
        assert.deepStrictEqual(Option.getOrThrow(yield* table.find(primaryKey)), {
          ...row,
          embedding: null,
          site: { street: "Storgata 1", zip: 150 }
        })
        const countersAreNotSet = yield* Effect.flip(views.update(key, { views: 1n }))
        assert.include(countersAreNotSet.message, "use increment")
        yield* table.delete(primaryKey)
        assert.isTrue(Option.isNone(yield* table.find(primaryKey)))
      }).pipe(Effect.scoped, Effect.provide(CassandraLayer.layer(testOptions())))
  )
})
