/**
 * The session's default retry policy (src/internal/timeoutRetry.ts): an idempotent, unconditional request a
 * coordinator timed out is sent once more, to the next node, at its own consistency; everything else is decided as the driver's
 * policy decides. Attacked end to end through a fake node in TimeoutRetry.attack.test.ts, and proven against a real
 * cluster by test/cluster/Session.routing.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import { makeClientOptions } from "../../src/internal/clientOptions.ts"
import { DriverOptions } from "../../src/internal/driverOptions.ts"
import { TimeoutRetryPolicy } from "../../src/internal/timeoutRetry.ts"

const { consistencies } = Cassandra.types

/** One request as the driver describes it to the policy: one execution options object per request. */
const operation = (
  options: {
    readonly idempotent?: boolean
    readonly query?: string | undefined
    readonly nbRetry?: number
    /** The request's deadline, `performance.now()` ms, as the session's request runner sets it. */
    readonly requestDeadline?: number
    /** A batch's text and kind, as the session's request runner gives them (the driver gives a batch no `query`). */
    readonly batchQuery?: string
    readonly counter?: boolean
  } = {},
  /** The options the driver was given: a session request's by default, given again when the session resends it. */
  raw: object = new DriverOptions(
    { isIdempotent: options.idempotent ?? true, counter: options.counter ?? false },
    options.requestDeadline ?? Number.POSITIVE_INFINITY,
    6000,
    options.batchQuery
  )
) =>
  ({
    query: "query" in options ? options.query : "INSERT INTO t (k) VALUES (?)",
    nbRetry: options.nbRetry ?? 0,
    // As the driver's execution options answer: from the options it was given, read again at each call.
    executionOptions: {
      isIdempotent: () => (raw as { readonly isIdempotent?: unknown }).isIdempotent === true,
      isBatchCounter: () => (raw as { readonly counter?: unknown }).counter === true,
      getRawQueryOptions: () => raw
    }
  }) as unknown as Cassandra.policies.retry.OperationInfo

const driverPolicy = new Cassandra.policies.retry.RetryPolicy()
/** The driver's own decisions: retried on the next node or the same one, its consistency left as the request's; failed. */
const sentToNextNode = driverPolicy.retryResult(undefined as unknown as Cassandra.types.consistencies, false)
const sentToSameNode = driverPolicy.retryResult(undefined as unknown as Cassandra.types.consistencies, true)
const failed = driverPolicy.rethrowResult()

