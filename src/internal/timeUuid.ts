/**
 * Version 1 (time-based) UUIDs as text, made from a time in milliseconds since 1970.
 *
 * The timestamp counts 100-nanosecond intervals since 1582-10-15 in 60 bits. The clock sequence and node id are
 * random (once per process for {@link next}, at each call for {@link at}), with the node id's multicast bit set as
 * RFC 9562 asks of a node id that is not a MAC address. Callers pass whole milliseconds within {@link minMillis} and {@link maxMillis} ({@link isInRange}).
 */
import { randomBytes } from "node:crypto"

/** Milliseconds from 1582-10-15 to 1970-01-01. */
const gregorianOffsetMillis = 12_219_292_800_000
const intervalsPerMillisecond = 10_000

/** The first millisecond since 1970 a version 1 UUID can hold. */
export const minMillis = -gregorianOffsetMillis

/** The last millisecond since 1970 a version 1 UUID can hold with all its 100-nanosecond intervals (year 5236). */
export const maxMillis = Number(2n ** 60n / BigInt(intervalsPerMillisecond)) - 1 - gregorianOffsetMillis

/** Whether a timeuuid can hold the millisecond `millis`, false for `NaN`. */
export const isInRange = (millis: number): boolean => millis >= minMillis && millis <= maxMillis

/**
 * The clock sequence and node id that Cassandra's `minTimeuuid` and `maxTimeuuid` use: the smallest and largest
 * as TimeUUIDType compares them (signed bytes), so that no UUID of the same timestamp sorts outside them.
 */
const minClockSequenceAndNode = "8080-808080808080"
const maxClockSequenceAndNode = "7f7f-7f7f7f7f7f7f"

const randomClockSequenceAndNode = (): string => {
  const bytes = randomBytes(8)
  bytes[0] = (bytes[0]! & 0x3f) | 0x80 // RFC 4122 variant
  bytes[2] = bytes[2]! | 0x01 // multicast bit: a random node id
  return `${bytes.subarray(0, 2).toString("hex")}-${bytes.subarray(2).toString("hex")}`
}

let processClockSequenceAndNode: string | undefined

const clockSequenceAndNodeText = (): string => {
  processClockSequenceAndNode ??= randomClockSequenceAndNode()
  return processClockSequenceAndNode
}

/** The 60-bit timestamp of a millisecond since 1970 and a count of 100 ns within it. */
const timestampOf = (millis: number, interval: number): bigint =>
  BigInt(millis + gregorianOffsetMillis) * BigInt(intervalsPerMillisecond) + BigInt(interval)

const textOf = (timestamp: bigint, lastEightBytes: string): string => {
  const hex = BigInt.asUintN(60, timestamp).toString(16).padStart(15, "0")
  return `${hex.slice(7)}-${hex.slice(3, 7)}-1${hex.slice(0, 3)}-${lastEightBytes}`
}

let lastTimestamp = -1n

/**
 * A UUID at `millis` (a fraction of a millisecond is dropped), later than every UUID made before by this function:
 * within one millisecond the 100 ns intervals count up, and past 10,000 of them, or when the clock goes back, the
 * timestamp runs ahead of the clock.
 */
export const next = (millis: number): string => {
  const timestamp = timestampOf(Math.floor(millis), 0)
  lastTimestamp = timestamp > lastTimestamp ? timestamp : lastTimestamp + 1n
  return textOf(lastTimestamp, clockSequenceAndNodeText())
}

let atInterval = 0

/**
 * A UUID at `millis` (from {@link minMillis} to {@link maxMillis}), each call at the next of its 100 ns intervals.
 * The interval count is shared by every date and wraps after 10,000 calls, so each UUID takes a clock sequence and
 * node id of its own: two calls for one date 10,000 calls apart would otherwise be the same UUID.
 */
export const at = (millis: number): string => {
  atInterval = (atInterval + 1) % intervalsPerMillisecond
  return textOf(timestampOf(millis, atInterval), randomClockSequenceAndNode())
}

/** The smallest timeuuid at `millis` (from {@link minMillis} to {@link maxMillis}), as Cassandra's `minTimeuuid`. */
export const min = (millis: number): string => textOf(timestampOf(millis, 0), minClockSequenceAndNode)

/** The largest timeuuid at `millis` (from {@link minMillis} to {@link maxMillis}), as Cassandra's `maxTimeuuid`. */
export const max = (millis: number): string =>
  textOf(timestampOf(millis, intervalsPerMillisecond - 1), maxClockSequenceAndNode)
