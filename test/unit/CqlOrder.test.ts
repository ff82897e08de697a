import { Buffer } from "node:buffer"
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as BigDecimal from "effect/BigDecimal"
import * as Schema from "effect/Schema"
import * as CqlType from "effect-cassandra/CqlType"
import * as fc from "fast-check"
import * as CqlOrder from "../../src/internal/cqlOrder.ts"

const { types } = Cassandra

/**
 * Values of one CQL type in Cassandra's comparator order for it (what `UUIDType`, `TimeUUIDType`, `UTF8Type`, … in
 * apache/cassandra's `db/marshal` return), each case checked in both directions through a set and a map's keys.
 */
const orders: ReadonlyArray<{
  readonly name: string
  readonly schema: Schema.Top
  readonly sorted: ReadonlyArray<any>
}> = [
  // UTF-8 byte order: U+1F600 (a surrogate pair in UTF-16, so before U+E000 in JavaScript's order) comes last.
  { name: "text", schema: CqlType.Text, sorted: ["", "A", "a", "ab", "\u00e9", "\ue000", "\ufffd", "\u{1f600}"] },
  { name: "ascii", schema: CqlType.Ascii, sorted: ["", " ", "A", "Z", "a", "~"] },
  { name: "boolean", schema: CqlType.Boolean, sorted: [false, true] },
  { name: "tinyint", schema: CqlType.TinyInt, sorted: [-128, -1, 0, 2, 10, 127] },
  { name: "smallint", schema: CqlType.SmallInt, sorted: [-32_768, -10, 9, 32_767] },
  { name: "int", schema: CqlType.Int, sorted: [-(2 ** 31), -2, 0, 10, 2 ** 31 - 1] },
  { name: "bigint", schema: CqlType.BigInt, sorted: [-(2n ** 63n), -1n, 0n, 9n, 10n, 2n ** 63n - 1n] },
  { name: "varint", schema: CqlType.Varint, sorted: [-(2n ** 100n), -1n, 2n, 10n, 2n ** 100n] },
  { name: "float", schema: CqlType.Float, sorted: [-Infinity, -1.5, 0, 1e-45, 2, 10, Infinity, Number.NaN] },
  { name: "double", schema: CqlType.Double, sorted: [-Infinity, -1e300, -0.5, 0, 2, 10, 1e300, Infinity, Number.NaN] },
  {
    name: "decimal",
    schema: CqlType.Decimal,
    sorted: [BigDecimal.make(-105n, 1), BigDecimal.make(0n, 0), BigDecimal.make(15n, 1), BigDecimal.make(2n, 0)]
  },
  {
    name: "uuid",
    schema: CqlType.Uuid,
    sorted: [
      "00000000-0000-0000-0000-000000000000",
      // version 1: by timestamp (time_hi, time_mid, time_low) although the bytes say otherwise ...
      "ffffffff-ffff-1000-8000-000000000000",
      "00000000-0000-1001-7f00-000000000000",
      // ... then by the remaining bytes, unsigned
      "00000000-0000-1001-8000-000000000000",
      // other versions after version 1, each by bytes
      "00000000-0000-4000-8000-000000000000",
      "0000000a-0000-4000-8000-000000000000",
      "ffffffff-0000-4000-8000-000000000000"
    ]
  },
  {
    name: "timeuuid",
    schema: CqlType.TimeUuid,
    sorted: [
      "ffffffff-ffff-1000-8000-000000000000",
      // the same timestamp: the clock sequence and node compare as signed bytes (TimeUUIDType, CASSANDRA-8730)
      "00000000-0000-1001-8000-000000000000",
      "00000000-0000-1001-ff00-000000000000",
      "00000000-0000-1001-0000-000000000000",
      "00000000-0000-1001-7f00-000000000000",
      "00000000-0001-1001-0000-000000000000"
    ]
  },
  {
    name: "inet",
    schema: CqlType.Inet,
    sorted: ["::", "::1", "::ffff:10.0.0.1", "1.2.3.4", "10.0.0.1", "a00:1::", "10.0.0.2", "fe80::1"]
  },
  {
    name: "date",
    schema: CqlType.Date,
    sorted: ["-5877641-06-23", "-0001-12-31", "0000-01-01", "1969-12-31", "1970-01-01", "2024-02-29", "+10000-01-01"]
  },
  { name: "time", schema: CqlType.Time, sorted: [0n, 1n, 86_399_999_999_999n] },
  { name: "timestamp", schema: CqlType.Timestamp, sorted: [new Date(-1e12), new Date(0), new Date(1e12)] },
  {
    name: "blob",
    schema: CqlType.Blob,
    sorted: [Uint8Array.of(), Uint8Array.of(0), Uint8Array.of(0, 0), Uint8Array.of(1), Uint8Array.of(0xff)]
  },
  {
    name: "tuple",
    schema: CqlType.Tuple([CqlType.NullOr(CqlType.Int), CqlType.NullOr(CqlType.Text)]),
    sorted: [
      [null, null],
      [null, "z"],
      [-1, "z"],
      [1, null],
      [1, "a"],
      [2, "a"]
    ]
  },
  {
    name: "user-defined type, by its fields in order",
    schema: CqlType.Frozen(CqlType.Udt("pair", { b: CqlType.NullOr(CqlType.Int), a: CqlType.NullOr(CqlType.Text) })),
    sorted: [
      { b: null, a: "z" },
      { b: 1, a: null },
      { b: 1, a: "a" },
      { b: 2, a: "a" }
    ]
  },
  {
    name: "frozen list",
    schema: CqlType.Frozen(CqlType.List(CqlType.Int)),
    sorted: [[-1, 5], [1], [1, 0], [1, 2], [2]]
  },
  {
    name: "frozen set, compared by its sorted elements",
    schema: CqlType.Frozen(CqlType.Set(CqlType.Text)),
    sorted: [new Set(["a"]), new Set(["b", "a"]), new Set(["c", "a"]), new Set(["b"])]
  },
  {
    name: "frozen map, compared by its entries in key order",
    schema: CqlType.Frozen(CqlType.Map(CqlType.Int, CqlType.Text)),
    sorted: [
      new Map([[1, "a"]]),
      new Map([[1, "b"]]),
      new Map([
        [2, "a"],
        [1, "b"]
      ]),
      new Map([[2, "a"]])
    ]
  },
  {
    name: "vector",
    schema: CqlType.Vector(CqlType.Int, 2),
    sorted: [
      [-1, 9],
      [1, 2],
      [1, 3]
    ]
  }
]