/** The first timeout of a request is sent again, the same request's next one is not. */
const assertRetriedOnce = (
  decide: () => Cassandra.policies.retry.DecisionInfo,
  facts: string,
  sentTo: Cassandra.policies.retry.DecisionInfo = sentToNextNode
) => {
  assert.deepStrictEqual(decide(), sentTo, facts)
  assert.deepStrictEqual(decide(), failed, `${facts}, already retried`)
}

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

  it("sends a write that timed out again, once, to the next node (a batch log's to its own) at the request's consistency", () => {
    for (const writeType of ["SIMPLE", "BATCH", "UNLOGGED_BATCH", "BATCH_LOG"]) {
      // A batch log write times out at the batch log's consistency (ONE or TWO), never the one to send again at.
      for (const [received, blockFor] of [
        [0, 1],
        [1, 2],
        [2, 3]
      ] as const) {
        const policy = new TimeoutRetryPolicy()
        const info = operation()
        // The driver's policy sends a batch log write again to its coordinator: a plan of one node keeps that retry.
        assertRetriedOnce(
          () => policy.onWriteTimeout(info, consistencies.one, received, blockFor, writeType),
          writeType,
          writeType === "BATCH_LOG" ? sentToSameNode : sentToNextNode
        )
      }
    }
  })

  it("fails a timed-out counter update, conditional write or write it does not know at once", () => {
    const policy = new TimeoutRetryPolicy()
    for (const writeType of ["COUNTER", "CAS", "VIEW", "CDC", "", "simple", "SOMETHING_NEW"]) {
      assert.deepStrictEqual(
        policy.onWriteTimeout(operation(), consistencies.localQuorum, 1, 2, writeType),
        failed,
        writeType
      )
    }
    // A conditional write's Paxos commit times out as a SIMPLE write, as does a batch of one partition. CQL's lexer
    // reads `1IF` as a number and IF.
    for (const query of [
      "UPDATE t SET v = ? WHERE k = ? IF v = ?",
      "INSERT INTO t (k) VALUES (?) if not exists",
      "UPDATE t SET v = 2 WHERE k = 1IF v = 1"
    ]) {
      assert.deepStrictEqual(
        policy.onWriteTimeout(operation({ query }), consistencies.localQuorum, 1, 2, "SIMPLE"),
        failed,
        query
      )
      assert.deepStrictEqual(
        policy.onWriteTimeout(
          operation({ query: undefined, batchQuery: `INSERT INTO t (k) VALUES (?); ${query}` }),
          consistencies.localQuorum,
          1,
          2,
          "SIMPLE"
        ),
        failed,
        `a batch with ${query}`
      )
    }
    assert.deepStrictEqual(
      policy.onWriteTimeout(operation({ query: undefined }), consistencies.localQuorum, 1, 2, "SIMPLE"),
      failed,
      "a batch whose text is not known, timed out as SIMPLE"
    )
    // A counter batch is never sent again, whatever write type its timeout names.
    for (const writeType of ["SIMPLE", "BATCH", "UNLOGGED_BATCH", "BATCH_LOG"]) {
      assert.deepStrictEqual(
        policy.onWriteTimeout(
          operation({ query: undefined, batchQuery: "UPDATE t SET c = c + 1 WHERE k = ?", counter: true }),
          consistencies.localQuorum,
          1,
          2,
          writeType
        ),
        failed,
        `a counter batch timed out as ${writeType}`
      )
    }
    assert.deepStrictEqual(
      policy.onWriteTimeout(operation({ query: undefined }), consistencies.localQuorum, 1, 2, "UNLOGGED_BATCH"),
      sentToNextNode,
      "a batch timed out as a batch"
    )
    assert.deepStrictEqual(
      policy.onWriteTimeout(
        operation({ query: undefined, batchQuery: "INSERT INTO t (k) VALUES (?)" }),
        consistencies.localQuorum,
        1,
        2,
        "SIMPLE"
      ),
      sentToNextNode,
      "an unconditional batch of one partition, timed out as SIMPLE"
    )
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
      const policy = new TimeoutRetryPolicy()
      const read = operation({ query: "SELECT v FROM t WHERE k = ?" })
      // The driver's policy sends a read every replica answered but the data's again to its coordinator.
      assertRetriedOnce(
        () => policy.onReadTimeout(read, consistencies.localQuorum, received, blockFor, isDataPresent),
        facts,
        received >= blockFor && !isDataPresent ? sentToSameNode : sentToNextNode
      )
      assert.deepStrictEqual(
        policy.onReadTimeout(
          operation({ idempotent: false }),
          consistencies.localQuorum,
          received,
          blockFor,
          isDataPresent
        ),
        failed,
        `${facts}, declared not idempotent`
      )
      assert.deepStrictEqual(
        policy.onReadTimeout(
          operation({ query: "UPDATE t SET v = ? WHERE k = ? IF v = ?" }),
          consistencies.localQuorum,
          received,
          blockFor,
          isDataPresent
        ),
        failed,
        `${facts}, a conditional write's read`
      )
    }
  })

  it("counts one timeout retry per request: not the driver's re-preparations, but every retry it decided itself", () => {
    const policy = new TimeoutRetryPolicy()
    // The driver counts sending a statement again after preparing it on its node as a retry (nbRetry 1).
    assert.deepStrictEqual(
      policy.onWriteTimeout(operation({ nbRetry: 1 }), consistencies.localQuorum, 1, 2, "SIMPLE"),
      sentToNextNode,
      "after a re-preparation"
    )
    const unavailable = operation()
    assert.strictEqual(
      policy.onUnavailable(unavailable, consistencies.localQuorum, 2, false).decision,
      sentToNextNode.decision
    )
    assert.deepStrictEqual(
      policy.onWriteTimeout(unavailable, consistencies.localQuorum, 1, 2, "SIMPLE"),
      failed,
      "after an Unavailable retried on the next node"
    )
    const refused = operation()
    policy.onRequestError(refused, consistencies.localQuorum, new Error("overloaded"))
    assert.deepStrictEqual(
      policy.onReadTimeout(refused, consistencies.localQuorum, 1, 2, false),
      failed,
      "after a request error retried on the next node"
    )
    // Another request keeps its own retry.
    assert.deepStrictEqual(
      policy.onWriteTimeout(operation(), consistencies.localQuorum, 1, 2, "SIMPLE"),
      sentToNextNode
    )
    // The session sends a request a node refused to prepare, or refused as it shut down, again itself: a new driver
    // request (its own execution options), given the same options, which keeps the request's one retry.
    const sessions = new DriverOptions({ isIdempotent: true }, Number.POSITIVE_INFINITY, 6000, undefined)
    assertRetriedOnce(
      () => policy.onWriteTimeout(operation({}, sessions), consistencies.localQuorum, 1, 2, "SIMPLE"),
      "sent again by the session"
    )
    // Options given to the driver client directly (`Session.CassandraClient`) may be one object shared by many
    // requests: each request keeps its own retry.
    const callers = { isIdempotent: true }
    for (const nth of [1, 2, 3]) {
      assert.deepStrictEqual(
        policy.onWriteTimeout(operation({}, callers), consistencies.localQuorum, 1, 2, "SIMPLE"),
        sentToNextNode,
        `request ${nth} given the caller's shared options`
      )
    }
  })

  it("decides over a caller's options that throw when read, or pretend to be a session's, without throwing", () => {
    const policy = new TimeoutRetryPolicy()
    const unreadable = new Proxy(
      {},
      {
        get: () => {
          throw new Error("read")
        },
        getPrototypeOf: () => {
          throw new Error("prototype")
        }
      }
    )
    // The driver asks about a write timeout only once it read the request's idempotence itself.
    const statement = operation({}, unreadable)
    assertRetriedOnce(
      () => policy.onWriteTimeout(statement, consistencies.localQuorum, 1, 2, "SIMPLE"),
      "a statement over unreadable options"
    )
    // It asks about a read timeout whatever the idempotence: unknown, the read is not sent again.
    assert.deepStrictEqual(
      policy.onReadTimeout(operation({}, unreadable), consistencies.localQuorum, 1, 2, false),
      failed,
      "a read over unreadable options"
    )
    // Whether such a batch counts is unknown: it is not sent again.
    assert.deepStrictEqual(
      policy.onWriteTimeout(operation({ query: undefined }, unreadable), consistencies.localQuorum, 1, 2, "BATCH"),
      failed
    )
    // A caller's idempotent batch timed out as a batch is sent again, as before the session's options told batches
    // apart; one timed out as SIMPLE is not, its text unknown.
    assert.deepStrictEqual(
      policy.onWriteTimeout(
        operation({ query: undefined }, { isIdempotent: true }),
        consistencies.localQuorum,
        1,
        2,
        "BATCH"
      ),
      sentToNextNode
    )
    assert.deepStrictEqual(
      policy.onWriteTimeout(
        operation({ query: undefined }, { isIdempotent: true }),
        consistencies.localQuorum,
        1,
        2,
        "SIMPLE"
      ),
      failed
    )
    for (const pretender of [
      Object.create(DriverOptions.prototype),
      new Proxy({}, { getPrototypeOf: () => DriverOptions.prototype })
    ]) {
      for (const nth of [1, 2]) {
        assert.deepStrictEqual(
          policy.onWriteTimeout(operation({}, pretender), consistencies.localQuorum, 1, 2, "SIMPLE"),
          sentToNextNode,
          `request ${nth} over options that pretend to be a session's`
        )
      }
    }
  })

  it("decides unavailable replicas and request errors as the driver's policy does", () => {
    const policy = new TimeoutRetryPolicy()
    for (const nbRetry of [0, 1]) {
      for (const idempotent of [true, false]) {
        const info = operation({ nbRetry, idempotent })
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

  it("sends nothing again once the request's deadline has passed, whatever failed and whoever decided", () => {
    const policy = new TimeoutRetryPolicy()
    const late = () => operation({ requestDeadline: performance.now() - 1 })
    assert.deepStrictEqual(policy.onWriteTimeout(late(), consistencies.localQuorum, 1, 2, "SIMPLE"), failed, "write")
    assert.deepStrictEqual(policy.onReadTimeout(late(), consistencies.localQuorum, 1, 2, false), failed, "read")
    assert.deepStrictEqual(policy.onUnavailable(late(), consistencies.localQuorum, 2, false), failed, "unavailable")
    // The driver's rule for a client timeout, which it asks about when an attempt timed out at the deadline.
    const timedOut = new Cassandra.errors.OperationTimedOutError("no reply before the deadline", "127.0.0.1:9042")
    assert.deepStrictEqual(policy.onRequestError(late(), consistencies.localQuorum, timedOut), failed, "client timeout")
    // An attempt timer set to the time left can fire a little early: a deadline a moment away counts as passed.
    for (const left of [0.3, 1.5, 4]) {
      const nearly = operation({ requestDeadline: performance.now() + left })
      assert.deepStrictEqual(
        policy.onRequestError(nearly, consistencies.localQuorum, timedOut),
        failed,
        `${left} ms left`
      )
    }
    // Before the deadline, the same request is sent again.
    const inTime = operation({ requestDeadline: performance.now() + 60_000 })
    assert.deepStrictEqual(policy.onRequestError(inTime, consistencies.localQuorum, timedOut), sentToNextNode)
  })
})
