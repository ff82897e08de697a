/**
 * The one error of every request: `CassandraError`, whose `reason` says what went wrong, classified from the
 * driver's error classes and the server's error codes, with the detail the server sent.
 *
 * Handle one reason with `Effect.catchReason("CassandraError", "Unavailable", (reason) => …)`, or retry on
 * `error.isRetryable`. `isRetryable` means "safe to retry if the statement is idempotent": a retry of a
 * non-idempotent statement (a counter update, a list append, a lightweight transaction) after a timeout can apply it
 * twice. Retryable reasons are the ones where the cluster could not serve the request for now: NoHostAvailable
 * (unless every host failed for a non-retryable reason), Connection, Busy, Throttled, ClientTimeout, Unavailable,
 * ReadTimeout, WriteTimeout, Overloaded, Bootstrapping and Truncate. Every other reason would fail the same way again.
 *
 * Messages never carry bound values or credentials: server texts that can echo a bound value are redacted, the
 * driver's encoding errors are cut before the value, and the username of a refused login is left out. What is not a
 * value stays: sizes and limits ("length 20971576 exceeds maximum allowed length 16777216"), counts (70,000 bound
 * values where the protocol allows 65,535), the position and type the driver names, and the range a value must fit. The JSON
 * form and the schema-encoded form leave the raw driver error out. The raw driver error itself stays in the
 * non-enumerable `driverError` for debugging, deliberately not in `cause`: its text can hold bound values, and
 * loggers print an error's `cause` chain and enumerable properties.
 *
 * @since 0.1.0
 */
import * as Cassandra from "cassandra-driver"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import {
  consistencyName,
  encodingErrorText,
  errorName,
  failuresByReplica,
  flagField,
  innerErrors,
  isDenoPermissionDenial,
  isEncodingError,
  isNetworkError,
  isResetOnRead,
  numberField,
  redactEchoedValues,
  redactHead,
  stringField,
  stringListField,
  tlsDetail,
  tlsProblemOf,
  transientConnectionText
} from "./internal/errorClassification.ts"
import { stackless } from "./internal/stackless.ts"

const TypeId = "~effect-cassandra/CassandraError"

/** The node that coordinated the request (`host:port`), when the driver knows it. */
const coordinator = { coordinator: Schema.optional(Schema.String) }

/** The server's error text, with any echo of a bound value redacted. */
const serverMessage = { serverMessage: Schema.String }

/** The structured detail of UNAVAILABLE, timeouts and failures. */
const replicaCounts = { consistency: Schema.String, received: Schema.Number, blockFor: Schema.Number }

const coordinatedBy = (reason: { readonly coordinator?: string | undefined }, fallback: string) =>
  reason.coordinator ?? fallback

/**
 * The schema of one host's failure inside a `NoHostAvailable` reason.
 *
 * @since 0.1.0
 * @category models
 */
export const HostFailure = Schema.Struct({
  address: Schema.String,
  reason: Schema.String,
  message: Schema.String,
  retryable: Schema.Boolean
})

/**
 * One host's failure inside a `NoHostAvailable` reason: its address, the inner reason's tag and message, and
 * whether that inner reason is retryable.
 *
 * @since 0.1.0
 * @category models
 */
export type HostFailure = typeof HostFailure.Type

const hostsShownInMessage = 3

/**
 * No host could serve the request: one summary per host tried, or the driver's explanation when none was tried.
 * Retryable unless every host tried failed for a non-retryable reason.
 *
 * When every host tried was reached and gave the same answer (UNAVAILABLE from the only node, a local data center
 * that does not exist, refused credentials), the reason is that answer instead, so it can be caught by its own tag.
 *
 * @since 0.1.0
 * @category errors
 */
