import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schema from "effect/Schema"
import * as CqlType from "effect-cassandra/CqlType"
import * as Session from "effect-cassandra/Session"
import * as Table from "effect-cassandra/Table"

const Address = CqlType.Udt("Address", { street: CqlType.NullOr(CqlType.Text), zip: CqlType.NullOr(CqlType.Int) })

const Events = Table.make({
  keyspace: "shop",
  name: "events",
  columns: {
    tenant: CqlType.Text,
    day: CqlType.Date,
    at: CqlType.TimeUuid,
    seq: CqlType.Int,
    tenant_name: CqlType.NullOr(CqlType.Text),
    tags: CqlType.NullOr(CqlType.Map(CqlType.Text, CqlType.Frozen(CqlType.List(CqlType.Int)))),
    where: CqlType.NullOr(CqlType.Frozen(Address)),
    pair: CqlType.NullOr(CqlType.Tuple([CqlType.Int, CqlType.Frozen(Address)])),
    embedding: CqlType.NullOr(CqlType.Vector(CqlType.Float, 1536))
  },
  partitionKey: ["tenant", "day"],
  clusteringKey: [{ column: "at", order: "DESC" }, "seq"],
  staticColumns: ["tenant_name"]
})

describe("Table", () => {
  it.effect("writes the CREATE TABLE statement with quoted names, static columns, keys and clustering order", () =>
    Effect.gen(function* () {
      const statement = yield* Table.createStatement(Events)
      assert.strictEqual(
        statement.text,
        'CREATE TABLE "shop"."events" ("tenant" text, "day" date, "at" timeuuid, "seq" int, "tenant_name" text STATIC, ' +
          '"tags" map<text, frozen<list<int>>>, "where" frozen<"Address">, "pair" tuple<int, frozen<"Address">>, ' +
          '"embedding" vector<float, 1536>, PRIMARY KEY (("tenant", "day"), "at", "seq")) ' +
          'WITH CLUSTERING ORDER BY ("at" DESC, "seq" ASC)'
      )
      assert.deepStrictEqual(statement.params, [])
      const ifNotExists = yield* Table.createStatement(
        Table.make({
          keyspace: "shop",
          name: "counts",
          columns: { id: CqlType.Int, n: CqlType.Counter },
          partitionKey: ["id"]
        }),
        { ifNotExists: true }
      )
      assert.strictEqual(
        ifNotExists.text,
        'CREATE TABLE IF NOT EXISTS "shop"."counts" ("id" int, "n" counter, PRIMARY KEY (("id")))'
      )
    })
  )

  it.effect("writes the CREATE TYPE statement of a CqlType.Udt schema, without the keyspace its name may carry", () =>
    Effect.gen(function* () {
      const statement = yield* Table.createTypeStatement(Table.userType("shop", Address))
      assert.strictEqual(statement.text, 'CREATE TYPE "shop"."Address" ("street" text, "zip" int)')
      const qualified = Table.userType("shop", CqlType.Udt("shop.point", { x: CqlType.Double }))
      assert.strictEqual(qualified.name, "point")
    })
  )

  it.effect("refuses a column or field whose schema has no CQL type, naming it", () =>
    Effect.gen(function* () {
      const untyped = Table.make({
        keyspace: "shop",
        name: "t",
        columns: { id: CqlType.Int, note: Schema.String, other: Schema.Number },
        partitionKey: ["id"]
      })
      const error = yield* Effect.flip(Table.createStatement(untyped))
      assert.strictEqual(error.reason._tag, "Configuration")
      assert.include(error.message, "column note, other have a schema without a CQL type")
      const notUdt = yield* Effect.flip(
        Table.createTypeStatement(Table.userType("shop", Schema.Struct({ a: CqlType.Int })))
      )
      assert.include(notUdt.message, "must be a CqlType.Udt")
    })
  )

  it("derives the row, primary key and partition key Schemas, with the columns' types", () => {
    assert.deepStrictEqual(Object.keys(Events.Row.fields), [
      "tenant",
      "day",
      "at",
      "seq",
      "tenant_name",
      "tags",
      "where",
      "pair",
      "embedding"
    ])
    assert.deepStrictEqual(Object.keys(Events.PrimaryKey.fields), ["tenant", "day", "at", "seq"])
    assert.deepStrictEqual(Object.keys(Events.PartitionKey.fields), ["tenant", "day"])
    const key: typeof Events.PrimaryKey.Type = { tenant: "t", day: "2024-02-29", at: "x", seq: 1 }
    const seq: number = key.seq
    // @ts-expect-error a column's type comes from its CqlType schema: int is a number
    const asText: string = key.seq
    assert.deepStrictEqual<unknown>([seq, asText], [1, 1])
    assert.deepStrictEqual(Events.clusteringKey, [
      { column: "at", order: "DESC" },
      { column: "seq", order: "ASC" }
    ])
  })

  it("moves a table to another keyspace", () => {
    const moved = Table.withKeyspace(Events, "tenant_2")
    assert.strictEqual(moved.keyspace, "tenant_2")
    assert.deepStrictEqual(moved.clusteringKey, Events.clusteringKey)
    assert.strictEqual(moved.columns, Events.columns)
  })

  it("fails every statement of a table or type with a name that cannot be quoted safely before sending it", () => {
    // A session that fails the test if anything reaches it.
    const unreachable: Session.Session = {
      client: undefined as never,
      keyspace: undefined,
      execute: () => Effect.die("a request was sent"),
      batch: () => Effect.die("a batch was sent"),
      inFlight: Effect.succeed(0)
    }
    const reasonOf = (effect: Effect.Effect<unknown, unknown, Session.Session>) => {
      const exit = Effect.runSyncExit(Effect.provideService(effect, Session.Session, unreachable))
      assert.isTrue(Exit.isFailure(exit))
      const reason = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      assert.strictEqual(reason?._tag, "Fail")
      const error = reason?._tag === "Fail" ? (reason.error as { reason?: { _tag: string } }) : undefined
      return error?.reason?._tag
    }
    const hostile = ['a"b', 'x" int); DROP TABLE t; --', "with space", "x".repeat(49), "ünï", "", "select*"]
    for (const name of hostile) {
      const columns = { id: CqlType.Int, n: CqlType.NullOr(CqlType.Int) }
      const tables = [
        Table.make({ keyspace: name, name: "t", columns, partitionKey: ["id"] }),
        Table.make({ keyspace: "ks", name, columns, partitionKey: ["id"] }),
        Table.make({ keyspace: "ks", name: "t", columns: { ...columns, [name]: CqlType.Int }, partitionKey: ["id"] })
      ]
      for (const table of tables) {
        const described = `${JSON.stringify(name)} in ${table.keyspace}.${table.name}`
        const statements = [
          Effect.flatMap(Table.createStatement(table), (statement) => statement),
          table.insert({ id: 1, n: 2, [name]: 3 }),
          table.find({ id: 1 }),
          table.update({ id: 1 }, { n: 2, [name]: 3 })
        ]
        for (const statement of statements) assert.strictEqual(reasonOf(statement), "InvalidIdentifier", described)
      }
      const type = Table.userType("ks", CqlType.Udt(`"${name.replaceAll('"', '""')}"`, { a: CqlType.Int }))
      assert.strictEqual(
        reasonOf(Effect.flatMap(Table.createTypeStatement(type), (s) => s)),
        name === "" ? "Configuration" : "InvalidIdentifier",
        JSON.stringify(name)
      )
    }
  })
})
