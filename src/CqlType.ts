/**
 * CQL types as Schemas.
 *
 * Each schema's Type side is the TypeScript value users work with, and its Encoded side is the value cassandra-driver
 * 4.10 returns in rows and accepts as a bound parameter of a prepared statement, with the project's `driverEncoding`
 * (bigint, counter and varint as native `bigint`, sets as `Set`, maps as `Map`). So `Schema.decodeUnknownEffect`
 * of a `Schema.Struct` of these schemas decodes a driver row, and `Schema.encodeEffect` produces bound parameters,
 * rejecting values Cassandra could not store (such as `200` for a `tinyint`) before anything is sent.
 *
 * | CQL type | Type | Encoded (driver value) |
 * |---|---|---|
 * | `ascii`, `text` (`varchar`) | `string` | `string` |
 * | `boolean` | `boolean` | `boolean` |
 * | `tinyint`, `smallint`, `int` | `number` | `number` |
 * | `bigint`, `counter`, `varint` | `bigint` | `bigint` |
 * | `float`, `double` | `number` | `number` |
 * | `decimal` | `BigDecimal` (effect) | `Cassandra.types.BigDecimal` |
 * | `uuid`, `timeuuid` | `string` | `Cassandra.types.Uuid`, `Cassandra.types.TimeUuid` |
 * | `inet` | `string` | `Cassandra.types.InetAddress` |
 * | `date` | `string` (`2024-02-29`) | `Cassandra.types.LocalDate` |
 * | `time` | `bigint` (nanoseconds of the day) | `Cassandra.types.LocalTime` |
 * | `timestamp` | `Date` | `Date` |
 * | `duration` | `{ months, days, nanoseconds }` | `Cassandra.types.Duration` |
 * | `blob` | `Uint8Array` | `Buffer` |
 * | `tuple<…>` | readonly tuple | `Cassandra.types.Tuple` |
 * | user-defined type | object | object |
 * | `list<…>`, `set<…>`, `map<…>` | `ReadonlyArray`, `ReadonlySet`, `ReadonlyMap` | `Array`, `Set`, `Map` |
 * | `vector<…, n>` | `ReadonlyArray` of length `n` | `Cassandra.types.Vector` |
 *
 * Nulls: the driver returns `null` for a column with no value, so a column that may be empty needs {@link NullOr}.
 * Cassandra does not store empty collections: an empty non-frozen `list`, `set` or `map` (like a non-frozen UDT whose
 * fields are all null) reads back as `null`. The driver also sends an empty list or set as `null`, even for a frozen
 * column, so that reads back as `null` too and cannot be an element or map value of another collection; only an empty
 * frozen `map` is kept. Declare collection columns as `NullOr(List(…))` and read `null` as empty.
 *
 * Order: sets and map keys are encoded and decoded in Cassandra's order for their type, at every nesting level, so
 * equal values have equal bytes even inside frozen UDTs and tuples (see {@link Set}).
 *
 * Each schema also carries its CQL type text (see {@link cqlTypeOf}), which is enough to write a `CREATE TABLE`.
 *
 * @since 0.1.0
 */
import { Buffer } from "node:buffer"
import * as Cassandra from "cassandra-driver"
import * as BigDecimal from "effect/BigDecimal"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Order from "effect/Order"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as SchemaTransformation from "effect/SchemaTransformation"
import { toBuffer } from "./internal/bytes.ts"
import * as CqlOrder from "./internal/cqlOrder.ts"
import {
  formatEpochDay,
  formatInetAddress,
  maxEpochDay,
  minEpochDay,
  parseEpochDay,
  parseInetAddress
} from "./internal/cqlTypeText.ts"
import * as timeUuid from "./internal/timeUuid.ts"

const cqlTypeKey = "effect-cassandra/cqlType"
/** The order Cassandra keeps the schema's values in as set elements and map keys, on the Type side. */
const cqlOrderKey = "effect-cassandra/cqlOrder"

const withCqlType =
  (cqlType: string | undefined, order?: Order.Order<any>) =>
  <S extends Schema.Top>(schema: S): S["Rebuild"] =>
    // Without an order of its own (Frozen), a schema keeps the one it has.
    schema.annotate(order === undefined ? { [cqlTypeKey]: cqlType } : { [cqlTypeKey]: cqlType, [cqlOrderKey]: order })

