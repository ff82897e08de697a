/**
 * The Cassandra session: one connected `cassandra-driver` client, owned by a scope, that runs every request of the
 * library with typed errors, one span per request, bounded timeouts and a graceful drain on close.
 *
 * @since 0.1.0
 */
import * as Cassandra from "cassandra-driver"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as CassandraError from "./CassandraError.ts"
import { makeClientOptions, usesTls } from "./internal/clientOptions.ts"
import { driverEncoding } from "./internal/driverEncoding.ts"
import { bridgeDriverLogs } from "./internal/loggingBridge.ts"
import { makeRequestRunner } from "./internal/requestRunner.ts"
import { keepTokenMapCurrent } from "./internal/tokenMap.ts"

/**
 * A CQL consistency level, by the name Cassandra gives it.
 *
 * @since 0.1.0
 * @category models
 */
export type Consistency =
  | "ANY"
  | "ONE"
  | "TWO"
  | "THREE"
  | "QUORUM"
  | "ALL"
  | "LOCAL_QUORUM"
  | "EACH_QUORUM"
  | "LOCAL_ONE"
  | "SERIAL"
  | "LOCAL_SERIAL"

/**
 * The consistency of the Paxos phase of lightweight transactions.
 *
 * @since 0.1.0
 * @category models
 */
export type SerialConsistency = "SERIAL" | "LOCAL_SERIAL"

/**
 * A PEM value given inline (text starting with `-----BEGIN`) or as the path of a file that holds it.
 *
 * @since 0.1.0
 * @category models
 */
export type PemSource = string

/**
 * TLS settings for client connections; the server's certificate and host name are verified unless
 * `dangerouslyDisableServerVerification` says otherwise.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsOptions {
  /** Certificates of the authorities that may sign the server's certificate (default: Node's bundled roots). */
  readonly ca?: PemSource | ReadonlyArray<PemSource> | undefined
  /** The client certificate chain, for mutual TLS. */
  readonly cert?: PemSource | undefined
  /** The client private key, for mutual TLS; it may be encrypted (then give `passphrase`). */
  readonly key?: Redacted.Redacted<PemSource> | undefined
  /** The passphrase of an encrypted client key; a wrong one fails the session at once with a Configuration reason. */
  readonly passphrase?: Redacted.Redacted | undefined
  /** The lowest TLS version accepted (default `TLSv1.2`). */
  readonly minVersion?: "TLSv1.2" | "TLSv1.3" | undefined
  /** The name checked against the server's certificate and sent as SNI (default: the node's address). */
  readonly serverName?: string | undefined
  /** Accept any server certificate, for any name: only for local experiments, never in production. */
  readonly dangerouslyDisableServerVerification?: boolean | undefined
}

/**
 * How a down node is retried: exponential back-off between `base` and `max`, or a constant delay.
 *
 * @since 0.1.0
 * @category models
 */
export type ReconnectionOptions =
  | { readonly _tag: "Exponential"; readonly base: Duration.Input; readonly max: Duration.Input }
  | { readonly _tag: "Constant"; readonly delay: Duration.Input }

/**
 * Speculative execution: after `delay` without an answer, an idempotent request is also sent to the next node, at most
 * `maxExecutions` extra times.
 *
 * @since 0.1.0
 * @category models
 */
export interface SpeculativeExecutionOptions {
  readonly delay: Duration.Input
  readonly maxExecutions: number
}

