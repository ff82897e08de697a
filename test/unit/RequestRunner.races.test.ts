import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import type * as Session from "effect-cassandra/Session"
import { consistencyCode } from "../../src/internal/clientOptions.ts"
import { recordingClient, request, runnerOver, until } from "../support/requestRunner.ts"

/** Spans of Effect's own kind, kept by the test, whose `attribute` throws for the keys `throwsOn` names. */
const recordingTracer = (throwsOn: (key: string) => boolean = () => false) => {
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = Tracer.nativeTracer.span(options)
      const attribute = span.attribute.bind(span)
      span.attribute = (key, value) => {
        if (throwsOn(key)) throw new Error(`exporter refused ${key}`)
        attribute(key, value)
      }
      spans.push(span)
      return span
    }
  })
  return { spans, tracer }
}

const diedOf = <A, E>(exit: Exit.Exit<A, E>) => Exit.isFailure(exit) && Cause.hasDies(exit.cause)

describe("request runner under a tracer that throws", () => {
  it.live("fails the request whose result could not be annotated with a defect, and keeps serving", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const runner = yield* runnerOver(client, {})
      const { tracer } = recordingTracer((key) => key === "cassandra.speculative_execution.count")
      const fiber = yield* Effect.forkChild(runner.execute(request()).pipe(Effect.withTracer(tracer)))
      yield* until(
        Effect.sync(() => calls.length),
        (n) => n === 1
      )
      calls[0]!.answer()
      assert.isTrue(diedOf(yield* Fiber.await(fiber)))
      assert.strictEqual(yield* runner.inFlight, 0)
      const next = yield* Effect.forkChild(runner.execute(request()))
      yield* until(
        Effect.sync(() => calls.length),
        (n) => n === 2
      )
      calls[1]!.answer()
      yield* Fiber.join(next)
    }).pipe(Effect.scoped)
  )

  it.live("ends every request expiring at once, those whose timeout could not be annotated with a defect", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const runner = yield* runnerOver(client, { requestTimeout: "30 millis" })
      const { tracer } = recordingTracer((key) => key === "error.type")
      const traced = yield* Effect.forkChild(runner.execute(request()).pipe(Effect.withTracer(tracer)))
      const plain = yield* Effect.forEach([1, 2], () => Effect.forkChild(runner.execute(request())))
      yield* until(
        Effect.sync(() => calls.length),
        (n) => n === 3
      )
      assert.isTrue(diedOf(yield* Fiber.await(traced)))
      for (const fiber of plain) {
        const error = yield* Effect.flip(Fiber.join(fiber))
        assert.strictEqual(error.reason._tag, "ClientTimeout")
      }
      for (const call of calls) call.answer()
      yield* until(runner.inFlight, (n) => n === 0)
    }).pipe(Effect.scoped)
  )
})

describe("request runner options read through a Proxy", () => {
  it.live("sends the options a Proxy answers with, even when it reports having none", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const runner = yield* runnerOver(client, { consistency: "LOCAL_QUORUM" })
      // A lazily computed options object: `get` answers, `has` is left to the empty target.
      const lazy = new Proxy({} as Session.RequestOptions, {
        get: (_target, key) => (key === "consistency" ? "ALL" : key === "pageSize" ? 3 : undefined)
      })
      const fiber = yield* Effect.forkChild(runner.execute(request(lazy)))
      yield* until(
        Effect.sync(() => calls.length),
        (n) => n === 1
      )
      assert.strictEqual(calls[0]!.options.consistency, consistencyCode("ALL"))
      assert.strictEqual(calls[0]!.options.fetchSize, 3)
      calls[0]!.answer()
      yield* Fiber.join(fiber)
    }).pipe(Effect.scoped)
  )

  it.live("sends options inherited from a prototype, as it reads every option it is given", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const runner = yield* runnerOver(client, { consistency: "LOCAL_QUORUM" })
      const inherited = Object.freeze(Object.create({ consistency: "ALL" })) as Session.RequestOptions
      const fiber = yield* Effect.forkChild(runner.execute(request(inherited)))
      yield* until(
        Effect.sync(() => calls.length),
        (n) => n === 1
      )
      assert.strictEqual(calls[0]!.options.consistency, consistencyCode("ALL"))
      calls[0]!.answer()
      yield* Fiber.join(fiber)
    }).pipe(Effect.scoped)
  )
})

