/**
 * Attacks on the request path's `start` (a request started with no fiber waiting for it, settled through a plain
 * callback), as a BatchJob worker uses it and as the runner offers it: metrics counted once by outcome, deadlines
 * (the session's list and a statement's own timer) against late answers, throttle places, a node that refused to
 * prepare or is shutting down, drain on close, parity with the effect path for every kind of options, and throws that
 * could reach the driver's promise callback.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Scope from "effect/Scope"
import * as BatchJob from "effect-cassandra/BatchJob"
import * as CassandraError from "effect-cassandra/CassandraError"
import type * as Metrics from "effect-cassandra/Metrics"
import * as Query from "effect-cassandra/Query"
import { type ClientSessionOptions, type RequestOptions, Session } from "effect-cassandra/Session"
import { MetricsHub, makeMetricsHub } from "../../src/internal/metricsRecorder.ts"
import { type RequestRunner, sendInFiber } from "../../src/internal/requestRunner.ts"
import { recordingTracer } from "../support/programs.ts"
import {
  answerAll,
  countedRunner,
  endedOrRejected,
  type Held as HeldKey,
  holdEventLoopUntil,
  runnerOver,
  sentAtLeast,
  until,
  watchRejections
} from "../support/requestRunner.ts"
import { standInNode } from "../support/standInNode.ts"

const codes = Cassandra.types.responseErrorCodes
const selectText = "SELECT v FROM kv WHERE k = ?"

/** A write of one key: not idempotent, so never retried, and sent from the callbacks. */
const insert = (key: number) => Query.cql`INSERT INTO t (k) VALUES (${key})`

/** A request held by a stand-in client, with the driver options it was sent with and a way to fail it. */
interface Held extends HeldKey {
  readonly options: Cassandra.QueryOptions
  readonly fail: (error: unknown) => void
}

interface StandIn {
  readonly session?: ClientSessionOptions
  /** Counts its requests with a metrics layer (the client is then a real, never connected driver client). */
  readonly metrics?: boolean
  /** Answers each request as it reaches the client, by `errorFor`. */
  readonly atOnce?: boolean
  /** The driver's error for key `key`, or undefined for one row naming the key. */
  readonly errorFor?: (key: number) => unknown
  /** The driver's answer for a key that succeeds: one row naming it unless given. */
  readonly resultFor?: (key: number) => unknown
}

/** A session of this library over a stand-in client; `sent` lists the requests in the order they reached it. */
const standIn = ({ session = {}, metrics = false, atOnce = false, errorFor, resultFor }: StandIn = {}) =>
  Effect.gen(function* () {
    const sent: Array<Held> = []
    const execute = (_query: string, params: ReadonlyArray<unknown>, options: Cassandra.QueryOptions) =>
      new Promise((resolve, reject) => {
        const key = params[0] as number
        const answer = () => {
          const error = errorFor?.(key)
          if (error !== undefined) reject(error)
          else resolve(resultFor === undefined ? { rows: [{ k: key }], info: {}, columns: null } : resultFor(key))
        }
        sent.push({ key, options, answer, fail: reject })
        if (atOnce) answer()
      })
    const client = (
      metrics
        ? Object.assign(new Cassandra.Client({ contactPoints: ["192.0.2.1"], localDataCenter: "dc1" }), {
            execute,
            batch: execute
          })
        : { keyspace: undefined, execute, batch: execute }
    ) as Cassandra.Client
    const hub = metrics ? yield* makeMetricsHub("1 hour") : undefined
    const runner: RequestRunner = yield* hub === undefined
      ? runnerOver(client, session)
      : Effect.provideService(runnerOver(client, session), MetricsHub, hub)
    const built: Session = { client, keyspace: undefined, ...runner }
    const summary: Effect.Effect<Metrics.Summary> = hub?.summary ?? Effect.die("no metrics layer")
    return { session: built, runner, sent, summary }
  }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))

const rowsOf = (result: Cassandra.types.ResultSet) => result.rows ?? []

/** What `start` settled one request with so far: every outcome `settle` received, in order. */
interface Started {
  readonly started: boolean
  readonly settled: Array<Effect.Effect<unknown, CassandraError.CassandraError>>
  /** Outcomes received before `start` returned. */
  readonly settledAtOnce: number
}

/** Starts one request through the runner's `start` in the current fiber, recording every settle. */
const startOne = (runner: RequestRunner, options: RequestOptions, key: number, query = selectText) =>
  Effect.withFiber((fiber) => {
    const settled: Array<Effect.Effect<unknown, CassandraError.CassandraError>> = []
    const started = runner[sendInFiber].start(fiber, query, [key], options, rowsOf, (outcome) => {
      settled.push(outcome)
    })
    return Effect.succeed<Started>({ started, settled, settledAtOnce: settled.length })
  })

