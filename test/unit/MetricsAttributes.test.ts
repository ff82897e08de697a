import { assert, describe, it } from "@effect/vitest"
import * as Query from "effect-cassandra/Query"
import {
  batchTarget,
  consistencyAttribute,
  metricOperation,
  serverAttributes,
  spanName,
  statementTarget
} from "../../src/internal/metricsAttributes.ts"

const { cql, identifier } = Query

describe("statement targets", () => {
  it("reads the operation, keyspace and table of DML statements", () => {
    assert.deepStrictEqual(statementTarget("SELECT a, b FROM users WHERE id = ?"), {
      operation: "SELECT",
      keyspace: undefined,
      table: "users"
    })
    assert.deepStrictEqual(statementTarget("  insert into shop.orders (id) values (?)"), {
      operation: "INSERT",
      keyspace: "shop",
      table: "orders"
    })
    assert.deepStrictEqual(statementTarget("UPDATE counters SET n = n + 1 WHERE k = ?"), {
      operation: "UPDATE",
      keyspace: undefined,
      table: "counters"
    })
    assert.deepStrictEqual(statementTarget("DELETE name FROM ks . users WHERE id = ?"), {
      operation: "DELETE",
      keyspace: "ks",
      table: "users"
    })
    assert.deepStrictEqual(statementTarget("TRUNCATE TABLE logs"), {
      operation: "TRUNCATE",
      keyspace: undefined,
      table: "logs"
    })
  })

  it("unquotes quoted identifiers as the library writes them, keeping their case", () => {
    const statement = cql`SELECT * FROM ${identifier("Shop", "Orders")} WHERE id = ${1}`
    assert.deepStrictEqual(statementTarget(statement.text), { operation: "SELECT", keyspace: "Shop", table: "Orders" })
    assert.deepStrictEqual(statementTarget('SELECT "from" FROM "a""b"'), {
      operation: "SELECT",
      keyspace: undefined,
      table: 'a"b'
    })
  })

  it("is not fooled by column names that start like a keyword", () => {
    assert.deepStrictEqual(statementTarget("SELECT from_date, fromage FROM events"), {
      operation: "SELECT",
      keyspace: undefined,
      table: "events"
    })
  })

  it("names only the operation of statements without a table", () => {
    assert.deepStrictEqual(statementTarget("CREATE KEYSPACE ks WITH replication = {}"), {
      operation: "CREATE",
      keyspace: undefined,
      table: undefined
    })
    assert.deepStrictEqual(statementTarget("  "), { operation: "CQL", keyspace: undefined, table: undefined })
  })

  it("bounds the operation metric attribute to the CQL verbs: malformed or garbage statements share `OTHER`", () => {
    const metricOf = (statement: string) => metricOperation(statementTarget(statement).operation)
    for (const statement of ["SELEKT * FROM users", "xyzzy", "Ünïcode", "  ", "-- comment\nSELECT 1", "(SELECT"]) {
      assert.strictEqual(metricOf(statement), "OTHER", statement)
    }
    const garbage = Array.from({ length: 100 }, (_, i) => metricOf(`FOO${i.toString(36)} bar`))
    assert.deepStrictEqual(new Set(garbage), new Set(["OTHER"]))
    for (const verb of ["SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN", "APPLY", "TRUNCATE", "CREATE", "ALTER"]) {
      assert.strictEqual(metricOf(`${verb.toLowerCase()} x`), verb)
    }
    for (const verb of ["DROP", "USE", "GRANT", "REVOKE", "LIST", "DESCRIBE", "DESC", "ADD"]) {
      assert.strictEqual(metricOf(`${verb} x`), verb)
    }
    const garbageBatch = batchTarget([statementTarget("SELEKT 1"), statementTarget("SELEKT 2")])
    assert.strictEqual(metricOperation(garbageBatch.operation), "BATCH OTHER")
    assert.strictEqual(
      metricOperation(batchTarget([statementTarget("INSERT 1"), statementTarget("INSERT 2")]).operation),
      "BATCH INSERT"
    )
    assert.strictEqual(
      metricOperation(batchTarget([statementTarget("INSERT 1"), statementTarget("SELEKT 2")]).operation),
      "BATCH"
    )
  })

  it("keeps the word a statement starts with in its span name and attributes, which are not metric series", () => {
    assert.deepStrictEqual(statementTarget("SELEC v FROM kv"), {
      operation: "SELEC",
      keyspace: undefined,
      table: undefined
    })
    assert.strictEqual(spanName(statementTarget("SELEC v FROM kv"), "shop"), "SELEC shop")
  })

  it("gives a batch `BATCH <verb>` and the table its statements share, else plain `BATCH`", () => {
    const inserts = [statementTarget("INSERT INTO t (a) VALUES (?)"), statementTarget("INSERT INTO t (a) VALUES (?)")]
    assert.deepStrictEqual(batchTarget(inserts), { operation: "BATCH INSERT", keyspace: undefined, table: "t" })
    const mixed = [statementTarget("INSERT INTO ks.t (a) VALUES (?)"), statementTarget("DELETE FROM ks.u WHERE a = ?")]
    assert.deepStrictEqual(batchTarget(mixed), { operation: "BATCH", keyspace: "ks", table: undefined })
  })
})

describe("span naming and attributes", () => {
  it("names spans `{operation} {table}`, else `{operation} {keyspace}`, else the operation", () => {
    const select = statementTarget("SELECT * FROM users")
    assert.strictEqual(spanName(select, "shop"), "SELECT users")
    const create = statementTarget("CREATE TABLE x (a int PRIMARY KEY)")
    assert.strictEqual(spanName(create, "shop"), "CREATE shop")
    assert.strictEqual(spanName(create, undefined), "CREATE")
  })

  it("spells consistency levels in lower case", () => {
    assert.strictEqual(consistencyAttribute("LOCAL_QUORUM"), "local_quorum")
    assert.strictEqual(consistencyAttribute("ONE"), "one")
  })

  it("splits the coordinator into server address and port, IPv6 included", () => {
    assert.deepStrictEqual(serverAttributes("10.0.0.7:9042"), { "server.address": "10.0.0.7", "server.port": 9042 })
    assert.deepStrictEqual(serverAttributes("[::1]:9142"), { "server.address": "::1", "server.port": 9142 })
    assert.deepStrictEqual(serverAttributes("cassandra-0"), { "server.address": "cassandra-0" })
  })
})