describe("request runner with a throttle, under interruption racing the answer", () => {
  it.live("gives each place back exactly once, whichever comes first", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const runner = yield* runnerOver(client, { throttle: { maxInFlight: 1, maxQueued: 10 } })
      for (let round = 0; round < 20; round++) {
        const raced = yield* Effect.forkChild(runner.execute(request()))
        yield* until(
          Effect.sync(() => calls.length),
          (n) => n === 1
        )
        const waiting = yield* Effect.forEach([1, 2], () => Effect.forkChild(runner.execute(request())))
        yield* Effect.yieldNow
        // The answer and the interruption in the same turn, in either order.
        if (round % 2 === 0) calls.shift()!.answer()
        yield* Fiber.interrupt(raced)
        if (round % 2 === 1) calls.shift()!.answer()
        for (const fiber of waiting) {
          yield* until(
            Effect.sync(() => calls.length),
            (n) => n === 1
          )
          // One place: never a second request sent while one is in flight.
          yield* Effect.yieldNow
          assert.strictEqual(calls.length, 1)
          calls.shift()!.answer()
          yield* Fiber.join(fiber)
        }
        yield* until(runner.inFlight, (n) => n === 0)
      }
    }).pipe(Effect.scoped)
  )
})

describe("request runner statements sharing one text", () => {
  it.live("gives each request its own options, whether or not it sets any, in any order", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const runner = yield* runnerOver(client, { consistency: "LOCAL_QUORUM", pageSize: 100 })
      const sequence: ReadonlyArray<Session.RequestOptions> = [
        {},
        { idempotent: false, consistency: "ONE", pageSize: 5, prepare: false },
        {},
        { timeout: undefined },
        { idempotent: false }
      ]
      for (const options of sequence) {
        const fiber = yield* Effect.forkChild(runner.execute(request(options)))
        yield* until(
          Effect.sync(() => calls.length),
          (n) => n === 1
        )
        const sent = calls.shift()!
        assert.deepStrictEqual(
          [sent.options.isIdempotent, sent.options.consistency, sent.options.fetchSize, sent.options.prepare],
          [
            options.idempotent ?? true,
            consistencyCode(options.consistency ?? "LOCAL_QUORUM"),
            options.pageSize ?? 100,
            options.prepare ?? true
          ]
        )
        sent.answer()
        yield* Fiber.join(fiber)
      }
    }).pipe(Effect.scoped)
  )
})

/**
 * Runs `effect` counting the long timers (a minute or more: only a deadline's) armed while it ran and neither fired
 * nor cleared when it ended: a session closed must hold none, so that the process can exit.
 */
const longTimersLeftBy = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.suspend(() => {
    const armed = new Set<unknown>()
    const { setTimeout: originalSet, clearTimeout: originalClear } = globalThis
    globalThis.setTimeout = ((callback: () => void, delay?: number) => {
      const timer = originalSet(() => {
        armed.delete(timer)
        callback()
      }, delay)
      if (delay !== undefined && delay >= 60_000) armed.add(timer)
      return timer
    }) as typeof setTimeout
    globalThis.clearTimeout = ((timer: Parameters<typeof clearTimeout>[0]) => {
      armed.delete(timer)
      originalClear(timer)
    }) as typeof clearTimeout
    return effect.pipe(
      Effect.map(() => armed.size),
      Effect.ensuring(
        Effect.sync(() => {
          globalThis.setTimeout = originalSet
          globalThis.clearTimeout = originalClear
          for (const timer of armed) originalClear(timer as ReturnType<typeof setTimeout>)
        })
      )
    )
  })

describe("request runner after the session closed", () => {
  it.live("leaves no timer armed once it drained, though its last request ended long before its deadline", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const left = yield* longTimersLeftBy(
        Effect.gen(function* () {
          const runner = yield* runnerOver(client, { requestTimeout: "1 hour" })
          const fiber = yield* Effect.forkChild(runner.execute(request()))
          yield* until(
            Effect.sync(() => calls.length),
            (n) => n === 1
          )
          calls[0]!.answer()
          yield* Fiber.join(fiber)
        }).pipe(Effect.scoped)
      )
      assert.strictEqual(left, 0)
    })
  )

  it.live("leaves no timer armed once it drained a request that was still in flight when closing began", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const left = yield* longTimersLeftBy(
        Effect.gen(function* () {
          const scope = yield* Scope.make()
          const runner = yield* Scope.provide(runnerOver(client, { requestTimeout: "1 hour" }), scope)
          const fiber = yield* Effect.forkChild(runner.execute(request()))
          yield* until(
            Effect.sync(() => calls.length),
            (n) => n === 1
          )
          const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
          yield* Effect.yieldNow
          // Drained by this answer: the request is still in the deadline list while the drain completes.
          calls[0]!.answer()
          yield* Fiber.join(closing)
          yield* Fiber.join(fiber)
        })
      )
      assert.strictEqual(left, 0)
    })
  )
})
