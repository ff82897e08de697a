/**
 * Attacks on the statements a BatchJob worker sends from the driver's callbacks (no fiber resumed per statement):
 * interruption at every step and while requests wait for throttle places, hostile inputs read inside the driver's
 * callback, and huge jobs mixing answers that come later with failures that come at once. Interruption while a
 * failure's cause is being learnt is in RequestRunner.start.attack.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as BatchJob from "effect-cassandra/BatchJob"
import * as CassandraError from "effect-cassandra/CassandraError"
import * as Query from "effect-cassandra/Query"
import { type ClientSessionOptions, Session } from "effect-cassandra/Session"
import {
  answerAll,
  endedOrRejected,
  type Held,
  runnerOver,
  sentAtLeast,
  until,
  watchRejections
} from "../support/requestRunner.ts"

/** A write of one key: not idempotent, so never retried, and sent from the callbacks whatever `retry` says. */
const insert = (key: number) => Query.cql`INSERT INTO t (k) VALUES (${key})`

/** The node's answer for keys 3 mod 4 (refused); the others get one row naming the key. */
const refusedKey = (key: number) =>
  key % 4 === 3 ? new Cassandra.errors.ResponseError(0x2200, "unconfigured table t") : undefined

interface StandIn {
  /** The driver's error for a request for `key`, or undefined for one row naming the key. */
  readonly errorFor?: (key: number) => Error | undefined
  /** Answers each request as it reaches the client (an already settled promise) instead of holding it. */
  readonly atOnce?: boolean
  /** Keys whose driver call throws before returning a promise. */
  readonly throwsFor?: (key: number) => boolean
  readonly session?: ClientSessionOptions
}

/**
 * A session over a stand-in client that holds every request until the test answers it, or answers it at once (an
 * already settled promise); `sent` lists the requests in the order they reached the client, each answered by its key
 * as `errorFor` says.
 */
const standInSession = ({
  errorFor = refusedKey,
  atOnce = false,
  throwsFor = () => false,
  session = {}
}: StandIn = {}) =>
  Effect.gen(function* () {
    const sent: Array<Held> = []
    const execute = (_query: string, params: ReadonlyArray<unknown>) => {
      if (throwsFor(params[0] as number)) throw new TypeError("driver bug")
      return new Promise((resolve, reject) => {
        const key = params[0] as number
        const answer = () => {
          const error = errorFor(key)
          if (error === undefined) resolve({ rows: [{ k: key }], info: {} })
          else reject(error)
        }
        sent.push({ key, answer })
        if (atOnce) answer()
      })
    }
    const client = { keyspace: undefined, execute, batch: execute } as unknown as Cassandra.Client
    return { session: { client, keyspace: undefined, ...(yield* runnerOver(client, session)) } as Session, sent }
  })

/** Answers every request, including those sent meanwhile, until `fiber` ends; gives its result. */
const answerUntilDone = <A, E>(sent: ReadonlyArray<Held>, fiber: Fiber.Fiber<A, E>) =>
  Effect.andThen(
    until(
      Effect.map(answerAll(sent), () => fiber.pollUnsafe() !== undefined),
      (done) => done
    ),
    Fiber.join(fiber)
  )

/**
 * Interleaved kinds of inputs: plain statements (sent from callbacks), inputs that are not statements (recorded by the
 * worker's fiber), and statements bound to a session whose `execute` is wrapped (run in the fiber from then on).
 */
const kindOf = (index: number) => (index % 5 === 4 ? "junk" : index % 5 === 2 ? "decorated" : "plain")

/** What a report must say of input `index`, as `[tag, rows or reason]`. */
const expectedOf = (index: number) =>
  kindOf(index) === "junk"
    ? ["Failure", "Configuration"]
    : refusedKey(index) === undefined
      ? ["Success", [{ k: index }]]
      : ["Failure", "Invalid"]

const actualOf = (outcome: BatchJob.Outcome<unknown, unknown, unknown>) =>
  outcome._tag === "Success"
    ? ["Success", outcome.rows]
    : ["Failure", CassandraError.isCassandraError(outcome.error) ? outcome.error.reason._tag : String(outcome.error)]

/** Checks every outcome of a report against its input, and `unfinished` against the outcomes. */
const checkOutcomes = (
  report: BatchJob.Report<unknown, unknown, unknown>,
  inputs: ReadonlyArray<unknown>,
  step = ""
) => {
  for (const outcome of report.outcomes) {
    assert.deepStrictEqual(actualOf(outcome), expectedOf(outcome.index), `${step}input ${outcome.index}`)
    if (outcome._tag === "Failure") assert.strictEqual(outcome.input, inputs[outcome.index])
  }
  assert.strictEqual(report.succeeded + report.failed, report.outcomes.length)
  const succeeded = new Set(report.outcomes.filter((o) => o._tag === "Success").map((o) => o.index))
  assert.deepStrictEqual(
    BatchJob.unfinished(report),
    inputs.filter((_, index) => !succeeded.has(index)),
    `${step}unfinished`
  )
}

