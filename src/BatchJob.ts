/**
 * Batch jobs: run many statements with bounded concurrency, retry idempotent ones on a `Schedule`, group writes to
 * the same partition into unlogged batches, watch progress as a `Stream`, and keep one outcome per statement so a
 * job that stopped can be resumed with the statements that did not succeed. Reads resume from page-state tokens.
 *
 * Retries follow one rule: a statement is retried only when it is idempotent (declared with `idempotent: true`, or a
 * `SELECT` not declared otherwise) and its error is retryable (`CassandraError.isRetryable`). A non-idempotent
 * statement that timed out may have been applied, so running it again could apply it twice.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as CassandraError from "./CassandraError.ts"
import { isIdempotent as isIdempotentRequest } from "./internal/requestRunner.ts"
import * as Query from "./Query.ts"
import type { CassandraSession } from "./Session.ts"

/**
 * How a job runs its statements.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<A> {
  /** Requests (statements or batches) in flight at once from this job (default 64). */
  readonly concurrency?: number | undefined
  /** When to try an idempotent statement again after a retryable error (default: never). */
  readonly retry?: Schedule.Schedule<unknown, CassandraError.CassandraError> | undefined
  /**
   * The partition a statement writes to, as any string that is equal for equal partition keys. Statements with the
   * same key are sent together as unlogged batches of at most `maxBatchSize`: one request per partition instead of
   * one per row. Statements whose key is `undefined` are sent alone. Default: every statement is sent alone.
   */
  readonly partitionKey?: ((statement: Query.Statement<A>) => string | undefined) | undefined
  /** The most statements in one unlogged batch (default 20). */
  readonly maxBatchSize?: number | undefined
}

/**
 * A statement that ran: its position in the job's input and its first page of rows (none for a batched write).
 *
 * @since 0.1.0
 * @category models
 */
export interface Success<A> {
  readonly _tag: "Success"
  readonly index: number
  readonly rows: ReadonlyArray<A>
}

/**
 * A statement that failed after any retries: its position, the statement itself (to run again) and the error.
 *
 * @since 0.1.0
 * @category models
 */
export interface Failure<A> {
  readonly _tag: "Failure"
  readonly index: number
  readonly statement: Query.Statement<A>
  readonly error: CassandraError.CassandraError
}

/**
 * What happened to one statement of a job.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome<A> = Success<A> | Failure<A>

/**
 * The outcome of every statement of a finished job, in input order, and its failures.
 *
 * @since 0.1.0
 * @category models
 */
export interface Report<A> {
  readonly outcomes: ReadonlyArray<Outcome<A>>
  readonly succeeded: number
  readonly failures: ReadonlyArray<Failure<A>>
}

/**
 * A job's counts so far: statements completed and failed, out of `total`, and rates in statements per second.
 *
 * @since 0.1.0
 * @category models
 */
export interface Progress {
  readonly total: number
  readonly completed: number
  readonly failed: number
  readonly elapsed: Duration.Duration
  /** Statements completed per second since the job started. */
  readonly rate: number
  /** Statements completed per second since the previous sample. */
  readonly currentRate: number
  /** Whether this is the last sample: every statement has an outcome, or the job was interrupted. */
  readonly done: boolean
}

/**
 * A running job: its progress as a stream of samples, and its report.
 *
 * @since 0.1.0
 * @category models
 */
export interface Job<A> {
  /** A sample now and every `progressInterval` until the job ends, the final counts last. */
  readonly progress: Stream.Stream<Progress>
  /** Waits for the job to end and returns its report. */
  readonly report: Effect.Effect<Report<A>>
}

const defaultConcurrency = 64
const defaultMaxBatchSize = 20
const defaultStreamWindow = 1024

/**
 * Whether a statement may be run again after a retryable error: declared idempotent, or a read not declared
 * otherwise.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isIdempotent = (statement: Query.Statement<unknown>): boolean =>
  isIdempotentRequest(statement.text, statement.options)

const retrying = <A, R>(
  effect: Effect.Effect<A, CassandraError.CassandraError, R>,
  idempotent: boolean,
  retry: Schedule.Schedule<unknown, CassandraError.CassandraError> | undefined
): Effect.Effect<A, CassandraError.CassandraError, R> =>
  retry === undefined || !idempotent ? effect : Effect.retry(effect, { schedule: retry, while: (e) => e.isRetryable })

/**
 * Runs one statement and returns its first page of rows, retrying on `retry` only when the statement is idempotent
 * and the error retryable.
 *
 * @since 0.1.0
 * @category execution
 */
