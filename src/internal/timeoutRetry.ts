import * as Cassandra from "cassandra-driver"
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
 * with a read or write timeout is sent once more to the same coordinator, whatever the replicas answered. The
 * coordinator was alive and answered; its replicas were slow (a GC pause, a node just restarted and replaying hints),
 * and one more try usually finds them answering, where the driver's policy would fail the request at once (a write
 * unless it was the batch log's, a read unless every replica answered but the one holding the data).
 *
 * A timeout is sent again only when this policy has not retried the request before, counted per request across its
 * speculative executions; the driver's own resending of a statement a node had to prepare again does not count.
 * A conditional statement never is: a conditional write's commit times out as a SIMPLE write, and its read of the
 * current values as a read, so the text is what tells it apart; a batch's text is not known here, so a batch is sent
 * again only for the write types no conditional batch has. The driver asks about a write timeout only for an
 * idempotent request; a read's idempotence is checked here.
 */
export class TimeoutRetryPolicy extends Cassandra.policies.retry.RetryPolicy {
  /** The execution options of the requests this policy has retried: one object per request, shared by its executions. */
  readonly #retried = new WeakSet<object>()
  /** The driver's decision to retry on the same node, its consistency left as the request's (not typed optional). */
  readonly #sameConsistencyRetry = this.retryResult(undefined as unknown as Cassandra.types.consistencies, true)

  override onReadTimeout(
    info: Cassandra.policies.retry.OperationInfo,
    _consistency: Cassandra.types.consistencies,
    _received: number,
    _blockFor: number,
    _isDataPresent: boolean
  ): Cassandra.policies.retry.DecisionInfo {
    return info.executionOptions.isIdempotent() && isUnconditionalText(info.query)
      ? this.#retryOnce(info)
      : this.rethrowResult()
  }

  override onWriteTimeout(
    info: Cassandra.policies.retry.OperationInfo,
    _consistency: Cassandra.types.consistencies,
    _received: number,
    _blockFor: number,
    writeType: string
  ): Cassandra.policies.retry.DecisionInfo {
    return resendableWrites.has(writeType) && (batchWrites.has(writeType) || isUnconditionalText(info.query))
      ? this.#retryOnce(info)
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
   * Sent again to the same coordinator at the request's own consistency (not the one the timeout names, which for a
   * batch log write is the batch log's, ONE or TWO, not the batch's), unless this policy retried the request before.
   */
  #retryOnce(info: Cassandra.policies.retry.OperationInfo): Cassandra.policies.retry.DecisionInfo {
    const request = info.executionOptions
    if (this.#retried.has(request)) return this.rethrowResult()
    this.#retried.add(request)
    return this.#sameConsistencyRetry
  }

  /** Notes a retry the driver's own rules decided, so that a timeout after it is not retried too. */
  #remember(
    info: Cassandra.policies.retry.OperationInfo,
    decision: Cassandra.policies.retry.DecisionInfo
  ): Cassandra.policies.retry.DecisionInfo {
    if (decision.decision === this.#sameConsistencyRetry.decision) {
      this.#retried.add(info.executionOptions)
    }
    return decision
  }
}

/** Whether a request's text is known and carries no condition. */
const isUnconditionalText = (query: unknown): boolean => typeof query === "string" && !mayBeConditional(query)