/** The outcome of a request started through `start`, once settled (run, when it is an effect). */
const outcomeOf = (started: Started) =>
  Effect.andThen(
    until(
      Effect.sync(() => started.settled.length),
      (count) => count > 0
    ),
    Effect.suspend(() => Effect.exit(started.settled[0] as Effect.Effect<unknown, CassandraError.CassandraError>))
  )

/** An exit as what a caller can tell of it: success with its value, or failure with its error's reason and message. */
const shapeOf = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isSuccess(exit)) return ["Success", exit.value]
  const error = Exit.findErrorOption(exit as Exit.Exit<never, unknown>)
  if (error._tag === "Some") {
    const value = error.value
    return CassandraError.isCassandraError(value)
      ? ["Failure", value.reason._tag, value.message]
      : ["Failure", "not a CassandraError", String(value)]
  }
  return ["Defect or interrupt", String(exit.cause)]
}

const reasonsOf = (report: BatchJob.Report<unknown, unknown, unknown>) =>
  report.outcomes.map((outcome) =>
    outcome._tag === "Success"
      ? ["Success", outcome.rows]
      : ["Failure", (outcome.error as CassandraError.CassandraError).reason._tag]
  )

describe("start: metrics", () => {
  it.live(
    "a job sent from callbacks counts each request once by outcome and latency, the same as the same job run in the fiber",
    () =>
      Effect.gen(function* () {
        const errorFor = (key: number) =>
          key % 4 === 3 ? new Cassandra.errors.ResponseError(codes.invalid, "unconfigured table t") : undefined
        // Keys 1 mod 4 have a consistency the session refuses before sending; the others reach the client.
        const inputsOf = (template: Query.Template) =>
          Array.from({ length: 16 }, (_, k) =>
            k % 4 === 1
              ? template`INSERT INTO t (k) VALUES (${k})`.withOptions({ consistency: "bogus" as "ONE" })
              : template`INSERT INTO t (k) VALUES (${k})`
          )
        const runJob = (decorate: boolean) =>
          Effect.gen(function* () {
            const { session, summary, sent } = yield* standIn({ metrics: true, atOnce: true, errorFor })
            // A session whose `execute` is wrapped runs each statement in the fiber, through that `execute`.
            const used: Session = decorate ? { ...session, execute: (request) => session.execute(request) } : session
            const template = yield* Query.template.pipe(Effect.provideService(Session, used))
            const report = yield* BatchJob.run(inputsOf(template), { concurrency: 2 }).pipe(
              Effect.provideService(Session, used)
            )
            yield* until(session.inFlight, (n) => n === 0)
            const counted = yield* summary
            return { report: reasonsOf(report), sent: sent.length, counted }
          })
        const fromCallbacks = yield* runJob(false)
        const inFiber = yield* runJob(true)
        assert.deepStrictEqual(fromCallbacks.report, inFiber.report)
        assert.strictEqual(fromCallbacks.sent, 12)
        const countsOf = (counted: Metrics.Summary) => ({
          requests: counted.requests,
          succeeded: counted.succeeded,
          failed: counted.failed,
          interrupted: counted.interrupted,
          latencies: counted.latency.count,
          errorsByReason: counted.errorsByReason
        })
        const counted = countsOf(fromCallbacks.counted)
        assert.deepStrictEqual(
          [counted.requests, counted.succeeded, counted.failed, counted.interrupted, counted.latencies],
          [16, 8, 8, 0, 16]
        )
        assert.strictEqual(counted.errorsByReason.Invalid, 4)
        assert.strictEqual(
          Object.values(counted.errorsByReason).reduce((a, b) => a + b, 0),
          8
        )
        assert.deepStrictEqual(countsOf(fromCallbacks.counted), countsOf(inFiber.counted))
      }).pipe(Effect.scoped)
  )

  it.live("a failure whose cause takes a round trip (the worker runs it) is counted once, by the node's answer", () =>
    Effect.gen(function* () {
      const unprepared = Object.assign(
        new Cassandra.errors.ResponseError(codes.unprepared, "Prepared query not found"),
        {
          queryId: Buffer.from("0102", "hex")
        }
      )
      const { session, summary, sent } = yield* standIn({
        metrics: true,
        atOnce: true,
        errorFor: (key) =>
          key === 1 ? new Cassandra.errors.NoHostAvailableError({ "10.0.0.1:9042": unprepared }) : undefined
      })
      const client = session.client as unknown as {
        metadata: { getPreparedById: unknown }
        hosts: { get: unknown }
      }
      client.metadata.getPreparedById = () => ({ query: "INSERT INTO t (k) VALUES (?)", keyspace: "ks" })
      client.hosts.get = () => ({
        borrowConnection: () => ({
          prepareOnceAsync: () =>
            Promise.reject(new Cassandra.errors.ResponseError(codes.invalid, "unconfigured table t"))
        })
      })
      const report = yield* BatchJob.run([insert(0), insert(1), insert(2)], { concurrency: 1 }).pipe(
        Effect.provideService(Session, session)
      )
      assert.deepStrictEqual(reasonsOf(report), [
        ["Success", [{ k: 0 }]],
        ["Failure", "Invalid"],
        ["Success", [{ k: 2 }]]
      ])
      assert.strictEqual(sent.length, 3)
      const counted = yield* summary
      assert.deepStrictEqual(
        [counted.requests, counted.succeeded, counted.failed, counted.latency.count],
        [3, 2, 1, 3],
        "each request counted once"
      )
      assert.deepStrictEqual(counted.errorsByReason, { Invalid: 1 })
      assert.strictEqual(yield* session.inFlight, 0)
    }).pipe(Effect.scoped)
  )
})

