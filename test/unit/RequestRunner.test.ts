import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scheduler from "effect/Scheduler"
import * as Scope from "effect/Scope"
import * as CassandraError from "effect-cassandra/CassandraError"
import type * as Session from "effect-cassandra/Session"
import {
  countedRunner,
  holdEventLoopUntil,
  recordingClient,
  request,
  runnerOver,
  sentAtLeast,
  sentCount,
  until
} from "../support/requestRunner.ts"

describe("request runner", () => {
  it.live("bounds each attempt by the attempt timeout and by the request's own deadline", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const runner = yield* runnerOver(client, { requestTimeout: "12 seconds", attemptTimeout: "6 seconds" })
      const fibers = yield* Effect.forEach([request(), request({ timeout: "3 seconds" })], (r) =>
        Effect.forkChild(runner.execute(r))
      )
      yield* sentCount(calls, 2)
      assert.strictEqual(calls[0]!.options.readTimeout, 6000)
      // The time left of the 3-second deadline when the driver reads it.
      assert.isAtMost(calls[1]!.options.readTimeout!, 3000)
      assert.isAtLeast(calls[1]!.options.readTimeout!, 2000)
      for (const call of calls) call.answer()
      yield* Fiber.joinAll(fibers)
    }).pipe(Effect.scoped)
  )

  it.live("gives a request started from the throttle queue only the time its deadline has left", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const runner = yield* runnerOver(client, {
        requestTimeout: "1 second",
        attemptTimeout: "30 seconds",
        throttle: { maxInFlight: 1, maxQueued: 1 }
      })
      const first = yield* Effect.forkChild(runner.execute(request()))
      yield* sentCount(calls, 1)
      const second = yield* Effect.forkChild(runner.execute(request()))
      // The second request waits at least this long for its place, less the moment it takes to be submitted.
      yield* Effect.sleep("300 millis")
      calls[0]!.answer()
      yield* sentCount(calls, 2)
      const readTimeout = calls[1]!.options.readTimeout
      assert.isDefined(readTimeout)
      assert.isAtMost(readTimeout!, 800)
      assert.isAtLeast(readTimeout!, 1)
      calls[1]!.answer()
      yield* Fiber.join(first)
      yield* Fiber.await(second)
    }).pipe(Effect.scoped)
  )

  it.live(
    "bounds every attempt of a request, retries and speculative ones too, by the time its deadline has left",
    () =>
      Effect.gen(function* () {
        const { calls, client } = recordingClient()
        const runner = yield* runnerOver(client, { requestTimeout: "1 second", attemptTimeout: "30 seconds" })
        const fiber = yield* Effect.forkChild(runner.execute(request()))
        yield* sentCount(calls, 1)
        // The driver reads the read timeout again for each attempt it sends (a retry on the next node, say).
        const first = calls[0]!.options.readTimeout!
        assert.isAtMost(first, 1000)
        yield* Effect.sleep("400 millis")
        const later = calls[0]!.options.readTimeout!
        assert.isAtMost(later, 600)
        assert.isAtLeast(later, 1)
        calls[0]!.answer()
        yield* Fiber.join(fiber)
      }).pipe(Effect.scoped)
  )

  it.live("gives a statement's attempts its own attempt timeout, or its longer deadline when it sets none", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const runner = yield* runnerOver(client, {
        requestTimeout: "12 seconds",
        attemptTimeout: "6 seconds",
        drainTimeout: "10 millis"
      })
      const fibers = yield* Effect.forEach(
        [
          request({ attemptTimeout: "2 seconds" }),
          request({ timeout: "30 seconds", attemptTimeout: "20 seconds" }),
          // Still bounded by the time its deadline has left.
          request({ timeout: "3 seconds", attemptTimeout: "20 seconds" }),
          request({ timeout: "30 seconds" }),
          request({ timeout: "3 seconds" }),
          request({ timeout: Duration.infinity })
        ],
        (r) => Effect.forkChild(runner.execute(r))
      )
      yield* sentCount(calls, 6)
      const readTimeouts = calls.map((call) => call.options.readTimeout!)
      assert.strictEqual(readTimeouts[0], 2000)
      assert.strictEqual(readTimeouts[1], 20_000)
      assert.isAtMost(readTimeouts[2]!, 3000)
      assert.isAbove(readTimeouts[3]!, 6000)
      assert.isAtMost(readTimeouts[3]!, 30_000)
      assert.isAtMost(readTimeouts[4]!, 3000)
      // The driver's way to say no read timeout.
      assert.strictEqual(readTimeouts[5], 0)
      for (const call of calls) call.answer()
      yield* Fiber.joinAll(fibers)
    }).pipe(Effect.scoped)
  )

  it.live(
    "ends a request at its deadline however long learning why re-preparing failed would take",
    () =>
      Effect.gen(function* () {
        const unprepared = Object.assign(
          new Cassandra.errors.ResponseError(Cassandra.types.responseErrorCodes.unprepared, "Prepared query not found"),
          { queryId: Buffer.from("0102", "hex") }
        )
        const client = {
          keyspace: undefined,
          // Waited for that long when nothing shorter bounds it: past the test's own bound below.
          options: { socketOptions: { readTimeout: 600_000 } },
          metadata: { getPreparedById: () => ({ query: "SELECT v FROM kv WHERE k = ?", keyspace: "ks" }) },
          // A node that never answers the PREPARE sent only to learn the cause.
          hosts: { get: () => ({ borrowConnection: () => ({ prepareOnceAsync: () => new Promise(() => {}) }) }) },
          execute: () => Promise.reject(new Cassandra.errors.NoHostAvailableError({ "10.0.0.1:9042": unprepared }))
        } as unknown as Cassandra.Client
        const runner = yield* runnerOver(client, { requestTimeout: "200 millis" })
        const ended = yield* Effect.flip(runner.execute(request())).pipe(Effect.timeoutOption("10 seconds"))
        assert.isTrue(Option.isSome(ended), "the request ended, not held by the PREPARE that never answers")
        if (Option.isSome(ended)) assert.strictEqual(ended.value.reason._tag, "NoHostAvailable")
        assert.strictEqual(yield* runner.inFlight, 0)
      }).pipe(Effect.scoped),
    30_000
  )

  it.live("turns a driver call that throws into a typed error and gives its throttle place back", () =>
    Effect.gen(function* () {
      const client = {
        keyspace: undefined,
        execute: () => {
          throw new TypeError("driver bug")
        }
      } as unknown as Cassandra.Client
      const runner = yield* runnerOver(client, { throttle: { maxInFlight: 1, maxQueued: 0 } })
      // More requests than the throttle has places: each must have given its place back.
      for (let attempt = 0; attempt < 3; attempt++) {
        const error = yield* Effect.flip(runner.execute(request()))
        assert.isTrue(CassandraError.isCassandraError(error))
        assert.notStrictEqual(error.reason._tag, "Throttled")
      }
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("sets no deadline and no attempt timeout for an infinite one", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const runner = yield* runnerOver(client, { requestTimeout: "Infinity", attemptTimeout: "Infinity" })
      const fiber = yield* Effect.forkChild(runner.execute(request()))
      yield* sentCount(calls, 1)
      // The driver's own way to say no read timeout.
      assert.strictEqual(calls[0]!.options.readTimeout, 0)
      yield* Effect.sleep("20 millis")
      assert.isUndefined(fiber.pollUnsafe())
      calls[0]!.answer()
      yield* Fiber.join(fiber)
    }).pipe(Effect.scoped)
  )
})

