/**
 * The statements a BatchJob worker sends alone and does not retry, against stand-in sessions whose answer to each
 * request is decided by its key (and its session), so that every outcome can be checked against its own input:
 * its index, its rows or its error, its input, whatever the order in which the answers come back.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/testing/TestClock"
import * as BatchJob from "effect-cassandra/BatchJob"
import * as CassandraError from "effect-cassandra/CassandraError"
import * as Query from "effect-cassandra/Query"
import { Session } from "effect-cassandra/Session"
import { runnerOver } from "../support/requestRunner.ts"

/** The driver's answer to a request for `key`: an error for some keys, else one row naming the key and session. */
const driverErrorFor = (key: number): Error | undefined =>
  key % 7 === 3
    ? new Cassandra.errors.ResponseError(0x2200, "unconfigured table t")
    : key % 7 === 5
      ? new Cassandra.errors.ResponseError(0x1001, "overloaded")
      : undefined

const reasonFor = (key: number) => {
  const error = driverErrorFor(key)
  return error === undefined ? undefined : CassandraError.fromDriverError(error).reason._tag
}

interface Sent {
  readonly key: number
  readonly settle: () => void
}

/**
 * A session over a stand-in client answering each statement as `driverErrorFor` says. Answers come back out of
 * order (after a microtask, an immediate or a timer, by key); a held session keeps them until the test settles them,
 * and answers at once the requests sent after `release`.
 */
const keyedSession = (name: string, held = false) =>
  Effect.gen(function* () {
    const sent: Array<Sent> = []
    let holding = held
    const execute = (_query: string, params: ReadonlyArray<unknown>) =>
      new Promise((resolve, reject) => {
        const key = params[0] as number
        const settle = () => {
          const error = driverErrorFor(key)
          if (error === undefined) resolve({ rows: [{ k: key, session: name }], info: {} })
          else reject(error)
        }
        sent.push({ key, settle })
        if (holding) return
        if (key % 3 === 0) queueMicrotask(settle)
        else if (key % 3 === 1) setImmediate(settle)
        else setTimeout(settle, 1)
      })
    const client = { keyspace: undefined, execute, batch: execute } as unknown as Cassandra.Client
    const runner = yield* runnerOver(client, {})
    const session: Session = { client, keyspace: undefined, ...runner }
    return {
      session,
      sent,
      release: () => {
        holding = false
      }
    }
  })

const select = (key: number) => Query.cql`SELECT * FROM t WHERE k = ${key}`

type Expected = readonly [index: number, tag: "Success", rows: unknown] | readonly [number, "Failure", string, unknown]

/** What the report must say of input `index`, whose request is for `key` on session `name`. */
const expectedOf = (index: number, input: unknown, key: number, name: string): Expected => {
  const reason = reasonFor(key)
  return reason === undefined ? [index, "Success", [{ k: key, session: name }]] : [index, "Failure", reason, input]
}

const outcomeOf = (outcome: BatchJob.Outcome<unknown, unknown, unknown>): Expected =>
  outcome._tag === "Success"
    ? [outcome.index, "Success", outcome.rows]
    : [
        outcome.index,
        "Failure",
        CassandraError.isCassandraError(outcome.error) ? outcome.error.reason._tag : String(outcome.error),
        outcome.input
      ]

/** Checks a finished report against the inputs: every outcome at its index, with its own rows or input and error. */
const checkReport = (
  report: BatchJob.Report<unknown, unknown, unknown>,
  inputs: ReadonlyArray<unknown>,
  expected: ReadonlyArray<Expected>
) => {
  assert.isFalse(report.interrupted)
  assert.strictEqual(report.total, inputs.length)
  assert.deepStrictEqual(report.outcomes.map(outcomeOf), expected)
  for (const outcome of report.outcomes) {
    if (outcome._tag === "Failure") assert.strictEqual(outcome.input, inputs[outcome.index])
  }
  const failed = expected.filter((outcome) => outcome[1] === "Failure")
  assert.strictEqual(report.failed, failed.length)
  assert.strictEqual(report.succeeded, inputs.length - failed.length)
  assert.deepStrictEqual(report.failures.map(outcomeOf), failed)
  assert.deepStrictEqual(
    BatchJob.unfinished(report),
    failed.map(([index]) => inputs[index])
  )
}

const concurrencies = [1, 2, 256, 100_000]
const total = 300

