/**
 * Cassandra's comparator order of CQL values, on the values the CqlType schemas decode to.
 *
 * Cassandra keeps a set's elements and a map's keys in this order and compares frozen values by it, but it keeps the
 * bytes of a set nested in a frozen UDT or tuple as the client sent them. Sorting every set and map by these orders
 * gives equal values equal bytes, the bytes the server and other drivers write. Each order follows the class of
 * apache/cassandra's `db/marshal` named in its comment.
 */
import { Buffer } from "node:buffer"
import * as BigDecimal from "effect/BigDecimal"
import type * as Order from "effect/Order"
import { parseEpochDay, parseInetAddress } from "./cqlTypeText.ts"

const sign = (difference: number): -1 | 0 | 1 => (difference < 0 ? -1 : difference > 0 ? 1 : 0)

/** Orders that compare a key read from each value (a parse), with that key and its order. */
const keyedOrders = new WeakMap<
  Order.Order<any>,
  { readonly key: (value: any) => any; readonly order: Order.Order<any> }
>()

/**
 * The order of values by `key` in `keyOrder`. Sorting by it reads each value's key once rather than at every one of
 * the n log n comparisons: that parse made sorting 100,000 inet, date or uuid texts take seconds.
 */
const byKey = <A, K>(key: (value: A) => K, keyOrder: Order.Order<K>): Order.Order<A> => {
  const order: Order.Order<A> = (self, that) => keyOrder(key(self), key(that))
  keyedOrders.set(order, { key, order: keyOrder })
  return order
}

const stringOrder: Order.Order<string> = (self, that) => (self < that ? -1 : self > that ? 1 : 0)

/** Int32Type, ShortType, ByteType, BooleanType (false before true). */
export const number: Order.Order<number | boolean> = (self, that) => (self < that ? -1 : self > that ? 1 : 0)

/** LongType, IntegerType (varint), TimeType. */
export const bigint: Order.Order<bigint> = (self, that) => (self < that ? -1 : self > that ? 1 : 0)

/** FloatType, DoubleType: Java's `Float.compare`, a total order with -0 before 0 and NaN after Infinity. */
export const floatingPoint: Order.Order<number> = (self, that) => {
  if (self < that) return -1
  if (self > that) return 1
  if (self === that) return Object.is(self, that) ? 0 : Object.is(self, -0) ? -1 : 1
  return Number.isNaN(self) ? (Number.isNaN(that) ? 0 : 1) : -1
}

/**
 * DecimalType: by numeric value, whatever the scale. Cassandra holds 1.0 and 1.00 equal, but their bytes differ:
 * the smaller scale first makes the bytes of a set holding both the same whatever its insertion order.
 */
export const decimal: Order.Order<BigDecimal.BigDecimal> = (self, that) =>
  BigDecimal.Order(self, that) || sign(self.scale - that.scale)

/** TimestampType. */
export const timestamp: Order.Order<Date> = (self, that) => sign(self.getTime() - that.getTime())

/** BytesType: unsigned bytes, a prefix first. */
export const bytes: Order.Order<Uint8Array> = (self, that) => Buffer.compare(self, that)

/** UTF-16 code units ranked so that surrogates (code points above U+FFFF) come after U+E000 to U+FFFF. */
const codePointRank = (unit: number): number => (unit >= 0xe000 ? unit - 0x800 : unit >= 0xd800 ? unit + 0x2000 : unit)

/**
 * UTF8Type, AsciiType: unsigned UTF-8 bytes, which is code point order, not JavaScript's UTF-16 order (which puts
 * U+1F600 before U+E000).
 */
export const text: Order.Order<string> = (self, that) => {
  const length = Math.min(self.length, that.length)
  for (let index = 0; index < length; index++) {
    const unit = self.charCodeAt(index)
    const other = that.charCodeAt(index)
    if (unit !== other) {
      return sign(codePointRank(unit) - codePointRank(other))
    }
  }
  return sign(self.length - that.length)
}

/** The value of the hex digit at `index` of a UUID text, in either case. */
const nibble = (uuid: string, index: number): number => {
  const lowerCase = uuid.charCodeAt(index) | 0x20
  return lowerCase <= 0x39 ? lowerCase - 0x30 : lowerCase - 0x57
}

const range = (from: number, to: number): Array<number> => Array.from({ length: to - from }, (_, index) => from + index)

/** Hex digit positions of a UUID text: the version 1 timestamp (time_hi, time_mid, time_low), most significant first. */
const timestampDigits = [...range(15, 18), ...range(9, 13), ...range(0, 8)]
const mostSignificantDigits = [...range(0, 8), ...range(9, 13), ...range(14, 18)]
const leastSignificantDigits = [...range(19, 23), ...range(24, 36)]

const hexDigits = "0123456789abcdef"

/**
 * The hex digits of a UUID text at `digits`, lower case, so that strings compare as the digits do; `signedBytes`
 * flips each byte's top bit, which turns signed byte order into unsigned order.
 */
