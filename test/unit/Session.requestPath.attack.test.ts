/**
 * The request path attacked through what an untyped caller hands `execute`: the values reach the driver as they were
 * given, and the library asks nothing of them the driver would not.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import * as Query from "effect-cassandra/Query"
import * as Session from "effect-cassandra/Session"
import { MetricsHub, makeMetricsHub } from "../../src/internal/metricsRecorder.ts"
import { recordingClient, runnerOver, sentCount, until } from "../support/requestRunner.ts"

const { cql } = Query

/** A stand-in driver client that answers every statement at once and records the values it was handed. */
const valuesRecordingClient = () => {
  const handed: Array<unknown> = []
  const batches: Array<ReadonlyArray<{ readonly query: string; readonly params: unknown }>> = []
  const client = {
    keyspace: undefined,
    execute: (_query: string, params: unknown) => {
      handed.push(params)
      return Promise.resolve({ rows: [], info: {} })
    },
    batch: (statements: ReadonlyArray<{ readonly query: string; readonly params: unknown }>) => {
      batches.push(statements)
      return Promise.resolve({ rows: undefined, info: {} })
    }
  }
  return { handed, batches, client: client as unknown as Cassandra.Client }
}

/** Values whose prototype cannot be read, as a Proxy may make them: the driver reads only indexes and length. */
const valuesHidingTheirPrototype = () =>
  new Proxy([1], {
    getPrototypeOf: () => {
      throw new Error("the prototype of these values is not to be read")
    }
  })