export class NoHostAvailable extends Schema.TaggedError<NoHostAvailable>(
  "effect-cassandra/CassandraError/NoHostAvailable"
)("NoHostAvailable", {
  hosts: Schema.Array(HostFailure),
  detail: Schema.optional(Schema.String)
}) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return this.hosts.length === 0 || this.hosts.some((host) => host.retryable)
  }
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    if (this.hosts.length === 0) return `No host could serve the request: ${this.detail ?? "no host was tried"}`
    const shown = this.hosts
      .slice(0, hostsShownInMessage)
      .map((host) => `${host.address} ${host.reason}: ${host.message}`)
    const more = this.hosts.length - hostsShownInMessage
    return `No host could serve the request: ${shown.join("; ")}${more > 0 ? `; and ${more} more` : ""}`
  }
}

/**
 * The connection to a host failed or closed (refused, reset, connect timeout), or the host had no open connection
 * while its pool was reconnecting ("No connection available", "Connection closed", "Host considered as DOWN").
 * `detail` is the driver's or Node's text, which names hosts, never values. Retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class Connection extends Schema.TaggedError<Connection>("effect-cassandra/CassandraError/Connection")(
  "Connection",
  { ...coordinator, detail: Schema.String, code: Schema.optional(Schema.String) }
) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return true
  }
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Connection to ${coordinatedBy(this, "the host")} failed: ${this.detail}`
  }
}

/**
 * What went wrong in a TLS handshake: the server's certificate is signed by an authority not in `tls.ca`
 * (UnknownAuthority), does not name the host connected to (HostnameMismatch) or is out of its validity period
 * (Expired); the server wants a client certificate and got none (ClientCertificateRequired) or refused the one sent
 * (ClientCertificateRejected); the server requires TLS from a plaintext client (TlsRequired) or does not speak TLS
 * (ServerNotTls); or another handshake failure (Handshake).
 *
 * @since 0.1.0
 * @category models
 */
export const TlsProblem = Schema.Literals([
  "UnknownAuthority",
  "HostnameMismatch",
  "Expired",
  "ClientCertificateRequired",
  "ClientCertificateRejected",
  "TlsRequired",
  "ServerNotTls",
  "Handshake"
])

/**
 * What went wrong in a TLS handshake; see the schema of the same name.
 *
 * @since 0.1.0
 * @category models
 */
export type TlsProblem = typeof TlsProblem.Type

const tlsAdvice: Record<TlsProblem, (host: string) => string> = {
  UnknownAuthority: (host) =>
    `the certificate of ${host} is not signed by a trusted authority; put the certificate of the CA that signed it in tls.ca`,
  HostnameMismatch: (host) =>
    `the certificate of ${host} is not valid for the host connected to; connect by a name or address the certificate lists, or set tls.serverName to one of them`,
  Expired: (host) =>
    `the certificate of ${host} has expired or is not valid yet; renew the node's certificate and check the clocks`,
  ClientCertificateRequired: (host) => `${host} requires a client certificate; set tls.cert and tls.key`,
  ClientCertificateRejected: (host) =>
    `${host} refused the client certificate; check that tls.cert is signed by a CA the node trusts, is not expired and matches tls.key`,
  TlsRequired: (host) => `${host} reset the plaintext connection; the node requires TLS, so set tls (and tls.ca)`,
  ServerNotTls: (host) =>
    `${host} does not speak TLS on this port; remove tls, or enable client_encryption_options on the node`,
  Handshake: (host) =>
    `the TLS handshake with ${host} failed; check tls.minVersion, the client certificate and the node's client_encryption_options`
}

/**
 * A TLS handshake failed, for the reason `problem` names; `code` is Node's or OpenSSL's error code. The message says
 * which setting to check. Not retryable: the same settings fail the same way.
 *
 * @since 0.1.0
 * @category errors
 */
