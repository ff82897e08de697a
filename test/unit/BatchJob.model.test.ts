/**
 * BatchJob against a stand-in client that answers each request at random (seeded, so a failing seed reproduces):
 * the report must say what the stand-in answered, every input once, with retries and batch splits as promised.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as BatchJob from "effect-cassandra/BatchJob"
import * as CassandraError from "effect-cassandra/CassandraError"
import * as Query from "effect-cassandra/Query"
import { Session } from "effect-cassandra/Session"
import { refusedBeforeApplying } from "../../src/internal/batchJob.ts"
import { runnerOver, until } from "../support/requestRunner.ts"

/** A small seeded generator (mulberry32): the same seed gives the same job and the same answers. */
const generator = (seed: number) => {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const below = (n: number) => Math.floor(next() * n)
  const pick = <A>(choices: ReadonlyArray<A>): A => choices[below(choices.length)] as A
  return { next, below, pick }
}

type Answer = "ok" | "overloaded" | "invalid" | "server"

const driverError = (answer: Exclude<Answer, "ok">) =>
  answer === "overloaded"
    ? new Cassandra.errors.ResponseError(0x1001, "overloaded")
    : answer === "invalid"
      ? new Cassandra.errors.ResponseError(0x2200, "value too large")
      : new Cassandra.errors.ResponseError(0x0000, "server error")

const classified = (answer: Exclude<Answer, "ok">) => CassandraError.fromDriverError(driverError(answer))

const retried = (answer: Answer) => answer !== "ok" && classified(answer).isRetryable

interface Sent {
  readonly batch: boolean
  readonly keys: ReadonlyArray<number>
  readonly partitions: ReadonlyArray<unknown>
  readonly answer: Answer
}

/**
 * A session over a stand-in client that answers every request (statement or batch) with an answer drawn from
 * `random`, after a random short wait, and logs what it was sent, what it answered and how many requests were in
 * flight at most. A statement's parameters are its partition and its key.
 */
const randomSession = (random: ReturnType<typeof generator>, weights: Record<Answer, number>) =>
  Effect.gen(function* () {
    const log: Array<Sent> = []
    let inFlight = 0
    let maxInFlight = 0
    const answers = Object.entries(weights).flatMap(([answer, weight]) => Array(weight).fill(answer) as Array<Answer>)
    const respond = (batch: boolean, statements: ReadonlyArray<{ readonly params: ReadonlyArray<unknown> }>) => {
      const answer = random.pick(answers)
      log.push({
        batch,
        keys: statements.map((statement) => statement.params[1] as number),
        partitions: statements.map((statement) => statement.params[0]),
        answer
      })
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      const wait = random.below(3)
      return new Promise((resolve, reject) => {
        const settle = () => {
          inFlight--
          if (answer === "ok") resolve({ rows: [], info: {}, wasApplied: () => true })
          else reject(driverError(answer))
        }
        if (wait === 0) queueMicrotask(settle)
        else if (wait === 1) setImmediate(settle)
        else setTimeout(settle, 1)
      })
    }
    const client = {
      keyspace: undefined,
      execute: (_query: string, params: ReadonlyArray<unknown>) => respond(false, [{ params }]),
      batch: (statements: ReadonlyArray<{ readonly params: ReadonlyArray<unknown> }>) => respond(true, statements)
    } as unknown as Cassandra.Client
    const runner = yield* runnerOver(client, {})
    const session: Session = { client, keyspace: undefined, ...runner }
    return {
      session,
      log,
      maxInFlight: () => maxInFlight,
      reset: () => {
        log.length = 0
        maxInFlight = 0
      }
    }
  })

interface Case {
  readonly total: number
  readonly options: BatchJob.Options<unknown> & BatchJob.ReportOptions
  readonly idempotent: ReadonlyArray<boolean | undefined>
  /** The inputs a schema job's Schema refuses (none for a statement job): never sent, failed alone. */
  readonly refused: ReadonlySet<number>
  readonly schemaJob: boolean
  readonly recurrences: number | undefined
  readonly partitions: number | undefined
}