describe("BatchJob statements sent alone: every outcome at its own index", () => {
  for (const concurrency of concurrencies) {
    it.live(`statements, interleaved with inputs that are not statements, at concurrency ${concurrency}`, () =>
      Effect.gen(function* () {
        const stub = yield* keyedSession("A")
        // Every 10th input is not a statement: it fails alone on the other path, between statements of one worker.
        const inputs = Array.from({ length: total }, (_, k) => (k % 10 === 9 ? { k } : select(k)))
        const report = yield* BatchJob.run(inputs as ReadonlyArray<Query.Statement>, { concurrency }).pipe(
          Effect.provideService(Session, stub.session)
        )
        checkReport(
          report,
          inputs,
          inputs.map((input, k) =>
            k % 10 === 9 ? [k, "Failure", "Configuration", input] : expectedOf(k, input, k, "A")
          )
        )
        assert.strictEqual(stub.sent.length, total - total / 10)
      }).pipe(Effect.scoped)
    )

    it.live(`the same statement objects repeated, at concurrency ${concurrency}`, () =>
      Effect.gen(function* () {
        const stub = yield* keyedSession("A")
        // Two shared objects, one answered with rows and one failing, between statements of their own.
        const succeeding = select(1)
        const failing = select(3)
        const keyOf = (k: number) => (k % 3 === 0 ? 1 : k % 3 === 1 ? 3 : 1000 + k)
        const inputs = Array.from({ length: total }, (_, k) =>
          k % 3 === 0 ? succeeding : k % 3 === 1 ? failing : select(keyOf(k))
        )
        const report = yield* BatchJob.run(inputs, { concurrency }).pipe(Effect.provideService(Session, stub.session))
        checkReport(
          report,
          inputs,
          inputs.map((input, k) => expectedOf(k, input, keyOf(k), "A"))
        )
        assert.strictEqual(stub.sent.length, total)
      }).pipe(Effect.scoped)
    )

    it.live(`statements bound to another session mixed with cql statements, at concurrency ${concurrency}`, () =>
      Effect.gen(function* () {
        const inContext = yield* keyedSession("A")
        const other = yield* keyedSession("B")
        const bound = yield* Effect.provideService(Query.template, Session, other.session)
        const isBound = (k: number) => k % 4 < 2
        const inputs = Array.from({ length: total }, (_, k) =>
          isBound(k) ? bound`SELECT * FROM t WHERE k = ${k}` : select(k)
        )
        const report = yield* BatchJob.run(inputs, { concurrency }).pipe(
          Effect.provideService(Session, inContext.session)
        )
        checkReport(
          report,
          inputs,
          inputs.map((input, k) => expectedOf(k, input, k, isBound(k) ? "B" : "A"))
        )
        assert.strictEqual(other.sent.length, total / 2)
        assert.strictEqual(inContext.sent.length, total / 2)
      }).pipe(Effect.scoped)
    )

    it.live(`a schema job, some values refused by its Schema, at concurrency ${concurrency}`, () =>
      Effect.gen(function* () {
        const stub = yield* keyedSession("A")
        const job = BatchJob.schema({
          Request: Schema.Struct({ k: Schema.Number, tag: Schema.String.check(Schema.isMaxLength(4)) }),
          execute: (row) => select(row.k)
        })
        const refused = (k: number) => k % 11 === 4
        const inputs = Array.from({ length: total }, (_, k) => ({ k, tag: refused(k) ? "too long" : "ok" }))
        const report = yield* job.run(inputs, { concurrency }).pipe(Effect.provideService(Session, stub.session))
        const expected = inputs.map(
          (input, k): Expected => (refused(k) ? [k, "Failure", "CqlSchemaError", input] : expectedOf(k, input, k, "A"))
        )
        assert.deepStrictEqual(
          report.outcomes.map((outcome) =>
            outcome._tag === "Failure" && !CassandraError.isCassandraError(outcome.error)
              ? [outcome.index, "Failure", outcome.error._tag, outcome.input]
              : outcomeOf(outcome)
          ),
          expected
        )
        assert.deepStrictEqual(
          BatchJob.unfinished(report),
          expected
            .filter((outcome) => outcome[1] === "Failure")
            .map(([index]) => inputs[index] as (typeof inputs)[number])
        )
        assert.strictEqual(stub.sent.length, inputs.filter((input) => !refused(input.k)).length)
      }).pipe(Effect.scoped)
    )
  }

  it.live("one job effect run twice at once gives each run its own outcomes", () =>
    Effect.gen(function* () {
      const stub = yield* keyedSession("A")
      const inputs = Array.from({ length: total }, (_, k) => select(k))
      const job = BatchJob.run(inputs, { concurrency: 16 })
      const reports = yield* Effect.all([job, job], { concurrency: 2 }).pipe(
        Effect.provideService(Session, stub.session)
      )
      for (const report of reports) {
        checkReport(
          report,
          inputs,
          inputs.map((input, k) => expectedOf(k, input, k, "A"))
        )
      }
    }).pipe(Effect.scoped)
  )
})