const annotationOf = <A>(ast: SchemaAST.AST, key: string, isA: (value: unknown) => value is A): A | undefined => {
  // A check added after ours carries its own annotations, so look through every check, latest first.
  const value = [...(ast.checks ?? []).map((check) => check.annotations), ast.annotations].findLast((annotations) =>
    isA(annotations?.[key])
  )?.[key]
  if (isA(value)) {
    return value
  }
  const present = SchemaAST.isUnion(ast)
    ? ast.types.filter((member) => !SchemaAST.isNull(member) && !SchemaAST.isUndefined(member))
    : []
  return present.length === 1 && present[0] !== undefined ? annotationOf(present[0], key, isA) : undefined
}

const isString = (value: unknown): value is string => typeof value === "string"
const isOrder = (value: unknown): value is Order.Order<any> => typeof value === "function"

const cqlTypeOfAst = (ast: SchemaAST.AST): string | undefined => annotationOf(ast, cqlTypeKey, isString)

/** Cassandra's order of a schema's values; undefined for schemas built elsewhere and for `duration`. */
const cqlOrderOf = (schema: { readonly ast: SchemaAST.AST }): Order.Order<any> | undefined =>
  annotationOf(schema.ast, cqlOrderKey, isOrder)

/** The order of values made of the given schemas' values, when each of them has one. */
const composedOrder = <A>(
  parts: ReadonlyArray<{ readonly ast: SchemaAST.AST }>,
  compose: (orders: ReadonlyArray<Order.Order<any>>) => Order.Order<A>
): Order.Order<A> | undefined => {
  const orders = parts.map(cqlOrderOf)
  return orders.every((order) => order !== undefined) ? compose(orders) : undefined
}

/**
 * Returns the CQL type text of a schema from this module, such as `"int"` or `"map<text, frozen<list<int>>>"`.
 *
 * The text survives later checks and brands (`CqlType.Text.check(Schema.isMaxLength(8))` is still `"text"`) and
 * `Schema.NullOr`. It is `undefined` for schemas built elsewhere, and for collections, tuples and vectors of such
 * schemas.
 *
 * @since 0.1.0
 * @category getters
 */
export const cqlTypeOf = (schema: Schema.Top): string | undefined => cqlTypeOfAst(schema.ast)

const parameterisedCqlType = (name: string, parameters: ReadonlyArray<Schema.Top>): string | undefined => {
  const parameterTypes = parameters.map(cqlTypeOf)
  return parameterTypes.every((parameter) => parameter !== undefined)
    ? `${name}<${parameterTypes.join(", ")}>`
    : undefined
}

/**
 * The annotations of a check: what it expects, and a message stating that rule. The message keeps the input out of
 * every formatted error (the default formatters append it to `expected` alone).
 */
const rule = (expected: string) => ({ expected, message: `Expected ${expected}` })

const driverInstance = <C extends abstract new (...args: any) => any>(driverClass: C, name: string) =>
  Schema.instanceOf(driverClass, { expected: `a cassandra-driver ${name}` })

/**
 * CQL `ascii`: a string of US-ASCII characters (U+0000 to U+007F).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Ascii = Schema.String.check(
  // Searching for one non-ASCII unit, not matching the whole string: `^\p{ASCII}*$` overflows the stack on megabytes.
  Schema.makeFilter((text: string) => !/[\u0080-\uffff]/.test(text), rule("an ASCII string (CQL ascii)"))
).pipe(withCqlType("ascii", CqlOrder.text))

/**
 * CQL `text`: a string of well-formed Unicode.
 *
 * Strings with lone UTF-16 surrogates are rejected, because the UTF-8 that Cassandra stores cannot hold them and the
 * driver would silently replace them with U+FFFD.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Text = Schema.String.check(
  Schema.makeFilter((text: string) => !/\p{Surrogate}/u.test(text), rule("a string without lone surrogates (CQL text)"))
).pipe(withCqlType("text", CqlOrder.text))

/**
 * CQL `varchar`: an alias of `text` in CQL, and the same schema as {@link Text}.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Varchar = Text

/**
 * CQL `boolean`.
 *
 * @since 0.1.0
 * @category schemas
 */
const cqlBoolean = Schema.Boolean.pipe(withCqlType("boolean", CqlOrder.number))

const integerBetween = (cqlType: string, minimum: number, maximum: number) =>
  Schema.Int.check(
    Schema.isBetween({ minimum, maximum }, rule(`an integer between ${minimum} and ${maximum} (CQL ${cqlType})`))
  ).pipe(withCqlType(cqlType, CqlOrder.number))

