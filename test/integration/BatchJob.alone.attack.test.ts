/**
 * Statements a BatchJob worker sends alone and does not retry, against the node: each input's outcome is what
 * running its statement by itself gives, at its own index, whatever the concurrency, the session a statement is
 * bound to, or how often one statement object is repeated; an interrupted job's report matches the table.
 */
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as BatchJob from "effect-cassandra/BatchJob"
import * as CassandraError from "effect-cassandra/CassandraError"
import * as Query from "effect-cassandra/Query"
import * as Session from "effect-cassandra/Session"
import { progressReaches } from "../support/batchJob.ts"
import { sessionWithKeyspace, testOptions, uniqueKeyspace } from "../support/session.ts"

const { cql, identifier } = Query
const { keyspace, layer: sessionLayer } = sessionWithKeyspace("batch_job_alone")
const otherKeyspace = uniqueKeyspace("batch_job_alone_other")
const imported = identifier(keyspace, "imported")

interface KeyValue {
  readonly k: number
  readonly v: string
}

type Seen = readonly ["Success", ReadonlyArray<KeyValue>] | readonly ["Failure", string, string]

const rowsSeen = (rows: ReadonlyArray<unknown>): Seen => [
  "Success",
  rows.map((row) => ({ k: (row as KeyValue).k, v: (row as KeyValue).v }))
]

const errorSeen = (error: unknown): Seen =>
  CassandraError.isCassandraError(error)
    ? ["Failure", error.reason._tag, error.message]
    : ["Failure", String((error as { readonly _tag?: string })._tag), String(error)]

/** What running `statement` by itself gives: its rows, or its error's reason and message. */
const runAlone = (statement: Query.Statement<unknown>) =>
  Effect.map(Effect.exit(statement), (exit): Seen => {
    if (Exit.isSuccess(exit)) return rowsSeen(exit.value)
    const failure = exit.cause.reasons[0]
    return failure?._tag === "Fail" ? errorSeen(failure.error) : ["Failure", "defect", String(exit)]
  })

const outcomeSeen = (outcome: BatchJob.Outcome<unknown, unknown, unknown>): readonly [number, ...Seen] =>
  outcome._tag === "Success" ? [outcome.index, ...rowsSeen(outcome.rows)] : [outcome.index, ...errorSeen(outcome.error)]

