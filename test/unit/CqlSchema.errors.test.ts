import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { CqlSchemaError, void as runVoid } from "effect-cassandra/CqlSchema"
import * as CqlType from "effect-cassandra/CqlType"
import { cql } from "effect-cassandra/Query"
import { Session } from "effect-cassandra/Session"

// A request that fails to encode is rejected before the session is ever used, so none is needed.
const noSession = {} as Session

/** The error a schema-checked request fails with when its Schema cannot encode `request`. */
const requestError = <S extends Schema.Codec<any, any>>(Request: S, request: unknown) =>
  Effect.flip(
    runVoid({ Request, execute: (encoded) => cql`INSERT INTO t (v) VALUES (${encoded})` })(request as S["Type"])
  ).pipe(Effect.provideService(Session, noSession))

const refinements: ReadonlyArray<{
  readonly name: string
  readonly schema: Schema.Codec<any, any>
  readonly input: unknown
  readonly shown: string
  readonly rule: string
}> = [
  {
    name: "int range",
    schema: CqlType.Int,
    input: 2 ** 40,
    shown: "1099511627776",
    rule: "-2147483648 and 2147483647"
  },
  { name: "float range", schema: CqlType.Float, input: 1e300, shown: "1e+300", rule: "32-bit float range" },
  {
    name: "time range",
    schema: CqlType.Time,
    input: 86_400_000_000_000n,
    shown: "86400000000000",
    rule: "0 and 86399999999999"
  },
  { name: "impossible date", schema: CqlType.Date, input: "2023-02-29", shown: "2023-02-29", rule: "calendar date" },
  { name: "non-ASCII ascii", schema: CqlType.Ascii, input: "caf\u00e9-secret", shown: "secret", rule: "ASCII" },
  { name: "bad uuid", schema: CqlType.Uuid, input: "not-a-uuid-secret", shown: "secret", rule: "UUID" },
  {
    name: "timeuuid of another version",
    schema: CqlType.TimeUuid,
    input: "123e4567-e89b-42d3-a456-426614174000",
    shown: "426614174000",
    rule: "version 1 (time-based) UUID"
  },
  { name: "bad inet", schema: CqlType.Inet, input: "10.0.0.999", shown: "999", rule: "IPv4 or IPv6 address" },
  { name: "lone surrogate", schema: CqlType.Text, input: "secret\ud800", shown: "secret", rule: "lone surrogates" },
  {
    name: "vector of the wrong length",
    schema: CqlType.Vector(CqlType.Float, 3),
    input: [1.25, 2.5],
    shown: "1.25",
    rule: "exactly 3 elements"
  }
]

describe("CqlSchemaError", () => {
  for (const { input, name, rule, schema, shown } of refinements) {
    it.effect(`states the rule of a failed refinement without the input: ${name}`, () =>
      Effect.gen(function* () {
        const error = yield* requestError(Schema.Struct({ value: schema }), { value: input })
        assert.instanceOf(error, CqlSchemaError)
        assert.strictEqual(error.column, "value")
        assert.include(error.message, rule)
        assert.notInclude(error.message, "[object Object]")
        assert.notInclude(error.message, shown)
        assert.notInclude(JSON.stringify(error), shown)
      })
    )
  }

  it.effect("a request whose Udt value lacks a field fails naming the field, before anything is sent", () =>
    Effect.gen(function* () {
      const Address = CqlType.Udt("address", { street: CqlType.NullOr(CqlType.Text), zip: CqlType.NullOr(CqlType.Int) })
      const error = yield* requestError(Schema.Struct({ id: CqlType.Int, home: CqlType.Frozen(Address) }), {
        id: 1,
        home: { street: "1 Main St" }
      })
      assert.instanceOf(error, CqlSchemaError)
      assert.strictEqual(error.direction, "Request")
      assert.strictEqual(error.column, "home.zip")
      assert.include(error.message, "Missing key")
      assert.notInclude(error.message, "Main St")
    })
  )
  it.effect("a value refused inside a Record is named by its schema's fields, never by the caller's key", () =>
    Effect.gen(function* () {
      const Scores = Schema.Struct({ scores: Schema.Record(Schema.String, Schema.Struct({ points: CqlType.Int })) })
      const error = yield* requestError(Scores, { scores: { "alice@example.com": { points: 2 ** 40 } } })
      assert.instanceOf(error, CqlSchemaError)
      assert.strictEqual(error.column, "scores.<key>.points")
      assert.notInclude(error.message, "alice")
      assert.notInclude(JSON.stringify(error), "alice")
    })
  )
})