const caseOf = (random: ReturnType<typeof generator>): Case => {
  const total = random.pick([0, 1, 2, 5, 17, 64, 150, 300])
  const recurrences = random.pick([undefined, 0, 1, 3])
  const partitions = random.pick([undefined, 1, 3, 40])
  const summary = random.next() < 0.3
  const schemaJob = random.next() < 0.3
  return {
    total,
    recurrences,
    partitions,
    schemaJob,
    idempotent: Array.from({ length: total }, () => random.pick([true, false, undefined])),
    refused: new Set(schemaJob ? Array.from({ length: total }, (_, k) => k).filter(() => random.next() < 0.1) : []),
    options: {
      concurrency: random.pick([1, 2, 3, 7, 64, 1000]),
      ...(recurrences === undefined ? {} : { retry: Schedule.recurs(recurrences) }),
      ...(partitions === undefined
        ? {}
        : {
            partitionKey: (statement: Query.Statement<unknown>) => String(statement.params[0]),
            maxBatchSize: random.pick([1, 2, 5, 20])
          }),
      ...(summary ? { summary: true, maxFailures: random.pick([0, 1, 5, 1000]) } : {})
    }
  }
}

const insert = (k: number, partition: number, idempotent: boolean | undefined) => {
  const statement = Query.cql`INSERT INTO t (p, k) VALUES (${partition}, ${k})`
  return idempotent === undefined ? statement : statement.withOptions({ idempotent })
}

const Row = Schema.Struct({
  k: Schema.Number,
  p: Schema.Number,
  idempotent: Schema.UndefinedOr(Schema.Boolean),
  tag: Schema.String.check(Schema.isMaxLength(4))
})

const jobOf = (test: Case) => {
  // What the report keeps follows `summary` whatever the overload: the checks read it as a summary.
  const options = test.options as BatchJob.Options<unknown> & { readonly summary?: false }
  const partitionOf = (k: number) => (test.partitions === undefined ? k : k % test.partitions)
  if (!test.schemaJob) {
    const statements = Array.from({ length: test.total }, (_, k) => insert(k, partitionOf(k), test.idempotent[k]))
    const run: Effect.Effect<
      BatchJob.Summary<unknown, unknown, unknown>,
      CassandraError.CassandraError,
      Session
    > = BatchJob.run(statements, options)
    const start: Effect.Effect<
      BatchJob.Job<BatchJob.Summary<unknown, unknown, unknown>>,
      CassandraError.CassandraError,
      Session | Scope.Scope
    > = BatchJob.start(statements, options)
    return { inputs: statements as ReadonlyArray<unknown>, run, start }
  }
  const rows = Array.from({ length: test.total }, (_, k) => ({
    k,
    p: partitionOf(k),
    idempotent: test.idempotent[k],
    tag: test.refused.has(k) ? "too long" : "ok"
  }))
  const job = BatchJob.schema({ Request: Row, execute: (row) => insert(row.k, row.p, row.idempotent) })
  const run: Effect.Effect<
    BatchJob.Summary<unknown, unknown, unknown>,
    CassandraError.CassandraError,
    Session
  > = job.run(rows, options)
  const start: Effect.Effect<
    BatchJob.Job<BatchJob.Summary<unknown, unknown, unknown>>,
    CassandraError.CassandraError,
    Session | Scope.Scope
  > = job.start(rows, options)
  return { inputs: rows as ReadonlyArray<unknown>, run, start }
}

const reasonOf = (error: unknown) =>
  CassandraError.isCassandraError(error) ? error.reason._tag : (error as { readonly _tag: string })._tag

/**
 * Checks a finished job's report against what the stand-in answered: the outcome of each input is the last answer
 * it was part of; its attempts follow the retry rule, batch by batch and then alone after a refused batch.
 */
/**
 * Checks a job's report against what the stand-in answered: the outcome of each input is the last answer it was
 * part of; its attempts follow the retry rule, batch by batch and then alone after a refused batch. After an
 * interruption, an input has no outcome when it was never sent, when its last answer would have been retried, or
 * when its batch was refused and it was not sent alone yet; a refused value may or may not have been reached.
 */
