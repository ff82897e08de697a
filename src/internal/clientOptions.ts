import { constants } from "node:fs"
import { open } from "node:fs/promises"
import type * as tls from "node:tls"
import * as Cassandra from "cassandra-driver"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as CassandraError from "../CassandraError.ts"
import type { ClientSessionOptions, Consistency, Options, SerialConsistency, TlsOptions } from "../Session.ts"
import {
  type CertificateSource,
  digestOf,
  filesVersion,
  type PemSet,
  reloadingSslOptions,
  secureContextOf
} from "./certificateReload.ts"
import { driverEncoding } from "./driverEncoding.ts"
import { driverReadTimeout } from "./driverOptions.ts"
import { healthAwareLoadBalancing } from "./healthAwarePolicy.ts"
import type { ThrottleLimits } from "./throttle.ts"
import { TimeoutRetryPolicy } from "./timeoutRetry.ts"

/**
 * Every default of the session's options: the doc comments of `Session.Options` describe these values.
 *
 * `attemptTimeout` is 6 seconds: above Cassandra's own coordinator timeouts (read 5 s, write 2 s by default), so a
 * coordinator that merely waits for slow replicas answers with its ReadTimeout or WriteTimeout, which the retry policy
 * understands, before the client gives up on it; and about half the 12-second `requestTimeout`, so that after an
 * attempt on a node that stopped answering (a long GC pause, a frozen VM) one more attempt on another node fits in
 * the deadline. The Java driver's 2-second request timeout would cut off range scans, whose server-side limit is 10 s.
 *
 * Write timestamps count microseconds and must fall between `timestampFloor` and `timestampLeewayMillis` from now:
 * a timestamp in nanoseconds by mistake (about the year 55,000) would shadow every later write of its cells for good,
 * and one in milliseconds or seconds (1970) would lose to every other write. A day of leeway covers clock skew.
 */
export const defaults = {
  port: 9042,
  connectTimeout: Duration.seconds(10),
  requestTimeout: Duration.seconds(12),
  attemptTimeout: Duration.seconds(6),
  drainTimeout: Duration.seconds(10),
  consistency: "LOCAL_QUORUM",
  serialConsistency: "LOCAL_SERIAL",
  pageSize: 5000,
  minTlsVersion: "TLSv1.2",
  tlsReloadInterval: Duration.minutes(1),
  reconnectionBase: Duration.seconds(1),
  reconnectionMax: Duration.minutes(1),
  timestampFloor: new Date("2000-01-01T00:00:00Z"),
  timestampLeewayMillis: 24 * 60 * 60 * 1000
} as const

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
export const defaultConsistency: Consistency = defaults.consistency

/** Serial consistency of conditional requests that choose none. */
export const defaultSerialConsistency: SerialConsistency = defaults.serialConsistency

/** The driver's numeric code of a consistency level. */
export const consistencyCode = (consistency: Consistency): number => consistencyCodes[consistency]

/** Whether a value names a consistency level (options read from configuration are not checked by the type system). */
export const isConsistency = (u: unknown): u is Consistency =>
  typeof u === "string" && Object.hasOwn(consistencyCodes, u)

/** Whether a value names a serial consistency level. */
export const isSerialConsistency = (u: unknown): u is SerialConsistency => u === "SERIAL" || u === "LOCAL_SERIAL"

/** The largest page the protocol can ask for (a 32-bit signed count). */
const maxPageSize = 2_147_483_647

/** Whether a value is a page size the driver can send. */
export const isPageSize = (u: unknown): u is number =>
  typeof u === "number" && Number.isInteger(u) && u >= 1 && u <= maxPageSize

/** Node's timers hold at most this many milliseconds; a longer delay fires after 1 ms instead. */
const maxTimerMillis = 2_147_483_647

/**
 * Whole milliseconds of a duration setting (`Infinity` for `Duration.infinity`, where `infinite` allows it), or what
 * is wrong with it, never the value. Zero (unless `zero` allows it), negative, NaN and delays Node cannot hold in a
 * timer are refused.
 */
export const durationMillis = (input: unknown, infinite: boolean, zero = false): number | string => {
  const decoded = Duration.fromInput(input as Duration.Input)
  if (Option.isNone(decoded)) return "is not a duration"
  const millis = Duration.toMillis(decoded.value)
  if (millis === Number.POSITIVE_INFINITY) return infinite ? millis : "must be finite"
  if (zero ? !(millis >= 0) : !(millis >= 1)) return zero ? "must not be negative" : "must be at least 1 millisecond"
  if (millis > maxTimerMillis) {
    return `must be at most ${maxTimerMillis} milliseconds (about 24.8 days), the longest delay a Node.js timer holds${infinite ? "; give Duration.infinity for no limit" : ""}`
  }
  return Math.ceil(millis)
}

const durationSetting = (setting: string, input: unknown, infinite: boolean, zero = false) => {
  const millis = durationMillis(input, infinite, zero)
  return typeof millis === "string"
    ? Effect.fail(CassandraError.configuration(`${setting} ${millis}`))
    : Effect.succeed(millis)
}

/**
 * A session's request settings, checked once when the session is built; `Infinity` means no limit.
 */
