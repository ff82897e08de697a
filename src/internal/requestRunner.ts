import * as Cassandra from "cassandra-driver"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as CassandraError from "../CassandraError.ts"
import type { BatchType, Consistency, RequestOptions, Session } from "../Session.ts"
import { toBuffer } from "./bytes.ts"
import {
  consistencyCode,
  defaults,
  driverReadTimeout,
  durationMillis,
  isConsistency,
  isPageSize,
  isSerialConsistency,
  type SessionSettings
} from "./clientOptions.ts"
import {
  annotateFailure,
  annotateResult,
  batchTarget,
  cachedStatementTarget,
  consistencyAttribute,
  type StatementTarget,
  spanName
} from "./metricsAttributes.ts"
import { MetricsHub } from "./metricsRecorder.ts"
import { classifyFailure } from "./rePrepare.ts"
import { makeThrottle } from "./throttle.ts"

/** The part of the session that sends requests: in-flight accounting, drain on close, spans and timeouts. */
type RequestRunner = Pick<Session, "execute" | "batch" | "inFlight">

const readOnlyStatement = /^\s*SELECT\b/i

/** Whether a request may be retried or speculatively executed: as declared, or else when it only reads. */
export const isIdempotent = (query: string, options: RequestOptions): boolean =>
  declaredOrReadOnly(query, options.idempotent)

const declaredOrReadOnly = (query: string, idempotent: boolean | undefined) =>
  idempotent ?? readOnlyStatement.test(query)

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
      isIdempotent: declaredOrReadOnly(query, idempotent),
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

const timedOut = (timeoutMillis: number, context: CassandraError.ErrorContext) =>
  CassandraError.fromDriverError(
    new Cassandra.errors.OperationTimedOutError(
      `The request did not complete within ${Duration.format(Duration.millis(timeoutMillis))}`
    ),
    context
  )

const invalidOption = (problem: string, context: CassandraError.ErrorContext) =>
  CassandraError.fromDriverError(new Cassandra.errors.ArgumentError(`${problem}; the request was not sent`), context)

