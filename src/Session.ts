/**
 * The Cassandra session: one connected `cassandra-driver` client, owned by a scope, that runs every request of the
 * library with typed errors, one span per request, bounded timeouts and a graceful drain on close. Spans are made
 * only when a tracer is installed: under Effect's built-in tracer, which exports nothing, a request makes none.
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
import * as Scope from "effect/Scope"
import * as CassandraError from "./CassandraError.ts"
import { makeClientOptions, makeSessionSettings, type SessionSettings, usesTls } from "./internal/clientOptions.ts"
import { driverEncoding } from "./internal/driverEncoding.ts"
import { superviseDriverLifecycle } from "./internal/driverLifecycle.ts"
import { bridgeDriverLogs } from "./internal/loggingBridge.ts"
import { type HealthThresholds, makeThresholds, watchNodeHealth } from "./internal/nodeHealth.ts"
import { makeRequestRunner } from "./internal/requestRunner.ts"
import { stackless } from "./internal/stackless.ts"
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
 * A PEM value given inline (text or its bytes, holding a `-----BEGIN` line, which may follow attribute lines such as
 * those `openssl pkcs12 -nodes` writes; CRLF line ends and indented lines are accepted) or as the path of a file that
 * holds it. A value with neither is refused, naming the setting and never echoing what it holds; a value spanning
 * lines or longer than 4096 characters is never taken as a path. Base64-encoded PEM (as environment variables often
 * carry it) must be decoded first.
 *
 * @since 0.1.0
 * @category models
 */
export type PemSource = string | Uint8Array

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
  /**
   * Rotate certificates without restarting: how often the files named by `ca`, `cert` and `key` are looked at (a
   * `stat` each; a file rewritten, replaced by a rename or behind a swapped symbolic link counts as changed) and
   * re-read when one changed, or `certificates` is run again. New connections use the last set that loaded; open
   * ones keep theirs. A changed set that cannot be used (not PEM, a key that does not match its certificate, an
   * expired certificate, a broken chain, a missing file, a path that is not a regular file of at most 1 MiB)
   * replaces nothing: it is logged once as a `CassandraError` with a
   * Configuration reason (naming the setting, never its path or contents) and counted by
   * `Metrics.tlsReloads`. Default: files are read once; `certificates` is run every minute.
   */
  readonly reloadInterval?: Duration.Input | undefined
  /**
   * The current certificate set (from a secret store, say), instead of `ca`, `cert`, `key` and `passphrase`: run
   * when the session is built (its failure fails the build) and again every `reloadInterval`, each run bounded by
   * `connectTimeout`.
   */
  readonly certificates?: Effect.Effect<TlsCertificates, unknown> | undefined
}

/**
 * One certificate set, as yielded by `TlsOptions.certificates`; each value follows the rules of `TlsOptions`.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsCertificates {
  readonly ca?: PemSource | ReadonlyArray<PemSource> | undefined
  readonly cert?: PemSource | undefined
  readonly key?: Redacted.Redacted<PemSource> | undefined
  readonly passphrase?: Redacted.Redacted | undefined
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
 * How the session notices a node that stops answering without closing its connections (a long GC pause, a frozen
 * VM, a network partition), which the driver alone never marks down. A node that received nothing for
 * `suspectAfter` (default 1 second) while requests to it are outstanding, or whose attempt timed out in the last
 * `downAfter`, is tried last by every request and probed; one that stays silent for `downAfter` (default 5 seconds),
 * the probe unanswered, has its connections closed: its idempotent requests are retried on other nodes (the others
 * fail with a Connection reason, their outcome unknown), it is reported down (`hostDown`, the topology's `NodeDown`),
 * the control connection moves off it, and it is reported up again when a connection to it opens. The cluster's own
 * DOWN event for a node starts the same probe. `checkInterval` (default 250 ms) is how often the nodes are looked at.
 * A busy node still answers a probe within milliseconds, so slowness alone does not reach `downAfter`; a pause of
 * this process is not counted. Each setting must be a positive, finite duration, with `checkInterval` at most
 * `suspectAfter` and `suspectAfter` at most `downAfter`, or the session's build fails with a Configuration reason
 * before connecting.
 *
 * @since 0.1.0
 * @category models
 */
