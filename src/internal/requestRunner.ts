import * as Cassandra from "cassandra-driver"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as CassandraError from "../CassandraError.ts"
import type { CassandraSession, Options, RequestOptions } from "../Session.ts"
import { toBuffer } from "./bytes.ts"
import { consistencyCode, defaultConsistency, defaultSerialConsistency, millis } from "./clientOptions.ts"
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
import { makeThrottle } from "./throttle.ts"

/** The part of the session that sends requests: in-flight accounting, drain on close, spans and timeouts. */
type RequestRunner = Pick<CassandraSession, "execute" | "batch" | "inFlight">

type RunnerOptions = Pick<
  Options,
  | "requestTimeout"
  | "drainTimeout"
  | "spanAttributes"
  | "omitQueryTextInSpans"
  | "keyspace"
  | "consistency"
  | "serialConsistency"
  | "pageSize"
  | "throttle"
>

const readOnlyStatement = /^\s*SELECT\b/i

/** Whether a request may be retried or speculatively executed: as declared, or else when it only reads. */
export const isIdempotent = (query: string, options: RequestOptions): boolean =>
  options.idempotent ?? readOnlyStatement.test(query)

const toDriverTimestamp = (timestamp: bigint | Date) =>
  Cassandra.types.Long.fromString(String(timestamp instanceof Date ? BigInt(timestamp.getTime()) * 1000n : timestamp))

const makeQueryOptions =
  (defaults: RunnerOptions) =>
  (query: string, options: RequestOptions): Cassandra.QueryOptions => {
    const queryOptions: Cassandra.QueryOptions = {
      prepare: options.prepare ?? true,
      isIdempotent: isIdempotent(query, options),
      consistency: consistencyCode(options.consistency ?? defaults.consistency ?? defaultConsistency),
      serialConsistency: consistencyCode(
        options.serialConsistency ?? defaults.serialConsistency ?? defaultSerialConsistency
      )
    }
    const pageSize = options.pageSize ?? defaults.pageSize
    if (pageSize !== undefined) queryOptions.fetchSize = pageSize
    if (options.pageState !== undefined) queryOptions.pageState = options.pageState
    if (options.timestamp !== undefined) queryOptions.timestamp = toDriverTimestamp(options.timestamp)
    if (options.routingKey !== undefined) {
      queryOptions.routingKey =
        options.routingKey instanceof Uint8Array ? toBuffer(options.routingKey) : options.routingKey.map(toBuffer)
    }
    if (options.tracing !== undefined) queryOptions.traceQuery = options.tracing
    if (options.executionProfile !== undefined) queryOptions.executionProfile = options.executionProfile
    if (options.timeout !== undefined) queryOptions.readTimeout = millis(options.timeout)
    return queryOptions
  }

const timedOut = (timeoutMillis: number, context: CassandraError.ErrorContext) =>
  CassandraError.fromDriverError(
    new Cassandra.errors.OperationTimedOutError(
      `The request did not complete within ${Duration.format(Duration.millis(timeoutMillis))}`
    ),
    context
  )

