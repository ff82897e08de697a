import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"
import * as Stream from "effect/Stream"
import * as BatchJob from "effect-cassandra/BatchJob"
import * as CassandraError from "effect-cassandra/CassandraError"
import * as Query from "effect-cassandra/Query"
import { Session } from "effect-cassandra/Session"
import { batchOptionsKey } from "../../src/internal/batchJob.ts"
import { runnerOver, until } from "../support/requestRunner.ts"

describe("BatchJob.isIdempotent", () => {
  it("takes a read as idempotent unless declared otherwise", () => {
    assert.isTrue(BatchJob.isIdempotent(Query.cql`SELECT * FROM t WHERE k = ${1}`))
    assert.isTrue(BatchJob.isIdempotent(Query.cql`  select k FROM t`))
    assert.isFalse(BatchJob.isIdempotent(Query.cql`SELECT * FROM t`.withOptions({ idempotent: false })))
  })

  it("takes a write as idempotent only when declared", () => {
    assert.isFalse(BatchJob.isIdempotent(Query.cql`INSERT INTO t (k) VALUES (${1})`))
    assert.isFalse(BatchJob.isIdempotent(Query.cql`UPDATE c SET n = n + 1 WHERE k = ${1}`))
    assert.isTrue(BatchJob.isIdempotent(Query.cql`INSERT INTO t (k) VALUES (${1})`.withOptions({ idempotent: true })))
  })
})

// Statements naming an invalid identifier fail before anything is sent, so these jobs need no node: the session
// is never used.
const unusedSession = Layer.succeed(Session, {} as Session)
const invalidTable = Query.identifier("no-such-table")
const failingFast = (k: number) => Query.cql`INSERT INTO ${invalidTable} (k) VALUES (${k})`

describe("BatchJob summary", () => {
  it.effect("holds counts and at most maxFailures failures, and no outcome per statement", () =>
    Effect.gen(function* () {
      const statements = Array.from({ length: 10_000 }, (_, k) => failingFast(k))
      const summary = yield* BatchJob.run(statements, { summary: true, maxFailures: 10 })
      assert.deepStrictEqual(Object.keys(summary).sort(), ["failed", "failures", "interrupted", "succeeded", "total"])
      assert.strictEqual(summary.total, 10_000)
      assert.strictEqual(summary.failed, 10_000)
      assert.strictEqual(summary.succeeded, 0)
      assert.deepStrictEqual(
        summary.failures.map((failure) => failure.index),
        Array.from({ length: 10 }, (_, index) => index)
      )
      assert.strictEqual(summary.failures[0]?.error.reason._tag, "InvalidIdentifier")
      assert.deepStrictEqual(BatchJob.unfinished(summary), statements)
    }).pipe(Effect.provide(unusedSession))
  )

  it.effect("a full report keeps one outcome per statement, in input order", () =>
    Effect.gen(function* () {
      const report = yield* BatchJob.run(
        Array.from({ length: 50 }, (_, k) => failingFast(k)),
        { concurrency: 7, partitionKey: (statement) => String(Number(statement.params[0]) % 3) }
      )
      assert.deepStrictEqual(
        report.outcomes.map((outcome) => outcome.index),
        Array.from({ length: 50 }, (_, index) => index)
      )
      assert.strictEqual(report.failures.length, 50)
    }).pipe(Effect.provide(unusedSession))
  )
})

describe("BatchJob grouping", () => {
  const base = Query.cql`INSERT INTO t (k) VALUES (${1})`
  it("groups statements whose batch-relevant options are equal, whatever else differs", () => {
    assert.strictEqual(batchOptionsKey(base), batchOptionsKey(Query.cql`INSERT INTO u (k) VALUES (${2})`))
    assert.strictEqual(batchOptionsKey(base), batchOptionsKey(base.withOptions({ pageSize: 10 })))
    assert.strictEqual(
      batchOptionsKey(base.withOptions({ timestamp: new Date(1000) })),
      batchOptionsKey(base.withOptions({ timestamp: 1_000_000n }))
    )
    assert.strictEqual(
      batchOptionsKey(base.withOptions({ timeout: "1 second" })),
      batchOptionsKey(base.withOptions({ timeout: 1000 }))
    )
  })

  it("keys options of the wrong type apart instead of throwing: the request path reports them", () => {
    for (const routingKey of ["abc", ["abc"], 42]) {
      const key = batchOptionsKey(base.withOptions({ routingKey: routingKey as unknown as Uint8Array }))
      assert.notStrictEqual(key, batchOptionsKey(base))
    }
  })

  it("separates statements that differ in any option a batch carries", () => {
    const variants = [
      base,
      base.withOptions({ consistency: "QUORUM" }),
      base.withOptions({ serialConsistency: "SERIAL" }),
      base.withOptions({ timestamp: 5n }),
      base.withOptions({ timeout: "3 seconds" }),
      base.withOptions({ tracing: true }),
      base.withOptions({ executionProfile: "batch" }),
      base.withOptions({ idempotent: true }),
      base.withOptions({ prepare: false }),
      base.withOptions({ routingKey: new Uint8Array([1, 2]) }),
      base.withOptions({ allowAnyTimestamp: true })
    ]
    assert.strictEqual(new Set(variants.map(batchOptionsKey)).size, variants.length)
  })
})

