import { readFile } from "node:fs/promises"
import type * as tls from "node:tls"
import { createSecureContext } from "node:tls"
import * as Cassandra from "cassandra-driver"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as CassandraError from "../CassandraError.ts"
import type { Consistency, Options, PemSource, SerialConsistency, TlsOptions } from "../Session.ts"
import { driverEncoding } from "./driverEncoding.ts"

const consistencyCodes: Record<Consistency, number> = {
  ANY: Cassandra.types.consistencies.any,
  ONE: Cassandra.types.consistencies.one,
  TWO: Cassandra.types.consistencies.two,
  THREE: Cassandra.types.consistencies.three,
  QUORUM: Cassandra.types.consistencies.quorum,
  ALL: Cassandra.types.consistencies.all,
  LOCAL_QUORUM: Cassandra.types.consistencies.localQuorum,
  EACH_QUORUM: Cassandra.types.consistencies.eachQuorum,
  SERIAL: Cassandra.types.consistencies.serial,
  LOCAL_SERIAL: Cassandra.types.consistencies.localSerial,
  LOCAL_ONE: Cassandra.types.consistencies.localOne
}

/** Consistency of requests that choose none: a majority of the local data center's replicas. */
export const defaultConsistency: Consistency = "LOCAL_QUORUM"

/** Serial consistency of conditional requests that choose none. */
export const defaultSerialConsistency: SerialConsistency = "LOCAL_SERIAL"

/** The driver's numeric code of a consistency level. */
export const consistencyCode = (consistency: Consistency): number => consistencyCodes[consistency]

/** Whole milliseconds of a duration, as the driver's options take them. */
export const millis = (input: Duration.Input): number => Duration.toMillis(Duration.fromInputUnsafe(input))

const isInlinePem = (source: PemSource) => source.trimStart().startsWith("-----BEGIN")

const readPem = (source: PemSource, what: string) =>
  isInlinePem(source)
    ? Effect.succeed(source)
    : Effect.tryPromise({
        try: () => readFile(source, "utf8"),
        catch: (cause) =>
          CassandraError.configuration(
            `Could not read the TLS ${what} file ${source} (${(cause as NodeJS.ErrnoException).code ?? "error"}): check the path and its permissions`
          )
      })

const makeSslOptions = Effect.fnUntraced(function* (options: TlsOptions) {
  const ca = options.ca === undefined ? undefined : typeof options.ca === "string" ? [options.ca] : options.ca
  const sslOptions: tls.ConnectionOptions = {
    minVersion: options.minVersion ?? "TLSv1.2",
    rejectUnauthorized: options.dangerouslyDisableServerVerification !== true
  }
  if (ca !== undefined) sslOptions.ca = yield* Effect.forEach(ca, (source) => readPem(source, "CA certificate"))
  if (options.cert !== undefined) sslOptions.cert = yield* readPem(options.cert, "client certificate")
  if (options.key !== undefined) sslOptions.key = yield* readPem(Redacted.value(options.key), "client key")
  if (options.passphrase !== undefined) sslOptions.passphrase = Redacted.value(options.passphrase)
  if (options.serverName !== undefined) sslOptions.servername = options.serverName
  yield* checkSecureContext(sslOptions)
  return sslOptions
})

/**
 * Builds the TLS context once, so that unreadable PEM, a key that does not match its certificate or a wrong
 * passphrase fail here, with what to check, rather than as a handshake error on every connection. OpenSSL's texts
 * name the problem, never the key or the passphrase.
 */
const checkSecureContext = (sslOptions: tls.ConnectionOptions) =>
  Effect.try({
    try: () => createSecureContext(sslOptions),
    catch: (cause) =>
      CassandraError.configuration(
        `The TLS settings cannot be used (${(cause as NodeJS.ErrnoException).code ?? "error"}: ${(cause as Error).message.split("\n")[0]}): check that tls.ca and tls.cert hold PEM certificates, that tls.key is the PEM key of tls.cert, and that tls.passphrase decrypts it`
      )
  })