export interface SessionSettings {
  /** The end-to-end deadline of a request that sets none. */
  readonly requestTimeoutMillis: number
  /** The bound of each attempt on one node (the driver's read timeout), also bounded by the time left. */
  readonly attemptTimeoutMillis: number
  readonly drainTimeoutMillis: number
  readonly connectTimeoutMillis: number
  readonly consistency: Consistency
  readonly serialConsistency: SerialConsistency
  /** Rows per page of requests that set none; undefined leaves it to the caller-owned client. */
  readonly pageSize: number | undefined
  readonly throttle: ThrottleLimits | undefined
  /** The extra span attributes, copied and checked once: a later change to the caller's object has no effect. */
  readonly spanAttributes: Readonly<Record<string, unknown>> | undefined
  readonly omitQueryTextInSpans: boolean
}

/**
 * A plain copy of an option group, each property read once: a getter or Proxy that throws, or answers differently
 * when read again, is refused here rather than as a defect later. Keys such as `__proto__` stay plain own keys.
 */
const readGroup = (
  setting: string,
  value: unknown
): Effect.Effect<PlainObject | undefined, CassandraError.CassandraError> => {
  if (value === undefined) return Effect.undefined
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return Effect.fail(CassandraError.configuration(`${setting} must be an object`))
  }
  let key: string | undefined
  try {
    const entries: Array<[string, unknown]> = []
    for (key of Object.keys(value)) entries.push([key, (value as PlainObject)[key]])
    return Effect.succeed(Object.fromEntries(entries))
  } catch {
    return Effect.fail(
      CassandraError.configuration(`${key === undefined ? setting : `${setting}.${key}`} could not be read`)
    )
  }
}

/** How a setting's value is described in an error: numbers as they are (they are sizes and counts), else the type. */
const described = (u: unknown) => (typeof u === "number" ? String(u) : `a ${typeof u}`)

const isWholeNumber = (u: unknown, min: number, max: number): u is number =>
  typeof u === "number" && Number.isInteger(u) && u >= min && u <= max

const checkBoolean = (setting: string, u: unknown) =>
  u === undefined || typeof u === "boolean"
    ? Effect.void
    : Effect.fail(CassandraError.configuration(`${setting} must be a boolean`))

/** OpenTelemetry attribute values: a string, number or boolean, or an array of them. */
const isAttributeValue = (u: unknown): boolean =>
  typeof u === "string" ||
  typeof u === "number" ||
  typeof u === "boolean" ||
  (Array.isArray(u) &&
    u.every((item) => typeof item === "string" || typeof item === "number" || typeof item === "boolean"))

const makeSpanAttributes = Effect.fnUntraced(function* (input: unknown) {
  const attributes = yield* readGroup("spanAttributes", input)
  if (attributes === undefined) return undefined
  for (const key in attributes) {
    if (!isAttributeValue(attributes[key])) {
      return yield* Effect.fail(
        CassandraError.configuration(`spanAttributes.${key} must be a string, number or boolean, or an array of them`)
      )
    }
  }
  return attributes
})

/** Checks the options every session has, whoever owns its client; Configuration errors name the setting. */
export const makeSessionSettings = Effect.fnUntraced(function* (input: ClientSessionOptions) {
  const options = (yield* readGroup("options", input)) ?? {}
  const { consistency, serialConsistency, pageSize } = options
  if (consistency !== undefined && !isConsistency(consistency)) {
    return yield* Effect.fail(CassandraError.configuration("consistency is not a consistency level"))
  }
  if (serialConsistency !== undefined && !isSerialConsistency(serialConsistency)) {
    return yield* Effect.fail(CassandraError.configuration("serialConsistency must be SERIAL or LOCAL_SERIAL"))
  }
  if (pageSize !== undefined && !isPageSize(pageSize)) {
    return yield* Effect.fail(CassandraError.configuration(`pageSize must be a whole number from 1 to ${maxPageSize}`))
  }
  const throttle = yield* readGroup("throttle", options.throttle)
  if (
    throttle !== undefined &&
    !(
      isWholeNumber(throttle.maxInFlight, 1, Number.MAX_SAFE_INTEGER) &&
      isWholeNumber(throttle.maxQueued, 0, Number.MAX_SAFE_INTEGER)
    )
  ) {
    return yield* Effect.fail(
      CassandraError.configuration(
        `throttle needs a whole maxInFlight of at least 1 and a whole maxQueued of at least 0, got ${described(throttle.maxInFlight)} and ${described(throttle.maxQueued)}`
      )
    )
  }
  yield* checkBoolean("omitQueryTextInSpans", options.omitQueryTextInSpans)
  const settings: SessionSettings = {
    requestTimeoutMillis: yield* durationSetting(
      "requestTimeout",
      options.requestTimeout ?? defaults.requestTimeout,
      true
    ),
    attemptTimeoutMillis: yield* durationSetting(
      "attemptTimeout",
      options.attemptTimeout ?? defaults.attemptTimeout,
      true
    ),
    drainTimeoutMillis: yield* durationSetting("drainTimeout", options.drainTimeout ?? defaults.drainTimeout, true),
    connectTimeoutMillis: yield* durationSetting(
      "connectTimeout",
      options.connectTimeout ?? defaults.connectTimeout,
      false
    ),
    consistency: (consistency as Consistency | undefined) ?? defaults.consistency,
    serialConsistency: (serialConsistency as SerialConsistency | undefined) ?? defaults.serialConsistency,
    pageSize: pageSize as number | undefined,
    throttle: throttle as ThrottleLimits | undefined,
    spanAttributes: yield* makeSpanAttributes(options.spanAttributes),
    omitQueryTextInSpans: options.omitQueryTextInSpans === true
  }
  return settings
})

