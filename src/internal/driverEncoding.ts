import { createRequire } from "node:module"
import type { ClientOptions } from "cassandra-driver"

/**
 * The driver's value encoding that every session uses, so that the CQL type schemas can rely on it:
 * bigint/counter/varint arrive as native `bigint` (never `Long`), maps as `Map` and sets as `Set`.
 */
export const driverEncoding: NonNullable<ClientOptions["encoding"]> = {
  map: Map,
  set: Set,
  useBigIntAsLong: true,
  useBigIntAsVarint: true,
  useUndefinedAsUnset: true
}

interface KeyspaceParser {
  _parseKeyspace: (row: Record<string, unknown>, virtual: boolean) => unknown
}

interface SchemaParserModule {
  readonly getByVersion: (options: ClientOptions, cc: unknown, udtResolver: unknown, version: Array<number>) => object
}

const replicationReadable = Symbol.for("effect-cassandra/replicationReadable")

/**
 * The driver's schema parser (cassandra-driver 4.10, lib/metadata/schema-parser.js `_parseKeyspace`) reads a
 * keyspace's `replication` with `replication['class']` and `for…in`, which see nothing in a `Map`: with the encoding
 * above, every keyspace lost its strategy and every token mapped to its primary replica only. The rest of the
 * driver's metadata code already accepts `encoding.map`; the driver offers no public hook for this one spot, so its
 * parser is wrapped, once per process, to hand it the replication as the plain object it expects. Rows of the
 * application still decode to `Map`. Returns whether the parser reads replication correctly, so a driver upgrade
 * that moves the method fails the unit test rather than routing silently.
 */
const makeReplicationReadable = (): boolean => {
  let parsers: SchemaParserModule
  try {
    parsers = createRequire(import.meta.url)("cassandra-driver/lib/metadata/schema-parser.js") as SchemaParserModule
  } catch {
    return false
  }
  // Cassandra 3+ (schema tables in system_schema) share this parser's keyspace parsing.
  const prototype = Object.getPrototypeOf(
    parsers.getByVersion({}, undefined, undefined, [3])
  ) as Partial<KeyspaceParser> & { [replicationReadable]?: true }
  const parseKeyspace = prototype._parseKeyspace
  if (typeof parseKeyspace !== "function") return false
  if (prototype[replicationReadable] === true) return true
  prototype._parseKeyspace = function (this: KeyspaceParser, row, virtual) {
    const replication = row.replication
    if (replication instanceof Map) row.replication = Object.fromEntries(replication)
    return parseKeyspace.call(this, row, virtual)
  }
  prototype[replicationReadable] = true
  return true
}

/**
 * Whether the driver's metadata reads keyspace replication under {@link driverEncoding}. Applied when this module
 * loads: every client built with the encoding, the caller's own included, has loaded it first.
 */
export const keyspaceReplicationReadable: boolean = makeReplicationReadable()