/** Another insertion order of `values`. */
const shuffled = <A>(values: ReadonlyArray<A>): Array<A> => [...values].reverse()

describe("CqlType order of sets and maps", () => {
  for (const { name, schema, sorted } of orders) {
    it(`${name}: a set is encoded and decoded in Cassandra's order, whatever the insertion order`, () => {
      const SetSchema = CqlType.Set(schema as Schema.Codec<unknown, unknown>)
      const encodeSet = Schema.encodeSync(SetSchema)
      const decodeSet = Schema.decodeSync(SetSchema)
      const encodedSorted = [...encodeSet(new Set(sorted))]
      const encoded = encodeSet(new Set(shuffled(sorted)))
      assert.deepStrictEqual([...encoded], encodedSorted)
      assert.deepStrictEqual([...decodeSet(new Set(shuffled(encodedSorted)))], sorted)

      const MapSchema = CqlType.Map(schema as Schema.Codec<unknown, unknown>, CqlType.Int)
      const entries = sorted.map((key, index) => [key, index] as const)
      const encodedMap = Schema.encodeSync(MapSchema)(new Map(shuffled(entries)))
      assert.deepStrictEqual([...encodedMap.keys()], encodedSorted)
      assert.deepStrictEqual([...Schema.decodeSync(MapSchema)(new Map(shuffled([...encodedMap])))], entries)
    })
  }

  const Tags = CqlType.Set(CqlType.Text)
  const Tagged = CqlType.Udt("tagged", { name: CqlType.Text, tags: CqlType.NullOr(Tags) })

  it("sorts sets at every nesting level: in a UDT, a tuple, a frozen list, and a map's frozen-set keys", () => {
    const Nested = Schema.Struct({
      udt: CqlType.Frozen(Tagged),
      tuple: CqlType.Tuple([CqlType.Int, CqlType.Frozen(Tags)]),
      list: CqlType.List(CqlType.Frozen(Tags)),
      keys: CqlType.Map(CqlType.Frozen(Tags), CqlType.Frozen(CqlType.Set(CqlType.Frozen(Tags))))
    })
    const encoded = Schema.encodeSync(Nested)({
      udt: { name: "x", tags: new Set(["b", "a"]) },
      tuple: [1, new Set(["z", "y"])],
      list: [new Set(["d", "c"])],
      keys: new Map([
        [new Set(["q", "p"]), new Set([new Set(["b"]), new Set(["b", "a"])])],
        [new Set(["o"]), new Set()]
      ])
    })
    assert.deepStrictEqual([...(encoded.udt.tags ?? [])], ["a", "b"])
    assert.deepStrictEqual([...(encoded.tuple.get(1) as Set<string>)], ["y", "z"])
    assert.deepStrictEqual([...(encoded.list[0] ?? [])], ["c", "d"])
    const keys = [...encoded.keys.keys()].map((key) => [...key])
    assert.deepStrictEqual(keys, [["o"], ["p", "q"]])
    const inner = [...([...encoded.keys.values()][1] ?? [])].map((set) => [...set])
    assert.deepStrictEqual(inner, [["a", "b"], ["b"]])

    // A set stored unsorted (inside a UDT the server keeps the bytes it was given) still decodes in order.
    const decoded = Schema.decodeSync(CqlType.Frozen(Tagged))({ name: "x", tags: new Set(["b", "a"]) })
    assert.deepStrictEqual([...(decoded.tags ?? [])], ["a", "b"])
    const decodedTuple = Schema.decodeSync(CqlType.Tuple([CqlType.Frozen(Tags)]))(
      types.Tuple.fromArray([new Set(["b", "a"])])
    )
    assert.deepStrictEqual([...decodedTuple[0]], ["a", "b"])
  })

  it("a set with a value of the wrong type fails with the element schema's error, not a defect", () => {
    const failure = (set: ReadonlySet<unknown>) =>
      Schema.encodeUnknownExit(CqlType.Set(CqlType.Text))(set).pipe((exit) =>
        exit._tag === "Failure" ? String(exit.cause) : "succeeded"
      )
    assert.include(failure(new Set(["b", 1, "a"])), "Expected string")
    assert.include(failure(new Set([{}, "a"])), "Expected string")
    assert.include(
      Schema.encodeUnknownExit(CqlType.Set(CqlType.Inet))(new Set(["10.0.0.1", "not an address"])).pipe((exit) =>
        exit._tag === "Failure" ? String(exit.cause) : "succeeded"
      ),
      "IPv4 or IPv6 address"
    )
  })

  it("uuids compare by their bytes whatever the case of their text", () => {
    const encoded = Schema.encodeSync(CqlType.Set(CqlType.Uuid))(
      new Set(["0000000B-0000-4000-8000-000000000000", "0000000a-0000-4000-8000-000000000000"])
    )
    assert.deepStrictEqual([...encoded].map(String), [
      "0000000a-0000-4000-8000-000000000000",
      "0000000b-0000-4000-8000-000000000000"
    ])
  })

  it("property: every insertion order of a set of text encodes to identical driver parameters, in UTF-8 order", () => {
    const encode = Schema.encodeSync(CqlType.Frozen(Tagged))
    fc.assert(
      fc.property(
        fc
          .uniqueArray(fc.string({ unit: "grapheme" }), { minLength: 1, maxLength: 12 })
          .chain((elements) =>
            fc.tuple(fc.constant(elements), fc.shuffledSubarray(elements, { minLength: elements.length }))
          ),
        ([orderA, orderB]) => {
          const a = encode({ name: "t", tags: new Set(orderA) })
          const b = encode({ name: "t", tags: new Set(orderB) })
          const elementsA = [...(a.tags ?? [])]
          assert.deepStrictEqual(elementsA, [...(b.tags ?? [])])
          const utf8Order = [...orderA].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
          assert.deepStrictEqual(elementsA, utf8Order)
        }
      )
    )
  })

  it("property: every insertion order of a set of uuids encodes to identical driver parameters", () => {
    const encode = Schema.encodeSync(CqlType.Set(CqlType.Uuid))
    fc.assert(
      fc.property(
        fc
          .uniqueArray(fc.oneof(fc.uuid({ version: 1 }), fc.uuid()), { minLength: 1, maxLength: 12 })
          .chain((elements) =>
            fc.tuple(fc.constant(elements), fc.shuffledSubarray(elements, { minLength: elements.length }))
          ),
        ([orderA, orderB]) => {
          const text = (set: ReadonlySet<Cassandra.types.Uuid>) => [...set].map(String)
          assert.deepStrictEqual(text(encode(new Set(orderA))), text(encode(new Set(orderB))))
        }
      )
    )
  })
})