const checkContactPoints = (setting: string, contactPoints: unknown) => {
  if (!Array.isArray(contactPoints) || contactPoints.length === 0) {
    return Effect.fail(CassandraError.configuration(`${setting} needs at least one node address (host or host:port)`))
  }
  const bad = contactPoints.findIndex((point) => typeof point !== "string" || point.trim() === "")
  return bad === -1
    ? Effect.void
    : Effect.fail(
        CassandraError.configuration(
          `${setting}[${bad}] must be a node address (host or host:port), got ${typeof contactPoints[bad] === "string" ? "a blank string" : `a ${typeof contactPoints[bad]}`}`
        )
      )
}

// A path never spans lines and fits PATH_MAX; anything else given as PEM without a BEGIN line is no path at all, so
// it is never handed to the file system (whose errors could carry it).
const maxPathLength = 4096
const looksLikePath = (source: string) =>
  source.length > 0 && source.length <= maxPathLength && !/[\r\n\0]/.test(source)

const pemMarker = "-----BEGIN"

/**
 * PEM as OpenSSL reads it, which finds BEGIN and END lines only at the start of a line: PEM on one line with escaped
 * line ends (as .env files and JSON secrets hold it) gets real ones, and indented PEM (from YAML, say) is unindented.
 */
const normalizedPem = (pem: string) => {
  const lines = !pem.includes("\n") && pem.includes("\\n") ? pem.replaceAll("\\n", "\n") : pem
  return /^[ \t]+-----/m.test(lines) ? lines.replace(/^[ \t]+/gm, "") : lines
}

/**
 * The PEM text of a TLS setting given inline or as a file path. Inline PEM may start with attribute lines (as
 * `openssl pkcs12 -nodes` writes them): OpenSSL skips text before a BEGIN line. Errors name the setting and what to
 * check, never what it holds: a mistaken value may be the key itself.
 */
const readPem = (input: unknown, setting: string) => {
  // Bytes (a Buffer read from a file) are PEM text too; anything else is decoded by nobody.
  const source =
    input instanceof Uint8Array ? Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString("utf8") : input
  if (typeof source !== "string") {
    return Effect.fail(
      CassandraError.configuration(`${setting} must be PEM text, its bytes or a file path, got a ${typeof source}`)
    )
  }
  if (source.includes(pemMarker)) return Effect.succeed(normalizedPem(source))
  const notPem = CassandraError.configuration(
    `${setting} is neither PEM text (no ${pemMarker} line) nor a readable file path: give the PEM itself (decoded, if it was stored as base64) or the path of a file that holds it`
  )
  if (!looksLikePath(source)) return Effect.fail(notPem)
  return Effect.tryPromise({
    try: () => readPemFile(source),
    catch: (cause) =>
      CassandraError.configuration(
        `${setting} is neither PEM text (no ${pemMarker} line) nor a readable file path (${(cause as NodeJS.ErrnoException).code ?? "error"}): check the path and its permissions`
      )
  }).pipe(
    Effect.flatMap((read) => {
      if (read._tag === "NotRegular") {
        return Effect.fail(
          CassandraError.configuration(
            `${setting} names a file that is not a regular file (a directory, FIFO, socket or device): give the path of a PEM file`
          )
        )
      }
      if (read._tag === "TooLarge") {
        return Effect.fail(
          CassandraError.configuration(
            `The file named by ${setting} has ${read.size} bytes, more than the ${maxPemFileBytes} a PEM file may hold`
          )
        )
      }
      return read.text.includes(pemMarker)
        ? Effect.succeed(normalizedPem(read.text))
        : Effect.fail(CassandraError.configuration(`The file named by ${setting} holds no PEM (no ${pemMarker} line)`))
    })
  )
}

/** Far more than any CA bundle or certificate chain: a larger file is something else, and is not read. */
const maxPemFileBytes = 1024 * 1024

/**
 * A PEM file's text, read only when it is a regular file of at most `maxPemFileBytes`. Opened without blocking, so
 * that a FIFO (which would wait for a writer, holding a thread of Node's pool and the process with it) or a device
 * at the path is refused rather than waited on; read through the one handle that was checked, and never past the
 * bound even if the file grows meanwhile.
 */
const readPemFile = async (
  path: string
): Promise<
  | { readonly _tag: "Text"; readonly text: string }
  | { readonly _tag: "NotRegular" }
  | { readonly _tag: "TooLarge"; readonly size: number }
> => {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    const stats = await handle.stat()
    if (!stats.isFile()) return { _tag: "NotRegular" }
    if (stats.size > maxPemFileBytes) return { _tag: "TooLarge", size: stats.size }
    const chunks: Array<Buffer> = []
    let length = 0
    for (;;) {
      const chunk = Buffer.alloc(Math.min(stats.size + 1, maxPemFileBytes + 1 - length))
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, length)
      if (bytesRead === 0) return { _tag: "Text", text: Buffer.concat(chunks, length).toString("utf8") }
      chunks.push(chunk.subarray(0, bytesRead))
      length += bytesRead
      if (length > maxPemFileBytes) return { _tag: "TooLarge", size: length }
    }
  } finally {
    await handle.close()
  }
}

