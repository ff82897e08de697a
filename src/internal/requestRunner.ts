import { types } from "node:util"
import * as Cassandra from "cassandra-driver"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Effectable from "effect/Effectable"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import * as CassandraError from "../CassandraError.ts"
import type { BatchType, Consistency, RequestOptions, Session } from "../Session.ts"
import { toBuffer } from "./bytes.ts"
import {
  consistencyCode,
  defaults,
  durationMillis,
  isConsistency,
  isPageSize,
  isSerialConsistency,
  type SessionSettings
} from "./clientOptions.ts"
import { type DeadlineList, type Expiring, makeDeadlineList } from "./deadlines.ts"
import { DriverOptions } from "./driverOptions.ts"
import { isIdempotent } from "./idempotence.ts"
import {
  annotateFailure,
  annotateResult,
  batchTarget,
  cachedStatementTarget,
  consistencyAttribute,
  type StatementTarget,
  spanName
} from "./metricsAttributes.ts"
import { MetricsHub, type RequestRecorder, type RequestSeries } from "./metricsRecorder.ts"
import { avoidStopping, isPrepareRefusal, prepareElsewhere, resendsRefused, shuttingDownNode } from "./refusals.ts"
import { classifyFailure } from "./rePrepare.ts"
import { stackless } from "./stackless.ts"
import { makeThrottle, type Throttle, type ThrottleLimits } from "./throttle.ts"

/**
 * The key of a session's request path for a caller that already runs in the fiber (a statement of `Query`): no
 * second `withFiber`, and the caller's projection of the result applied before the fiber resumes, with no `map`.
 * Private to the library: a `Symbol` no other code can name.
 */
export const sendInFiber: unique symbol = Symbol("effect-cassandra/Session/sendInFiber")

/**
 * A session's own request path for callers in the fiber, with the `execute` it belongs to: a session copied with
 * another `execute` (a decorator) keeps this key, but must be used through its own `execute`.
 */
export interface FiberSender {
  readonly execute: Session["execute"]
  readonly send: <A>(
    fiber: Fiber.Fiber<unknown, unknown>,
    query: string,
    params: Array<unknown>,
    options: RequestOptions,
    project: (result: Cassandra.types.ResultSet) => A
  ) => Effect.Effect<A, CassandraError.CassandraError>
  /**
   * Starts one request in `fiber`'s context with no fiber waiting for it, for a caller that sends requests from the
   * driver's callbacks. `settle` is called once, later or before this returns, with the request's outcome: an `Exit`,
   * or an effect to run for it when learning why it failed takes more work. Nothing is started, and false is
   * returned, when a span of `fiber` would be seen: a traced request runs inside its span, as an effect.
   */
  readonly start: <A>(
    fiber: Fiber.Fiber<unknown, unknown>,
    query: string,
    params: Array<unknown>,
    options: RequestOptions,
    project: (result: Cassandra.types.ResultSet) => A,
    settle: Settle
  ) => boolean
}

/** What a request is settled with: an `Exit`, or an effect whose outcome is the request's. */
export type Settle = (outcome: Effect.Effect<unknown, CassandraError.CassandraError>) => void

/** The part of the session that sends requests: in-flight accounting, drain on close, spans and timeouts. */
export type RequestRunner = Pick<Session, "execute" | "batch" | "inFlight"> & { readonly [sendInFiber]: FiberSender }

/** What a request resumes its fiber with: the result set, or the caller's projection of it. */
type Projection = (result: Cassandra.types.ResultSet) => unknown

const maxTimestamp = 2n ** 63n - 1n
const timestampFloorMicros = BigInt(defaults.timestampFloor.getTime()) * 1000n

/** A write timestamp in microseconds, or what is wrong with it: not microseconds of a sane date, unless any is allowed. */
const timestampMicros = (timestamp: unknown, allowAny: boolean): bigint | string => {
  let micros: bigint
  if (typeof timestamp === "bigint") {
    micros = timestamp
  } else if (timestamp instanceof Date) {
    const millis = timestamp.getTime()
    if (Number.isNaN(millis)) return "timestamp is an invalid Date"
    micros = BigInt(millis) * 1000n
  } else {
    return "timestamp must be a bigint count of microseconds since the epoch, or a Date"
  }
  if (micros < -maxTimestamp - 1n || micros > maxTimestamp) {
    return "timestamp does not fit a signed 64-bit count of microseconds"
  }
  if (allowAny) return micros
  const ceiling = BigInt(Date.now() + defaults.timestampLeewayMillis) * 1000n
  return micros < timestampFloorMicros || micros > ceiling
    ? `timestamp must count microseconds since the epoch, from ${defaults.timestampFloor.toISOString().slice(0, 10)} to one day from now (a value in milliseconds or nanoseconds falls outside): set allowAnyTimestamp to write another`
    : micros
}