describe("CqlSchemaError for hostile inputs", () => {
  const huge: ReadonlyArray<readonly [string, Schema.Codec<any, any>, string, string]> = [
    ["ascii with a lone surrogate", CqlType.Ascii, `${"secret".repeat(2_000_000)}\ud800`, "ASCII"],
    ["date of 10 million digits", CqlType.Date, `${"1".repeat(10_000_000)}-01-01`, "calendar date"],
    ["inet", CqlType.Inet, `${"1".repeat(10_000_000)}.1.1.1`, "IPv4 or IPv6"],
    ["uuid", CqlType.Uuid, "f".repeat(10_000_000), "UUID"]
  ]
  for (const [name, schema, input, rule] of huge) {
    it.effect(`a 10 MB ${name} fails with the rule, not a stack overflow`, () =>
      Effect.gen(function* () {
        const error = yield* requestError(schema, input)
        assert.instanceOf(error, CqlSchemaError)
        assert.include(error.message, rule)
        assert.notInclude(error.message, "secret")
        assert.notInclude(error.message, "111")
      })
    )
  }

  const Tagged = CqlType.Udt("tagged", { n: CqlType.Int, tags: CqlType.NullOr(CqlType.Set(CqlType.Text)) })
  const Request = Schema.Struct({ id: CqlType.Int, u: CqlType.Frozen(Tagged) })
  const throwingIterator = new Set(["a"])
  Object.defineProperty(throwingIterator, Symbol.iterator, {
    value: () => {
      throw new Error("secret iterator")
    }
  })
  const hostile: ReadonlyArray<readonly [string, unknown]> = [
    [
      "a throwing getter",
      {
        id: 1,
        u: {
          get n() {
            throw new Error("secret getter")
          },
          tags: null
        }
      }
    ],
    [
      "a Proxy whose traps throw",
      new Proxy(
        {},
        {
          get: () => {
            throw new Error("secret get")
          },
          has: () => {
            throw new Error("secret has")
          },
          ownKeys: () => {
            throw new Error("secret keys")
          }
        }
      )
    ],
    ["a set whose iterator throws", { id: 1, u: { n: 1, tags: throwingIterator } }]
  ]
  for (const [name, request] of hostile) {
    it.effect(`a request with ${name} fails with a CqlSchemaError, not a defect, and keeps the thrown text out`, () =>
      Effect.gen(function* () {
        const error = yield* requestError(Request, request)
        assert.instanceOf(error, CqlSchemaError)
        assert.strictEqual(error.direction, "Request")
        assert.notInclude(error.message, "secret")
        assert.notInclude(JSON.stringify(error), "secret")
      })
    )
  }

  it.effect("a cyclic value and a Symbol element fail with the path to them and no value", () =>
    Effect.gen(function* () {
      const cyclic: { id: number; u: { n: number; tags: Set<unknown> } } = { id: 1, u: { n: 1, tags: new Set() } }
      cyclic.u.tags.add("a")
      cyclic.u.tags.add(cyclic)
      const cycleError = yield* requestError(Request, cyclic)
      assert.instanceOf(cycleError, CqlSchemaError)
      assert.strictEqual(cycleError.column, "u.tags.values.1")
      const symbolError = yield* requestError(Request, { id: 1, u: { n: 1, tags: new Set([Symbol("secret")]) } })
      assert.instanceOf(symbolError, CqlSchemaError)
      assert.strictEqual(symbolError.column, "u.tags.values.0")
      assert.notInclude(symbolError.message, "secret")
    })
  )

  it.effect("a bad set element or map key is named by its position in the value given, not in Cassandra's order", () =>
    Effect.gen(function* () {
      // Sorted, the lone surrogate would come last (surrogates sort after every other UTF-16 unit in UTF-8 order).
      const setError = yield* requestError(CqlType.Set(CqlType.Text), new Set(["b", "\ud800secret", "a"]))
      assert.instanceOf(setError, CqlSchemaError)
      assert.strictEqual(setError.column, "values.1")
      assert.notInclude(setError.message, "secret")
      const mapError = yield* requestError(
        CqlType.Map(CqlType.Text, CqlType.Int),
        new Map([
          ["z", 1],
          ["\udfffsecret", 2],
          ["a", 3]
        ])
      )
      assert.instanceOf(mapError, CqlSchemaError)
      assert.strictEqual(mapError.column, "entries.1.0")
      const nestedError = yield* requestError(
        CqlType.Set(CqlType.Frozen(CqlType.Set(CqlType.Ascii))),
        new Set([new Set(["z"]), new Set(["y", "caf\u00e9secret", "b"]), new Set(["a"])])
      )
      assert.instanceOf(nestedError, CqlSchemaError)
      assert.strictEqual(nestedError.column, "values.1.values.1")
    })
  )
})