/**
 * CQL `tinyint`: an 8-bit signed integer, from -128 to 127.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TinyInt = integerBetween("tinyint", -(2 ** 7), 2 ** 7 - 1)

/**
 * CQL `smallint`: a 16-bit signed integer, from -32768 to 32767.
 *
 * @since 0.1.0
 * @category schemas
 */
export const SmallInt = integerBetween("smallint", -(2 ** 15), 2 ** 15 - 1)

/**
 * CQL `int`: a 32-bit signed integer, from -2147483648 to 2147483647.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Int = integerBetween("int", -(2 ** 31), 2 ** 31 - 1)

const int64Between = (cqlType: string) =>
  Schema.BigInt.check(
    Schema.isBetweenBigInt(
      { minimum: -(2n ** 63n), maximum: 2n ** 63n - 1n },
      rule(`a bigint between -2^63 and 2^63-1 (CQL ${cqlType})`)
    )
  ).pipe(withCqlType(cqlType, CqlOrder.bigint))

/**
 * CQL `bigint`: a 64-bit signed integer, as a `bigint` from -2^63 to 2^63-1.
 *
 * @since 0.1.0
 * @category schemas
 */
const cqlBigInt = int64Between("bigint")

/**
 * CQL `counter`: a 64-bit signed `bigint`.
 *
 * A counter column is only written by `UPDATE … SET c = c + ?`, so the encoded value is the increment.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Counter = int64Between("counter")

/**
 * CQL `varint`: an integer of any size, as a `bigint`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Varint = Schema.BigInt.pipe(withCqlType("varint", CqlOrder.bigint))

/**
 * CQL `float`: a 32-bit IEEE 754 number.
 *
 * Finite numbers beyond the 32-bit range (about ±3.4e38) are rejected instead of turning into infinities. Other
 * numbers are stored rounded to the nearest 32-bit float, so a value reads back as `Math.fround(value)`. `NaN`,
 * the infinities and `-0` are kept.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Float = Schema.Number.check(
  Schema.makeFilter(
    (value: number) => !Number.isFinite(value) || Number.isFinite(Math.fround(value)),
    rule("a number within the 32-bit float range (CQL float)")
  )
).pipe(withCqlType("float", CqlOrder.floatingPoint))

/**
 * CQL `double`: a 64-bit IEEE 754 number, including `NaN`, the infinities and `-0`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Double = Schema.Number.pipe(withCqlType("double", CqlOrder.floatingPoint))

/**
 * CQL `decimal`: an effect `BigDecimal`.
 *
 * A CQL decimal is an unscaled integer of any size and a 32-bit scale, and so is a `BigDecimal`, so values round-trip
 * exactly, scale included (`1.50` stays `1.50`), and come with exact arithmetic, `Equal` and `Order`. The scale must
 * fit in 32 bits.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Decimal = driverInstance(Cassandra.types.BigDecimal, "BigDecimal").pipe(
  Schema.decodeTo(
    Schema.BigDecimal.check(
      Schema.makeFilter(
        (decimal: BigDecimal.BigDecimal) =>
          Number.isInteger(decimal.scale) && decimal.scale >= -(2 ** 31) && decimal.scale < 2 ** 31,
        rule("a BigDecimal with a 32-bit scale (CQL decimal)")
      )
    ),
    SchemaTransformation.transform({
      // The driver's wire form (a 32-bit scale, then the unscaled value in two's complement) is its only typed way in
      // and out of its BigDecimal.
      decode: (decimal) => {
        const bytes = Cassandra.types.BigDecimal.toBuffer(decimal)
        const unscaled = Cassandra.types.Integer.fromBuffer(bytes.subarray(4)).toString()
        return BigDecimal.make(BigInt(unscaled), bytes.readInt32BE(0))
      },
      encode: (decimal) => {
        const scale = Buffer.alloc(4)
        scale.writeInt32BE(decimal.scale)
        const unscaled = Cassandra.types.Integer.toBuffer(Cassandra.types.Integer.fromString(decimal.value.toString()))
        return Cassandra.types.BigDecimal.fromBuffer(Buffer.concat([scale, unscaled]))
      }
    })
  ),
  withCqlType("decimal", CqlOrder.decimal)
)

const uuidText = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

// uuid and timeuuid differ only in the driver class and the checks on the text.
const uuidSchema = <U extends Cassandra.types.Uuid>(
  driverClass: { new (...args: Array<any>): U; fromString(text: string): U; name: string },
  cqlType: string,
  order: Order.Order<string>,
  ...checks: readonly [SchemaAST.Check<string>, ...Array<SchemaAST.Check<string>>]
) =>
  driverInstance(driverClass, driverClass.name).pipe(
    Schema.decodeTo(
      Schema.String.check(...checks),
      SchemaTransformation.transform({
        decode: (uuid: U) => uuid.toString(),
        encode: (text: string) => driverClass.fromString(text)
      })
    ),
    withCqlType(cqlType, order)
  )

/**
 * CQL `uuid`: a UUID of any version, as a string like `"123e4567-e89b-12d3-a456-426614174000"`.
 *
 * Either case is accepted; decoded values are lower case.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Uuid = uuidSchema(
  Cassandra.types.Uuid,
  "uuid",
  CqlOrder.uuid,
  Schema.isPattern(uuidText, rule("a UUID string (CQL uuid)"))
)

/**
 * CQL `timeuuid`: a version 1 (time-based) UUID, as a string.
 *
 * Cassandra rejects any other version, and so does this schema. Either case is accepted; decoded values are lower
 * case.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TimeUuid = uuidSchema(
  Cassandra.types.TimeUuid,
  "timeuuid",
  CqlOrder.timeUuid,
  Schema.isPattern(uuidText, rule("a UUID string (CQL timeuuid)")),
  Schema.makeFilter((text: string) => text[14] === "1", rule("a version 1 (time-based) UUID (CQL timeuuid)"))
)

/**
 * Makes a new {@link TimeUuid} at the current time of Effect's `Clock`, so tests can set the time with `TestClock`.
 *
 * The UUIDs this process makes increase (as Cassandra orders timeuuids) even within one millisecond: each takes the
 * next 100-nanosecond interval. The clock sequence and node id are random per process, not a MAC address.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CqlType, Query } from "effect-cassandra"
 *
 * const addEvent = (text: string) =>
 *   Effect.flatMap(CqlType.makeTimeUuid, (id) => Query.cql`INSERT INTO events (id, text) VALUES (${id}, ${text})`)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeTimeUuid: Effect.Effect<typeof TimeUuid.Type> = Clock.clockWith((clock) =>
  Effect.suspend(() => {
    const millis = clock.currentTimeMillisUnsafe()
    // A Clock no timeuuid can hold is a broken environment: a UUID wrapped around to another century would be worse.
    return timeUuid.isInRange(millis)
      ? Effect.succeed(timeUuid.next(millis))
      : Effect.die(new Cause.IllegalArgumentError(`Expected the Clock's time to be ${timeUuidRange}`))
  })
)

const timeUuidRange = `from ${new Date(timeUuid.minMillis).toISOString()} to ${new Date(timeUuid.maxMillis).toISOString()} (CQL timeuuid)`

/** A timeuuid made by `make` from a date's millisecond, or an `IllegalArgumentError` for a date no timeuuid holds. */
const timeUuidAt =
  (make: (millis: number) => string) =>
  (date: Date): Effect.Effect<typeof TimeUuid.Type, Cause.IllegalArgumentError> =>
    Effect.suspend(() => {
      const millis = date.getTime()
      return timeUuid.isInRange(millis)
        ? Effect.succeed(make(millis))
        : Effect.fail(new Cause.IllegalArgumentError(`Expected a valid Date ${timeUuidRange}`))
    })