/** Whether a driver client connects with TLS, from the options it was built with. */
export const usesTls = (client: Cassandra.Client): boolean =>
  (client as unknown as { readonly options?: Cassandra.ClientOptions }).options?.sslOptions !== undefined

const retryPolicy = (retry: Options["retry"]) => {
  if (retry === undefined || retry === "default") return new Cassandra.policies.retry.RetryPolicy()
  if (retry === "never") return new Cassandra.policies.retry.FallthroughRetryPolicy()
  return retry
}

const reconnectionPolicy = (reconnection: Options["reconnection"]) => {
  if (reconnection?._tag === "Constant") {
    return new Cassandra.policies.reconnection.ConstantReconnectionPolicy(millis(reconnection.delay))
  }
  return new Cassandra.policies.reconnection.ExponentialReconnectionPolicy(
    millis(reconnection?.base ?? "1 second"),
    millis(reconnection?.max ?? "1 minute"),
    false
  )
}

/** Translates the library's options into the driver's, reading PEM files and unwrapping secrets at this boundary only. */
export const makeClientOptions = Effect.fnUntraced(function* (options: Options) {
  const connectTimeout = millis(options.connectTimeout ?? "10 seconds")
  const clientOptions: Cassandra.DseClientOptions = {
    contactPoints: [...options.contactPoints],
    localDataCenter: options.localDataCenter,
    encoding: driverEncoding,
    protocolOptions: { port: options.port ?? 9042 },
    socketOptions: {
      connectTimeout,
      readTimeout: millis(options.requestTimeout ?? "12 seconds")
    },
    queryOptions: {
      consistency: consistencyCode(options.consistency ?? defaultConsistency),
      serialConsistency: consistencyCode(options.serialConsistency ?? defaultSerialConsistency),
      fetchSize: options.pageSize ?? 5000,
      prepare: true
    },
    policies: {
      retry: retryPolicy(options.retry),
      reconnection: reconnectionPolicy(options.reconnection),
      speculativeExecution:
        options.speculativeExecution === undefined
          ? new Cassandra.policies.speculativeExecution.NoSpeculativeExecutionPolicy()
          : new Cassandra.policies.speculativeExecution.ConstantSpeculativeExecutionPolicy(
              millis(options.speculativeExecution.delay),
              options.speculativeExecution.maxExecutions
            )
    },
    // Insights reporting only talks to DSE; against Apache Cassandra it is wasted work.
    monitorReporting: { enabled: false }
  }
  if (options.keyspace !== undefined) clientOptions.keyspace = options.keyspace
  if (options.applicationName !== undefined) clientOptions.applicationName = options.applicationName
  if (options.applicationVersion !== undefined) clientOptions.applicationVersion = options.applicationVersion
  if (options.credentials !== undefined) {
    clientOptions.authProvider = new Cassandra.auth.PlainTextAuthProvider(
      options.credentials.username,
      Redacted.value(options.credentials.password)
    )
  }
  if (options.tls !== undefined) clientOptions.sslOptions = yield* makeSslOptions(options.tls)
  if (options.pooling !== undefined) {
    const pooling: NonNullable<Cassandra.ClientOptions["pooling"]> = {}
    const { connectionsPerHost, maxRequestsPerConnection, heartbeatInterval } = options.pooling
    if (connectionsPerHost !== undefined) {
      pooling.coreConnectionsPerHost = {
        [Cassandra.types.distance.local]: connectionsPerHost,
        [Cassandra.types.distance.remote]: 1,
        [Cassandra.types.distance.ignored]: 0
      }
    }
    if (maxRequestsPerConnection !== undefined) pooling.maxRequestsPerConnection = maxRequestsPerConnection
    if (heartbeatInterval !== undefined) pooling.heartBeatInterval = millis(heartbeatInterval)
    clientOptions.pooling = pooling
  }
  return { ...clientOptions, ...options.driverOptions }
})