const digitsOf = (uuid: string, digits: ReadonlyArray<number>, signedBytes: boolean): string => {
  let key = ""
  for (let position = 0; position < digits.length; position++) {
    const flip = signedBytes && position % 2 === 0 ? 8 : 0
    key += hexDigits[nibble(uuid, digits[position]!) ^ flip]
  }
  return key
}

/** UUIDType: by version, then version 1 UUIDs by timestamp and others by bytes, then the last 8 bytes unsigned. */
export const uuid: Order.Order<string> = byKey((text: string) => {
  const version = nibble(text, 14)
  return `${hexDigits[version]}${digitsOf(text, version === 1 ? timestampDigits : mostSignificantDigits, false)}${digitsOf(text, leastSignificantDigits, false)}`
}, stringOrder)

/** TimeUUIDType: by timestamp, then the last 8 bytes as signed bytes (CASSANDRA-8730). */
export const timeUuid: Order.Order<string> = byKey(
  (text: string) => `${digitsOf(text, timestampDigits, false)}${digitsOf(text, leastSignificantDigits, true)}`,
  stringOrder
)

/** InetAddressType: the 4 or 16 address bytes, unsigned, so an IPv4 address before an IPv6 one it prefixes. */
export const inet: Order.Order<string> = byKey((text: string) => parseInetAddress(text)!, bytes)

/** SimpleDateType: by day. */
export const date: Order.Order<string> = byKey((text: string) => parseEpochDay(text)!, number)

/**
 * TupleType, UserType: component by component, a null component before any value. Trailing nulls equal missing
 * components (a UDT field added by `ALTER TYPE`), so absent components read as null.
 */
export const components =
  <A>(orders: ReadonlyArray<Order.Order<any>>, component: (value: A, index: number) => unknown): Order.Order<A> =>
  (self, that) => {
    for (let index = 0; index < orders.length; index++) {
      const value = component(self, index) ?? null
      const other = component(that, index) ?? null
      if (value === null || other === null) {
        if (value !== other) return value === null ? -1 : 1
        continue
      }
      const result = orders[index]!(value, other)
      if (result !== 0) return result
    }
    return 0
  }

/** ListType, VectorType: element by element, then the shorter first. */
export const list =
  <A>(element: Order.Order<A>): Order.Order<ReadonlyArray<A>> =>
  (self, that) => {
    const length = Math.min(self.length, that.length)
    for (let index = 0; index < length; index++) {
      const result = element(self[index]!, that[index]!)
      if (result !== 0) return result
    }
    return sign(self.length - that.length)
  }

const isInOrder = <A>(values: Iterable<A>, order: Order.Order<A>): boolean => {
  let isFirst = true
  let previous: A | undefined
  for (const value of values) {
    if (!isFirst && order(previous as A, value) > 0) return false
    isFirst = false
    previous = value
  }
  return true
}

/**
 * The positions of `values` in `order` (stable: equal values keep their places), or undefined when they already are
 * in order. A keyed order reads each value's key once.
 */
const sortedPositions = <A>(values: ReadonlyArray<A>, order: Order.Order<A>): Array<number> | undefined => {
  const keyed = keyedOrders.get(order)
  const keys: ReadonlyArray<any> = keyed === undefined ? values : values.map(keyed.key)
  const keyOrder: Order.Order<any> = keyed === undefined ? order : keyed.order
  if (isInOrder(keys, keyOrder)) return undefined
  return Array.from(keys, (_, position) => position).sort((self, that) => keyOrder(keys[self], keys[that]))
}

/** The set with its elements in `order`: the same set when they already are. */
export const sortSet =
  <A>(order: Order.Order<A>) =>
  (set: ReadonlySet<A>): ReadonlySet<A> => {
    const elements = [...set]
    const positions = sortedPositions(elements, order)
    return positions === undefined ? set : new Set(positions.map((position) => elements[position]!))
  }

/** The map with its keys in `order`: the same map when they already are. */
export const sortMap =
  <K, V>(order: Order.Order<K>) =>
  (map: ReadonlyMap<K, V>): ReadonlyMap<K, V> => {
    const entries = [...map]
    const positions = sortedPositions(
      entries.map(([key]) => key),
      order
    )
    return positions === undefined ? map : new Map(positions.map((position) => entries[position]!))
  }

/** SetType (frozen): by the elements in order, then the smaller first. */
export const set = <A>(element: Order.Order<A>): Order.Order<ReadonlySet<A>> => {
  const elements = list(element)
  const sorted = sortSet(element)
  return (self, that) => elements([...sorted(self)], [...sorted(that)])
}

/** MapType (frozen): entry by entry in key order, each by key then value, then the smaller first. */
export const map = <K, V>(key: Order.Order<K>, value: Order.Order<V>): Order.Order<ReadonlyMap<K, V>> => {
  const entries = list(components<readonly [K, V]>([key, value], (entry, index) => entry[index]))
  const sorted = sortMap<K, V>(key)
  return (self, that) => entries([...sorted(self)], [...sorted(that)])
}