describe("BatchJob options", () => {
  const counts = [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 1.5]
  const invalid: ReadonlyArray<
    BatchJob.Options<unknown> & BatchJob.ProgressOptions & { readonly maxFailures?: number }
  > = [
    ...counts.map((concurrency) => ({ concurrency })),
    ...counts.map((maxBatchSize) => ({ maxBatchSize })),
    ...[-1, Number.NaN, 1.5].map((maxFailures) => ({ maxFailures })),
    ...[-5, "-1 millis", Number.NaN, Number.POSITIVE_INFINITY, "never"].map((maxGroupingDelay) => ({
      maxGroupingDelay: maxGroupingDelay as Duration.Input
    })),
    ...[0, -5, Number.NaN, Number.POSITIVE_INFINITY, "soon"].map((progressInterval) => ({
      progressInterval: progressInterval as Duration.Input
    }))
  ]
  const configurationDetail = (exit: Exit.Exit<unknown, CassandraError.CassandraError>) => {
    assert.isTrue(Exit.isFailure(exit) && !Exit.hasDies(exit), String(exit))
    const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
    assert.isTrue(CassandraError.isCassandraError(error))
    const reason = (error as CassandraError.CassandraError).reason
    assert.strictEqual(reason._tag, "Configuration")
    return reason.message
  }

  it.effect("an invalid option fails run, start, stream and schema jobs with a typed Configuration error", () =>
    Effect.gen(function* () {
      const job = BatchJob.schema({
        Request: Schema.Struct({ k: Schema.Number }),
        execute: (row) => failingFast(row.k)
      })
      for (const options of invalid) {
        const [name, value] = Object.entries(options).at(-1) ?? []
        const details = [
          configurationDetail(yield* Effect.exit(BatchJob.run([failingFast(1)], options))),
          configurationDetail(yield* Effect.exit(Effect.scoped(BatchJob.start([failingFast(1)], options)))),
          configurationDetail(
            yield* Effect.exit(Stream.runDrain(BatchJob.stream(Stream.make(failingFast(1)), options)))
          ),
          configurationDetail(yield* Effect.exit(job.run([{ k: 1 }], options)))
        ]
        for (const detail of details) {
          assert.include(detail, String(name))
          assert.include(detail, String(value))
        }
      }
    }).pipe(Effect.provide(unusedSession))
  )

  it.effect("a concurrency far above the number of statements runs them", () =>
    Effect.gen(function* () {
      const report = yield* BatchJob.run([failingFast(1), failingFast(2)], { concurrency: 2 ** 32 })
      assert.strictEqual(report.failed, 2)
    }).pipe(Effect.provide(unusedSession))
  )

  it.effect("a partitionKey returning a number from untyped code still groups, every failure a CassandraError", () =>
    Effect.gen(function* () {
      const report = yield* BatchJob.run(
        Array.from({ length: 6 }, (_, k) => failingFast(k)),
        { partitionKey: (statement) => statement.params[0] as string }
      )
      assert.deepStrictEqual(
        report.failures.map((failure) => failure.error.reason._tag),
        Array.from({ length: 6 }, () => "InvalidIdentifier")
      )
    }).pipe(Effect.provide(unusedSession))
  )

  it.effect("a partitionKey that throws fails that statement alone, typed, and the job goes on", () =>
    Effect.gen(function* () {
      const statements = Array.from({ length: 6 }, (_, k) => failingFast(k))
      const report = yield* BatchJob.run(statements, {
        partitionKey: (statement) => {
          if (statement.params[0] === 3) throw new TypeError("secret-key-value")
          return "p"
        }
      })
      assert.deepStrictEqual(
        report.failures.map((failure) => [failure.index, failure.error.reason._tag]),
        [
          [0, "InvalidIdentifier"],
          [1, "InvalidIdentifier"],
          [2, "InvalidIdentifier"],
          [3, "Configuration"],
          [4, "InvalidIdentifier"],
          [5, "InvalidIdentifier"]
        ]
      )
      const message = report.failures[3]?.error.message ?? ""
      assert.include(message, "partitionKey")
      assert.include(message, "TypeError")
      assert.notInclude(message, "secret-key-value")
      assert.deepStrictEqual(BatchJob.unfinished(report), statements)
    }).pipe(Effect.provide(unusedSession))
  )
})

