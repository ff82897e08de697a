/**
 * The session's default retry policy (src/internal/timeoutRetry.ts): an idempotent request a coordinator timed out is
 * sent once more to it at its own consistency; everything else is decided as the driver's policy decides. Proven
 * against a real cluster by test/cluster/Session.routing.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import { makeClientOptions } from "../../src/internal/clientOptions.ts"
import { TimeoutRetryPolicy } from "../../src/internal/timeoutRetry.ts"

const { consistencies } = Cassandra.types

const operation = (nbRetry: number, idempotent: boolean) =>
  ({
    query: "a statement",
    nbRetry,
    executionOptions: { isIdempotent: () => idempotent }
  }) as unknown as Cassandra.policies.retry.OperationInfo

const policy = new TimeoutRetryPolicy()
const driverPolicy = new Cassandra.policies.retry.RetryPolicy()
/** The driver's own decisions: retried on the same node, its consistency left as the request's; failed. */
const sentAgainAsIs = driverPolicy.retryResult(undefined as unknown as Cassandra.types.consistencies, true)
const failed = driverPolicy.rethrowResult()

describe("the default retry policy", () => {
  it.effect('is what a session uses unless told otherwise, and "default" names it', () =>
    Effect.gen(function* () {
      const base = { contactPoints: ["127.0.0.1"], localDataCenter: "datacenter1" }
      for (const options of [base, { ...base, retry: "default" as const }]) {
        const { clientOptions } = yield* makeClientOptions(options)
        assert.instanceOf(clientOptions.policies?.retry, TimeoutRetryPolicy)
      }
    })
  )

  it("sends a write that timed out again, once, to the same coordinator at the request's consistency", () => {
    for (const writeType of ["SIMPLE", "BATCH", "UNLOGGED_BATCH", "BATCH_LOG"]) {
      // A batch log write times out at the batch log's consistency (ONE or TWO), never the one to send again at.
      for (const [received, blockFor] of [
        [0, 1],
        [1, 2],
        [2, 3]
      ] as const) {
        assert.deepStrictEqual(
          policy.onWriteTimeout(operation(0, true), consistencies.one, received, blockFor, writeType),
          sentAgainAsIs,
          writeType
        )
      }
      assert.deepStrictEqual(
        policy.onWriteTimeout(operation(1, true), consistencies.localQuorum, 1, 2, writeType),
        failed,
        `${writeType}, already retried`
      )
    }
  })

  it("fails a timed-out counter update, conditional write or write it does not know at once", () => {
    for (const writeType of ["COUNTER", "CAS", "VIEW", "CDC", "", "simple", "SOMETHING_NEW"]) {
      assert.deepStrictEqual(
        policy.onWriteTimeout(operation(0, true), consistencies.localQuorum, 1, 2, writeType),
        failed,
        writeType
      )
    }
  })

  it("sends an idempotent read that timed out again, once, whatever the replicas answered", () => {
    for (const [received, blockFor, isDataPresent] of [
      [0, 2, false],
      [1, 2, false],
      [1, 2, true],
      [2, 2, false],
      [2, 2, true]
    ] as const) {
      const facts = `received ${received} of ${blockFor}, data ${isDataPresent}`
      assert.deepStrictEqual(
        policy.onReadTimeout(operation(0, true), consistencies.localQuorum, received, blockFor, isDataPresent),
        sentAgainAsIs,
        facts
      )
      assert.deepStrictEqual(
        policy.onReadTimeout(operation(1, true), consistencies.localQuorum, received, blockFor, isDataPresent),
        failed,
        `${facts}, already retried`
      )
      assert.deepStrictEqual(
        policy.onReadTimeout(operation(0, false), consistencies.localQuorum, received, blockFor, isDataPresent),
        failed,
        `${facts}, declared not idempotent`
      )
    }
  })

  it("decides unavailable replicas and request errors as the driver's policy does", () => {
    for (const nbRetry of [0, 1]) {
      for (const idempotent of [true, false]) {
        const info = operation(nbRetry, idempotent)
        assert.deepStrictEqual(
          policy.onUnavailable(info, consistencies.localQuorum, 2, false),
          driverPolicy.onUnavailable(info, consistencies.localQuorum, 2, false)
        )
        const error = new Error("socket closed")
        assert.deepStrictEqual(
          policy.onRequestError(info, consistencies.localQuorum, error),
          driverPolicy.onRequestError(info, consistencies.localQuorum, error)
        )
      }
    }
  })
})
