/**
 * How a statement reaches its session: a session of this library is used through its own request path (one
 * `withFiber` and one callback), any other session, or one copied with another `execute`, through its `execute`.
 */
import { assert, describe, it } from "@effect/vitest"
import type * as Cassandra from "cassandra-driver"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import type * as CassandraError from "effect-cassandra/CassandraError"
import * as Query from "effect-cassandra/Query"
import * as Session from "effect-cassandra/Session"
import { sendInFiber } from "../../src/internal/requestRunner.ts"
import { recordingClient, runnerOver, sentCount, until } from "../support/requestRunner.ts"

const { cql } = Query

/** A session over a stand-in client whose requests the test answers, with the session's own request path. */
const sessionOverRecordingClient = Effect.gen(function* () {
  const { calls, client } = recordingClient()
  const runner = yield* runnerOver(client, {})
  const session: Session.Session = { client, keyspace: undefined, ...runner }
  return { calls, session }
})

/** Runs `statement` on `session`, answers the one request it sends, and returns how the statement ended. */
const answeredOnce = <A>(
  calls: ReturnType<typeof recordingClient>["calls"],
  session: Session.Session,
  statement: Effect.Effect<A, unknown, Session.Session>
) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(Effect.provideService(statement, Session.Session, session))
    yield* until(
      Effect.sync(() => calls.length),
      (sent) => sent === 1
    )
    calls[0]!.answer()
    return yield* Fiber.await(fiber)
  })

describe("a statement's request", () => {
  it.live("goes through the session's own request path and resumes with the statement's rows", () =>
    Effect.gen(function* () {
      const { calls, session } = yield* sessionOverRecordingClient
      const exit = yield* answeredOnce(calls, session, cql`SELECT v FROM kv WHERE k = ${1}`)
      assert.deepStrictEqual(exit, Exit.succeed([]))
      calls.length = 0
      const result = yield* answeredOnce(calls, session, cql`SELECT v FROM kv WHERE k = ${2}`.result)
      assert.isTrue(Exit.isSuccess(result))
    })
  )

  it.live("goes through `execute` of a session copied with another `execute`, as a decorator expects", () =>
    Effect.gen(function* () {
      const { calls, session } = yield* sessionOverRecordingClient
      const decorated: Array<string> = []
      const decorator: Session.Session = {
        ...session,
        execute: (request) => {
          decorated.push(request.query)
          return session.execute(request)
        }
      }
      const exit = yield* answeredOnce(calls, decorator, cql`SELECT v FROM kv WHERE k = ${1}`)
      assert.deepStrictEqual(exit, Exit.succeed([]))
      assert.deepStrictEqual(decorated, ["SELECT v FROM kv WHERE k = ?"])
    })
  )

  it.live("fails with a defect, and does not hang, when the result cannot be turned into what was asked", () =>
    Effect.gen(function* () {
      const { calls, session } = yield* sessionOverRecordingClient
      const send = (session as unknown as Record<typeof sendInFiber, { readonly send: Function }>)[sendInFiber].send
      const request = Effect.withFiber((fiber) =>
        send(fiber, "SELECT v FROM kv WHERE k = ?", [1], {}, () => {
          throw new Error("projection failed")
        })
      ) as Effect.Effect<unknown>
      const exit = yield* answeredOnce(calls, session, request)
      assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
      assert.strictEqual(yield* session.inFlight, 0)
      // The session keeps serving.
      calls.length = 0
      const next = yield* answeredOnce(calls, session, cql`SELECT v FROM kv WHERE k = ${2}`)
      assert.deepStrictEqual(next, Exit.succeed([]))
    })
  )
})

/** A stand-in driver client whose requests the test answers with the result it chooses. */
const answeringClient = () => {
  const calls: Array<{ readonly query: string; readonly answer: (result: object) => void }> = []
  const client = {
    keyspace: undefined,
    execute: (query: string) =>
      new Promise((resolve) => {
        calls.push({ query, answer: resolve })
      })
  }
  return { calls, client: client as unknown as Cassandra.Client }
}

const resultOf = (rows: Array<Record<string, unknown>>, pageState?: string) => ({
  rows,
  info: { queriedHost: "127.0.0.1:9042", triedHosts: {}, warnings: [] },
  pageState,
  wasApplied: () => rows[0]?.["[applied]"] !== false
})

const sessionOver = (client: Cassandra.Client, options: Session.ClientSessionOptions = {}) =>
  Effect.map(runnerOver(client, options), (runner): Session.Session => ({ client, keyspace: undefined, ...runner }))