describe("BatchJob schema jobs", () => {
  it.effect("an execute function that throws fails that input alone, typed", () =>
    Effect.gen(function* () {
      const job = BatchJob.schema({
        Request: Schema.Struct({ k: Schema.Number }),
        execute: (row) => {
          if (row.k === 1) throw new Error("boom 1")
          return failingFast(row.k)
        }
      })
      const report = yield* job.run([{ k: 0 }, { k: 1 }, { k: 2 }])
      assert.deepStrictEqual(
        report.failures.map((failure) => [
          failure.index,
          CassandraError.isCassandraError(failure.error) ? failure.error.reason._tag : "CqlSchemaError"
        ]),
        [
          [0, "InvalidIdentifier"],
          [1, "Configuration"],
          [2, "InvalidIdentifier"]
        ]
      )
    }).pipe(Effect.provide(unusedSession))
  )

  it.effect("the JSON form of a report never holds an input the Schema refused", () =>
    Effect.gen(function* () {
      const job = BatchJob.schema({
        Request: Schema.Struct({ k: Schema.Number, card: Schema.String.check(Schema.isMaxLength(4)) }),
        execute: (row) => failingFast(row.k)
      })
      const report = yield* job.run([{ k: 1, card: "4111-1111-1111-1111" }])
      assert.strictEqual(report.failed, 1)
      const json = JSON.stringify(report)
      assert.notInclude(json, "4111")
      assert.include(json, '"index":0')
      assert.deepStrictEqual(BatchJob.unfinished(report), [{ k: 1, card: "4111-1111-1111-1111" }])
    }).pipe(Effect.provide(unusedSession))
  )
})

describe("BatchJob schema jobs with services", () => {
  const Prefix = Context.Service<string>("test/BatchJob/Prefix")
  // The encoded name is prefixed by a service: the job requires it, and a refused value fails alone.
  const Name = Schema.String.pipe(
    Schema.decodeTo(Schema.String.check(Schema.isMaxLength(8)), {
      decode: SchemaGetter.passthrough(),
      encode: SchemaGetter.transformEffect((name: string) => Prefix.use((prefix) => Effect.succeed(prefix + name)))
    })
  )
  it.effect("a Request schema that needs a service runs with it provided", () =>
    Effect.gen(function* () {
      const encoded: Array<string> = []
      const job = BatchJob.schema({
        Request: Schema.Struct({ k: Schema.Number, name: Name }),
        execute: (row) => {
          encoded.push(row.name)
          return failingFast(row.k)
        }
      })
      const report = yield* job
        .run([
          { k: 1, name: "ada" },
          { k: 2, name: "grace-hopper-secret" }
        ])
        .pipe(Effect.provideService(Prefix, "x-"))
      assert.deepStrictEqual(encoded, ["x-ada"])
      assert.strictEqual(report.failures[1]?.index, 1)
      assert.notInclude(report.failures[1]?.error.message ?? "", "grace")
      assert.notInclude(JSON.stringify(report), "grace")
    }).pipe(Effect.provide(unusedSession))
  )
})

describe("BatchJob interruption", () => {
  it.effect("interrupting a job that already ended returns its complete report", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const statements = Array.from({ length: 5 }, (_, k) => failingFast(k))
        const job = yield* BatchJob.start(statements, { progressInterval: "5 millis" })
        const report = yield* job.report
        const interrupted = yield* job.interrupt
        assert.isFalse(interrupted.interrupted)
        assert.deepStrictEqual(interrupted, report)
        assert.strictEqual(interrupted.outcomes.length, 5)
        assert.deepStrictEqual(BatchJob.unfinished(interrupted), statements)
      })
    ).pipe(Effect.provide(unusedSession))
  )

  for (const length of [0, 1, 3000]) {
    it.effect(`a job of ${length} statements interrupted before it started ends its progress and resumes exactly`, () =>
      Effect.scoped(
        Effect.gen(function* () {
          const statements = Array.from({ length }, (_, k) => failingFast(k))
          const job = yield* BatchJob.start(statements, { progressInterval: "5 millis", summary: true })
          const report = yield* job.interrupt
          const again = yield* job.interrupt
          const samples = yield* Stream.runCollect(job.progress)
          const last = samples.at(-1)
          assert.isTrue(last?.done)
          assert.strictEqual(last?.completed, report.succeeded + report.failed)
          assert.strictEqual(last?.failed, report.failed)
          assert.strictEqual(report.succeeded, 0)
          assert.deepStrictEqual(BatchJob.unfinished(report), statements)
          assert.deepStrictEqual(again, report)
        })
      ).pipe(Effect.provide(unusedSession))
    )
  }
})