/**
 * Makes a {@link TimeUuid} at the given date, to store an event that happened then. Calls with the same date give
 * different UUIDs (each with random clock sequence and node bits), in the order made for up to 10,000 calls. Fails with `IllegalArgumentError` for an invalid `Date` or one a
 * timeuuid cannot hold (before 1582-10-15 or after 5236-03-31).
 *
 * It is not a bound for reading a range of timeuuids: other UUIDs of the same millisecond sort before and after it.
 * Use {@link minTimeUuid} and {@link maxTimeUuid} for that.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeTimeUuidFromDate: (date: Date) => Effect.Effect<typeof TimeUuid.Type, Cause.IllegalArgumentError> =
  timeUuidAt(timeUuid.at)

/**
 * The smallest {@link TimeUuid} of the given date's millisecond, as CQL's `minTimeuuid`: the inclusive lower bound
 * of a range of timeuuids (`id >= minTimeUuid(from)`), before every timeuuid of that millisecond whoever made it.
 * Never store it: it is not unique. Fails with `IllegalArgumentError` as {@link makeTimeUuidFromDate} does.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CqlType, Query } from "effect-cassandra"
 *
 * const eventsBetween = (from: Date, to: Date) =>
 *   Effect.gen(function* () {
 *     const low = yield* CqlType.minTimeUuid(from)
 *     const high = yield* CqlType.maxTimeUuid(to)
 *     return yield* Query.cql`SELECT * FROM events WHERE day = 1 AND id >= ${low} AND id <= ${high}`
 *   })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const minTimeUuid: (date: Date) => Effect.Effect<typeof TimeUuid.Type, Cause.IllegalArgumentError> = timeUuidAt(
  timeUuid.min
)

/**
 * The largest {@link TimeUuid} of the given date's millisecond, as CQL's `maxTimeuuid`: the inclusive upper bound of
 * a range of timeuuids (`id <= maxTimeUuid(to)`), after every timeuuid of that millisecond. Never store it. Fails
 * with `IllegalArgumentError` as {@link makeTimeUuidFromDate} does.
 *
 * @since 0.1.0
 * @category constructors
 */
