import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/testing/TestClock"
import * as CassandraError from "effect-cassandra/CassandraError"
import { classifyFailure } from "../../src/internal/rePrepare.ts"
import { request, runnerOver, sentCount } from "../support/requestRunner.ts"

const queryId = Buffer.from("0102", "hex")

/** What every host answered: UNPREPARED for the statement behind `queryId`, as lib/readers.js builds it. */
const unpreparedEverywhere = () =>
  new Cassandra.errors.NoHostAvailableError({
    "10.0.0.1:9042": Object.assign(
      new Cassandra.errors.ResponseError(
        Cassandra.types.responseErrorCodes.unprepared,
        "Prepared query with ID 0102 not found"
      ),
      { queryId }
    )
  })

/**
 * The driver internals re-preparation reads, with a connection whose PREPARE answers as `prepare` does: a frozen
 * node never answers, and a driver without a per-attempt read timeout (`readTimeout: 0`) never gives up on it.
 */
const clientWith = (prepare: () => Promise<unknown>, readTimeout = 0) =>
  ({
    options: { socketOptions: { readTimeout } },
    metadata: { getPreparedById: () => ({ query: "SELECT v FROM ks.t WHERE k = ?", keyspace: "ks" }) },
    hosts: { get: () => ({ borrowConnection: () => ({ prepareOnceAsync: prepare }) }) }
  }) as unknown as Cassandra.Client

const context = { operation: "execute" as const, statement: "SELECT v FROM ks.t WHERE k = ?" }

describe("re-preparing a statement to learn why a request failed", () => {
  it.effect("reports the node's own answer to preparing again", () =>
    Effect.gen(function* () {
      const tableGone = new Cassandra.errors.ResponseError(
        Cassandra.types.responseErrorCodes.invalid,
        "table t does not exist"
      )
      const error = yield* Effect.flip(
        classifyFailure(
          clientWith(() => Promise.reject(tableGone)),
          unpreparedEverywhere(),
          context
        )
      )
      assert.instanceOf(error.reason, CassandraError.Invalid)
      assert.strictEqual(error.reason.coordinator, "10.0.0.1:9042")
    })
  )

  it.effect("is bounded in time when the node never answers the PREPARE, reporting the original failure", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(
        Effect.flip(
          classifyFailure(
            clientWith(() => new Promise(() => {})),
            unpreparedEverywhere(),
            context
          )
        )
      )
      yield* TestClock.adjust("1 minute")
      const error = yield* Fiber.join(fiber)
      assert.instanceOf(error.reason, CassandraError.NoHostAvailable)
      assert.deepStrictEqual(
        error.reason.hosts.map((host) => [host.address, host.reason]),
        [["10.0.0.1:9042", "Unknown"]]
      )
    })
  )

  it.effect("never throws, even for a failure whose fields throw when read", () =>
    Effect.gen(function* () {
      const unreadable = new Proxy(
        {},
        {
          getPrototypeOf: () => {
            throw new Error("prototype")
          },
          get: () => {
            throw new Error("read")
          }
        }
      )
      const classified = (() => {
        try {
          return classifyFailure(
            clientWith(() => Promise.resolve()),
            unreadable,
            context
          )
        } catch (thrown) {
          return Effect.die(thrown)
        }
      })()
      const error = yield* Effect.flip(classified)
      assert.instanceOf(error.reason, CassandraError.Unknown)
    })
  )

  it.live("sends no PREPARE once the session is closing, whose drain no longer counts the request", () =>
    Effect.gen(function* () {
      const tableGone = new Cassandra.errors.ResponseError(
        Cassandra.types.responseErrorCodes.invalid,
        "table t does not exist"
      )
      let prepares = 0
      const calls: Array<(error: unknown) => void> = []
      const client = Object.assign(
        clientWith(() => {
          prepares++
          return Promise.reject(tableGone)
        }),
        {
          keyspace: undefined,
          execute: () => new Promise((_resolve, reject) => calls.push(reject))
        }
      )
      const scope = yield* Scope.make()
      const runner = yield* runnerOver(client, { drainTimeout: "30 seconds" }).pipe(Scope.provide(scope))
      const failing = () =>
        Effect.gen(function* () {
          const fiber = yield* Effect.forkChild(Effect.flip(runner.execute(request())))
          yield* sentCount(calls, calls.length + 1)
          return fiber
        })
      // Open: the node's own answer to one more PREPARE says why.
      const open = yield* failing()
      calls[0]!(unpreparedEverywhere())
      assert.instanceOf((yield* Fiber.join(open)).reason, CassandraError.Invalid)
      assert.strictEqual(prepares, 1)
      // Closing: its failure ends the drain, so the session reports it as the driver gave it.
      const closingRequest = yield* failing()
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* Effect.yieldNow
      calls[1]!(unpreparedEverywhere())
      yield* Fiber.join(closing)
      assert.instanceOf((yield* Fiber.join(closingRequest)).reason, CassandraError.NoHostAvailable)
      assert.strictEqual(prepares, 1, "a PREPARE was sent once the session was closing")
    })
  )
})