/**
 * Everything a session can be configured with; only `contactPoints` and `localDataCenter` are required.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Addresses (`host` or `host:port`) of the nodes to connect to first; the rest of the cluster is discovered. */
  readonly contactPoints: ReadonlyArray<string>
  /** The data center whose nodes serve requests (others are not used). */
  readonly localDataCenter: string
  /** The keyspace of unqualified table names. */
  readonly keyspace?: string | undefined
  /** Credentials for Cassandra's PasswordAuthenticator. */
  readonly credentials?: { readonly username: string; readonly password: Redacted.Redacted } | undefined
  /** TLS for client connections. */
  readonly tls?: TlsOptions | undefined
  /** The native protocol port (default 9042). */
  readonly port?: number | undefined
  /** Connections per node and requests per connection. */
  readonly pooling?:
    | {
        readonly connectionsPerHost?: number | undefined
        readonly maxRequestsPerConnection?: number | undefined
        readonly heartbeatInterval?: Duration.Input | undefined
      }
    | undefined
  /**
   * A session-wide limit on requests in flight, with at most `maxQueued` more waiting for a place; past that a request
   * fails at once with a `Throttled` reason. Keeps many concurrent fibers from overloading the cluster or the
   * driver's connections (default: no limit). Time spent waiting counts toward the request timeout.
   */
  readonly throttle?: { readonly maxInFlight: number; readonly maxQueued: number } | undefined
  /** Bound on the initial connection and on each socket connect (default 10 seconds). */
  readonly connectTimeout?: Duration.Input | undefined
  /** End-to-end bound of one request, retries and speculative executions included (default 12 seconds). */
  readonly requestTimeout?: Duration.Input | undefined
  /** How long closing the session waits for requests in flight (default 10 seconds). */
  readonly drainTimeout?: Duration.Input | undefined
  /** Consistency of requests that do not choose one (default `LOCAL_QUORUM`). */
  readonly consistency?: Consistency | undefined
  /** Serial consistency of conditional requests that do not choose one (default `LOCAL_SERIAL`). */
  readonly serialConsistency?: SerialConsistency | undefined
  /** Rows fetched per page (default 5000). */
  readonly pageSize?: number | undefined
  /** The driver's retry policy: its default one, one that never retries, or any policy object. */
  readonly retry?: "default" | "never" | Cassandra.policies.retry.RetryPolicy | undefined
  /** Speculative execution for idempotent requests (default: none). */
  readonly speculativeExecution?: SpeculativeExecutionOptions | undefined
  /** How down nodes are retried (default exponential from 1 second to 1 minute). */
  readonly reconnection?: ReconnectionOptions | undefined
  /** Sent to the server at connection time, shown in `system_views.clients`. */
  readonly applicationName?: string | undefined
  /** Sent to the server at connection time, shown in `system_views.clients`. */
  readonly applicationVersion?: string | undefined
  /** Extra attributes added to every request span. */
  readonly spanAttributes?: Readonly<Record<string, unknown>> | undefined
  /** Leave the CQL text out of spans (default false). */
  readonly omitQueryTextInSpans?: boolean | undefined
  /** Any other `cassandra-driver` option, applied last; the typed options above are preferred. */
  readonly driverOptions?: Partial<Cassandra.DseClientOptions> | undefined
}

/**
 * What one request sends: CQL text with `?` markers, its bound values and the driver's per-request options.
 *
 * @since 0.1.0
 * @category models
 */
export interface Request {
  readonly query: string
  readonly params: ReadonlyArray<unknown>
  readonly options: RequestOptions
}

/**
 * Per-request settings, as statements and batches pass them to the session.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestOptions {
  readonly consistency?: Consistency | undefined
  readonly serialConsistency?: SerialConsistency | undefined
  readonly pageSize?: number | undefined
  readonly pageState?: string | undefined
  readonly idempotent?: boolean | undefined
  readonly timestamp?: bigint | Date | undefined
  readonly routingKey?: Uint8Array | ReadonlyArray<Uint8Array> | undefined
  readonly tracing?: boolean | undefined
  readonly executionProfile?: string | undefined
  readonly timeout?: Duration.Input | undefined
  readonly prepare?: boolean | undefined
}

/**
 * The kinds of batch Cassandra offers.
 *
 * @since 0.1.0
 * @category models
 */
export type BatchType = "logged" | "unlogged" | "counter"

/**
 * The Cassandra session service: runs requests against the cluster and keeps the raw driver client reachable.
 *
 * @since 0.1.0
 * @category models
 */
export interface CassandraSession {
  /** The underlying `cassandra-driver` client, for what the library does not cover. */
  readonly client: Cassandra.Client
  /** The session's keyspace, if any. */
  readonly keyspace: string | undefined
  /** Runs one request (one page of a query) and returns the driver's result set. */
  readonly execute: (request: Request) => Effect.Effect<Cassandra.types.ResultSet, CassandraError.CassandraError>
  /** Runs statements as one batch. */
  readonly batch: (
    requests: ReadonlyArray<Omit<Request, "options">>,
    options: RequestOptions & { readonly type: BatchType }
  ) => Effect.Effect<Cassandra.types.ResultSet, CassandraError.CassandraError>
  /** Requests sent by this session that have not completed yet, including ones whose fiber was interrupted. */
  readonly inFlight: Effect.Effect<number>
}

/**
 * The service key of the Cassandra session.
 *
 * @since 0.1.0
 * @category services
 */
export const CassandraSession: Context.Service<CassandraSession, CassandraSession> = Context.Service<CassandraSession>(
  "effect-cassandra/CassandraSession"
)

/**
 * The service key of the raw `cassandra-driver` client behind the session.
 *
 * @since 0.1.0
 * @category services
 */
export const CassandraClient: Context.Service<Cassandra.Client, Cassandra.Client> = Context.Service<Cassandra.Client>(
  "effect-cassandra/CassandraClient"
)