describe("BatchJob statements sent alone agree with statements that may be retried", () => {
  const statementOf = (k: number) =>
    k % 2 === 0 ? select(k) : Query.cql`INSERT INTO t (k) VALUES (${k})`.withOptions({ idempotent: k % 4 === 1 })
  for (const concurrency of concurrencies) {
    it.live(
      `a job gives the same outcomes with a retry schedule that never retries, at concurrency ${concurrency}`,
      () =>
        Effect.gen(function* () {
          const stub = yield* keyedSession("A")
          const inputs = Array.from({ length: total }, (_, k) => statementOf(k))
          const alone = yield* BatchJob.run(inputs, { concurrency }).pipe(Effect.provideService(Session, stub.session))
          const retried = yield* BatchJob.run(inputs, { concurrency, retry: Schedule.recurs(0) }).pipe(
            Effect.provideService(Session, stub.session)
          )
          const expected = inputs.map((input, k) => expectedOf(k, input, k, "A"))
          checkReport(alone, inputs, expected)
          checkReport(retried, inputs, expected)
          assert.strictEqual(stub.sent.length, 2 * total)
        }).pipe(Effect.scoped)
    )
  }

  it.live("a summary counts every input and keeps the first maxFailures failures, each with its input", () =>
    Effect.gen(function* () {
      const stub = yield* keyedSession("A")
      const inputs = Array.from({ length: total }, (_, k) => statementOf(k))
      const failing = inputs.flatMap((_, k) => (reasonFor(k) === undefined ? [] : [k]))
      for (const options of [{}, { retry: Schedule.recurs(0) }]) {
        for (const concurrency of concurrencies) {
          const summary = yield* BatchJob.run(inputs, { ...options, concurrency, summary: true, maxFailures: 5 }).pipe(
            Effect.provideService(Session, stub.session)
          )
          assert.strictEqual(summary.total, total)
          assert.strictEqual(summary.failed, failing.length)
          assert.strictEqual(summary.succeeded, total - failing.length)
          assert.strictEqual(summary.failures.length, 5)
          for (const failure of summary.failures) {
            assert.deepStrictEqual(
              outcomeOf(failure),
              expectedOf(failure.index, inputs[failure.index], failure.index, "A")
            )
          }
          if (concurrency === 1) {
            assert.deepStrictEqual(
              summary.failures.map((failure) => failure.index),
              failing.slice(0, 5)
            )
          }
          assert.deepStrictEqual(
            BatchJob.unfinished(summary),
            failing.map((k) => inputs[k] as Query.Statement)
          )
        }
      }
    }).pipe(Effect.scoped)
  )
})

/** Repeats `effect` (yielding between tries) until `done` holds of its result: no clock involved. */
const untilYielding = <A>(effect: Effect.Effect<A>, done: (a: A) => boolean): Effect.Effect<A> =>
  Effect.flatMap(effect, (a) =>
    done(a) ? Effect.succeed(a) : Effect.andThen(Effect.yieldNow, untilYielding(effect, done))
  )