export class Tls extends Schema.TaggedError<Tls>("effect-cassandra/CassandraError/Tls")("Tls", {
  ...coordinator,
  problem: TlsProblem,
  code: Schema.String,
  detail: Schema.String
}) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return false
  }
  /**
   * What went wrong and what to check.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `TLS: ${tlsAdvice[this.problem](coordinatedBy(this, "the node"))} (${this.code}: ${this.detail})`
  }
}

/**
 * Every connection to a host already has `pooling.maxRequestsPerConnection` requests in flight; the request was
 * not sent. Retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class Busy extends Schema.TaggedError<Busy>("effect-cassandra/CassandraError/Busy")("Busy", {
  ...coordinator,
  detail: Schema.String
}) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return true
  }
  /**
   * What went wrong and what to check.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.detail}; limit the request concurrency or raise pooling.maxRequestsPerConnection`
  }
}

/**
 * The session's throttle refused the request: `maxInFlight` requests were already in flight and `maxQueued` more
 * were waiting. The request was not sent. Retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class Throttled extends Schema.TaggedError<Throttled>("effect-cassandra/CassandraError/Throttled")("Throttled", {
  maxInFlight: Schema.Number,
  maxQueued: Schema.Number
}) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return true
  }
  /**
   * What went wrong and what to check.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `The session's throttle is full (${this.maxInFlight} requests in flight, ${this.maxQueued} waiting); the request was not sent: lower the concurrency or raise throttle.maxQueued`
  }
}

/**
 * The client gave up waiting for a host's reply (the driver's `OperationTimedOutError`: `readTimeout` per attempt,
 * or the session's own request timeout). The server may still apply the request. Retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class ClientTimeout extends Schema.TaggedError<ClientTimeout>("effect-cassandra/CassandraError/ClientTimeout")(
  "ClientTimeout",
  { ...coordinator, detail: Schema.String }
) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return true
  }
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Client-side timeout: ${this.detail}`
  }
}

/**
 * Authentication failed: the server refused the credentials (BAD_CREDENTIALS), or it requires authentication and
 * the authenticator could not start. The username is never kept. Not retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class Authentication extends Schema.TaggedError<Authentication>(
  "effect-cassandra/CassandraError/Authentication"
)("Authentication", { ...coordinator, refusedByServer: Schema.Boolean, detail: Schema.optional(Schema.String) }) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return false
  }
  /**
   * What went wrong and what to check.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return this.refusedByServer
      ? `${coordinatedBy(this, "The server")} refused the credentials; check the username and password`
      : `Authentication with ${coordinatedBy(this, "the server")} failed: ${this.detail ?? "the authenticator failed"}`
  }
}

/**
 * The logged-in role lacks a permission (UNAUTHORIZED). Not retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>("effect-cassandra/CassandraError/Unauthorized")(
  "Unauthorized",
  { ...coordinator, ...serverMessage }
) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return false
  }
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Not authorized: ${this.serverMessage}`
  }
}

/**
 * The CQL text does not parse (SYNTAX_ERROR). The server's text is kept whole: it quotes only the statement, which
 * holds no bound values. Not retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class Syntax extends Schema.TaggedError<Syntax>("effect-cassandra/CassandraError/Syntax")("Syntax", {
  ...coordinator,
  ...serverMessage
}) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return false
  }
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `CQL syntax error: ${this.serverMessage}`
  }
}

/**
 * The server rejected a well-formed request (INVALID: unknown keyspace, table or column, wrong number of bound
 * values, missing key, ALLOW FILTERING needed…; CONFIG_ERROR: invalid keyspace or table options). Not retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class Invalid extends Schema.TaggedError<Invalid>("effect-cassandra/CassandraError/Invalid")("Invalid", {
  ...coordinator,
  ...serverMessage
}) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return false
  }
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Invalid request: ${this.serverMessage}`
  }
}

/**
 * CREATE of a keyspace or table that already exists (ALREADY_EXISTS); `table` is absent for a keyspace. Not
 * retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class AlreadyExists extends Schema.TaggedError<AlreadyExists>("effect-cassandra/CassandraError/AlreadyExists")(
  "AlreadyExists",
  { ...coordinator, keyspace: Schema.String, table: Schema.optional(Schema.String) }
) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return false
  }
  /**
   * What went wrong and what to check.
   *
   * @since 0.1.0
   */
  override get message(): string {
    const what = this.table === undefined ? `Keyspace ${this.keyspace}` : `Table ${this.keyspace}.${this.table}`
    return `${what} already exists; use IF NOT EXISTS to make the statement idempotent`
  }
}