export const maxTimeUuid: (date: Date) => Effect.Effect<typeof TimeUuid.Type, Cause.IllegalArgumentError> = timeUuidAt(
  timeUuid.max
)

/**
 * CQL `inet`: an IPv4 or IPv6 address, as a string.
 *
 * Any standard form is accepted (`192.0.2.1`, `2001:DB8:0:0:0:0:0:1`, `::ffff:192.0.2.1`); decoded values are in
 * canonical form: dotted decimal for IPv4, RFC 5952 for IPv6 (`2001:db8::1`), with IPv4-mapped addresses written
 * `::ffff:192.0.2.1` as Node's sockets report them. An address keeps its family: `::ffff:192.0.2.1` stays a 16-byte
 * IPv6 address, except as the element of a set column or the key of a map column, which Cassandra stores as the
 * IPv4 address (`192.0.2.1`). Zone ids (`fe80::1%eth0`) cannot be stored and are rejected.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Inet = driverInstance(Cassandra.types.InetAddress, "InetAddress").pipe(
  Schema.decodeTo(
    Schema.String.check(
      Schema.makeFilter(
        (text: string) => parseInetAddress(text) !== undefined,
        rule("an IPv4 or IPv6 address (CQL inet)")
      )
    ),
    SchemaTransformation.transform({
      decode: (address) => formatInetAddress(address.getBuffer()),
      // Encoding runs after the check above has accepted the text.
      encode: (text) => new Cassandra.types.InetAddress(Buffer.from(parseInetAddress(text)!))
    })
  ),
  withCqlType("inet", CqlOrder.inet)
)

/** CQL stores a date as an unsigned 32-bit day number whose middle value, 2^31, is the Unix epoch. */
const cqlDateEpoch = 2 ** 31

/**
 * CQL `date`: a calendar date without time zone, as its ISO 8601 text (`"2024-02-29"`).
 *
 * CQL dates span about 5.9 million years either side of 1970, far beyond a JavaScript `Date` (and the driver's
 * `LocalDate`), so the value is the text, which holds every CQL date exactly, compares with `===`, and is what CQL
 * literals and cqlsh use. Dates are proleptic Gregorian and written as `java.time.LocalDate` writes them: four-digit
 * years from `0000` to `9999`, `-0001-12-31` before year 0 and `+10000-01-01` after 9999, from `-5877641-06-23` to
 * `+5881580-07-11`. Only that exact form is accepted (no `2024-2-29`, no `+2024-02-29`).
 *
 * @since 0.1.0
 * @category schemas
 */
const cqlDate = driverInstance(Cassandra.types.LocalDate, "LocalDate").pipe(
  Schema.decodeTo(
    Schema.String.check(
      Schema.makeFilter(
        (text: string) => parseEpochDay(text) !== undefined,
        rule(
          `a valid calendar date YYYY-MM-DD, from ${formatEpochDay(minEpochDay)} to ${formatEpochDay(maxEpochDay)} (CQL date)`
        )
      )
    ),
    SchemaTransformation.transform({
      // The driver's LocalDate cannot name days outside the range of a JavaScript Date, but its wire form always can.
      decode: (date) => formatEpochDay(date.toBuffer().readUInt32BE(0) - cqlDateEpoch),
      encode: (text) => {
        const bytes = Buffer.alloc(4)
        // Encoding runs after the check above has accepted the text.
        bytes.writeUInt32BE(parseEpochDay(text)! + cqlDateEpoch)
        return Cassandra.types.LocalDate.fromBuffer(bytes)
      }
    })
  ),
  withCqlType("date", CqlOrder.date)
)