describe("BatchJob statements sent alone, interrupted", () => {
  // A permutation of the requests in flight, so that answers come back in an order unrelated to the inputs.
  const shuffled = <A>(items: ReadonlyArray<A>) =>
    items.map((item, position) => [(position * 7919) % 101, item] as const).sort(([a], [b]) => a - b)

  // Each job's input k is sent as a request for key k.
  interface JobUnderTest {
    readonly inputs: ReadonlyArray<unknown>
    readonly start: Effect.Effect<
      BatchJob.Job<BatchJob.Report<unknown, unknown, unknown>>,
      CassandraError.CassandraError,
      Session | Scope.Scope
    >
  }
  const jobs: Record<string, () => JobUnderTest> = {
    statements: () => {
      const inputs = Array.from({ length: 200 }, (_, k) => select(k))
      return { inputs: inputs as ReadonlyArray<unknown>, start: BatchJob.start(inputs, { concurrency: 8 }) }
    },
    "statements, half of them idempotent, with a retry schedule": () => {
      // Idempotent statements go the retried way, the others alone, in the same workers.
      const inputs = Array.from({ length: 200 }, (_, k) =>
        Query.cql`INSERT INTO t (k) VALUES (${k})`.withOptions({ idempotent: k % 2 === 0 })
      )
      return {
        inputs: inputs as ReadonlyArray<unknown>,
        // A retry waits long enough to be interrupted whenever the interruption comes.
        start: BatchJob.start(inputs, { concurrency: 8, retry: Schedule.spaced("1 hour") })
      }
    },
    "a schema job": () => {
      const job = BatchJob.schema({ Request: Schema.Struct({ k: Schema.Number }), execute: (row) => select(row.k) })
      const inputs = Array.from({ length: 200 }, (_, k) => ({ k }))
      return { inputs: inputs as ReadonlyArray<unknown>, start: job.start(inputs, { concurrency: 8 }) }
    }
  }

  for (const [name, make] of Object.entries(jobs)) {
    it.live(
      `${name}: the report knows the outcome of every request sent, and unfinished resumes exactly the rest`,
      () =>
        Effect.gen(function* () {
          const stub = yield* keyedSession("A", true)
          const { inputs, start } = make()
          // An answer that would be retried settles nothing: that input is unfinished, without an outcome.
          const retriedAnswer = (key: number) =>
            name.includes("retry") && key % 2 === 0 && reasonFor(key) === "Overloaded"
          const report = yield* Effect.scoped(
            Effect.gen(function* () {
              const job = yield* start
              // Some answers come back, the workers send more, then the job is interrupted with 8 requests in flight.
              yield* untilYielding(
                Effect.sync(() => stub.sent.length),
                (sent) => sent === 8
              )
              for (const [, request] of shuffled(stub.sent.slice(0, 5))) request.settle()
              yield* untilYielding(
                Effect.sync(() => stub.sent.length),
                (sent) => sent === 13
              )
              const interrupting = yield* Effect.forkChild(job.interrupt)
              yield* Effect.yieldNow
              // Anything sent from now on is answered at once: the report must know its outcome too.
              stub.release()
              for (const [, request] of shuffled(stub.sent.slice(5))) request.settle()
              return yield* Fiber.join(interrupting)
            })
          ).pipe(Effect.provideService(Session, stub.session))
          assert.isTrue(report.interrupted)
          const keys = [...new Set(stub.sent.map((request) => request.key))]
          assert.isAtLeast(stub.sent.length, 13)
          assert.isBelow(keys.length, inputs.length)
          const settled = keys.filter((key) => !retriedAnswer(key)).sort((a, b) => a - b)
          assert.deepStrictEqual(
            report.outcomes.map((outcome) => {
              const [index, tag, third] = outcomeOf(outcome)
              return [index, tag, third]
            }),
            settled.map((key) => expectedOf(key, inputs[key], key, "A").slice(0, 3))
          )
          for (const outcome of report.outcomes) {
            if (outcome._tag === "Failure") assert.strictEqual(outcome.input, inputs[outcome.index])
          }
          const succeeded = new Set(settled.filter((key) => reasonFor(key) === undefined))
          assert.strictEqual(report.succeeded, succeeded.size)
          assert.strictEqual(report.failed, settled.length - succeeded.size)
          assert.deepStrictEqual(
            BatchJob.unfinished(report),
            inputs.filter((_, index) => !succeeded.has(index))
          )
        }).pipe(Effect.scoped)
    )
  }

  it.effect("a run under Effect.timeout waits for the requests it sent, sends no more and fails with the timeout", () =>
    Effect.gen(function* () {
      const stub = yield* keyedSession("A", true)
      const inputs = Array.from({ length: 50 }, (_, k) => select(k))
      const timed = yield* Effect.forkChild(
        BatchJob.run(inputs, { concurrency: 4 }).pipe(
          Effect.timeout("10 seconds"),
          Effect.provideService(Session, stub.session)
        )
      )
      yield* untilYielding(
        Effect.sync(() => stub.sent.length),
        (sent) => sent === 4
      )
      yield* TestClock.adjust("10 seconds")
      for (let turn = 0; turn < 20; turn++) yield* Effect.yieldNow
      // The requests in flight are waited for: the job has not ended while they are held.
      assert.isUndefined(timed.pollUnsafe())
      stub.release()
      for (const request of stub.sent.slice()) request.settle()
      const exit = yield* Fiber.await(timed)
      assert.isTrue(Exit.isFailure(exit) && Cause.hasFails(exit.cause) && !Cause.hasDies(exit.cause), String(exit))
      const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
      assert.isTrue(Cause.isTimeoutError(error), String(error))
      assert.strictEqual(stub.sent.length, 4)
    }).pipe(Effect.scoped)
  )

  it.live("a stream under Stream.take gives the first outcomes in input order, each with its own rows", () =>
    Effect.gen(function* () {
      const stub = yield* keyedSession("A")
      const inputs = Array.from({ length: 200 }, (_, k) => select(k))
      for (const concurrency of [1, 2, 256]) {
        const outcomes = yield* BatchJob.stream(Stream.fromIterable(inputs), { concurrency }).pipe(
          Stream.take(20),
          Stream.runCollect,
          Effect.provideService(Session, stub.session)
        )
        assert.deepStrictEqual(
          Array.from(outcomes, outcomeOf),
          inputs.slice(0, 20).map((input, k) => expectedOf(k, input, k, "A"))
        )
      }
    }).pipe(Effect.scoped)
  )
})