const isRoutingKey = (u: unknown) =>
  u instanceof Uint8Array || (Array.isArray(u) && u.length > 0 && u.every((part) => part instanceof Uint8Array))

const notBoolean = (u: unknown) => u !== undefined && typeof u !== "boolean"

/** A request whose options passed every check: the driver's options and what the span reports of them. */
interface PreparedRequest {
  readonly queryOptions: Cassandra.QueryOptions
  readonly timeoutMillis: number
  readonly attemptTimeoutMillis: number
  readonly consistency: Consistency
  readonly pageSize: number | undefined
}

/** Whole milliseconds of a request's duration option (`fallback` when not given), or what is wrong with it, named. */
const durationOption = (name: string, input: unknown, fallback: number): number | string => {
  if (input === undefined) return fallback
  const millis = durationMillis(input, true)
  return typeof millis === "string" ? `${name} ${millis}` : millis
}

/**
 * The driver's options of one request, or what is wrong with them (named, without the value). Every option is read
 * exactly once, inside a guard, so that a getter or Proxy that throws, or one that answers differently when read
 * again, is refused here: nothing after this can throw, and the request never counts as in flight before it.
 */
const prepareRequest = (
  settings: SessionSettings,
  query: string,
  options: RequestOptions,
  batchType: BatchType | undefined
): PreparedRequest | string => {
  if (typeof options !== "object" || options === null) return "options must be an object"
  let reading = "options"
  try {
    reading = "timeout"
    const timeout = options.timeout
    const timeoutMillis = durationOption("timeout", timeout, settings.requestTimeoutMillis)
    if (typeof timeoutMillis === "string") return timeoutMillis
    reading = "attemptTimeout"
    // A statement given a longer deadline than the session's attempts is one known to be slow: cutting its attempts
    // short would only run it again on another node, so its attempts get its deadline unless it bounds them itself.
    const attemptTimeoutMillis = durationOption(
      "attemptTimeout",
      options.attemptTimeout,
      timeout === undefined ? settings.attemptTimeoutMillis : Math.max(settings.attemptTimeoutMillis, timeoutMillis)
    )
    if (typeof attemptTimeoutMillis === "string") return attemptTimeoutMillis
    if (batchType !== undefined && batchType !== "logged" && batchType !== "unlogged" && batchType !== "counter") {
      return "type must be logged, unlogged or counter"
    }
    reading = "consistency"
    const consistency = options.consistency ?? settings.consistency
    if (!isConsistency(consistency)) return "consistency is not a consistency level"
    reading = "serialConsistency"
    const serialConsistency = options.serialConsistency ?? settings.serialConsistency
    if (!isSerialConsistency(serialConsistency)) return "serialConsistency must be SERIAL or LOCAL_SERIAL"
    reading = "pageSize"
    const pageSize = options.pageSize ?? settings.pageSize
    if (pageSize !== undefined && !isPageSize(pageSize)) return "pageSize must be a whole number from 1 to 2147483647"
    reading = "pageState"
    const pageState = options.pageState
    if (pageState !== undefined && typeof pageState !== "string") {
      return "pageState must be the page-state string of a previous page"
    }
    reading = "idempotent"
    const idempotent = options.idempotent
    if (notBoolean(idempotent)) return "idempotent must be a boolean"
    reading = "tracing"
    const tracing = options.tracing
    if (notBoolean(tracing)) return "tracing must be a boolean"
    reading = "prepare"
    const prepare = options.prepare
    if (notBoolean(prepare)) return "prepare must be a boolean"
    reading = "executionProfile"
    const executionProfile = options.executionProfile
    if (executionProfile !== undefined && typeof executionProfile !== "string") {
      return "executionProfile must be the name of an execution profile"
    }
    const queryOptions: Cassandra.QueryOptions = {
      prepare: prepare ?? true,
      isIdempotent: isIdempotent(query, idempotent),
      consistency: consistencyCode(consistency),
      serialConsistency: consistencyCode(serialConsistency)
    }
    if (pageSize !== undefined) queryOptions.fetchSize = pageSize
    if (pageState !== undefined) queryOptions.pageState = pageState
    if (tracing !== undefined) queryOptions.traceQuery = tracing
    if (executionProfile !== undefined) queryOptions.executionProfile = executionProfile
    if (batchType !== undefined) {
      queryOptions.logged = batchType === "logged"
      queryOptions.counter = batchType === "counter"
    }
    reading = "routingKey"
    const routingKey = options.routingKey
    if (routingKey !== undefined) {
      if (!isRoutingKey(routingKey)) return "routingKey must be a Uint8Array or a non-empty array of Uint8Array"
      queryOptions.routingKey = routingKey instanceof Uint8Array ? toBuffer(routingKey) : routingKey.map(toBuffer)
    }
    reading = "allowAnyTimestamp"
    const allowAnyTimestamp = options.allowAnyTimestamp
    if (notBoolean(allowAnyTimestamp)) return "allowAnyTimestamp must be a boolean"
    reading = "timestamp"
    const timestamp = options.timestamp
    if (timestamp !== undefined) {
      const micros = timestampMicros(timestamp, allowAnyTimestamp === true)
      if (typeof micros === "string") return micros
      queryOptions.timestamp = Cassandra.types.Long.fromString(String(micros))
    }
    return { queryOptions, timeoutMillis, attemptTimeoutMillis, consistency, pageSize }
  } catch {
    return `${reading} could not be read`
  }
}