/**
 * CQL `time`: a time of day with nanosecond precision, as the `bigint` number of nanoseconds since midnight, from
 * `0n` to `86_399_999_999_999n`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Time = driverInstance(Cassandra.types.LocalTime, "LocalTime").pipe(
  Schema.decodeTo(
    Schema.BigInt.check(
      Schema.isBetweenBigInt(
        { minimum: 0n, maximum: 86_399_999_999_999n },
        rule("nanoseconds since midnight, between 0 and 86399999999999 (CQL time)")
      )
    ),
    SchemaTransformation.transform({
      decode: (time) => BigInt(time.getTotalNanoseconds().toString()),
      encode: (nanoseconds) => new Cassandra.types.LocalTime(Cassandra.types.Long.fromString(nanoseconds.toString()))
    })
  ),
  withCqlType("time", CqlOrder.bigint)
)

/**
 * CQL `timestamp`: a `Date`, with millisecond precision.
 *
 * Cassandra timestamps reach further than JavaScript dates (±8.64e15 ms); such a value fails to decode rather than
 * turning into an invalid `Date`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Timestamp = Schema.Date.pipe(withCqlType("timestamp", CqlOrder.timestamp))

/** The fields the driver's Duration documents (lib/types/duration.js) but its index.d.ts leaves out. */
interface DriverDurationFields {
  readonly months: number
  readonly days: number
  readonly nanoseconds: Cassandra.types.Long
}

/**
 * CQL `duration`: `{ months, days, nanoseconds }`, kept apart because a month or a day has no fixed length.
 *
 * `months` and `days` are 32-bit integers, `nanoseconds` a 64-bit `bigint`, and all three must have the same sign,
 * as Cassandra requires.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Duration = driverInstance(Cassandra.types.Duration, "Duration").pipe(
  Schema.decodeTo(
    Schema.Struct({ months: Int, days: Int, nanoseconds: cqlBigInt }).check(
      Schema.makeFilter(
        ({ days, months, nanoseconds }) =>
          (months >= 0 && days >= 0 && nanoseconds >= 0n) || (months <= 0 && days <= 0 && nanoseconds <= 0n),
        rule("months, days and nanoseconds of the same sign (CQL duration)")
      )
    ),
    SchemaTransformation.transform({
      decode: (duration) => {
        const { days, months, nanoseconds } = duration as unknown as DriverDurationFields
        return { months, days, nanoseconds: BigInt(nanoseconds.toString()) }
      },
      encode: ({ days, months, nanoseconds }) =>
        new Cassandra.types.Duration(months, days, Cassandra.types.Long.fromString(nanoseconds.toString()))
    })
  ),
  withCqlType("duration")
)

/**
 * CQL `blob`: bytes, as a `Uint8Array`.
 *
 * Decoded values are plain `Uint8Array` views of the driver's `Buffer` (no copy); any `Uint8Array`, `Buffer`
 * included, can be encoded.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Blob = Schema.declare((input): input is Buffer => Buffer.isBuffer(input), { expected: "a Buffer" }).pipe(
  Schema.decodeTo(
    Schema.Uint8Array,
    SchemaTransformation.transform({
      decode: (buffer) => new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength),
      encode: toBuffer
    })
  ),
  withCqlType("blob", CqlOrder.bytes)
)

/**
 * CQL `tuple<…>`: a readonly TypeScript tuple of the element schemas' values.
 *
 * Cassandra lets any element of a stored tuple be null, and the driver returns it as `null`: wrap such elements in
 * {@link NullOr}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const Tuple = <const Elements extends readonly [Schema.Top, ...Array<Schema.Top>]>(elements: Elements) =>
  driverInstance(Cassandra.types.Tuple, "Tuple").pipe(
    Schema.decodeTo(
      Schema.Tuple(elements),
      SchemaTransformation.transform({
        // The element schemas validate what the driver's untyped array holds.
        decode: (tuple) => tuple.values() as unknown as Schema.Tuple<Elements>["Encoded"],
        encode: (values) => Cassandra.types.Tuple.fromArray([...values])
      })
    ),
    withCqlType(
      parameterisedCqlType("tuple", elements),
      composedOrder(elements, (orders) =>
        CqlOrder.components<ReadonlyArray<unknown>>(orders, (tuple, index) => tuple[index])
      )
    )
  )

/**
 * A CQL user-defined type named `name` (`"address"` or `"keyspace.address"`), as an object with the given fields.
 *
 * The driver gives UDT values as plain objects keyed by the field names stored in Cassandra, which are lower case
 * unless the type was created with quoted names. A field Cassandra has no value for comes back `null`, so fields
 * that may be empty need {@link NullOr}; a field added by `ALTER TYPE` is missing altogether from values written
 * before, so declare it with `Schema.optionalKey(CqlType.NullOr(…))`. Frozen and non-frozen UDTs have the same
 * shape, but a non-frozen UDT value whose fields are all null reads back as `null`. {@link cqlTypeOf} gives the bare
 * name, so wrap the schema in {@link Frozen} for a frozen column.
 *
 * Declare the fields in the order of the type's definition (as `CREATE TYPE` built from the fields does): Cassandra
 * compares UDT values field by field in that order, which orders sets of UDTs and UDT map keys.
 *
 * Encoding requires every field (use `null` for no value), so a value missing a field fails with a
 * `CqlSchemaError` naming it. Values bound without a Schema (a plain object interpolated into `Query.cql`) are sent
 * as they are: the driver writes `null` for every missing field, silently, and keeps nested sets in insertion order.
 *
 * @since 0.1.0
 * @category constructors
 */