/** A session over a stand-in client whose requests (statements and batches) wait until the test fails them. */
const sessionFailingOnDemand = Effect.gen(function* () {
  const pending: Array<(error: Error) => void> = []
  const waiting = () => new Promise((_, reject) => pending.push(reject))
  const client = { keyspace: undefined, execute: waiting, batch: waiting } as unknown as Cassandra.Client
  const runner = yield* runnerOver(client, {})
  const session: Session = { client, keyspace: undefined, ...runner }
  return { pending, session }
})

/**
 * Starts a job of `statements` with `options`, waits until it has sent `sent` requests, asks for its interruption
 * and only then fails the last request sent with `error`: the report the interruption returns.
 */
const interruptedWhileInFlight = (
  statements: ReadonlyArray<Query.Statement>,
  options: BatchJob.Options<unknown>,
  sent: number,
  error: Error
) =>
  Effect.gen(function* () {
    const { pending, session } = yield* sessionFailingOnDemand
    return yield* Effect.scoped(
      Effect.gen(function* () {
        const job = yield* BatchJob.start(statements, options)
        for (let request = 1; request <= sent; request++) {
          yield* until(
            Effect.sync(() => pending.length),
            (count) => count === request
          )
          if (request < sent) pending[request - 1]!(error)
        }
        const interrupting = yield* Effect.forkChild(job.interrupt)
        yield* Effect.yieldNow
        pending[sent - 1]!(error)
        return yield* Fiber.join(interrupting)
      })
    ).pipe(Effect.provideService(Session, session))
  })

const failuresOf = (report: BatchJob.Report<unknown>) =>
  report.failures.map((failure) => [failure.index, failure.error.reason._tag])

describe("BatchJob interrupted while a request is in flight", () => {
  const invalid = () => new Cassandra.errors.ResponseError(0x2200, "unconfigured table t")
  const overloaded = () => new Cassandra.errors.ResponseError(0x1001, "overloaded")
  const one = (idempotent: boolean) => () => [Query.cql`INSERT INTO t (k) VALUES (${1})`.withOptions({ idempotent })]
  const onePartition = () => [1, 2].map((k) => Query.cql`INSERT INTO t (p, k) VALUES (${1}, ${k})`)
  const cases = [
    {
      name: "waits for it and keeps its failure in the report, so the report knows every request it sent",
      statements: one(false),
      options: {},
      sent: 1,
      error: invalid,
      failures: [[0, "Invalid"]]
    },
    {
      name: "keeps the failure of a statement that would not be retried, retry or not",
      statements: one(true),
      options: { retry: Schedule.recurs(5) },
      sent: 1,
      error: invalid,
      failures: [[0, "Invalid"]]
    },
    {
      name: "leaves a statement that would have been retried unfinished, with no failure",
      statements: one(true),
      options: { retry: Schedule.recurs(5) },
      sent: 2,
      error: overloaded,
      failures: []
    },
    {
      name: "keeps the failure of a statement whose retries ran out while the interruption waited for its last attempt",
      statements: one(true),
      options: { retry: Schedule.recurs(1) },
      sent: 2,
      error: overloaded,
      failures: [[0, "Overloaded"]]
    },
    {
      name: "leaves a statement retried on a schedule that never ends unfinished",
      statements: one(true),
      options: { retry: Schedule.forever },
      sent: 3,
      error: overloaded,
      failures: []
    },
    {
      name: "keeps a retryable failure that the schedule would not retry",
      statements: one(true),
      options: { retry: Schedule.recurs(0) },
      sent: 1,
      error: overloaded,
      failures: [[0, "Overloaded"]]
    },
    {
      name: "keeps the failure of a batch whose retries ran out while the interruption waited for its last attempt",
      statements: () =>
        [1, 2].map((k) => Query.cql`INSERT INTO t (p, k) VALUES (${1}, ${k})`.withOptions({ idempotent: true })),
      options: { partitionKey: () => "p", retry: Schedule.recurs(1) },
      sent: 2,
      error: overloaded,
      failures: [
        [0, "Overloaded"],
        [1, "Overloaded"]
      ]
    },
    {
      name: "keeps the failure of a batch for each of its statements",
      statements: onePartition,
      options: { partitionKey: () => "p" },
      sent: 1,
      error: overloaded,
      failures: [
        [0, "Overloaded"],
        [1, "Overloaded"]
      ]
    },
    {
      // The refusal may concern one statement only: it is no statement's outcome.
      name: "leaves a batch refused before anything was applied unfinished: its statements would have been sent alone",
      statements: onePartition,
      options: { partitionKey: () => "p" },
      sent: 1,
      error: () => new Cassandra.errors.ResponseError(0x2200, "value too large for k"),
      failures: []
    }
  ]
  for (const { name, statements: make, options, sent, error, failures } of cases) {
    it.live(name, () =>
      Effect.gen(function* () {
        const statements = make()
        const report = yield* interruptedWhileInFlight(statements, options, sent, error())
        assert.isTrue(report.interrupted)
        assert.deepStrictEqual(failuresOf(report), failures)
        assert.strictEqual(report.outcomes.length, failures.length)
        assert.deepStrictEqual(BatchJob.unfinished(report), statements)
      })
    )
  }

  it.live(
    "interrupted while a refused batch's first statement is sent alone, keeps only that statement's failure",
    () =>
      Effect.gen(function* () {
        const statements = [1, 2, 3].map((k) => Query.cql`INSERT INTO t (p, k) VALUES (${1}, ${k})`)
        // The batch is refused, then its first statement, sent alone, is refused while the interruption waits for it.
        const report = yield* interruptedWhileInFlight(
          statements,
          { partitionKey: () => "p" },
          2,
          new Cassandra.errors.ResponseError(0x2200, "value too large for k")
        )
        assert.isTrue(report.interrupted)
        assert.deepStrictEqual(failuresOf(report), [[0, "Invalid"]])
        assert.deepStrictEqual(
          report.outcomes.map((outcome) => outcome.index),
          [0]
        )
        assert.deepStrictEqual(BatchJob.unfinished(report), statements)
      })
  )
})

