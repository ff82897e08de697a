import * as Cassandra from "cassandra-driver"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Tracer from "effect/Tracer"
import * as CassandraError from "../CassandraError.ts"
import * as Metrics from "../Metrics.ts"
import type { BatchType, Options, Request, RequestOptions } from "../Session.ts"
import { toBuffer } from "./bytes.ts"
import { consistencyCode, defaultConsistency, defaultSerialConsistency, millis } from "./clientOptions.ts"

/** The part of the session that sends requests: in-flight accounting, drain on close, spans and timeouts. */
export interface RequestRunner {
  readonly execute: (request: Request) => Effect.Effect<Cassandra.types.ResultSet, CassandraError.CassandraError>
  readonly batch: (
    requests: ReadonlyArray<Omit<Request, "options">>,
    options: RequestOptions & { readonly type: BatchType }
  ) => Effect.Effect<Cassandra.types.ResultSet, CassandraError.CassandraError>
  readonly inFlight: Effect.Effect<number>
}

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
>

const readOnlyStatement = /^\s*SELECT\b/i

/** The CQL verb of a statement (`SELECT`, `INSERT`, …), used as the span's operation name. */
export const operationName = (query: string): string => /^\s*([A-Za-z]+)/.exec(query)?.[1]?.toUpperCase() ?? "CQL"

const toDriverTimestamp = (timestamp: bigint | Date) =>
  Cassandra.types.Long.fromString(String(timestamp instanceof Date ? BigInt(timestamp.getTime()) * 1000n : timestamp))

const makeQueryOptions =
  (defaults: RunnerOptions) =>
  (query: string, options: RequestOptions): Cassandra.QueryOptions => {
    const queryOptions: Cassandra.QueryOptions = {
      prepare: options.prepare ?? true,
      isIdempotent: options.idempotent ?? readOnlyStatement.test(query),
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

const recordOutcome = (
  operation: string,
  startedAt: number,
  exit: Exit.Exit<unknown, CassandraError.CassandraError>
) => {
  const outcome = Option.match(Exit.findErrorOption(exit), {
    onNone: () => (Exit.isSuccess(exit) ? "success" : "interrupted"),
    onSome: (error) => error.reason._tag
  })
  const attributes = { operation, outcome }
  return Effect.andThen(
    Metric.update(Metric.withAttributes(Metrics.requests, attributes), 1),
    Metric.update(Metric.withAttributes(Metrics.requestDuration, attributes), (performance.now() - startedAt) / 1000)
  )
}

const annotateCoordinator = (span: Tracer.Span, result: Cassandra.types.ResultSet) => {
  const coordinator = result.info.queriedHost
  if (coordinator === undefined) return
  const separator = coordinator.lastIndexOf(":")
  span.attribute("server.address", separator > 0 ? coordinator.slice(0, separator) : coordinator)
  if (separator > 0) span.attribute("server.port", Number(coordinator.slice(separator + 1)))
}

export const makeRequestRunner = Effect.fnUntraced(function* (client: Cassandra.Client, options: RunnerOptions) {
  let inFlight = 0
  let closing = false
  let onDrained: (() => void) | undefined
  const defaultTimeout = options.requestTimeout ?? "12 seconds"
  const keyspace = options.keyspace ?? client.keyspace
  const toQueryOptions = makeQueryOptions(options)

  // The driver cannot cancel a request, so an interrupted fiber stops waiting at once while the request runs on;
  // the counter follows the driver's promise, not the fiber, so draining also waits for abandoned requests.
  const send = <A>(start: () => Promise<A>) =>
    Effect.callback<A, unknown>((resume) => {
      inFlight++
      const settle = () => {
        inFlight--
        if (inFlight === 0 && onDrained !== undefined) onDrained()
      }
      start().then(
        (value) => {
          settle()
          resume(Effect.succeed(value))
        },
        (error: unknown) => {
          settle()
          resume(Effect.fail(error))
        }
      )
    })

  const run = <A>(
    operation: string,
    query: string,
    requestOptions: RequestOptions,
    attributes: Record<string, unknown>,
    start: () => Promise<A & Cassandra.types.ResultSet>
  ) => {
    const timeout = requestOptions.timeout ?? defaultTimeout
    return Effect.useSpan(
      keyspace === undefined ? operation : `${operation} ${keyspace}`,
      {
        kind: "client",
        attributes: {
          "db.system.name": "cassandra",
          "db.operation.name": operation,
          ...(keyspace === undefined ? {} : { "db.namespace": keyspace }),
          ...(options.omitQueryTextInSpans === true ? {} : { "db.query.text": query }),
          "cassandra.consistency.level": requestOptions.consistency ?? options.consistency ?? defaultConsistency,
          ...attributes,
          ...options.spanAttributes
        }
      },
      (span) =>
        Effect.suspend(() => {
          const startedAt = performance.now()
          return (
            closing
              ? Effect.fail(CassandraError.sessionClosed({ operation, statement: query }))
              : send(start).pipe(
                  Effect.mapError((cause) => CassandraError.fromDriverError(cause, { operation, statement: query })),
                  Effect.timeoutOrElse({
                    duration: timeout,
                    orElse: () =>
                      Effect.fail(
                        CassandraError.fromDriverError(
                          new Cassandra.errors.OperationTimedOutError(
                            `The request did not complete within ${Duration.format(Duration.fromInputUnsafe(timeout))}`
                          ),
                          { operation, statement: query }
                        )
                      )
                  }),
                  Effect.tap((result) => Effect.sync(() => annotateCoordinator(span, result))),
                  Effect.tapError((error) =>
                    Effect.sync(() => {
                      span.attribute("error.type", error.reason._tag)
                    })
                  )
                )
          ).pipe(Effect.onExit((exit) => recordOutcome(operation, startedAt, exit)))
        })
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
      run(operationName(request.query), request.query, request.options, {}, () =>
        client.execute(request.query, request.params as Array<unknown>, toQueryOptions(request.query, request.options))
      ),
    batch: (requests, batchOptions) => {
      const summary = requests.map((request) => request.query).join("; ")
      const queryOptions: Cassandra.QueryOptions = {
        ...toQueryOptions(summary, batchOptions),
        logged: batchOptions.type === "logged",
        counter: batchOptions.type === "counter"
      }
      return run(
        "BATCH",
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
