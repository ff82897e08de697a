/**
 * A BatchJob worker sends the statements it sends alone and does not retry from the driver's callbacks, one after
 * another, and hands to its fiber whatever needs one: inputs that are not plain statements, statements it retries,
 * statements of a session that is not this library's own, every statement when a span would be seen, and answers
 * that are not successes. These tests mix all of them in one job and check that each input is sent once and
 * recorded once, at its own index, and that a job whose session closes under it ends with every outcome known.
 */
import { assert, describe, it } from "@effect/vitest"
import type * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as BatchJob from "effect-cassandra/BatchJob"
import * as CassandraError from "effect-cassandra/CassandraError"
import * as Query from "effect-cassandra/Query"
import { Session } from "effect-cassandra/Session"
import { recordingTracer } from "../support/programs.ts"
import { runnerOver, until } from "../support/requestRunner.ts"

/**
 * A session over a stand-in client that answers every request with one row naming its key, after an immediate or at
 * once (an already settled promise), by key; `sent` lists the keys in the order they were sent.
 */
const answeringSession = (scope: Scope.Scope) =>
  Effect.gen(function* () {
    const sent: Array<number> = []
    const execute = (_query: string, params: ReadonlyArray<unknown>) => {
      const key = params[0] as number
      sent.push(key)
      const result = { rows: [{ k: key }], info: {} }
      return key % 2 === 0 ? Promise.resolve(result) : new Promise((resolve) => setImmediate(() => resolve(result)))
    }
    const client = { keyspace: undefined, execute, batch: execute } as unknown as Cassandra.Client
    const runner = yield* Scope.provide(runnerOver(client, {}), scope)
    const session: Session = { client, keyspace: undefined, ...runner }
    return { session, sent }
  })

const select = (key: number) => Query.cql`SELECT * FROM t WHERE k = ${key}`

/** What each input of `mixedInputs` is, by its index. */
type Kind = "plain" | "retried" | "junk" | "decorated" | "withOptions"

const kinds: ReadonlyArray<Kind> = ["plain", "retried", "junk", "decorated", "withOptions"]

const kindOf = (index: number): Kind => kinds[index % kinds.length] as Kind

/**
 * Inputs of every kind, interleaved: plain statements (sent from callbacks), idempotent statements under a retry
 * schedule, inputs that are not statements, statements bound to a session whose `execute` is wrapped (never sent from
 * a callback), and statements with options of their own. Input k is a request for key k.
 */
const mixedInputs = (count: number, decorated: Query.Template): ReadonlyArray<unknown> => {
  const inputOf: Record<Kind, (k: number) => unknown> = {
    plain: select,
    retried: (k) => select(k).withOptions({ idempotent: true }),
    junk: (k) => ({ k }),
    decorated: (k) => decorated`SELECT * FROM t WHERE k = ${k}`,
    withOptions: (k) => select(k).withOptions({ consistency: "ONE" })
  }
  return Array.from({ length: count }, (_, k) => inputOf[kindOf(k)](k))
}

/** Checks a report of `mixedInputs`: every statement succeeded with its own row, every other input failed alone. */
const checkMixedReport = (report: BatchJob.Report<unknown, unknown, unknown>, inputs: ReadonlyArray<unknown>) => {
  assert.isFalse(report.interrupted)
  assert.strictEqual(report.outcomes.length, inputs.length)
  report.outcomes.forEach((outcome, index) => {
    assert.strictEqual(outcome.index, index)
    if (kindOf(index) === "junk") {
      assert.strictEqual(outcome._tag, "Failure")
      if (outcome._tag === "Failure") assert.strictEqual(outcome.input, inputs[index])
    } else {
      assert.deepStrictEqual(outcome._tag === "Success" ? outcome.rows : outcome, [{ k: index }])
    }
  })
  const junk = inputs.filter((_, index) => kindOf(index) === "junk").length
  assert.strictEqual(report.failed, junk)
  assert.strictEqual(report.succeeded, inputs.length - junk)
}

const statementKeys = (count: number) => Array.from({ length: count }, (_, k) => k).filter((k) => kindOf(k) !== "junk")