describe("start: metrics, continued", () => {
  it.live(
    "a job interrupted while its failure's cause is learnt: that failure is recorded and counted once, nothing more sent",
    () =>
      Effect.gen(function* () {
        const prepares: Array<(error: unknown) => void> = []
        const unprepared = Object.assign(
          new Cassandra.errors.ResponseError(codes.unprepared, "Prepared query not found"),
          {
            queryId: Buffer.from("0102", "hex")
          }
        )
        const { session, summary, sent } = yield* standIn({
          metrics: true,
          errorFor: (key) =>
            key === 1 ? new Cassandra.errors.NoHostAvailableError({ "10.0.0.1:9042": unprepared }) : undefined
        })
        const client = session.client as unknown as { metadata: { getPreparedById: unknown }; hosts: { get: unknown } }
        client.metadata.getPreparedById = () => ({ query: "INSERT INTO t (k) VALUES (?)", keyspace: "ks" })
        client.hosts.get = () => ({
          borrowConnection: () => ({ prepareOnceAsync: () => new Promise((_, reject) => prepares.push(reject)) })
        })
        const inputs = Array.from({ length: 4 }, (_, k) => insert(k))
        const job = yield* BatchJob.start(inputs, { concurrency: 1 }).pipe(Effect.provideService(Session, session))
        yield* sentAtLeast(sent, 1)
        sent[0]?.answer()
        yield* sentAtLeast(sent, 2)
        sent[1]?.answer()
        yield* until(
          Effect.sync(() => prepares.length),
          (count) => count === 1
        )
        const interrupting = yield* Effect.forkChild(job.interrupt, { startImmediately: true })
        prepares[0]?.(new Cassandra.errors.ResponseError(codes.invalid, "unconfigured table t"))
        const report = yield* Fiber.join(interrupting)
        assert.deepStrictEqual(reasonsOf(report), [
          ["Success", [{ k: 0 }]],
          ["Failure", "Invalid"]
        ])
        assert.strictEqual(sent.length, 2, "nothing sent after the interruption")
        assert.deepStrictEqual(BatchJob.unfinished(report), inputs.slice(1))
        const counted = yield* summary
        assert.deepStrictEqual([counted.requests, counted.succeeded, counted.failed, counted.interrupted], [2, 1, 1, 0])
        assert.deepStrictEqual(counted.errorsByReason, { Invalid: 1 })
      }).pipe(Effect.scoped)
  )

  it.live("in a traced fiber, start starts nothing, settles nothing and counts nothing", () =>
    Effect.gen(function* () {
      const { runner, summary, sent } = yield* standIn({ metrics: true, atOnce: true })
      const { tracer } = recordingTracer()
      const started = yield* startOne(runner, {}, 1).pipe(Effect.withTracer(tracer))
      const refusedOptions = yield* startOne(runner, { consistency: "bogus" as "ONE" }, 2).pipe(
        Effect.withTracer(tracer)
      )
      assert.deepStrictEqual(
        [started.started, started.settled.length, refusedOptions.started, refusedOptions.settled.length],
        [false, 0, false, 0]
      )
      assert.strictEqual(sent.length, 0)
      assert.strictEqual(yield* runner.inFlight, 0)
      assert.strictEqual((yield* summary).requests, 0)
    }).pipe(Effect.scoped)
  )
})

