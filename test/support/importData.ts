/**
 * The data set of the batch-job import scenarios: `(p, k, v)` rows spread over 256 partitions, each value derived
 * from its key, so that reading the table back tells a missing, duplicated or wrong row apart.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type * as BatchJob from "effect-cassandra/BatchJob"
import * as Query from "effect-cassandra/Query"

const { cql } = Query

/** How many rows an import scenario writes. */
export const importRowCount = 50_000

const partitions = 256

const importedValue = (k: number) => `value-${(k * 7919) % 100_003}`

/** The table, the row statements and the read-back check of an import into `keyspace.imported`. */
export const importTable = (keyspace: string) => {
  const table = Query.identifier(keyspace, "imported")
  return {
    table,
    create: cql`CREATE TABLE ${table} (p int, k int, v text, PRIMARY KEY (p, k))`,
    /** The idempotent write of row `k`, whose partition is its first parameter. */
    row: (k: number) =>
      cql`INSERT INTO ${table} (p, k, v) VALUES (${k % partitions}, ${k}, ${importedValue(k)})`.withOptions({
        idempotent: true
      }),
    /** Every row of the table against the data set: how many rows, how many distinct keys, how many wrong. */
    check: cql<{ readonly k: number; readonly v: string }>`SELECT k, v FROM ${table}`
      .withOptions({ pageSize: 5000 })
      .stream.pipe(
        Stream.runFold(
          () => ({ rows: 0, keys: new Set<number>(), wrong: 0 }),
          (state, row) => {
            state.rows++
            state.keys.add(row.k)
            if (row.k < 0 || row.k >= importRowCount || row.v !== importedValue(row.k)) state.wrong++
            return state
          }
        ),
        Effect.map((state) => ({ rows: state.rows, distinct: state.keys.size, wrong: state.wrong }))
      )
  }
}

/** Job options of an import: rows of one partition are written together, in unlogged batches of 20. */
export const importOptions = (concurrency: number): BatchJob.Options<unknown> => ({
  concurrency,
  partitionKey: (statement) => String(statement.params[0]),
  maxBatchSize: 20
})