describe("BatchJob from callbacks: interrupted", () => {
  const total = 15
  for (const concurrency of [1, 3]) {
    it.live(
      `after any number of answers: every answer recorded, nothing sent after, unfinished exact (concurrency ${concurrency})`,
      () =>
        Effect.gen(function* () {
          for (let answered = 0; answered <= total; answered++) {
            const { session, sent } = yield* standInSession()
            const decorated = yield* Query.template.pipe(
              Effect.provideService(Session, { ...session, execute: (request) => session.execute(request) })
            )
            const inputs: ReadonlyArray<unknown> = Array.from({ length: total }, (_, k) =>
              kindOf(k) === "junk"
                ? { k }
                : kindOf(k) === "decorated"
                  ? decorated`INSERT INTO t (k) VALUES (${k})`
                  : insert(k)
            )
            const job = yield* BatchJob.start(inputs as ReadonlyArray<Query.Statement>, { concurrency }).pipe(
              Effect.provideService(Session, session)
            )
            const statements = inputs.filter((_, index) => kindOf(index) !== "junk").length
            for (let index = 0; index < Math.min(answered, statements); index++) {
              yield* sentAtLeast(sent, index + 1)
              sent[index]?.answer()
            }
            // Started at once: the interruption lands before the driver's last answer reaches the request path.
            const interrupting = yield* Effect.forkChild(job.interrupt, { startImmediately: true })
            const sentAtInterruption = sent.length
            const report = yield* answerUntilDone(sent, interrupting)
            const step = `after ${answered} answers: `
            assert.strictEqual(sent.length, sentAtInterruption, `${step}a request was sent after the interruption`)
            assert.deepStrictEqual(
              report.outcomes.map((outcome) => outcome.index).filter((index) => kindOf(index) !== "junk"),
              sent.map((request) => request.key).sort((a, b) => a - b),
              `${step}the statements with an outcome are the ones sent`
            )
            checkOutcomes(report, inputs, step)
          }
        }).pipe(Effect.scoped)
    )
  }

  it.live(
    "while requests wait for throttle places: they are still sent, waited for and recorded, and nothing more",
    () =>
      Effect.gen(function* () {
        const { session, sent } = yield* standInSession({ session: { throttle: { maxInFlight: 1, maxQueued: 10 } } })
        const inputs = Array.from({ length: 6 }, (_, k) => insert(k))
        const job = yield* BatchJob.start(inputs, { concurrency: 3 }).pipe(Effect.provideService(Session, session))
        // One request holds the only place; the job's two other workers, started with it, wait for it.
        yield* sentAtLeast(sent, 1)
        const interrupting = yield* Effect.forkChild(job.interrupt, { startImmediately: true })
        const report = yield* answerUntilDone(sent, interrupting)
        // A request waiting for a place counts as sent (README, BatchJob): it goes out as places free up.
        assert.deepStrictEqual(
          sent.map((request) => request.key),
          [0, 1, 2]
        )
        assert.isTrue(report.interrupted)
        assert.deepStrictEqual(report.outcomes.map(actualOf), [
          ["Success", [{ k: 0 }]],
          ["Success", [{ k: 1 }]],
          ["Success", [{ k: 2 }]]
        ])
        assert.deepStrictEqual(BatchJob.unfinished(report), inputs.slice(3))
      }).pipe(Effect.scoped)
  )
})