export const makeRequestRunner = Effect.fnUntraced(function* (client: Cassandra.Client, options: RunnerOptions) {
  let inFlight = 0
  let closing = false
  let onDrained: (() => void) | undefined
  const defaultTimeoutMillis = millis(options.requestTimeout ?? "12 seconds")
  const keyspace = options.keyspace ?? client.keyspace
  const toQueryOptions = makeQueryOptions(options)
  // Looked up once: without the metrics layer the request path does no metrics work at all.
  const metricsHub = yield* MetricsHub
  const recorder = metricsHub === undefined ? undefined : yield* metricsHub.attach(client)

  const limits = options.throttle
  if (
    limits !== undefined &&
    !(
      Number.isInteger(limits.maxInFlight) &&
      limits.maxInFlight >= 1 &&
      Number.isInteger(limits.maxQueued) &&
      limits.maxQueued >= 0
    )
  ) {
    return yield* Effect.fail(
      CassandraError.configuration(
        `throttle needs a whole maxInFlight of at least 1 and a whole maxQueued of at least 0, got ${limits.maxInFlight} and ${limits.maxQueued}`
      )
    )
  }
  const throttle = limits === undefined ? undefined : makeThrottle(limits)

  // The driver cannot cancel a request, so an interrupted fiber stops waiting at once while the request runs on;
  // the counter follows the driver's promise, not the fiber, so draining also waits for abandoned requests. For the
  // same reason the throttle's place is given back when the promise settles; a fiber interrupted while its request
  // still waits for a place withdraws it, so it is never sent. The end-to-end timeout is one timer per request
  // (time waiting for a place counts), and errors are classified here, on the request path's only callback.
  const send = <A>(start: () => Promise<A>, timeoutMillis: number, context: CassandraError.ErrorContext) =>
    Effect.callback<A, CassandraError.CassandraError>((resume) => {
      let waiting = true
      let withdraw: (() => void) | undefined
      const timer = setTimeout(() => {
        if (!waiting) return
        waiting = false
        withdraw?.()
        resume(Effect.fail(timedOut(timeoutMillis, context)))
      }, timeoutMillis)
      const begin = () => {
        inFlight++
        start().then(
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
            resume(Effect.fail(CassandraError.fromDriverError(error, context)))
          }
        )
      }
      if (throttle === undefined) {
        begin()
      } else {
        withdraw = throttle.submit(begin)
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
      ...(options.omitQueryTextInSpans === true ? {} : { "db.query.text": query }),
      ...options.spanAttributes
    }
    staticAttributes.set(key, attributes)
    return attributes
  }

  const run = <A>(
    target: StatementTarget,
    query: string,
    requestOptions: RequestOptions,
    batchAttributes: Record<string, unknown> | undefined,
    start: () => Promise<A & Cassandra.types.ResultSet>
  ) => {
    const timeoutMillis = requestOptions.timeout === undefined ? defaultTimeoutMillis : millis(requestOptions.timeout)
    const operation = target.operation
    const namespace = target.keyspace ?? keyspace
    const consistency = consistencyAttribute(requestOptions.consistency ?? options.consistency ?? defaultConsistency)
    const pageSize = requestOptions.pageSize ?? options.pageSize
    const context = { operation, statement: query }
    return Effect.useSpan(
      spanName(target, namespace),
      { kind: "client", attributes: attributesOf(target, query, namespace) },
      (span) => {
        span.attribute("cassandra.consistency.level", consistency)
        span.attribute("cassandra.query.idempotent", isIdempotent(query, requestOptions))
        if (pageSize !== undefined) span.attribute("cassandra.page.size", pageSize)
        if (batchAttributes !== undefined) {
          for (const key in batchAttributes) span.attribute(key, batchAttributes[key])
        }
        const startedAt = recorder === undefined ? 0 : performance.now()
        const request = closing
          ? Effect.fail(CassandraError.sessionClosed(context))
          : send(start, timeoutMillis, context)
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

  const drain = Effect.callback<void>((resume) => {
    closing = true
    if (inFlight === 0) return resume(Effect.void)
    onDrained = () => resume(Effect.void)
  }).pipe(Effect.timeoutOption(options.drainTimeout ?? "10 seconds"), Effect.asVoid)

  yield* Effect.addFinalizer(() => drain)

  const runner: RequestRunner = {
    execute: (request) =>
      run(cachedStatementTarget(request.query), request.query, request.options, undefined, () =>
        client.execute(request.query, request.params as Array<unknown>, toQueryOptions(request.query, request.options))
      ),
    batch: (requests, batchOptions) => {
      // The conventions' query text of a batch: the statements' text when they share it, else every text.
      const texts = requests.map((request) => request.query)
      const summary = texts.every((text) => text === texts[0]) ? (texts[0] ?? "") : texts.join("; ")
      const queryOptions: Cassandra.QueryOptions = {
        ...toQueryOptions(summary, batchOptions),
        logged: batchOptions.type === "logged",
        counter: batchOptions.type === "counter"
      }
      return run(
        batchTarget(requests.map((request) => cachedStatementTarget(request.query))),
        summary,
        batchOptions,
        { "db.operation.batch.size": requests.length, "cassandra.batch.type": batchOptions.type },
        () =>
          client.batch(
            requests.map((request) => ({ query: request.query, params: request.params as Array<unknown> })),
            queryOptions
          )
      )
    },
    inFlight: Effect.sync(() => inFlight)
  }
  return runner
})
