import { inspect } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Formatter from "effect/Formatter"
import * as Query from "effect-cassandra/Query"

const { cql, identifier } = Query

describe("Query.cql", () => {
  it("turns every interpolated value into a bound parameter", () => {
    const name = "Robert'); DROP TABLE students;--"
    const statement = cql`SELECT * FROM students WHERE name = ${name} AND age > ${7}`
    assert.strictEqual(statement.text, "SELECT * FROM students WHERE name = ? AND age > ?")
    assert.deepStrictEqual(statement.params, [name, 7])
  })

  it("keeps arrays, null and undefined as single parameters", () => {
    const statement = cql`SELECT * FROM t WHERE id IN ${[1, 2, 3]} AND a = ${null} AND b = ${undefined}`
    assert.strictEqual(statement.text, "SELECT * FROM t WHERE id IN ? AND a = ? AND b = ?")
    assert.deepStrictEqual(statement.params, [[1, 2, 3], null, undefined])
  })

  it("writes identifiers quoted and qualified", () => {
    const statement = cql`SELECT ${identifier("Name")} FROM ${identifier("shop", "orders")} WHERE id = ${1}`
    assert.strictEqual(statement.text, `SELECT "Name" FROM "shop"."orders" WHERE id = ?`)
    assert.deepStrictEqual(statement.params, [1])
  })

  it("inlines nested statements with their parameters in order", () => {
    const condition = cql`a = ${1} AND b = ${2}`
    const statement = cql`SELECT * FROM t WHERE ${condition} AND c = ${3}`
    assert.strictEqual(statement.text, "SELECT * FROM t WHERE a = ? AND b = ? AND c = ?")
    assert.deepStrictEqual(statement.params, [1, 2, 3])
  })

  it("merges options without changing the original statement", () => {
    const base = cql`SELECT * FROM t`.withOptions({ consistency: "ONE", pageSize: 10 })
    const changed = base.withOptions({ pageSize: 20, idempotent: true })
    assert.deepStrictEqual(base.options, { consistency: "ONE", pageSize: 10 })
    assert.deepStrictEqual(changed.options, { consistency: "ONE", pageSize: 20, idempotent: true })
    assert.strictEqual(changed.text, base.text)
  })

  it("never prints bound values", () => {
    const statement = cql`INSERT INTO t (k, secret) VALUES (${1}, ${"hunter2"})`
    assert.notInclude(JSON.stringify(statement), "hunter2")
  })

  it("gives a JSON form without any value-bearing option, which never throws", () => {
    const statement = cql`UPDATE t SET secret = ${"hunter2"} WHERE k = ${"alice"}`.withOptions({
      consistency: "QUORUM",
      serialConsistency: "LOCAL_SERIAL",
      idempotent: true,
      pageSize: 100,
      pageState: "c2VjcmV0LXBhZ2Utc3RhdGU",
      timestamp: 1_700_000_000_000_000n,
      routingKey: new Uint8Array([0x61, 0x6c, 0x69, 0x63, 0x65]),
      tracing: true,
      executionProfile: "analytics",
      timeout: "3 seconds",
      prepare: false
    })
    const json = JSON.stringify(statement)
    assert.deepStrictEqual(JSON.parse(json), {
      _id: "Statement",
      text: "UPDATE t SET secret = ? WHERE k = ?",
      parameterCount: 2,
      options: {
        consistency: "QUORUM",
        serialConsistency: "LOCAL_SERIAL",
        idempotent: true,
        pageSize: 100,
        tracing: true,
        executionProfile: "analytics",
        timeout: "3s",
        prepare: false,
        hasPageState: true,
        hasTimestamp: true,
        hasRoutingKey: true
      }
    })
    const dateStamped = cql`SELECT * FROM t`.withOptions({ timestamp: new Date(1_700_000_000_000) })
    assert.notInclude(JSON.stringify(dateStamped), "2023")
  })

  it("shows no bound value or value-bearing option in any printed form", () => {
    const statement = cql`INSERT INTO t (k, secret) VALUES (${"alice"}, ${"hunter2"})`.withOptions({
      timestamp: 1_700_000_000_000_123n,
      pageState: "c2VjcmV0LXBhZ2Utc3RhdGU",
      routingKey: Buffer.from("alice")
    })
    const failure = Cause.fail(statement)
    const printed = [
      String(statement),
      `${statement}`,
      inspect(statement, { depth: 10, showHidden: true }),
      inspect({ nested: [statement] }, { depth: 10 }),
      Formatter.format(statement),
      Formatter.formatJson(statement),
      Cause.pretty(failure)
    ]
    for (const text of printed) {
      for (const secret of [
        "alice",
        "hunter2",
        "1700000000000123",
        "c2VjcmV0LXBhZ2Utc3RhdGU",
        "97,108",
        "616c696365"
      ]) {
        assert.notInclude(text, secret, text)
      }
      assert.include(text, "INSERT INTO t (k, secret) VALUES (?, ?)")
    }
    const fragment = Query.inList(["alice", "hunter2"])
    for (const text of [String(fragment), inspect(fragment), JSON.stringify(fragment), Formatter.format(fragment)]) {
      assert.notInclude(text, "alice")
      assert.notInclude(text, "hunter2")
      assert.include(text, "(?, ?)")
    }
  })
})