/**
 * The coordinator knew too few replicas alive for the consistency level and did not try (UNAVAILABLE). Retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unavailable extends Schema.TaggedError<Unavailable>("effect-cassandra/CassandraError/Unavailable")(
  "Unavailable",
  { ...coordinator, consistency: Schema.String, required: Schema.Number, alive: Schema.Number }
) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return true
  }
  /**
   * What went wrong and what to check.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.alive} of ${this.required} required replicas alive at ${this.consistency}; check the replicas' state or lower the consistency level`
  }
}

/**
 * Too few replicas answered a read in time (READ_TIMEOUT); `dataPresent` says whether the replica asked for the
 * data answered. Retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReadTimeout extends Schema.TaggedError<ReadTimeout>("effect-cassandra/CassandraError/ReadTimeout")(
  "ReadTimeout",
  { ...coordinator, ...replicaCounts, dataPresent: Schema.Boolean }
) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return true
  }
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    const detail =
      this.received < this.blockFor
        ? `${this.received} of ${this.blockFor} required replicas answered`
        : this.dataPresent
          ? "the replicas answered but repairing an inconsistent replica timed out"
          : "the replica asked for the data did not answer"
    return `Server-side read timeout at ${this.consistency}: ${detail}`
  }
}

/**
 * Too few replicas acknowledged a write in time (WRITE_TIMEOUT). The write may still be applied; `writeType` (SIMPLE,
 * BATCH, BATCH_LOG, UNLOGGED_BATCH, COUNTER, CAS, VIEW, CDC) says what was being written. Retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class WriteTimeout extends Schema.TaggedError<WriteTimeout>("effect-cassandra/CassandraError/WriteTimeout")(
  "WriteTimeout",
  { ...coordinator, ...replicaCounts, writeType: Schema.String }
) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return true
  }
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Server-side write timeout (${this.writeType}) at ${this.consistency}: ${this.received} of ${this.blockFor} required replicas acknowledged`
  }
}

const failureFields = {
  ...coordinator,
  ...replicaCounts,
  failures: Schema.Number,
  failuresByReplica: Schema.optional(Schema.Record(Schema.String, Schema.Number))
}

/**
 * Replicas failed a read (READ_FAILURE), for example on too many tombstones; a retry fails the same way. Not
 * retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReadFailure extends Schema.TaggedError<ReadFailure>("effect-cassandra/CassandraError/ReadFailure")(
  "ReadFailure",
  { ...failureFields, dataPresent: Schema.Boolean }
) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return false
  }
  /**
   * What went wrong and what to check.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Read failed on ${this.failures} replica(s) at ${this.consistency} (${this.received} of ${this.blockFor} required replicas answered); check the replicas' logs`
  }
}

/**
 * Replicas failed a write (WRITE_FAILURE); a retry fails the same way. Not retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class WriteFailure extends Schema.TaggedError<WriteFailure>("effect-cassandra/CassandraError/WriteFailure")(
  "WriteFailure",
  { ...failureFields, writeType: Schema.String }
) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return false
  }
  /**
   * What went wrong and what to check.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Write (${this.writeType}) failed on ${this.failures} replica(s) at ${this.consistency} (${this.received} of ${this.blockFor} required replicas acknowledged); check the replicas' logs`
  }
}

/**
 * The coordinator is overloaded and refused the request (OVERLOADED). Retryable, best on another host.
 *
 * @since 0.1.0
 * @category errors
 */
export class Overloaded extends Schema.TaggedError<Overloaded>("effect-cassandra/CassandraError/Overloaded")(
  "Overloaded",
  { ...coordinator, ...serverMessage }
) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return true
  }
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `${coordinatedBy(this, "The coordinator")} is overloaded: ${this.serverMessage}`
  }
}

/**
 * The coordinator is still joining the ring (IS_BOOTSTRAPPING). Retryable on another host.
 *
 * @since 0.1.0
 * @category errors
 */
export class Bootstrapping extends Schema.TaggedError<Bootstrapping>("effect-cassandra/CassandraError/Bootstrapping")(
  "Bootstrapping",
  { ...coordinator, ...serverMessage }
) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return true
  }
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `${coordinatedBy(this, "The coordinator")} is still bootstrapping: ${this.serverMessage}`
  }
}