describe("BatchJob from callbacks: hostile inputs read in the driver's callback", () => {
  /**
   * Runs `inputs` on a session answering every request at once until the job ends or a throw escapes into the
   * driver's callback; gives the rejections seen and the job's exit, if it ended.
   */
  const runWatched = (inputs: ReadonlyArray<Query.Statement>, options: BatchJob.Options<unknown>) =>
    Effect.gen(function* () {
      const rejections = yield* watchRejections
      const { session } = yield* standInSession({ atOnce: true })
      const running = yield* BatchJob.run(inputs, { ...options, concurrency: 1 }).pipe(
        Effect.provideService(Session, session),
        Effect.exit,
        Effect.forkChild
      )
      const ended = yield* endedOrRejected(running, rejections)
      return {
        rejections: rejections.map(String),
        exit: ended !== undefined && Exit.isSuccess(ended) ? ended.value : undefined
      }
    })

  it.live("a statement whose options cannot be read, under retry, after a statement sent from a callback", () =>
    Effect.gen(function* () {
      // `retry` makes the job ask each statement whether it is idempotent, which reads its text and options.
      const hostile = Object.defineProperty(insert(1), "options", {
        get() {
          throw new Error("options cannot be read")
        }
      })
      const inputs = [insert(0), hostile, insert(2)]
      const { rejections, exit } = yield* runWatched(inputs, { retry: Schedule.recurs(1) })
      assert.deepStrictEqual(rejections, [], "a throw reached the driver's callback: the job never ends")
      assert.isDefined(exit, "the job ended")
      assert.strictEqual(exit?._tag, "Success", "the hostile input fails alone, not the job")
      if (exit?._tag === "Success") {
        const [first, second, third] = exit.value.outcomes
        assert.deepStrictEqual(first?._tag === "Success" ? first.rows : first, [{ k: 0 }])
        assert.isTrue(second?._tag === "Failure" && second.input === hostile, "input 1 failed, with its input")
        assert.strictEqual(second?._tag === "Failure" ? second.error.reason._tag : undefined, "Configuration")
        assert.deepStrictEqual(third?._tag === "Success" ? third.rows : third, [{ k: 2 }])
      }
    }).pipe(Effect.scoped)
  )

  it.live(
    "a statement whose options cannot be read, sent from a callback: it fails alone, the next ones are sent",
    () =>
      Effect.gen(function* () {
        const hostile = Object.defineProperty(insert(1), "options", {
          get() {
            throw new Error("options cannot be read")
          }
        })
        const inputs = [insert(0), hostile, insert(2), insert(3)]
        const { rejections, exit } = yield* runWatched(inputs, {})
        assert.deepStrictEqual(rejections, [])
        assert.isTrue(exit !== undefined && Exit.isSuccess(exit), "the job ended")
        assert.deepStrictEqual(
          (exit !== undefined && Exit.isSuccess(exit) ? exit.value.outcomes : []).map((outcome) =>
            outcome._tag === "Success"
              ? outcome.rows
              : [outcome.index, outcome.error.reason._tag, outcome.input === hostile]
          ),
          [[{ k: 0 }], [1, "Configuration", true], [{ k: 2 }], [3, "Invalid", false]]
        )
      }).pipe(Effect.scoped)
  )

  it.live("inputs built lazily (a Proxy over the source rows) whose building throws for one bad row", () =>
    Effect.gen(function* () {
      // A job over many rows built on demand, without an array of every statement: the row at 1 cannot be built.
      const rows = [0, 1, 2]
      const inputs = new Proxy(rows, {
        get: (target, property, receiver) => {
          if (typeof property !== "string" || !/^\d+$/.test(property)) return Reflect.get(target, property, receiver)
          if (property === "1") throw new Error("row 1 cannot be built")
          return insert(target[Number(property)] as number)
        }
      }) as unknown as ReadonlyArray<Query.Statement>
      const { rejections, exit } = yield* runWatched(inputs, {})
      assert.deepStrictEqual(rejections, [], "a throw reached the driver's callback: the job never ends")
      assert.isDefined(exit, "the job ended")
    }).pipe(Effect.scoped)
  )
})

describe("BatchJob from callbacks: huge jobs", () => {
  it.live(
    "200,000 statements, each refused one sent from the callback that answered the one before: every outcome once",
    () =>
      Effect.gen(function* () {
        // Even keys are answered by an already settled promise; odd keys are refused before sending (an invalid
        // consistency), at once, in the callback of the success before; every 7th driver call throws instead.
        const { session, sent } = yield* standInSession({
          atOnce: true,
          errorFor: () => undefined,
          throwsFor: (key) => key % 7 === 0
        })
        const total = 200_000
        const inputs = Array.from({ length: total }, (_, k) =>
          k % 2 === 1 ? insert(k).withOptions({ consistency: "bogus" as "ONE" }) : insert(k)
        )
        const summary = yield* BatchJob.run(inputs, { concurrency: 1, summary: true, maxFailures: total }).pipe(
          Effect.provideService(Session, session)
        )
        const succeeded = (k: number) => k % 2 === 0 && k % 7 !== 0
        const expectedSucceeded = inputs.filter((_, k) => succeeded(k)).length
        assert.strictEqual(summary.succeeded, expectedSucceeded)
        assert.strictEqual(summary.failed, total - expectedSucceeded)
        assert.strictEqual(sent.length, expectedSucceeded, "each statement that could be sent reached the driver once")
        assert.deepStrictEqual(
          summary.failures.map((failure) => failure.index),
          inputs.map((_, k) => k).filter((k) => !succeeded(k))
        )
        assert.isTrue(summary.failures.every((failure) => failure.input === inputs[failure.index]))
      }),
    120_000
  )
})