export const makeRequestRunner = Effect.fnUntraced(function* (client: Cassandra.Client, settings: SessionSettings) {
  let inFlight = 0
  let closing = false
  let onDrained: (() => void) | undefined
  // The session's keyspace (the driver's client keeps the one it was built with).
  const keyspace = client.keyspace
  // Looked up once: without the metrics layer the request path does no metrics work at all.
  const metricsHub = yield* MetricsHub
  const recorder = metricsHub === undefined ? undefined : yield* metricsHub.attach(client)
  const throttle = settings.throttle === undefined ? undefined : makeThrottle(settings.throttle)

  // The driver cannot cancel a request, so an interrupted fiber stops waiting at once while the request runs on;
  // the counter follows the driver's promise, not the fiber, so draining also waits for abandoned requests. For the
  // same reason the throttle's place is given back when the promise settles; a fiber interrupted while its request
  // still waits for a place withdraws it, so it is never sent. The end-to-end timeout is one timer per request
  // (time waiting for a place counts; none at all for an infinite one), and each attempt's read timeout is the
  // shorter of the attempt timeout and the time left when the attempt is sent. Errors are classified here, on the
  // request path's only callback, and nothing in it throws: `begin` may run inside another request's callback.
  const send = <A>(
    start: (queryOptions: Cassandra.QueryOptions) => Promise<A>,
    prepared: PreparedRequest,
    context: CassandraError.ErrorContext
  ) =>
    Effect.callback<A, CassandraError.CassandraError>((resume) => {
      const { queryOptions, timeoutMillis, attemptTimeoutMillis } = prepared
      let waiting = true
      let withdraw: (() => void) | undefined
      // Infinite for an infinite timeout.
      const deadline = performance.now() + timeoutMillis
      const timer =
        timeoutMillis === Number.POSITIVE_INFINITY
          ? undefined
          : setTimeout(() => {
              if (!waiting) return
              waiting = false
              withdraw?.()
              resume(Effect.fail(timedOut(timeoutMillis, context)))
            }, timeoutMillis)
      if (timeoutMillis === Number.POSITIVE_INFINITY) {
        queryOptions.readTimeout = driverReadTimeout(attemptTimeoutMillis)
      } else {
        // The driver reads the read timeout again for every attempt it sends (a retry on the next node, a
        // speculative execution), so each one gets the shorter of the attempt timeout and the time left then,
        // time spent waiting for a throttle place included.
        Object.defineProperty(queryOptions, "readTimeout", {
          enumerable: true,
          get: () => {
            const left = deadline - performance.now()
            return left < attemptTimeoutMillis ? Math.max(1, Math.ceil(left)) : attemptTimeoutMillis
          }
        })
      }
      const begin = () => {
        inFlight++
        let pending: Promise<A>
        try {
          pending = start(queryOptions)
        } catch (error) {
          pending = Promise.reject(error)
        }
        pending.then(
          (value) => {
            settle()
            if (!waiting) return
            waiting = false
            clearTimeout(timer)
            resume(Effect.succeed(value))
          },
          (error: unknown) => {
            settle()
            if (!waiting) return
            waiting = false
            clearTimeout(timer)
            // Learning why re-preparing failed may take one more round trip: never past the deadline.
            resume(classifyFailure(client, error, context, deadline - performance.now()))
          }
        )
      }
      if (throttle === undefined) {
        begin()
      } else {
        withdraw = throttle.submit(() => {
          if (performance.now() < deadline) return begin()
          // Given a place after its deadline passed, before its timer could fire (a busy event loop): failed unsent.
          // The place is passed on after this returns, since passing it on here would start the next waiting request
          // inside this one, nesting as deep as the queue holds expired requests.
          waiting = false
          clearTimeout(timer)
          queueMicrotask(throttle.release)
          resume(Effect.fail(timedOut(timeoutMillis, context)))
        })
        if (withdraw === undefined) {
          waiting = false
          clearTimeout(timer)
          return resume(
            Effect.fail(CassandraError.fromDriverError(new CassandraError.Throttled(throttle.limits), context))
          )
        }
      }
      return Effect.sync(() => {
        waiting = false
        clearTimeout(timer)
        withdraw?.()
      })
    })

  const settle = () => {
    inFlight--
    throttle?.release()
    if (inFlight === 0 && onDrained !== undefined) onDrained()
  }

  // What a span says about a statement does not change between its executions: built once per operation and text.
  const staticAttributes = new Map<string, Readonly<Record<string, unknown>>>()
  const attributesOf = (target: StatementTarget, query: string, namespace: string | undefined) => {
    // A batch of one statement text shares that text, not its operation.
    const key = `${target.operation}\u0000${query}`
    const cached = staticAttributes.get(key)
    if (cached !== undefined) return cached
    if (staticAttributes.size >= 1000) staticAttributes.clear()
    const attributes = {
      "db.system.name": "cassandra",
      "db.operation.name": target.operation,
      ...(namespace === undefined ? {} : { "db.namespace": namespace }),
      ...(target.table === undefined ? {} : { "db.collection.name": target.table }),
      ...(settings.omitQueryTextInSpans ? {} : { "db.query.text": query }),
      ...settings.spanAttributes
    }
    staticAttributes.set(key, attributes)
    return attributes
  }

  const run = <A>(
    target: StatementTarget,
    query: string,
    requestOptions: RequestOptions,
    batchType: BatchType | undefined,
    batchAttributes: Record<string, unknown> | undefined,
    start: (queryOptions: Cassandra.QueryOptions) => Promise<A & Cassandra.types.ResultSet>
  ) => {
    const operation = target.operation
    const namespace = target.keyspace ?? keyspace
    const context = { operation, statement: query }
    return Effect.useSpan(
      spanName(target, namespace),
      { kind: "client", attributes: attributesOf(target, query, namespace) },
      (span) => {
        // Prepared per run: an effect run twice (or concurrently) gives each run its own driver options.
        const prepared = prepareRequest(settings, query, requestOptions, batchType)
        const valid = typeof prepared !== "string"
        const consistency = consistencyAttribute(valid ? prepared.consistency : settings.consistency)
        const pageSize = valid ? prepared.pageSize : settings.pageSize
        span.attribute("cassandra.consistency.level", consistency)
        if (valid) span.attribute("cassandra.query.idempotent", prepared.queryOptions.isIdempotent)
        if (pageSize !== undefined) span.attribute("cassandra.page.size", pageSize)
        if (batchAttributes !== undefined) {
          for (const key in batchAttributes) span.attribute(key, batchAttributes[key])
        }
        const startedAt = recorder === undefined ? 0 : performance.now()
        const request = closing
          ? Effect.fail(CassandraError.sessionClosed(context))
          : valid
            ? send(start, prepared, context)
            : Effect.fail(invalidOption(prepared, context))
        return Effect.onExit(request, (exit) =>
          Effect.sync(() => {
            if (Exit.isSuccess(exit)) {
              annotateResult(span, client, exit.value)
            } else {
              const error = Exit.findErrorOption(exit)
              if (Option.isSome(error)) annotateFailure(span, client, error.value)
            }
            recorder?.completed(target, namespace ?? "", consistency, startedAt, exit)
          })
        )
      }
    )
  }

  const waitForDrain = Effect.callback<void>((resume) => {
    closing = true
    if (inFlight === 0) return resume(Effect.void)
    onDrained = () => resume(Effect.void)
  })
  const drain =
    settings.drainTimeoutMillis === Number.POSITIVE_INFINITY
      ? waitForDrain
      : waitForDrain.pipe(Effect.timeoutOption(settings.drainTimeoutMillis), Effect.asVoid)

  yield* Effect.addFinalizer(() => drain)

  const runner: RequestRunner = {
    execute: (request) => {
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
      return run(cachedStatementTarget(query), query, requestOptions, undefined, undefined, (queryOptions) =>
        client.execute(query, params, queryOptions)
      )
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
        batchTarget(statements.map((statement) => cachedStatementTarget(statement.query))),
        summary,
        batchOptions,
        type,
        { "db.operation.batch.size": statements.length, "cassandra.batch.type": type },
        (queryOptions) => client.batch(statements, queryOptions)
      )
    },
    inFlight: Effect.sync(() => inFlight)
  }
  return runner
})
