import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as BatchJob from "../../src/BatchJob.ts"
import * as CassandraError from "../../src/CassandraError.ts"
import * as CassandraLayer from "../../src/Layer.ts"
import * as Query from "../../src/Query.ts"
import { CassandraSession } from "../../src/Session.ts"
import { sessionWithKeyspace, testOptions } from "../support/session.ts"

const { cql, identifier } = Query
const { keyspace, layer: sessionLayer } = sessionWithKeyspace("batch_job")
const items = identifier(keyspace, "items")

const insert = (k: number, v: number) => cql`INSERT INTO ${items} (p, k, v) VALUES (${k % 7}, ${k}, ${v})`
const countRows = Effect.map(cql<{ readonly count: bigint }>`SELECT count(*) AS count FROM ${items}`, (rows) =>
  Number(rows[0]?.count ?? -1)
)
const truncate = cql`TRUNCATE ${items}`

/** Requests the throttled session has in flight, sampled inside each statement's fiber before and after it runs. */
const sampleInFlight = (samples: Array<number>) =>
  CassandraSession.use((session) => Effect.tap(session.inFlight, (n) => Effect.sync(() => samples.push(n))))

const throttled = (maxInFlight: number, maxQueued: number) =>
  CassandraLayer.layer(testOptions({ keyspace, throttle: { maxInFlight, maxQueued } }))

const reasonTags = (report: BatchJob.Report<unknown>) => new Set(report.failures.map((f) => f.error.reason._tag))

