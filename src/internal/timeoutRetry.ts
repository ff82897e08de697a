import * as Cassandra from "cassandra-driver"
import { DriverOptions } from "./driverOptions.ts"
import { mayBeConditional } from "./idempotence.ts"

/**
 * The write types whose timed-out write may be sent again when its statement is idempotent and carries no condition.
 * A logged batch is included: once its batch log is written it is applied in full eventually, so sending it again
 * changes nothing. A counter update (a second run could add twice), a conditional write timed out in its Paxos round
 * (CAS), a view's or CDC's update and any write type not listed here fail as under the driver's policy.
 */
const resendableWrites: ReadonlySet<string> = new Set(["SIMPLE", "BATCH", "UNLOGGED_BATCH", "BATCH_LOG"])

/** The write types only a batch times out with: never a conditional batch, which runs a Paxos round instead. */
const batchWrites: ReadonlySet<string> = new Set(["BATCH", "UNLOGGED_BATCH", "BATCH_LOG"])

/**
 * The session's default retry policy: the driver's own, except that an idempotent request a coordinator answered
 * with a read or write timeout is sent once more, whatever the replicas answered, to the next node of its plan. The
 * coordinator was alive and answered, but either its replicas or the coordinator itself were slow: a replica in a GC
 * pause, or a coordinator just resumed from a pause or restarted, whose own queues still hold its replicas' answers
 * while it times out every request it coordinates. Another coordinator asks the replicas again from its own view,
 * where the driver's policy would fail the request at once. The two timeouts the driver's policy itself sends again
 * to the same coordinator (a batch log write's; a read every replica answered but the one holding the data) still go
 * there, so that a plan without another node (one node, an allow list of one, the others down) loses no retry the
 * driver's policy makes of an idempotent, unconditional request (its read retry ignores idempotence; this policy's
 * does not); any other timeout then fails the request with the timeout, as under the driver's policy.
 *
 * A timeout is sent again only when this policy has not retried the request before, counted per request across its
 * speculative executions and the session's own resends (of a request a node refused to prepare, or refused as it shut
 * down); the driver's own resending of a statement a node had to prepare again does not count.
 * A conditional statement never is: a conditional write's commit times out as a SIMPLE write, and its read of the
 * current values as a read, so the text is what tells it apart. A batch of one partition also times out as a SIMPLE
 * write (Cassandra applies it as one mutation), a conditional batch's commit too: such a batch is sent again only when
 * its text is known (the session's requests carry it) and no statement in it carries a condition. A batch that timed
 * out as a batch (BATCH, UNLOGGED_BATCH, BATCH_LOG) is sent again whatever its text: a conditional batch runs a Paxos
 * round instead and never times out so. A counter batch never is, whatever its timeout's write type. The driver asks
 * about a write timeout only for an idempotent request; a read's idempotence is checked here.
 *
 * No retry is decided once the request's deadline has passed, or nearly (see {@link retryBudgetMillis}): the session
 * has failed the request, and an attempt that timed out at the deadline (its read timeout is the time the deadline
 * had left) would otherwise go on to the next node, under the driver's rule for client timeouts, after the caller was
 * told it failed. The driver's own resending without asking the policy (after preparing a statement again, or a
 * socket error before the request was written) is not covered.
 */
export class TimeoutRetryPolicy extends Cassandra.policies.retry.RetryPolicy {
  /** The requests this policy has retried, each known as {@link requestOf} says. */
  readonly #retried = new WeakSet<object>()
  /** The driver's decision to retry on the next node, its consistency left as the request's (not typed optional). */
  readonly #nextNodeRetry = this.retryResult(undefined as unknown as Cassandra.types.consistencies, false)
  /** The same, on the same node: for the timeouts the driver's policy itself sends again there. */
  readonly #sameNodeRetry = this.retryResult(undefined as unknown as Cassandra.types.consistencies, true)

  override onReadTimeout(
    info: Cassandra.policies.retry.OperationInfo,
    _consistency: Cassandra.types.consistencies,
    received: number,
    blockFor: number,
    isDataPresent: boolean
  ): Cassandra.policies.retry.DecisionInfo {
    return isIdempotentRead(info) && isUnconditionalText(info.query)
      ? this.#retryOnce(info, received >= blockFor && !isDataPresent)
      : this.rethrowResult()
  }