layer(sessionLayer, { excludeTestServices: true, timeout: "5 minutes" })("BatchJob statements sent alone", (it) => {
  it.effect("creates the tables", () =>
    Effect.gen(function* () {
      yield* cql`CREATE TABLE kv (k int PRIMARY KEY, v text)`
      yield* cql`CREATE TABLE ${imported} (k int PRIMARY KEY, v text)`
    })
  )

  it.effect(
    "each input's outcome is what its statement gives alone, at its own index, at any concurrency",
    () =>
      Effect.gen(function* () {
        // A second session whose keyspace holds other values under the same keys: a statement bound to it reads those.
        yield* Effect.acquireRelease(
          cql`CREATE KEYSPACE ${identifier(otherKeyspace)} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
          () => cql`DROP KEYSPACE IF EXISTS ${identifier(otherKeyspace)}`.pipe(Effect.ignore)
        )
        const other = yield* Session.make(testOptions({ keyspace: otherKeyspace }))
        const bound = yield* Effect.provideService(Query.template, Session.Session, other)
        yield* bound`CREATE TABLE kv (k int PRIMARY KEY, v text)`
        const keys = Array.from({ length: 50 }, (_, k) => k)
        const written = yield* BatchJob.run([
          ...keys.map((k) => cql`INSERT INTO kv (k, v) VALUES (${k}, ${`here-${k}`})`),
          ...keys.map((k) => bound`INSERT INTO kv (k, v) VALUES (${k}, ${`there-${k}`})`)
        ])
        assert.strictEqual(written.succeeded, 100)

        const sharedHere = cql`SELECT k, v FROM kv WHERE k = ${7}`
        const sharedThere = bound`SELECT k, v FROM kv WHERE k = ${9}`
        const sharedInvalid = cql`SELECT k, v FROM no_such_table WHERE k = ${1}`
        const inputs = Array.from({ length: 400 }, (_, i): Query.Statement<unknown> => {
          const k = i % 50
          switch (i % 9) {
            case 0:
            case 1:
              return cql`SELECT k, v FROM kv WHERE k = ${k}`
            case 2:
            case 3:
              return bound`SELECT k, v FROM kv WHERE k = ${k}`
            case 4:
              return sharedHere
            case 5:
              return sharedThere
            case 6:
              return i % 2 === 0 ? sharedInvalid : cql`SELECT k, v FROM no_such_table WHERE k = ${k}`
            case 7:
              // A value that does not fit its column.
              return cql`SELECT k, v FROM kv WHERE k = ${`key-${k}`}`
            default:
              return bound`SELECT k, v FROM kv WHERE k = ${2 ** 40 + k}`
          }
        })
        const expected = yield* Effect.forEach(inputs, runAlone)
        assert.deepStrictEqual(expected[0], ["Success", [{ k: 0, v: "here-0" }]])
        assert.deepStrictEqual(expected[2], ["Success", [{ k: 2, v: "there-2" }]])
        assert.strictEqual(expected[6]?.[0], "Failure")
        assert.strictEqual(expected[7]?.[0], "Failure")
        assert.strictEqual(expected[8]?.[0], "Failure")
        const indexed = expected.map((seen, index) => [index, ...seen] as const)
        const failed = indexed.filter((seen) => seen[1] === "Failure")
        const schemaJob = BatchJob.schema({
          Request: Schema.Struct({ i: Schema.Number }),
          execute: (row) => inputs[row.i] as Query.Statement<unknown>
        })
        const rows = inputs.map((_, i) => ({ i }))
        for (const concurrency of [1, 2, 256, 10_000]) {
          const report = yield* BatchJob.run(inputs, { concurrency })
          assert.deepStrictEqual(report.outcomes.map(outcomeSeen), indexed, `concurrency ${concurrency}`)
          assert.strictEqual(report.failed, failed.length)
          for (const failure of report.failures) assert.strictEqual(failure.input, inputs[failure.index])
          assert.deepStrictEqual(
            BatchJob.unfinished(report),
            failed.map(([index]) => inputs[index] as Query.Statement<unknown>)
          )
          const encoded = yield* schemaJob.run(rows, { concurrency })
          assert.deepStrictEqual(encoded.outcomes.map(outcomeSeen), indexed, `schema job, concurrency ${concurrency}`)
          for (const failure of encoded.failures) assert.strictEqual(failure.input, rows[failure.index])
          const summary = yield* BatchJob.run(inputs, { concurrency, summary: true, maxFailures: 3 })
          assert.strictEqual(summary.failed, failed.length)
          assert.strictEqual(summary.succeeded, inputs.length - failed.length)
          assert.strictEqual(summary.failures.length, 3)
          for (const failure of summary.failures) assert.deepStrictEqual(outcomeSeen(failure), indexed[failure.index])
        }
        const streamed = yield* BatchJob.stream(Stream.fromIterable(inputs), { concurrency: 16 }).pipe(
          Stream.take(30),
          Stream.runCollect
        )
        assert.deepStrictEqual(Array.from(streamed, outcomeSeen), indexed.slice(0, 30))
      }).pipe(Effect.scoped),
    { timeout: 240_000 }
  )

  const rowCount = 4000
  const importedValue = (k: number) => `value-${k}`
  // Every 97th write holds a value that does not fit its column: it fails, and writes nothing.
  const fits = (k: number) => k % 97 !== 5
  const write = (k: number) =>
    fits(k)
      ? cql`INSERT INTO ${imported} (k, v) VALUES (${k}, ${importedValue(k)})`
      : cql`INSERT INTO ${imported} (k, v) VALUES (${k}, ${k})`
  const keysInTable = Effect.map(
    cql<KeyValue>`SELECT k, v FROM ${imported}`.withOptions({ pageSize: 5000 }).stream.pipe(Stream.runCollect),
    (rows) => {
      for (const row of rows) assert.strictEqual(row.v, importedValue(row.k))
      return rows.map((row) => row.k).sort((a, b) => a - b)
    }
  )
  interface JobUnderTest {
    readonly inputs: ReadonlyArray<unknown>
    readonly start: Effect.Effect<
      BatchJob.Job<BatchJob.Report<unknown, unknown, unknown>>,
      CassandraError.CassandraError,
      Session.Session | Scope.Scope
    >
  }
  const jobs: Record<string, (keys: ReadonlyArray<number>) => JobUnderTest> = {
    statements: (keys) => {
      const statements = keys.map(write)
      return {
        inputs: statements as ReadonlyArray<unknown>,
        start: BatchJob.start(statements, { concurrency: 64, progressInterval: "10 millis" })
      }
    },
    "a schema job": (keys) => {
      const job = BatchJob.schema({ Request: Schema.Struct({ k: Schema.Number }), execute: (row) => write(row.k) })
      const rows = keys.map((k) => ({ k }))
      return {
        inputs: rows as ReadonlyArray<unknown>,
        start: job.start(rows, { concurrency: 64, progressInterval: "10 millis" })
      }
    }
  }
  for (const [name, make] of Object.entries(jobs)) {
    it.effect(
      `${name} interrupted partway: the table holds exactly the writes reported done, and unfinished resumes the rest`,
      () =>
        Effect.gen(function* () {
          yield* cql`TRUNCATE ${imported}`
          const all = Array.from({ length: rowCount }, (_, k) => k)
          const { inputs, start } = make(all)
          const job = yield* Effect.scoped(
            Effect.gen(function* () {
              const job = yield* start
              yield* progressReaches(job, rowCount / 5)
              return job
            })
          )
          const report = yield* job.report
          assert.isTrue(report.interrupted)
          assert.isBelow(report.succeeded + report.failed, rowCount)
          const succeeded = report.outcomes.flatMap((outcome) => (outcome._tag === "Success" ? [outcome.index] : []))
          // Every request sent was waited for: a write in the table and not reported done would be written twice on
          // resuming, one reported done and not in the table would be lost.
          assert.deepStrictEqual(yield* keysInTable, succeeded)
          for (const failure of report.failures) {
            assert.isFalse(fits(failure.index))
            assert.strictEqual(failure.input, inputs[failure.index])
          }
          const unfinished = BatchJob.unfinished(report)
          assert.deepStrictEqual(
            unfinished,
            inputs.filter((_, index) => !succeeded.includes(index))
          )
          const resumed = yield* make(all.filter((k) => !succeeded.includes(k))).start.pipe(
            Effect.flatMap((job) => job.report),
            Effect.scoped
          )
          assert.strictEqual(resumed.failed, all.filter((k) => !fits(k)).length)
          assert.deepStrictEqual(yield* keysInTable, all.filter(fits))
        }),
      { timeout: 240_000 }
    )
  }
})