/** Options whose every read throws: a Proxy over nothing, as a hostile or broken caller could pass. */
const throwingOptions = new Proxy({} as Session.RequestOptions, {
  get: () => {
    throw new Error("hostile getter")
  },
  has: () => {
    throw new Error("hostile has")
  }
})

describe("request runner under hostile request options", () => {
  it.live("refuses each with a typed error naming the option, counts nothing in flight and keeps serving", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const runner = yield* runnerOver(client, { throttle: { maxInFlight: 1, maxQueued: 0 } })
      let reads = 0
      const cases: ReadonlyArray<readonly [unknown, string]> = [
        [throwingOptions, "timeout could not be read"],
        [
          {
            get consistency() {
              throw new Error("boom")
            }
          },
          "consistency could not be read"
        ],
        [{ consistency: Symbol("ONE") }, "consistency"],
        [{ pageSize: Number.NaN }, "pageSize"],
        [{ pageSize: Number.POSITIVE_INFINITY }, "pageSize"],
        [{ pageSize: -0 }, "pageSize"],
        [{ pageSize: 2 ** 53 + 1 }, "pageSize"],
        [{ pageSize: "100" }, "pageSize"],
        [{ timeout: Symbol("1 second") }, "timeout"],
        [{ timeout: Number.NaN }, "timeout"],
        [{ timeout: -0 }, "timeout"],
        [{ timeout: 0 }, "timeout"],
        [{ timeout: "soon" }, "timeout"],
        [{ timeout: 2 ** 31 }, "timeout"],
        [{ attemptTimeout: 0 }, "attemptTimeout"],
        [{ attemptTimeout: "soon" }, "attemptTimeout"],
        [{ attemptTimeout: 2 ** 31 }, "attemptTimeout"],
        [{ timestamp: 1_700_000_000_000_000 }, "timestamp"],
        [{ timestamp: new Date(Number.NaN) }, "timestamp"],
        [{ routingKey: [...Array.from({ length: 100_000 }, () => new Uint8Array(1)), "key"] }, "routingKey"],
        [{ routingKey: [] }, "routingKey"],
        [{ idempotent: "yes" }, "idempotent"],
        [{ pageState: 42 }, "pageState"],
        [{ executionProfile: {} }, "executionProfile"],
        // Valid when checked, invalid when read again: every option is read once.
        [
          {
            get timestamp() {
              reads++
              return reads === 1 ? 1_700_000_000_000_000n : new Date(Number.NaN)
            }
          },
          "none"
        ],
        [null, "options must be an object"]
      ]
      for (const [options, named] of cases) {
        if (named === "none") {
          const sent = yield* Effect.forkChild(runner.execute(request(options as Session.RequestOptions)))
          yield* sentCount(calls, 1)
          assert.strictEqual(String(calls[0]!.options.timestamp), "1700000000000000")
          calls.shift()!.answer()
          yield* Fiber.join(sent)
          continue
        }
        const error = yield* Effect.flip(
          runner.execute({ query: "INSERT INTO kv (k) VALUES (?)", params: [1], options: options as never })
        )
        assert.isTrue(CassandraError.isCassandraError(error), `a typed error for ${named}`)
        assert.strictEqual(error.reason._tag, "InvalidArgument")
        assert.include(error.message, named)
        assert.strictEqual(yield* runner.inFlight, 0)
      }
      // The single place of the throttle was never kept: a good request still goes through.
      const good = yield* Effect.forkChild(runner.execute(request()))
      yield* sentAtLeast(calls, 1)
      for (const call of calls) call.answer()
      yield* Fiber.join(good)
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )
})