  override onWriteTimeout(
    info: Cassandra.policies.retry.OperationInfo,
    _consistency: Cassandra.types.consistencies,
    _received: number,
    _blockFor: number,
    writeType: string
  ): Cassandra.policies.retry.DecisionInfo {
    if (!resendableWrites.has(writeType)) return this.rethrowResult()
    const sameNode = writeType === "BATCH_LOG"
    if (info.query !== undefined) {
      return batchWrites.has(writeType) || isUnconditionalText(info.query)
        ? this.#retryOnce(info, sameNode)
        : this.rethrowResult()
    }
    // A batch: timed out as SIMPLE, it is one of a single partition, or a conditional batch's commit, and only the
    // session's options carry its text.
    const options = sessionOptions(info)
    return !isCounterBatch(info, options) && (batchWrites.has(writeType) || isUnconditionalText(options?.batchQuery))
      ? this.#retryOnce(info, sameNode)
      : this.rethrowResult()
  }

  override onUnavailable(
    info: Cassandra.policies.retry.OperationInfo,
    consistency: Cassandra.types.consistencies,
    required: number,
    alive: boolean
  ): Cassandra.policies.retry.DecisionInfo {
    return this.#remember(info, super.onUnavailable(info, consistency, required, alive))
  }

  override onRequestError(
    info: Cassandra.policies.retry.OperationInfo,
    consistency: Cassandra.types.consistencies,
    error: Error
  ): Cassandra.policies.retry.DecisionInfo {
    return this.#remember(info, super.onRequestError(info, consistency, error))
  }

  /**
   * Sent again, to the next node or (as the driver's policy would) the same one, at the request's own consistency (not
   * the one the timeout names, which for a batch log write is the batch log's, ONE or TWO, not the batch's), unless
   * this policy retried the request before.
   */
  #retryOnce(info: Cassandra.policies.retry.OperationInfo, sameNode: boolean): Cassandra.policies.retry.DecisionInfo {
    const request = requestOf(info)
    if (this.#retried.has(request) || deadlinePassed(info)) return this.rethrowResult()
    this.#retried.add(request)
    return sameNode ? this.#sameNodeRetry : this.#nextNodeRetry
  }

  /** Notes a retry the driver's own rules decided, so that a timeout after it is not retried too. */
  #remember(
    info: Cassandra.policies.retry.OperationInfo,
    decision: Cassandra.policies.retry.DecisionInfo
  ): Cassandra.policies.retry.DecisionInfo {
    if (decision.decision !== this.#nextNodeRetry.decision) return decision
    if (deadlinePassed(info)) return this.rethrowResult()
    this.#retried.add(requestOf(info))
    return decision
  }
}

/**
 * The least of its deadline a request must have left to be sent again. With less, the attempt that failed is the one
 * the deadline cut short (its timer, set to the time left rounded up to the millisecond, can fire a millisecond or two
 * early on a busy event loop), and a retry would be cut short too before a node could answer.
 */
const retryBudgetMillis = 5

/**
 * Whether the request's deadline has passed, or nearly: the session's request runner gives each request's driver
 * options its `requestDeadline` (`performance.now()` milliseconds; infinite without one).
 */
const deadlinePassed = (info: Cassandra.policies.retry.OperationInfo): boolean => {
  const options = sessionOptions(info)
  return options !== undefined && options.requestDeadline - performance.now() < retryBudgetMillis
}

/** The options a session's request gave the driver; undefined for options a caller gave the client directly. */
const sessionOptions = (info: Cassandra.policies.retry.OperationInfo): DriverOptions | undefined => {
  const options: unknown = info.executionOptions.getRawQueryOptions()
  return DriverOptions.is(options) ? options : undefined
}

/**
 * What a request is known by across its executions: for a session's request, the options the session gave the driver,
 * which it gives again when it sends the request again itself; otherwise the driver's execution options, one object a
 * call (the driver's auto-paging `eachRow` and `stream` share one between pages). A caller's options may be one
 * object shared by many calls, so they never are.
 */
const requestOf = (info: Cassandra.policies.retry.OperationInfo): object =>
  sessionOptions(info) ?? info.executionOptions

/**
 * Whether a read may be sent again: as the session's options say, or the driver for a caller's read, whose options may
 * throw when read (then it is not sent again). The driver asks about a read timeout whatever the idempotence.
 */
const isIdempotentRead = (info: Cassandra.policies.retry.OperationInfo): boolean => {
  const options = sessionOptions(info)
  if (options !== undefined) return options.isIdempotent === true
  try {
    return info.executionOptions.isIdempotent() === true
  } catch {
    return false
  }
}

/**
 * Whether a batch is a counter batch: as the session's options say, or the driver for a caller's batch, whose options
 * may be a Proxy that throws (then it is taken to be one, and not sent again).
 */
const isCounterBatch = (info: Cassandra.policies.retry.OperationInfo, options: DriverOptions | undefined): boolean => {
  if (options !== undefined) return options.counter === true
  try {
    return info.executionOptions.isBatchCounter() !== false
  } catch {
    return true
  }
}

/** Whether a request's text is known and carries no condition. */
const isUnconditionalText = (query: unknown): boolean => typeof query === "string" && !mayBeConditional(query)