/** The options `setsNoOption` asks for: it does not compile while `RequestOptions` has one that is not named here. */
type AskedOption =
  | "consistency"
  | "serialConsistency"
  | "pageSize"
  | "pageState"
  | "idempotent"
  | "timestamp"
  | "allowAnyTimestamp"
  | "routingKey"
  | "tracing"
  | "executionProfile"
  | "timeout"
  | "attemptTimeout"
  | "prepare"
type NoneUnasked<Unasked extends never> = Unasked

/** Compiles only while `setsNoOption` asks for every option of `RequestOptions`: a new one is never ignored. */
export type EveryOptionAsked = NoneUnasked<Exclude<keyof RequestOptions, AskedOption>>

/** Whether an object inherits from nothing but `Object.prototype`: no Proxy can be in its prototype chain. */
const isPlainPrototype = (prototype: unknown) => prototype === Object.prototype || prototype === null

/**
 * Whether `options` sets no request option (not even to `undefined`): such a request runs with its statement's
 * precomputed defaults. Asked with `in` of a plain object, so no getter runs and nothing can throw. A Proxy, or an
 * object inheriting from anything but `Object.prototype` (a Proxy may be in its prototype chain, which `in` walks), is
 * never taken to set nothing, since a Proxy's `has` need not agree with its `get` (and may throw): it is left to
 * `prepareRequest`, which reads every option once and reports a trap that throws.
 * Every option of `RequestOptions` is asked for by its literal name: each is then an inline-cached lookup, tens of
 * times faster than a loop over names.
 */
const setsNoOption = (options: unknown): boolean =>
  typeof options === "object" &&
  options !== null &&
  !types.isProxy(options) &&
  isPlainPrototype(Object.getPrototypeOf(options)) &&
  !(
    "consistency" in options ||
    "serialConsistency" in options ||
    "pageSize" in options ||
    "pageState" in options ||
    "idempotent" in options ||
    "timestamp" in options ||
    "allowAnyTimestamp" in options ||
    "routingKey" in options ||
    "tracing" in options ||
    "executionProfile" in options ||
    "timeout" in options ||
    "attemptTimeout" in options ||
    "prepare" in options
  )

/** The span of a request, as `Effect.useSpan` takes it. */
interface SpanOptions {
  readonly kind: "client"
  readonly attributes: Readonly<Record<string, unknown>>
}

/** A statement's request when its options set nothing: prepared, with its span and metric series, once. */
interface StatementDefaults {
  readonly prepared: PreparedRequest
  readonly span: SpanOptions
  readonly series: RequestSeries | undefined
}

/**
 * What does not change between the runs of one statement text (or one batch): its target, span name and attributes,
 * error context, and (for a statement) its request when its options set nothing.
 */
interface StatementPlan {
  readonly target: StatementTarget
  /** The keyspace the statement names, else the session's. */
  readonly namespace: string | undefined
  readonly query: string
  readonly context: CassandraError.ErrorContext
  readonly spanName: string
  readonly attributes: Readonly<Record<string, unknown>>
  defaults: StatementDefaults | undefined
}

/**
 * How a request reaches the driver: a statement's values (as the caller gave them: the driver reads values of any
 * shape), or a batch of statements.
 */
type DriverCall = Array<unknown> | BatchCall

class BatchCall {
  readonly #statements: Array<{ query: string; params: Array<unknown> }>
  constructor(statements: Array<{ query: string; params: Array<unknown> }>) {
    this.#statements = statements
  }
  get statements(): Array<{ query: string; params: Array<unknown> }> {
    return this.#statements
  }
  /**
   * Whether `call` is a batch, asked by its brand: a statement's values are the caller's, and `instanceof` would run
   * a Proxy's `getPrototypeOf` trap, which the driver never runs and which may throw (in the driver's callback too).
   */
  static is(call: DriverCall): call is BatchCall {
    return typeof call === "object" && call !== null && #statements in call
  }
}

