import { randomUUID } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as CqlType from "effect-cassandra/CqlType"
import * as Session from "effect-cassandra/Session"
import * as fc from "fast-check"
import { testOptions } from "../support/session.ts"

/** A session of the library (so values travel through its statements and encoding), closed with the test's scope. */
const connect = Session.make(testOptions())

const Address = CqlType.Udt("address", { street: CqlType.NullOr(CqlType.Text), zip: CqlType.NullOr(CqlType.Int) })

/** One column per CQL type; every column but the key may be null. */
const Row = Schema.Struct({
  id: CqlType.Int,
  c_ascii: CqlType.NullOr(CqlType.Ascii),
  c_text: CqlType.NullOr(CqlType.Text),
  c_boolean: CqlType.NullOr(CqlType.Boolean),
  c_tinyint: CqlType.NullOr(CqlType.TinyInt),
  c_smallint: CqlType.NullOr(CqlType.SmallInt),
  c_int: CqlType.NullOr(CqlType.Int),
  c_bigint: CqlType.NullOr(CqlType.BigInt),
  c_varint: CqlType.NullOr(CqlType.Varint),
  c_float: CqlType.NullOr(CqlType.Float),
  c_double: CqlType.NullOr(CqlType.Double),
  c_decimal: CqlType.NullOr(CqlType.Decimal),
  c_uuid: CqlType.NullOr(CqlType.Uuid),
  c_timeuuid: CqlType.NullOr(CqlType.TimeUuid),
  c_inet: CqlType.NullOr(CqlType.Inet),
  c_date: CqlType.NullOr(CqlType.Date),
  c_time: CqlType.NullOr(CqlType.Time),
  c_timestamp: CqlType.NullOr(CqlType.Timestamp),
  c_duration: CqlType.NullOr(CqlType.Duration),
  c_blob: CqlType.NullOr(CqlType.Blob),
  c_tuple: CqlType.NullOr(
    CqlType.Tuple([CqlType.NullOr(CqlType.Int), CqlType.NullOr(CqlType.Text), CqlType.NullOr(CqlType.BigInt)])
  ),
  c_udt: CqlType.NullOr(CqlType.Frozen(Address)),
  c_udt_fields: CqlType.NullOr(Address),
  c_list: CqlType.NullOr(CqlType.List(CqlType.Int)),
  c_set: CqlType.NullOr(CqlType.Set(CqlType.Text)),
  c_map: CqlType.NullOr(CqlType.Map(CqlType.Uuid, CqlType.Frozen(CqlType.List(CqlType.Double)))),
  c_frozen_set: CqlType.NullOr(CqlType.Frozen(CqlType.Set(CqlType.Date))),
  c_frozen_map: CqlType.NullOr(CqlType.Frozen(CqlType.Map(CqlType.SmallInt, CqlType.Timestamp))),
  c_vector: CqlType.NullOr(CqlType.Vector(CqlType.Float, 4))
})
type Row = typeof Row.Type

const Counter = Schema.Struct({ id: CqlType.Int, c_counter: CqlType.Counter })

const columns = Object.keys(Row.fields)