/** A secret setting's value; one given unwrapped (say, from a plain config string) is refused, not echoed. */
const secret = (value: unknown, setting: string): Effect.Effect<unknown, CassandraError.CassandraError> =>
  Redacted.isRedacted(value)
    ? Effect.succeed(Redacted.value(value))
    : Effect.fail(CassandraError.configuration(`${setting} must be Redacted (Redacted.make or Config.redacted)`))

const tlsVersions: ReadonlyArray<unknown> = ["TLSv1.2", "TLSv1.3"]

/** The paths among PEM settings (values without a BEGIN line that may name a file): what a reload looks at. */
const pemPaths = (values: ReadonlyArray<unknown>): ReadonlyArray<string> =>
  values.filter(
    (value): value is string => typeof value === "string" && !value.includes(pemMarker) && looksLikePath(value)
  )

/**
 * The certificate set of TLS settings (`tls` itself, or what `tls.certificates` yielded), PEM files read and secrets
 * unwrapped; errors name the setting under `prefix`.
 */
const readPemSet = Effect.fnUntraced(function* (options: PlainObject, prefix: string) {
  const ca: ReadonlyArray<unknown> | undefined =
    options.ca === undefined ? undefined : Array.isArray(options.ca) ? options.ca : [options.ca]
  const set: { -readonly [K in keyof PemSet]: PemSet[K] } = {}
  if (ca !== undefined) {
    set.ca = yield* Effect.forEach(ca, (source, index) =>
      readPem(source, ca.length === 1 ? `${prefix}.ca` : `${prefix}.ca[${index}]`)
    )
  }
  if (options.cert !== undefined) set.cert = yield* readPem(options.cert, `${prefix}.cert`)
  if (options.key !== undefined) {
    set.key = yield* readPem(yield* secret(options.key, `${prefix}.key`), `${prefix}.key`)
  }
  if (options.passphrase !== undefined) {
    const passphrase = yield* secret(options.passphrase, `${prefix}.passphrase`)
    if (typeof passphrase !== "string") {
      return yield* Effect.fail(CassandraError.configuration(`${prefix}.passphrase must be Redacted text`))
    }
    set.passphrase = passphrase
  }
  return set as PemSet
})

/** The `_tag` of an error of the caller's, if it has one that reading does not throw. */
const tagOf = (error: unknown): string | undefined => {
  try {
    const tag = (error as { readonly _tag?: unknown } | null)?._tag
    return typeof tag === "string" ? tag : undefined
  } catch {
    return undefined
  }
}

/**
 * The certificate set `tls.certificates` yields now, within `timeoutMillis` (the connect timeout: a secret store
 * that never answers must not hold the build, nor every later reload). Its own failure is reported by its tag only:
 * the caller's error may carry what it fetched.
 */
const runCertificates = (certificates: Effect.Effect<unknown, unknown>, timeoutMillis: number) => {
  const failed = (what: string) => CassandraError.configuration(`tls.certificates ${what}`)
  return certificates.pipe(
    Effect.catchCause((cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.fail(failed("was interrupted"))
      const error = Cause.findErrorOption(cause)
      if (Option.isNone(error)) return Effect.fail(failed("died"))
      const tag = tagOf(error.value)
      return Effect.fail(failed(`failed${tag === undefined ? "" : ` with ${tag}`}`))
    }),
    Effect.timeoutOrElse({
      duration: timeoutMillis,
      orElse: () =>
        Effect.fail(
          failed(
            `did not yield a certificate set within ${Duration.format(Duration.millis(timeoutMillis))} (the connect timeout)`
          )
        )
    }),
    Effect.flatMap((value) => readGroup("tls.certificates", value)),
    Effect.flatMap((set) =>
      set === undefined
        ? Effect.fail(failed("yielded nothing: yield an object with ca, cert and key"))
        : readPemSet(set, "tls.certificates")
    )
  )
}

const certificateSettings = ["ca", "cert", "key", "passphrase"] as const

/**
 * Where a reloading session's certificates come from (`tls.certificates`, or the files its settings name), given the
 * set first loaded; undefined when the certificates are read once. Made before that first read.
 */
const makeCertificateSource = Effect.fnUntraced(function* (options: PlainObject, timeoutMillis: number) {
  const { certificates, reloadInterval } = options
  if (certificates === undefined && reloadInterval === undefined) return undefined
  const intervalMillis = yield* durationSetting(
    "tls.reloadInterval",
    reloadInterval ?? defaults.tlsReloadInterval,
    false
  )
  if (certificates !== undefined) {
    return (initial: PemSet): CertificateSource => {
      let seen = digestOf(initial)
      return {
        intervalMillis,
        changed: Effect.map(runCertificates(certificates as Effect.Effect<unknown, unknown>, timeoutMillis), (set) => {
          const digest = digestOf(set)
          if (digest === seen) return undefined
          seen = digest
          return set
        })
      }
    }
  }
  const key = options.key === undefined ? undefined : yield* secret(options.key, "tls.key")
  const paths = pemPaths([...(Array.isArray(options.ca) ? options.ca : [options.ca]), options.cert, key])
  if (paths.length === 0) {
    return yield* Effect.fail(
      CassandraError.configuration(
        "tls.reloadInterval has nothing to reload: give tls.ca, tls.cert or tls.key as file paths, or tls.certificates"
      )
    )
  }
  // Looked at before the first read: a file changed while it is read is read again at the first reload.
  let seen = yield* filesVersion(paths)
  return (_initial: PemSet): CertificateSource => ({
    intervalMillis,
    changed: Effect.flatMap(filesVersion(paths), (version) => {
      if (version === seen) return Effect.undefined
      seen = version
      return readPemSet(options, "tls")
    })
  })
})