layer(sessionLayer, { excludeTestServices: true })("BatchJob", (it) => {
  it.effect("creates the table", () =>
    cql`CREATE TABLE ${items} (p int, k int, v int, PRIMARY KEY (p, k))`.pipe(Effect.asVoid)
  )

  it.effect("runs every statement once, grouped into partition batches, and reports progress to the end", () =>
    Effect.gen(function* () {
      yield* truncate
      const statements = Array.from({ length: 500 }, (_, k) => insert(k, k * 2))
      const job = yield* BatchJob.start(statements, {
        concurrency: 16,
        partitionKey: (statement) => String(statement.params[0]),
        maxBatchSize: 10,
        progressInterval: "10 millis"
      })
      const samples = yield* Stream.runCollect(job.progress)
      const report = yield* job.report
      assert.strictEqual(report.succeeded, 500)
      assert.deepStrictEqual(report.failures, [])
      assert.deepStrictEqual(
        report.outcomes.map((outcome) => outcome.index),
        statements.map((_, index) => index)
      )
      const last = samples.at(-1)
      assert.isTrue(last?.done)
      assert.strictEqual(last?.completed, 500)
      assert.strictEqual(last?.total, 500)
      for (let i = 1; i < samples.length; i++) {
        assert.isAtLeast(samples[i]?.completed ?? -1, samples[i - 1]?.completed ?? 0)
      }
      assert.strictEqual(yield* countRows, 500)
      const rows = yield* cql<{ readonly v: number }>`SELECT v FROM ${items} WHERE p = ${3} AND k = ${10}`
      assert.deepStrictEqual(
        rows.map((row) => row.v),
        [20]
      )
    })
  )

  it.effect("resumes after failures by running only the statements that failed", () =>
    Effect.gen(function* () {
      yield* truncate
      // Every tenth statement writes a text into the int column: the server refuses it as Invalid, not retryable.
      const badValue = (k: number) => cql`INSERT INTO ${items} (p, k, v) VALUES (${k % 7}, ${k}, ${"x"})`
      const first = yield* BatchJob.run(
        Array.from({ length: 100 }, (_, k) => (k % 10 === 0 ? badValue(k) : insert(k, k))),
        { concurrency: 8, retry: Schedule.recurs(3) }
      )
      assert.strictEqual(first.succeeded, 90)
      assert.deepStrictEqual(
        first.failures.map((failure) => failure.index),
        Array.from({ length: 10 }, (_, i) => i * 10)
      )
      assert.deepStrictEqual(reasonTags(first), new Set(["InvalidArgument"]))
      assert.strictEqual(yield* countRows, 90)
      // The operator fixes the data and resumes with exactly the failed statements.
      const resumed = yield* BatchJob.run(
        BatchJob.unfinished(first).map((statement) => insert(statement.params[1] as number, 0))
      )
      assert.strictEqual(resumed.succeeded, 10)
      assert.strictEqual(yield* countRows, 100)
    })
  )

  it.effect("resumes a read from the page-state token saved after the last processed page", () =>
    Effect.gen(function* () {
      yield* truncate
      yield* BatchJob.run(Array.from({ length: 95 }, (_, k) => insert(k, k)))
      const read = cql<{ readonly k: number }>`SELECT k FROM ${items}`.withOptions({ pageSize: 10 })
      const processed: Array<number> = []
      let checkpoint: string | undefined
      // The first run stops after three pages, as a crash would.
      yield* BatchJob.pages(read).pipe(
        Stream.take(3),
        Stream.runForEach((page) =>
          Effect.sync(() => {
            processed.push(...page.rows.map((row) => row.k))
            checkpoint = page.pageState._tag === "Some" ? page.pageState.value : undefined
          })
        )
      )
      assert.strictEqual(processed.length, 30)
      assert.isDefined(checkpoint)
      yield* BatchJob.pages(read, { from: checkpoint, retry: Schedule.recurs(2) }).pipe(
        Stream.runForEach((page) => Effect.sync(() => processed.push(...page.rows.map((row) => row.k))))
      )
      assert.strictEqual(processed.length, 95)
      assert.strictEqual(new Set(processed).size, 95)
    })
  )

  it.effect("a streamed job emits one outcome per statement in input order", () =>
    Effect.gen(function* () {
      yield* truncate
      const outcomes = yield* BatchJob.stream(Stream.range(0, 299).pipe(Stream.map((k) => insert(k, k))), {
        concurrency: 32,
        partitionKey: (statement) => String(statement.params[0])
      }).pipe(Stream.runCollect)
      assert.deepStrictEqual(
        outcomes.map((outcome) => [outcome._tag, outcome.index]),
        Array.from({ length: 300 }, (_, index) => ["Success", index])
      )
      assert.strictEqual(yield* countRows, 300)
    })
  )

  it.effect("the throttle never lets more than maxInFlight requests be in flight", () =>
    Effect.gen(function* () {
      const samples: Array<number> = []
      yield* Effect.forEach(
        Array.from({ length: 400 }, (_, k) => k),
        (k) => Effect.andThen(sampleInFlight(samples), insert(k, k)).pipe(Effect.andThen(sampleInFlight(samples))),
        { concurrency: 64, discard: true }
      ).pipe(Effect.provide(throttled(4, 1000)))
      assert.isAtMost(Math.max(...samples), 4)
      assert.isAtLeast(Math.max(...samples), 2, "the requests did overlap")
    })
  )

  it.effect("a full throttle queue fails the request at once with a Throttled reason", () =>
    Effect.gen(function* () {
      const report = yield* BatchJob.run(
        Array.from({ length: 40 }, (_, k) => insert(k, k)),
        { concurrency: 40 }
      ).pipe(Effect.provide(throttled(2, 3)))
      assert.isAtLeast(report.succeeded, 5)
      assert.isAbove(report.failures.length, 0)
      assert.deepStrictEqual(reasonTags(report), new Set(["Throttled"]))
      const reason = report.failures[0]?.error.reason
      assert.instanceOf(reason, CassandraError.Throttled)
      assert.deepInclude(reason, { maxInFlight: 2, maxQueued: 3 })
    })
  )

  it.effect("retries a throttled idempotent statement, never a non-idempotent one", () =>
    Effect.gen(function* () {
      yield* truncate
      const retry = Schedule.max([Schedule.spaced("5 millis"), Schedule.recurs(200)])
      // With one place and no queue, the second statement is refused while the first is in flight.
      const run = (second: Query.Statement<unknown>) =>
        BatchJob.run([insert(1, 1), second], { concurrency: 2, retry }).pipe(Effect.provide(throttled(1, 0)))
      const plain = yield* run(insert(2, 2))
      assert.deepStrictEqual(
        plain.failures.map((failure) => [failure.index, failure.error.reason._tag]),
        [[1, "Throttled"]]
      )
      const idempotent = yield* run(insert(3, 3).withOptions({ idempotent: true }))
      assert.deepStrictEqual(idempotent.failures, [])
      assert.strictEqual(idempotent.succeeded, 2)
      const rows = yield* cql<{ readonly k: number }>`SELECT k FROM ${items} WHERE p IN (1, 2, 3)`
      assert.deepStrictEqual(rows.map((row) => row.k).sort(), [1, 3])
    })
  )
})