const createTables = (keyspace: string) => [
  `CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
  `CREATE TYPE ${keyspace}.${CqlType.cqlTypeOf(Address)} (${Object.entries(Address.fields)
    .map(([name, schema]) => `${name} ${CqlType.cqlTypeOf(schema)}`)
    .join(", ")})`,
  `CREATE TABLE ${keyspace}.all_types (${Object.entries(Row.fields)
    .map(([name, schema]) => `${name} ${CqlType.cqlTypeOf(schema)}`)
    .join(", ")}, PRIMARY KEY (id))`,
  `CREATE TABLE ${keyspace}.counters (id int PRIMARY KEY, c_counter ${CqlType.cqlTypeOf(CqlType.Counter)})`
]

const maxFloat = 3.4028234663852886e38

const fullDay = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((day) => {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(day + 2 ** 31)
  return Schema.decodeSync(CqlType.Date)(Cassandra.types.LocalDate.fromBuffer(bytes))
})

const date = fc.oneof(
  fc
    .date({ min: new Date("0000-01-01"), max: new Date("9999-12-31"), noInvalidDate: true })
    .map((instant) => instant.toISOString().slice(0, 10)),
  fc.constantFrom("-5877641-06-23", "+5881580-07-11", "-0001-12-31", "+10000-01-01"),
  fullDay
)

const uuidOfBytes = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((bytes) =>
  Buffer.from(bytes)
    .toString("hex")
    .replace(/^(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-")
)

const negatedUnlessZero = <N extends number | bigint>(value: N): N =>
  (value === 0 || value === 0n ? value : -value) as N

const duration = fc
  .record({
    negative: fc.boolean(),
    months: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    days: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    nanoseconds: fc.bigInt({ min: 0n, max: 2n ** 63n - 1n })
  })
  .map(({ negative, ...parts }) =>
    negative
      ? {
          months: negatedUnlessZero(parts.months),
          days: negatedUnlessZero(parts.days),
          nanoseconds: negatedUnlessZero(parts.nanoseconds)
        }
      : parts
  )

const nullable = <A>(arbitrary: fc.Arbitrary<A>) => fc.option(arbitrary, { nil: null, freq: 8 })

const address = fc.record({ street: nullable(fc.string()), zip: nullable(fc.integer()) })

const randomRow = fc.record({
  c_ascii: nullable(fc.string({ unit: "binary-ascii" })),
  c_text: nullable(fc.string({ unit: "binary" })),
  c_boolean: nullable(fc.boolean()),
  c_tinyint: nullable(fc.integer({ min: -128, max: 127 })),
  c_smallint: nullable(fc.integer({ min: -32_768, max: 32_767 })),
  c_int: nullable(fc.integer()),
  c_bigint: nullable(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })),
  c_varint: nullable(fc.bigInt({ min: -(2n ** 512n), max: 2n ** 512n })),
  c_float: nullable(fc.oneof(fc.float(), fc.double({ min: -maxFloat, max: maxFloat }))),
  c_double: nullable(fc.double()),
  c_decimal: nullable(
    fc
      .tuple(fc.bigInt({ min: -(2n ** 256n), max: 2n ** 256n }), fc.integer())
      .map(([value, scale]) => BigDecimal.make(value, scale))
  ),
  c_uuid: nullable(uuidOfBytes),
  c_timeuuid: nullable(fc.uuid({ version: 1 })),
  c_inet: nullable(fc.oneof(fc.ipV4(), fc.ipV6())),
  c_date: nullable(date),
  c_time: nullable(fc.bigInt({ min: 0n, max: 86_399_999_999_999n })),
  c_timestamp: nullable(fc.date({ noInvalidDate: true })),
  c_duration: nullable(duration),
  c_blob: nullable(fc.uint8Array({ maxLength: 64 })),
  c_tuple: nullable(
    fc.tuple(nullable(fc.integer()), nullable(fc.string()), nullable(fc.bigInt({ min: -1n, max: 1n })))
  ),
  c_udt: nullable(address),
  c_udt_fields: nullable(address),
  c_list: nullable(fc.array(fc.integer(), { maxLength: 8 })),
  c_set: nullable(fc.uniqueArray(fc.string(), { maxLength: 8 }).map((elements) => new Set(elements))),
  c_map: nullable(
    fc
      .uniqueArray(fc.tuple(fc.uuid(), fc.array(fc.double(), { minLength: 1, maxLength: 4 })), {
        maxLength: 4,
        selector: ([key]) => key
      })
      .map((entries) => new Map(entries))
  ),
  c_frozen_set: nullable(fc.uniqueArray(date, { maxLength: 4 }).map((elements) => new Set(elements))),
  c_frozen_map: nullable(
    fc
      .uniqueArray(fc.tuple(fc.integer({ min: -32_768, max: 32_767 }), fc.date({ noInvalidDate: true })), {
        maxLength: 4,
        selector: ([key]) => key
      })
      .map((entries) => new Map(entries))
  ),
  c_vector: nullable(fc.array(fc.float(), { minLength: 4, maxLength: 4 }))
})

const isEmpty = (collection: ReadonlyArray<unknown> | ReadonlySet<unknown> | ReadonlyMap<unknown, unknown> | null) =>
  collection !== null && ("length" in collection ? collection.length : collection.size) === 0

/**
 * The row Cassandra gives back for a written row: floats rounded to 32 bits, addresses in canonical form, empty
 * collections as null (except a frozen map, which the driver sends as an empty map), and a non-frozen UDT with only
 * null fields as null.
 */
const asStored = (row: Row): Row => ({
  ...row,
  c_float: row.c_float === null ? null : Math.fround(row.c_float),
  c_inet: row.c_inet === null ? null : Schema.decodeSync(CqlType.Inet)(Schema.encodeSync(CqlType.Inet)(row.c_inet)),
  c_udt_fields: row.c_udt_fields?.street === null && row.c_udt_fields.zip === null ? null : row.c_udt_fields,
  c_list: isEmpty(row.c_list) ? null : row.c_list,
  c_set: isEmpty(row.c_set) ? null : row.c_set,
  c_map: isEmpty(row.c_map) ? null : row.c_map,
  c_frozen_set: isEmpty(row.c_frozen_set) ? null : row.c_frozen_set
})

const rowsPerRun = 50
const runs = 4

describe("CqlType against a real Cassandra", () => {
  it.effect(
    `round-trips ${rowsPerRun * runs} random values of every CQL type through a table`,
    () =>
      Effect.gen(function* () {
        const session = yield* connect
        const execute = (query: string, params: ReadonlyArray<unknown> = []) =>
          Effect.orDie(session.execute({ query, params, options: {} }))
        const keyspace = `cqltype_${randomUUID().replaceAll("-", "").slice(0, 16)}`
        yield* Effect.addFinalizer(() => Effect.ignore(execute(`DROP KEYSPACE IF EXISTS ${keyspace}`)))
        for (const statement of createTables(keyspace)) {
          yield* execute(statement)
        }
        const insert = `INSERT INTO ${keyspace}.all_types (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`
        const select = `SELECT ${columns.join(", ")} FROM ${keyspace}.all_types WHERE id = ?`
        const increment = `UPDATE ${keyspace}.counters SET c_counter = c_counter + ? WHERE id = ?`
        const selectCounter = `SELECT id, c_counter FROM ${keyspace}.counters WHERE id = ?`

        const roundTrip = Effect.fnUntraced(function* (row: Row, counter: bigint) {
          const encoded = yield* Schema.encodeEffect(Row)(row)
          yield* execute(
            insert,
            columns.map((column) => encoded[column as keyof typeof encoded])
          )
          const encodedCounter = yield* Schema.encodeEffect(Counter)({ id: row.id, c_counter: counter })
          yield* execute(increment, [encodedCounter.c_counter, encodedCounter.id])
          const [stored] = (yield* execute(select, [row.id])).rows
          assert.deepStrictEqual(yield* Schema.decodeUnknownEffect(Row)(stored), asStored(row))
          const [storedCounter] = (yield* execute(selectCounter, [row.id])).rows
          assert.deepStrictEqual(yield* Schema.decodeUnknownEffect(Counter)(storedCounter), {
            id: row.id,
            c_counter: counter
          })
        })

        let nextId = 0
        const property = fc.asyncProperty(
          fc.array(fc.tuple(randomRow, fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })), {
            minLength: rowsPerRun,
            maxLength: rowsPerRun
          }),
          (generated) => {
            // Fresh keys for every run, shrinking included, so no run reads another's row or counter.
            const rows = generated.map(([row, counter]) => [{ ...row, id: nextId++ }, counter] as const)
            return Effect.runPromise(
              Effect.forEach(rows, ([row, counter]) => roundTrip(row, counter), { concurrency: 16, discard: true })
            )
          }
        )
        yield* Effect.promise(() => fc.assert(property, { numRuns: runs }))
      }),
    120_000
  )
})