const check = (
  test: Case,
  inputs: ReadonlyArray<unknown>,
  log: ReadonlyArray<Sent>,
  summary: BatchJob.Summary<unknown, unknown, unknown>,
  interrupted = false
) => {
  const sentOf = Array.from({ length: test.total }, () => [] as Array<Sent>)
  for (const sent of log) {
    if (sent.batch) {
      assert.isAtLeast(sent.keys.length, 2, "a batch of one statement is sent alone")
      assert.isAtMost(sent.keys.length, test.options.maxBatchSize ?? 20)
      assert.strictEqual(new Set(sent.partitions).size, 1, "a batch holds one partition")
      assert.strictEqual(new Set(sent.keys.map((k) => test.idempotent[k] === true)).size, 1, "equal idempotence")
    }
    for (const k of sent.keys) sentOf[k]?.push(sent)
  }
  const allowed = (k: number) =>
    test.recurrences !== undefined && test.idempotent[k] === true ? test.recurrences + 1 : 1
  type Expected = { readonly tag: string; readonly reason?: string } | "none" | "maybe refused"
  const expected: Array<Expected> = []
  for (let k = 0; k < test.total; k++) {
    const requests = sentOf[k] as Array<Sent>
    if (test.refused.has(k)) {
      assert.strictEqual(requests.length, 0, `refused input ${k} was sent`)
      expected.push(interrupted ? "maybe refused" : { tag: "Failure", reason: "CqlSchemaError" })
      continue
    }
    if (requests.length === 0) {
      assert.isTrue(interrupted, `input ${k} was never sent`)
      expected.push("none")
      continue
    }
    const batched = requests.filter((sent) => sent.batch)
    const alone = requests.filter((sent) => !sent.batch)
    assert.deepStrictEqual(requests, [...batched, ...alone], `input ${k}: sent in a batch after being sent alone`)
    let settled = true
    for (const [episode, attempts] of [
      ["batch", batched],
      ["alone", alone]
    ] as const) {
      if (attempts.length === 0) continue
      const where = `input ${k} ${episode}: ${attempts.map((sent) => sent.answer).join(",")}`
      assert.isAtMost(attempts.length, allowed(k), where)
      for (const sent of attempts.slice(0, -1)) assert.isTrue(retried(sent.answer), where)
      const last = (attempts.at(-1) as Sent).answer
      const retriesLeft = retried(last) && attempts.length < allowed(k)
      if (!interrupted) assert.isFalse(retriesLeft, `retries ended early: ${where}`)
      const split = episode === "batch" && last !== "ok" && !retriesLeft && refusedBeforeApplying(classified(last))
      if (episode === "batch") {
        if (!interrupted || alone.length > 0) assert.strictEqual(alone.length > 0, split, where)
        settled = !retriesLeft && !split
      } else {
        settled = !retriesLeft
      }
    }
    const last = (requests.at(-1) as Sent).answer
    expected.push(
      !settled ? "none" : last === "ok" ? { tag: "Success" } : { tag: "Failure", reason: classified(last).reason._tag }
    )
  }
  const definite = (outcome: Expected) => (typeof outcome === "string" ? undefined : outcome)
  const maybe = expected.flatMap((outcome, index) => (outcome === "maybe refused" ? [index] : []))
  const failedIndices = expected.flatMap((outcome, index) => (definite(outcome)?.tag === "Failure" ? [index] : []))
  const succeededIndices = expected.flatMap((outcome, index) => (definite(outcome)?.tag === "Success" ? [index] : []))
  assert.strictEqual(summary.interrupted, interrupted)
  assert.strictEqual(summary.total, test.total)
  assert.strictEqual(summary.succeeded, succeededIndices.length)
  assert.isAtLeast(summary.failed, failedIndices.length)
  assert.isAtMost(summary.failed, failedIndices.length + maybe.length)
  const failures = summary.failures.map((failure) => [failure.index, reasonOf(failure.error)])
  const expectedFailures = failedIndices.map((index) => [index, (expected[index] as { reason: string }).reason])
  const isMaybe = ([index, reason]: ReadonlyArray<unknown>) =>
    maybe.includes(index as number) && reason === "CqlSchemaError"
  if (test.options.summary === true) {
    const kept = Math.min(summary.failed, test.options.maxFailures ?? 1000)
    assert.strictEqual(failures.length, kept)
    for (const failure of failures) if (!isMaybe(failure)) assert.deepInclude(expectedFailures, failure)
    assert.deepStrictEqual(
      failures.map(([index]) => index),
      [...failures.map(([index]) => index as number)].sort((a, b) => a - b)
    )
  } else {
    assert.deepStrictEqual(
      failures.filter((failure) => !isMaybe(failure)),
      expectedFailures
    )
    const report = summary as BatchJob.Report<unknown, unknown, unknown>
    assert.deepStrictEqual(
      report.outcomes
        .map((outcome) =>
          outcome._tag === "Success" ? [outcome.index, "Success"] : [outcome.index, reasonOf(outcome.error)]
        )
        .filter((outcome) => !isMaybe(outcome)),
      expected.flatMap((outcome, index) => {
        const known = definite(outcome)
        return known === undefined ? [] : [known.tag === "Success" ? [index, "Success"] : [index, known.reason]]
      })
    )
    for (const failure of report.failures) assert.strictEqual(failure.input, inputs[failure.index])
  }
  assert.deepStrictEqual(
    BatchJob.unfinished(summary),
    inputs.filter((_, index) => !succeededIndices.includes(index))
  )
}