describe("start: deadlines", () => {
  for (const [name, sessionOptions, statementOptions] of [
    ["the session's default timeout (its deadline list)", { requestTimeout: "30 millis" }, {}],
    ["a statement's own timeout (its own timer)", { requestTimeout: "1 hour" }, { timeout: "30 millis" }]
  ] as const) {
    it.live(`${name}: each request settles once with a timeout; late answers add nothing, places come back once`, () =>
      Effect.gen(function* () {
        const { session, summary, sent } = yield* standIn({
          metrics: true,
          session: { ...sessionOptions, throttle: { maxInFlight: 7, maxQueued: 1 } }
        })
        const inputs = Array.from({ length: 7 }, (_, k) => insert(k).withOptions(statementOptions))
        // Three workers; no request answered before its deadline, each keeping its place until the driver answers.
        const report = yield* BatchJob.run(inputs, { concurrency: 3 }).pipe(Effect.provideService(Session, session))
        assert.deepStrictEqual(
          reasonsOf(report),
          inputs.map(() => ["Failure", "ClientTimeout"])
        )
        assert.strictEqual(sent.length, 7)
        assert.strictEqual(yield* session.inFlight, 7, "each request sent is in flight until answered")
        const beforeLate = yield* summary
        assert.deepStrictEqual([beforeLate.requests, beforeLate.failed, beforeLate.clientTimeouts], [7, 7, 7])
        // The driver answers them all, late.
        yield* answerAll(sent)
        yield* until(session.inFlight, (n) => n === 0)
        const afterLate = yield* summary
        assert.deepStrictEqual(
          [afterLate.requests, afterLate.succeeded, afterLate.failed, afterLate.latency.count],
          [7, 0, 7, 7],
          "a late answer is counted nowhere"
        )
        // Seven places, given back once each: seven requests go out at once, one waits, the next is refused.
        const before = sent.length
        const runner = session as unknown as RequestRunner
        const fresh: Array<Started> = []
        for (let k = 100; k < 109; k++) fresh.push(yield* startOne(runner, { timeout: "1 hour" }, k))
        assert.strictEqual(sent.length - before, 7, "requests sent at once: the throttle's places")
        assert.deepStrictEqual(
          fresh.map((started) => started.settledAtOnce),
          [0, 0, 0, 0, 0, 0, 0, 0, 1]
        )
        assert.strictEqual(shapeOf(yield* outcomeOf(fresh[8] as Started))[1], "Throttled")
        yield* answerAll(sent)
        yield* sentAtLeast(sent, before + 8)
        yield* answerAll(sent)
        for (const started of fresh) yield* outcomeOf(started)
        assert.deepStrictEqual(
          fresh.map((started) => started.settled.length),
          fresh.map(() => 1),
          "each settled exactly once"
        )
        yield* until(session.inFlight, (n) => n === 0)
      }).pipe(Effect.scoped)
    )
  }

  it.live("a request given its throttle place after its deadline (busy event loop) fails unsent, once", () =>
    Effect.gen(function* () {
      const { runner, summary, sent } = yield* standIn({
        metrics: true,
        session: { throttle: { maxInFlight: 1, maxQueued: 4 } }
      })
      const first = yield* startOne(runner, {}, 1)
      const queued = yield* startOne(runner, { timeout: "5 millis" }, 2)
      assert.strictEqual(sent.length, 1)
      // The first request's answer and the queued one's deadline land in the same turn of a busy event loop: the
      // place is given (in the answer's callback) before the queued request's timer can fire.
      yield* Effect.sync(() => {
        sent[0]?.answer()
        holdEventLoopUntil(performance.now() + 20)
      })
      assert.deepStrictEqual(shapeOf(yield* outcomeOf(first)), ["Success", [{ k: 1 }]])
      assert.strictEqual(shapeOf(yield* outcomeOf(queued))[1], "ClientTimeout")
      // The place it was given is passed on: the next request goes out at once.
      const next = yield* startOne(runner, {}, 3)
      yield* sentAtLeast(sent, 2)
      assert.deepStrictEqual(
        sent.map((request) => request.key),
        [1, 3],
        "the expired request never reached the driver"
      )
      yield* answerAll(sent)
      assert.deepStrictEqual(shapeOf(yield* outcomeOf(next)), ["Success", [{ k: 3 }]])
      assert.deepStrictEqual([first.settled.length, queued.settled.length, next.settled.length], [1, 1, 1])
      yield* until(runner.inFlight, (n) => n === 0)
      const counted = yield* summary
      assert.deepStrictEqual(
        [counted.requests, counted.succeeded, counted.failed, counted.clientTimeouts],
        [3, 2, 1, 1]
      )
    }).pipe(Effect.scoped)
  )
})