/**
 * TRUNCATE failed, usually because a replica was down or slow (TRUNCATE_ERROR). Retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class Truncate extends Schema.TaggedError<Truncate>("effect-cassandra/CassandraError/Truncate")("Truncate", {
  ...coordinator,
  ...serverMessage
}) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return true
  }
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Truncate failed: ${this.serverMessage}`
  }
}

/**
 * A user-defined function threw (FUNCTION_FAILURE). Not retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class FunctionFailure extends Schema.TaggedError<FunctionFailure>(
  "effect-cassandra/CassandraError/FunctionFailure"
)("FunctionFailure", {
  ...coordinator,
  ...serverMessage,
  keyspace: Schema.String,
  functionName: Schema.String,
  argTypes: Schema.Array(Schema.String)
}) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return false
  }
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Function ${this.keyspace}.${this.functionName}(${this.argTypes.join(", ")}) failed: ${this.serverMessage}`
  }
}

/**
 * The server failed internally (SERVER_ERROR). Not retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class Server extends Schema.TaggedError<Server>("effect-cassandra/CassandraError/Server")("Server", {
  ...coordinator,
  ...serverMessage
}) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return false
  }
  /**
   * What went wrong and what to check.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Server error on ${coordinatedBy(this, "the coordinator")}: ${this.serverMessage} (check the node's logs)`
  }
}

/**
 * The server found a native-protocol violation (PROTOCOL_ERROR). Not retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class Protocol extends Schema.TaggedError<Protocol>("effect-cassandra/CassandraError/Protocol")("Protocol", {
  ...coordinator,
  ...serverMessage
}) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return false
  }
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Protocol error: ${this.serverMessage}`
  }
}

/**
 * The driver rejected the request before sending it: an invalid option or argument (`ArgumentError`, such as a
 * local data center that does not exist), an unsupported feature (`NotSupportedError`), or a bound value that does
 * not fit its CQL type (shown without the value). Not retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidArgument extends Schema.TaggedError<InvalidArgument>(
  "effect-cassandra/CassandraError/InvalidArgument"
)("InvalidArgument", { ...coordinator, detail: Schema.String }) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return false
  }
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Invalid argument: ${this.detail}`
  }
}

/**
 * A statement named a keyspace, table or column that is not a valid CQL name; it was not sent. Not retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidIdentifier extends Schema.TaggedError<InvalidIdentifier>(
  "effect-cassandra/CassandraError/InvalidIdentifier"
)("InvalidIdentifier", { names: Schema.Array(Schema.String) }) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return false
  }
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Not a valid CQL name: ${this.names.map((name) => JSON.stringify(name)).join(", ")}; the statement was not sent`
  }
}

/**
 * The session's options cannot be used (for example a TLS file that cannot be read). Not retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class Configuration extends Schema.TaggedError<Configuration>("effect-cassandra/CassandraError/Configuration")(
  "Configuration",
  { detail: Schema.String }
) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return false
  }
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return this.detail
  }
}

/**
 * The session is closed or closing and refuses new requests. Not retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class SessionClosed extends Schema.TaggedError<SessionClosed>("effect-cassandra/CassandraError/SessionClosed")(
  "SessionClosed",
  {}
) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return false
  }
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return "The session is closed: it refuses new requests"
  }
}

/**
 * Anything else: a server code without its own reason (a session reports a failed re-preparation by the node's
 * answer to preparing again, such as `Invalid` for a dropped table, so UNPREPARED shows here only when that answer
 * could not be had), a driver bug, or a value thrown from outside the driver. `detail` is the driver's text for its own errors and absent for
 * other errors, whose text may echo a bound value. Not retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unknown extends Schema.TaggedError<Unknown>("effect-cassandra/CassandraError/Unknown")("Unknown", {
  ...coordinator,
  errorName: Schema.String,
  code: Schema.optional(Schema.Number),
  detail: Schema.optional(Schema.String)
}) {
  /**
   * Whether a retry of an idempotent statement may succeed.
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return false
  }
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    const code = this.code === undefined ? "" : ` (server code 0x${this.code.toString(16).padStart(4, "0")})`
    return `Unexpected ${this.errorName}${code}: ${this.detail ?? "its text is withheld because it may echo a bound value (see the error's driverError)"}`
  }
}

/**
 * Every reason a request can fail for, as a schema.
 *
 * @since 0.1.0
 * @category models
 */