describe("BatchJob against random answers", () => {
  for (let seed = 1; seed <= 80; seed++) {
    it.live(`seed ${seed}: the report says what was answered, retries and splits as promised, run twice`, () =>
      Effect.gen(function* () {
        const random = generator(seed)
        const test = caseOf(random)
        const stub = yield* randomSession(random, { ok: 6, overloaded: 3, invalid: 1, server: 1 })
        const { inputs, run } = jobOf(test)
        // The same job effect run twice gives two reports, each of its own run.
        for (let round = 0; round < 2; round++) {
          stub.reset()
          const summary = yield* run.pipe(Effect.provideService(Session, stub.session))
          check(test, inputs, stub.log, summary as BatchJob.Summary<unknown, unknown, unknown>)
          assert.isAtMost(stub.maxInFlight(), test.options.concurrency ?? 64)
        }
      }).pipe(Effect.scoped)
    )
  }

  for (let seed = 201; seed <= 260; seed++) {
    it.live(`seed ${seed}: interrupted, the report keeps every settled answer and resumes exactly`, () =>
      Effect.gen(function* () {
        const random = generator(seed)
        const test = caseOf(random)
        const stub = yield* randomSession(random, { ok: 6, overloaded: 3, invalid: 1, server: 1 })
        const { inputs, start } = jobOf(test)
        const sentBeforeInterrupting = random.below(Math.max(1, test.total))
        const summary = yield* Effect.scoped(
          Effect.gen(function* () {
            const job = yield* start
            yield* until(
              Effect.sync(() => stub.log.length),
              (sent) => sent >= sentBeforeInterrupting
            ).pipe(Effect.raceFirst(Effect.asVoid(job.report)))
            return yield* job.interrupt
          })
        ).pipe(Effect.provideService(Session, stub.session))
        check(test, inputs, stub.log, summary, summary.interrupted)
      }).pipe(Effect.scoped)
    )
  }

  for (let seed = 101; seed <= 120; seed++) {
    it.live(`seed ${seed}: one job effect run twice at once gives two independent reports`, () =>
      Effect.gen(function* () {
        const random = generator(seed)
        const test = caseOf(random)
        const stub = yield* randomSession(random, { ok: 6, overloaded: 3, invalid: 1, server: 1 })
        const { inputs, run } = jobOf(test)
        const reports = yield* Effect.all([run, run], { concurrency: 2 }).pipe(
          Effect.provideService(Session, stub.session)
        )
        for (const summary of reports as ReadonlyArray<BatchJob.Summary<unknown, unknown, unknown>>) {
          assert.strictEqual(summary.total, test.total)
          assert.strictEqual(summary.succeeded + summary.failed, test.total)
          const unfinished = BatchJob.unfinished(summary)
          assert.strictEqual(unfinished.length, summary.failed)
          if ("outcomes" in summary) {
            const report = summary as BatchJob.Report<unknown, unknown, unknown>
            assert.deepStrictEqual(
              report.outcomes.map((outcome) => outcome.index),
              inputs.map((_, index) => index)
            )
            assert.deepStrictEqual(
              unfinished,
              report.outcomes.filter(BatchJob.isFailure).map((failure) => inputs[failure.index])
            )
          }
        }
        assert.isAtMost(stub.maxInFlight(), 2 * (test.options.concurrency ?? 64))
        // Both runs sent every input that the Schema did not refuse.
        const sentKeys = new Set(stub.log.flatMap((sent) => sent.keys))
        assert.strictEqual(sentKeys.size, test.total - test.refused.size)
      }).pipe(Effect.scoped)
    )
  }
})

