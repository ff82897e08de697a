/**
 * What a request is about, read once from its CQL text: the operation, keyspace and table that name its span, its
 * span attributes and its metric series. Never its bound values.
 *
 * Spans follow the OpenTelemetry semantic conventions for Cassandra client spans, version 1.44.0
 * (https://github.com/open-telemetry/semantic-conventions/blob/v1.44.0/docs/db/cassandra.md).
 */
import * as Cassandra from "cassandra-driver"
import type * as Tracer from "effect/Tracer"
import type * as CassandraError from "../CassandraError.ts"
import type { Consistency } from "../Session.ts"

/** The operation, keyspace and table of a statement or a batch. */
export interface StatementTarget {
  /** The CQL verb (`SELECT`, `INSERT`, …), or `BATCH` / `BATCH <verb>` for batches. */
  readonly operation: string
  /** The keyspace the statement names, when it qualifies its table. */
  readonly keyspace: string | undefined
  /** The table the statement reads or writes, for DML and TRUNCATE. */
  readonly table: string | undefined
}

const name = `("(?:[^"]|"")+"|[A-Za-z0-9_]+)`
const qualifiedName = String.raw`${name}(?:\s*\.\s*${name})?`
const targetPatterns: ReadonlyArray<RegExp> = [
  new RegExp(String.raw`^\s*SELECT\b[\s\S]*?\bFROM\s+${qualifiedName}`, "i"),
  new RegExp(String.raw`^\s*INSERT\s+INTO\s+${qualifiedName}`, "i"),
  new RegExp(String.raw`^\s*UPDATE\s+${qualifiedName}`, "i"),
  new RegExp(String.raw`^\s*DELETE\b[\s\S]*?\bFROM\s+${qualifiedName}`, "i"),
  new RegExp(String.raw`^\s*TRUNCATE\s+(?:TABLE\s+)?${qualifiedName}`, "i")
]

const unquote = (identifier: string) =>
  identifier.startsWith('"') ? identifier.slice(1, -1).replaceAll('""', '"') : identifier

/** The CQL verb of a statement (`SELECT`, `INSERT`, …), or `CQL` when it has none. */
export const operationName = (query: string): string => /^\s*([A-Za-z]+)/.exec(query)?.[1]?.toUpperCase() ?? "CQL"

// The operation names metric series, so there it is bounded to the verbs CQL has: a malformed or garbage statement
// (`SELEKT …`) must not mint a new series. Spans keep the word the statement starts with: they are not series.
const cqlVerbs: ReadonlySet<string> = new Set([
  "SELECT",
  "INSERT",
  "UPDATE",
  "DELETE",
  "BEGIN",
  "APPLY",
  "TRUNCATE",
  "USE",
  "CREATE",
  "ALTER",
  "DROP",
  "GRANT",
  "REVOKE",
  "LIST",
  "ADD",
  "DESCRIBE",
  "DESC"
])

const batchPrefix = "BATCH "

/**
 * The `operation` metric attribute of a target's operation: the CQL verb, `OTHER` for any other word or none, and
 * `BATCH` / `BATCH <verb>` for batches likewise.
 */
export const metricOperation = (operation: string): string => {
  const batched = operation.startsWith(batchPrefix)
  if (operation === "BATCH" || cqlVerbs.has(batched ? operation.slice(batchPrefix.length) : operation)) return operation
  return batched ? `${batchPrefix}OTHER` : "OTHER"
}

/** Reads the operation, keyspace and table of one statement from its text. */
export const statementTarget = (query: string): StatementTarget => {
  const operation = operationName(query)
  for (const pattern of targetPatterns) {
    const match = pattern.exec(query)
    if (match === null) continue
    const [, first, second] = match
    if (first === undefined) break
    return second === undefined
      ? { operation, keyspace: undefined, table: unquote(first) }
      : { operation, keyspace: unquote(first), table: unquote(second) }
  }
  return { operation, keyspace: undefined, table: undefined }
}

const sameOrUndefined = <A>(values: ReadonlyArray<A>): A | undefined =>
  values.every((value) => value === values[0]) ? values[0] : undefined

/**
 * The target of a batch: `BATCH <verb>` when every statement has the same verb, and the keyspace and table they
 * share, if any.
 */
export const batchTarget = (targets: ReadonlyArray<StatementTarget>): StatementTarget => {
  const operation = sameOrUndefined(targets.map((target) => target.operation))
  return {
    operation: operation === undefined ? "BATCH" : `BATCH ${operation}`,
    keyspace: sameOrUndefined(targets.map((target) => target.keyspace)),
    table: sameOrUndefined(targets.map((target) => target.table))
  }
}

// Statement texts repeat (values are bound, not inlined), so a small cache spares the regular expressions on the
// request path; it is emptied when full, so dynamic texts cannot make it grow without bound.
const cacheLimit = 1024
const cache = new Map<string, StatementTarget>()