describe("start: throttle", () => {
  it.live("a full queue refuses at once with Throttled, counted once, and the job goes on with the rest", () =>
    Effect.gen(function* () {
      const { session, summary, sent } = yield* standIn({
        metrics: true,
        session: { throttle: { maxInFlight: 1, maxQueued: 0 } }
      })
      const inputs = Array.from({ length: 6 }, (_, k) => insert(k))
      const running = yield* BatchJob.run(inputs, { concurrency: 3 }).pipe(
        Effect.provideService(Session, session),
        Effect.forkChild
      )
      const report = yield* until(
        Effect.map(answerAll(sent), () => running.pollUnsafe()),
        (done) => done !== undefined
      ).pipe(Effect.andThen(Fiber.join(running)))
      const outcomes = reasonsOf(report)
      const throttled = outcomes.filter(([tag, reason]) => tag === "Failure" && reason === "Throttled").length
      assert.strictEqual(outcomes.filter(([tag]) => tag === "Success").length, sent.length)
      assert.strictEqual(throttled + sent.length, inputs.length, "every input either sent or refused, once")
      assert.isAbove(throttled, 0)
      yield* until(session.inFlight, (n) => n === 0)
      const counted = yield* summary
      assert.deepStrictEqual(
        [counted.requests, counted.succeeded, counted.failed, counted.errorsByReason.Throttled],
        [6, sent.length, throttled, throttled]
      )
      // The one place is free again, once: one request goes out, the next is refused.
      const before = sent.length
      const a = yield* startOne(session as unknown as RequestRunner, {}, 50)
      const b = yield* startOne(session as unknown as RequestRunner, {}, 51)
      assert.strictEqual(sent.length - before, 1)
      assert.deepStrictEqual([a.settledAtOnce, b.settledAtOnce], [0, 1])
      yield* answerAll(sent)
      yield* outcomeOf(a)
    }).pipe(Effect.scoped)
  )
})

/** A driver client whose first node refuses to prepare as it shuts down; the second prepares (see Refusals tests). */
const refusingCluster = () => {
  const shuttingDown = () => new Cassandra.errors.ResponseError(codes.overloaded, "Server is shutting down")
  let serve: () => Promise<void> = async () => {}
  const node = (address: string, answer: () => Promise<void>) =>
    standInNode(address, async (query) => {
      await answer()
      return { id: Buffer.from(`${address}:${query}`), meta: { columns: [] } }
    })
  const nodes = [
    node("10.0.0.1:9042", async () => {
      throw shuttingDown()
    }),
    node("10.0.0.2:9042", () => serve())
  ]
  const planning = new (class extends Cassandra.policies.loadBalancing.LoadBalancingPolicy {
    override getDistance() {
      return Cassandra.types.distance.local
    }
    override newQueryPlan(
      _keyspace: string,
      _options: unknown,
      callback: (error: Error, plan: Iterator<Cassandra.Host>) => void
    ) {
      callback(null as unknown as Error, nodes[Symbol.iterator]() as unknown as Iterator<Cassandra.Host>)
    }
  })()
  const client = new Cassandra.Client({
    contactPoints: ["192.0.2.1"],
    localDataCenter: "dc1",
    policies: { loadBalancing: planning }
  })
  const sent: Array<Held> = []
  const execute = (_query: string, params: ReadonlyArray<unknown>, options: Cassandra.QueryOptions) =>
    new Promise((resolve, reject) => {
      const key = params[0] as number
      sent.push({ key, options, answer: () => resolve({ rows: [{ k: key }], info: {}, columns: null }), fail: reject })
    })
  Object.assign(client, { execute, batch: execute })
  return {
    client,
    sent,
    shuttingDown,
    serveWith: (answer: () => Promise<void>) => {
      serve = answer
    }
  }
}

/** `countedRunner`, with a session over its runner. */
const countedSession = (client: Cassandra.Client, options: ClientSessionOptions = {}) =>
  Effect.map(countedRunner(client, options), ({ runner, summary }) => ({
    runner,
    session: { client, keyspace: undefined, ...runner } as Session,
    summary
  }))

