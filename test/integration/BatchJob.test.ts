import { assert, layer } from "@effect/vitest"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as BatchJob from "effect-cassandra/BatchJob"
import * as CassandraError from "effect-cassandra/CassandraError"
import { CqlSchemaError } from "effect-cassandra/CqlSchema"
import * as CqlType from "effect-cassandra/CqlType"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Query from "effect-cassandra/Query"
import { Session } from "effect-cassandra/Session"
import { progressReaches } from "../support/batchJob.ts"
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
  Session.use((session) => Effect.tap(session.inFlight, (n) => Effect.sync(() => samples.push(n))))

const throttled = (maxInFlight: number, maxQueued: number) =>
  CassandraLayer.layer(testOptions({ keyspace, throttle: { maxInFlight, maxQueued } }))

const reasonTags = (report: BatchJob.Summary<unknown>) => new Set(report.failures.map((f) => f.error.reason._tag))

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
  it.effect("a partition batch writes each statement with its own write timestamp", () =>
    Effect.gen(function* () {
      yield* truncate
      // Six statements of one partition, two timestamps interleaved: each row must carry the one it was given.
      const hourAgo = BigInt(Date.now() - 3_600_000) * 1000n
      const timestampOf = (k: number) => (k % 2 === 0 ? hourAgo : hourAgo + 1_000_000n)
      const statements = Array.from({ length: 6 }, (_, k) =>
        cql`INSERT INTO ${items} (p, k, v) VALUES (${0}, ${k}, ${k})`.withOptions({ timestamp: timestampOf(k) })
      )
      const report = yield* BatchJob.run(statements, { partitionKey: (statement) => String(statement.params[0]) })
      assert.strictEqual(report.succeeded, 6)
      const rows = yield* cql<{ readonly k: number; readonly written: bigint }>`
        SELECT k, WRITETIME(v) AS written FROM ${items} WHERE p = ${0}`
      assert.deepStrictEqual(
        rows.map((row) => [row.k, row.written]),
        Array.from({ length: 6 }, (_, k) => [k, timestampOf(k)])
      )
    })
  )

  it.effect("a partition batch keeps each statement's consistency", () =>
    Effect.gen(function* () {
      yield* truncate
      // One replica: consistency TWO cannot be met, so exactly the statements that asked for it must fail.
      const statements = Array.from({ length: 6 }, (_, k) =>
        k % 3 === 0 ? insert(7 * k, k).withOptions({ consistency: "TWO" }) : insert(7 * k, k)
      )
      const report = yield* BatchJob.run(statements, { partitionKey: (statement) => String(statement.params[0]) })
      assert.deepStrictEqual(
        report.failures.map((failure) => [failure.index, failure.error.reason._tag]),
        [
          [0, "Unavailable"],
          [3, "Unavailable"]
        ]
      )
      assert.strictEqual(yield* countRows, 4)
    })
  )

  it.effect("a streamed job sends what an unfinished source gave within the grouping delay, in input order", () =>
    Effect.gen(function* () {
      yield* truncate
      const outcomes: Array<BatchJob.Outcome<unknown>> = []
      const source = Stream.concat(Stream.fromIterable([insert(0, 0), insert(7, 7), insert(1, 1)]), Stream.never)
      const fiber = yield* BatchJob.stream(source, { partitionKey: (statement) => String(statement.params[0]) }).pipe(
        Stream.runForEach((outcome) => Effect.sync(() => outcomes.push(outcome))),
        Effect.forkChild
      )
      yield* countRows.pipe(Effect.repeat({ until: (count) => count === 3, schedule: Schedule.spaced("20 millis") }))
      yield* Effect.sync(() => outcomes.length).pipe(
        Effect.repeat({ until: (count) => count === 3, schedule: Schedule.spaced("20 millis") })
      )
      assert.deepStrictEqual(
        outcomes.map((outcome) => [outcome._tag, outcome.index]),
        [
          ["Success", 0],
          ["Success", 1],
          ["Success", 2]
        ]
      )
      yield* Fiber.interrupt(fiber)
    })
  )

  it.effect("a summary keeps counts and the first failures, and still resumes every failed statement", () =>
    Effect.gen(function* () {
      yield* truncate
      const badValue = (k: number) => cql`INSERT INTO ${items} (p, k, v) VALUES (${k % 7}, ${k}, ${"x"})`
      const summary = yield* BatchJob.run(
        Array.from({ length: 60 }, (_, k) => (k % 2 === 0 ? badValue(k) : insert(k, k))),
        { summary: true, maxFailures: 5 }
      )
      assert.isFalse("outcomes" in summary)
      assert.strictEqual(summary.total, 60)
      assert.strictEqual(summary.succeeded, 30)
      assert.strictEqual(summary.failed, 30)
      assert.strictEqual(summary.failures.length, 5)
      assert.strictEqual(BatchJob.unfinished(summary).length, 30)
      assert.strictEqual(yield* countRows, 30)
    })
  )

  it.effect("a schema job encodes each input, and an input its Schema refuses fails alone without its value", () =>
    Effect.gen(function* () {
      const prices = identifier(keyspace, "prices")
      yield* cql`CREATE TABLE IF NOT EXISTS ${prices} (k int PRIMARY KEY, price decimal)`
      const job = BatchJob.schema({
        Request: Schema.Struct({ k: CqlType.Int, price: CqlType.Decimal }),
        execute: (row) => cql`INSERT INTO ${prices} (k, price) VALUES (${row.k}, ${row.price})`
      })
      const inputs = [
        { k: 1, price: BigDecimal.fromStringUnsafe("12.345") },
        { k: 2 ** 40, price: BigDecimal.fromStringUnsafe("1") },
        { k: 3, price: BigDecimal.fromStringUnsafe("-0.000000000000000000001") }
      ]
      const report = yield* job.run(inputs, { concurrency: 2 })
      assert.strictEqual(report.succeeded, 2)
      assert.deepStrictEqual(
        report.failures.map((failure) => failure.index),
        [1]
      )
      const error = report.failures[0]?.error
      assert.instanceOf(error, CqlSchemaError)
      assert.notInclude(error?.message ?? "", String(2 ** 40))
      assert.deepStrictEqual(BatchJob.unfinished(report), inputs.slice(1, 2))
      const rows = yield* cql<{ readonly k: number; readonly price: unknown }>`SELECT k, price FROM ${prices}`
      assert.deepStrictEqual(rows.map((row) => [row.k, String(row.price)]).sort(), [
        [1, "12.345"],
        [3, "-0.000000000000000000001"]
      ])
      const streamed = yield* job
        .stream(Stream.fromIterable(inputs), { partitionKey: (statement) => String(statement.params[0]) })
        .pipe(Stream.runCollect)
      assert.deepStrictEqual(
        streamed.map((outcome) => [outcome._tag, outcome.index]),
        [
          ["Success", 0],
          ["Failure", 1],
          ["Success", 2]
        ]
      )
    })
  )

  it.effect("a statement refused in a partition batch fails alone, and the rest of its batch is written", () =>
    Effect.gen(function* () {
      yield* truncate
      const badValue = (k: number) => cql`INSERT INTO ${items} (p, k, v) VALUES (${0}, ${k}, ${"x"})`
      const statements = Array.from({ length: 10 }, (_, k) => (k === 4 ? badValue(k) : insert(7 * k, k)))
      const report = yield* BatchJob.run(statements, { partitionKey: () => "one batch" })
      assert.deepStrictEqual(
        report.failures.map((failure) => [failure.index, failure.error.reason._tag]),
        [[4, "InvalidArgument"]]
      )
      assert.strictEqual(yield* countRows, 9)
      assert.deepStrictEqual(BatchJob.unfinished(report), statements.slice(4, 5))
    })
  )

  it.effect("counter updates grouped with plain writes, and reads given a partition key, all run", () =>
    Effect.gen(function* () {
      yield* truncate
      const counts = identifier(keyspace, "counts")
      yield* cql`CREATE TABLE IF NOT EXISTS ${counts} (p int, k int, n counter, PRIMARY KEY (p, k))`
      yield* cql`TRUNCATE ${counts}`
      const statements = Array.from({ length: 12 }, (_, k) =>
        k % 3 === 0
          ? cql`UPDATE ${counts} SET n = n + ${BigInt(k + 1)} WHERE p = ${0} AND k = ${k}`
          : k % 3 === 1
            ? insert(0, k)
            : cql`SELECT k FROM ${items} WHERE p = ${0} AND k = ${0}`.withOptions({ idempotent: false })
      )
      const report = yield* BatchJob.run(statements, { partitionKey: () => "0", concurrency: 1 })
      assert.deepStrictEqual(report.failures, [])
      const counted = yield* cql<{ readonly k: number; readonly n: bigint }>`SELECT k, n FROM ${counts} WHERE p = ${0}`
      assert.deepStrictEqual(
        counted.map((row) => [row.k, row.n]),
        [0, 3, 6, 9].map((k) => [k, BigInt(k + 1)])
      )
      assert.strictEqual(yield* countRows, 1)
    })
  )

  it.effect("a batch the server refuses, interrupted while in flight, fails none of its statements", () =>
    Effect.gen(function* () {
      yield* truncate
      const counts = identifier(keyspace, "refused_counts")
      yield* cql`CREATE TABLE IF NOT EXISTS ${counts} (p int, k int, n counter, PRIMARY KEY (p, k))`
      yield* cql`TRUNCATE ${counts}`
      // A counter update and a plain write: each is valid alone, the server refuses the two in one batch.
      const pair = (k: number) => [
        cql`UPDATE ${counts} SET n = n + ${1n} WHERE p = ${0} AND k = ${k}`,
        insert(7 * k, k)
      ]
      const inFlight = Session.use((session) => session.inFlight)
      for (let k = 0; k < 20; k++) {
        const statements = pair(k)
        const report = yield* Effect.scoped(
          Effect.gen(function* () {
            const job = yield* BatchJob.start(statements, { partitionKey: () => "0" })
            // The interruption comes while the batch, or a statement sent alone after it, is in flight.
            yield* Effect.repeat(Effect.andThen(Effect.yieldNow, inFlight), { until: (n) => n > 0 })
            return yield* job.interrupt
          })
        )
        assert.deepStrictEqual(report.failures, [], `job ${k}`)
        const resumed = yield* BatchJob.run(BatchJob.unfinished(report))
        assert.deepStrictEqual(resumed.failures, [], `job ${k}`)
      }
      // Every statement was applied once: by the interrupted job or by its resumption.
      const counted = yield* cql<{ readonly k: number; readonly n: bigint }>`SELECT k, n FROM ${counts} WHERE p = ${0}`
      assert.deepStrictEqual(
        counted.map((row) => [row.k, row.n]),
        Array.from({ length: 20 }, (_, k) => [k, 1n])
      )
      assert.strictEqual(yield* countRows, 20)
    })
  )

  it.effect("conditional writes are never batched: each is applied or not on its own condition", () =>
    Effect.gen(function* () {
      yield* truncate
      yield* insert(7, 100)
      const ifNotExists = (k: number) => cql`INSERT INTO ${items} (p, k, v) VALUES (${0}, ${k}, ${k}) IF NOT EXISTS`
      // One partition: a conditional batch would be applied all or nothing; several: the server refuses it.
      for (const [name, statements] of [
        ["one partition", [ifNotExists(6), ifNotExists(7), ifNotExists(8)]],
        [
          "several partitions",
          [3, 4, 5].map((k) => cql`INSERT INTO ${items} (p, k, v) VALUES (${k}, ${k}, ${k}) IF NOT EXISTS`)
        ]
      ] as const) {
        const report = yield* BatchJob.run(statements, { partitionKey: () => "0" })
        assert.deepStrictEqual(report.failures, [], name)
      }
      const rows = yield* cql<{
        readonly p: number
        readonly k: number
        readonly v: number
      }>`SELECT p, k, v FROM ${items}`
      assert.deepStrictEqual(
        rows.map((row) => [row.p, row.k, row.v]).sort((a, b) => (a[1] ?? 0) - (b[1] ?? 0)),
        [
          [3, 3, 3],
          [4, 4, 4],
          [5, 5, 5],
          [0, 6, 6],
          [0, 7, 100],
          [0, 8, 8]
        ]
      )
    })
  )

  it.effect("a job interrupted while a retry sleeps resumes exactly", () =>
    Effect.gen(function* () {
      yield* truncate
      const statements = Array.from({ length: 20 }, (_, k) => insert(k, k).withOptions({ idempotent: true }))
      const report = yield* Effect.scoped(
        Effect.gen(function* () {
          // One place and no queue: statements are refused as Throttled and wait an hour before their next try.
          const job = yield* BatchJob.start(statements, {
            concurrency: 4,
            retry: Schedule.spaced("1 hour"),
            progressInterval: "5 millis"
          })
          yield* progressReaches(job, 1)
          return yield* job.interrupt
        })
      ).pipe(Effect.provide(throttled(1, 0)))
      assert.isTrue(report.interrupted)
      assert.isBelow(report.succeeded, 20)
      assert.deepStrictEqual(report.failures, [])
      const unfinished = BatchJob.unfinished(report)
      assert.strictEqual(unfinished.length, 20 - report.succeeded)
      assert.strictEqual(yield* countRows, report.succeeded)
      const resumed = yield* BatchJob.run(unfinished)
      assert.strictEqual(resumed.succeeded, unfinished.length)
      assert.strictEqual(yield* countRows, 20)
    })
  )
})