export const execute = <A>(
  statement: Query.Statement<A>,
  retry?: Schedule.Schedule<unknown, CassandraError.CassandraError>
): Effect.Effect<ReadonlyArray<A>, CassandraError.CassandraError, CassandraSession> =>
  retrying(statement, isIdempotent(statement), retry)

/**
 * Every page of a read from a page-state token on (or from the start), each page fetched with the same retry rule as
 * `execute`. Each page carries the token that resumes the read after it: save it once the page is processed, and
 * after a failure call `pages` again with `from` set to the last saved token.
 *
 * @since 0.1.0
 * @category execution
 */
export const pages = <A>(
  statement: Query.Statement<A>,
  options: {
    readonly from?: string | undefined
    readonly retry?: Schedule.Schedule<unknown, CassandraError.CassandraError> | undefined
  } = {}
): Stream.Stream<Query.Page<A>, CassandraError.CassandraError, CassandraSession> =>
  Stream.paginate(options.from, (pageState) =>
    Effect.map(
      retrying(statement.page(pageState), isIdempotent(statement), options.retry),
      (page) => [[page], page.pageState] as const
    )
  )

/** Statements sent as one request: alone, or as one unlogged batch of one partition. */
type Unit<A> = ReadonlyArray<readonly [Query.Statement<A>, number]>

const toUnits = <A>(entries: ReadonlyArray<readonly [Query.Statement<A>, number]>, options: Options<A>) => {
  const partitionKey = options.partitionKey
  if (partitionKey === undefined) return entries.map((entry): Unit<A> => [entry])
  const maxBatchSize = options.maxBatchSize ?? defaultMaxBatchSize
  const units: Array<Unit<A>> = []
  const open = new Map<string, Array<readonly [Query.Statement<A>, number]>>()
  for (const entry of entries) {
    const key = partitionKey(entry[0])
    if (key === undefined) {
      units.push([entry])
      continue
    }
    let batch = open.get(key)
    if (batch === undefined) {
      batch = []
      open.set(key, batch)
      units.push(batch)
    }
    batch.push(entry)
    if (batch.length === maxBatchSize) open.delete(key)
  }
  return units
}

const runUnit = <A>(
  unit: Unit<A>,
  retry: Schedule.Schedule<unknown, CassandraError.CassandraError> | undefined
): Effect.Effect<ReadonlyArray<Outcome<A>>, never, CassandraSession> => {
  const statements = unit.map(([statement]) => statement)
  const idempotent = statements.every(isIdempotent)
  const [first] = statements
  const request: Effect.Effect<ReadonlyArray<A>, CassandraError.CassandraError, CassandraSession> = first !==
    undefined && statements.length === 1
    ? first
    : Effect.as(Query.batch(statements, { type: "unlogged", idempotent }), [])
  return Effect.match(retrying(request, idempotent, retry), {
    onSuccess: (rows) => unit.map(([, index]): Outcome<A> => ({ _tag: "Success", index, rows })),
    onFailure: (error) => unit.map(([statement, index]): Outcome<A> => ({ _tag: "Failure", index, statement, error }))
  })
}

const reportOf = <A>(outcomes: ReadonlyArray<Outcome<A>>): Report<A> => {
  const failures = outcomes.filter(isFailure)
  return { outcomes, succeeded: outcomes.length - failures.length, failures }
}

interface Counters {
  completed: number
  failed: number
}

const runAll = <A>(statements: ReadonlyArray<Query.Statement<A>>, options: Options<A>, counters: Counters) => {
  const outcomes = new Array<Outcome<A>>(statements.length)
  return Effect.forEach(
    toUnits(
      statements.map((statement, index) => [statement, index] as const),
      options
    ),
    (unit) =>
      Effect.map(runUnit(unit, options.retry), (unitOutcomes) => {
        for (const outcome of unitOutcomes) {
          outcomes[outcome.index] = outcome
          counters.completed++
          if (outcome._tag === "Failure") counters.failed++
        }
      }),
    { concurrency: options.concurrency ?? defaultConcurrency, discard: true }
  ).pipe(Effect.map(() => reportOf(outcomes)))
}

