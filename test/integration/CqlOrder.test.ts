import { Buffer } from "node:buffer"
import { assert, layer } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/testing/TestClock"
import * as CqlSchema from "effect-cassandra/CqlSchema"
import * as CqlType from "effect-cassandra/CqlType"
import * as Query from "effect-cassandra/Query"
import { Session } from "effect-cassandra/Session"
import * as fc from "fast-check"
import { sessionWithKeyspace } from "../support/session.ts"

const { cql, identifier } = Query
const { keyspace, layer: sessionLayer } = sessionWithKeyspace("cqltype_order")

/** Runs CQL with raw driver values as parameters, as another driver (or the raw path) would send them. */
const raw = (query: string, params: ReadonlyArray<unknown> = []) =>
  Session.use((session) =>
    Effect.orDie(session.execute({ query: query.replaceAll("KS", keyspace), params, options: {} }))
  )

const Pair = CqlType.Udt("pair", { b: CqlType.NullOr(CqlType.Int), a: CqlType.NullOr(CqlType.Text) })
const Tagged = CqlType.Udt("tagged", {
  name: CqlType.Text,
  tags: CqlType.NullOr(CqlType.Frozen(CqlType.Set(CqlType.Text)))
})

const typeDefinition = (udt: typeof Pair | typeof Tagged) =>
  `CREATE TYPE KS.${CqlType.cqlTypeOf(udt)} (${Object.entries(udt.fields)
    .map(([name, field]) => `${name} ${CqlType.cqlTypeOf(field)}`)
    .join(", ")})`

const nullable = <A>(arbitrary: fc.Arbitrary<A>) => fc.option(arbitrary, { nil: null, freq: 4 })
const hex = (length: number) =>
  fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: length, maxLength: length })
const text = fc.oneof(
  fc.string({ unit: "binary", maxLength: 4 }),
  fc.constantFrom("\ue000", "\uffff", "\u{1f600}", "\u{10ffff}")
)
const inetKey = (address: string) => Buffer.from(Schema.encodeSync(CqlType.Inet)(address).getBuffer()).toString("hex")

/**
 * One case per element type: random values of it, and a key that is equal exactly when Cassandra's comparator says
 * two values are equal (so a generated set holds no two values the server would merge).
 */
