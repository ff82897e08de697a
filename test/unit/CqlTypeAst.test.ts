import { assert, describe, it } from "@effect/vitest"
import * as CqlType from "effect-cassandra/CqlType"
import { canonical, isParseFailure, parse, print } from "../../src/internal/cqlTypeAst.ts"

const canonicalText = (text: string) => {
  const type = parse(text)
  if (isParseFailure(type)) throw new Error(`could not parse ${text} at ${type.position}: ${type.expected}`)
  return print(canonical(type))
}

describe("cqlTypeAst", () => {
  it("prints back every type Cassandra prints in system_schema unchanged", () => {
    // Texts read from system_schema.columns and system_schema.types of Cassandra 5.0.
    for (const text of [
      "int",
      "counter",
      "frozen<list<int>>",
      "list<int>",
      'frozen<tuple<int, frozen<list<int>>, frozen<"Addr">>>',
      "simple",
      'frozen<"Addr">',
      "map<text, frozen<map<int, frozen<set<text>>>>>",
      "vector<float, 3>",
      "frozen<map<int, frozen<tuple<int, text>>>>",
      'list<frozen<"Addr">>',
      "frozen<list<frozen<map<int, int>>>>",
      "vector<frozen<list<int>>, 2>",
      'set<frozen<"Addr">>'
    ]) {
      assert.strictEqual(canonicalText(text), text)
    }
  })

  it("brings declared types to the form Cassandra stores", () => {
    assert.strictEqual(canonicalText("varchar"), "text")
    assert.strictEqual(
      canonicalText("tuple<int, list<int>, Addr>"),
      'frozen<tuple<int, frozen<list<int>>, frozen<"Addr">>>'
    )
    assert.strictEqual(canonicalText("frozen<list<map<int, int>>>"), "frozen<list<frozen<map<int, int>>>>")
    assert.strictEqual(canonicalText("frozen<frozen<list<int>>>"), "frozen<list<int>>")
    assert.strictEqual(canonicalText("frozen<vector<float, 2>>"), "vector<float, 2>")
    assert.strictEqual(canonicalText('"say ""hi"""'), '"say ""hi"""')
  })

  it("reads the CQL type of every CqlType schema", () => {
    const Address = CqlType.Udt("Address", { street: CqlType.Text })
    const schemas = [
      [
        CqlType.NullOr(CqlType.Map(CqlType.Uuid, CqlType.Frozen(CqlType.List(CqlType.Double)))),
        "map<uuid, frozen<list<double>>>"
      ],
      [CqlType.Tuple([CqlType.Int, CqlType.Frozen(Address)]), 'frozen<tuple<int, frozen<"Address">>>'],
      [CqlType.Vector(CqlType.Float, 768), "vector<float, 768>"],
      [CqlType.Set(CqlType.Frozen(Address)), 'set<frozen<"Address">>'],
      [CqlType.Frozen(CqlType.Set(CqlType.Date)), "frozen<set<date>>"]
    ] as const
    for (const [schema, expected] of schemas) {
      assert.strictEqual(canonicalText(CqlType.cqlTypeOf(schema)!), expected)
    }
    assert.deepStrictEqual(parse("shop.address"), { _tag: "Udt", keyspace: "shop", name: "address" })
  })

  it("reads a user-defined type named like a collection keyword, as Cassandra prints it unquoted", () => {
    // Cassandra accepts `CREATE TYPE ks."list" (…)` and prints a column of it as `frozen<list>`.
    assert.deepStrictEqual(parse("frozen<list>"), {
      _tag: "Frozen",
      type: { _tag: "Udt", keyspace: undefined, name: "list" }
    })
    for (const name of ["list", "set", "map", "tuple", "frozen", "vector"]) {
      assert.strictEqual(canonicalText(`map<int, frozen<${name}>>`), `map<int, frozen<${name}>>`)
    }
  })

  it("reads a CqlType.Udt named like a primitive in another case as that type, not as the primitive", () => {
    // `CREATE TYPE ks."Text"` is a valid type, which Cassandra prints quoted; CqlType.Udt keeps the name's case.
    const Text = CqlType.Udt("Text", { a: CqlType.Int })
    assert.strictEqual(canonicalText(CqlType.cqlTypeOf(CqlType.Frozen(Text))!), 'frozen<"Text">')
    assert.strictEqual(canonicalText('frozen<"Text">'), 'frozen<"Text">')
    assert.strictEqual(canonicalText("text"), "text")
  })

  it("tells where a type text stops making sense, without repeating it", () => {
    assert.deepStrictEqual(parse("list<int"), { position: 8, expected: ", or >" })
    assert.deepStrictEqual(parse("map<int>"), { position: 0, expected: "2 type parameter(s) for map" })
    assert.deepStrictEqual(parse("vector<float, 0>"), { position: 14, expected: "a vector dimension" })
    assert.deepStrictEqual(parse("int int"), { position: 4, expected: "the end" })
    assert.deepStrictEqual(parse("list<in;t>"), { position: 7, expected: "a type name, <, >, or a comma" })
  })
})