/**
 * The value encoding the library's CQL type schemas expect; a caller-owned client should be created with it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const encoding: NonNullable<Cassandra.ClientOptions["encoding"]> = driverEncoding

const defaultConnectTimeout = Duration.seconds(10)

/** What every session does once its client is connected: keep the token ring current, then serve requests. */
const serveOver = Effect.fnUntraced(function* (client: Cassandra.Client, options: ClientSessionOptions) {
  yield* keepTokenMapCurrent(client)
  const runner = yield* makeRequestRunner(client, options)
  const session: CassandraSession = { client, keyspace: client.keyspace, ...runner }
  return session
})

/**
 * Creates a session: builds the driver client, connects eagerly within the connect timeout, and on scope close
 * refuses new requests, waits for those in flight up to the drain timeout, then shuts the client down.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: Options) => Effect.Effect<CassandraSession, CassandraError.CassandraError, Scope.Scope> =
  Effect.fnUntraced(function* (options: Options) {
    const clientOptions = yield* makeClientOptions(options)
    const connectTimeout = options.connectTimeout ?? defaultConnectTimeout
    const client = new Cassandra.Client(clientOptions)
    yield* bridgeDriverLogs(client)
    // A failed connect leaves the client's timers and sockets behind unless it is shut down too.
    yield* Effect.acquireRelease(
      connect(client, connectTimeout).pipe(Effect.tapError(() => shutdown(client))),
      shutdown
    )
    return yield* serveOver(client, options)
  })

/**
 * The settings of a session over a caller-owned client: the client's own options cover the rest.
 *
 * @since 0.1.0
 * @category models
 */
export type ClientSessionOptions = Partial<
  Pick<
    Options,
    | "requestTimeout"
    | "drainTimeout"
    | "consistency"
    | "serialConsistency"
    | "pageSize"
    | "spanAttributes"
    | "omitQueryTextInSpans"
    | "connectTimeout"
    | "throttle"
  >
>

/**
 * Creates a session over a caller-owned `cassandra-driver` client: the caller keeps its lifecycle, so closing the
 * scope drains this session's requests but does not shut the client down.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFromClient: (
  client: Cassandra.Client,
  options?: ClientSessionOptions
) => Effect.Effect<CassandraSession, CassandraError.CassandraError, Scope.Scope> = Effect.fnUntraced(function* (
  client: Cassandra.Client,
  options: ClientSessionOptions = {}
) {
  yield* bridgeDriverLogs(client)
  yield* connect(client, options.connectTimeout ?? defaultConnectTimeout)
  return yield* serveOver(client, options)
})

const connect = (client: Cassandra.Client, timeout: Duration.Input) =>
  Effect.tryPromise({
    try: () => client.connect(),
    catch: (cause) => CassandraError.fromDriverError(cause, { operation: "connect", plaintext: !usesTls(client) })
  }).pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () =>
        Effect.fail(
          CassandraError.fromDriverError(
            new Cassandra.errors.NoHostAvailableError(
              {},
              `No node answered within the connect timeout of ${Duration.format(Duration.fromInputUnsafe(timeout))}`
            ),
            { operation: "connect" }
          )
        )
    }),
    Effect.as(client)
  )

const shutdown = (client: Cassandra.Client) =>
  Effect.promise(() => client.shutdown()).pipe(Effect.interruptible, Effect.timeoutOption("5 seconds"), Effect.asVoid)

const layerFrom = <E, R>(acquire: Effect.Effect<CassandraSession, E, R>) =>
  Layer.effectContext(
    Effect.map(acquire, (session) =>
      Context.make(CassandraSession, session).pipe(Context.add(CassandraClient, session.client))
    )
  )

/**
 * A layer that provides the session and the raw client, built from options given in code.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<CassandraSession | Cassandra.Client, CassandraError.CassandraError> => layerFrom(make(options))

/**
 * A layer that reads the session's options from configuration (environment variables or any ConfigProvider);
 * secrets are read as `Config.Redacted`.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import { Session } from "effect-cassandra"
 *
 * const SessionLive = Session.layerConfig({
 *   contactPoints: Config.String("CASSANDRA_CONTACT_POINTS").pipe(Config.map((s) => s.split(","))),
 *   localDataCenter: Config.String("CASSANDRA_LOCAL_DC")
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Wrap<Options>
): Layer.Layer<CassandraSession | Cassandra.Client, CassandraError.CassandraError | Config.ConfigError> =>
  layerFrom(Effect.flatMap(Config.unwrap(config), make))

/**
 * A layer over a caller-owned `cassandra-driver` client, which the caller keeps open and shuts down.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromClient = (
  client: Cassandra.Client,
  options?: ClientSessionOptions
): Layer.Layer<CassandraSession | Cassandra.Client, CassandraError.CassandraError> =>
  layerFrom(makeFromClient(client, options))
