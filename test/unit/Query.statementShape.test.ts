/**
 * What a statement holds once built: its parameters exactly as an uncached build gives them (no holes, the right
 * length, Uint8Array turned into Buffer), at every call of a call site whatever it inlined before; and its options,
 * which no statement lets another change.
 */
import * as nodeAssert from "node:assert"
import { inspect } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import type * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Formatter from "effect/Formatter"
import * as Query from "effect-cassandra/Query"
import * as Session from "effect-cassandra/Session"
import * as fc from "fast-check"
import { recordingClient, runnerOver, until } from "../support/requestRunner.ts"

const { cql, identifier } = Query

/** Fails unless `actual` holds exactly `expected`'s values, index by index, with no hole and no extra property. */
const assertExactParams = (actual: ReadonlyArray<unknown>, expected: ReadonlyArray<unknown>, label: string) => {
  assert.strictEqual(actual.length, expected.length, `${label}: length`)
  assert.deepStrictEqual(
    Object.keys(actual),
    expected.map((_, index) => String(index)),
    `${label}: every index set`
  )
  // node's strict deep equality tells a hole from `undefined` and a Buffer from a Uint8Array; chai's does neither.
  nodeAssert.deepStrictEqual(actual, expected, label)
  actual.forEach((param, index) => {
    assert.isTrue(Object.is(param, expected[index]) || param instanceof Buffer, `${label}: value ${index}`)
    assert.isFalse(param instanceof Uint8Array && !Buffer.isBuffer(param), `${label}: value ${index} is a Buffer`)
  })
}

const unfrozenCopy = (strings: TemplateStringsArray) =>
  Object.assign([...strings], { raw: [...strings.raw] }) as unknown as TemplateStringsArray

describe("a statement's parameters", () => {
  it("are exactly an uncached build's, at every call of a call site whose inlined and bound positions change", () => {
    const pieces = ["SELECT ", " FROM ", " WHERE a = ", " AND b = ", " ", ""]
    const frozen = Object.freeze(
      Object.assign([...pieces], { raw: Object.freeze([...pieces]) })
    ) as unknown as TemplateStringsArray
    const unfrozen = unfrozenCopy(frozen)
    const order = cql`ORDER BY c`
    const inlinable = [
      () => identifier("v"),
      () => identifier("ks", "t"),
      () => order,
      () => cql`LIMIT 1`,
      () => Query.identifiers(["x", "y"]),
      () => cql`${identifier("w")} = 1`,
      () => Query.inList([1, new Uint8Array([3])]),
      () => cql`k = ${new Uint8Array([9])}`
    ]
    const bound = [
      () => 1,
      () => "alice",
      () => undefined,
      () => null,
      () => new Uint8Array([7, 8]),
      () => Buffer.from([5]),
      () => [1, 2],
      () => ({ text: "DROP", params: [] })
    ]
    const value = fc.constantFrom(...inlinable, ...bound)
    // A few shapes, each called again and again with fresh values: most calls reuse the text their shape kept.
    const shapes = fc.array(fc.array(value, { minLength: 0, maxLength: 7 }), { minLength: 1, maxLength: 3 })
    const calls = fc.array(fc.nat(), { minLength: 1, maxLength: 12 })
    fc.assert(
      fc.property(shapes, calls, (shapes, calls) => {
        calls.forEach((pick, call) => {
          const makers = shapes[pick % shapes.length]!
          // The same values given to both builds, as a caller passing one set of objects would.
          const values = makers.map((make) => make())
          const statement = cql(frozen, ...values)
          const fresh = cql(unfrozen, ...values)
          assert.strictEqual(statement.text, fresh.text, `call ${call}`)
          assertExactParams(statement.params, fresh.params, `call ${call} (${values.length} values)`)
        })
      }),
      { numRuns: 400 }
    )
  })

  it("are exactly the bound values, in order, when a template literal's text is reused", () => {
    const table = identifier("ks", "t")
    const limit = cql`LIMIT 10`
    const nested = cql`AND ${identifier("d")} = 0`
    const insert = (a: unknown, b: unknown, c: unknown, d: unknown) =>
      cql`INSERT INTO ${table} (a, b, c, d) VALUES (${a}, ${b}, ${c}, ${d}) ${nested} ${limit}`
    const blob = new Uint8Array([1, 2, 3])
    const rows: ReadonlyArray<readonly [unknown, unknown, unknown, unknown]> = [
      [1, "x", null, undefined],
      [undefined, undefined, undefined, undefined],
      [blob, 2, blob.subarray(1), "y"],
      [null, null, null, null]
    ]
    for (const [index, row] of rows.entries()) {
      const statement = insert(...row)
      assert.strictEqual(statement.text, `INSERT INTO "ks"."t" (a, b, c, d) VALUES (?, ?, ?, ?) AND "d" = 0 LIMIT 10`)
      const expected = row.map((value) => (value instanceof Uint8Array ? Buffer.from(value) : value))
      assertExactParams(statement.params, expected, `row ${index}`)
    }
  })
})