/** What every request of a session shares: the driver client and the session's accounting. */
interface Sender {
  readonly client: Cassandra.Client
  readonly throttle: Throttle | undefined
  /** The deadlines of requests under the session's default timeout, when it is finite. */
  readonly deadlines: DeadlineList | undefined
  readonly defaultTimeoutMillis: number
  /** Set as the session starts closing: a request submitted from then on is refused. */
  closing: boolean
  /**
   * Set once closing stopped waiting for the requests it accepted (its drain timeout passed): the client is shut down
   * next, so the requests still queued for a throttle place or waiting on a preparation fail unsent at once, and a
   * request refused and due to be sent again fails unsent.
   */
  closed: boolean
  readonly sent: () => void
  readonly settled: () => void
  /** Gives back the throttle place of a request that was given one and never sent. */
  readonly passOn: () => void
  /** The requests waiting for their statement to be prepared on another node, failed at once when `closed` is set. */
  readonly preparingElsewhere: Set<PendingRequest>
  /** Whether the session still sends requests: until closing stops waiting for them. */
  readonly open: () => boolean
}

/**
 * One request from the moment it is submitted until the fiber waiting for it is resumed: its deadline, its place in
 * the throttle, the driver's answer, its span and metrics. It is the request path's only callback, and nothing in it
 * throws: `begin` may run inside another request's callback (when the throttle passes a place on).
 *
 * The driver cannot cancel a request, so an interrupted fiber stops waiting at once while the request runs on; the
 * in-flight count follows the driver's promise, not the fiber, so draining also waits for abandoned requests, and the
 * throttle's place is given back when the promise settles. A request interrupted while it still waits for a place
 * withdraws it, so it is never sent. The end-to-end deadline counts time spent waiting for a place.
 */
class PendingRequest extends Effectable.Class<void> implements Expiring {
  readonly expiresAt: number
  previousExpiring: Expiring | undefined = undefined
  nextExpiring: Expiring | undefined = undefined
  private waiting = true
  /**
   * Whether it was sent again after a node refused to prepare it, and after a node refused it as it shuts down: each
   * at most once, so a request is sent at most three times, and only when it ran nowhere. Both happen in one rolling
   * restart: the node shutting down refuses the PREPARE, then the driver's plan picks it again for the request.
   */
  private preparedElsewhere = false
  private sentPast = false
  private withdraw: (() => void) | undefined = undefined
  private timer: ReturnType<typeof setTimeout> | undefined = undefined
  private resume: Settle = noResume
  /**
   * Its driver options, made at its first sending and given again when it is sent again: the retry policy keeps its
   * one timeout retry per request by them, so a resend does not earn a second.
   */
  private driverOptions: DriverOptions | undefined = undefined

  private readonly sender: Sender
  private readonly plan: StatementPlan
  private readonly prepared: PreparedRequest
  private readonly call: DriverCall
  private readonly span: Tracer.Span | undefined
  private readonly series: RequestSeries | undefined
  private readonly startedAt: number
  private readonly project: Projection | undefined

  constructor(
    sender: Sender,
    plan: StatementPlan,
    prepared: PreparedRequest,
    call: DriverCall,
    span: Tracer.Span | undefined,
    series: RequestSeries | undefined,
    project: Projection | undefined
  ) {
    super()
    this.sender = sender
    this.plan = plan
    this.prepared = prepared
    this.call = call
    this.span = span
    this.series = series
    this.startedAt = performance.now()
    this.project = project
    this.expiresAt = this.startedAt + prepared.timeoutMillis
  }

  /** Starts the request for the fiber `resume` wakes; the effect returned withdraws it when that fiber is interrupted. */
  register(resume: Settle) {
    this.resume = resume
    const { sender, prepared } = this
    // Checked as the request is submitted, not as its effect was built: its fiber may have yielded in between.
    if (sender.closing) {
      this.waiting = false
      this.failWith(CassandraError.sessionClosed(this.plan.context))
      return undefined
    }
    const timeoutMillis = prepared.timeoutMillis
    if (timeoutMillis === sender.defaultTimeoutMillis && sender.deadlines !== undefined) sender.deadlines.add(this)
    else if (timeoutMillis !== Number.POSITIVE_INFINITY) this.timer = setTimeout(() => this.expire(), timeoutMillis)
    const throttle = sender.throttle
    if (throttle === undefined) {
      this.begin()
    } else {
      this.withdraw = throttle.submit(() => this.startQueued())
      if (this.withdraw === undefined) {
        this.waiting = false
        this.stopClock()
        this.failWith(throttled(throttle.limits, this.plan.context))
        return undefined
      }
    }
    return this
  }

  /**
   * What its fiber runs when interrupted while waiting for it (it is `register`'s interrupt handler): it stops waiting.
   * The request is its own handler, so that no closure and no effect are built for it per request.
   */
  asEffect() {
    this.interrupted()
    return Effect.void
  }

  private begin() {
    this.sender.sent()
    this.dispatch()
  }