/** `statementTarget`, remembered for the most recent texts. */
export const cachedStatementTarget = (query: string): StatementTarget => {
  const cached = cache.get(query)
  if (cached !== undefined) return cached
  if (cache.size >= cacheLimit) cache.clear()
  const target = statementTarget(query)
  cache.set(query, target)
  return target
}

/**
 * The span name of the conventions: `{operation} {table}`, else `{operation} {keyspace}`, else the operation.
 */
export const spanName = (target: StatementTarget, keyspace: string | undefined): string => {
  const subject = target.table ?? keyspace
  return subject === undefined ? target.operation : `${target.operation} ${subject}`
}

/** The consistency level as the conventions spell it (`local_quorum`). */
export const consistencyAttribute = (consistency: Consistency): string => consistency.toLowerCase()

/** Splits `host:port` (or `[v6]:port`) into the `server.address` and `server.port` attributes. */
export const serverAttributes = (
  address: string
): { readonly "server.address": string; readonly "server.port"?: number } => {
  const separator = address.lastIndexOf(":")
  if (separator <= 0 || address.indexOf(":") !== separator) {
    const bracketed = /^\[(.+)\]:(\d+)$/.exec(address)
    return bracketed === null
      ? { "server.address": address }
      : { "server.address": bracketed[1] ?? address, "server.port": Number(bracketed[2]) }
  }
  return { "server.address": address.slice(0, separator), "server.port": Number(address.slice(separator + 1)) }
}

/**
 * Adds what the result tells about the request: the coordinator (`server.*`, `cassandra.coordinator.*`), the rows
 * returned and the speculative executions.
 */
export const annotateResult = (span: Tracer.Span, client: Cassandra.Client, result: Cassandra.types.ResultSet) => {
  const coordinator = result.info.queriedHost
  if (coordinator !== undefined) annotateCoordinator(span, client, coordinator)
  if (result.columns !== null) span.attribute("db.response.returned_rows", result.rowLength)
  span.attribute("cassandra.speculative_execution.count", result.info.speculativeExecutions ?? 0)
}

type Attribute = readonly [key: string, value: unknown]

// Per coordinator, as the same few nodes answer every request: its attributes are built once, not on each request.
const addressAttributes = new Map<string, ReadonlyArray<Attribute>>()

const attributesOfAddress = (coordinator: string) => {
  let attributes = addressAttributes.get(coordinator)
  if (attributes === undefined) {
    if (addressAttributes.size >= cacheLimit) addressAttributes.clear()
    attributes = Object.entries(serverAttributes(coordinator))
    addressAttributes.set(coordinator, attributes)
  }
  return attributes
}

interface HostAttributes {
  readonly hostId: unknown
  readonly datacenter: string
  readonly attributes: ReadonlyArray<Attribute>
}

// Keyed by the driver's host object, and rebuilt should the node report another id or data center.
const hostAttributes = new WeakMap<Cassandra.Host, HostAttributes>()

const attributesOfHost = (host: Cassandra.Host, coordinator: string) => {
  const cached = hostAttributes.get(host)
  if (cached !== undefined && cached.hostId === host.hostId && cached.datacenter === host.datacenter) {
    return cached.attributes
  }
  const attributes: Array<Attribute> = [
    ...attributesOfAddress(coordinator),
    ["cassandra.coordinator.dc", host.datacenter]
  ]
  if (host.hostId !== undefined && host.hostId !== null)
    attributes.push(["cassandra.coordinator.id", String(host.hostId)])
  hostAttributes.set(host, { hostId: host.hostId, datacenter: host.datacenter, attributes })
  return attributes
}

const annotateCoordinator = (span: Tracer.Span, client: Cassandra.Client, coordinator: string) => {
  const host = client.hosts.get(coordinator)
  const attributes = host === undefined ? attributesOfAddress(coordinator) : attributesOfHost(host, coordinator)
  for (const [key, value] of attributes) span.attribute(key, value)
}

/**
 * Adds how the request failed: `error.type` is the tag of the `CassandraError` reason (`Syntax`, `ReadTimeout`, …),
 * `db.response.status_code` the server's native-protocol error code in hexadecimal (`0x2000`) when the server
 * answered with an error, and the coordinator when the reason names one.
 */
export const annotateFailure = (span: Tracer.Span, client: Cassandra.Client, error: CassandraError.CassandraError) => {
  span.attribute("error.type", error.reason._tag)
  const code = (error.driverError as { readonly code?: unknown } | undefined)?.code
  if (error.driverError instanceof Cassandra.errors.ResponseError && typeof code === "number") {
    span.attribute("db.response.status_code", `0x${code.toString(16).padStart(4, "0")}`)
  }
  const coordinator = "coordinator" in error.reason ? error.reason.coordinator : undefined
  if (typeof coordinator === "string") annotateCoordinator(span, client, coordinator)
}