describe("CqlType order under attack", () => {
  /** The driver parameters of a set, as bytes-comparable text. */
  const sentBytes = (SetSchema: Schema.Codec<ReadonlySet<any>, ReadonlySet<any>>, set: ReadonlySet<unknown>) =>
    [...Schema.encodeSync(SetSchema)(set)].map((element) => String(element))

  it("decimals equal in value but of different scales encode identically whatever the insertion order", () => {
    // Cassandra's DecimalType compares 1.0 and 1.00 as equal, so only a tie-break by scale gives one byte order.
    const Decimals = CqlType.Frozen(CqlType.Set(CqlType.Decimal))
    const values = [BigDecimal.make(100n, 2), BigDecimal.make(10n, 1), BigDecimal.make(-5n, 0), BigDecimal.make(1n, 0)]
    const expected = sentBytes(Decimals, new Set(values))
    assert.deepStrictEqual(sentBytes(Decimals, new Set(values.toReversed())), expected)
    assert.deepStrictEqual(sentBytes(Decimals, new Set([values[1]!, values[3]!, values[0]!, values[2]!])), expected)
    assert.deepStrictEqual(expected, ["-5", "1", "1.0", "1.00"])
  })

  /** 100,000 distinct values of each type whose order costs a parse per comparison unless keys are computed once. */
  const count = 100_000
  const large: ReadonlyArray<{ readonly name: string; readonly schema: Schema.Top; readonly values: Array<any> }> = [
    {
      name: "inet",
      schema: CqlType.Inet,
      values: Array.from({ length: count }, (_, index) =>
        index % 2 === 0
          ? `10.${(index >>> 16) & 255}.${(index >>> 8) & 255}.${index & 255}`
          : `fe80::${(index >>> 16).toString(16)}:${(index & 0xffff).toString(16)}`
      )
    },
    {
      name: "date",
      schema: CqlType.Date,
      values: Array.from({ length: count }, (_, index) =>
        new Date((index - count / 2) * 86_400_000).toISOString().slice(0, 10)
      )
    },
    {
      name: "decimal",
      schema: CqlType.Decimal,
      values: Array.from({ length: count }, (_, index) => BigDecimal.make(BigInt(index * 7), index % 5))
    },
    {
      name: "uuid",
      schema: CqlType.Uuid,
      values: Array.from(
        { length: count },
        (_, index) =>
          `${index.toString(16).padStart(8, "0")}-0000-${index % 2 === 0 ? 1 : 4}000-8000-${(count - index).toString(16).padStart(12, "0")}`
      )
    }
  ]
  for (const { name, schema, values } of large) {
    it(`${name}: a set of 100,000 values in scrambled order encodes in the same order as given sorted`, () => {
      const SetSchema = CqlType.Set(schema as Schema.Codec<unknown, unknown>)
      const sorted = [...Schema.encodeSync(SetSchema)(new Set(values))]
      // 7919 is prime to 100,000, so this visits every value once, in no run a sort could take whole.
      const scrambled = values.map((_, index) => values[(index * 7919) % count])
      const fromScrambled = [...Schema.encodeSync(SetSchema)(new Set(scrambled))]
      assert.strictEqual(sorted.length, count)
      assert.isTrue(fromScrambled.every((element, index) => String(element) === String(sorted[index])))
      // What is asserted is the order; the time limit only has to outlast a busy shared machine.
    }, 60_000)
  }

  it("a set or map already in order is kept as it is, for orders that read a key and for those that do not", () => {
    const addresses = new Set(["::1", "1.2.3.4", "fe80::1"])
    assert.strictEqual(CqlOrder.sortSet(CqlOrder.inet)(addresses), addresses)
    assert.deepStrictEqual([...CqlOrder.sortSet(CqlOrder.inet)(new Set([...addresses].toReversed()))], [...addresses])
    const numbers = new Map([
      [1, "a"],
      [2, "b"]
    ])
    assert.strictEqual(CqlOrder.sortMap(CqlOrder.number)(numbers), numbers)
    assert.deepStrictEqual([...CqlOrder.sortMap(CqlOrder.number)(new Map([...numbers].toReversed()))], [...numbers])
    const dates = new Map([
      ["1969-12-31", 1],
      ["1970-01-01", 2]
    ])
    assert.strictEqual(CqlOrder.sortMap(CqlOrder.date)(dates), dates)
  })
})
