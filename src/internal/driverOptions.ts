/**
 * The options the session gives the driver with each request, which the driver reads again for every attempt, and
 * which the session's default retry policy reads too; and the driver's read timeout of an attempt, which the session
 * also sets as the client's `socketOptions.readTimeout`.
 */
import type * as Cassandra from "cassandra-driver"

/** The driver's read timeout of an attempt: its value 0 means none. */
export const driverReadTimeout = (millis: number): number => (millis === Number.POSITIVE_INFINITY ? 0 : millis)

/**
 * The driver's options of one request: its prepared options, and a read timeout the driver reads again for every
 * attempt it sends (a retry on the next node, a speculative execution), each getting the shorter of the attempt
 * timeout and the time the request's deadline has left then, time spent waiting for a throttle place included.
 */
export class DriverOptions {
  /** The brand `is` asks for: no other object has it, whatever its prototype, and asking runs no Proxy trap. */
  readonly #session = true
  readonly prepare: boolean | undefined
  readonly isIdempotent: boolean | undefined
  readonly consistency: number | undefined
  readonly serialConsistency: number | undefined
  readonly fetchSize: number | undefined
  readonly pageState: string | Buffer | undefined
  readonly traceQuery: boolean | undefined
  readonly executionProfile: Cassandra.QueryOptions["executionProfile"]
  readonly logged: boolean | undefined
  readonly counter: boolean | undefined
  readonly routingKey: Buffer | Array<Buffer> | undefined
  readonly timestamp: number | Cassandra.types.Long | undefined
  readonly requestDeadline: number
  readonly attemptTimeoutMillis: number
  /**
   * A batch's CQL text (see `batch`), which the driver gives its retry policy nowhere else: the session's default
   * policy reads it to tell an unconditional batch's timeout from a conditional one's. Undefined for a statement.
   */
  readonly batchQuery: string | undefined
  constructor(
    options: Cassandra.QueryOptions,
    requestDeadline: number,
    attemptTimeoutMillis: number,
    batchQuery: string | undefined
  ) {
    this.prepare = options.prepare
    this.isIdempotent = options.isIdempotent
    this.consistency = options.consistency
    this.serialConsistency = options.serialConsistency
    this.fetchSize = options.fetchSize
    this.pageState = options.pageState
    this.traceQuery = options.traceQuery
    this.executionProfile = options.executionProfile
    this.logged = options.logged
    this.counter = options.counter
    this.routingKey = options.routingKey
    this.timestamp = options.timestamp
    this.requestDeadline = requestDeadline
    this.attemptTimeoutMillis = attemptTimeoutMillis
    this.batchQuery = batchQuery
  }
  /** Whether `options` are a session request's, not options a caller gave the driver client directly. */
  static is(options: unknown): options is DriverOptions {
    return typeof options === "object" && options !== null && #session in options
  }
  get readTimeout(): number {
    // Infinite for a request without a deadline, so that its attempts get the attempt timeout.
    const left = this.requestDeadline - performance.now()
    return left < this.attemptTimeoutMillis
      ? Math.max(1, Math.ceil(left))
      : driverReadTimeout(this.attemptTimeoutMillis)
  }
}