describe("BatchJob hostile inputs", () => {
  it.live("a schema job grouped by partition keeps `concurrency` requests in flight", () =>
    Effect.gen(function* () {
      const stub = yield* randomSession(generator(7), { ok: 1, overloaded: 0, invalid: 0, server: 0 })
      const rows = Array.from({ length: 1000 }, (_, k) => ({ k, p: k, idempotent: undefined, tag: "ok" }))
      const job = BatchJob.schema({ Request: Row, execute: (row) => insert(row.k, row.p, row.idempotent) })
      const report = yield* job
        .run(rows, { concurrency: 16, partitionKey: (statement) => String(statement.params[0]) })
        .pipe(Effect.provideService(Session, stub.session))
      assert.strictEqual(report.succeeded, 1000)
      assert.strictEqual(stub.maxInFlight(), 16)
    }).pipe(Effect.scoped)
  )

  it.live("an input that is not a statement fails alone with a typed error; the others run", () =>
    Effect.gen(function* () {
      const stub = yield* randomSession(generator(8), { ok: 1, overloaded: 0, invalid: 0, server: 0 })
      const inputs = [insert(0, 0, true), {}, 42, insert(3, 3, true)] as unknown as ReadonlyArray<Query.Statement>
      for (const options of [{}, { partitionKey: () => "p" }]) {
        const exit = yield* Effect.exit(
          BatchJob.run(inputs, options).pipe(Effect.provideService(Session, stub.session))
        )
        assert.isTrue(Exit.isSuccess(exit), String(exit))
        if (!Exit.isSuccess(exit)) continue
        const report = exit.value
        assert.deepStrictEqual(
          report.outcomes.map((outcome) => [outcome.index, outcome._tag]),
          [
            [0, "Success"],
            [1, "Failure"],
            [2, "Failure"],
            [3, "Success"]
          ]
        )
        assert.deepStrictEqual(
          report.failures.map((failure) => failure.error.reason._tag),
          ["Configuration", "Configuration"]
        )
        assert.include(report.failures[0]?.error.message, "index 1")
        assert.deepStrictEqual(BatchJob.unfinished(report), inputs.slice(1, 3))
      }
    }).pipe(Effect.scoped)
  )

  it.live("a retry schedule that throws fails the statement it was retrying, typed; the job goes on", () =>
    Effect.gen(function* () {
      const stub = yield* randomSession(generator(9), { ok: 0, overloaded: 1, invalid: 0, server: 0 })
      const retry = Schedule.recurs(3).pipe(
        Schedule.map(() => {
          throw new Error("schedule bug")
        })
      )
      const statements = [insert(0, 0, true), insert(1, 1, true), insert(2, 2, false)]
      for (const options of [{ retry }, { retry, partitionKey: () => "p", maxBatchSize: 2 }]) {
        const exit = yield* Effect.exit(
          BatchJob.run(statements, options).pipe(Effect.provideService(Session, stub.session))
        )
        assert.isTrue(Exit.isSuccess(exit), String(exit))
        if (!Exit.isSuccess(exit)) continue
        assert.deepStrictEqual(
          exit.value.failures.map((failure) => [failure.index, failure.error.reason._tag]),
          [
            [0, "Configuration"],
            [1, "Configuration"],
            [2, "Overloaded"]
          ]
        )
        assert.deepStrictEqual(BatchJob.unfinished(exit.value), statements)
      }
    }).pipe(Effect.scoped)
  )

  it.live("the same statement object repeated is run and reported once per position", () =>
    Effect.gen(function* () {
      const stub = yield* randomSession(generator(10), { ok: 2, overloaded: 1, invalid: 0, server: 0 })
      const statement = insert(5, 5, true)
      const statements = Array.from({ length: 200 }, () => statement)
      const report = yield* BatchJob.run(statements, { concurrency: 9, retry: Schedule.recurs(10) }).pipe(
        Effect.provideService(Session, stub.session)
      )
      assert.deepStrictEqual(
        report.outcomes.map((outcome) => [outcome.index, outcome._tag]),
        statements.map((_, index) => [index, "Success"])
      )
      assert.strictEqual(stub.log.filter((sent) => sent.answer === "ok").length, 200)
    }).pipe(Effect.scoped)
  )
})
