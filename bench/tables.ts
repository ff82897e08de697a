/** The tables the benchmark shares between its processes, and the rows it writes into them. */
import * as Cassandra from "cassandra-driver"

export const keyspace = "bench"
export const kvTable = `${keyspace}.kv`
export const importTable = `${keyspace}.imports`
export const wideTable = `${keyspace}.wide`
export const metaTable = `${keyspace}.meta`
/** Rows fetched per page by every streaming variant. */
export const pageSize = 5000
/** Partitions the wide table's rows are spread over. */
export const widePartitions = 100
/** Keys 0..readKeys-1 of the kv table exist before any read is measured. */
export const readKeys = 10_000

export const schema = [
  `CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
  `CREATE TABLE IF NOT EXISTS ${kvTable} (k int PRIMARY KEY, v text)`,
  `CREATE TABLE IF NOT EXISTS ${importTable} (k int PRIMARY KEY, v text, n bigint)`,
  `CREATE TABLE IF NOT EXISTS ${wideTable} (p int, c int, name text, amount bigint, price double, active boolean,
     created timestamp, ref uuid, note text, qty int, PRIMARY KEY (p, c))`,
  `CREATE TABLE IF NOT EXISTS ${metaTable} (name text PRIMARY KEY, rows int)`
]

/** Row `i` of the wide table, by column, as the driver reads it back under the library's encoding. */
export const wideRowValues = (i: number) => ({
  p: i % widePartitions,
  c: i,
  name: `name-${i}`,
  amount: BigInt(i) * 1000n,
  price: i / 7,
  active: i % 2 === 0,
  created: new Date(1_700_000_000_000 + i),
  ref: Cassandra.types.Uuid.random(),
  note: "a note of moderate length for every row",
  qty: i % 1000
})