describe("the request path under values from an untyped caller", () => {
  it.live("hands the driver a batch of none, one or many statements with each statement's text and values", () =>
    Effect.gen(function* () {
      const { handed, batches, client } = valuesRecordingClient()
      const runner = yield* runnerOver(client, {})
      const insert = "INSERT INTO kv (k, v) VALUES (?, ?)"
      for (const size of [0, 1, 3]) {
        const statements = Array.from({ length: size }, (_, k) => ({ query: insert, params: [k, `v${k}`] }))
        yield* runner.batch(statements, { type: "logged" })
        assert.deepStrictEqual(batches.at(-1), statements, `a batch of ${size}`)
      }
      assert.strictEqual(handed.length, 0)
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("hands the driver a Proxy of values as it is, never asking for its prototype", () =>
    Effect.gen(function* () {
      const { handed, client } = valuesRecordingClient()
      const runner = yield* runnerOver(client, {})
      const values = valuesHidingTheirPrototype()
      const request = { query: "SELECT v FROM kv WHERE k = ?", params: values, options: {} } as Session.Request
      const result = yield* runner.execute(request)
      assert.deepStrictEqual(result.rows, [])
      assert.strictEqual(handed[0], values)
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("ends a statement refused a PREPARE even when its values were revoked once handed to the driver", () =>
    Effect.gen(function* () {
      // Values in a revocable Proxy, revoked by their owner once the driver has them: the node refuses the PREPARE.
      const { proxy: values, revoke } = Proxy.revocable([1], {})
      const client = {
        keyspace: undefined,
        execute: () => {
          revoke()
          return Promise.reject(
            new Cassandra.errors.ResponseError(Cassandra.types.responseErrorCodes.overloaded, "Server is shutting down")
          )
        }
      } as unknown as Cassandra.Client
      const runner = yield* runnerOver(client, { requestTimeout: "5 seconds" })
      const request = { query: "SELECT v FROM kv WHERE k = ?", params: values, options: {} } as Session.Request
      const error = yield* Effect.flip(runner.execute(request))
      assert.strictEqual(error.reason._tag, "Overloaded")
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("hands the driver each value it is given as it is: none, named, an array subclass", () =>
    Effect.gen(function* () {
      const { handed, batches, client } = valuesRecordingClient()
      const runner = yield* runnerOver(client, {})
      class Values extends Array<unknown> {}
      // Named values may be called anything, `statements` included: they are still one statement's values.
      const given: ReadonlyArray<unknown> = [undefined, { k: 1 }, Values.from([1]), [], null, { statements: [] }]
      for (const params of given) {
        yield* runner.execute({ query: "SELECT v FROM kv WHERE k = ?", params, options: {} } as Session.Request)
      }
      assert.strictEqual(handed.length, given.length)
      assert.strictEqual(batches.length, 0)
      for (const [i, params] of given.entries()) assert.strictEqual(handed[i], params, `values ${i}`)
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )
})

/** A session of this library over a stand-in client whose requests the test answers, counted by a metrics layer. */
const countedSession = (options: Session.ClientSessionOptions) =>
  Effect.gen(function* () {
    const { calls, client: recording } = recordingClient()
    // A driver client never connected, whose requests the stand-in answers: the metrics layer reads the rest of it.
    const client = Object.assign(new Cassandra.Client({ contactPoints: ["192.0.2.1"], localDataCenter: "dc1" }), {
      execute: recording.execute
    })
    const hub = yield* makeMetricsHub("1 hour")
    const runner = yield* Effect.provideService(runnerOver(client, options), MetricsHub, hub)
    const session: Session.Session = { client, keyspace: undefined, ...runner }
    return { calls, session, summary: hub.summary }
  }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))

describe("a statement run as an effect, interrupted", () => {
  it.live("counts each interruption once, queued or in flight, and gives its throttle place back exactly once", () =>
    Effect.gen(function* () {
      const { calls, session, summary } = yield* countedSession({ throttle: { maxInFlight: 1, maxQueued: 1 } })
      const run = (k: number) => Effect.provideService(cql`SELECT v FROM kv WHERE k = ${k}`, Session.Session, session)
      const inFlight = yield* Effect.forkChild(run(1))
      yield* sentCount(calls, 1)
      const queued = yield* Effect.forkChild(run(2))
      yield* Effect.yieldNow
      assert.isTrue(Exit.hasInterrupts(yield* Fiber.interrupt(queued).pipe(Effect.andThen(Fiber.await(queued)))))
      assert.isTrue(Exit.hasInterrupts(yield* Fiber.interrupt(inFlight).pipe(Effect.andThen(Fiber.await(inFlight)))))
      // Abandoned, not ended: it keeps its place until the driver answers.
      assert.strictEqual(yield* session.inFlight, 1)
      assert.strictEqual((yield* summary).interrupted, 2)
      calls[0]!.answer()
      yield* until(session.inFlight, (n) => n === 0)
      // One place, given back once: the next statement is sent at once and the one after it waits for it.
      const third = yield* Effect.forkChild(run(3))
      yield* sentCount(calls, 2)
      const fourth = yield* Effect.forkChild(run(4))
      yield* Effect.yieldNow
      assert.strictEqual(calls.length, 2)
      calls[1]!.answer()
      yield* sentCount(calls, 3)
      calls[2]!.answer()
      assert.deepStrictEqual(yield* Fiber.join(third), [])
      assert.deepStrictEqual(yield* Fiber.join(fourth), [])
      const counted = yield* summary
      assert.deepStrictEqual([counted.succeeded, counted.failed, counted.interrupted], [2, 0, 2])
      assert.strictEqual(yield* session.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("by a timeout or a race lost, counts it as interrupted, not as failed", () =>
    Effect.gen(function* () {
      const { calls, session, summary } = yield* countedSession({})
      const statement = Effect.provideService(cql`SELECT v FROM kv WHERE k = ${1}`, Session.Session, session)
      const timedOut = yield* Effect.exit(Effect.timeout(statement, "20 millis"))
      assert.isTrue(Exit.isFailure(timedOut))
      const raced = yield* Effect.race(statement, Effect.succeed("first"))
      assert.strictEqual(raced, "first")
      yield* until(session.inFlight, (n) => n === calls.length)
      const counted = yield* summary
      assert.deepStrictEqual([counted.succeeded, counted.failed, counted.interrupted], [0, 0, calls.length])
      for (const call of calls) call.answer()
      yield* until(session.inFlight, (n) => n === 0)
      assert.strictEqual((yield* summary).interrupted, calls.length)
    }).pipe(Effect.scoped)
  )
})

/** A session of this library over a stand-in client that answers every statement at once with one row naming it. */
const namedSession = (name: string) => {
  const client = {
    keyspace: undefined,
    execute: () => Promise.resolve({ rows: [{ session: name }], info: {} })
  } as unknown as Cassandra.Client
  return Effect.map(runnerOver(client, {}), (runner): Session.Session => ({ client, keyspace: undefined, ...runner }))
}

describe("a statement run as an effect, wherever it runs", () => {
  it.live("runs on the session provided nearest to it, however it is composed and in whichever fiber", () =>
    Effect.gen(function* () {
      const outer = yield* namedSession("outer")
      const inner = yield* namedSession("inner")
      const statement = cql`SELECT session FROM kv WHERE k = ${1}`
      const sessionOf = (rows: ReadonlyArray<Query.Row>) => rows.map((row) => row.session)
      const nearest = <A, E>(effect: Effect.Effect<A, E, Session.Session>) =>
        Effect.provideService(Effect.provideService(effect, Session.Session, inner), Session.Session, outer)
      assert.deepStrictEqual(sessionOf(yield* nearest(statement)), ["inner"])
      assert.deepStrictEqual(sessionOf(yield* nearest(Effect.flatMap(statement, Effect.succeed))), ["inner"])
      const forked = yield* nearest(Effect.forkChild(statement).pipe(Effect.flatMap(Fiber.join)))
      assert.deepStrictEqual(sessionOf(forked), ["inner"])
      const streamed = yield* nearest(
        Stream.runCollect(Stream.mapEffect(Stream.make(1, 2, 3), () => statement, { concurrency: 3 }))
      )
      assert.deepStrictEqual(streamed.flatMap(sessionOf), ["inner", "inner", "inner"])
      const concurrent = yield* Effect.provideService(
        Effect.all([Effect.provideService(statement, Session.Session, inner), statement], { concurrency: 2 }),
        Session.Session,
        outer
      )
      assert.deepStrictEqual(concurrent.map(sessionOf), [["inner"], ["outer"]])
    }).pipe(Effect.scoped)
  )
})
