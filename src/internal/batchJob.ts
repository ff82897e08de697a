import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as CassandraError from "../CassandraError.ts"
import type * as Query from "../Query.ts"
import type { RequestOptions } from "../Session.ts"
import { isIdempotent, mayBeConditional } from "./idempotence.ts"

const hex = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")

// Dates and bigints are written in the driver's unit (microseconds) so that equal timestamps get equal keys. A
// string is built for a date because its milliseconds times 1000 can exceed the integers a double holds exactly.
const timestampKey = (timestamp: bigint | Date | undefined) =>
  timestamp === undefined ? "" : timestamp instanceof Date ? `${timestamp.getTime()}000` : String(timestamp)

// A duration that cannot be read is keyed apart: the request path reports it, grouping must not throw.
const durationKey = (input: Duration.Input | undefined) => {
  if (input === undefined) return ""
  const duration = Duration.fromInput(input)
  return Option.isSome(duration) ? String(Duration.toMillis(duration.value)) : "invalid"
}

// A routing key of the wrong type, from a caller without type checks, is keyed apart as a timeout is.
const routingKeyKey = (routingKey: unknown) => {
  if (routingKey === undefined) return ""
  if (routingKey instanceof Uint8Array) return hex(routingKey)
  return Array.isArray(routingKey) && routingKey.every((part) => part instanceof Uint8Array)
    ? routingKey.map(hex).join(",")
    : "invalid"
}

/**
 * How each request option keys a batch, or `undefined` for an option a batch does not carry (paging) or that is
 * keyed with the text (idempotence). Every option is listed, so that a new one cannot be grouped by mistake.
 */
const optionKeys: {
  readonly [K in keyof Required<RequestOptions>]: ((options: RequestOptions) => string) | undefined
} = {
  consistency: (options) => options.consistency ?? "",
  serialConsistency: (options) => options.serialConsistency ?? "",
  pageSize: undefined,
  pageState: undefined,
  idempotent: undefined,
  timestamp: (options) => timestampKey(options.timestamp),
  allowAnyTimestamp: (options) => (options.allowAnyTimestamp === true ? "a" : ""),
  routingKey: (options) => routingKeyKey(options.routingKey),
  tracing: (options) => (options.tracing === true ? "t" : ""),
  executionProfile: (options) => options.executionProfile ?? "",
  timeout: (options) => durationKey(options.timeout),
  attemptTimeout: (options) => durationKey(options.attemptTimeout),
  prepare: (options) => (options.prepare === false ? "" : "p")
}

const keyOfOptions = Object.values(optionKeys).filter((key) => key !== undefined)

/**
 * What a batch carries for all its statements, as a string equal for statements that may share a batch. A batch has
 * one of each request option and it is retried only as a whole: statements differing in any option it carries, or in
 * idempotence, are never grouped, so each is written as it asked.
 */
export const batchOptionsKey = (statement: Query.Statement<unknown>): string => {
  const options = statement.options
  return `${isIdempotent(statement.text, options.idempotent) ? "i" : ""}\u0000${keyOfOptions.map((key) => key(options)).join("\u0000")}`
}

/** The options of the batch sent for statements of equal `batchOptionsKey`, taken from one of them. */
export const batchOptionsOf = (statement: Query.Statement<unknown>): RequestOptions => {
  const { pageSize: _pageSize, pageState: _pageState, ...options } = statement.options
  return { ...options, idempotent: isIdempotent(statement.text, statement.options.idempotent) }
}

/** The statements a batch may hold: writes. A read in a batch is refused by the server. */
const write = /^\s*(?:INSERT|UPDATE|DELETE)\b/i

/**
 * Whether a statement may share an unlogged batch with others: a write without a condition (a batch with one reports
 * one result for all its statements).
 */
export const mayShareBatch = (statement: Query.Statement<unknown>): boolean =>
  write.test(statement.text) && !mayBeConditional(statement.text)