describe("a statement built with no options", () => {
  it("cannot have its options changed by a cast-and-assign, nor another statement's through its own", () => {
    const first = cql`SELECT * FROM ${identifier("t")} WHERE k = ${1}`
    const second = cql`SELECT * FROM t WHERE k = ${2}`
    const third = cql`SELECT * FROM ${identifier("t")} WHERE k = ${3}`
    assert.throws(() => {
      ;(first.options as { consistency?: string }).consistency = "ALL"
    }, TypeError)
    assert.throws(() => Object.assign(second.options, { pageState: "c2VjcmV0" }), TypeError)
    for (const statement of [first, second, third]) {
      assert.deepStrictEqual(Object.keys(statement.options), [])
      assert.strictEqual(
        JSON.stringify(statement),
        JSON.stringify({ _id: "Statement", text: statement.text, parameterCount: 1, options: {} })
      )
    }
  })

  it("gets its own options from withOptions, leaving every other statement's as they were", () => {
    const plain = cql`SELECT * FROM t WHERE k = ${1}`
    const other = cql`SELECT * FROM t WHERE k = ${2}`
    const strong = plain.withOptions({ consistency: "ALL" })
    const paged = other.withOptions({ pageSize: 5 })
    const none = plain.withOptions({})
    assert.deepStrictEqual({ ...strong.options }, { consistency: "ALL" })
    assert.deepStrictEqual({ ...paged.options }, { pageSize: 5 })
    assert.deepStrictEqual(Object.keys(none.options), [])
    for (const statement of [plain, other])
      assert.deepStrictEqual(Object.keys(statement.options), [])
      // An options object a user mutates (through a cast) changes only its own statement.
    ;(none.options as { tracing?: boolean }).tracing = true
    for (const statement of [plain, other, strong, paged]) assert.notProperty(statement.options, "tracing")
    for (const print of [String, inspect, Formatter.format]) {
      assert.strictEqual(print(plain), print(cql`SELECT * FROM t WHERE k = ${3}`))
      assert.include(print(strong), "ALL")
      assert.notInclude(print(plain), "ALL")
    }
  })

  it.live(
    "is sent with the session's defaults, as a statement given empty options is, and one with options as before",
    () =>
      Effect.gen(function* () {
        const { calls, client } = recordingClient()
        const runner = yield* runnerOver(client, { consistency: "LOCAL_QUORUM" })
        const session: Session.Session = { client, keyspace: undefined, ...runner }
        const sent = (statement: Query.Statement) =>
          Effect.gen(function* () {
            calls.length = 0
            const fiber = yield* Effect.forkChild(Effect.provideService(statement, Session.Session, session))
            yield* until(
              Effect.sync(() => calls.length),
              (count) => count === 1
            )
            const { options } = calls[0]!
            calls[0]!.answer()
            yield* Fiber.join(fiber)
            const {
              readTimeout: _,
              requestDeadline: __,
              ...rest
            } = options as Cassandra.QueryOptions & {
              requestDeadline: number
            }
            return rest
          })
        const read = (k: number) => cql`SELECT v FROM ${identifier("kv")} WHERE k = ${k}`
        const first = yield* sent(read(1))
        const again = yield* sent(read(2))
        const empty = yield* sent(read(3).withOptions({}))
        const one = yield* sent(read(4).withOptions({ consistency: "ONE", idempotent: false }))
        assert.deepStrictEqual(again, first)
        assert.deepStrictEqual(empty, first)
        assert.strictEqual(first.consistency, 6)
        assert.strictEqual(one.consistency, 1)
        assert.isFalse(one.isIdempotent)
        assert.isTrue(first.isIdempotent)
      }).pipe(Effect.scoped)
  )
})