/**
 * A runner with a one-place throttle that a first request holds, sent and unanswered, closed by `scope` (at the latest
 * with the test's scope). `answerFirstLate` answers it while the event loop is held past the 20 ms deadlines of the
 * requests queued meanwhile: their timers have not fired yet when its answer gives the place on.
 */
const placeHeldByFirst = (options: { readonly maxQueued: number; readonly drainTimeout: Duration.Input }) =>
  Effect.gen(function* () {
    const { calls, client } = recordingClient()
    const scope = yield* Scope.fork(yield* Effect.scope)
    const runner = yield* runnerOver(client, {
      throttle: { maxInFlight: 1, maxQueued: options.maxQueued },
      drainTimeout: options.drainTimeout
    }).pipe(Scope.provide(scope))
    const first = yield* Effect.forkChild(runner.execute(request()))
    yield* sentCount(calls, 1)
    const answerFirstLate = Effect.sync(() => {
      holdEventLoopUntil(performance.now() + 100)
      calls[0]!.answer()
    }).pipe(Effect.andThen(Fiber.join(first)))
    /** Lets the requests just submitted reach the queue, starts closing, then answers the first request late. */
    const closeThenAnswerFirstLate = Effect.gen(function* () {
      yield* Effect.yieldNow
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* Effect.yieldNow
      yield* answerFirstLate
      return closing
    })
    /** Checks that the request `queued` (page size 7) is sent while `closing` waits, which ends once it is answered. */
    const sentBeforeClosingEnds = (queued: Fiber.Fiber<unknown, unknown>, closing: Fiber.Fiber<void, unknown>) =>
      Effect.gen(function* () {
        yield* sentCount(calls, 2)
        assert.strictEqual(calls[1]!.options.fetchSize, 7)
        assert.isUndefined(closing.pollUnsafe(), "closing ended with a request still to send")
        calls[1]!.answer()
        yield* Fiber.join(queued)
        yield* Fiber.join(closing)
      })
    return { calls, runner, scope, first, answerFirstLate, closeThenAnswerFirstLate, sentBeforeClosingEnds }
  })