export const Udt = <const Fields extends Schema.Struct.Fields>(name: string, fields: Fields) =>
  Schema.Struct(fields).pipe(
    withCqlType(
      name,
      composedOrder(Object.values(fields), (orders) => {
        const names = Object.keys(fields)
        return CqlOrder.components<Record<string, unknown>>(orders, (udt, index) => udt[names[index]!])
      })
    )
  )

/**
 * CQL `list<…>`: a `ReadonlyArray` of the element schema's values, in list order.
 *
 * Elements cannot be null. An empty list is stored as no value: see the module notes on nulls.
 *
 * @since 0.1.0
 * @category constructors
 */
export const List = <Element extends Schema.Top>(element: Element) =>
  Schema.Array(element).pipe(
    withCqlType(
      parameterisedCqlType("list", [element]),
      composedOrder([element], ([order]) => CqlOrder.list(order!))
    )
  )

/**
 * Puts a set's elements or a map's keys in Cassandra's order when decoding, and before encoding, so that equal
 * values have equal bytes wherever they are nested. Before encoding the elements are not validated yet: a collection
 * holding a value its schema refuses (`isValid`) or the order cannot read is passed on as given, so that the element
 * schema's error names the value's position in the collection the caller built.
 */
const inCqlOrder = <C>(sort: ((collection: C) => C) | undefined, isValid: (collection: C) => boolean) => {
  if (sort === undefined) {
    return SchemaTransformation.transform<C, C>({ decode: identity, encode: identity })
  }
  const sortIfValid = (collection: C) => {
    try {
      const sorted = sort(collection)
      return sorted === collection || !isValid(collection) ? collection : sorted
    } catch {
      return collection
    }
  }
  // Decoded elements are valid already.
  return SchemaTransformation.transform<C, C>({ decode: sort, encode: sortIfValid })
}

const identity = <A>(value: A): A => value

const everyValid =
  (isValid: (value: unknown) => boolean) =>
  (values: Iterable<unknown>): boolean => {
    for (const value of values) {
      if (!isValid(value)) return false
    }
    return true
  }

/**
 * CQL `set<…>`: a `ReadonlySet` of the element schema's values.
 *
 * A set rather than an array says what a CQL set is (no duplicates, membership tests), and for the element types
 * that decode to primitives (text, numbers, bigints, uuids, inet, date, time) a JavaScript `Set` compares them by
 * value as Cassandra does. For elements decoded to objects (`timestamp`, `blob`, `decimal`, tuples, UDTs, frozen
 * collections) a JavaScript `Set` compares by reference, so two equal values can both be put in it; Cassandra keeps
 * one. A JavaScript `Set` also holds `0` and `-0` as one element, where a CQL `set<double>` or `set<float>` holds
 * both: such a set read back has lost its `-0`.
 *
 * Sets are encoded and decoded in Cassandra's order for the element type, whatever the insertion order: numbers by
 * value, text by UTF-8 bytes (so U+1F600 after U+FFFD, unlike JavaScript's string order), uuid and timeuuid as
 * Cassandra compares them (version, then timestamp), tuples, UDTs and frozen collections component by component.
 * Cassandra sorts a set column itself, but keeps a set nested in a frozen UDT or tuple as it was sent, so this
 * order is what makes equal values equal bytes there: the same primary key, a match for `WHERE u = …`. A set read
 * back iterates in that order at every nesting level. Elements from schemas built elsewhere keep insertion order.
 * Empty sets are stored as no value: see the module notes on nulls.
 *
 * @since 0.1.0
 * @category constructors
 */
