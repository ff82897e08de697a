/**
 * What `yield*` takes from a statement: an iterator that answers with itself, so that a generator waiting in `yield*`
 * for a request holds no object literal (which V8 may pretenure, see src/internal/yieldOnce.ts), and that still gives
 * `Effect.gen` the statement, then its rows or its failure.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as CassandraError from "effect-cassandra/CassandraError"
import * as Query from "effect-cassandra/Query"
import * as Session from "effect-cassandra/Session"
import { runnerOver, sentCount } from "../support/requestRunner.ts"

const { cql } = Query

describe("a statement's iterator", () => {
  it("yields the statement once, then returns the value it is given, answering both calls with itself", () => {
    const statement = cql`SELECT v FROM ks.t WHERE k = ${1}`
    const iterator = statement[Symbol.iterator]()
    const first = iterator.next()
    assert.strictEqual<unknown>(first, iterator)
    assert.isFalse(first.done)
    assert.strictEqual(first.value, statement)
    const rows = [{ v: "a" }]
    const second = iterator.next(rows)
    assert.strictEqual<unknown>(second, iterator)
    assert.isTrue(second.done)
    assert.strictEqual(second.value, rows)
  })

  it("gives every yield* its own iterator, so a statement yielded twice (or in two fibers) yields twice", () => {
    const statement = cql`SELECT v FROM ks.t WHERE k = ${1}`
    const first = statement[Symbol.iterator]()
    const second = statement[Symbol.iterator]()
    assert.notStrictEqual(first, second)
    first.next()
    first.next([])
    assert.isFalse(second.next().done)
    assert.deepStrictEqual([...(statement as unknown as Iterable<unknown>)], [statement])
  })

  it.live("gives Effect.gen the rows of each request, then a request's failure", () =>
    Effect.gen(function* () {
      const requests: Array<{ readonly answer: (rows: Array<unknown>) => void; readonly fail: () => void }> = []
      const client = Object.assign(new Cassandra.Client({ contactPoints: ["192.0.2.1"], localDataCenter: "dc1" }), {
        execute: () =>
          new Promise((resolve, reject) => {
            requests.push({
              answer: (rows) => resolve({ rows, info: {} }),
              fail: () => reject(new Cassandra.errors.ResponseError(0x2200, "refused"))
            })
          })
      })
      const runner = yield* runnerOver(client, {})
      const session: Session.Session = { client, keyspace: undefined, ...runner }
      const statement = cql`SELECT v FROM ks.t WHERE k = ${1}`
      const fiber = yield* Effect.forkChild(
        Effect.gen(function* () {
          const first = yield* statement
          const second = yield* statement
          const third = yield* statement
          return [first, second, third]
        }).pipe(Effect.provideService(Session.Session, session))
      )
      yield* sentCount(requests, 1)
      requests[0]?.answer([{ v: "a" }])
      yield* sentCount(requests, 2)
      requests[1]?.answer([{ v: "b" }])
      yield* sentCount(requests, 3)
      requests[2]?.fail()
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.findErrorOption(exit)
      assert.isTrue(Option.isSome(error) && CassandraError.isCassandraError(error.value))
      assert.strictEqual(requests.length, 3)
    })
  )
})