export const Reason = Schema.Union([
  NoHostAvailable,
  Connection,
  Tls,
  Busy,
  Throttled,
  ClientTimeout,
  Authentication,
  Unauthorized,
  Syntax,
  Invalid,
  AlreadyExists,
  Unavailable,
  ReadTimeout,
  WriteTimeout,
  ReadFailure,
  WriteFailure,
  Overloaded,
  Bootstrapping,
  Truncate,
  FunctionFailure,
  Server,
  Protocol,
  InvalidArgument,
  InvalidIdentifier,
  Configuration,
  SessionClosed,
  Unknown
])

/**
 * Every reason a request can fail for; switch on `_tag`.
 *
 * @since 0.1.0
 * @category models
 */
export type Reason = typeof Reason.Type

/**
 * What the session was doing when the error happened.
 *
 * @since 0.1.0
 * @category models
 */
export interface ErrorContext {
  /** The session operation, such as "execute", "batch", "stream" or "connect". */
  readonly operation?: string | undefined
  /** The CQL text of the statement; never its bound values. */
  readonly statement?: string | undefined
  /**
   * Whether the client connects without TLS: then a node resetting the connection is one that requires TLS.
   */
  readonly plaintext?: boolean | undefined
}

/**
 * The error of every Cassandra request: `reason` says what went wrong, `message` says it in one line with what to
 * check, `operation` and `statement` say what was being done, and `driverError` is the raw driver error.
 *
 * @since 0.1.0
 * @category errors
 */
export class CassandraError extends Schema.TaggedError<CassandraError>("effect-cassandra/CassandraError")(
  "CassandraError",
  {
    reason: Reason,
    operation: Schema.optional(Schema.String),
    statement: Schema.optional(Schema.String)
  }
) {
  /**
   * Marks the value as a `CassandraError` for `isCassandraError`.
   *
   * @since 0.1.0
   */
  readonly [TypeId]: typeof TypeId = TypeId
  /**
   * The raw driver error, for debugging. It is not enumerable and not part of the schema, so no printed, logged,
   * JSON or encoded form of the error carries it (its text can quote bound values).
   *
   * @since 0.1.0
   */
  declare readonly driverError?: unknown
  /**
   * Whether a retry may succeed, if the statement is idempotent (see the module documentation).
   *
   * @since 0.1.0
   */
  get isRetryable(): boolean {
    return this.reason.isRetryable
  }
  /**
   * The reason's message, prefixed with the operation when known.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return this.operation === undefined ? this.reason.message : `${this.operation}: ${this.reason.message}`
  }
  /**
   * The JSON form for logs: tag, message, reason, operation and statement, without the raw driver error.
   *
   * @since 0.1.0
   */
  override toJSON(): unknown {
    return {
      _tag: this._tag,
      message: this.message,
      reason: this.reason,
      operation: this.operation,
      statement: this.statement
    }
  }
}

/**
 * Whether a value is a `CassandraError`.
 *
 * @since 0.1.0
 * @category guards
 */
export const isCassandraError = (u: unknown): u is CassandraError => Predicate.hasProperty(u, TypeId)

/** Reasons that mean a host could not be used at all, rather than a host's answer to the request. */
const hostUnusableTags: ReadonlySet<Reason["_tag"]> = new Set(["Connection", "Busy", "ClientTimeout", "Unknown"])

const codes = Cassandra.types.responseErrorCodes

