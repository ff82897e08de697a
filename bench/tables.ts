/** The tables the benchmark shares between its processes. */
export const keyspace = "bench"
export const kvTable = `${keyspace}.kv`
export const importTable = `${keyspace}.imports`
export const wideTable = `${keyspace}.wide`
export const metaTable = `${keyspace}.meta`
/** Rows fetched per page by every streaming variant. */
export const pageSize = 5000
/** Partitions the wide table's rows are spread over. */
export const widePartitions = 100

export const schema = [
  `CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
  `CREATE TABLE IF NOT EXISTS ${kvTable} (k int PRIMARY KEY, v text)`,
  `CREATE TABLE IF NOT EXISTS ${importTable} (k int PRIMARY KEY, v text, n bigint)`,
  `CREATE TABLE IF NOT EXISTS ${wideTable} (p int, c int, name text, amount bigint, price double, active boolean,
     created timestamp, ref uuid, note text, qty int, PRIMARY KEY (p, c))`,
  `CREATE TABLE IF NOT EXISTS ${metaTable} (name text PRIMARY KEY, rows int)`
]