const makeSslOptions = Effect.fnUntraced(function* (input: TlsOptions | undefined, timeoutMillis: number) {
  const options: Partial<Record<keyof TlsOptions, unknown>> = (yield* readGroup("tls", input)) ?? {}
  const { minVersion, serverName, dangerouslyDisableServerVerification, certificates } = options
  if (minVersion !== undefined && !tlsVersions.includes(minVersion)) {
    return yield* Effect.fail(CassandraError.configuration("tls.minVersion must be TLSv1.2 or TLSv1.3"))
  }
  if (serverName !== undefined && typeof serverName !== "string") {
    return yield* Effect.fail(CassandraError.configuration("tls.serverName must be a host name"))
  }
  yield* checkBoolean("tls.dangerouslyDisableServerVerification", dangerouslyDisableServerVerification)
  if (certificates !== undefined) {
    if (!Effect.isEffect(certificates)) {
      return yield* Effect.fail(CassandraError.configuration("tls.certificates must be an Effect"))
    }
    const both = certificateSettings.find((setting) => options[setting] !== undefined)
    if (both !== undefined) {
      return yield* Effect.fail(
        CassandraError.configuration(`tls.${both} cannot be given with tls.certificates, which yields the whole set`)
      )
    }
  }
  const sourceFrom = yield* makeCertificateSource(options, timeoutMillis)
  const set =
    certificates === undefined
      ? yield* readPemSet(options, "tls")
      : yield* runCertificates(certificates as Effect.Effect<unknown, unknown>, timeoutMillis)
  const sslOptions: tls.ConnectionOptions = {
    minVersion: (minVersion as tls.SecureVersion | undefined) ?? defaults.minTlsVersion,
    rejectUnauthorized: dangerouslyDisableServerVerification !== true,
    ...set
  }
  if (serverName !== undefined) sslOptions.servername = serverName
  return { sslOptions, certificateSource: sourceFrom?.(set) }
})

/** What a reloading session's certificate set replaces: given through driverOptions too, it would go stale. */
const reloadedSslSettings = ["secureContext", "pfx", ...certificateSettings] as const

/**
 * Builds the TLS context once, so that a set that cannot be used fails here (see `secureContextOf`). Every
 * connection then uses this context, or the current one of a reloading session, so the key, its passphrase and the
 * certificate (whose file may bundle the key) are left out of the driver's options, which a deep `inspect` of the
 * client would print; a context of the caller's own is used as given.
 */
const withSecureContext = Effect.fnUntraced(function* (
  sslOptions: tls.ConnectionOptions,
  certificateSource: CertificateSource | undefined
) {
  if (sslOptions.secureContext !== undefined) return { sslOptions, keepCertificatesCurrent: Effect.void }
  const secureContext = yield* secureContextOf(sslOptions)
  const { key: _key, passphrase: _passphrase, pfx: _pfx, cert: _cert, ...connectionOptions } = sslOptions
  if (certificateSource === undefined) {
    return { sslOptions: { ...connectionOptions, secureContext }, keepCertificatesCurrent: Effect.void }
  }
  // The CAs too would go stale: the current context holds them.
  const { ca: _ca, ...base } = connectionOptions
  const reloading = reloadingSslOptions(secureContext, base, certificateSource)
  return { sslOptions: reloading.sslOptions, keepCertificatesCurrent: reloading.keepCurrent }
})

/**
 * Plain-text authentication that keeps the password `Redacted` in the driver's options (which a debugger or a deep
 * `inspect` of the client prints), unwrapping it only for each login.
 */
class RedactedPlainTextAuthProvider extends Cassandra.auth.PlainTextAuthProvider {
  readonly #username: string
  readonly #password: Redacted.Redacted<string>
  constructor(username: string, password: Redacted.Redacted<string>) {
    super(username, "")
    this.#username = username
    this.#password = password
  }
  override newAuthenticator(endpoint: string, name: string): Cassandra.auth.Authenticator {
    return new Cassandra.auth.PlainTextAuthProvider(this.#username, Redacted.value(this.#password)).newAuthenticator(
      endpoint,
      name
    )
  }
}

/** Whether a driver client connects with TLS, from the options it was built with. */
export const usesTls = (client: Cassandra.Client): boolean =>
  (client as unknown as { readonly options?: Cassandra.ClientOptions }).options?.sslOptions !== undefined

