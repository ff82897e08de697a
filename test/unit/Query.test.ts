import { assert, describe, it } from "@effect/vitest"
import * as Query from "../../src/Query.ts"

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
})