const classifyResponse = (error: Cassandra.errors.ResponseError, at: { coordinator?: string }): Reason => {
  // Only the reasons that carry the server's text pay for its redaction: not the timeouts and UNAVAILABLE an
  // overloaded cluster answers most.
  const redacted = () => ({ ...at, serverMessage: redactHead(error.message, redactEchoedValues) })
  switch (error.code) {
    case codes.unavailableException:
      return new Unavailable({
        ...at,
        consistency: consistencyName(numberField(error, "consistencies")),
        required: numberField(error, "required"),
        alive: numberField(error, "alive")
      })
    case codes.readTimeout:
    case codes.readFailure:
    case codes.writeTimeout:
    case codes.writeFailure: {
      const counts = {
        ...at,
        consistency: consistencyName(numberField(error, "consistencies")),
        received: numberField(error, "received"),
        blockFor: numberField(error, "blockFor")
      }
      const failures = { failures: numberField(error, "failures"), failuresByReplica: failuresByReplica(error) }
      const dataPresent = flagField(error, "isDataPresent")
      const writeType = stringField(error, "writeType") ?? "UNKNOWN"
      if (error.code === codes.readTimeout) return new ReadTimeout({ ...counts, dataPresent })
      if (error.code === codes.readFailure) return new ReadFailure({ ...counts, ...failures, dataPresent })
      if (error.code === codes.writeTimeout) return new WriteTimeout({ ...counts, writeType })
      return new WriteFailure({ ...counts, ...failures, writeType })
    }
    case codes.alreadyExists:
      return new AlreadyExists({
        ...at,
        keyspace: stringField(error, "keyspace") ?? "",
        table: stringField(error, "table")
      })
    case codes.functionFailure:
      return new FunctionFailure({
        ...redacted(),
        keyspace: stringField(error, "keyspace") ?? "",
        functionName: stringField(error, "functionName") ?? "",
        argTypes: stringListField(error, "argTypes")
      })
    case codes.badCredentials:
      return new Authentication({ ...at, refusedByServer: true })
    case codes.syntaxError:
      return new Syntax({ ...at, serverMessage: error.message })
    case codes.unauthorized:
      return new Unauthorized(redacted())
    case codes.invalid:
    case codes.configError:
      return new Invalid(redacted())
    case codes.overloaded:
      return new Overloaded(redacted())
    case codes.isBootstrapping:
      return new Bootstrapping(redacted())
    case codes.truncateError:
      return new Truncate(redacted())
    case codes.serverError:
      return new Server(redacted())
    case codes.protocolError:
      return new Protocol(redacted())
    default:
      return new Unknown({ ...at, errorName: error.name, code: error.code, detail: redacted().serverMessage })
  }
}

const classifyAuthentication = (error: Cassandra.errors.AuthenticationError, at: { coordinator?: string }) => {
  const answer: unknown = Predicate.hasProperty(error, "additionalInfo") ? error.additionalInfo : undefined
  return answer instanceof Cassandra.errors.ResponseError && answer.code === codes.badCredentials
    ? new Authentication({ ...at, refusedByServer: true })
    : new Authentication({ ...at, refusedByServer: false, detail: redactHead(error.message, redactEchoedValues) })
}

const classifyNoHostAvailable = (error: Cassandra.errors.NoHostAvailableError, plaintext: boolean): Reason => {
  const tried = innerErrors(error).map(([address, inner]) => ({ address, reason: classify(inner, plaintext, address) }))
  const first = tried[0]?.reason
  if (
    first !== undefined &&
    !hostUnusableTags.has(first._tag) &&
    tried.every(({ reason }) => reason._tag === first._tag)
  ) {
    return first
  }
  return new NoHostAvailable({
    hosts: tried.map(({ address, reason }) => ({
      address,
      reason: reason._tag,
      message: reason.message,
      retryable: reason.isRetryable
    })),
    detail: tried.length === 0 ? error.message : undefined
  })
}

/** The base `DriverError` class itself is what the driver throws for a closed socket and a connect timeout. */
const isBaseDriverError = (error: unknown) =>
  Predicate.isObject(error) && Object.getPrototypeOf(error) === Cassandra.errors.DriverError.prototype

