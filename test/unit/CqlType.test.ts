import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as BigDecimal from "effect/BigDecimal"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/testing/TestClock"
import * as CqlType from "effect-cassandra/CqlType"
import * as fc from "fast-check"

const { types } = Cassandra

/** The message of the schema error that encoding `value` fails with. */
const encodeError = <T, E>(schema: Schema.Codec<T, E>, value: unknown) =>
  Effect.map(Effect.flip(Schema.encodeUnknownEffect(schema)(value)), (error) => error.message)

/** The message of the schema error that decoding `value` fails with. */
const decodeError = <T, E>(schema: Schema.Codec<T, E>, value: unknown) =>
  Effect.map(Effect.flip(Schema.decodeUnknownEffect(schema)(value)), (error) => error.message)

const encodeSync = <T, E>(schema: Schema.Codec<T, E>, value: T): E => Schema.encodeSync(schema)(value)
const decodeSync = <T, E>(schema: Schema.Codec<T, E>, value: E): T => Schema.decodeSync(schema)(value)

describe("CqlType", () => {
  describe("strings", () => {
    it.effect("ascii takes US-ASCII only", () =>
      Effect.gen(function* () {
        assert.strictEqual(encodeSync(CqlType.Ascii, "\u0000plain\u007f"), "\u0000plain\u007f")
        assert.include(yield* encodeError(CqlType.Ascii, "café"), "Expected an ASCII string (CQL ascii)")
      })
    )

    it.effect("text takes any well-formed Unicode and rejects lone surrogates", () =>
      Effect.gen(function* () {
        assert.strictEqual(decodeSync(CqlType.Text, "Grüße 😀 日本"), "Grüße 😀 日本")
        assert.strictEqual(encodeSync(CqlType.Text, ""), "")
        assert.include(yield* encodeError(CqlType.Text, "broken \ud800 pair"), "without lone surrogates (CQL text)")
        assert.include(yield* encodeError(CqlType.Text, "\udc00"), "CQL text")
        assert.strictEqual(CqlType.Varchar, CqlType.Text)
      })
    )

    it.effect("boolean takes booleans, and the schemas reject values of the wrong JavaScript type", () =>
      Effect.gen(function* () {
        assert.strictEqual(decodeSync(CqlType.Boolean, false), false)
        assert.strictEqual(encodeSync(CqlType.Boolean, true), true)
        assert.include(yield* decodeError(CqlType.Text, 42), "Expected string")
        assert.include(yield* encodeError(CqlType.Boolean, "true"), "Expected boolean")
      })
    )
  })

  describe("integers", () => {
    const ranges = [
      { name: "tinyint", schema: CqlType.TinyInt, minimum: -128, maximum: 127 },
      { name: "smallint", schema: CqlType.SmallInt, minimum: -32_768, maximum: 32_767 },
      { name: "int", schema: CqlType.Int, minimum: -(2 ** 31), maximum: 2 ** 31 - 1 }
    ]

    it.effect("tinyint, smallint and int take exactly their range and reject the rest on encode", () =>
      Effect.gen(function* () {
        for (const { maximum, minimum, name, schema } of ranges) {
          assert.strictEqual(encodeSync(schema, minimum), minimum)
          assert.strictEqual(encodeSync(schema, maximum), maximum)
          assert.strictEqual(decodeSync(schema, maximum), maximum)
          const expected = `Expected an integer between ${minimum} and ${maximum} (CQL ${name})`
          assert.include(yield* encodeError(schema, minimum - 1), expected)
          assert.include(yield* encodeError(schema, maximum + 1), expected)
          assert.include(yield* encodeError(schema, 1.5), "Expected an integer")
        }
        assert.include(yield* encodeError(CqlType.TinyInt, 200), "between -128 and 127 (CQL tinyint)")
        assert.include(yield* encodeError(CqlType.Int, 2 ** 31), "(CQL int)")
      })
    )

    it.effect("bigint and counter take 64-bit bigints, varint any bigint", () =>
      Effect.gen(function* () {
        for (const [schema, name] of [
          [CqlType.BigInt, "bigint"],
          [CqlType.Counter, "counter"]
        ] as const) {
          assert.strictEqual(encodeSync(schema, -(2n ** 63n)), -(2n ** 63n))
          assert.strictEqual(decodeSync(schema, 2n ** 63n - 1n), 2n ** 63n - 1n)
          assert.include(yield* encodeError(schema, 2n ** 63n), `(CQL ${name})`)
          assert.include(yield* encodeError(schema, -(2n ** 63n) - 1n), `(CQL ${name})`)
          assert.include(yield* encodeError(schema, 1), "Expected bigint")
        }
        assert.strictEqual(encodeSync(CqlType.Varint, -(2n ** 200n)), -(2n ** 200n))
      })
    )
  })

  describe("floating point", () => {
    it.effect("float rejects finite numbers beyond the 32-bit range and keeps NaN, infinities and -0", () =>
      Effect.gen(function* () {
        const largestFloat = 3.4028234663852886e38
        assert.strictEqual(encodeSync(CqlType.Float, largestFloat), largestFloat)
        assert.strictEqual(encodeSync(CqlType.Float, -largestFloat), -largestFloat)
        assert.include(yield* encodeError(CqlType.Float, 3.5e38), "32-bit float range (CQL float)")
        assert.include(yield* encodeError(CqlType.Float, -1e39), "(CQL float)")
        assert.isNaN(encodeSync(CqlType.Float, Number.NaN))
        assert.strictEqual(encodeSync(CqlType.Float, Number.NEGATIVE_INFINITY), Number.NEGATIVE_INFINITY)
        assert.isTrue(Object.is(decodeSync(CqlType.Float, -0), -0))
      })
    )

    it("double takes every number", () => {
      for (const value of [Number.MAX_VALUE, Number.MIN_VALUE, -0, Number.NaN, Number.POSITIVE_INFINITY]) {
        assert.isTrue(Object.is(encodeSync(CqlType.Double, value), value))
      }
    })
  })

  describe("decimal", () => {
    it("decodes the driver's BigDecimal exactly, scale included", () => {
      const decoded = decodeSync(CqlType.Decimal, types.BigDecimal.fromString("-123.4500"))
      assert.strictEqual(decoded.value, -1_234_500n)
      assert.strictEqual(decoded.scale, 4)
      const huge = decodeSync(CqlType.Decimal, types.BigDecimal.fromString("98765432109876543210987654321.0"))
      assert.strictEqual(huge.value, 987_654_321_098_765_432_109_876_543_210n)
      assert.strictEqual(huge.scale, 1)
    })

    it("encodes to the driver's BigDecimal and back without loss, negative scales included", () => {
      fc.assert(
        fc.property(fc.bigInt({ min: -(2n ** 300n), max: 2n ** 300n }), fc.integer(), (value, scale) => {
          const decimal = BigDecimal.make(value, scale)
          const encoded = encodeSync(CqlType.Decimal, decimal)
          assert.instanceOf(encoded, types.BigDecimal)
          const decoded = decodeSync(CqlType.Decimal, encoded)
          assert.strictEqual(decoded.value, value)
          assert.strictEqual(decoded.scale, scale)
        })
      )
      assert.strictEqual(encodeSync(CqlType.Decimal, BigDecimal.make(12_345n, 2)).toString(), "123.45")
    })

    it.effect("rejects a scale that does not fit in 32 bits", () =>
      Effect.gen(function* () {
        assert.include(
          yield* encodeError(CqlType.Decimal, BigDecimal.make(1n, 2 ** 31)),
          "a BigDecimal with a 32-bit scale (CQL decimal)"
        )
        assert.include(yield* encodeError(CqlType.Decimal, "1.5"), "Expected BigDecimal")
      })
    )
  })

  describe("uuid and timeuuid", () => {
    const v4 = "3f8e2f2a-6d0e-4c8e-9b1a-1234567890ab"
    const v1 = "52e5ec80-e9d2-11f1-94c3-b88676572f6b"

    it.effect("uuid maps the driver's Uuid to a lower-case string and validates strings", () =>
      Effect.gen(function* () {
        assert.strictEqual(decodeSync(CqlType.Uuid, types.Uuid.fromString(v4)), v4)
        const encoded = encodeSync(CqlType.Uuid, v4.toUpperCase())
        assert.instanceOf(encoded, types.Uuid)
        assert.strictEqual(encoded.toString(), v4)
        assert.strictEqual(decodeSync(CqlType.Uuid, types.TimeUuid.fromString(v1)), v1)
        for (const bad of ["not-a-uuid", v4.replaceAll("-", ""), `${v4}0`, v4.replace("a", "g"), ""]) {
          assert.include(yield* encodeError(CqlType.Uuid, bad), "Expected a UUID string (CQL uuid)")
        }
        assert.include(yield* decodeError(CqlType.Uuid, v4), "Expected a cassandra-driver Uuid")
      })
    )

    it.effect("timeuuid takes version 1 UUIDs only", () =>
      Effect.gen(function* () {
        const now = types.TimeUuid.now()
        assert.strictEqual(decodeSync(CqlType.TimeUuid, now), now.toString())
        const encoded = encodeSync(CqlType.TimeUuid, v1)
        assert.instanceOf(encoded, types.TimeUuid)
        assert.strictEqual(encoded.toString(), v1)
        assert.include(
          yield* encodeError(CqlType.TimeUuid, v4),
          "Expected a version 1 (time-based) UUID (CQL timeuuid)"
        )
        assert.include(yield* encodeError(CqlType.TimeUuid, "nope"), "(CQL timeuuid)")
        assert.include(yield* decodeError(CqlType.TimeUuid, types.Uuid.fromString(v1)), "cassandra-driver TimeUuid")
      })
    )

    /** The 60-bit timestamp of a version 1 UUID: 100-nanosecond intervals since 1582-10-15. */
    const timestampOf = (uuid: string) => BigInt(`0x${uuid.slice(15, 18)}${uuid.slice(9, 13)}${uuid.slice(0, 8)}`)

    it.effect(
      "makeTimeUuid makes version 1 UUIDs at the Clock's time, increasing within one millisecond",
      () =>
        Effect.gen(function* () {
          const instant = Date.parse("2026-11-30T05:00:00.123Z")
          yield* TestClock.setTime(instant)
          // More than the 10,000 intervals of 100 ns that one millisecond holds, all made while the clock stands still.
          const made = yield* Effect.replicateEffect(CqlType.makeTimeUuid, 12_000)
          for (const uuid of made) {
            assert.match(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
          }
          for (const uuid of [made[0]!, made[11_999]!]) {
            assert.strictEqual(decodeSync(CqlType.TimeUuid, encodeSync(CqlType.TimeUuid, uuid)), uuid)
          }
          assert.strictEqual(types.TimeUuid.fromString(made[0]!).getDate().getTime(), instant)
          const timestamps = made.map(timestampOf)
          assert.isTrue(timestamps.every((timestamp, index) => index === 0 || timestamp > timestamps[index - 1]!))
          // ... so a set of them keeps the order they were made in, as Cassandra orders timeuuids.
          assert.deepStrictEqual(
            [...Schema.encodeSync(CqlType.Set(CqlType.TimeUuid))(new Set(made.toReversed()))].map(String),
            made
          )
          const later = yield* TestClock.adjust("1 second").pipe(Effect.andThen(CqlType.makeTimeUuid))
          assert.strictEqual(types.TimeUuid.fromString(later).getDate().getTime(), instant + 1000)
        }),
      30_000
    )

    it.effect("makeTimeUuidFromDate makes a version 1 UUID at a given date, and refuses dates it cannot hold", () =>
      Effect.gen(function* () {
        const date = new Date("1999-12-31T23:59:59.999Z")
        const [first, second] = yield* Effect.replicateEffect(CqlType.makeTimeUuidFromDate(date), 2)
        assert.notStrictEqual(first, second)
        for (const uuid of [first!, second!]) {
          assert.strictEqual(types.TimeUuid.fromString(uuid).getDate().getTime(), date.getTime())
          assert.strictEqual(decodeSync(CqlType.TimeUuid, encodeSync(CqlType.TimeUuid, uuid)), uuid)
        }
        const earliest = yield* CqlType.makeTimeUuidFromDate(new Date("1582-10-15T00:00:00.000Z"))
        assert.isTrue(timestampOf(earliest) < 10_000n)
        for (const bad of [
          new Date("1582-10-14T23:59:59.999Z"),
          new Date("5236-04-01T00:00:00.000Z"),
          new Date(Number.NaN)
        ]) {
          const error = yield* Effect.flip(CqlType.makeTimeUuidFromDate(bad))
          assert.isTrue(Cause.isIllegalArgumentError(error))
          assert.include(error.message, "from 1582-10-15T00:00:00.000Z to 5236-03-31")
          assert.notInclude(error.message, "1582-10-14")
          assert.notInclude(error.message, "5236-04-01")
        }
      })
    )
  })

  describe("timeuuid generation under attack", () => {
    const timestampOf = (uuid: string) => BigInt(`0x${uuid.slice(15, 18)}${uuid.slice(9, 13)}${uuid.slice(0, 8)}`)
    const inTimeUuidOrder = (uuids: ReadonlyArray<string>) =>
      [...Schema.encodeSync(CqlType.Set(CqlType.TimeUuid))(new Set(uuids.toReversed()))].map(String)

    it.effect("makeTimeUuid at a Clock time with a fraction of a millisecond is a UUID of that millisecond", () =>
      Effect.gen(function* () {
        // Later than every UUID made before in this process, which the generator never goes back before.
        const millisecond = Date.parse("4000-01-01T00:00:00.000Z")
        yield* TestClock.setTime(millisecond + 0.5)
        const uuid = yield* CqlType.makeTimeUuid
        assert.strictEqual(types.TimeUuid.fromString(uuid).getDate().getTime(), millisecond)
      })
    )

    it.effect("makeTimeUuid with the Clock outside the timeuuid range dies naming the range, never wraps around", () =>
      Effect.gen(function* () {
        for (const time of [Date.parse("6000-01-01T00:00:00Z"), Date.parse("1500-01-01T00:00:00Z")]) {
          yield* TestClock.setTime(time)
          const exit = yield* Effect.exit(CqlType.makeTimeUuid)
          assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
          assert.include(String(exit), "from 1582-10-15T00:00:00.000Z to 5236-03-31")
        }
      })
    )

    it.effect("makeTimeUuid keeps increasing across fibers and when the Clock is set back", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(Date.parse("2026-11-30T05:00:00.000Z"))
        const before = yield* Effect.all(
          Array.from({ length: 500 }, () => CqlType.makeTimeUuid),
          {
            concurrency: "unbounded"
          }
        )
        yield* TestClock.setTime(Date.parse("2026-11-30T04:00:00.000Z"))
        const after = yield* Effect.replicateEffect(CqlType.makeTimeUuid, 500)
        const made = [...before, ...after]
        assert.strictEqual(new Set(made).size, made.length)
        assert.deepStrictEqual(inTimeUuidOrder(made), made)
      })
    )

    it.effect("makeTimeUuidFromDate never repeats a UUID of one date, however many were made for others between", () =>
      Effect.gen(function* () {
        const date = new Date("2010-01-01T00:00:00.000Z")
        const first = yield* CqlType.makeTimeUuidFromDate(date)
        yield* Effect.replicateEffect(CqlType.makeTimeUuidFromDate(new Date("2011-01-01T00:00:00.000Z")), 9_999)
        const again = yield* CqlType.makeTimeUuidFromDate(date)
        assert.notStrictEqual(again, first)
      })
    )

    it.effect("minTimeUuid and maxTimeUuid bound every timeuuid of a millisecond, as Cassandra's functions do", () =>
      Effect.gen(function* () {
        const date = new Date("5000-02-03T04:05:06.789Z")
        const low = yield* CqlType.minTimeUuid(date)
        const high = yield* CqlType.maxTimeUuid(date)
        const inside = yield* Effect.replicateEffect(CqlType.makeTimeUuidFromDate(date), 3)
        yield* TestClock.setTime(date.getTime())
        const fromClock = yield* Effect.replicateEffect(CqlType.makeTimeUuid, 3)
        const sorted = inTimeUuidOrder([low, ...inside, ...fromClock, high])
        assert.strictEqual(sorted[0], low)
        assert.strictEqual(sorted.at(-1), high)
        assert.strictEqual(types.TimeUuid.fromString(low).getDate().getTime(), date.getTime())
        assert.strictEqual(types.TimeUuid.fromString(high).getDate().getTime(), date.getTime())
        assert.isTrue(timestampOf(high) - timestampOf(low) === 9_999n)
        const after = yield* CqlType.minTimeUuid(new Date(date.getTime() + 1))
        assert.deepStrictEqual(inTimeUuidOrder([after, high]), [high, after])
        // The first and last milliseconds a timeuuid holds: the 60-bit timestamp neither underflows nor wraps.
        const first = yield* CqlType.minTimeUuid(new Date("1582-10-15T00:00:00.000Z"))
        assert.strictEqual(first, "00000000-0000-1000-8080-808080808080")
        const lastMillisecond = new Date("5236-03-31T21:21:00.683Z")
        const last = yield* CqlType.maxTimeUuid(lastMillisecond)
        assert.strictEqual(decodeSync(CqlType.TimeUuid, encodeSync(CqlType.TimeUuid, last)), last)
        assert.strictEqual(timestampOf(last), (2n ** 60n / 10_000n) * 10_000n - 1n)
        assert.isTrue(
          Cause.isIllegalArgumentError(yield* Effect.flip(CqlType.maxTimeUuid(new Date(lastMillisecond.getTime() + 1))))
        )
        for (const bad of [new Date("1582-10-14T23:59:59.999Z"), new Date(Number.NaN)]) {
          assert.isTrue(Cause.isIllegalArgumentError(yield* Effect.flip(CqlType.minTimeUuid(bad))))
          assert.isTrue(Cause.isIllegalArgumentError(yield* Effect.flip(CqlType.maxTimeUuid(bad))))
        }
      })
    )
  })

  describe("inet", () => {
    const roundTrip = (text: string) => decodeSync(CqlType.Inet, encodeSync(CqlType.Inet, text))

    it("writes IPv4 in dotted decimal and IPv6 in RFC 5952 form", () => {
      const cases: ReadonlyArray<readonly [input: string, canonical: string, bytes: number]> = [
        ["192.0.2.1", "192.0.2.1", 4],
        ["0.0.0.0", "0.0.0.0", 4],
        ["255.255.255.255", "255.255.255.255", 4],
        ["2001:DB8:0:0:0:0:0:1", "2001:db8::1", 16],
        ["2001:0db8::0001", "2001:db8::1", 16],
        ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1", 16],
        ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1", 16],
        ["2001:db8:0:0:1:1:1:0", "2001:db8::1:1:1:0", 16],
        ["::", "::", 16],
        ["::1", "::1", 16],
        ["1::", "1::", 16],
        ["::ffff:192.0.2.1", "::ffff:192.0.2.1", 16],
        ["::FFFF:C000:0201", "::ffff:192.0.2.1", 16],
        ["64:ff9b::192.0.2.33", "64:ff9b::c000:221", 16],
        ["1:2:3:4:5:6:7.8.9.10", "1:2:3:4:5:6:708:90a", 16]
      ]
      for (const [input, canonical, bytes] of cases) {
        const encoded = encodeSync(CqlType.Inet, input)
        assert.instanceOf(encoded, types.InetAddress)
        assert.strictEqual(encoded.getBuffer().length, bytes, input)
        assert.strictEqual(roundTrip(input), canonical, input)
      }
    })

    it.effect("rejects what is not an IP address, and zone ids", () =>
      Effect.gen(function* () {
        const bad = [
          "",
          "256.0.0.1",
          "01.2.3.4",
          "1.2.3",
          "1.2.3.4.5",
          "fe80::1%eth0",
          "1:2:3:4:5:6:7:8:9",
          "1:2:3:4:5:6:7",
          "1::2::3",
          ":::",
          ":1::",
          "12345::",
          "1.2.3.4::",
          "::1.2.3.4.5",
          "1::2:3:4:5:6:7:8",
          "localhost"
        ]
        for (const text of bad) {
          assert.include(yield* encodeError(CqlType.Inet, text), "Expected an IPv4 or IPv6 address (CQL inet)", text)
        }
      })
    )

    it("agrees with the WHATWG URL serializer on every IPv6 address that is not IPv4-mapped", () => {
      const hexGroups = (bytes: Uint8Array) =>
        Array.from({ length: 8 }, (_, index) =>
          (((bytes[2 * index] ?? 0) << 8) | (bytes[2 * index + 1] ?? 0)).toString(16)
        )
      // Runs of zeros are what the compression rules are about, so generate plenty of them.
      const group = fc.oneof(fc.constant([0, 0]), fc.tuple(fc.nat(255), fc.nat(255)))
      fc.assert(
        fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (groups) => {
          const bytes = Uint8Array.from(groups.flat())
          const decoded = decodeSync(CqlType.Inet, new types.InetAddress(Buffer.from(bytes)))
          const isMapped = bytes.subarray(0, 10).every((byte) => byte === 0) && bytes[10] === 255 && bytes[11] === 255
          const expected = isMapped
            ? `::ffff:${bytes.subarray(12).join(".")}`
            : new URL(`http://[${hexGroups(bytes).join(":")}]`).hostname.slice(1, -1)
          assert.strictEqual(decoded, expected)
          assert.deepStrictEqual(encodeSync(CqlType.Inet, decoded).getBuffer(), Buffer.from(bytes))
        }),
        { numRuns: 500 }
      )
    })
  })

  describe("date", () => {
    const dayOf = (date: Cassandra.types.LocalDate) => date.toBuffer().readUInt32BE(0) - 2 ** 31
    const fromDay = (day: number) => {
      const bytes = Buffer.alloc(4)
      bytes.writeUInt32BE(day + 2 ** 31)
      return types.LocalDate.fromBuffer(bytes)
    }

    it("writes dates like java.time.LocalDate across the whole CQL range", () => {
      const cases: ReadonlyArray<readonly [day: number, text: string]> = [
        [0, "1970-01-01"],
        [-1, "1969-12-31"],
        [19_782, "2024-02-29"],
        [-719_528, "0000-01-01"],
        [-719_529, "-0001-12-31"],
        [-1_401_960, "-1869-07-26"],
        [2_932_897, "+10000-01-01"],
        [-(2 ** 31), "-5877641-06-23"],
        [2 ** 31 - 1, "+5881580-07-11"]
      ]
      for (const [day, text] of cases) {
        assert.strictEqual(decodeSync(CqlType.Date, fromDay(day)), text)
        assert.strictEqual(dayOf(encodeSync(CqlType.Date, text)), day, text)
      }
    })

    it("matches JavaScript's own calendar wherever a Date can hold the day", () => {
      const maxDateDay = 100_000_000
      fc.assert(
        fc.property(fc.integer({ min: -maxDateDay, max: maxDateDay }), (day) => {
          const date = new Date(day * 86_400_000)
          const [, year, month, dayOfMonth] = /^([+-]?\d+)-(\d\d)-(\d\d)$/.exec(decodeSync(CqlType.Date, fromDay(day)))!
          assert.deepStrictEqual(
            [Number(year), Number(month), Number(dayOfMonth)],
            [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate()]
          )
        }),
        { numRuns: 1000 }
      )
    })

    it("encodes every decoded date back to the same day", () => {
      fc.assert(
        fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (day) => {
          assert.strictEqual(dayOf(encodeSync(CqlType.Date, decodeSync(CqlType.Date, fromDay(day)))), day)
        }),
        { numRuns: 1000 }
      )
    })

    it.effect("rejects impossible, non-canonical and out-of-range dates", () =>
      Effect.gen(function* () {
        const bad = [
          "2023-02-29",
          "1900-02-29",
          "2024-13-01",
          "2024-00-10",
          "2024-04-31",
          "2024-1-05",
          "24-01-05",
          "+2024-01-01",
          "10000-01-01",
          "-0000-01-01",
          "-001-01-01",
          "-5877641-06-22",
          "+5881580-07-12",
          "2024-02-29T00:00:00Z",
          ""
        ]
        for (const text of bad) {
          assert.include(yield* encodeError(CqlType.Date, text), "(CQL date)", text)
        }
        assert.include(
          yield* encodeError(CqlType.Date, "2023-02-29"),
          "Expected a valid calendar date YYYY-MM-DD, from -5877641-06-23 to +5881580-07-11 (CQL date)"
        )
      })
    )
  })

  describe("time and timestamp", () => {
    it.effect("time is the bigint number of nanoseconds since midnight", () =>
      Effect.gen(function* () {
        assert.strictEqual(
          decodeSync(CqlType.Time, types.LocalTime.fromString("23:59:59.999999999")),
          86_399_999_999_999n
        )
        assert.strictEqual(encodeSync(CqlType.Time, 1n).toString(), "00:00:00.000000001")
        assert.strictEqual(encodeSync(CqlType.Time, 45_296_789_000_000n).toString(), "12:34:56.789")
        assert.include(yield* encodeError(CqlType.Time, -1n), "(CQL time)")
        assert.include(yield* encodeError(CqlType.Time, 86_400_000_000_000n), "between 0 and 86399999999999 (CQL time)")
      })
    )

    it.effect("timestamp is a valid Date", () =>
      Effect.gen(function* () {
        const instant = new Date("2024-02-29T12:34:56.789Z")
        assert.strictEqual(encodeSync(CqlType.Timestamp, instant), instant)
        assert.strictEqual(decodeSync(CqlType.Timestamp, instant), instant)
        // What the driver gives for a timestamp beyond the range of a JavaScript Date.
        assert.include(yield* decodeError(CqlType.Timestamp, new Date(Number.NaN)), "Expected a valid Date")
      })
    )
  })

  describe("duration", () => {
    it.effect("maps months, days and bigint nanoseconds, all of one sign", () =>
      Effect.gen(function* () {
        assert.deepStrictEqual(decodeSync(CqlType.Duration, types.Duration.fromString("1y2mo3d4h5ns")), {
          months: 14,
          days: 3,
          nanoseconds: 4n * 3_600_000_000_000n + 5n
        })
        const encoded = encodeSync(CqlType.Duration, { months: -1, days: -2, nanoseconds: -(2n ** 63n) })
        assert.instanceOf(encoded, types.Duration)
        assert.isTrue(encoded.equals(new types.Duration(-1, -2, types.Long.MIN_VALUE)))
        assert.deepStrictEqual(decodeSync(CqlType.Duration, encoded), {
          months: -1,
          days: -2,
          nanoseconds: -(2n ** 63n)
        })
        assert.include(
          yield* encodeError(CqlType.Duration, { months: 1, days: -1, nanoseconds: 0n }),
          "months, days and nanoseconds of the same sign (CQL duration)"
        )
        assert.include(
          yield* encodeError(CqlType.Duration, { months: 0, days: 0, nanoseconds: 2n ** 63n }),
          "(CQL bigint)"
        )
        assert.include(yield* encodeError(CqlType.Duration, { months: 2 ** 31, days: 0, nanoseconds: 0n }), "(CQL int)")
      })
    )
  })

  describe("blob", () => {
    it("decodes a Buffer to a plain Uint8Array over the same memory and encodes any Uint8Array", () => {
      const buffer = Buffer.from([1, 2, 3, 4])
      const decoded = decodeSync(CqlType.Blob, buffer.subarray(1))
      assert.strictEqual(Object.getPrototypeOf(decoded), Uint8Array.prototype)
      assert.deepStrictEqual(decoded, Uint8Array.from([2, 3, 4]))
      assert.strictEqual(decoded.buffer, buffer.buffer)
      const view = Uint8Array.from([9, 8, 7, 6]).subarray(1, 3)
      const encoded = encodeSync(CqlType.Blob, view)
      assert.isTrue(Buffer.isBuffer(encoded))
      assert.deepStrictEqual([...encoded], [8, 7])
    })
  })

  describe("tuples and user-defined types", () => {
    const Pair = CqlType.Tuple([CqlType.TinyInt, CqlType.Text, CqlType.NullOr(CqlType.BigInt)])

    it.effect("tuple maps the driver's Tuple to a TypeScript tuple, element by element", () =>
      Effect.gen(function* () {
        assert.deepStrictEqual(decodeSync(Pair, new types.Tuple(1, "a", null)), [1, "a", null])
        const encoded = encodeSync(Pair, [2, "b", 3n])
        assert.instanceOf(encoded, types.Tuple)
        assert.deepStrictEqual(encoded.values(), [2, "b", 3n])
        assert.include(yield* encodeError(Pair, [200, "b", null]), "(CQL tinyint)")
        assert.include(yield* decodeError(Pair, [1, "a", null]), "Expected a cassandra-driver Tuple")
        assert.strictEqual(CqlType.cqlTypeOf(Pair), "tuple<tinyint, text, bigint>")
      })
    )

    it.effect("a user-defined type is an object of its fields", () =>
      Effect.gen(function* () {
        const Address = CqlType.Udt("address", { street: CqlType.Text, zip: CqlType.NullOr(CqlType.Int) })
        assert.deepStrictEqual(decodeSync(Address, { street: "Main", zip: null }), { street: "Main", zip: null })
        assert.deepStrictEqual(encodeSync(Address, { street: "Main", zip: 12 }), { street: "Main", zip: 12 })
        assert.include(yield* encodeError(Address, { street: "Main", zip: 2 ** 31 }), "(CQL int)")
        assert.strictEqual(CqlType.cqlTypeOf(Address), "address")
        assert.strictEqual(CqlType.cqlTypeOf(CqlType.Frozen(Address)), "frozen<address>")
      })
    )
  })

  describe("collections", () => {
    const uuid = "3f8e2f2a-6d0e-4c8e-9b1a-1234567890ab"

    it.effect("list, set and map decode and encode their elements with the element schemas", () =>
      Effect.gen(function* () {
        const Ids = CqlType.List(CqlType.Uuid)
        assert.deepStrictEqual(decodeSync(Ids, [types.Uuid.fromString(uuid)]), [uuid])
        const encodedList = encodeSync(Ids, [uuid])
        assert.isTrue(Array.isArray(encodedList) && encodedList[0] instanceof types.Uuid)

        const Tags = CqlType.Set(CqlType.Text)
        assert.deepStrictEqual(decodeSync(Tags, new Set(["a", "b"])), new Set(["a", "b"]))
        assert.instanceOf(encodeSync(Tags, new Set(["a"])), Set)

        const Scores = CqlType.Map(CqlType.Inet, CqlType.BigInt)
        const decodedMap = decodeSync(Scores, new Map([[types.InetAddress.fromString("10.0.0.1"), 7n]]))
        assert.deepStrictEqual(decodedMap, new Map([["10.0.0.1", 7n]]))
        const encodedMap = encodeSync(Scores, new Map([["::1", 1n]]))
        assert.instanceOf(encodedMap, Map)
        assert.instanceOf([...encodedMap.keys()][0], types.InetAddress)

        assert.include(yield* encodeError(CqlType.List(CqlType.TinyInt), [1, 300]), "(CQL tinyint)")
        assert.include(yield* decodeError(Tags, ["a"]), "Expected ReadonlySet")
        assert.include(yield* decodeError(Tags, null), "Expected ReadonlySet")
        assert.deepStrictEqual(decodeSync(CqlType.NullOr(Tags), null), null)
      })
    )

    it("frozen keeps the runtime shape and changes only the CQL type text", () => {
      const Nested = CqlType.List(CqlType.Frozen(CqlType.Map(CqlType.Text, CqlType.List(CqlType.Int))))
      const value = [new Map([["a", [1, 2]]])]
      assert.deepStrictEqual(decodeSync(Nested, encodeSync(Nested, value)), value)
      assert.strictEqual(CqlType.cqlTypeOf(Nested), "list<frozen<map<text, list<int>>>>")
      assert.strictEqual(CqlType.cqlTypeOf(CqlType.Frozen(CqlType.Set(CqlType.Date))), "frozen<set<date>>")
    })
  })

  describe("vector", () => {
    const Embedding = CqlType.Vector(CqlType.Float, 3)

    it.effect("maps the driver's Vector to an array of exactly the dimension", () =>
      Effect.gen(function* () {
        assert.deepStrictEqual(decodeSync(Embedding, new types.Vector([0.5, -1, 2], "float")), [0.5, -1, 2])
        const encoded = encodeSync(Embedding, [1, 2, 3])
        assert.instanceOf(encoded, types.Vector)
        assert.deepStrictEqual([...encoded], [1, 2, 3])
        assert.include(yield* encodeError(Embedding, [1, 2]), "Expected exactly 3 elements (CQL vector)")
        assert.include(yield* encodeError(Embedding, [1, 2, 1e39]), "(CQL float)")
        assert.strictEqual(CqlType.cqlTypeOf(Embedding), "vector<float, 3>")
        assert.strictEqual(CqlType.cqlTypeOf(CqlType.Vector(CqlType.Text, 2)), "vector<text, 2>")
      })
    )
  })

  describe("nulls", () => {
    it("NullOr passes null through in both directions", () => {
      const MaybeDate = CqlType.NullOr(CqlType.Date)
      assert.isNull(decodeSync(MaybeDate, null))
      assert.isNull(encodeSync(MaybeDate, null))
      assert.strictEqual(decodeSync(MaybeDate, encodeSync(MaybeDate, "2024-02-29")), "2024-02-29")
    })
  })

  describe("cqlTypeOf", () => {
    it("names every CQL type, through NullOr, later checks and brands", () => {
      const Row = Schema.Struct({
        id: CqlType.Uuid,
        at: CqlType.TimeUuid,
        name: CqlType.Text.check(Schema.isMaxLength(20)).pipe(Schema.brand("Name")),
        email: Schema.NullOr(CqlType.Ascii),
        flags: CqlType.NullOr(CqlType.Set(CqlType.Boolean)),
        scores: CqlType.Map(CqlType.SmallInt, CqlType.Tuple([CqlType.Double, CqlType.Decimal])),
        seen: CqlType.List(CqlType.Timestamp),
        born: CqlType.Date,
        wakes: CqlType.Time,
        lasts: CqlType.Duration,
        photo: CqlType.Blob,
        address: CqlType.Inet,
        big: CqlType.Varint,
        tiny: CqlType.TinyInt,
        hits: CqlType.Counter,
        total: CqlType.BigInt,
        n: CqlType.Int,
        ratio: CqlType.Float
      })
      const columns = Object.entries(Row.fields).map(([name, schema]) => `${name} ${CqlType.cqlTypeOf(schema)}`)
      assert.deepStrictEqual(columns, [
        "id uuid",
        "at timeuuid",
        "name text",
        "email ascii",
        "flags set<boolean>",
        "scores map<smallint, tuple<double, decimal>>",
        "seen list<timestamp>",
        "born date",
        "wakes time",
        "lasts duration",
        "photo blob",
        "address inet",
        "big varint",
        "tiny tinyint",
        "hits counter",
        "total bigint",
        "n int",
        "ratio float"
      ])
    })

    it("is undefined for schemas from elsewhere and for collections of them", () => {
      assert.isUndefined(CqlType.cqlTypeOf(Schema.String))
      assert.isUndefined(CqlType.cqlTypeOf(CqlType.List(Schema.Number)))
      assert.isUndefined(CqlType.cqlTypeOf(CqlType.Vector(Schema.Number, 2)))
      assert.isUndefined(CqlType.cqlTypeOf(Schema.Union([CqlType.Int, CqlType.Text])))
    })
  })
})
