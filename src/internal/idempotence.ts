/**
 * The one rule of which requests may be sent more than once (retried, speculatively executed, or re-run by a batch
 * job): those declared idempotent, or else those that only read; and which statements carry a condition.
 */

const readOnlyStatement = /^\s*SELECT\b/i

/** Whether a request with this CQL text may be sent again: as `idempotent` declares, or else when it only reads. */
export const isIdempotent = (query: string, idempotent: boolean | undefined): boolean =>
  idempotent ?? readOnlyStatement.test(query)

/**
 * `IF` anywhere in the text, even in a name or a comment, and after a digit too (CQL reads `k = 1IF v = 2` as a number
 * and IF: Cassandra 5.0.9 answers `UPDATE ... WHERE k = -7IF v = 'y'` with `[applied]`). A conditional write runs a
 * Paxos round whose outcome a second run cannot reproduce (it answers "not applied" about its own first run), and a
 * batch with a condition is applied all or nothing. A false match (a name such as `a1if`) only costs a retry or a
 * batch's grouping.
 */
const condition = /(?<![A-Z_])IF(?![A-Z0-9_])/i

/** Whether the CQL text may carry a condition (`IF NOT EXISTS`, `IF EXISTS`, `IF col = ?`). */
export const mayBeConditional = (query: string): boolean => condition.test(query)