const cases: ReadonlyArray<{
  readonly name: string
  readonly schema: Schema.Codec<any, any>
  readonly values: fc.Arbitrary<unknown>
  readonly key: (value: any) => unknown
}> = [
  { name: "text", schema: CqlType.Text, values: text, key: (value) => value },
  {
    name: "ascii",
    schema: CqlType.Ascii,
    values: fc.string({ unit: "binary-ascii", maxLength: 4 }),
    key: (value) => value
  },
  { name: "boolean", schema: CqlType.Boolean, values: fc.boolean(), key: (value) => value },
  { name: "tinyint", schema: CqlType.TinyInt, values: fc.integer({ min: -128, max: 127 }), key: (value) => value },
  { name: "int", schema: CqlType.Int, values: fc.integer(), key: (value) => value },
  {
    name: "bigint",
    schema: CqlType.BigInt,
    values: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    key: (value) => value
  },
  {
    name: "varint",
    schema: CqlType.Varint,
    values: fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }),
    key: (value) => value
  },
  {
    name: "float",
    schema: CqlType.Float,
    values: fc.float({ noDefaultInfinity: false }),
    key: (value) => (Object.is(value, -0) ? 0 : value)
  },
  { name: "double", schema: CqlType.Double, values: fc.double(), key: (value) => (Object.is(value, -0) ? 0 : value) },
  {
    name: "decimal",
    schema: CqlType.Decimal,
    values: fc
      .tuple(fc.bigInt({ min: -1000n, max: 1000n }), fc.integer({ min: -3, max: 3 }))
      .map(([value, scale]) => BigDecimal.make(value, scale)),
    key: (value) => BigDecimal.format(BigDecimal.normalize(value))
  },
  {
    name: "uuid",
    schema: CqlType.Uuid,
    values: fc.oneof(
      fc.uuid(),
      fc.uuid({ version: 1 }),
      // version 1 UUIDs sharing a timestamp, so that the clock sequence and node decide
      fc.tuple(hex(4), hex(12)).map(([sequence, node]) => `00000000-0000-1001-${sequence}-${node}`)
    ),
    key: (value) => value
  },
  {
    name: "timeuuid",
    schema: CqlType.TimeUuid,
    values: fc.oneof(
      fc.uuid({ version: 1 }),
      fc
        .tuple(fc.constantFrom("00000000-0000-1001", "ffffffff-ffff-1000"), hex(4), hex(12))
        .map(([timestamp, sequence, node]) => `${timestamp}-${sequence}-${node}`)
    ),
    key: (value) => value
  },
  {
    name: "inet",
    schema: CqlType.Inet,
    // Not IPv4-mapped addresses: as a set element or map key the server stores ::ffff:10.0.0.1 as 10.0.0.1.
    values: fc
      .oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom("::", "::1", "a00:1::", "10.0.0.1", "fe80::1"))
      .filter((address) => !inetKey(address).startsWith("00000000000000000000ffff")),
    key: inetKey
  },
  {
    name: "date",
    schema: CqlType.Date,
    values: fc.oneof(
      fc.integer({ min: -100_000, max: 100_000 }).map((day) => new Date(day * 86_400_000).toISOString().slice(0, 10)),
      fc.constantFrom("-5877641-06-23", "+5881580-07-11", "-0001-12-31", "+10000-01-01")
    ),
    key: (value) => value
  },
  {
    name: "time",
    schema: CqlType.Time,
    values: fc.bigInt({ min: 0n, max: 86_399_999_999_999n }),
    key: (value) => value
  },
  {
    name: "timestamp",
    schema: CqlType.Timestamp,
    values: fc.date({ noInvalidDate: true }),
    key: (value) => value.getTime()
  },
  {
    name: "blob",
    schema: CqlType.Blob,
    values: fc.uint8Array({ maxLength: 3 }),
    key: (value) => Buffer.from(value).toString("hex")
  },
  {
    name: "tuple",
    schema: CqlType.Tuple([CqlType.NullOr(CqlType.Int), CqlType.NullOr(CqlType.Text)]),
    values: fc.tuple(nullable(fc.integer({ min: -2, max: 2 })), nullable(text)),
    key: (value) => JSON.stringify(value)
  },
  {
    name: "frozen list",
    schema: CqlType.Frozen(CqlType.List(CqlType.Int)),
    values: fc.array(fc.integer({ min: -2, max: 2 }), { minLength: 1, maxLength: 3 }),
    key: (value) => JSON.stringify(value)
  },
  {
    name: "frozen set",
    schema: CqlType.Frozen(CqlType.Set(CqlType.Text)),
    values: fc.uniqueArray(text, { minLength: 1, maxLength: 3 }).map((elements) => new Set(elements)),
    key: (value) => JSON.stringify([...value].sort())
  },
  {
    name: "frozen map",
    schema: CqlType.Frozen(CqlType.Map(CqlType.Int, CqlType.Text)),
    values: fc
      .uniqueArray(fc.tuple(fc.integer({ min: -2, max: 2 }), text), {
        minLength: 1,
        maxLength: 3,
        selector: ([key]) => key
      })
      .map((entries) => new Map(entries)),
    key: (value) => JSON.stringify([...value].sort(([a], [b]) => a - b))
  },
  {
    name: "frozen user-defined type",
    schema: CqlType.Frozen(Pair),
    values: fc.record({ b: nullable(fc.integer({ min: -2, max: 2 })), a: nullable(text) }),
    key: (value) => JSON.stringify([value.b, value.a])
  }
]

const tableOf = (index: number) => `KS.set_${index}`

