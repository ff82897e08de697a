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