const retryPolicy = (retry: unknown) => {
  if (retry === undefined || retry === "default") return Effect.succeed(new TimeoutRetryPolicy())
  if (retry === "never") return Effect.succeed(new Cassandra.policies.retry.FallthroughRetryPolicy())
  return retry instanceof Cassandra.policies.retry.RetryPolicy
    ? Effect.succeed(retry)
    : Effect.fail(CassandraError.configuration(`retry must be "default", "never" or a RetryPolicy of cassandra-driver`))
}

const reconnectionPolicy = Effect.fnUntraced(function* (input: unknown) {
  const reconnection = yield* readGroup("reconnection", input)
  if (reconnection?._tag === "Constant") {
    return new Cassandra.policies.reconnection.ConstantReconnectionPolicy(
      yield* durationSetting("reconnection.delay", reconnection.delay, false)
    )
  }
  if (reconnection !== undefined && reconnection._tag !== "Exponential") {
    return yield* Effect.fail(CassandraError.configuration("reconnection._tag must be Exponential or Constant"))
  }
  const base = yield* durationSetting("reconnection.base", reconnection?.base ?? defaults.reconnectionBase, false)
  const max = yield* durationSetting("reconnection.max", reconnection?.max ?? defaults.reconnectionMax, false)
  if (base > max) {
    return yield* Effect.fail(CassandraError.configuration("reconnection.base must not exceed reconnection.max"))
  }
  return new Cassandra.policies.reconnection.ExponentialReconnectionPolicy(base, max, false)
})

const speculativeExecutionPolicy = Effect.fnUntraced(function* (input: unknown) {
  const speculative = yield* readGroup("speculativeExecution", input)
  if (speculative === undefined) return new Cassandra.policies.speculativeExecution.NoSpeculativeExecutionPolicy()
  if (!isWholeNumber(speculative.maxExecutions, 1, 64)) {
    return yield* Effect.fail(
      CassandraError.configuration("speculativeExecution.maxExecutions must be a whole number from 1 to 64")
    )
  }
  return new Cassandra.policies.speculativeExecution.ConstantSpeculativeExecutionPolicy(
    // Zero starts the extra execution at once.
    yield* durationSetting("speculativeExecution.delay", speculative.delay, false, true),
    speculative.maxExecutions
  )
})

type PlainObject = Record<string, unknown>

const isPlainObject = (u: unknown): u is PlainObject => {
  if (typeof u !== "object" || u === null) return false
  const prototype = Object.getPrototypeOf(u)
  return prototype === Object.prototype || prototype === null
}

/**
 * `driverOptions` merged into the library's options: plain objects key by key at every depth, anything else (arrays,
 * policies and other class instances) replacing just its own key, so that `{ socketOptions: { keepAliveDelay } }`
 * keeps the library's timeouts and `{ policies: { loadBalancing } }` keeps its retry and reconnection.
 */
const mergeDeep = (base: PlainObject, overrides: PlainObject): PlainObject => {
  const merged: PlainObject = { ...base }
  for (const key of Object.keys(overrides)) {
    const value = overrides[key]
    if (value === undefined || key === "__proto__") continue
    const current = merged[key]
    merged[key] = isPlainObject(current) && isPlainObject(value) ? mergeDeep(current, value) : value
  }
  return merged
}

/**
 * A copy of plain objects at every depth, each property read once (keys such as `__proto__` stay own keys); other
 * values (arrays, policies, buffers) are kept as they are. Throws on a throwing getter or a cycle.
 */
const plainCopy = (value: unknown): unknown =>
  isPlainObject(value) ? Object.fromEntries(Object.keys(value).map((key) => [key, plainCopy(value[key])])) : value

/** The path of a `null` in `overrides` where `base` holds a setting: merged, it would drop that setting silently. */
const nulledSetting = (base: PlainObject, overrides: PlainObject, path: string): string | undefined => {
  for (const key of Object.keys(overrides)) {
    const value = overrides[key]
    const current = Object.hasOwn(base, key) ? base[key] : undefined
    if (value === null && current !== undefined && current !== null) return `${path}.${key}`
    if (isPlainObject(current) && isPlainObject(value)) {
      const nested = nulledSetting(current, value, `${path}.${key}`)
      if (nested !== undefined) return nested
    }
  }
  return undefined
}

// Settings the session applies to every request itself: given through driverOptions they would be silently ignored.
const perRequestSettings: ReadonlyArray<readonly [group: string, key: string, typed: string]> = [
  ["socketOptions", "readTimeout", "attemptTimeout"],
  ["queryOptions", "readTimeout", "attemptTimeout"],
  ["queryOptions", "consistency", "consistency"],
  ["queryOptions", "serialConsistency", "serialConsistency"],
  ["queryOptions", "fetchSize", "pageSize"],
  ["queryOptions", "prepare", "the statement option prepare"],
  ["queryOptions", "isIdempotent", "the statement option idempotent"]
]

/**
 * What the CQL type schemas rely on: bigint as `bigint`, maps as `Map`, sets as `Set`, undefined as unset. Only
 * `copyBuffer` may differ.
 */
const fixedEncoding = ["map", "set", "useBigIntAsLong", "useBigIntAsVarint", "useUndefinedAsUnset"] as const