const cqlSet = <Element extends Schema.Top>(element: Element) => {
  const order = cqlOrderOf(element)
  return Schema.ReadonlySet(element).pipe(
    Schema.decodeTo(
      Schema.declare((input): input is ReadonlySet<Element["Type"]> => input instanceof globalThis.Set, {
        expected: "ReadonlySet"
      }),
      inCqlOrder(order === undefined ? undefined : CqlOrder.sortSet(order), everyValid(Schema.is(element)))
    ),
    withCqlType(parameterisedCqlType("set", [element]), order === undefined ? undefined : CqlOrder.set(order))
  )
}

/**
 * CQL `map<…, …>`: a `ReadonlyMap` from the key schema's values to the value schema's values.
 *
 * As for {@link Set}, keys decoded to objects are compared by reference in JavaScript, and maps are encoded and
 * decoded in Cassandra's key order at every nesting level. Values cannot be null. An empty non-frozen map is stored as no value: see the module
 * notes on nulls.
 *
 * @since 0.1.0
 * @category constructors
 */
const cqlMap = <Key extends Schema.Top, Value extends Schema.Top>(key: Key, value: Value) => {
  const keyOrder = cqlOrderOf(key)
  return Schema.ReadonlyMap(key, value).pipe(
    Schema.decodeTo(
      Schema.declare((input): input is ReadonlyMap<Key["Type"], Value["Type"]> => input instanceof globalThis.Map, {
        expected: "ReadonlyMap"
      }),
      inCqlOrder(
        keyOrder === undefined ? undefined : CqlOrder.sortMap(keyOrder),
        (map: ReadonlyMap<unknown, unknown>) => everyValid(Schema.is(key))(map.keys())
      )
    ),
    withCqlType(
      parameterisedCqlType("map", [key, value]),
      composedOrder([key, value], ([keys, values]) => CqlOrder.map(keys!, values!))
    )
  )
}

/**
 * CQL `frozen<…>`: the same schema, whose CQL type text becomes `frozen<…>`.
 *
 * Freezing changes how Cassandra stores a collection or UDT (as one value that is only ever replaced whole), not
 * what the driver returns, so the Type and Encoded sides are unchanged. Use it for collections nested in
 * collections, for UDTs or collections in a primary key, and to keep empty maps distinct from null.
 *
 * @since 0.1.0
 * @category constructors
 */
export const Frozen = <S extends Schema.Top>(schema: S): S["Rebuild"] =>
  schema.pipe(withCqlType(parameterisedCqlType("frozen", [schema])))

/**
 * CQL `vector<…, dimension>`: a `ReadonlyArray` of exactly `dimension` element values, such as
 * `Vector(Float, 768)` for `vector<float, 768>`.
 *
 * The element is usually {@link Float}; since driver 4.8 any element type works.
 *
 * @since 0.1.0
 * @category constructors
 */
export const Vector = <Element extends Schema.Top>(element: Element, dimension: number) => {
  const elementType = cqlTypeOf(element)
  return driverInstance(Cassandra.types.Vector, "Vector").pipe(
    Schema.decodeTo(
      Schema.Array(element).check(
        Schema.isBetweenLength(dimension, dimension, rule(`exactly ${dimension} elements (CQL vector)`))
      ),
      SchemaTransformation.transform<ReadonlyArray<Element["Encoded"]>, Cassandra.types.Vector>({
        decode: (vector) => [...vector],
        encode: (elements) => new Cassandra.types.Vector([...elements])
      })
    ),
    withCqlType(
      elementType === undefined ? undefined : `vector<${elementType}, ${dimension}>`,
      composedOrder([element], ([order]) => CqlOrder.list(order!))
    )
  )
}

/**
 * A CQL value that may be absent: the schema's values or `null`, which is what the driver returns for a column or
 * UDT field with no value. Encoding `null` deletes the stored value. This is `Schema.NullOr`, listed here for
 * discovery; {@link cqlTypeOf} sees through it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const NullOr: <S extends Schema.Top>(schema: S) => Schema.NullOr<S> = Schema.NullOr

// Named after their CQL types, like the other schemas; declared under other names because biome forbids shadowing
// the JavaScript globals of the same names.
export { cqlBigInt as BigInt, cqlBoolean as Boolean, cqlDate as Date, cqlMap as Map, cqlSet as Set }
