import { assert, describe, it } from "@effect/vitest"
import * as CassandraError from "effect-cassandra/CassandraError"
import * as fc from "fast-check"
import { makeThrottle } from "../../src/internal/throttle.ts"

describe("throttle", () => {
  it("never runs more than maxInFlight tasks, queues at most maxQueued, and starts waiting tasks in order", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 8 }),
        fc.array(fc.constantFrom("submit", "release", "withdraw"), { maxLength: 200 }),
        (maxInFlight, maxQueued, steps) => {
          const throttle = makeThrottle({ maxInFlight, maxQueued })
          const started: Array<number> = []
          const withdrawals: Array<() => void> = []
          let submitted = 0
          let refused = 0
          let withdrawn = 0
          for (const step of steps) {
            if (step === "submit") {
              const id = submitted++
              const withdraw = throttle.submit(() => started.push(id))
              if (withdraw === undefined) refused++
              else withdrawals.push(withdraw)
            } else if (step === "release" && throttle.running() > 0) {
              throttle.release()
            } else if (step === "withdraw") {
              const waitingBefore = throttle.waiting()
              withdrawals.shift()?.()
              withdrawn += waitingBefore - throttle.waiting()
            }
            assert.isAtMost(throttle.running(), maxInFlight)
            assert.isAtMost(throttle.waiting(), maxQueued)
          }
          assert.deepStrictEqual(
            started,
            [...started].sort((a, b) => a - b),
            "tasks start in submission order"
          )
          assert.strictEqual(started.length + throttle.waiting() + refused + withdrawn, submitted)
        }
      )
    )
  })

  it("refuses a task when the queue is full and starts the longest-waiting one on release", () => {
    const throttle = makeThrottle({ maxInFlight: 1, maxQueued: 1 })
    const started: Array<string> = []
    assert.isDefined(throttle.submit(() => started.push("a")))
    assert.isDefined(throttle.submit(() => started.push("b")))
    assert.isUndefined(throttle.submit(() => started.push("c")))
    assert.deepStrictEqual(started, ["a"])
    throttle.release()
    assert.deepStrictEqual(started, ["a", "b"])
    assert.strictEqual(throttle.running(), 1)
    throttle.release()
    assert.strictEqual(throttle.running(), 0)
  })

  it("starts every waiting task at once when asked, each holding a place until released", () => {
    const throttle = makeThrottle({ maxInFlight: 1, maxQueued: 3 })
    const started: Array<string> = []
    throttle.submit(() => started.push("a"))
    const withdrawB = throttle.submit(() => started.push("b"))
    throttle.submit(() => started.push("c"))
    throttle.submit(() => started.push("d"))
    withdrawB?.()
    throttle.startAllWaiting()
    assert.deepStrictEqual(started, ["a", "c", "d"])
    assert.strictEqual(throttle.waiting(), 0)
    assert.strictEqual(throttle.running(), 3)
    for (let i = 0; i < 3; i++) throttle.release()
    assert.strictEqual(throttle.running(), 0)
    assert.isDefined(throttle.submit(() => started.push("e")))
    assert.deepStrictEqual(started, ["a", "c", "d", "e"])
  })

  it("starts no task withdrawn by one started before it when all waiting ones start at once", () => {
    const throttle = makeThrottle({ maxInFlight: 1, maxQueued: 3 })
    const started: Array<string> = []
    throttle.submit(() => started.push("a"))
    const withdraw: Array<(() => void) | undefined> = []
    withdraw.push(
      throttle.submit(() => {
        started.push("b")
        for (const withdrawOne of withdraw) withdrawOne?.()
      })
    )
    withdraw.push(throttle.submit(() => started.push("c")))
    withdraw.push(throttle.submit(() => started.push("d")))
    throttle.startAllWaiting()
    assert.deepStrictEqual(started, ["a", "b"])
    assert.strictEqual(throttle.running(), 2)
  })

  it("never starts a withdrawn task", () => {
    const throttle = makeThrottle({ maxInFlight: 1, maxQueued: 2 })
    const started: Array<string> = []
    throttle.submit(() => started.push("a"))
    const withdrawB = throttle.submit(() => started.push("b"))
    throttle.submit(() => started.push("c"))
    withdrawB?.()
    throttle.release()
    assert.deepStrictEqual(started, ["a", "c"])
    assert.strictEqual(throttle.waiting(), 0)
  })
})

describe("CassandraError: Throttled", () => {
  it("is kept as the reason of the request it refused, retryable, with the limits in its message", () => {
    const error = CassandraError.fromDriverError(new CassandraError.Throttled({ maxInFlight: 8, maxQueued: 100 }), {
      operation: "INSERT",
      statement: "INSERT INTO t (k) VALUES (?)"
    })
    assert.instanceOf(error.reason, CassandraError.Throttled)
    assert.isTrue(error.isRetryable)
    assert.strictEqual(error.operation, "INSERT")
    assert.include(error.message, "8 requests in flight, 100 waiting")
  })
})