  private dispatch() {
    const { sender, call, prepared } = this
    const batch = BatchCall.is(call)
    // The driver reads only the options it knows, each one being absent or undefined alike.
    this.driverOptions ??= new DriverOptions(
      prepared.queryOptions,
      this.expiresAt,
      prepared.attemptTimeoutMillis,
      batch ? this.plan.query : undefined
    )
    const options = this.driverOptions as Cassandra.QueryOptions
    let pending: Promise<Cassandra.types.ResultSet>
    try {
      pending = batch
        ? sender.client.batch(call.statements, options)
        : sender.client.execute(this.plan.query, call, options)
    } catch (error) {
      pending = Promise.reject(error)
    }
    pending.then(
      (result) => this.succeeded(result),
      (error: unknown) => this.failed(error)
    )
  }

  /** Given a place by the throttle. */
  private startQueued() {
    const closed = this.sender.closed
    if (!closed && performance.now() < this.expiresAt) return this.begin()
    // Given a place once the session stopped draining, or after its deadline passed but before its timer could fire (a
    // busy event loop): failed unsent. The place is passed on after this returns, since passing it on here would start
    // the next waiting request inside this one, nesting as deep as the queue holds such requests; a drain waits for it
    // meanwhile.
    this.waiting = false
    this.stopClock()
    queueMicrotask(this.sender.passOn)
    this.failWith(
      closed
        ? CassandraError.sessionClosed(this.plan.context)
        : timedOut(this.prepared.timeoutMillis, this.plan.context)
    )
  }

  private succeeded(result: Cassandra.types.ResultSet) {
    this.sender.settled()
    if (!this.waiting) return
    this.waiting = false
    this.stopClock()
    if (this.span !== undefined && !this.annotated(annotateResult, result)) return
    // In the driver's callback, where a throw would reach no fiber: an answer the metrics or the projection cannot
    // read (a stand-in client's) fails this request alone.
    let outcome: unknown = result
    try {
      this.series?.succeeded(this.startedAt, result)
      if (this.project !== undefined) outcome = this.project(result)
    } catch (defect) {
      return this.resume(Exit.die(defect))
    }
    this.resume(Exit.succeed(outcome))
  }

  private failed(error: unknown) {
    if (this.waiting) {
      if (!this.preparedElsewhere && isPrepareRefusal(error) && this.prepared.queryOptions.prepare) {
        return this.sendAgain(() => this.prepareElsewhere(error))
      }
      const stopping = this.sentPast ? undefined : shuttingDownNode(error)
      if (stopping !== undefined && resendsRefused(this.sender.client, this.prepared.queryOptions.executionProfile)) {
        return this.sendAgain(() => this.sendPast(stopping, error))
      }
    }
    this.sender.settled()
    if (!this.waiting) return
    this.waiting = false
    this.stopClock()
    // Learning why re-preparing failed may take one more round trip: never past the deadline, and not once the session
    // is closing, since the drain no longer counts this request.
    const failure = classifyFailure(this.sender.client, error, this.plan.context, () =>
      this.sender.closing ? 0 : this.expiresAt - performance.now()
    )
    this.resume(
      this.span === undefined && this.series === undefined
        ? failure
        : Effect.onExit(failure, (exit) => Effect.sync(() => this.record(exit)))
    )
  }

  /**
   * A node refused to prepare the statement, so it ran nowhere: prepared on another node, it is sent again, keeping
   * its place in flight and in the throttle meanwhile. Its deadline still runs, and an interrupt still ends the wait.
   */
  private prepareElsewhere(refusal: unknown) {
    this.preparedElsewhere = true
    const call = this.call
    const queries = BatchCall.is(call) ? call.statements.map(({ query }) => query) : [this.plan.query]
    const profile = this.prepared.queryOptions.executionProfile
    const preparing = this.sender.preparingElsewhere
    preparing.add(this)
    // It may still be sent while its fiber waits: closing stops that too (`failClosed`).
    const sendable = { request: () => this.waiting, session: this.sender.open }
    void prepareElsewhere(this.sender.client, queries, refusal, profile, sendable).then((failure) => {
      // Failed already as its session closed (`failClosed`).
      if (!preparing.delete(this)) return
      if (this.waiting && failure === undefined) this.sendAgain(() => this.dispatch())
      else this.failed(failure ?? refusal)
    })
  }

  /**
   * Sends again, with `send`, a request that ran nowhere; once closing stopped waiting for it (the client is shut down
   * next, or is the caller's to keep using), it fails unsent instead.
   */
  private sendAgain(send: () => void) {
    if (!this.sender.closed) return send()
    this.failClosed()
  }

  /**
   * Ends, unsent, a request still in flight that closing stopped waiting for: it fails as the session closed unless it
   * stopped waiting already, whatever preparation it waits on (its own, another session's or the driver's).
   */
  failClosed() {
    this.sender.settled()
    if (!this.waiting) return
    this.waiting = false
    this.stopClock()
    this.failWith(CassandraError.sessionClosed(this.plan.context))
  }

