import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import type * as CassandraError from "effect-cassandra/CassandraError"
import * as CqlSchema from "effect-cassandra/CqlSchema"
import * as CqlType from "effect-cassandra/CqlType"
import * as Query from "effect-cassandra/Query"
import * as Session from "effect-cassandra/Session"
import { sessionWithKeyspace, testOptions } from "../support/session.ts"

const { cql, identifier } = Query
const { keyspace, layer: sessionLayer } = sessionWithKeyspace("attacks")
const rows = identifier(keyspace, "rows")
const Row = Schema.Struct({ c: CqlType.Int })

const failureOf = <A, E>(exit: Exit.Exit<A, E>) => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  const reason = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
  assert.strictEqual(reason?._tag, "Fail", "expected a typed failure, not a defect")
  return reason?._tag === "Fail" ? reason.error : undefined
}

const reasonOf = <A, E>(exit: Exit.Exit<A, E>) => (failureOf(exit) as CassandraError.CassandraError | undefined)?.reason

/** Waits until the session's in-flight count satisfies `done`, polling (never sleeping for a guess). */
const waitForInFlight = (session: Session.Session, done: (count: number) => boolean) =>
  session.inFlight.pipe(
    Effect.repeat({ until: done, schedule: Schedule.spaced("10 millis") }),
    Effect.timeoutOrElse({ duration: "60 seconds", orElse: () => session.inFlight })
  )

layer(sessionLayer, { excludeTestServices: true })("Statement attacks", (it) => {
  it.effect("creates the table", () => cql`CREATE TABLE ${rows} (p int, c int, v int, PRIMARY KEY (p, c))`)

  it.effect(
    "runs template statements and their batches on their own session, also inside Query.batch, and fails them typed once it closed",
    () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const other = yield* Session.make(testOptions({ keyspace })).pipe(Scope.provide(scope))
        const bound = yield* Effect.provideService(Query.template, Session.Session, other)
        const insert = (c: number) => bound`INSERT INTO ${rows} (p, c, v) VALUES (${0}, ${c}, ${c})`
        assert.deepStrictEqual(yield* insert(1), [])
        assert.deepStrictEqual(yield* Query.batch([insert(2), cql`INSERT INTO ${rows} (p, c, v) VALUES (0, 3, 3)`]), {
          _tag: "Applied"
        })
        const count = CqlSchema.findOne({
          Result: Schema.Struct({ count: CqlType.BigInt }),
          execute: () => bound`SELECT count(*) AS count FROM ${rows} WHERE p = ${0}`
        })
        assert.deepStrictEqual(yield* count(), { count: 3n })
        yield* Scope.close(scope, Exit.void)
        // The session in context (the suite's, still open) does not take over a statement bound to the closed one.
        assert.strictEqual(reasonOf(yield* Effect.exit(insert(4)))?._tag, "SessionClosed")
        assert.strictEqual(reasonOf(yield* Effect.exit(Query.batch([insert(5)])))?._tag, "SessionClosed")
        assert.strictEqual(reasonOf(yield* Effect.exit(bound.batch([insert(6)])))?._tag, "SessionClosed")
        assert.strictEqual(reasonOf(yield* Effect.exit(count()))?._tag, "SessionClosed")
        assert.deepStrictEqual(
          (yield* cql`SELECT c FROM ${rows} WHERE p = ${0}`).map((row) => row.c),
          [1, 2, 3]
        )
      })
  )

  it.effect("gives every row or none for 0 rows and exactly a page of rows", () =>
    Effect.gen(function* () {
      const byPartition = (p: number) => cql`SELECT c FROM ${rows} WHERE p = ${p}`.withOptions({ pageSize: 2 })
      const findAll = CqlSchema.findAll({ Request: CqlType.Int, Result: Row, execute: byPartition })
      const findOneOption = CqlSchema.findOneOption({ Request: CqlType.Int, Result: Row, execute: byPartition })
      assert.deepStrictEqual(yield* findAll(1), [])
      assert.isTrue(Option.isNone(yield* findOneOption(1)))
      for (const c of [0, 1, 2, 3]) yield* cql`INSERT INTO ${rows} (p, c, v) VALUES (${1}, ${c}, ${c})`
      // Two full pages: the server answers the second with a page state, and the third page is empty.
      assert.deepStrictEqual(yield* findAll(1), [{ c: 0 }, { c: 1 }, { c: 2 }, { c: 3 }])
      assert.deepStrictEqual(yield* findOneOption(1), Option.some({ c: 0 }))
    })
  )

  it.effect("refuses more bound values than the protocol allows with a typed error giving the count", () =>
    Effect.gen(function* () {
      const most = Array.from({ length: 65_535 }, (_, c) => c)
      assert.deepStrictEqual(
        yield* cql`SELECT c FROM ${rows} WHERE p = ${99} AND c IN ${Query.inList(most.slice(1))}`,
        []
      )
      for (const count of [65_536, 100_000]) {
        const values = Array.from({ length: count }, (_, c) => c)
        const exit = yield* Effect.exit(cql`SELECT c FROM ${rows} WHERE p = 99 AND c IN ${Query.inList(values)}`)
        const reason = reasonOf(exit)
        assert.strictEqual(reason?._tag, "Invalid")
        assert.include(reason?.message ?? "", String(count))
        assert.include(reason?.message ?? "", "65535")
      }
      const strings = Object.assign(
        ["SELECT c FROM t WHERE c IN (", ...Array.from({ length: 65_535 }, () => ", "), ")"],
        { raw: [] }
      ) as unknown as TemplateStringsArray
      const many = Query.cql(strings, ...Array.from({ length: 65_536 }, (_, c) => c))
      assert.strictEqual(many.params.length, 65_536)
      assert.strictEqual(reasonOf(yield* Effect.exit(many))?._tag, "Invalid")
      // The session keeps serving.
      assert.deepStrictEqual(yield* cql`SELECT c FROM ${rows} WHERE p = ${99}`, [])
    })
  )

  it.effect(
    "leaves nothing in flight when findAll is interrupted between pages",
    () =>
      Effect.gen(function* () {
        yield* Effect.forEach(
          Array.from({ length: 3_000 }, (_, c) => c),
          (c) => cql`INSERT INTO ${rows} (p, c, v) VALUES (${2}, ${c}, ${c})`,
          { concurrency: 32, discard: true }
        )
        const session = yield* Session.Session
        const findAll = CqlSchema.findAll({
          Result: Row,
          execute: () => cql`SELECT c FROM ${rows} WHERE p = ${2}`.withOptions({ pageSize: 10 })
        })
        const fiber = yield* Effect.forkChild(findAll())
        assert.isAbove(yield* waitForInFlight(session, (count) => count > 0), 0)
        yield* Fiber.interrupt(fiber)
        assert.strictEqual(yield* waitForInFlight(session, (count) => count === 0), 0)
        assert.strictEqual((yield* findAll()).length, 3_000)
      }),
    { timeout: 180_000 }
  )
})
