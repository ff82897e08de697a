/**
 * The one rule of which requests may be sent more than once (retried, speculatively executed, or re-run by a batch
 * job): those declared idempotent, or else those that only read.
 */

const readOnlyStatement = /^\s*SELECT\b/i

/** Whether a request with this CQL text may be sent again: as `idempotent` declares, or else when it only reads. */
export const isIdempotent = (query: string, idempotent: boolean | undefined): boolean =>
  idempotent ?? readOnlyStatement.test(query)