function classify(error: unknown, plaintext: boolean, knownCoordinator?: string): Reason {
  const coordinator = stringField(error, "coordinator") ?? knownCoordinator
  const at = coordinator === undefined ? {} : { coordinator }
  // The session's throttle refuses a request before the driver sees it, with the reason already made.
  if (error instanceof Throttled) return error
  if (error instanceof Cassandra.errors.NoHostAvailableError) return classifyNoHostAvailable(error, plaintext)
  if (error instanceof Cassandra.errors.ResponseError) return classifyResponse(error, at)
  if (error instanceof Cassandra.errors.OperationTimedOutError) {
    return new ClientTimeout({ coordinator: error.host ?? coordinator, detail: error.message })
  }
  if (error instanceof Cassandra.errors.AuthenticationError) return classifyAuthentication(error, at)
  if (error instanceof Cassandra.errors.BusyConnectionError) return new Busy({ ...at, detail: error.message })
  if (error instanceof Cassandra.errors.ArgumentError || error instanceof Cassandra.errors.NotSupportedError) {
    return new InvalidArgument({ ...at, detail: error.message })
  }
  const tlsProblem = tlsProblemOf(error)
  if (tlsProblem !== undefined) {
    return new Tls({
      ...at,
      problem: tlsProblem,
      code: stringField(error, "code") ?? "",
      detail: tlsDetail(error as Error)
    })
  }
  if (plaintext && isResetOnRead(error)) {
    return new Tls({ ...at, problem: "TlsRequired", code: "ECONNRESET", detail: (error as Error).message })
  }
  if (isDenoPermissionDenial(error)) return new Configuration({ detail: error.message })
  if (flagField(error, "isSocketError") || isBaseDriverError(error) || isNetworkError(error)) {
    return new Connection({
      ...at,
      detail: (error as Error).message,
      code: isNetworkError(error) ? error.code : undefined
    })
  }
  const transient = transientConnectionText(error)
  if (transient !== undefined) return new Connection({ ...at, detail: transient })
  if (error instanceof Cassandra.errors.DriverError) {
    return new Unknown({ ...at, errorName: error.name, detail: error.message })
  }
  if (isEncodingError(error)) return new InvalidArgument({ ...at, detail: encodingErrorText(error) })
  return new Unknown({ ...at, errorName: errorName(error) })
}

const make = (reason: Reason, driverError: unknown, context: ErrorContext) => {
  const error = new CassandraError({ reason, operation: context.operation, statement: context.statement })
  Object.defineProperty(error, "driverError", { value: driverError, enumerable: false })
  return error
}

/**
 * Classifies anything the driver threw into a `CassandraError` (a `CassandraError` is returned as is). The
 * statement falls back to the CQL text the driver attaches to a failed request; bound values are never read.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromDriverError = (error: unknown, context: ErrorContext = {}): CassandraError =>
  stackless(() => classified(error, context))

const classified = (error: unknown, context: ErrorContext) => {
  try {
    return isCassandraError(error)
      ? error
      : make(classify(error, context.plaintext === true), error, {
          operation: context.operation,
          statement: context.statement ?? stringField(error, "query")
        })
  } catch {
    // A thrown value whose fields throw when read (a getter, a proxy): classifying it must not throw in its turn,
    // least of all inside a driver callback.
    return make(new Unknown({ errorName: "value that could not be read" }), error, context)
  }
}

/**
 * The error of a request refused because the session is closed or closing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const sessionClosed = (context: ErrorContext = {}): CassandraError =>
  stackless(() => make(new SessionClosed(), undefined, context))

/**
 * The error of a statement holding names that are not valid CQL names; it was not sent.
 *
 * @since 0.1.0
 * @category constructors
 */
export const invalidIdentifier = (names: ReadonlyArray<string>, context: ErrorContext = {}): CassandraError =>
  stackless(() => make(new InvalidIdentifier({ names }), undefined, context))

/**
 * The error of session options that cannot be used, with what to check in `detail`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const configuration = (detail: string, context: ErrorContext = {}): CassandraError =>
  stackless(() => make(new Configuration({ detail }), undefined, context))