  /**
   * The node at `address` refused the request because it is shutting down, before running it: it is sent again at
   * once, keeping its place in flight and in the throttle, with that node at the back of query plans from now on.
   */
  private sendPast(address: string, refusal: unknown) {
    this.sentPast = true
    avoidStopping(this.sender.client, address, refusal)
    this.dispatch()
  }

  /** Its deadline passed. */
  expire() {
    if (!this.waiting) return
    this.waiting = false
    this.timer = undefined
    this.withdraw?.()
    this.failWith(timedOut(this.prepared.timeoutMillis, this.plan.context))
  }

  private interrupted() {
    if (!this.waiting) return
    this.waiting = false
    this.stopClock()
    this.withdraw?.()
    this.series?.interrupted(this.startedAt)
  }

  private failWith(error: CassandraError.CassandraError) {
    if (this.span !== undefined && !this.annotated(annotateFailure, error)) return
    this.series?.failed(this.startedAt, error)
    this.resume(Exit.fail(error))
  }

  /**
   * Adds what `outcome` tells to the span; a tracer that throws fails this request alone, with a defect, since this
   * runs in the driver's callback or the deadline sweep, where a throw would reach no fiber.
   */
  private annotated<A>(annotate: (span: Tracer.Span, client: Cassandra.Client, outcome: A) => void, outcome: A) {
    try {
      annotate(this.span as Tracer.Span, this.sender.client, outcome)
      return true
    } catch (defect) {
      this.series?.died(this.startedAt)
      this.resume(Exit.die(defect))
      return false
    }
  }

  private record(exit: Exit.Exit<never, CassandraError.CassandraError>) {
    const error = Exit.findErrorOption(exit)
    if (Option.isSome(error)) {
      if (this.span !== undefined) annotateFailure(this.span, this.sender.client, error.value)
      this.series?.failed(this.startedAt, error.value)
    } else if (Exit.hasInterrupts(exit)) this.series?.interrupted(this.startedAt)
    else this.series?.died(this.startedAt)
  }

  private stopClock() {
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    } else this.sender.deadlines?.remove(this)
  }
}

const noResume = () => {}

/**
 * A failure whose driver error the request path makes itself: that error is built without frames too, as the error it
 * becomes is, since they would name only the deadline sweep or the throttle.
 */
const ownFailure = (driverError: () => unknown, context: CassandraError.ErrorContext) =>
  stackless(() => CassandraError.fromDriverError(driverError(), context))

const timedOut = (timeoutMillis: number, context: CassandraError.ErrorContext) =>
  ownFailure(
    () =>
      new Cassandra.errors.OperationTimedOutError(
        `The request did not complete within ${Duration.format(Duration.millis(timeoutMillis))}`
      ),
    context
  )

const throttled = (limits: ThrottleLimits, context: CassandraError.ErrorContext) =>
  ownFailure(() => new CassandraError.Throttled(limits), context)

const invalidOption = (problem: string, context: CassandraError.ErrorContext) =>
  ownFailure(() => new Cassandra.errors.ArgumentError(`${problem}; the request was not sent`), context)

/**
 * Whether a span of this fiber would reach anyone: not when tracing is turned off, nor under Effect's built-in
 * tracer, which exports nothing (its spans are never seen, so the request path makes none).
 */
const tracesRequests = (fiber: Fiber.Fiber<unknown, unknown>) =>
  fiber.getRef(References.TracerEnabled) && fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer

/** Statement texts repeat (values are bound), so plans are kept by text; emptied when full, for dynamic texts. */
const planCacheLimit = 1000

const noOptions: RequestOptions = {}