/** A session over a stand-in client that answers the requests (statements and batches) as `answer` says. */
const sessionAnswering = (answer: (request: number) => Error | undefined) =>
  Effect.gen(function* () {
    let requests = 0
    const respond = () => {
      const error = answer(requests++)
      return error === undefined ? Promise.resolve({ rows: [], info: {} }) : Promise.reject(error)
    }
    const client = { keyspace: undefined, execute: respond, batch: respond } as unknown as Cassandra.Client
    const runner = yield* runnerOver(client, {})
    const session: Session = { client, keyspace: undefined, ...runner }
    return { session, requests: () => requests }
  })

describe("BatchJob retries", () => {
  const overloaded = () => new Cassandra.errors.ResponseError(0x1001, "overloaded")
  const idempotentInserts = (count: number) =>
    Array.from({ length: count }, (_, k) =>
      Query.cql`INSERT INTO t (p, k) VALUES (${k}, ${k})`.withOptions({ idempotent: true })
    )
  for (const grouped of [false, true]) {
    const sent = grouped ? "sent in partition batches" : "sent alone"
    it.effect(`an idempotent statement ${sent} is sent once and once more per recurrence of its schedule`, () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { session, requests } = yield* sessionAnswering(overloaded)
          const statements = idempotentInserts(3)
          const report = yield* BatchJob.run(statements, {
            retry: Schedule.recurs(2),
            ...(grouped ? { partitionKey: (statement: Query.Statement) => String(statement.params[0]) } : {})
          }).pipe(Effect.provideService(Session, session))
          assert.strictEqual(requests(), 3 * 3)
          assert.deepStrictEqual(failuresOf(report), [
            [0, "Overloaded"],
            [1, "Overloaded"],
            [2, "Overloaded"]
          ])
        })
      )
    )
  }

  it.effect("an idempotent statement that succeeds when retried has one outcome, a success", () =>
    Effect.scoped(
      Effect.gen(function* () {
        // Every statement's first attempt fails, every retry succeeds.
        const { session, requests } = yield* sessionAnswering((request) => (request < 4 ? overloaded() : undefined))
        const statements = idempotentInserts(4)
        const report = yield* BatchJob.run(statements, { concurrency: 4, retry: Schedule.recurs(1) }).pipe(
          Effect.provideService(Session, session)
        )
        assert.strictEqual(requests(), 8)
        assert.deepStrictEqual(
          report.outcomes.map((outcome) => [outcome.index, outcome._tag]),
          [0, 1, 2, 3].map((index) => [index, "Success"])
        )
        assert.strictEqual(report.succeeded, 4)
        assert.deepStrictEqual(BatchJob.unfinished(report), [])
      })
    )
  )
})