/** Whether a `checkServerIdentity` accepts a certificate that names another host: then it verifies nothing. */
const acceptsAnyServer = (check: unknown) => {
  if (typeof check !== "function") return true
  try {
    return (
      check("server.invalid", { subject: { CN: "elsewhere.invalid" }, subjectaltname: "DNS:elsewhere.invalid" }) ===
      undefined
    )
  } catch {
    return false
  }
}

const checkDriverOptions = (overrides: PlainObject, disablesVerification: boolean) => {
  for (const [group, key, typed] of perRequestSettings) {
    const values = overrides[group]
    if (isPlainObject(values) && values[key] !== undefined) {
      return CassandraError.configuration(
        `driverOptions.${group}.${key} would be overridden on every request: set ${typed} instead`
      )
    }
  }
  const encoding = overrides.encoding
  if (encoding !== undefined) {
    if (!isPlainObject(encoding)) return CassandraError.configuration("driverOptions.encoding must be a plain object")
    const changed = fixedEncoding.find((key) => encoding[key] !== undefined && encoding[key] !== driverEncoding[key])
    if (changed !== undefined) {
      return CassandraError.configuration(
        `driverOptions.encoding.${changed} cannot change: the CQL type schemas decode every row with the session's encoding (only copyBuffer may be set)`
      )
    }
  }
  const ssl = overrides.sslOptions
  if (ssl !== undefined && !disablesVerification) {
    if (!isPlainObject(ssl)) return CassandraError.configuration("driverOptions.sslOptions must be a plain object")
    // Node verifies only when rejectUnauthorized is truthy, and the driver defaults it to false.
    if (ssl.rejectUnauthorized !== undefined && ssl.rejectUnauthorized !== true) {
      return CassandraError.configuration(
        "driverOptions.sslOptions.rejectUnauthorized other than true turns server verification off: set tls.dangerouslyDisableServerVerification for that"
      )
    }
    const oldVersion = (["minVersion", "maxVersion"] as const).find(
      (key) => ssl[key] !== undefined && !tlsVersions.includes(ssl[key])
    )
    if (oldVersion !== undefined) {
      return CassandraError.configuration(
        `driverOptions.sslOptions.${oldVersion} must be TLSv1.2 or TLSv1.3: older versions are not safe`
      )
    }
    if (ssl.checkServerIdentity !== undefined && acceptsAnyServer(ssl.checkServerIdentity)) {
      return CassandraError.configuration(
        "driverOptions.sslOptions.checkServerIdentity accepts a certificate of another host, which turns the host name check off: set tls.dangerouslyDisableServerVerification for that"
      )
    }
  }
  return undefined
}

/**
 * Translates the library's options into the driver's, reading PEM files and unwrapping secrets at this boundary only,
 * and checks the session's settings; every Configuration error names the setting and never its value. With
 * certificate reloading, `keepCertificatesCurrent` starts it for the scope it runs in (the session runs it once it
 * has connected); otherwise it does nothing.
 */