export interface NodeHealthOptions {
  readonly suspectAfter?: Duration.Input | undefined
  readonly downAfter?: Duration.Input | undefined
  readonly checkInterval?: Duration.Input | undefined
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
  /**
   * End-to-end bound of one request, retries and speculative executions included (default 12 seconds);
   * `Duration.infinity` sets none. Every finite duration option must be from 1 ms to 2^31-1 ms (the longest Node.js
   * timer); anything else fails the session's build with a Configuration reason naming the option.
   */
  readonly requestTimeout?: Duration.Input | undefined
  /**
   * Bound of each attempt on one node, after which the driver's retry policy may try the next node (for idempotent
   * requests); each attempt, retries and speculative executions included, is also bounded by the time left of the
   * request's deadline when it is sent (default 6 seconds: above
   * Cassandra's own read and write timeouts of 5 s and 2 s, and short enough that one retry fits in the default
   * deadline when a node stops answering). Raise it, with `requestTimeout`, for range scans slower than that;
   * `Duration.infinity` sets none.
   */
  readonly attemptTimeout?: Duration.Input | undefined
  /**
   * How long closing the session waits for the requests it accepted, in flight or waiting for a throttle place (default
   * 10 seconds; `Duration.infinity` waits).
   */
  readonly drainTimeout?: Duration.Input | undefined
  /** Consistency of requests that do not choose one (default `LOCAL_QUORUM`). */
  readonly consistency?: Consistency | undefined
  /** Serial consistency of conditional requests that do not choose one (default `LOCAL_SERIAL`). */
  readonly serialConsistency?: SerialConsistency | undefined
  /** Rows fetched per page (default 5000). */
  readonly pageSize?: number | undefined
  /**
   * How the driver retries a request: `"default"` (the driver's own policy, except that an idempotent request a
   * coordinator answered with a read or write timeout is sent once more, to the next node, unless the policy retried it
   * before; the two timeouts the driver's policy sends again to the same node still go there; and no retry is decided
   * once the request's deadline has passed or is less than 5 ms away), `"never"`, or any `RetryPolicy` object of
   * cassandra-driver. A timed-out counter update or conditional statement is never sent again. Whatever its
   * idempotence, a request refused by a node shutting down (which ran nowhere) is sent once more to another node,
   * except under `"never"` (or an execution profile whose retry policy never retries).
   */
  readonly retry?: "default" | "never" | Cassandra.policies.retry.RetryPolicy | undefined
  /** Speculative execution for idempotent requests (default: none). */
  readonly speculativeExecution?: SpeculativeExecutionOptions | undefined
  /** How down nodes are retried (default exponential from 1 second to 1 minute). */
  readonly reconnection?: ReconnectionOptions | undefined
  /** Detection of nodes that stop answering, see {@link NodeHealthOptions}; `false` turns it off. */
  readonly nodeHealth?: NodeHealthOptions | false | undefined
  /** Sent to the server at connection time, shown in `system_views.clients`. */
  readonly applicationName?: string | undefined
  /** Sent to the server at connection time, shown in `system_views.clients`. */
  readonly applicationVersion?: string | undefined
  /** Extra attributes added to every request span. */
  readonly spanAttributes?: Readonly<Record<string, unknown>> | undefined
  /** Leave the CQL text out of spans (default false). */
  readonly omitQueryTextInSpans?: boolean | undefined
  /**
   * Any other `cassandra-driver` option, merged last: plain objects key by key at any depth (so
   * `{ socketOptions: { keepAliveDelay } }` keeps the library's timeouts), anything else (a policy, an array)
   * replacing just its own key. Refused with a Configuration reason: settings the session sets on every request
   * (`socketOptions.readTimeout`, `queryOptions.readTimeout`, `consistency`, `serialConsistency`, `fetchSize`,
   * `prepare`, `isIdempotent`: use the typed options), `encoding` other than `copyBuffer` (the CQL type schemas rely
   * on {@link encoding}), `sslOptions` that turn server verification off (`rejectUnauthorized` other than `true`, a
   * `checkServerIdentity` that accepts another host) unless `tls.dangerouslyDisableServerVerification` is set, and
   * `sslOptions.minVersion` or `maxVersion` below TLSv1.2. `sslOptions` given here start from the library's TLS
   * defaults, which verify the server. Every plain object here is read once, when the session is built.
   */
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
  /**
   * The write timestamp, in microseconds since the epoch (a `Date` is converted); it must fall between 2000-01-01 and
   * one day from now unless `allowAnyTimestamp` is set, so that one given in nanoseconds or milliseconds by mistake
   * is refused before sending.
   */
  readonly timestamp?: bigint | Date | undefined
  /** Accept any 64-bit `timestamp`, however far in the past or future. */
  readonly allowAnyTimestamp?: boolean | undefined
  readonly routingKey?: Uint8Array | ReadonlyArray<Uint8Array> | undefined
  readonly tracing?: boolean | undefined
  readonly executionProfile?: string | undefined
  /**
   * The end-to-end bound of this request, instead of the session's `requestTimeout`. When longer than the session's
   * `attemptTimeout` and no `attemptTimeout` is given here, it raises this request's attempt timeout to match (an
   * infinite one leaves attempts unbounded), so that a statement known to be slow is not cut and retried on another
   * node before its own deadline; give `attemptTimeout` too to keep shorter attempts (to retry a node that stopped
   * answering within the deadline).
   */
  readonly timeout?: Duration.Input | undefined
  /**
   * The bound of each attempt of this request on one node, instead of the session's `attemptTimeout`; every attempt
   * is still bounded by the time left of the request's deadline. The same durations as `timeout` are accepted.
   */
  readonly attemptTimeout?: Duration.Input | undefined
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
export interface Session {
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
export const Session: Context.Service<Session, Session> = Context.Service<Session>("effect-cassandra/Session")

/**
 * The service key of the raw `cassandra-driver` client behind the session.
 *
 * @since 0.1.0
 * @category services
 */
export const CassandraClient: Context.Service<Cassandra.Client, Cassandra.Client> = Context.Service<Cassandra.Client>(
  "effect-cassandra/Session/CassandraClient"
)

/**
 * The value encoding the library's CQL type schemas expect; a caller-owned client should be created with it. Maps
 * decode as `Map`, which the driver's own keyspace metadata cannot read; importing the library makes that metadata
 * read them, so token-aware routing knows every replica under this encoding too.
 *
 * @since 0.1.0
 * @category constructors
 */
export const encoding: NonNullable<Cassandra.ClientOptions["encoding"]> = driverEncoding

/** What every session does once its client is connected: keep the token ring current, then serve requests. */
const serveOver = Effect.fnUntraced(function* (
  client: Cassandra.Client,
  nodeHealth: HealthThresholds | undefined,
  settings: SessionSettings
) {
  yield* keepTokenMapCurrent(client)
  yield* watchNodeHealth(client, nodeHealth)
  const runner = yield* makeRequestRunner(client, settings)
  const session: Session = { client, keyspace: client.keyspace, ...runner }
  return session
})

/**
 * Creates a session: builds the driver client, connects eagerly within the connect timeout, and on scope close
 * refuses new requests, waits up to the drain timeout for those it accepted (in flight, or waiting for a throttle place),
 * then shuts the client down; a request still waiting for a place, or for its statement to be prepared after a node
 * refused it, then fails unsent with a `SessionClosed` reason at once.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: Options) => Effect.Effect<Session, CassandraError.CassandraError, Scope.Scope> =
  Effect.fnUntraced(function* (options: Options) {
    const { clientOptions, settings, keepCertificatesCurrent } = yield* makeClientOptions(options)
    const nodeHealth = yield* makeThresholds(options.nodeHealth)
    // The driver checks its options again when the client is built, by throwing; its messages name the option.
    const client = yield* Effect.try({
      try: () => new Cassandra.Client(clientOptions),
      catch: (cause) => CassandraError.configuration(`driverOptions: ${String((cause as Error).message)}`)
    })
    yield* bridgeDriverLogs(client)
    // Closed after the client's shutdown: the driver's corrections stay installed while it shuts down, so that a
    // reconnection the driver starts as the session closes (a node marked down meanwhile) leaves nothing open either.
    const lifecycleScope = yield* Scope.fork(yield* Effect.scope)
    // A failed or interrupted connect leaves the client's timers and sockets behind unless it is shut down too; the
    // connect itself stays interruptible, so an interrupted build does not wait for the connect timeout.
    yield* Effect.addFinalizer(() => shutdown(client))
    yield* connect(client, settings.connectTimeoutMillis).pipe(Effect.onError(() => shutdown(client)))
    yield* superviseDriverLifecycle(client).pipe(Scope.provide(lifecycleScope))
    const session = yield* serveOver(client, nodeHealth, settings)
    // Only a session that was built reloads: a failed build, retried in the same scope, leaves nothing running.
    yield* keepCertificatesCurrent
    return session
  })

/**
 * The settings of a session over a caller-owned client: the client's own options cover the rest. The timeouts,
 * consistency and page size here apply per request, so `attemptTimeout` (default 6 seconds) sets each request's
 * driver read timeout whatever the client's `socketOptions.readTimeout` says.
 *
 * @since 0.1.0
 * @category models
 */
export type ClientSessionOptions = Partial<
  Pick<
    Options,
    | "requestTimeout"
    | "attemptTimeout"
    | "drainTimeout"
    | "consistency"
    | "serialConsistency"
    | "pageSize"
    | "spanAttributes"
    | "omitQueryTextInSpans"
    | "connectTimeout"
    | "throttle"
    | "nodeHealth"
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
) => Effect.Effect<Session, CassandraError.CassandraError, Scope.Scope> = Effect.fnUntraced(function* (
  client: Cassandra.Client,
  options: ClientSessionOptions = {}
) {
  const settings = yield* makeSessionSettings(options)
  const nodeHealth = yield* makeThresholds(options.nodeHealth)
  yield* bridgeDriverLogs(client)
  yield* connect(client, settings.connectTimeoutMillis)
  yield* superviseDriverLifecycle(client)
  return yield* serveOver(client, nodeHealth, settings)
})

const connect = (client: Cassandra.Client, timeoutMillis: number) =>
  Effect.tryPromise({
    try: () => client.connect(),
    catch: (cause) => CassandraError.fromDriverError(cause, { operation: "connect", plaintext: !usesTls(client) })
  }).pipe(
    Effect.timeoutOrElse({
      duration: timeoutMillis,
      orElse: () =>
        Effect.fail(
          stackless(() =>
            CassandraError.fromDriverError(
              new Cassandra.errors.NoHostAvailableError(
                {},
                `No node answered within the connect timeout of ${Duration.format(Duration.millis(timeoutMillis))}`
              ),
              { operation: "connect" }
            )
          )
        )
    }),
    Effect.as(client)
  )

/**
 * Shuts the client down, within 5 seconds. The driver ignores a shutdown while it is still connecting (its connect
 * goes on after the session gave up on it, and would end in an open client nobody closes), so a client that is
 * connecting is shut down as soon as its connect ends, without waiting for that here.
 */
const shutdown = (client: Cassandra.Client) =>
  Effect.suspend(() => {
    if ((client as unknown as { readonly connecting?: boolean }).connecting === true) {
      client.once("connected", () => void client.shutdown().catch(() => undefined))
      return Effect.void
    }
    return Effect.promise(() => client.shutdown()).pipe(
      Effect.interruptible,
      Effect.timeoutOption("5 seconds"),
      Effect.asVoid
    )
  })

const layerFrom = <E, R>(acquire: Effect.Effect<Session, E, R>) =>
  Layer.effectContext(
    Effect.map(acquire, (session) => Context.make(Session, session).pipe(Context.add(CassandraClient, session.client)))
  )

/**
 * A layer that provides the session and the raw client, built from options given in code.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Session | Cassandra.Client, CassandraError.CassandraError> =>
  layerFrom(make(options))

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
): Layer.Layer<Session | Cassandra.Client, CassandraError.CassandraError | Config.ConfigError> =>
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
): Layer.Layer<Session | Cassandra.Client, CassandraError.CassandraError> => layerFrom(makeFromClient(client, options))