describe("a statement's request, attacked", () => {
  it.live("uses a session that is not this library's through `execute`, even one that answers no other question", () =>
    Effect.gen(function* () {
      const asked: Array<string> = []
      const foreign = new Proxy({} as Session.Session, {
        get: (_, key) => {
          if (key === "execute") return () => Effect.succeed(resultOf([{ v: "foreign" }]))
          throw new Error(`a strict stand-in has no ${String(key)}`)
        },
        has: (_, key) => {
          asked.push(String(key))
          return false
        }
      })
      const rows = yield* Effect.provideService(cql`SELECT v FROM kv WHERE k = ${1}`, Session.Session, foreign)
      assert.deepStrictEqual(rows, [{ v: "foreign" }])
    })
  )

  it.live("calls `execute` of a session written as a class as a method, on that session", () =>
    Effect.gen(function* () {
      class Canned {
        readonly rows = [{ v: "canned" }]
        execute(_request: Session.Request) {
          return Effect.succeed(resultOf(this.rows))
        }
      }
      const session = new Canned() as unknown as Session.Session
      const rows = yield* Effect.provideService(cql`SELECT v FROM kv WHERE k = ${1}`, Session.Session, session)
      assert.deepStrictEqual(rows, [{ v: "canned" }])
    })
  )

  it.live("goes through the `execute` a Proxy around a session of this library gives, once per request", () =>
    Effect.gen(function* () {
      const { calls, client } = answeringClient()
      const session = yield* sessionOver(client)
      const seen: Array<string> = []
      const decorated = new Proxy(session, {
        get: (target, key, receiver) =>
          key === "execute"
            ? (request: Session.Request) => {
                seen.push(request.query)
                return target.execute(request)
              }
            : Reflect.get(target, key, receiver)
      })
      const fiber = yield* Effect.forkChild(
        Effect.provideService(cql`SELECT v FROM kv WHERE k = ${1}`.result, Session.Session, decorated)
      )
      yield* sentCount(calls, 1)
      calls[0]!.answer(resultOf([{ v: "through the proxy" }]))
      assert.deepStrictEqual((yield* Fiber.join(fiber)).rows, [{ v: "through the proxy" }])
      assert.deepStrictEqual(seen, ["SELECT v FROM kv WHERE k = ?"])
    })
  )

  it.live("hands the driver the same options on the session's own path as through a decorator's `execute`", () =>
    Effect.gen(function* () {
      const { calls, session } = yield* sessionOverRecordingClient
      const decorated: Session.Session = { ...session, execute: (request) => session.execute(request) }
      const statement = cql`UPDATE kv SET v = ${"x"} WHERE k = ${1}`.withOptions({
        consistency: "ONE",
        serialConsistency: "SERIAL",
        pageSize: 7,
        idempotent: true,
        timestamp: 1_700_000_000_000_000n,
        routingKey: new Uint8Array([0, 0, 0, 1]),
        timeout: Duration.infinity,
        attemptTimeout: "3 seconds"
      })
      const handed: Array<Record<string, unknown>> = []
      for (const path of [session, decorated]) {
        calls.length = 0
        yield* answeredOnce(calls, path, statement.page("AAE="))
        const options = calls[0]!.options
        handed.push({ ...Object.fromEntries(Object.entries(options)), readTimeout: options.readTimeout })
      }
      assert.strictEqual(handed[0]?.readTimeout, 3000)
      assert.strictEqual(handed[0]?.pageState, "AAE=")
      assert.deepStrictEqual(handed[0], handed[1])
    })
  )

  it.live("fails a statement whose option cannot be read with a typed error on both paths, and keeps serving", () =>
    Effect.gen(function* () {
      const { calls, client } = answeringClient()
      const session = yield* sessionOver(client)
      const decorated: Session.Session = { ...session, execute: (request) => session.execute(request) }
      const hostile = new Proxy(
        {},
        {
          get: () => {
            throw new Error("a hostile option")
          },
          has: () => {
            throw new Error("a hostile option")
          }
        }
      )
      const statement = cql`SELECT v FROM kv WHERE k = ${1}`.withOptions({ timeout: hostile as never })
      for (const path of [session, decorated]) {
        const exit = yield* Effect.exit(Effect.provideService(statement.result, Session.Session, path))
        const error = Exit.findErrorOption(exit)
        assert.isTrue(Option.isSome(error) && error.value.reason._tag === "InvalidArgument")
      }
      assert.strictEqual(calls.length, 0)
      const fiber = yield* Effect.forkChild(
        Effect.provideService(cql`SELECT v FROM kv WHERE k = ${2}`, Session.Session, session)
      )
      yield* sentCount(calls, 1)
      calls[0]!.answer(resultOf([{ v: "served" }]))
      assert.deepStrictEqual(yield* Fiber.join(fiber), [{ v: "served" }])
    })
  )

  it.live("gives rows, result, conditional and pages of the session's own path as the driver answered them", () =>
    Effect.gen(function* () {
      const { calls, client } = answeringClient()
      const session = yield* sessionOver(client)
      const run = <A>(statement: Effect.Effect<A, unknown, Session.Session>, result: object) =>
        Effect.gen(function* () {
          const before = calls.length
          const fiber = yield* Effect.forkChild(Effect.provideService(statement, Session.Session, session))
          yield* sentCount(calls, before + 1)
          calls[before]!.answer(result)
          return yield* Fiber.join(fiber)
        })
      const statement = cql`SELECT v FROM kv WHERE k = ${1}`
      assert.deepStrictEqual(yield* run(statement, resultOf([{ v: "a" }])), [{ v: "a" }])
      const result = yield* run(statement.result, resultOf([{ v: "b" }], "next"))
      assert.deepStrictEqual(result.rows, [{ v: "b" }])
      assert.deepStrictEqual(result.pageState, Option.some("next"))
      assert.strictEqual(result.info.coordinator, "127.0.0.1:9042")
      assert.deepStrictEqual(yield* run(statement.page("next"), resultOf([{ v: "c" }])), {
        rows: [{ v: "c" }],
        pageState: Option.none()
      })
      assert.deepStrictEqual(yield* run(statement.conditional, resultOf([{ "[applied]": true }])), {
        _tag: "Applied"
      })
      assert.deepStrictEqual(yield* run(statement.conditional, resultOf([{ "[applied]": false, v: "d" }])), {
        _tag: "NotApplied",
        current: [{ v: "d" }]
      })
    })
  )

  it.live("runs one statement effect twice at once as two requests, each resumed with its own answer", () =>
    Effect.gen(function* () {
      const { calls, client } = answeringClient()
      const session = yield* sessionOver(client)
      const statement = Effect.provideService(cql`SELECT v FROM kv WHERE k = ${1}`.result, Session.Session, session)
      const first = yield* Effect.forkChild(statement)
      const second = yield* Effect.forkChild(statement)
      yield* sentCount(calls, 2)
      calls[1]!.answer(resultOf([{ v: "second" }]))
      calls[0]!.answer(resultOf([{ v: "first" }]))
      assert.deepStrictEqual((yield* Fiber.join(first)).rows, [{ v: "first" }])
      assert.deepStrictEqual((yield* Fiber.join(second)).rows, [{ v: "second" }])
    })
  )

  it.live("withdraws a statement interrupted while it waits for a throttle place: it is never sent", () =>
    Effect.gen(function* () {
      const { calls, client } = answeringClient()
      const session = yield* sessionOver(client, { throttle: { maxInFlight: 1, maxQueued: 1 } })
      const run = (k: number) => Effect.provideService(cql`SELECT v FROM kv WHERE k = ${k}`, Session.Session, session)
      const first = yield* Effect.forkChild(run(1))
      yield* sentCount(calls, 1)
      const queued = yield* Effect.forkChild(run(2))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(queued)
      calls[0]!.answer(resultOf([{ v: "first" }]))
      assert.deepStrictEqual(yield* Fiber.join(first), [{ v: "first" }])
      const third = yield* Effect.forkChild(run(3))
      yield* sentCount(calls, 2)
      calls[1]!.answer(resultOf([]))
      assert.deepStrictEqual(yield* Fiber.join(third), [])
      assert.strictEqual(calls.length, 2)
      assert.strictEqual(yield* session.inFlight, 0)
    })
  )

  it.live("stops waiting for a statement interrupted in flight, and counts it until the driver answers", () =>
    Effect.gen(function* () {
      const { calls, client } = answeringClient()
      const session = yield* sessionOver(client)
      const fiber = yield* Effect.forkChild(
        Effect.provideService(cql`SELECT v FROM kv WHERE k = ${1}`.result, Session.Session, session)
      )
      yield* sentCount(calls, 1)
      const exit = yield* Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber)))
      assert.isTrue(Exit.hasInterrupts(exit))
      assert.strictEqual(yield* session.inFlight, 1)
      calls[0]!.answer(resultOf([{ v: "late" }]))
      yield* until(session.inFlight, (count) => count === 0)
    })
  )

  it.live("fails a statement never answered with the end-to-end timeout it sets", () =>
    Effect.gen(function* () {
      const { calls, client } = answeringClient()
      const session = yield* sessionOver(client)
      const exit = yield* Effect.exit(
        Effect.provideService(
          cql`SELECT v FROM kv WHERE k = ${1}`.withOptions({ timeout: "20 millis" }).result,
          Session.Session,
          session
        )
      )
      assert.strictEqual(calls.length, 1)
      const error = Exit.findErrorOption(exit)
      assert.isTrue(Option.isSome(error) && error.value.reason._tag === "ClientTimeout")
      // The driver cannot cancel it: the session counts it until the driver answers, and its close waits for that.
      assert.strictEqual(yield* session.inFlight, 1)
      calls[0]!.answer(resultOf([]))
    })
  )

  it.live("runs a statement of a session's template on that session, even where another is provided", () =>
    Effect.gen(function* () {
      const bound = answeringClient()
      const other = answeringClient()
      const boundSession = yield* sessionOver(bound.client)
      const otherSession = yield* sessionOver(other.client)
      const template = yield* Effect.provideService(Query.template, Session.Session, boundSession)
      const fiber = yield* Effect.forkChild(
        Effect.provideService(template`SELECT v FROM kv WHERE k = ${1}`, Session.Session, otherSession)
      )
      yield* sentCount(bound.calls, 1)
      bound.calls[0]!.answer(resultOf([{ v: "bound" }]))
      assert.deepStrictEqual(yield* Fiber.join(fiber), [{ v: "bound" }])
      assert.strictEqual(other.calls.length, 0)
    })
  )

  it.live("runs one statement effect on whichever session each run provides", () =>
    Effect.gen(function* () {
      const first = answeringClient()
      const second = answeringClient()
      const firstSession = yield* sessionOver(first.client)
      const secondSession = yield* sessionOver(second.client)
      const statement = cql`SELECT v FROM kv WHERE k = ${1}`
      const onFirst = yield* Effect.forkChild(Effect.provideService(statement, Session.Session, firstSession))
      const onSecond = yield* Effect.forkChild(Effect.provideService(statement, Session.Session, secondSession))
      yield* sentCount(first.calls, 1)
      yield* sentCount(second.calls, 1)
      first.calls[0]!.answer(resultOf([{ v: "first" }]))
      second.calls[0]!.answer(resultOf([{ v: "second" }]))
      assert.deepStrictEqual(yield* Fiber.join(onFirst), [{ v: "first" }])
      assert.deepStrictEqual(yield* Fiber.join(onSecond), [{ v: "second" }])
      assert.strictEqual(first.calls.length + second.calls.length, 2)
    })
  )

  it.live("fails a statement of a closed session with SessionClosed; closing waits for the one in flight", () =>
    Effect.gen(function* () {
      const { calls, client } = answeringClient()
      const scope = yield* Scope.make()
      const session = yield* Scope.provide(sessionOver(client), scope)
      const template = yield* Effect.provideService(Query.template, Session.Session, session)
      const inFlight = yield* Effect.forkChild(template`SELECT v FROM kv WHERE k = ${1}`)
      yield* sentCount(calls, 1)
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* Effect.yieldNow
      const refused = yield* Effect.exit(template`SELECT v FROM kv WHERE k = ${2}`.result)
      const error = Exit.findErrorOption(refused)
      assert.isTrue(Option.isSome(error) && error.value.reason._tag === "SessionClosed")
      assert.isUndefined(closing.pollUnsafe())
      calls[0]!.answer(resultOf([{ v: "drained" }]))
      assert.deepStrictEqual(yield* Fiber.join(inFlight), [{ v: "drained" }])
      yield* Fiber.join(closing)
      assert.strictEqual(calls.length, 1)
    })
  )

  it.live("fails a statement that cannot be sent before sending, with or without a session", () =>
    Effect.gen(function* () {
      const { calls, client } = answeringClient()
      const session = yield* sessionOver(client)
      const statement = cql`SELECT v FROM ${Query.identifier("no such\u0000table")} WHERE k = ${1}`
      const without = yield* Effect.exit(statement.result as Effect.Effect<unknown, CassandraError.CassandraError>)
      const withSession = yield* Effect.exit(Effect.provideService(statement, Session.Session, session))
      for (const exit of [without, withSession]) {
        const error = Exit.findErrorOption(exit)
        assert.isTrue(Option.isSome(error) && error.value.reason._tag === "InvalidIdentifier")
      }
      assert.strictEqual(calls.length, 0)
    })
  )
})
