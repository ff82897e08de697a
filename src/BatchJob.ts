/**
 * Batch jobs: run many statements (or values encoded by a Schema, see `schema`) with bounded concurrency, retry
 * idempotent ones on a `Schedule`, group writes to the same partition into unlogged batches, watch progress as a
 * `Stream`, and keep one outcome per statement, or a summary, so a job that failed or was interrupted can be resumed
 * with the inputs that did not succeed. Reads resume from page-state tokens.
 *
 * Retries follow one rule: a statement is retried only when it is idempotent (declared with `idempotent: true`, or a
 * `SELECT` not declared otherwise) and its error is retryable (`CassandraError.isRetryable`). A non-idempotent
 * statement that timed out may have been applied, so running it again could apply it twice.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Effectable from "effect/Effectable"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { constVoid } from "effect/Function"
import * as Latch from "effect/Latch"
import * as Pull from "effect/Pull"
import * as Schedule from "effect/Schedule"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as CassandraError from "./CassandraError.ts"
import { configuration, isCassandraError } from "./CassandraError.ts"
import { type CqlSchemaError, encoder } from "./CqlSchema.ts"
import {
  batchOptionsKey,
  batchOptionsOf,
  callbackThrew,
  inputThrew,
  invalidOptions,
  mayShareBatch,
  refusedBeforeApplying
} from "./internal/batchJob.ts"
import { startUnwaited, type UnwaitedStart } from "./internal/boundSession.ts"
import { isIdempotent as isIdempotentRequest } from "./internal/idempotence.ts"
import * as Query from "./Query.ts"
import type { Session } from "./Session.ts"

/**
 * How a job runs its statements.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<A> {
  /** Requests (statements or batches) in flight at once from this job (default 64). */
  readonly concurrency?: number | undefined
  /**
   * When to try an idempotent statement again after a retryable error (default: never). A schedule that throws fails
   * the statement (or batch) it was retrying, with a `Configuration` reason, and the job goes on.
   */
  readonly retry?: Schedule.Schedule<unknown, CassandraError.CassandraError> | undefined
  /**
   * The partition a statement writes to, as any string that is equal for equal partition keys. Statements with the
   * same key are sent together as unlogged batches of at most `maxBatchSize`: one request per partition instead of
   * one per row. Statements whose key is `undefined` are sent alone. Default: every statement is sent alone.
   *
   * Statements are grouped within windows of 1,024 consecutive statements, and only with statements of equal
   * consistency, serial consistency, write timestamp, timeouts, tracing, execution profile, routing key, idempotence
   * and `prepare`: a batch carries one of each, so each statement is written exactly as it asked. Reads and
   * conditional writes (`IF ...`) are always sent alone, since a batch reports one result for all its statements. A
   * batch refused before anything of it was applied (a value that does not fit, counter and plain writes mixed, a
   * batch over the server's size limit) is sent again one statement at a time, so each gets its own outcome. A
   * function that throws fails the statement it was given, with a `Configuration` reason.
   */
  readonly partitionKey?: ((statement: Query.Statement<A>) => string | undefined) | undefined
  /** The most statements in one unlogged batch (default 20). */
  readonly maxBatchSize?: number | undefined
  /**
   * How long `stream` holds statements for grouping when its source is slow (default 100 millis): a window of
   * statements is sent when it holds 1,024 statements or when this long has passed since its first one, whichever
   * comes first, so a source that pauses or never ends does not keep statements unsent.
   */
  readonly maxGroupingDelay?: Duration.Input | undefined
}

/**
 * What `run` and `start` keep. By default, one outcome per input (a `Report`); with `summary: true`, counts and at
 * most `maxFailures` failures (default 1,000; the others are only counted), a `Summary`: the job then holds one byte
 * per input, whatever the statements return or how they fail, and `unfinished` still gives every input that did not
 * succeed. For each outcome without holding them, use `stream`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReportOptions {
  readonly summary?: boolean | undefined
  readonly maxFailures?: number | undefined
}

/**
 * How often a started job samples its progress (default every second).
 *
 * @since 0.1.0
 * @category models
 */
