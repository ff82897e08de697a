import { inspect } from "node:util"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Formatter from "effect/Formatter"
import * as Query from "effect-cassandra/Query"
import { Session } from "effect-cassandra/Session"

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

  it("builds each call of one call site from that call's own values, whatever an earlier call inlined", () => {
    const a = identifier("ks", "a")
    const b = identifier("ks", "b")
    const select = (table: Query.Identifier, key: unknown) => cql`SELECT * FROM ${table} WHERE k = ${key}`
    for (const [table, name] of [
      [a, "a"],
      [a, "a"],
      [b, "b"],
      [a, "a"]
    ] as const) {
      const statement = select(table, 1)
      assert.strictEqual(statement.text, `SELECT * FROM "ks"."${name}" WHERE k = ?`)
      assert.deepStrictEqual(statement.params, [1])
    }
    // A position bound at one call and inlined at the next, then bound again.
    assert.strictEqual(select(a, cql`${2} + 1`).text, `SELECT * FROM "ks"."a" WHERE k = ? + 1`)
    assert.deepStrictEqual(select(a, cql`${2} + 1`).params, [2])
    assert.strictEqual(select(a, a).text, `SELECT * FROM "ks"."a" WHERE k = "ks"."a"`)
    assert.deepStrictEqual(select(a, a).params, [])
    const bytes = select(a, new Uint8Array([1, 2]))
    assert.strictEqual(bytes.text, `SELECT * FROM "ks"."a" WHERE k = ?`)
    assert.isTrue(Buffer.isBuffer(bytes.params[0]))
    assert.deepStrictEqual([...(bytes.params[0] as Buffer)], [1, 2])
    // A fragment without values inlined at every call, and one with values.
    const order = cql`ORDER BY c DESC`
    const page = (limit: Query.Statement | number) => cql`SELECT * FROM ${a} ${order} LIMIT ${limit}`
    assert.strictEqual(page(10).text, `SELECT * FROM "ks"."a" ORDER BY c DESC LIMIT ?`)
    assert.deepStrictEqual(page(11).params, [11])
    assert.deepStrictEqual(page(cql`${12}`).params, [12])
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

  it("builds a frozen strings array given more or fewer values than its pieces as it builds an unfrozen copy", () => {
    const pieces = ["SELECT * FROM ", " WHERE k = ", ""]
    const strings = Object.freeze(
      Object.assign([...pieces], { raw: Object.freeze([...pieces]) })
    ) as unknown as TemplateStringsArray
    const unfrozen = Object.assign([...pieces], { raw: [...pieces] }) as unknown as TemplateStringsArray
    const table = identifier("t")
    for (const values of [[table, 1], [table, 1, 2], [table], [table, 1], [table, 1, table], [table, 1]]) {
      const statement = cql(strings, ...values)
      const fresh = cql(unfrozen, ...values)
      assert.strictEqual(statement.text, fresh.text, `${values.length} values`)
      assert.deepStrictEqual(statement.params, fresh.params, `${values.length} values`)
    }
  })

  it("keeps nothing a call site inlined alive once its statement is gone: no option, session or value", async () => {
    setFlagsFromString("--expose-gc")
    const collectGarbage = runInNewContext("gc") as () => void
    const inline = (fragment: unknown) => cql`SELECT * FROM t ${fragment}`
    const session = { execute: () => undefined } as unknown as Session
    const made = [
      () => cql`LIMIT 1`.withOptions({ routingKey: Buffer.from("alice"), pageState: "c2VjcmV0" }),
      () => Effect.runSync(Effect.provideService(Query.template, Session, { ...session }))`LIMIT 1`,
      () => Query.inList(["alice"])
    ]
    for (const make of made) {
      const gone = ((): WeakRef<object> => {
        const fragment = make()
        assert.isTrue(inline(fragment).text.startsWith("SELECT * FROM t "))
        return new WeakRef(fragment)
      })()
      for (let attempt = 0; attempt < 10 && gone.deref() !== undefined; attempt++) {
        await new Promise((resolve) => setImmediate(resolve))
        collectGarbage()
      }
      assert.isUndefined(gone.deref(), "the call site keeps the inlined statement alive")
    }
  })
})