describe("start: requests sent again past a refusal", () => {
  it.live("a PREPARE refused by a node shutting down: prepared elsewhere, sent again, settled once, counted once", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const { session, summary } = yield* countedSession(cluster.client)
      const running = yield* BatchJob.run([insert(0), insert(1)], { concurrency: 1 }).pipe(
        Effect.provideService(Session, session),
        Effect.forkChild
      )
      yield* sentAtLeast(cluster.sent, 1)
      cluster.sent[0]?.fail(cluster.shuttingDown())
      yield* sentAtLeast(cluster.sent, 2)
      assert.strictEqual(cluster.sent[1]?.key, 0, "the refused statement is sent again")
      cluster.sent[1]?.answer()
      yield* sentAtLeast(cluster.sent, 3)
      cluster.sent[2]?.answer()
      const report = yield* Fiber.join(running)
      assert.deepStrictEqual(reasonsOf(report), [
        ["Success", [{ k: 0 }]],
        ["Success", [{ k: 1 }]]
      ])
      const counted = yield* summary
      assert.deepStrictEqual([counted.requests, counted.succeeded, counted.failed], [2, 2, 0])
      assert.strictEqual(yield* session.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live(
    "its deadline passes while it is prepared elsewhere: settled once with a timeout, not sent again, place freed",
    () =>
      Effect.gen(function* () {
        const cluster = refusingCluster()
        let release: () => void = () => {}
        const held = new Promise<void>((resolve) => {
          release = resolve
        })
        let preparing = false
        cluster.serveWith(() => {
          preparing = true
          return held
        })
        const { runner, summary } = yield* countedSession(cluster.client, {
          throttle: { maxInFlight: 1, maxQueued: 0 }
        })
        const started = yield* startOne(runner, { timeout: "30 millis" }, 7, "INSERT INTO t (k) VALUES (?)")
        yield* sentAtLeast(cluster.sent, 1)
        cluster.sent[0]?.fail(cluster.shuttingDown())
        yield* until(
          Effect.sync(() => preparing),
          (is) => is
        )
        assert.strictEqual(shapeOf(yield* outcomeOf(started))[1], "ClientTimeout")
        assert.strictEqual(yield* runner.inFlight, 1, "still in flight while it is being prepared")
        release()
        yield* until(runner.inFlight, (n) => n === 0)
        assert.strictEqual(cluster.sent.length, 1, "not sent again after its deadline")
        assert.strictEqual(started.settled.length, 1)
        const counted = yield* summary
        assert.deepStrictEqual([counted.requests, counted.failed, counted.clientTimeouts], [1, 1, 1])
        // The one place came back once.
        const next = yield* startOne(runner, {}, 8, "INSERT INTO t (k) VALUES (?)")
        const refused = yield* startOne(runner, {}, 9, "INSERT INTO t (k) VALUES (?)")
        assert.deepStrictEqual([next.settledAtOnce, refused.settledAtOnce], [0, 1])
        yield* sentAtLeast(cluster.sent, 2)
        cluster.sent[1]?.answer()
        assert.strictEqual(shapeOf(yield* outcomeOf(next))[0], "Success")
      }).pipe(Effect.scoped)
  )

  it.live("a node shutting down refuses a sent request: sent past it once, settled once, counted once", () =>
    Effect.gen(function* () {
      const stopping = () =>
        Object.assign(new Cassandra.errors.ResponseError(codes.overloaded, "Server is shutting down"), {
          coordinator: "10.0.0.9:9042"
        })
      const { session, summary, sent } = yield* standIn({ metrics: true })
      const running = yield* BatchJob.run([insert(0), insert(1)], { concurrency: 1 }).pipe(
        Effect.provideService(Session, session),
        Effect.forkChild
      )
      yield* sentAtLeast(sent, 1)
      sent[0]?.fail(stopping())
      yield* sentAtLeast(sent, 2)
      // Refused again by a node shutting down: not sent a third time.
      sent[1]?.fail(stopping())
      yield* sentAtLeast(sent, 3)
      sent[2]?.answer()
      const report = yield* Fiber.join(running)
      assert.deepStrictEqual(reasonsOf(report), [
        ["Failure", "Overloaded"],
        ["Success", [{ k: 1 }]]
      ])
      assert.deepStrictEqual(
        sent.map((request) => request.key),
        [0, 0, 1]
      )
      const counted = yield* summary
      assert.deepStrictEqual([counted.requests, counted.succeeded, counted.failed], [2, 1, 1])
      assert.strictEqual(yield* session.inFlight, 0)
    }).pipe(Effect.scoped)
  )
})

describe("start: close and drain", () => {
  it.live("closing the session waits for requests started through start; later starts are refused at once", () =>
    Effect.gen(function* () {
      const sessionScope = yield* Scope.make()
      const { runner, sent } = yield* Scope.provide(standIn(), sessionScope)
      const first = yield* startOne(runner, {}, 1)
      const second = yield* startOne(runner, { timeout: "1 hour" }, 2)
      assert.strictEqual(yield* runner.inFlight, 2)
      const closing = yield* Effect.forkChild(Scope.close(sessionScope, Exit.void), { startImmediately: true })
      const refused = yield* startOne(runner, {}, 3)
      assert.strictEqual(refused.settledAtOnce, 1)
      assert.strictEqual(shapeOf(yield* outcomeOf(refused))[1], "SessionClosed")
      assert.isUndefined(closing.pollUnsafe(), "the close waits for the two requests in flight")
      sent[0]?.answer()
      yield* outcomeOf(first)
      assert.isUndefined(closing.pollUnsafe(), "the close waits for the second request")
      assert.strictEqual(yield* runner.inFlight, 1)
      sent[1]?.answer()
      yield* Fiber.join(closing)
      assert.deepStrictEqual(shapeOf(yield* outcomeOf(second)), ["Success", [{ k: 2 }]])
      assert.strictEqual(sent.length, 2)
    })
  )

  it.live("an interrupted job's requests are waited for by the close, and Session.inFlight counts them", () =>
    Effect.gen(function* () {
      const sessionScope = yield* Scope.make()
      const { session, sent } = yield* Scope.provide(standIn(), sessionScope)
      const job = yield* BatchJob.start(
        Array.from({ length: 10 }, (_, k) => insert(k)),
        { concurrency: 3 }
      ).pipe(Effect.provideService(Session, session))
      yield* sentAtLeast(sent, 3)
      assert.strictEqual(yield* session.inFlight, 3)
      const interrupting = yield* Effect.forkChild(job.interrupt, { startImmediately: true })
      const closing = yield* Effect.forkChild(Scope.close(sessionScope, Exit.void), { startImmediately: true })
      assert.isUndefined(closing.pollUnsafe())
      yield* answerAll(sent)
      const report = yield* Fiber.join(interrupting)
      yield* Fiber.join(closing)
      assert.isTrue(report.interrupted)
      assert.deepStrictEqual(
        reasonsOf(report),
        sent.map((request) => ["Success", [{ k: request.key }]])
      )
      assert.strictEqual(sent.length, 3)
      assert.strictEqual(yield* session.inFlight, 0)
    })
  )
})

describe("start: parity with the effect path", () => {
  const throwingGetter = Object.defineProperty({}, "consistency", {
    enumerable: true,
    get() {
      throw new Error("consistency cannot be read")
    }
  })
  const cases: ReadonlyArray<readonly [string, unknown]> = [
    ["none", {}],
    ["some", { consistency: "ONE", pageSize: 10, idempotent: false }],
    ["a bogus consistency", { consistency: "bogus" }],
    ["a negative timeout", { timeout: -1 }],
    ["a timeout that is not a duration", { timeout: "soon" }],
    ["a pageSize of 0", { pageSize: 0 }],
    ["a timestamp in milliseconds", { timestamp: BigInt(Date.now()) }],
    ["a Proxy over valid options", new Proxy({ consistency: "ONE" }, {})],
    [
      "a Proxy whose get throws",
      new Proxy(
        {},
        {
          get() {
            throw new Error("trap")
          }
        }
      )
    ],
    ["options whose getter throws", throwingGetter],
    ["null", null],
    ["a string", "ONE"]
  ]
  for (const [name, options] of cases) {
    it.live(`options: ${name}`, () =>
      Effect.gen(function* () {
        const { runner } = yield* standIn({ atOnce: true })
        const started = yield* startOne(runner, options as RequestOptions, 4)
        const fromStart = shapeOf(yield* outcomeOf(started))
        const fromSend = shapeOf(
          yield* Effect.exit(
            Effect.withFiber((fiber) =>
              runner[sendInFiber].send(fiber, selectText, [4], options as RequestOptions, rowsOf)
            )
          )
        )
        assert.isTrue(started.started)
        assert.deepStrictEqual(fromStart, fromSend)
        assert.strictEqual(started.settled.length, 1)
        yield* until(runner.inFlight, (n) => n === 0)
      }).pipe(Effect.scoped)
    )
  }

  /** Options whose prototype is a Proxy: `in` runs its `has` trap, which no guard covers. */
  const overProxy = (handler: ProxyHandler<object>) => Object.create(new Proxy({}, handler)) as RequestOptions

  it.live(
    "options inheriting from a Proxy whose has trap throws: settled as the effect path settles it, nothing thrown out of start",
    () =>
      Effect.gen(function* () {
        const { runner } = yield* standIn({ atOnce: true })
        const options = overProxy({
          has() {
            throw new Error("has trap")
          }
        })
        const fromSend = shapeOf(
          yield* Effect.exit(
            Effect.suspend(() =>
              Effect.withFiber((fiber) => runner[sendInFiber].send(fiber, selectText, [4], options, rowsOf))
            )
          )
        )
        const startExit = yield* Effect.exit(startOne(runner, options, 4))
        assert.isTrue(Exit.isSuccess(startExit), `start threw instead of settling: ${shapeOf(startExit)}`)
        assert.notStrictEqual(fromSend[0], "Defect or interrupt", `the effect path died: ${fromSend[1]}`)
        if (Exit.isSuccess(startExit)) {
          assert.deepStrictEqual(shapeOf(yield* outcomeOf(startExit.value)), fromSend)
          assert.strictEqual(startExit.value.settled.length, 1)
        }
      }).pipe(Effect.scoped)
  )

  it.live("options inheriting from a Proxy whose has answers no: its values are not ignored", () =>
    Effect.gen(function* () {
      const { runner, sent } = yield* standIn({ atOnce: true })
      // Says it sets nothing, yet reads a consistency of ONE.
      const options = overProxy({
        has: () => false,
        get: (_target, property) => (property === "consistency" ? "ONE" : undefined)
      })
      const started = yield* startOne(runner, options, 6)
      yield* outcomeOf(started)
      const viaProxy = sent[0]?.options.consistency
      const plain = yield* startOne(runner, { consistency: "ONE" }, 7)
      yield* outcomeOf(plain)
      assert.strictEqual(viaProxy, sent[1]?.options.consistency, "the consistency the options read was ignored")
    }).pipe(Effect.scoped)
  )

  it.live("a job from callbacks and the same job in the fiber give the same outcome for each kind of options", () =>
    Effect.gen(function* () {
      const optionsOf: ReadonlyArray<RequestOptions> = [
        {},
        { consistency: "bogus" as "ONE" },
        { timeout: -1 },
        { pageSize: 0 },
        { consistency: "ONE" as const }
      ]
      const runJob = (decorate: boolean) =>
        Effect.gen(function* () {
          const { session } = yield* standIn({ atOnce: true })
          const used: Session = decorate ? { ...session, execute: (request) => session.execute(request) } : session
          const template = yield* Query.template.pipe(Effect.provideService(Session, used))
          const inputs = optionsOf.map((options, k) => template`INSERT INTO t (k) VALUES (${k})`.withOptions(options))
          const report = yield* BatchJob.run(inputs, { concurrency: 1 }).pipe(Effect.provideService(Session, used))
          return report.outcomes.map((outcome) =>
            outcome._tag === "Success"
              ? ["Success", outcome.rows]
              : ["Failure", outcome.error.reason._tag, outcome.error.message]
          )
        })
      assert.deepStrictEqual(yield* runJob(false), yield* runJob(true))
    }).pipe(Effect.scoped)
  )
})

describe("start: nothing thrown into the driver's callback", () => {
  it.live("with metrics, a driver answer that is not a result set fails that request alone, as without metrics", () =>
    Effect.gen(function* () {
      const rejections = yield* watchRejections
      const ends = (metrics: boolean) =>
        Effect.gen(function* () {
          const { session } = yield* standIn({
            metrics,
            atOnce: true,
            resultFor: (key) => (key === 1 ? undefined : { rows: [{ k: key }], info: {}, columns: null })
          })
          // Detached: a job that lost an outcome waits for it for ever, even when interrupted.
          const running = yield* BatchJob.run([insert(0), insert(1), insert(2)], { concurrency: 1 }).pipe(
            Effect.provideService(Session, session),
            Effect.exit,
            Effect.forkDetach
          )
          const ended = yield* endedOrRejected(running, rejections)
          return { ended: ended !== undefined, rejections: rejections.splice(0).map(String) }
        })
      const without = yield* ends(false)
      assert.isTrue(without.ended)
      const withMetrics = yield* ends(true)
      assert.deepStrictEqual(withMetrics.rejections, [], "a throw reached the driver's callback: the job never ends")
      assert.isTrue(withMetrics.ended)
    }).pipe(Effect.scoped)
  )

  it.live("requests settled by deadlines and refusals inside a job reach no unhandled rejection", () =>
    Effect.gen(function* () {
      const rejections = yield* watchRejections
      const { session, sent } = yield* standIn({
        metrics: true,
        session: { requestTimeout: "20 millis", throttle: { maxInFlight: 2, maxQueued: 2 } },
        errorFor: (key) => (key % 5 === 0 ? new Cassandra.errors.ResponseError(codes.invalid, "no") : undefined)
      })
      const inputs = Array.from({ length: 60 }, (_, k) =>
        k % 7 === 0 ? insert(k).withOptions({ consistency: "bogus" as "ONE" }) : insert(k)
      )
      const running = yield* BatchJob.run(inputs, { concurrency: 5 }).pipe(
        Effect.provideService(Session, session),
        Effect.forkDetach
      )
      // Every other request is answered before its deadline, the rest late.
      let answered = 0
      yield* until(
        Effect.sync(() => {
          for (; answered < sent.length; answered++) if (answered % 2 === 0) sent[answered]?.answer()
          return running.pollUnsafe() !== undefined || rejections.length > 0
        }),
        (done) => done
      )
      assert.deepStrictEqual(rejections.map(String), [], "a throw reached the driver's callback")
      const report = yield* Fiber.join(running)
      yield* answerAll(sent)
      yield* until(session.inFlight, (n) => n === 0)
      assert.deepStrictEqual(rejections.map(String), [])
      assert.strictEqual(report.outcomes.length, inputs.length)
      assert.strictEqual(report.succeeded + report.failed, inputs.length)
    }).pipe(Effect.scoped)
  )
})
