import * as Cassandra from "cassandra-driver"

/**
 * The write types whose timed-out write may be sent again when its statement is idempotent. A logged batch is
 * included: once its batch log is written it is applied in full eventually, so sending it again changes nothing.
 * Not a counter update or a conditional write (a second run could add twice, or answer "not applied" to its own
 * first run), nor the writes Cassandra makes for views and CDC, which no client sends.
 */
const resendableWrites: ReadonlySet<string> = new Set(["SIMPLE", "BATCH", "UNLOGGED_BATCH", "BATCH_LOG"])

/**
 * The session's default retry policy: the driver's own, except that an idempotent request a coordinator answered
 * with a read or write timeout is sent once more to the same coordinator, whatever the replicas answered. The
 * coordinator was alive and answered; its replicas were slow (a GC pause, a node just restarted and replaying
 * hints), and one more try usually finds them answering, where the driver's policy would fail the request at once
 * (a write unless it was the batch log's, a read unless every replica answered but the one holding the data).
 * One retry per request in all, as the driver's policy does, so that an overloaded cluster sees at most twice the
 * load. The driver asks about a write timeout only for an idempotent request; the read's idempotence is checked here.
 */
export class TimeoutRetryPolicy extends Cassandra.policies.retry.RetryPolicy {
  override onReadTimeout(
    info: Cassandra.policies.retry.OperationInfo,
    _consistency: Cassandra.types.consistencies,
    _received: number,
    _blockFor: number,
    _isDataPresent: boolean
  ): Cassandra.policies.retry.DecisionInfo {
    return info.nbRetry === 0 && info.executionOptions.isIdempotent() ? this.#retryAsSent() : this.rethrowResult()
  }

  override onWriteTimeout(
    info: Cassandra.policies.retry.OperationInfo,
    _consistency: Cassandra.types.consistencies,
    _received: number,
    _blockFor: number,
    writeType: string
  ): Cassandra.policies.retry.DecisionInfo {
    return info.nbRetry === 0 && resendableWrites.has(writeType) ? this.#retryAsSent() : this.rethrowResult()
  }

  /**
   * Sent again to the same coordinator at the request's own consistency: not the one the timeout names, which for a
   * batch log write is the batch log's (ONE or TWO), not the batch's.
   */
  #retryAsSent(): Cassandra.policies.retry.DecisionInfo {
    return this.retryResult(undefined as unknown as Cassandra.types.consistencies, true)
  }
}