/**
 * The reasons of a batch refused before anything of it was applied: by the driver before sending (a value that does
 * not fit, an invalid name) or by the server while validating it (counter and plain writes mixed, conditions across
 * partitions, a batch over the server's size limit, a table the user may not write). Its statements can then be sent one by one, so that each gets
 * its own outcome and one bad statement does not fail the others.
 */
const refusedWhole: ReadonlySet<string> = new Set([
  "Invalid",
  "InvalidArgument",
  "InvalidIdentifier",
  "Syntax",
  "Unauthorized"
])

/** Whether a batch failed with an error that applied none of it and may not concern every statement. */
export const refusedBeforeApplying = (error: CassandraError.CassandraError): boolean =>
  refusedWhole.has(error.reason._tag)

const isCount = (n: number | undefined) => n === undefined || (Number.isInteger(n) && n >= 1)

const isDuration = (input: Duration.Input | undefined, allowZero: boolean) => {
  if (input === undefined) return true
  if (typeof input === "number" && Number.isNaN(input)) return false
  const duration = Duration.fromInput(input)
  return (
    Option.isSome(duration) &&
    Duration.isFinite(duration.value) &&
    !Duration.isNegative(duration.value) &&
    (allowZero || !Duration.isZero(duration.value))
  )
}

/** The options of a batch job that are checked before it starts. */
export interface CheckedOptions {
  readonly concurrency?: number | undefined
  readonly maxBatchSize?: number | undefined
  readonly maxFailures?: number | undefined
  readonly maxGroupingDelay?: Duration.Input | undefined
  readonly progressInterval?: Duration.Input | undefined
}

/**
 * What is wrong with a job's options, or undefined: zero workers would run nothing, a batch size below 1 would
 * never close a batch, an endless grouping delay would hold statements unsent, a zero progress interval would spin.
 */
export const invalidOptions = (options: CheckedOptions): CassandraError.CassandraError | undefined => {
  const problems: Array<string> = []
  if (!isCount(options.concurrency))
    problems.push(`concurrency must be a whole number of at least 1, got ${options.concurrency}`)
  if (!isCount(options.maxBatchSize))
    problems.push(`maxBatchSize must be a whole number of at least 1, got ${options.maxBatchSize}`)
  const maxFailures = options.maxFailures
  if (maxFailures !== undefined && !(Number.isInteger(maxFailures) && maxFailures >= 0)) {
    problems.push(`maxFailures must be a whole number of at least 0, got ${maxFailures}`)
  }
  if (!isDuration(options.maxGroupingDelay, true)) {
    problems.push(`maxGroupingDelay must be a finite duration of at least 0, got ${String(options.maxGroupingDelay)}`)
  }
  if (!isDuration(options.progressInterval, false)) {
    problems.push(`progressInterval must be a finite duration above 0, got ${String(options.progressInterval)}`)
  }
  return problems.length === 0
    ? undefined
    : CassandraError.configuration(`Invalid batch job options: ${problems.join("; ")}`, { operation: "BatchJob" })
}

/** What a thrown value is, by its class or type alone: its message may hold data. */
const thrownKind = (thrown: unknown) => (thrown instanceof Error ? thrown.name : typeof thrown)

/** The error of an input whose statement could not be built or grouped because a function of the job threw. */
export const callbackThrew = (callback: string, thrown: unknown, index: number): CassandraError.CassandraError =>
  CassandraError.configuration(
    `The batch job's ${callback} threw ${thrownKind(thrown)} for the input at index ${index}; it was not sent`,
    { operation: "BatchJob" }
  )

/**
 * The error of an input that threw when the job read it: a statement whose properties, or whose session's, were
 * replaced by ones that throw. It was not sent.
 */
export const inputThrew = (thrown: unknown, index: number): CassandraError.CassandraError =>
  CassandraError.configuration(
    `The batch job's input at index ${index} threw ${thrownKind(thrown)} when read; it was not sent`,
    { operation: "BatchJob" }
  )