describe("request runner under interruption and deadlines", () => {
  it.live("never sends a request interrupted or timed out while queued, and counts a started one until it ends", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const runner = yield* runnerOver(client, { throttle: { maxInFlight: 1, maxQueued: 3 } })
      const first = yield* Effect.forkChild(runner.execute(request()))
      yield* sentCount(calls, 1)
      const interrupted = yield* Effect.forkChild(runner.execute(request()))
      const expiring = yield* Effect.forkChild(runner.execute(request({ timeout: "50 millis" })))
      const next = yield* Effect.forkChild(runner.execute(request({ pageSize: 7 })))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(interrupted)
      const expired = yield* Effect.flip(Fiber.join(expiring))
      assert.strictEqual(expired.reason._tag, "ClientTimeout")
      calls[0]!.answer()
      yield* Fiber.join(first)
      yield* sentCount(calls, 2)
      // Only the request still waiting was started.
      assert.strictEqual(calls[1]!.options.fetchSize, 7)
      yield* Fiber.interrupt(next)
      // Interrupted after it was sent: still in flight until the driver answers, holding its place.
      assert.strictEqual(yield* runner.inFlight, 1)
      calls[1]!.answer()
      yield* until(runner.inFlight, (n) => n === 0)
      const after = yield* Effect.forkChild(runner.execute(request()))
      yield* sentCount(calls, 3)
      calls[2]!.answer()
      yield* Fiber.join(after)
      assert.strictEqual(calls.length, 3)
    }).pipe(Effect.scoped)
  )

  it.live("fails a request whose deadline ran out while queued at once, unsent, and gives its place on", () =>
    Effect.gen(function* () {
      const { calls, runner, answerFirstLate } = yield* placeHeldByFirst({ maxQueued: 1, drainTimeout: "10 millis" })
      const expiring = yield* Effect.forkChild(runner.execute(request({ timeout: "20 millis" })))
      yield* Effect.yieldNow
      yield* answerFirstLate
      const expired = yield* Effect.flip(Fiber.join(expiring))
      assert.strictEqual(expired.reason._tag, "ClientTimeout")
      assert.strictEqual(calls.length, 1, "the expired request was never sent")
      assert.strictEqual(yield* runner.inFlight, 0)
      // Its place was not kept: the next request is sent at once, not queued behind it.
      const next = yield* Effect.forkChild(runner.execute(request()))
      yield* sentCount(calls, 2)
      calls[1]!.answer()
      yield* Fiber.join(next)
    }).pipe(Effect.scoped)
  )

  it.live("drains a request queued behind one whose deadline ran out while queued, sending it before closing", () =>
    Effect.gen(function* () {
      const { runner, closeThenAnswerFirstLate, sentBeforeClosingEnds } = yield* placeHeldByFirst({
        maxQueued: 2,
        drainTimeout: "30 seconds"
      })
      const expiring = yield* Effect.forkChild(runner.execute(request({ timeout: "20 millis" })))
      const queued = yield* Effect.forkChild(runner.execute(request({ pageSize: 7 })))
      // The first request's answer gives the place to the expired one, which passes it on later: closing must not end
      // in between, since the request behind it is then sent.
      const closing = yield* closeThenAnswerFirstLate
      assert.strictEqual((yield* Effect.flip(Fiber.join(expiring))).reason._tag, "ClientTimeout")
      yield* sentBeforeClosingEnds(queued, closing)
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("drains a request queued behind an expired one when closing starts as the expired one fails", () =>
    Effect.gen(function* () {
      const { runner, scope, answerFirstLate, sentBeforeClosingEnds } = yield* placeHeldByFirst({
        maxQueued: 2,
        drainTimeout: "30 seconds"
      })
      // Its failure starts closing at once, while the place it was given is still to be passed on.
      const closing = yield* Effect.forkChild(
        Effect.exit(runner.execute(request({ timeout: "20 millis" }))).pipe(
          Effect.andThen(Scope.close(scope, Exit.void))
        )
      )
      const queued = yield* Effect.forkChild(runner.execute(request({ pageSize: 7 })))
      yield* Effect.yieldNow
      yield* answerFirstLate
      yield* sentBeforeClosingEnds(queued, closing)
    }).pipe(Effect.scoped)
  )

  it.live("closes without waiting for its drain timeout when every queued request expired unsent", () =>
    Effect.gen(function* () {
      const { calls, runner, closeThenAnswerFirstLate } = yield* placeHeldByFirst({
        maxQueued: 3,
        drainTimeout: "1 minute"
      })
      const expiring = yield* Effect.forEach([1, 2, 3], () =>
        Effect.forkChild(runner.execute(request({ timeout: "20 millis" })))
      )
      const closing = yield* closeThenAnswerFirstLate
      for (const fiber of expiring) {
        assert.strictEqual((yield* Effect.flip(Fiber.join(fiber))).reason._tag, "ClientTimeout")
      }
      const closed = yield* Fiber.join(closing).pipe(Effect.timeoutOption("10 seconds"))
      assert.isTrue(Option.isSome(closed), "closing waited for its drain timeout")
      assert.strictEqual(calls.length, 1, "no expired request was sent")
    }).pipe(Effect.scoped)
  )

  it.live("fails a request still queued when closing stops waiting for it, unsent, as the session closed", () =>
    Effect.gen(function* () {
      const { calls, runner, scope, first } = yield* placeHeldByFirst({ maxQueued: 1, drainTimeout: "10 millis" })
      const queued = yield* Effect.forkChild(runner.execute(request({ pageSize: 7 })))
      yield* Effect.yieldNow
      // The first request outlasts the drain timeout: closing ends with the second still queued.
      yield* Scope.close(scope, Exit.void)
      calls[0]!.answer()
      yield* Fiber.join(first)
      assert.strictEqual((yield* Effect.flip(Fiber.join(queued))).reason._tag, "SessionClosed")
      assert.strictEqual(calls.length, 1, "the queued request was sent after closing ended")
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("fails a request still queued as closing stops waiting, while the request holding its place still runs", () =>
    Effect.gen(function* () {
      const { calls, runner, scope, first } = yield* placeHeldByFirst({ maxQueued: 1, drainTimeout: "10 millis" })
      const queued = yield* Effect.forkChild(runner.execute(request({ timeout: Duration.infinity })))
      yield* Effect.yieldNow
      // The first request is never answered by the caller's client before the queued one ends.
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual((yield* Effect.flip(Fiber.join(queued))).reason._tag, "SessionClosed")
      assert.strictEqual(calls.length, 1, "the queued request was sent after closing ended")
      calls[0]!.answer()
      yield* Fiber.join(first)
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("counts each queued request once when closing fails one and the requests run beside it are interrupted", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const scope = yield* Scope.make()
      const { runner, summary } = yield* countedRunner(client, {
        drainTimeout: "10 millis",
        throttle: { maxInFlight: 1, maxQueued: 3 }
      }).pipe(Scope.provide(scope))
      const first = yield* Effect.forkChild(runner.execute(request()))
      yield* sentCount(calls, 1)
      let submitted = 0
      const submitting = Effect.suspend(() => {
        submitted++
        return runner.execute(request())
      })
      // The first of them to fail interrupts the other two, still queued, as closing fails them one after another.
      const together = yield* Effect.forkChild(
        Effect.exit(Effect.all([submitting, submitting, submitting], { concurrency: "unbounded" }))
      )
      yield* until(
        Effect.sync(() => submitted),
        (n) => n === 3
      )
      yield* Effect.yieldNow
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(Exit.isFailure(yield* Fiber.join(together)))
      calls[0]!.answer()
      yield* Fiber.join(first)
      const { requests, succeeded, failed, interrupted } = yield* summary
      assert.deepStrictEqual(
        { requests, succeeded, failed, interrupted },
        { requests: 4, succeeded: 1, failed: 1, interrupted: 2 }
      )
      assert.strictEqual(calls.length, 1, "a queued request was sent after closing ended")
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("refuses a request submitted once closing started, though its effect was built before", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const scope = yield* Scope.make()
      const runner = yield* runnerOver(client, { drainTimeout: "30 seconds" }).pipe(Scope.provide(scope))
      // A scheduler that makes the request's fiber yield once, between building the request and submitting it.
      let yieldOnce = false
      const standard = new Scheduler.MixedScheduler()
      const yieldingOnce: Scheduler.Scheduler = {
        executionMode: standard.executionMode,
        makeDispatcher: () => standard.makeDispatcher(),
        shouldYield: (fiber) => {
          if (!yieldOnce) return standard.shouldYield(fiber)
          yieldOnce = false
          return true
        }
      }
      let closing: Fiber.Fiber<void> | undefined
      // Read as the request is built: the session starts closing while its fiber has yielded.
      const options = {
        get pageSize() {
          yieldOnce = true
          queueMicrotask(() => {
            closing = Effect.runFork(Scope.close(scope, Exit.void))
          })
          return 7
        }
      }
      const refused = yield* Effect.forkChild(
        runner.execute(request(options)).pipe(Effect.provideService(Scheduler.Scheduler, yieldingOnce))
      )
      yield* until(
        Effect.sync(() => closing?.pollUnsafe() !== undefined),
        (closed) => closed
      )
      assert.strictEqual(calls.length, 0, "the request was sent after closing started")
      assert.strictEqual((yield* Effect.flip(Fiber.join(refused))).reason._tag, "SessionClosed")
    })
  )

  it.live("accepts write timestamps exactly at the window's bounds and refuses one microsecond outside", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const runner = yield* runnerOver(client, {})
      const floor = BigInt(Date.UTC(2000, 0, 1)) * 1000n
      const dayMillis = 24 * 60 * 60 * 1000
      const accepted: ReadonlyArray<bigint | Date> = [
        floor,
        new Date(Date.UTC(2000, 0, 1)),
        // A minute inside the ceiling of one day from now (the clock moves while the test runs).
        BigInt(Date.now() + dayMillis - 60_000) * 1000n
      ]
      const refused: ReadonlyArray<bigint | Date> = [
        floor - 1n,
        new Date(Date.UTC(2000, 0, 1) - 1),
        BigInt(Date.now() + dayMillis + 60_000) * 1000n
      ]
      for (const timestamp of refused) {
        const error = yield* Effect.flip(runner.execute(request({ timestamp })))
        assert.include(error.message, "timestamp must count microseconds since the epoch, from 2000-01-01")
      }
      for (const timestamp of [-(2n ** 63n), 2n ** 63n - 1n]) {
        const fiber = yield* Effect.forkChild(runner.execute(request({ timestamp, allowAnyTimestamp: true })))
        yield* sentCount(calls, 1)
        assert.strictEqual(String(calls[0]!.options.timestamp), String(timestamp))
        calls.shift()!.answer()
        yield* Fiber.join(fiber)
      }
      const outOfRange = yield* Effect.flip(runner.execute(request({ timestamp: 2n ** 63n, allowAnyTimestamp: true })))
      assert.include(outOfRange.message, "signed 64-bit")
      for (const timestamp of accepted) {
        const fiber = yield* Effect.forkChild(runner.execute(request({ timestamp })))
        yield* sentCount(calls, 1)
        calls.shift()!.answer()
        yield* Fiber.join(fiber)
      }
    }).pipe(Effect.scoped)
  )
})

describe("request runner session deadline", () => {
  it.live("times out every request under the session's timeout, an interrupted one aside, and keeps serving", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const runner = yield* runnerOver(client, { requestTimeout: "50 millis" })
      const fibers = yield* Effect.forEach([1, 2, 3], () => Effect.forkChild(runner.execute(request())))
      yield* sentCount(calls, 3)
      yield* Fiber.interrupt(fibers[1]!)
      for (const fiber of [fibers[0]!, fibers[2]!]) {
        const error = yield* Effect.flip(Fiber.join(fiber))
        assert.strictEqual(error.reason._tag, "ClientTimeout")
        assert.include(error.message, "50ms")
      }
      // The driver never answered: all three are still in flight, the interrupted one included.
      assert.strictEqual(yield* runner.inFlight, 3)
      for (const call of calls) call.answer()
      yield* until(runner.inFlight, (n) => n === 0)
      const next = yield* Effect.forkChild(runner.execute(request()))
      yield* sentCount(calls, 4)
      calls[3]!.answer()
      yield* Fiber.join(next)
    }).pipe(Effect.scoped)
  )
})

describe("request runner statements", () => {
  it.live("refuses a statement or batch that cannot be read with a typed error, and keeps serving", () =>
    Effect.gen(function* () {
      const { client } = recordingClient()
      const runner = yield* runnerOver(client, {})
      const hostileStatement = Object.defineProperty({ params: [] }, "query", {
        enumerable: true,
        get: () => {
          throw new Error("hostile getter")
        }
      })
      const cases: ReadonlyArray<readonly [unknown, unknown]> = [
        [null, { type: "logged" }],
        [[hostileStatement], { type: "logged" }],
        [[null], { type: "logged" }],
        [[{ query: 42, params: [] }], { type: "logged" }],
        [[{ query: "INSERT INTO kv (k) VALUES (1)", params: [] }], null]
      ]
      for (const [statements, options] of cases) {
        const exit = yield* Effect.exit(Effect.suspend(() => runner.batch(statements as never, options as never)))
        assert.isTrue(exit._tag === "Failure" && !Cause.hasDies(exit.cause), "a typed failure, not a defect")
        const error = yield* Effect.flip(Effect.suspend(() => runner.batch(statements as never, options as never)))
        assert.strictEqual(error.reason._tag, "InvalidArgument")
        assert.include(error.message, "the request was not sent")
      }
      for (const hostile of [
        null,
        { query: 42, params: [], options: {} },
        Object.defineProperties({ options: {} }, Object.getOwnPropertyDescriptors(hostileStatement))
      ]) {
        const error = yield* Effect.flip(Effect.suspend(() => runner.execute(hostile as never)))
        assert.strictEqual(error.reason._tag, "InvalidArgument")
      }
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )
})