export const makeRequestRunner = Effect.fnUntraced(function* (client: Cassandra.Client, settings: SessionSettings) {
  let inFlight = 0
  let onDrained: (() => void) | undefined
  // The session's keyspace (the driver's client keeps the one it was built with).
  const keyspace = client.keyspace
  // Looked up once: without the metrics layer the request path does no metrics work at all.
  const metricsHub = yield* MetricsHub
  const recorder: RequestRecorder | undefined = metricsHub === undefined ? undefined : yield* metricsHub.attach(client)
  const throttle = settings.throttle === undefined ? undefined : makeThrottle(settings.throttle)
  const deadlines = settings.requestTimeoutMillis === Number.POSITIVE_INFINITY ? undefined : makeDeadlineList()

  // A throttle place held by no request in flight is one being passed on to a queued request, still to be sent.
  const drained = () => inFlight === 0 && (throttle === undefined || throttle.running() === 0)
  const sender: Sender = {
    closing: false,
    closed: false,
    client,
    throttle,
    deadlines,
    defaultTimeoutMillis: settings.requestTimeoutMillis,
    sent: () => {
      inFlight++
    },
    settled: () => {
      inFlight--
      throttle?.release()
      if (onDrained !== undefined && drained()) onDrained()
    },
    passOn: () => {
      throttle?.release()
      if (onDrained !== undefined && drained()) onDrained()
    },
    preparingElsewhere: new Set(),
    open: () => !sender.closed
  }

  const makePlan = (target: StatementTarget, query: string): StatementPlan => {
    const namespace = target.keyspace ?? keyspace
    return {
      target,
      namespace,
      query,
      context: { operation: target.operation, statement: query },
      spanName: spanName(target, namespace),
      attributes: {
        "db.system.name": "cassandra",
        "db.operation.name": target.operation,
        ...(namespace === undefined ? {} : { "db.namespace": namespace }),
        ...(target.table === undefined ? {} : { "db.collection.name": target.table }),
        ...(settings.omitQueryTextInSpans ? {} : { "db.query.text": query }),
        ...settings.spanAttributes
      },
      defaults: undefined
    }
  }

  /** What the span says of a request's options: for options that could not be read, the session's defaults. */
  const spanOf = (
    plan: StatementPlan,
    prepared: PreparedRequest | string,
    batchAttributes: Record<string, unknown> | undefined
  ): SpanOptions => {
    const valid = typeof prepared !== "string"
    const pageSize = valid ? prepared.pageSize : settings.pageSize
    return {
      kind: "client",
      attributes: {
        ...plan.attributes,
        "cassandra.consistency.level": consistencyAttribute(valid ? prepared.consistency : settings.consistency),
        ...(valid ? { "cassandra.query.idempotent": prepared.queryOptions.isIdempotent } : {}),
        ...(pageSize === undefined ? {} : { "cassandra.page.size": pageSize }),
        ...batchAttributes
      }
    }
  }

  const seriesOf = (plan: StatementPlan, prepared: PreparedRequest | string) =>
    recorder?.series(
      plan.target,
      plan.namespace ?? "",
      consistencyAttribute(typeof prepared === "string" ? settings.consistency : prepared.consistency)
    )

  const plans = new Map<string, StatementPlan>()
  const planOf = (query: string) => {
    let plan = plans.get(query)
    if (plan === undefined) {
      if (plans.size >= planCacheLimit) plans.clear()
      plan = makePlan(cachedStatementTarget(query), query)
      const prepared = prepareRequest(settings, query, noOptions, undefined)
      // Always prepared: the session's settings were checked when it was built.
      if (typeof prepared !== "string") {
        plan.defaults = { prepared, span: spanOf(plan, prepared, undefined), series: seriesOf(plan, prepared) }
      }
      plans.set(query, plan)
    }
    return plan
  }

  /** A request that fails before it is sent: it still has its span and is counted. */
  const refused = (
    error: CassandraError.CassandraError,
    span: Tracer.Span | undefined,
    series: RequestSeries | undefined
  ) => {
    if (span !== undefined) annotateFailure(span, client, error)
    series?.failed(performance.now(), error)
    return Exit.fail(error)
  }

  /**
   * The exit of a request whose options could not be read (`prepared` then says why), or undefined when it may be
   * submitted; a closing session refuses it as it is submitted.
   */
  const refusal = (
    plan: StatementPlan,
    prepared: PreparedRequest | string,
    span: Tracer.Span | undefined,
    series: RequestSeries | undefined
  ) => (typeof prepared === "string" ? refused(invalidOption(prepared, plan.context), span, series) : undefined)

  const send = (
    plan: StatementPlan,
    prepared: PreparedRequest | string,
    call: DriverCall,
    span: Tracer.Span | undefined,
    series: RequestSeries | undefined,
    project: Projection | undefined
  ): Effect.Effect<unknown, CassandraError.CassandraError> => {
    const refusedExit = refusal(plan, prepared, span, series)
    if (refusedExit !== undefined) return refusedExit
    const request = new PendingRequest(sender, plan, prepared as PreparedRequest, call, span, series, project)
    return Effect.callback((resume) => request.register(resume))
  }

  /** A statement's precomputed request, for a run whose options set nothing. */
  const defaultsOf = (plan: StatementPlan, requestOptions: RequestOptions) =>
    plan.defaults !== undefined && setsNoOption(requestOptions) ? plan.defaults : undefined

  /**
   * Runs one request in `fiber`: one callback from the driver call to the answer, inside a span only when spans are
   * seen. Options that set nothing use the statement's precomputed driver options, span and series; others are
   * prepared per run, so an effect run twice (or concurrently) gives each run its own driver options.
   */
  const runIn = (
    fiber: Fiber.Fiber<unknown, unknown>,
    plan: StatementPlan,
    requestOptions: RequestOptions,
    batchType: BatchType | undefined,
    batchAttributes: Record<string, unknown> | undefined,
    call: DriverCall,
    project: Projection | undefined
  ): Effect.Effect<unknown, CassandraError.CassandraError> => {
    const defaults = defaultsOf(plan, requestOptions)
    const prepared = defaults?.prepared ?? prepareRequest(settings, plan.query, requestOptions, batchType)
    const series = defaults === undefined ? seriesOf(plan, prepared) : defaults.series
    if (!tracesRequests(fiber)) return send(plan, prepared, call, undefined, series, project)
    const spanOptions = defaults?.span ?? spanOf(plan, prepared, batchAttributes)
    return Effect.useSpan(plan.spanName, spanOptions, (span) => send(plan, prepared, call, span, series, project))
  }

  /** Runs one request from outside the fiber: one `withFiber` to learn whether spans are seen, then `runIn`. */
  const run = (
    plan: StatementPlan,
    requestOptions: RequestOptions,
    batchType: BatchType | undefined,
    batchAttributes: Record<string, unknown> | undefined,
    call: DriverCall
  ) =>
    Effect.withFiber((fiber) =>
      runIn(fiber, plan, requestOptions, batchType, batchAttributes, call, undefined)
    ) as Effect.Effect<Cassandra.types.ResultSet, CassandraError.CassandraError>

  const waitForDrain = Effect.callback<void>((resume) => {
    sender.closing = true
    if (drained()) return resume(Effect.void)
    onDrained = () => resume(Effect.void)
  })
  const drain =
    settings.drainTimeoutMillis === Number.POSITIVE_INFINITY
      ? waitForDrain
      : waitForDrain.pipe(Effect.timeoutOption(settings.drainTimeoutMillis), Effect.asVoid)

  yield* Effect.addFinalizer(() =>
    Effect.andThen(
      drain,
      Effect.sync(() => {
        sender.closed = true
        // Nothing they wait for would send them now: each fails unsent at once, not when the wait ends (if ever).
        const preparing = [...sender.preparingElsewhere]
        sender.preparingElsewhere.clear()
        for (const request of preparing) request.failClosed()
        throttle?.startAllWaiting()
        deadlines?.close()
      })
    )
  )

  const execute: Session["execute"] = (request) => {
    let query: unknown
    let params: Array<unknown>
    let requestOptions: RequestOptions
    try {
      query = request.query
      params = request.params as Array<unknown>
      requestOptions = request.options
    } catch {
      return Effect.fail(invalidOption("the statement could not be read", { operation: "execute" }))
    }
    if (typeof query !== "string") {
      return Effect.fail(invalidOption("the statement has no CQL text", { operation: "execute" }))
    }
    return run(planOf(query), requestOptions, undefined, undefined, params)
  }

  const runner: RequestRunner = {
    execute,
    [sendInFiber]: {
      execute,
      send: (fiber, query, params, options, project) =>
        runIn(fiber, planOf(query), options, undefined, undefined, params, project) as Effect.Effect<
          ReturnType<typeof project>,
          CassandraError.CassandraError
        >,
      start: (fiber, query, params, options, project, settle) => {
        if (tracesRequests(fiber)) return false
        const plan = planOf(query)
        const defaults = defaultsOf(plan, options)
        const prepared = defaults?.prepared ?? prepareRequest(settings, query, options, undefined)
        const series = defaults === undefined ? seriesOf(plan, prepared) : defaults.series
        const refusedExit = refusal(plan, prepared, undefined, series)
        if (refusedExit !== undefined) settle(refusedExit)
        else
          new PendingRequest(sender, plan, prepared as PreparedRequest, params, undefined, series, project).register(
            settle
          )
        return true
      }
    },
    batch: (requests, batchOptions) => {
      // Each statement is read once, under a guard, like a request's options: nothing after this can throw.
      let statements: Array<{ query: string; params: Array<unknown> }>
      let type: BatchType
      try {
        type = batchOptions.type
        statements = requests.map((request) => ({ query: request.query, params: request.params as Array<unknown> }))
      } catch {
        return Effect.fail(invalidOption("the batch's statements or options could not be read", { operation: "batch" }))
      }
      const untexted = statements.findIndex((statement) => typeof statement.query !== "string")
      if (untexted !== -1) {
        return Effect.fail(invalidOption(`statement ${untexted} of the batch has no CQL text`, { operation: "batch" }))
      }
      // The conventions' query text of a batch: the statements' text when they share it, else every text.
      const first = statements[0]?.query ?? ""
      const summary = statements.every((statement) => statement.query === first)
        ? first
        : statements.map((statement) => statement.query).join("; ")
      return run(
        makePlan(batchTarget(statements.map((statement) => cachedStatementTarget(statement.query))), summary),
        batchOptions,
        type,
        { "db.operation.batch.size": statements.length, "cassandra.batch.type": type },
        new BatchCall(statements)
      )
    },
    inFlight: Effect.sync(() => inFlight)
  }
  return runner
})