/**
 * Runs every statement and returns one outcome per statement; a failed statement does not stop the others. To resume
 * after failures, run the failures' statements again (see `unfinished`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { BatchJob, Query } from "effect-cassandra"
 *
 * const users = [{ id: 1, name: "Ada" }, { id: 2, name: "Grace" }]
 * const inserts = users.map((u) => Query.cql`INSERT INTO users (id, name) VALUES (${u.id}, ${u.name})`)
 * const program = Effect.gen(function* () {
 *   const report = yield* BatchJob.run(inserts, { concurrency: 128, partitionKey: (s) => String(s.params[0]) })
 *   if (report.failures.length > 0) yield* BatchJob.run(BatchJob.unfinished(report))
 * })
 * ```
 *
 * @since 0.1.0
 * @category execution
 */
export const run = <A>(
  statements: ReadonlyArray<Query.Statement<A>>,
  options: Options<A> = {}
): Effect.Effect<Report<A>, never, CassandraSession> => runAll(statements, options, { completed: 0, failed: 0 })

/**
 * Starts a job in the background of the current scope (closing the scope interrupts it) and returns its progress and
 * its report.
 *
 * @since 0.1.0
 * @category execution
 */
export const start: <A>(
  statements: ReadonlyArray<Query.Statement<A>>,
  options?: Options<A> & { readonly progressInterval?: Duration.Input | undefined }
) => Effect.Effect<Job<A>, never, CassandraSession | Scope.Scope> = Effect.fnUntraced(function* <A>(
  statements: ReadonlyArray<Query.Statement<A>>,
  options: Options<A> & { readonly progressInterval?: Duration.Input | undefined } = {}
) {
  const counters: Counters = { completed: 0, failed: 0 }
  let finished = false
  const fiber = yield* runAll(statements, options, counters).pipe(
    Effect.ensuring(Effect.sync(() => (finished = true))),
    Effect.forkScoped
  )
  const startedAt = performance.now()
  let previous = { at: startedAt, completed: 0 }
  const sample = Effect.sync((): Progress => {
    const now = performance.now()
    const done = finished
    const completed = counters.completed
    const sinceStart = (now - startedAt) / 1000
    const sincePrevious = (now - previous.at) / 1000
    const progress: Progress = {
      total: statements.length,
      completed,
      failed: counters.failed,
      elapsed: Duration.millis(now - startedAt),
      rate: sinceStart > 0 ? completed / sinceStart : 0,
      currentRate: sincePrevious > 0 ? (completed - previous.completed) / sincePrevious : 0,
      done
    }
    previous = { at: now, completed }
    return progress
  })
  return {
    progress: Stream.fromEffectSchedule(sample, Schedule.spaced(options.progressInterval ?? "1 second")).pipe(
      Stream.takeUntil((progress) => progress.done)
    ),
    report: Fiber.join(fiber)
  }
})

/**
 * Runs a stream of statements with bounded concurrency and emits one outcome per statement, in input order; `index`
 * counts from 0 in the stream. With `partitionKey`, statements are grouped into batches within windows of 1024
 * consecutive statements. To resume, restart the source after the highest index up to which every outcome was seen.
 *
 * @since 0.1.0
 * @category execution
 */
export const stream = <A, E, R>(
  statements: Stream.Stream<Query.Statement<A>, E, R>,
  options: Options<A> = {}
): Stream.Stream<Outcome<A>, E, R | CassandraSession> =>
  options.partitionKey === undefined
    ? statements.pipe(
        Stream.mapEffect((statement, index) => runUnit([[statement, index]], options.retry), {
          concurrency: options.concurrency ?? defaultConcurrency
        }),
        Stream.flattenIterable
      )
    : // Batches of a window finish in any order; sorting each window's outcomes keeps the output in input order.
      statements.pipe(
        Stream.zipWithIndex,
        Stream.grouped(defaultStreamWindow),
        Stream.mapEffect((window) =>
          Effect.map(
            Effect.forEach(toUnits(window, options), (unit) => runUnit(unit, options.retry), {
              concurrency: options.concurrency ?? defaultConcurrency
            }),
            (outcomes) => outcomes.flat().sort((a, b) => a.index - b.index)
          )
        ),
        Stream.flattenIterable
      )

/**
 * The statements of a report that did not succeed, in input order: the input of the job that resumes it.
 *
 * @since 0.1.0
 * @category execution
 */
export const unfinished = <A>(report: Report<A>): ReadonlyArray<Query.Statement<A>> =>
  report.failures.map((failure) => failure.statement)

/**
 * Whether an outcome is a failure.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isFailure = <A>(outcome: Outcome<A>): outcome is Failure<A> => outcome._tag === "Failure"
