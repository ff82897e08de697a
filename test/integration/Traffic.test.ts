import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Query from "effect-cassandra/Query"
import { sessionWithKeyspace } from "../support/session.ts"
import { lostWrites } from "../support/traffic.ts"

// The cluster suites' "no acknowledged write lost" rests on this check: it must count every acknowledged key that is
// missing or holds another value, however many pages its scan of the table takes.

const { cql } = Query
const setup = sessionWithKeyspace("traffic")

/** More rows than one page of the check's scan (5,000), so that a key on a later page is checked too. */
const rows = 12_001

layer(setup.layer, { timeout: 120_000, excludeTestServices: true })("the cluster suites' write check", (it) => {
  it.effect(
    "counts the acknowledged keys missing or holding another value, across pages of the scan",
    () =>
      Effect.gen(function* () {
        yield* cql`CREATE TABLE kv (k int PRIMARY KEY, v text)`
        const keys = Array.from({ length: rows }, (_, k) => k)
        yield* Effect.forEach(keys, (k) => cql`INSERT INTO kv (k, v) VALUES (${k}, ${`value-${k}`})`, {
          concurrency: 32,
          discard: true
        })
        assert.strictEqual(yield* lostWrites(keys), 0)

        yield* cql`DELETE FROM kv WHERE k = ${rows - 1}`
        yield* cql`UPDATE kv SET v = ${"another value"} WHERE k = ${0}`
        // Acknowledged, never written: as lost as a deleted key.
        const acknowledged = [...keys, rows + 5]
        assert.strictEqual(yield* lostWrites(acknowledged), 3)
        // Rows nobody acknowledged do not count.
        assert.strictEqual(yield* lostWrites(keys.slice(1, 100)), 0)
      }),
    120_000
  )
})