// Live services: the session's timers run on the real clock; a test clock only sets the time a UUID is made at.
layer(sessionLayer, { timeout: "120 seconds", excludeTestServices: true })(
  "CqlType order against a real Cassandra",
  (it) => {
    it.effect(
      "sets and map keys are in the server's order: encoded before sending, and decoded whatever order they arrive in",
      () =>
        Effect.gen(function* () {
          yield* raw(typeDefinition(Pair))
          for (const [index, { schema }] of cases.entries()) {
            const type = CqlType.cqlTypeOf(schema)
            yield* raw(`CREATE TABLE ${tableOf(index)} (id int PRIMARY KEY, s set<${type}>, m map<${type}, int>)`)
          }
          const session = yield* Session
          let nextId = 0
          for (const [index, { key, name, schema, values }] of cases.entries()) {
            const encodeElement = Schema.encodeSync(schema)
            const decodeElement = Schema.decodeSync(schema)
            const SetSchema = CqlType.Set(schema)
            const MapSchema = CqlType.Map(schema, CqlType.Int)
            const property = fc.asyncProperty(
              fc.uniqueArray(values, { minLength: 1, maxLength: 8, selector: key }),
              (generated) =>
                Effect.runPromise(
                  Effect.gen(function* () {
                    const id = nextId++
                    // Sent in generation order: the server sorts a non-frozen set and map itself.
                    const elements = generated.map((value) => encodeElement(value))
                    yield* raw(`INSERT INTO ${tableOf(index)} (id, s, m) VALUES (?, ?, ?)`, [
                      id,
                      new Set(elements),
                      new Map(elements.map((element, position) => [element, position]))
                    ])
                    const [row] = (yield* raw(`SELECT s, m FROM ${tableOf(index)} WHERE id = ?`, [id])).rows
                    const serverSet: ReadonlySet<unknown> = row!.s
                    const serverMap: ReadonlyMap<unknown, number> = row!.m
                    const inServerOrder = [...serverSet].map((element) => decodeElement(element))
                    // Decoding keeps the server's order, and encoding a set given in any order produces it.
                    assert.deepStrictEqual([...Schema.decodeSync(SetSchema)(serverSet)], inServerOrder, name)
                    const encoded = Schema.encodeSync(SetSchema)(new Set(generated.toReversed()))
                    assert.deepStrictEqual(
                      [...encoded].map((element) => decodeElement(element)),
                      inServerOrder,
                      name
                    )
                    const mapKeys = [
                      ...Schema.encodeSync(MapSchema)(new Map(generated.map((value, at) => [value, at])))
                    ]
                    assert.deepStrictEqual(
                      mapKeys.map(([element]) => decodeElement(element)),
                      [...serverMap.keys()].map((element) => decodeElement(element)),
                      name
                    )
                  }).pipe(Effect.provideService(Session, session))
                )
            )
            yield* Effect.promise(() => fc.assert(property, { numRuns: 12 }))
          }
        })
    )

    it.effect(
      "a frozen UDT holding a set written in two insertion orders is one primary key, and matches WHERE equality",
      () =>
        Effect.gen(function* () {
          yield* raw(typeDefinition(Tagged))
          yield* raw("CREATE TABLE KS.by_tags (u frozen<tagged> PRIMARY KEY, n int)")
          const table = identifier(keyspace, "by_tags")
          const Row = Schema.Struct({ u: CqlType.Frozen(Tagged), n: CqlType.Int })
          const insert = CqlSchema.void({
            Request: Row,
            execute: ({ n, u }) => cql`INSERT INTO ${table} (u, n) VALUES (${u}, ${n})`
          })
          const byKey = CqlSchema.findAll({
            Request: CqlType.Frozen(Tagged),
            Result: Row,
            execute: (u) => cql`SELECT u, n FROM ${table} WHERE u = ${u}`
          })
          // In JavaScript's UTF-16 order U+1F600 sorts before U+E000; in Cassandra's (UTF-8 bytes) it comes after.
          const tags = ["b", "a", "\u{1f600}", "\ue000"]
          yield* insert({ u: { name: "x", tags: new Set(tags) }, n: 1 })
          yield* insert({ u: { name: "x", tags: new Set(tags.toReversed()) }, n: 2 })
          const rows = (yield* raw("SELECT u, n FROM KS.by_tags")).rows
          assert.strictEqual(rows.length, 1)
          assert.strictEqual(rows[0]!.n, 2)

          const found = yield* byKey({ name: "x", tags: new Set(["\ue000", "a", "\u{1f600}", "b"]) })
          assert.deepStrictEqual(
            found.map((row) => row.n),
            [2]
          )
          assert.deepStrictEqual([...(found[0]!.u.tags ?? [])], ["a", "b", "\ue000", "\u{1f600}"])
          // A literal is sorted by the server, so this matches only if the bytes written were in the server's order.
          const literal = yield* raw(
            "SELECT n FROM KS.by_tags WHERE u = {name: 'x', tags: {'\u{1f600}', 'b', '\ue000', 'a'}}"
          )
          assert.deepStrictEqual(
            literal.rows.map((row) => row.n),
            [2]
          )
        })
    )

    it.effect("a set stored out of order inside a frozen UDT (as another driver may write it) decodes in order", () =>
      Effect.gen(function* () {
        yield* raw("CREATE TABLE KS.raw_tags (id int PRIMARY KEY, u frozen<tagged>)")
        // The raw driver keeps insertion order inside a UDT, and the server stores those bytes as they are.
        yield* raw("INSERT INTO KS.raw_tags (id, u) VALUES (?, ?)", [
          1,
          { name: "x", tags: new Set(["\u{1f600}", "b", "a"]) }
        ])
        const [row] = (yield* raw("SELECT u FROM KS.raw_tags WHERE id = 1")).rows
        assert.deepStrictEqual([...row!.u.tags], ["\u{1f600}", "b", "a"])
        const decoded = Schema.decodeUnknownSync(CqlType.Frozen(Tagged))(row!.u)
        assert.deepStrictEqual([...(decoded.tags ?? [])], ["a", "b", "\u{1f600}"])
      })
    )

    it.effect(
      "makeTimeUuid and makeTimeUuidFromDate write timeuuids whose server-side timestamp is the time asked for",
      () =>
        Effect.gen(function* () {
          yield* raw("CREATE TABLE KS.events (id timeuuid PRIMARY KEY, label text)")
          const instant = Date.parse("2026-11-30T05:00:00.123Z")
          const fromClock = yield* TestClock.setTime(instant).pipe(
            Effect.andThen(CqlType.makeTimeUuid),
            Effect.provide(TestClock.layer())
          )
          const fromDate = yield* CqlType.makeTimeUuidFromDate(new Date("2001-02-03T04:05:06.789Z"))
          const Event = Schema.Struct({ id: CqlType.TimeUuid, label: CqlType.Text })
          const table = identifier(keyspace, "events")
          const insert = CqlSchema.void({
            Request: Event,
            execute: ({ id, label }) => cql`INSERT INTO ${table} (id, label) VALUES (${id}, ${label})`
          })
          yield* insert({ id: fromClock, label: "clock" })
          yield* insert({ id: fromDate, label: "date" })
          const read = CqlSchema.findAll({
            Request: CqlType.TimeUuid,
            Result: Schema.Struct({ id: CqlType.TimeUuid, written: CqlType.Timestamp }),
            execute: (id) => cql`SELECT id, toTimestamp(id) AS written FROM ${table} WHERE id = ${id}`
          })
          assert.deepStrictEqual(yield* read(fromClock), [{ id: fromClock, written: new Date(instant) }])
          assert.deepStrictEqual(yield* read(fromDate), [
            { id: fromDate, written: new Date("2001-02-03T04:05:06.789Z") }
          ])
        })
    )
    it.effect("a frozen UDT holding decimals equal in value but of different scales is one primary key", () =>
      Effect.gen(function* () {
        const Amounts = CqlType.Udt("amounts", { values: CqlType.NullOr(CqlType.Frozen(CqlType.Set(CqlType.Decimal))) })
        yield* raw(typeDefinition(Amounts as never))
        yield* raw("CREATE TABLE KS.by_amounts (u frozen<amounts> PRIMARY KEY, n int)")
        const table = identifier(keyspace, "by_amounts")
        const insert = CqlSchema.void({
          Request: Schema.Struct({ u: CqlType.Frozen(Amounts), n: CqlType.Int }),
          execute: ({ n, u }) => cql`INSERT INTO ${table} (u, n) VALUES (${u}, ${n})`
        })
        const values = [BigDecimal.make(10n, 1), BigDecimal.make(100n, 2), BigDecimal.make(-3n, 0)]
        yield* insert({ u: { values: new Set(values) }, n: 1 })
        yield* insert({ u: { values: new Set(values.toReversed()) }, n: 2 })
        const rows = (yield* raw("SELECT n FROM KS.by_amounts")).rows
        assert.deepStrictEqual(
          rows.map((row) => row.n),
          [2]
        )
      })
    )

    it.effect("minTimeUuid and maxTimeUuid are the server's minTimeuuid and maxTimeuuid and bound a range", () =>
      Effect.gen(function* () {
        yield* raw("CREATE TABLE KS.timeline (day int, id timeuuid, PRIMARY KEY (day, id))")
        const date = new Date("2003-04-05T06:07:08.009Z")
        const [server] = (yield* raw(
          "SELECT minTimeuuid('2003-04-05 06:07:08.009+0000') AS low, maxTimeuuid('2003-04-05 06:07:08.009+0000') AS high FROM system.local"
        )).rows
        const low = yield* CqlType.minTimeUuid(date)
        const high = yield* CqlType.maxTimeUuid(date)
        assert.strictEqual(low, server!.low.toString())
        assert.strictEqual(high, server!.high.toString())
        const table = identifier(keyspace, "timeline")
        const made = yield* Effect.replicateEffect(CqlType.makeTimeUuidFromDate(date), 3)
        for (const id of made) yield* cql`INSERT INTO ${table} (day, id) VALUES (1, ${id})`
        yield* raw("INSERT INTO KS.timeline (day, id) VALUES (1, now())")
        const inRange = CqlSchema.findAll({
          Request: Schema.Struct({ low: CqlType.TimeUuid, high: CqlType.TimeUuid }),
          Result: Schema.Struct({ id: CqlType.TimeUuid }),
          execute: (bounds) =>
            cql`SELECT id FROM ${table} WHERE day = 1 AND id >= ${bounds.low} AND id <= ${bounds.high}`
        })
        const found = yield* inRange({ low, high })
        assert.sameMembers(
          found.map((row) => row.id),
          made
        )
        // A UUID made for the date is no range bound: the others of its millisecond are on both sides of it.
        const after = yield* inRange({ low: made[1]!, high })
        assert.isBelow(after.length, made.length)
      })
    )

    it.effect("vectors as set elements and UDTs with fields added by ALTER TYPE decode in the server's order", () =>
      Effect.gen(function* () {
        yield* raw("CREATE TYPE KS.point (x int)")
        yield* raw(
          "CREATE TABLE KS.shapes (id int PRIMARY KEY, points set<frozen<point>>, vectors set<vector<int, 2>>)"
        )
        yield* raw(
          "INSERT INTO KS.shapes (id, points, vectors) VALUES (1, {{x: 2}, {x: 1}, {x: null}}, {[1, -2], [-1, 5], [1, -3]})"
        )
        yield* raw("ALTER TYPE KS.point ADD y int")
        yield* raw(
          "UPDATE KS.shapes SET points = points + {{x: 1, y: -5}, {x: 2, y: null}, {x: null, y: 0}} WHERE id = 1"
        )
        const [row] = (yield* raw("SELECT points, vectors FROM KS.shapes WHERE id = 1")).rows
        // As documented: values written before ALTER TYPE lack the field, so it is declared optional.
        const Point = CqlType.Frozen(
          CqlType.Udt("point", { x: CqlType.NullOr(CqlType.Int), y: Schema.optionalKey(CqlType.NullOr(CqlType.Int)) })
        )
        const decoded = [...Schema.decodeUnknownSync(CqlType.Set(Point))(row!.points)]
        assert.deepStrictEqual(
          decoded.map((point) => ({ x: point.x, y: point.y ?? null })),
          [...row!.points].map((point: { x: number | null; y?: number | null }) => ({ x: point.x, y: point.y ?? null }))
        )
        const serverPoints = decoded.map((point) => ({ x: point.x, y: point.y ?? null }))
        assert.deepStrictEqual(serverPoints, [
          { x: null, y: null },
          { x: null, y: 0 },
          { x: 1, y: null },
          { x: 1, y: -5 },
          { x: 2, y: null }
        ])
        const Vectors = CqlType.Set(CqlType.Vector(CqlType.Int, 2))
        const serverVectors = [...row!.vectors].map((vector: Iterable<number>) => [...vector])
        assert.deepStrictEqual([...Schema.decodeUnknownSync(Vectors)(row!.vectors)], serverVectors)
        assert.deepStrictEqual(serverVectors, [
          [-1, 5],
          [1, -3],
          [1, -2]
        ])
      })
    )
    it.effect("floats and doubles: NaN, the infinities and subnormals sort as the server's", () =>
      Effect.gen(function* () {
        yield* raw("CREATE TABLE KS.floats (id int PRIMARY KEY, d set<double>, f set<float>)")
        // Bound, not literals (the CQL literal -0.0 is read as 0.0), and as arrays: a JavaScript Set holds 0 or -0.
        const doubles = [Number.NaN, 0, -0, Infinity, -Infinity, 5e-324, -5e-324, 2.2250738585072014e-308]
        yield* raw("INSERT INTO KS.floats (id, d) VALUES (1, ?)", [doubles])
        const floats = [Number.NaN, -0, Infinity, -Infinity, Math.fround(1.4e-45), -Math.fround(1.4e-45)]
        yield* raw("UPDATE KS.floats SET f = ? WHERE id = 1", [
          Schema.encodeSync(CqlType.Set(CqlType.Float))(new Set(floats))
        ])
        const [row] = (yield* raw("SELECT d, f FROM KS.floats WHERE id = 1")).rows
        // The session reads sets as JavaScript Sets, where the server's -0 and 0 (two elements, -0 first) are one.
        const serverDoubles: Array<number> = [...row!.d]
        assert.deepStrictEqual(serverDoubles, [
          -Infinity,
          -5e-324,
          0,
          5e-324,
          2.2250738585072014e-308,
          Infinity,
          Number.NaN
        ])
        assert.deepStrictEqual([...Schema.decodeUnknownSync(CqlType.Set(CqlType.Double))(row!.d)], serverDoubles)
        const encoded = Schema.encodeSync(CqlType.Set(CqlType.Double))(new Set(serverDoubles.toReversed()))
        assert.deepStrictEqual([...encoded], serverDoubles)
        const serverFloats: Array<number> = [...row!.f]
        assert.deepStrictEqual(serverFloats, [
          -Infinity,
          -Math.fround(1.4e-45),
          0,
          Math.fround(1.4e-45),
          Infinity,
          Number.NaN
        ])
        assert.deepStrictEqual([...Schema.decodeUnknownSync(CqlType.Set(CqlType.Float))(row!.f)], serverFloats)
      })
    )

    it.effect("frozen sets, maps and tuples of sets as key columns: every insertion order is one row", () =>
      Effect.gen(function* () {
        yield* raw(
          "CREATE TABLE KS.frozen_keys (s frozen<set<text>>, m frozen<map<inet, text>>, t frozen<tuple<int, frozen<set<text>>>>, n int, PRIMARY KEY ((s), m, t))"
        )
        const table = identifier(keyspace, "frozen_keys")
        const Row = Schema.Struct({
          s: CqlType.Frozen(CqlType.Set(CqlType.Text)),
          m: CqlType.Frozen(CqlType.Map(CqlType.Inet, CqlType.Text)),
          t: CqlType.Frozen(CqlType.Tuple([CqlType.Int, CqlType.Frozen(CqlType.Set(CqlType.Text))])),
          n: CqlType.Int
        })
        const insert = CqlSchema.void({
          Request: Row,
          execute: ({ m, n, s, t }) => cql`INSERT INTO ${table} (s, m, t, n) VALUES (${s}, ${m}, ${t}, ${n})`
        })
        // Surrogate pairs, combining characters against their precomposed form, and NUL.
        const texts = ["\u{1f600}", "\ue000", "a\u0301", "\u00e1", "a\u0000b", "a"]
        const addresses: Array<[string, string]> = [
          ["fe80::1", "x"],
          ["10.0.0.1", "y"],
          ["::", "z"]
        ]
        for (const [n, order] of [texts, texts.toReversed()].entries()) {
          yield* insert({
            s: new Set(order),
            m: new Map(n === 0 ? addresses : addresses.toReversed()),
            t: [1, new Set(order)],
            n
          })
        }
        const rows = (yield* raw("SELECT n FROM KS.frozen_keys")).rows
        assert.deepStrictEqual(
          rows.map((row) => row.n),
          [1]
        )
      })
    )
    it.effect("hand-picked edge values written as CQL literals decode and encode in the server's order", () =>
      Effect.gen(function* () {
        const columns: ReadonlyArray<readonly [string, Schema.Codec<any, any>, string]> = [
          [
            "u",
            CqlType.Uuid,
            // versions 0, 1, 2, 3, 5, 6, 7, 8 and 15, and version 1 UUIDs sharing a timestamp
            "{ffffffff-ffff-ffff-ffff-ffffffffffff, 00000000-0000-0000-0000-000000000000, 6fa459ea-ee8a-3ca4-894e-db77e160355e, 886313e1-3b8a-5372-9b90-0c9aee199e5d, c232ab00-9414-11ec-b3c8-9f6bdeced846, c232ab00-9414-11ec-73c8-9f6bdeced846, ffffffff-ffff-2fff-ffff-ffffffffffff, 0fffffff-ffff-6fff-8fff-ffffffffffff, 0fffffff-ffff-7fff-8fff-ffffffffffff, 0fffffff-ffff-8fff-8fff-ffffffffffff, 00000000-0000-1000-8000-000000000000, 00000000-0000-1000-0000-000000000000}"
          ],
          [
            "t",
            CqlType.TimeUuid,
            // one timestamp, the clock sequence and node differing in the top bit of each byte
            "{00000000-0000-1000-8000-000000000000, 00000000-0000-1000-0000-000000000000, 00000000-0000-1000-ff00-000000000000, 00000000-0000-1000-00ff-000000000000, 00000000-0000-1000-0080-000000000000, 00000000-0000-1000-007f-000000000000, 00000000-0000-1000-0000-800000000000, 00000000-0000-1000-0000-000000000080, 00000000-0000-1000-0000-00000000007f, 00000001-0000-1000-0000-000000000000, 00000000-0001-1000-0000-000000000000}"
          ],
          ["i", CqlType.Inet, "{'::', '0.0.0.0', '::ffff:1.2.3.4', '1.2.3.4', '255.255.255.255', 'ffff::', '::1'}"],
          ["b", CqlType.Blob, "{0x, 0x00, 0x0000, 0x01, 0xff, 0x00ff, 0x80}"],
          [
            "x",
            CqlType.Text,
            "{'', 'a', 'a\u0301', '\u00e1', '\u{10ffff}', '\uffff', '\u{1f600}', '\ud7ff', '\ue000', 'Z'}"
          ],
          [
            "v",
            CqlType.Varint,
            "{-100000000000000000000000000000, -1, 0, 255, 256, -256, -255, 100000000000000000000}"
          ],
          ["dc", CqlType.Decimal, "{-1.5, 1.50, 0.001, -0, 1E+3, 999.999, -1E-30}"],
          [
            "ts",
            CqlType.Timestamp,
            "{'1969-12-31 23:59:59.999+0000', '1900-01-01 00:00:00+0000', '0001-01-01 00:00:00+0000'}"
          ],
          ["tm", CqlType.Time, "{'00:00:00', '23:59:59.999999999', '12:00:00.000000001'}"],
          ["d", CqlType.Date, "{0, 4294967295, 2147483648, 2147483647, '1970-01-02'}"]
        ]
        yield* raw(
          `CREATE TABLE KS.edges (id int PRIMARY KEY, ${columns.map(([name, schema]) => `${name} set<${CqlType.cqlTypeOf(schema)}>`).join(", ")})`
        )
        yield* raw(
          `INSERT INTO KS.edges (id, ${columns.map(([name]) => name).join(", ")}) VALUES (1, ${columns.map(([, , literal]) => literal).join(", ")})`
        )
        const [row] = (yield* raw("SELECT * FROM KS.edges WHERE id = 1")).rows
        for (const [name, schema] of columns) {
          const serverOrder = [...row![name]].map((element) => Schema.decodeUnknownSync(schema)(element))
          const SetSchema = CqlType.Set(schema)
          assert.deepStrictEqual([...Schema.decodeUnknownSync(SetSchema)(row![name])], serverOrder, name)
          const encoded = Schema.encodeSync(SetSchema)(new Set(serverOrder.toReversed()))
          assert.deepStrictEqual(
            [...encoded].map((element) => Schema.decodeUnknownSync(schema)(element)),
            serverOrder,
            name
          )
        }
      })
    )
  }
)