export interface ProgressOptions {
  readonly progressInterval?: Duration.Input | undefined
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
 * An input that failed after any retries: its position, the input itself (the statement, or the value of a schema
 * job: what to run again) and the error.
 *
 * @since 0.1.0
 * @category models
 */
export interface Failure<A, I = Query.Statement<A>, E = CassandraError.CassandraError> {
  readonly _tag: "Failure"
  readonly index: number
  readonly input: I
  readonly error: E
}

/**
 * What happened to one input of a job.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome<A, I = Query.Statement<A>, E = CassandraError.CassandraError> = Success<A> | Failure<A, I, E>

/**
 * What a job did: how many inputs it had, succeeded and failed, its failures in input order (at most `maxFailures`
 * of them), and whether it was interrupted before every input had an outcome. `unfinished` gives the inputs to run
 * again.
 *
 * @since 0.1.0
 * @category models
 */
export interface Summary<A, I = Query.Statement<A>, E = CassandraError.CassandraError> {
  readonly total: number
  readonly succeeded: number
  readonly failed: number
  readonly failures: ReadonlyArray<Failure<A, I, E>>
  /**
   * Whether the job was interrupted (its scope closed, or `Job.interrupt`). Requests in flight were waited for, so
   * every input has a known outcome or was never sent; the inputs not started are in `unfinished`.
   */
  readonly interrupted: boolean
}

/**
 * A summary with every failure and one outcome per input in input order: every input of a finished job, the inputs
 * that got an outcome before an interruption.
 *
 * @since 0.1.0
 * @category models
 */
export interface Report<A, I = Query.Statement<A>, E = CassandraError.CassandraError> extends Summary<A, I, E> {
  readonly outcomes: ReadonlyArray<Outcome<A, I, E>>
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
 * A running job: its progress as a stream of samples, its report, and a way to stop it with its partial report.
 *
 * @since 0.1.0
 * @category models
 */
export interface Job<S> {
  /** A sample now and every `progressInterval` until the job ends, the final counts last. */
  readonly progress: Stream.Stream<Progress>
  /**
   * Waits for the job to end and returns its report. After an interruption (its scope closed, or `interrupt`), the
   * report is partial, with `interrupted: true`: resume with `unfinished(report)`.
   */
  readonly report: Effect.Effect<S>
  /**
   * Stops the job and returns its partial report: no input is started any more, and requests already sent are
   * waited for (the driver cannot take them back), so the report knows the outcome of every input that was sent.
   */
  readonly interrupt: Effect.Effect<S>
}

const defaultConcurrency = 64
const defaultMaxBatchSize = 20
const defaultMaxFailures = 1000
const maxWindow = 1024
const defaultMaxGroupingDelay = "100 millis"
const noRows: ReadonlyArray<never> = []

/**
 * Whether a statement may be run again after a retryable error: declared idempotent, or a read not declared
 * otherwise.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isIdempotent = (statement: Query.Statement<unknown>): boolean =>
  isIdempotentRequest(statement.text, statement.options.idempotent)

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
): Effect.Effect<ReadonlyArray<A>, CassandraError.CassandraError, Session> =>
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
): Stream.Stream<Query.Page<A>, CassandraError.CassandraError, Session> =>
  Stream.paginate(options.from, (pageState) =>
    Effect.map(
      retrying(statement.page(pageState), isIdempotent(statement), options.retry),
      (page) => [[page], page.pageState] as const
    )
  )

/** An input with its position, and the statement built from it or the error that kept it from being built. */
interface Entry<A, I, E> {
  readonly index: number
  readonly input: I
  readonly statement: Query.Statement<A> | undefined
  readonly error: E | undefined
}

/** Inputs sent as one request: alone, or as one unlogged batch of one partition. */
type Unit<A, I, E> = ReadonlyArray<Entry<A, I, E>>

/**
 * Receives the outcome of each input in the step that learns it, before an interruption can be seen: a job
 * interrupted as an answer arrives still records it.
 */
interface Recorder<A, I, E> {
  readonly succeeded: (index: number, rows: ReadonlyArray<A>) => void
  readonly failed: (index: number, input: I, error: E) => void
}

/**
 * A failure's printed and JSON forms name its input by position only: the input can be a value its Schema refused,
 * which may hold personal data or secrets, and failures end up in logs.
 */
const failureJson = (self: Failure<unknown, unknown, unknown>) => ({
  _tag: self._tag,
  index: self.index,
  error: self.error
})

const FailureProto = {
  toJSON(this: Failure<unknown, unknown, unknown>) {
    return failureJson(this)
  },
  [Symbol.for("nodejs.util.inspect.custom")](this: Failure<unknown, unknown, unknown>) {
    return failureJson(this)
  }
}

const failure = <A, I, E>(index: number, input: I, error: E): Failure<A, I, E> =>
  Object.assign(Object.create(FailureProto), { _tag: "Failure", index, input, error })

// A report keeps every outcome until the job ends: a write's empty page is kept once, not once per statement.
const success = <A>(index: number, rows: ReadonlyArray<A>): Success<A> => ({
  _tag: "Success",
  index,
  rows: rows.length === 0 ? noRows : rows
})

/** A recorder that keeps the outcomes it receives, in the order it receives them. */
const collectInto = <A, I, E>(outcomes: Array<Outcome<A, I, E>>): Recorder<A, I, E> => ({
  succeeded: (index, rows) => {
    outcomes.push(success(index, rows))
  },
  failed: (index, input, error) => {
    outcomes.push(failure(index, input, error))
  }
})

/**
 * The partition an entry is grouped by, undefined to send it alone (reads and conditional writes always are), or the
 * error of a `partitionKey` that threw, which fails that entry alone instead of ending the job without a report.
 */
const partitionOf = <A, I, E>(
  entry: Entry<A, I, E>,
  partitionKey: (statement: Query.Statement<A>) => string | undefined
): string | CassandraError.CassandraError | undefined => {
  if (entry.statement === undefined || !mayShareBatch(entry.statement)) return undefined
  try {
    return partitionKey(entry.statement)
  } catch (thrown) {
    return callbackThrew("partitionKey", thrown, entry.index)
  }
}

const toUnits = <A, I, E>(
  window: ReadonlyArray<Entry<A, I, E>>,
  partitionKey: (statement: Query.Statement<A>) => string | undefined,
  maxBatchSize: number
) => {
  const units: Array<Unit<A, I, E | CassandraError.CassandraError>> = []
  const open = new Map<string, Array<Entry<A, I, E>>>()
  for (const entry of window) {
    const partition = partitionOf(entry, partitionKey)
    if (partition === undefined) {
      units.push([entry])
      continue
    }
    if (isCassandraError(partition)) {
      units.push([{ ...entry, statement: undefined, error: partition }])
      continue
    }
    const key = `${batchOptionsKey(entry.statement as Query.Statement<A>)}\u0000${String(partition)}`
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

const typeName = (u: unknown) => (u === null ? "null" : Array.isArray(u) ? "array" : typeof u)

/**
 * The error of an input whose statement is not one `cql` or a session's template built (a copy, a lookalike, or any
 * value from a caller without type checks): it cannot be sent, and fails alone instead of ending the job.
 */
const notAStatement = (what: string, value: unknown, index: number): CassandraError.CassandraError =>
  configuration(
    `The batch job's ${what} at index ${index} is not a statement (got ${typeName(value)}); it was not sent`,
    {
      operation: "BatchJob"
    }
  )

/** The entry of an input whose statement is `statement`, or fails alone when that is not a statement. */
const entryFor = <A, I, E>(
  index: number,
  input: I,
  statement: unknown,
  what: string
): Entry<A, I, E | CassandraError.CassandraError> =>
  Query.isStatement(statement)
    ? { index, input, statement: statement as Query.Statement<A>, error: undefined }
    : { index, input, statement: undefined, error: notAStatement(what, statement, index) }

/** Whether a statement is tried again on `retry` after a retryable error. */
const isRetried = (
  statement: Query.Statement<unknown>,
  retry: Schedule.Schedule<unknown, CassandraError.CassandraError> | undefined
) => retry !== undefined && isIdempotent(statement)

const recordFailures = <A, I, E>(unit: Unit<A, I, E>, error: E, record: Recorder<A, I, E>) => {
  for (const entry of unit) record.failed(entry.index, entry.input, error)
}

/** Where a unit's attempt leaves it: settled, to be sent again after a delay, or a refused batch to send alone. */
type Next = Duration.Duration | "split" | undefined

type Step = (
  now: number,
  error: CassandraError.CassandraError
) => Effect.Effect<readonly [unknown, Duration.Duration], unknown>

const scheduleThrew = <A, I, E>(defect: unknown, unit: Unit<A, I, E>): CassandraError.CassandraError =>
  configuration(
    `The batch job's retry schedule threw ${defect instanceof Error ? defect.name : typeof defect} while retrying ` +
      `${unit.length === 1 ? "the input" : `a batch of ${unit.length} inputs`} at index ${unit[0]?.index}; ` +
      "it was not retried further",
    { operation: "BatchJob" }
  )

/**
 * Runs one unit, with its retries and, for a batch refused before anything of it was applied, its statements one
 * by one.
 */
const runUnit = <A, I, E>(
  unit: Unit<A, I, E>,
  retry: Schedule.Schedule<unknown, CassandraError.CassandraError> | undefined,
  record: Recorder<A, I, E | CassandraError.CassandraError>
): Effect.Effect<void, never, Session> => {
  const first = unit[0]?.statement
  if (first === undefined) return Effect.sync(() => recordFailures(unit, unit[0]?.error as E, record))
  // Grouping put only statements of equal batch options together, so the first one's options are every one's.
  const request: Effect.Effect<ReadonlyArray<A>, CassandraError.CassandraError, Session> = unit.length === 1
    ? first
    : Effect.as(
        Query.batch(
          unit.map((entry) => entry.statement as Query.Statement<A>),
          { ...batchOptionsOf(first), type: "unlogged" }
        ),
        noRows
      )
  const retried = isRetried(first, retry)
  // Built at the first retryable error: a unit that needs no retry builds no schedule.
  let step: Step | undefined
  // The schedule's answer to an error: the delay before the next attempt, or, once it ends, the error is the unit's
  // failure. A schedule is the caller's code: one that throws fails the unit it was retrying, not the whole job.
  const decide = (error: CassandraError.CassandraError): Effect.Effect<Next> =>
    Effect.matchCause(
      Effect.flatMap(
        step === undefined
          ? Effect.map(Schedule.toStep(retry as Schedule.Schedule<unknown, CassandraError.CassandraError>), (built) => {
              step = built
              return built
            })
          : Effect.succeed(step),
        (step) => Effect.flatMap(Clock.currentTimeMillis, (now) => step(now, error))
      ),
      {
        onSuccess: ([, delay]) => delay,
        onFailure: (cause) => {
          recordFailures(unit, Pull.isDoneCause(cause) ? error : scheduleThrew(Cause.squash(cause), unit), record)
          return undefined
        }
      }
    )
  // The driver cannot take a request back: an interrupted job waits for what it sent and records the outcome its
  // answer settles before the interruption is seen, so its report knows the outcome of every request it sent. The
  // schedule is asked in the same step, so a failure it ends on is recorded too. An error to be retried, or a
  // batch's refusal that sends its statements alone, settles nothing: a unit interrupted then is unfinished, as one
  // interrupted while a retry sleeps.
  const attempt: Effect.Effect<Next, never, Session> = Effect.uninterruptible(
    Effect.matchEffect(request, {
      onSuccess: (rows) => {
        for (const entry of unit) record.succeeded(entry.index, rows)
        return Effect.undefined
      },
      onFailure: (error): Effect.Effect<Next> => {
        if (retried && error.isRetryable) return decide(error)
        // A batch refused before anything of it was applied may be refused for one statement or for the mix: sent
        // again one by one, each gets its own outcome, and sending again cannot apply anything twice.
        if (unit.length > 1 && refusedBeforeApplying(error)) return Effect.succeed("split")
        recordFailures(unit, error, record)
        return Effect.undefined
      }
    })
  )
  const attempts: Effect.Effect<void, never, Session> = Effect.flatMap(attempt, (next) =>
    next === undefined
      ? Effect.void
      : next === "split"
        ? Effect.forEach(unit, (entry) => runUnit([entry], retry, record), { discard: true })
        : Effect.andThen(Effect.sleep(next), attempts)
  )
  return attempts
}

/** Runs a unit and gives its outcomes, in input order. */
const outcomesOf = <A, I, E>(
  unit: Unit<A, I, E>,
  retry: Schedule.Schedule<unknown, CassandraError.CassandraError> | undefined
): Effect.Effect<ReadonlyArray<Outcome<A, I, E | CassandraError.CassandraError>>, never, Session> =>
  Effect.suspend(() => {
    const outcomes: Array<Outcome<A, I, E | CassandraError.CassandraError>> = []
    return Effect.as(runUnit(unit, retry, collectInto(outcomes)), outcomes)
  })

/**
 * Runs the statements a worker sends alone and does not retry, one at a time. Where it can, it sends each from the
 * driver's callback that answered the one before, with no fiber suspended per statement: the worker's fiber waits
 * once, until an input needs the fiber (one to group, encode or retry, or an answer that takes more than recording)
 * or none is left. Where it cannot (a span of the fiber would be seen, a session that is not this library's own),
 * each statement runs in the fiber, in one step with nothing built for it but the statement's request. Either way its
 * outcome, success or failure, is recorded where it is learnt.
 *
 * The driver cannot take a request back: an interrupted worker sends nothing more, waits for the request in flight,
 * and records its outcome before the interruption is seen.
 */
class AloneStatements<A, I, E> extends Effectable.Class<ReadonlyArray<A>, CassandraError.CassandraError, Session> {
  private readonly record: Recorder<A, I, E | CassandraError.CassandraError>
  /** Gives `take` the next input to send alone from a callback, taken from the job; false when it has none. */
  private readonly nextAlone: NextAlone<I>
  private index = 0
  private input: I | undefined
  private statement: Query.Statement<A> | undefined
  /** False from the first statement that could not be sent from a callback: the rest run in the fiber. */
  private fromCallbacks = true
  private fiber: Fiber.Fiber<unknown, unknown> | undefined
  private inFlight = false
  /** Wakes the fiber waiting while statements are sent from callbacks. */
  private resume: ((effect: Effect.Effect<void, never, Session>) => void) | undefined
  /** Set while an interrupted worker waits for its request in flight: ends the wait with its outcome recorded. */
  private stopping: ((effect: Effect.Effect<void>) => void) | undefined
  // Built once per worker: the statement matched is this object, which runs as the statement of the current input.
  private readonly attempt = Effect.uninterruptible(Effect.match(this, this))
  private readonly interrupted = Effect.callback<void>((resume) => {
    this.resume = undefined
    if (this.inFlight) this.stopping = resume
    else resume(Effect.void)
  })
  private readonly waiting = Effect.callback<void, never, Session>((resume) => {
    this.resume = resume
    this.send()
    return this.interrupted
  })
  private readonly sending = Effect.withFiber((fiber) => {
    this.fiber = fiber
    return this.waiting
  })
  constructor(record: Recorder<A, I, E | CassandraError.CassandraError>, nextAlone: NextAlone<I>) {
    super()
    this.record = record
    this.nextAlone = nextAlone
  }
  /** The statement of the input being run. */
  asEffect() {
    return this.statement as Query.Statement<A>
  }
  run(index: number, input: I, statement: Query.Statement<A>): Effect.Effect<void, never, Session> {
    this.index = index
    this.input = input
    this.statement = statement
    return this.fromCallbacks ? this.sending : this.attempt
  }
  // Properties, not methods: `Effect.match` promises to call them, not to call them on this object.
  readonly onSuccess = (rows: ReadonlyArray<A>) => {
    this.record.succeeded(this.index, rows)
  }
  readonly onFailure = (error: CassandraError.CassandraError) => {
    this.record.failed(this.index, this.input as I, error)
  }

  /**
   * Starts the current statement from a callback, or hands it to the fiber when it cannot be. A statement (or its
   * session) that throws when read has sent nothing: it fails alone, and the next one is started.
   */
  private send() {
    for (;;) {
      this.inFlight = true
      try {
        if (
          (this.statement as unknown as UnwaitedStart)[startUnwaited](
            this.fiber as Fiber.Fiber<unknown, unknown>,
            this.settle
          )
        )
          return
      } catch (thrown) {
        this.inFlight = false
        this.record.failed(this.index, this.input as I, inputThrew(thrown, this.index))
        if (this.takeNext()) continue
        return this.wake(Effect.void)
      }
      this.inFlight = false
      this.fromCallbacks = false
      return this.wake(this.attempt)
    }
  }

  /** The current statement's outcome: the next one is sent at once after a success, anything else goes to the fiber. */
  private readonly settle = (outcome: Effect.Effect<unknown, CassandraError.CassandraError>) => {
    this.inFlight = false
    const stopping = this.stopping
    if (stopping !== undefined) {
      this.stopping = undefined
      return stopping(this.recorded(outcome))
    }
    if (!(Exit.isExit(outcome) && Exit.isSuccess(outcome))) return this.wake(this.recorded(outcome))
    this.record.succeeded(this.index, outcome.value as ReadonlyArray<A>)
    if (this.takeNext()) this.send()
    else this.wake(Effect.void)
  }

  private readonly take = (index: number, input: I) => {
    this.index = index
    this.input = input
    this.statement = input as unknown as Query.Statement<A>
  }

  /**
   * Takes the next input to send from a callback. Nothing may throw into the driver's callback, where no fiber would
   * see it and the worker would wait for ever: an input that throws when read is left to the fiber's own step.
   */
  private takeNext(): boolean {
    try {
      return this.nextAlone(this.take)
    } catch {
      return false
    }
  }

  private recorded(outcome: Effect.Effect<unknown, CassandraError.CassandraError>): Effect.Effect<void> {
    return Effect.uninterruptible(
      Effect.match(outcome as Effect.Effect<ReadonlyArray<A>, CassandraError.CassandraError>, this)
    )
  }

  private wake(effect: Effect.Effect<void, never, Session>) {
    const resume = this.resume
    this.resume = undefined
    resume?.(effect)
  }
}

/**
 * Gives `take` the next input of the job to send alone from a callback, and takes it from the job; false, taking
 * nothing, when the next input needs the worker's fiber or none is left.
 */
type NextAlone<I> = (take: (index: number, input: I) => void) => boolean

/** The live counts of a job that keeps its outcomes for a report. */
interface Tally<A, I, E> {
  readonly total: number
  completed: number
  failed: number
  /** One byte per input: 1 once it succeeded. What `unfinished` resumes from, whatever else is kept. */
  readonly succeeded: Uint8Array
  readonly failures: Array<Failure<A, I, E>>
  readonly maxFailures: number
  /** One outcome per input by position, for a report; none for a summary. */
  readonly outcomes: Array<Outcome<A, I, E>> | undefined
}

const makeTally = <A, I, E>(total: number, options: ReportOptions): Tally<A, I, E> => {
  const summary = options.summary === true
  return {
    total,
    completed: 0,
    failed: 0,
    succeeded: new Uint8Array(total),
    failures: [],
    maxFailures: summary ? (options.maxFailures ?? defaultMaxFailures) : Number.POSITIVE_INFINITY,
    outcomes: summary ? undefined : new Array(total)
  }
}

const recordInto = <A, I, E>(tally: Tally<A, I, E>): Recorder<A, I, E> => ({
  succeeded: (index, rows) => {
    tally.completed++
    tally.succeeded[index] = 1
    if (tally.outcomes !== undefined) tally.outcomes[index] = success(index, rows)
  },
  failed: (index, input, error) => {
    tally.completed++
    tally.failed++
    const kept = tally.failures.length < tally.maxFailures
    if (!kept && tally.outcomes === undefined) return
    const outcome = failure<A, I, E>(index, input, error)
    if (kept) tally.failures.push(outcome)
    if (tally.outcomes !== undefined) tally.outcomes[index] = outcome
  }
})

/** Where `unfinished` finds a job's inputs and which of them succeeded; a symbol keeps it out of JSON and keys. */
const ResumeFrom = Symbol.for("effect-cassandra/BatchJob/ResumeFrom")

interface ResumeState<I> {
  readonly inputs: ReadonlyArray<I>
  readonly succeeded: Uint8Array
}

const byIndex = (a: { readonly index: number }, b: { readonly index: number }) => a.index - b.index

const summaryOf = <A, I, E>(
  tally: Tally<A, I, E>,
  inputs: ReadonlyArray<I>,
  interrupted: boolean
): Summary<A, I, E> => {
  const resumeState: ResumeState<I> = { inputs, succeeded: tally.succeeded }
  const summary = {
    total: tally.total,
    succeeded: tally.completed - tally.failed,
    failed: tally.failed,
    failures: tally.failures.slice().sort(byIndex),
    interrupted,
    ...(tally.outcomes === undefined
      ? {}
      : { outcomes: interrupted ? tally.outcomes.filter((outcome) => outcome !== undefined) : tally.outcomes }),
    [ResumeFrom]: resumeState
  }
  return summary
}

/**
 * How a job turns an input into a statement: an effect that encodes it, for a schema job; `undefined` for a statement
 * job, whose inputs are their own statements, known without running anything.
 */
type EntryOf<A, I, E, R> = ((input: I, index: number) => Effect.Effect<Entry<A, I, E>, never, R>) | undefined

/** The entry of an input of a statement job: the input is the statement. */
const statementEntry = <A, I, E>(input: I, index: number): Entry<A, I, E | CassandraError.CassandraError> =>
  entryFor(index, input, input, "input")

/**
 * Runs every input of an array on `concurrency` workers, each a loop that takes the next unit as it finishes one, so
 * nothing is built for an input before a worker gets near it: with `partitionKey`, a worker that finds no unit left
 * groups the next window of inputs. A statement sent alone is answered in one step, unless it is retried.
 */
const runJob = <A, I, E, R>(
  inputs: ReadonlyArray<I>,
  entryOf: EntryOf<A, I, E, R>,
  options: Options<A>,
  tally: Tally<A, I, E | CassandraError.CassandraError>
): Effect.Effect<void, never, R | Session> => {
  const record = recordInto(tally)
  const partitionKey = options.partitionKey
  const maxBatchSize = options.maxBatchSize ?? defaultMaxBatchSize
  let position = 0
  let grouped: Array<Unit<A, I, E | CassandraError.CassandraError>> = []
  let groupedTaken = 0
  // A schema job's window is encoded by effects, during which its worker may yield: a worker that finds nothing to
  // take while a window is being built waits for it instead of ending, so the job keeps `concurrency` requests in
  // flight. Each built window opens the latch the waiters of its time hold, and later waiters get a new one.
  let windowsBuilding = 0
  let windowBuilt = Latch.makeUnsafe(false)
  const nextWindow = (
    partitionKey: (statement: Query.Statement<A>) => string | undefined
  ): Effect.Effect<Unit<A, I, E | CassandraError.CassandraError> | undefined, never, R> => {
    const from = position
    position = Math.min(inputs.length, from + maxWindow)
    const indices = Array.from({ length: position - from }, (_, offset) => from + offset)
    const entries: Effect.Effect<ReadonlyArray<Entry<A, I, E | CassandraError.CassandraError>>, never, R> = entryOf ===
    undefined
      ? Effect.sync(() => indices.map((index) => statementEntry<A, I, E>(inputs[index] as I, index)))
      : Effect.forEach(indices, (index) => entryOf(inputs[index] as I, index))
    windowsBuilding++
    return Effect.map(entries, (entries) => {
      const [first, ...rest] = toUnits(entries, partitionKey, maxBatchSize)
      // Another worker may have grouped a window meanwhile: units are queued, never replaced.
      if (groupedTaken === grouped.length) {
        grouped = rest
        groupedTaken = 0
      } else {
        grouped.push(...rest)
      }
      // Opened once the units are queued: waiters may be resumed at once.
      windowsBuilding--
      const built = windowBuilt
      windowBuilt = Latch.makeUnsafe(false)
      built.openUnsafe()
      return first
    })
  }
  const retry = options.retry
  // Throws for a statement whose text or options throw when read (it then fails alone).
  const isSentAlone = (input: I) => Query.isStatement(input) && !isRetried(input as Query.Statement<A>, retry)
  // Inputs that are statements sent alone and not retried are taken straight from a callback; the others need a fiber.
  const nextAlone: NextAlone<I> =
    entryOf === undefined && partitionKey === undefined
      ? (take) => {
          if (position >= inputs.length) return false
          const input = inputs[position] as I
          let sentAlone = false
          try {
            sentAlone = isSentAlone(input)
          } catch {
            // Left to the fiber's own step, which fails it alone.
          }
          if (!sentAlone) return false
          take(position++, input)
          return true
        }
      : () => false
  const worker = (): Effect.Effect<void, never, R | Session> => {
    const alone = new AloneStatements<A, I, E>(record, nextAlone)
    const runEntry = (entry: Entry<A, I, E | CassandraError.CassandraError>) =>
      entry.statement === undefined || isRetried(entry.statement, retry)
        ? runUnit<A, I, E | CassandraError.CassandraError>([entry], retry, record)
        : alone.run(entry.index, entry.input, entry.statement)
    const runGrouped = (unit: Unit<A, I, E | CassandraError.CassandraError>) =>
      unit.length === 1
        ? runEntry(unit[0] as Entry<A, I, E | CassandraError.CassandraError>)
        : runUnit<A, I, E | CassandraError.CassandraError>(unit, retry, record)
    const next = (): Effect.Effect<void, never, R | Session> => {
      if (groupedTaken < grouped.length) {
        return runGrouped(grouped[groupedTaken++] as Unit<A, I, E | CassandraError.CassandraError>)
      }
      if (partitionKey !== undefined) {
        if (position >= inputs.length) return windowBuilt.await
        return Effect.flatMap(nextWindow(partitionKey), (unit) => (unit === undefined ? Effect.void : runGrouped(unit)))
      }
      const index = position++
      const input = inputs[index] as I
      if (entryOf !== undefined) return Effect.flatMap(entryOf(input, index), runEntry)
      let sentAlone: boolean
      try {
        sentAlone = isSentAlone(input)
      } catch (thrown) {
        record.failed(index, input, inputThrew(thrown, index))
        return Effect.void
      }
      return sentAlone ? alone.run(index, input, input as Query.Statement<A>) : runEntry(statementEntry(input, index))
    }
    return Effect.whileLoop({
      while: () => groupedTaken < grouped.length || position < inputs.length || windowsBuilding > 0,
      body: next,
      step: constVoid
    })
  }
  const workers = Math.min(options.concurrency ?? defaultConcurrency, inputs.length)
  return Effect.forEach(Array.from({ length: workers }), worker, {
    concurrency: "unbounded",
    discard: true
  })
}

const runWith = <A, I, E, R>(
  inputs: ReadonlyArray<I>,
  entryOf: EntryOf<A, I, E, R>,
  options: Options<A> & ReportOptions
) =>
  Effect.suspend(() => {
    const invalid = invalidOptions(options)
    if (invalid !== undefined) return Effect.fail(invalid)
    const tally = makeTally<A, I, E | CassandraError.CassandraError>(inputs.length, options)
    return Effect.map(runJob(inputs, entryOf, options, tally), () => summaryOf(tally, inputs, false))
  })

const startWith = <A, I, E, R>(
  inputs: ReadonlyArray<I>,
  entryOf: EntryOf<A, I, E, R>,
  options: Options<A> & ReportOptions & ProgressOptions
) =>
  Effect.gen(function* () {
    const invalid = invalidOptions(options)
    if (invalid !== undefined) return yield* Effect.fail(invalid)
    const tally = makeTally<A, I, E | CassandraError.CassandraError>(inputs.length, options)
    const fiber = yield* Effect.forkScoped(runJob(inputs, entryOf, options, tally))
    const startedAt = performance.now()
    let previous = { at: startedAt, completed: 0 }
    const sample = Effect.sync((): Progress => {
      const now = performance.now()
      // Asked of the fiber, not set by a finalizer: a job interrupted before it ran never runs its finalizers.
      const done = fiber.pollUnsafe() !== undefined
      const completed = tally.completed
      const sinceStart = (now - startedAt) / 1000
      const sincePrevious = (now - previous.at) / 1000
      const progress: Progress = {
        total: inputs.length,
        completed,
        failed: tally.failed,
        elapsed: Duration.millis(now - startedAt),
        rate: sinceStart > 0 ? completed / sinceStart : 0,
        currentRate: sincePrevious > 0 ? (completed - previous.completed) / sincePrevious : 0,
        done
      }
      previous = { at: now, completed }
      return progress
    })
    const report = Effect.flatMap(Fiber.await(fiber), (exit) =>
      Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)
        ? Effect.sync(() => summaryOf(tally, inputs, !Exit.isSuccess(exit)))
        : Effect.failCause(exit.cause)
    )
    return {
      progress: Stream.fromEffectSchedule(sample, Schedule.spaced(options.progressInterval ?? "1 second")).pipe(
        Stream.takeUntil((progress) => progress.done)
      ),
      report,
      interrupt: Effect.andThen(Fiber.interrupt(fiber), report)
    }
  })

const streamWith = <A, I, E, R, SE, SR>(
  inputs: Stream.Stream<I, SE, SR>,
  entryOf: EntryOf<A, I, E, R>,
  options: Options<A>
): Stream.Stream<
  Outcome<A, I, E | CassandraError.CassandraError>,
  SE | CassandraError.CassandraError,
  SR | R | Session
> => {
  const invalid = invalidOptions(options)
  if (invalid !== undefined) return Stream.fail(invalid)
  const partitionKey = options.partitionKey
  const maxBatchSize = options.maxBatchSize ?? defaultMaxBatchSize
  const entries: Stream.Stream<Entry<A, I, E | CassandraError.CassandraError>, SE, SR | R> = entryOf === undefined
    ? Stream.map(inputs, statementEntry<A, I, E>)
    : Stream.mapEffect(inputs, entryOf)
  const units: Stream.Stream<Unit<A, I, E | CassandraError.CassandraError>, SE, SR | R> = partitionKey === undefined
    ? Stream.map(entries, (entry) => [entry])
    : entries.pipe(
        Stream.groupedWithin(maxWindow, options.maxGroupingDelay ?? defaultMaxGroupingDelay),
        Stream.map((window) => toUnits(window, partitionKey, maxBatchSize)),
        Stream.flattenIterable
      )
  const outcomes = Stream.mapEffect(units, (unit) => outcomesOf(unit, options.retry), {
    concurrency: options.concurrency ?? defaultConcurrency
  })
  if (partitionKey === undefined) return Stream.flattenIterable(outcomes)
  // Units come in the order of their first input but hold later ones too: an outcome waits until every earlier
  // one was emitted, which holds at most the windows in flight.
  return Stream.mapAccum(
    outcomes,
    () => ({ next: 0, waiting: new Map<number, Outcome<A, I, E | CassandraError.CassandraError>>() }),
    (state, unit) => {
      for (const outcome of unit) state.waiting.set(outcome.index, outcome)
      const ready: Array<Outcome<A, I, E | CassandraError.CassandraError>> = []
      for (
        let outcome = state.waiting.get(state.next);
        outcome !== undefined;
        outcome = state.waiting.get(state.next)
      ) {
        state.waiting.delete(state.next)
        state.next++
        ready.push(outcome)
      }
      return [state, ready] as const
    }
  )
}

/**
 * Runs every statement and returns one outcome per statement (or, with `summary: true`, counts and the first
 * failures); a failed statement does not stop the others, nor does an input that is not a statement (from a caller
 * without type checks): it fails alone with a `Configuration` reason. Statements are taken from the array as places
 * free up, so the job holds per statement only what it reports. To resume after failures, run `unfinished(report)`.
 * Invalid options (a concurrency or `maxBatchSize` that is not a whole number of at least 1, a negative or
 * fractional `maxFailures`, a negative or endless `maxGroupingDelay`) fail the job with a `Configuration` reason
 * before anything runs.
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
 *   // A job too large to keep an outcome per statement: counts and at most 100 failures.
 *   const summary = yield* BatchJob.run(inserts, { summary: true, maxFailures: 100 })
 *   yield* Effect.log(`${summary.succeeded} of ${summary.total} written`)
 * })
 * ```
 *
 * @since 0.1.0
 * @category execution
 */
export function run<A>(
  statements: ReadonlyArray<Query.Statement<A>>,
  options: Options<A> & ReportOptions & { readonly summary: true }
): Effect.Effect<Summary<A>, CassandraError.CassandraError, Session>
export function run<A>(
  statements: ReadonlyArray<Query.Statement<A>>,
  options?: Options<A> & ReportOptions & { readonly summary?: false | undefined }
): Effect.Effect<Report<A>, CassandraError.CassandraError, Session>
export function run<A>(
  statements: ReadonlyArray<Query.Statement<A>>,
  options: Options<A> & ReportOptions = {}
): Effect.Effect<Summary<A>, CassandraError.CassandraError, Session> {
  return runWith<A, Query.Statement<A>, never, never>(statements, undefined, options)
}

/**
 * Starts a job in the background of the current scope and returns its progress, its report and a way to stop it.
 * Closing the scope (or SIGINT through `NodeRuntime.runMain`) interrupts the job: it starts nothing more, waits for
 * the requests it sent, and `report` then returns the partial report (`interrupted: true`) whose `unfinished`
 * inputs resume it exactly: none that succeeded, every one that failed or never started. Invalid options (as for
 * `run`, or a `progressInterval` that is not above 0 and finite) fail it before it starts.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { BatchJob, Query } from "effect-cassandra"
 *
 * declare const inserts: ReadonlyArray<Query.Statement>
 *
 * const program = Effect.gen(function* () {
 *   const job = yield* Effect.scoped(BatchJob.start(inserts, { summary: true }))
 *   // The scope closed: the job was interrupted, and its report says what is left to do.
 *   const report = yield* job.report
 *   if (report.interrupted) yield* BatchJob.run(BatchJob.unfinished(report), { summary: true })
 * })
 * ```
 *
 * @since 0.1.0
 * @category execution
 */
export function start<A>(
  statements: ReadonlyArray<Query.Statement<A>>,
  options: Options<A> & ReportOptions & ProgressOptions & { readonly summary: true }
): Effect.Effect<Job<Summary<A>>, CassandraError.CassandraError, Session | Scope.Scope>
export function start<A>(
  statements: ReadonlyArray<Query.Statement<A>>,
  options?: Options<A> & ReportOptions & ProgressOptions & { readonly summary?: false | undefined }
): Effect.Effect<Job<Report<A>>, CassandraError.CassandraError, Session | Scope.Scope>
export function start<A>(
  statements: ReadonlyArray<Query.Statement<A>>,
  options: Options<A> & ReportOptions & ProgressOptions = {}
): Effect.Effect<Job<Summary<A>>, CassandraError.CassandraError, Session | Scope.Scope> {
  return startWith<A, Query.Statement<A>, never, never>(statements, undefined, options)
}

/**
 * Runs a stream of statements with bounded concurrency and emits one outcome per statement, in input order; `index`
 * counts from 0 in the stream. With `partitionKey`, statements are grouped into batches within windows of 1,024
 * statements or `maxGroupingDelay`, whichever fills first. To resume, restart the source after the highest index up
 * to which every outcome was seen: statements sent but not yet emitted when the stream stopped then run again, so
 * declare statements idempotent where that matters. Invalid options fail the stream with a `Configuration` reason.
 *
 * @since 0.1.0
 * @category execution
 */
export const stream = <A, E, R>(
  statements: Stream.Stream<Query.Statement<A>, E, R>,
  options: Options<A> = {}
): Stream.Stream<Outcome<A>, E | CassandraError.CassandraError, R | Session> =>
  streamWith<A, Query.Statement<A>, never, never, E, R>(statements, undefined, options)

/**
 * The failure of an input of a schema job: its Schema could not encode it (a `CqlSchemaError`, which never holds
 * the value), or its statement failed.
 *
 * @since 0.1.0
 * @category models
 */
export type SchemaJobError = CassandraError.CassandraError | CqlSchemaError

/**
 * A job over values checked and encoded by a Schema: `run`, `start` and `stream` as for statements, taking values.
 * A value its Schema refuses fails alone, as a `Failure` whose `input` is the value and whose error is a
 * `CqlSchemaError`; `unfinished` gives values.
 *
 * @since 0.1.0
 * @category models
 */
export interface SchemaJob<I, R> {
  /** Encodes and runs every value, as `BatchJob.run`. */
  readonly run: {
    (
      inputs: ReadonlyArray<I>,
      options: Options<unknown> & ReportOptions & { readonly summary: true }
    ): Effect.Effect<Summary<unknown, I, SchemaJobError>, CassandraError.CassandraError, Session | R>
    (
      inputs: ReadonlyArray<I>,
      options?: Options<unknown> & ReportOptions & { readonly summary?: false | undefined }
    ): Effect.Effect<Report<unknown, I, SchemaJobError>, CassandraError.CassandraError, Session | R>
  }
  /** Encodes and runs every value in the background of the current scope, as `BatchJob.start`. */
  readonly start: {
    (
      inputs: ReadonlyArray<I>,
      options: Options<unknown> & ReportOptions & ProgressOptions & { readonly summary: true }
    ): Effect.Effect<Job<Summary<unknown, I, SchemaJobError>>, CassandraError.CassandraError, Session | Scope.Scope | R>
    (
      inputs: ReadonlyArray<I>,
      options?: Options<unknown> & ReportOptions & ProgressOptions & { readonly summary?: false | undefined }
    ): Effect.Effect<Job<Report<unknown, I, SchemaJobError>>, CassandraError.CassandraError, Session | Scope.Scope | R>
  }
  /** Encodes and runs a stream of values, one outcome per value in input order, as `BatchJob.stream`. */
  readonly stream: <SE, SR>(
    inputs: Stream.Stream<I, SE, SR>,
    options?: Options<unknown>
  ) => Stream.Stream<Outcome<unknown, I, SchemaJobError>, SE | CassandraError.CassandraError, SR | R | Session>
}

/**
 * A batch job over values: each value is encoded by `Request`, as `CqlSchema` queries encode theirs, and run as the
 * statement `execute` builds from it.
 *
 * @example
 * ```ts
 * import { BigDecimal, Effect, Schema } from "effect"
 * import { BatchJob, CqlType, Query } from "effect-cassandra"
 *
 * const importPrices = BatchJob.schema({
 *   Request: Schema.Struct({ sku: CqlType.Text, price: CqlType.Decimal }),
 *   execute: (row) => Query.cql`INSERT INTO shop.prices (sku, price) VALUES (${row.sku}, ${row.price})`
 * })
 *
 * const program = Effect.gen(function* () {
 *   const report = yield* importPrices.run([{ sku: "A-1", price: BigDecimal.fromStringUnsafe("9.99") }])
 *   for (const failure of report.failures) yield* Effect.logWarning(failure.error.message)
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const schema = <Req extends Schema.Top>(request: {
  readonly Request: Req
  readonly execute: (request: Req["Encoded"]) => Query.Statement<unknown>
}): SchemaJob<Req["Type"], Req["EncodingServices"]> => {
  const encode = encoder(request.Request)
  const entryOf = (
    input: Req["Type"],
    index: number
  ): Effect.Effect<Entry<unknown, Req["Type"], SchemaJobError>, never, Req["EncodingServices"]> =>
    Effect.match(encode(input), {
      onSuccess: (encoded): Entry<unknown, Req["Type"], SchemaJobError> => {
        try {
          return entryFor(index, input, request.execute(encoded), "execute function's result for the input")
        } catch (thrown) {
          return { index, input, statement: undefined, error: callbackThrew("execute function", thrown, index) }
        }
      },
      onFailure: (error) => ({ index, input, statement: undefined, error })
    })
  type Job = SchemaJob<Req["Type"], Req["EncodingServices"]>
  // One implementation serves both overloads: what it keeps follows `options.summary`, as the overloads say.
  return {
    run: ((inputs, options = {}) => runWith(inputs, entryOf, options)) as Job["run"],
    start: ((inputs, options = {}) => startWith(inputs, entryOf, options)) as Job["start"],
    stream: (inputs, options = {}) => streamWith(inputs, entryOf, options)
  }
}

/**
 * The inputs of a job that did not succeed, in input order: those that failed and, after an interruption, those
 * never started. It is the input of the job that resumes it. Give it the summary or report the job returned (or a
 * copy made by spreading it); for any other object it can only list the failures it holds.
 *
 * @since 0.1.0
 * @category execution
 */
export const unfinished = <A, I, E>(summary: Summary<A, I, E>): ReadonlyArray<I> => {
  const resumeState = (summary as { readonly [ResumeFrom]?: ResumeState<I> })[ResumeFrom]
  if (resumeState === undefined) return summary.failures.map((failure) => failure.input)
  return resumeState.inputs.filter((_, index) => resumeState.succeeded[index] === 0)
}

/**
 * Whether an outcome is a failure.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isFailure = <A, I, E>(outcome: Outcome<A, I, E>): outcome is Failure<A, I, E> => outcome._tag === "Failure"
