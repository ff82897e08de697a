import { assert, describe, it } from "@effect/vitest"
import * as BatchJob from "../../src/BatchJob.ts"
import * as Query from "../../src/Query.ts"

describe("BatchJob.isIdempotent", () => {
  it("takes a read as idempotent unless declared otherwise", () => {
    assert.isTrue(BatchJob.isIdempotent(Query.cql`SELECT * FROM t WHERE k = ${1}`))
    assert.isTrue(BatchJob.isIdempotent(Query.cql`  select k FROM t`))
    assert.isFalse(BatchJob.isIdempotent(Query.cql`SELECT * FROM t`.withOptions({ idempotent: false })))
  })

  it("takes a write as idempotent only when declared", () => {
    assert.isFalse(BatchJob.isIdempotent(Query.cql`INSERT INTO t (k) VALUES (${1})`))
    assert.isFalse(BatchJob.isIdempotent(Query.cql`UPDATE c SET n = n + 1 WHERE k = ${1}`))
    assert.isTrue(BatchJob.isIdempotent(Query.cql`INSERT INTO t (k) VALUES (${1})`.withOptions({ idempotent: true })))
  })
})