describe("BatchJob statements sent from the driver's callbacks", () => {
  for (const concurrency of [1, 3, 256, 1_000]) {
    it.live(
      `mixed with inputs that need the fiber, each is sent once and recorded at its index (concurrency ${concurrency})`,
      () =>
        Effect.gen(function* () {
          const { session, sent } = yield* answeringSession(yield* Effect.scope)
          const throughDecorator: Array<string> = []
          const decoratedSession: Session = {
            ...session,
            execute: (request) => {
              throughDecorator.push(request.query)
              return session.execute(request)
            }
          }
          const decorated = yield* Query.template.pipe(Effect.provideService(Session, decoratedSession))
          const inputs = mixedInputs(500, decorated)
          const report = yield* BatchJob.run(inputs as ReadonlyArray<Query.Statement<unknown>>, {
            concurrency,
            retry: Schedule.recurs(2)
          }).pipe(Effect.provideService(Session, session))
          checkMixedReport(report, inputs)
          assert.deepStrictEqual(
            sent.slice().sort((a, b) => a - b),
            statementKeys(inputs.length)
          )
          assert.strictEqual(throughDecorator.length, inputs.filter((_, index) => kindOf(index) === "decorated").length)
        }).pipe(Effect.scoped)
    )
  }

  it.live("under a tracer, every statement still runs in its own span and is recorded at its index", () =>
    Effect.gen(function* () {
      const { session, sent } = yield* answeringSession(yield* Effect.scope)
      const { spans, tracer } = recordingTracer()
      const inputs = Array.from({ length: 300 }, (_, k) => select(k))
      const report = yield* BatchJob.run(inputs, { concurrency: 7 }).pipe(
        Effect.withTracer(tracer),
        Effect.provideService(Session, session)
      )
      assert.deepStrictEqual(
        report.outcomes.map((outcome) => (outcome._tag === "Success" ? outcome.rows : outcome)),
        inputs.map((_, k) => [{ k }])
      )
      assert.strictEqual(sent.length, inputs.length)
      assert.strictEqual(spans.filter((span) => span.attributes.get("db.operation.name") === "SELECT").length, 300)
      assert.isTrue(spans.every((span) => span.status._tag === "Ended"))
    }).pipe(Effect.scoped)
  )

  it.live(
    "a session closed under a running job: every input ends sent and answered, or failed unsent",
    () =>
      Effect.gen(function* () {
        const sessionScope = yield* Scope.make()
        const { session, sent } = yield* answeringSession(sessionScope)
        const inputs = Array.from({ length: 2_000 }, (_, k) => select(k))
        const running = yield* BatchJob.run(inputs, { concurrency: 64, summary: true, maxFailures: 100_000 }).pipe(
          Effect.provideService(Session, session),
          Effect.forkChild
        )
        yield* until(
          Effect.sync(() => sent.length),
          (count) => count >= 100
        )
        yield* Scope.close(sessionScope, Exit.void)
        const summary = yield* Fiber.join(running)
        assert.strictEqual(summary.total, inputs.length)
        assert.strictEqual(summary.succeeded, sent.length)
        assert.strictEqual(summary.failed, inputs.length - sent.length)
        assert.isAbove(summary.failed, 0)
        assert.isTrue(summary.failures.every((failure) => failure.error.reason._tag === "SessionClosed"))
        const answered = new Set(sent)
        assert.deepStrictEqual(
          BatchJob.unfinished(summary),
          inputs.filter((_, k) => !answered.has(k))
        )
      }),
    60_000
  )

  it.live(
    "a job of 20,000 statements refused before sending ends with every failure recorded",
    () =>
      Effect.gen(function* () {
        const sessionScope = yield* Scope.make()
        const { session, sent } = yield* answeringSession(sessionScope)
        yield* Scope.close(sessionScope, Exit.void)
        const inputs = Array.from({ length: 20_000 }, (_, k) => select(k))
        const summary = yield* BatchJob.run(inputs, { concurrency: 4, summary: true }).pipe(
          Effect.provideService(Session, session)
        )
        assert.strictEqual(sent.length, 0)
        assert.strictEqual(summary.failed, inputs.length)
        assert.strictEqual(summary.failures[0]?.error.reason._tag, "SessionClosed")
        assert.isTrue(CassandraError.isCassandraError(summary.failures[0]?.error))
      }),
    60_000
  )
})