export const makeClientOptions = Effect.fnUntraced(function* (input: Options) {
  const options = (yield* readGroup("options", input)) as Partial<Record<keyof Options, unknown>> | undefined
  if (options === undefined) return yield* Effect.fail(CassandraError.configuration("options must be an object"))
  const settings = yield* makeSessionSettings(options as ClientSessionOptions)
  yield* checkContactPoints("contactPoints", options.contactPoints)
  const contactPoints = options.contactPoints as ReadonlyArray<string>
  if (typeof options.localDataCenter !== "string" || options.localDataCenter.trim() === "") {
    return yield* Effect.fail(CassandraError.configuration("localDataCenter must name a data center"))
  }
  const port = options.port ?? defaults.port
  if (!isWholeNumber(port, 1, 65535)) {
    return yield* Effect.fail(CassandraError.configuration("port must be a whole number from 1 to 65535"))
  }
  // The driver sends USE "<keyspace>" with the name as given: only a name Cassandra allows may reach it.
  if (
    options.keyspace !== undefined &&
    !(typeof options.keyspace === "string" && /^\w{1,48}$/.test(options.keyspace))
  ) {
    return yield* Effect.fail(
      CassandraError.configuration("keyspace must be a keyspace name (letters, digits and underscores, at most 48)")
    )
  }
  for (const setting of ["applicationName", "applicationVersion"] as const) {
    const value = options[setting]
    if (value !== undefined && (typeof value !== "string" || value === "")) {
      return yield* Effect.fail(CassandraError.configuration(`${setting} must be a string (not empty)`))
    }
  }
  const credentials = yield* readGroup("credentials", options.credentials)
  if (credentials !== undefined && (typeof credentials.username !== "string" || credentials.username === "")) {
    return yield* Effect.fail(CassandraError.configuration("credentials.username must be a user name"))
  }
  const password = credentials === undefined ? undefined : yield* secret(credentials.password, "credentials.password")
  if (credentials !== undefined && typeof password !== "string") {
    return yield* Effect.fail(CassandraError.configuration("credentials.password must be Redacted text"))
  }
  if (options.driverOptions !== undefined && !isPlainObject(options.driverOptions)) {
    return yield* Effect.fail(CassandraError.configuration("driverOptions must be a plain object"))
  }
  // Every plain object of driverOptions is read once, here, under a guard: what is checked is what is merged.
  const overrides = yield* Effect.try({
    try: () => plainCopy(options.driverOptions ?? {}) as PlainObject,
    catch: () => CassandraError.configuration("driverOptions could not be read")
  })
  const tls = options.tls as TlsOptions | undefined
  const refused = checkDriverOptions(overrides, isPlainObject(tls) && tls.dangerouslyDisableServerVerification === true)
  if (refused !== undefined) return yield* Effect.fail(refused)
  if (overrides.contactPoints !== undefined)
    yield* checkContactPoints("driverOptions.contactPoints", overrides.contactPoints)

  const clientOptions: Cassandra.DseClientOptions = {
    contactPoints: [...contactPoints],
    localDataCenter: options.localDataCenter,
    encoding: driverEncoding,
    protocolOptions: { port },
    socketOptions: {
      connectTimeout: settings.connectTimeoutMillis,
      readTimeout: driverReadTimeout(settings.attemptTimeoutMillis)
    },
    queryOptions: {
      consistency: consistencyCode(settings.consistency),
      serialConsistency: consistencyCode(settings.serialConsistency),
      fetchSize: settings.pageSize ?? defaults.pageSize,
      prepare: true
    },
    policies: {
      loadBalancing: healthAwareLoadBalancing(options.nodeHealth),
      retry: yield* retryPolicy(options.retry),
      reconnection: yield* reconnectionPolicy(options.reconnection),
      speculativeExecution: yield* speculativeExecutionPolicy(options.speculativeExecution)
    },
    // Insights reporting only talks to DSE; against Apache Cassandra it is wasted work.
    monitorReporting: { enabled: false }
  }
  if (options.keyspace !== undefined) clientOptions.keyspace = options.keyspace as string
  if (options.applicationName !== undefined) clientOptions.applicationName = options.applicationName as string
  if (options.applicationVersion !== undefined) clientOptions.applicationVersion = options.applicationVersion as string
  if (credentials !== undefined) {
    clientOptions.authProvider = new RedactedPlainTextAuthProvider(
      credentials.username as string,
      credentials.password as Redacted.Redacted<string>
    )
  }
  // The driver's own TLS default is no verification at all: sslOptions from driverOptions alone start from ours.
  let certificateSource: CertificateSource | undefined
  if (tls !== undefined || overrides.sslOptions !== undefined) {
    const made = yield* makeSslOptions(tls, settings.connectTimeoutMillis)
    clientOptions.sslOptions = made.sslOptions
    certificateSource = made.certificateSource
  }
  const overriddenSsl = overrides.sslOptions
  if (certificateSource !== undefined && isPlainObject(overriddenSsl)) {
    const stale = reloadedSslSettings.find((setting) => overriddenSsl[setting] !== undefined)
    if (stale !== undefined) {
      return yield* Effect.fail(
        CassandraError.configuration(
          `driverOptions.sslOptions.${stale} cannot be given with tls.reloadInterval or tls.certificates: give the certificates through tls`
        )
      )
    }
  }
  const pooling = yield* makePooling(options.pooling)
  if (pooling !== undefined) clientOptions.pooling = pooling
  const nulled = nulledSetting(clientOptions as PlainObject, overrides, "driverOptions")
  if (nulled !== undefined) {
    return yield* Effect.fail(
      CassandraError.configuration(`${nulled} is null, which would drop the library's setting: leave it out`)
    )
  }
  const merged = mergeDeep(clientOptions as PlainObject, overrides) as Cassandra.DseClientOptions
  if (merged.sslOptions === undefined) {
    return { clientOptions: merged, settings, keepCertificatesCurrent: Effect.void }
  }
  const secured = yield* withSecureContext(merged.sslOptions, certificateSource)
  merged.sslOptions = secured.sslOptions
  return { clientOptions: merged, settings, keepCertificatesCurrent: secured.keepCertificatesCurrent }
})

/** The driver's pooling options; a connection carries at most 32768 requests at once (protocol v3 and later). */
const makePooling = Effect.fnUntraced(function* (input: unknown) {
  const options = yield* readGroup("pooling", input)
  if (options === undefined) return undefined
  const pooling: NonNullable<Cassandra.ClientOptions["pooling"]> = {}
  const { connectionsPerHost, maxRequestsPerConnection, heartbeatInterval } = options
  if (connectionsPerHost !== undefined) {
    if (!isWholeNumber(connectionsPerHost, 1, 1024)) {
      return yield* Effect.fail(
        CassandraError.configuration("pooling.connectionsPerHost must be a whole number from 1 to 1024")
      )
    }
    pooling.coreConnectionsPerHost = {
      [Cassandra.types.distance.local]: connectionsPerHost,
      [Cassandra.types.distance.remote]: 1,
      [Cassandra.types.distance.ignored]: 0
    }
  }
  if (maxRequestsPerConnection !== undefined) {
    if (!isWholeNumber(maxRequestsPerConnection, 1, 32768)) {
      return yield* Effect.fail(
        CassandraError.configuration("pooling.maxRequestsPerConnection must be a whole number from 1 to 32768")
      )
    }
    pooling.maxRequestsPerConnection = maxRequestsPerConnection
  }
  if (heartbeatInterval !== undefined) {
    pooling.heartBeatInterval = yield* durationSetting("pooling.heartbeatInterval", heartbeatInterval, false)
  }
  return pooling
})
