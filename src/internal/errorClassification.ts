import * as Cassandra from "cassandra-driver"
import * as Predicate from "effect/Predicate"
import type { TlsProblem } from "../CassandraError.ts"

/** A driver or Node error read as a bag of optional fields (the driver's typings declare almost none of them). */
type Fields = Readonly<Record<string, unknown>>

const fieldsOf = (error: unknown): Fields => (Predicate.isObject(error) ? (error as Fields) : {})

/** A string field of an error, when it is a string. */
export const stringField = (error: unknown, key: string): string | undefined => {
  const value = fieldsOf(error)[key]
  return Predicate.isString(value) ? value : undefined
}

/**
 * A numeric field of an error. lib/readers.js always sets the fields of the codes that carry them, so the 0 only
 * stands in for a field missing from an error built by hand.
 */
export const numberField = (error: unknown, key: string): number => {
  const value = fieldsOf(error)[key]
  return typeof value === "number" ? value : 0
}

/** A flag field of an error: the driver reads `isDataPresent` as a byte, so any truthy value counts. */
export const flagField = (error: unknown, key: string): boolean => Boolean(fieldsOf(error)[key])

/** The string-list field `argTypes` of a FUNCTION_FAILURE error. */
export const stringListField = (error: unknown, key: string): ReadonlyArray<string> => {
  const value = fieldsOf(error)[key]
  return Array.isArray(value) ? value.filter(Predicate.isString) : []
}

/**
 * The per-replica failure codes (`reasons`) of READ_FAILURE/WRITE_FAILURE, sent only by protocol versions with the
 * failure reason map (DSE v1/v2 and v5+), keyed by the replica's address.
 */
export const failuresByReplica = (error: unknown): Readonly<Record<string, number>> | undefined => {
  const value = fieldsOf(error).reasons
  if (!Predicate.isObject(value)) return undefined
  return Object.fromEntries(
    Object.entries(value as Fields).flatMap(([address, code]) => (typeof code === "number" ? [[address, code]] : []))
  )
}

/** The per-host errors of a `NoHostAvailableError`, keyed by address (the driver passes `null` or `{}` when none). */
export const innerErrors = (error: unknown): ReadonlyArray<readonly [address: string, error: unknown]> => {
  const value = fieldsOf(error).innerErrors
  return Predicate.isObject(value) ? Object.entries(value as Fields) : []
}

const upperSnakeCase = (camelCase: string) => camelCase.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()

const consistencyNames: ReadonlyMap<number, string> = new Map(
  Object.entries(Cassandra.types.consistencies).flatMap(([name, code]) =>
    typeof code === "number" ? [[code, upperSnakeCase(name)] as const] : []
  )
)

/** The CQL name of a consistency level code from `types.consistencies` (6 is `LOCAL_QUORUM`). */
export const consistencyName = (code: unknown): string =>
  typeof code === "number" ? (consistencyNames.get(code) ?? `UNKNOWN(${code})`) : "UNKNOWN"

/**
 * Node's own errors for a socket or a TLS handshake: system-call errors (`syscall`: ECONNREFUSED, ECONNRESET,
 * ENOTFOUND…) and certificate/TLS errors (`code` such as DEPTH_ZERO_SELF_SIGNED_CERT or ERR_TLS_CERT_ALTNAME_INVALID).
 * Their texts name hosts and certificates, never request data.
 */
export const isNetworkError = (error: unknown): error is Error & { readonly code?: string } =>
  Predicate.isError(error) &&
  (stringField(error, "syscall") !== undefined || /CERT|SSL|TLS/.test(stringField(error, "code") ?? ""))

/**
 * Node's certificate verification codes (X509_V_ERR_* without the prefix, plus its own host name check) and the
 * OpenSSL error codes of the alerts a server sends, by what they mean for the client's settings. OpenSSL 3 names
 * the alerts `ERR_SSL_SSL/TLS_ALERT_…` where OpenSSL 1.1 said `ERR_SSL_SSLV3_ALERT_…`, hence the patterns.
 */
const tlsProblemsByCode: ReadonlyArray<readonly [pattern: RegExp, problem: TlsProblem]> = [
  [
    /^(UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|UNABLE_TO_VERIFY_LEAF_SIGNATURE|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|CERT_UNTRUSTED|CERT_REJECTED|INVALID_CA|CERT_SIGNATURE_FAILURE)$/,
    "UnknownAuthority"
  ],
  [/^(ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH|IP_ADDRESS_MISMATCH)$/, "HostnameMismatch"],
  [/^(CERT_HAS_EXPIRED|CERT_NOT_YET_VALID)$/, "Expired"],
  [/_ALERT_CERTIFICATE_REQUIRED$/, "ClientCertificateRequired"],
  [
    /_ALERT_(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|UNSUPPORTED_CERTIFICATE)$/,
    "ClientCertificateRejected"
  ],
  [/^ERR_SSL_(WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG)$/, "ServerNotTls"],
  [/CERT|SSL|TLS/, "Handshake"]
]

/** What a Node TLS error says about the handshake, or undefined for an error that is not about TLS. */
export const tlsProblemOf = (error: unknown): TlsProblem | undefined => {
  const code = Predicate.isError(error) ? stringField(error, "code") : undefined
  return code === undefined ? undefined : tlsProblemsByCode.find(([pattern]) => pattern.test(code))?.[1]
}

const tlsDetailLength = 200

/**
 * The useful part of a TLS error's text: the host that the certificate does not name (its list of names can run to
 * hundreds), or OpenSSL's short reason rather than its "error:0A00045C:SSL routines:…" line. None holds a key.
 */
export const tlsDetail = (error: Error): string => {
  const host = stringField(error, "host")
  if (stringField(error, "code") === "ERR_TLS_CERT_ALTNAME_INVALID" && host !== undefined) {
    return `${host} is not among the names and addresses of the certificate`
  }
  const text = stringField(error, "reason") ?? error.message
  return text.length > tlsDetailLength ? `${text.slice(0, tlsDetailLength)}…` : text
}

/**
 * A connection reset by the node: while connecting without TLS, what a node that requires TLS does at once to the
 * STARTUP message sent in the clear.
 */
export const isResetOnRead = (error: unknown): boolean =>
  Predicate.isError(error) && stringField(error, "code") === "ECONNRESET" && stringField(error, "syscall") === "read"

/**
 * Errors the driver's encoder raises for a bound value that does not fit its CQL type: its own TypeErrors, and the
 * RangeError/SyntaxError of Node's Buffer writers and `BigInt()` that it lets through.
 */
export const isEncodingError = (error: unknown): error is Error =>
  error instanceof TypeError ||
  error instanceof SyntaxError ||
  (error instanceof RangeError && stringField(error, "code") === "ERR_OUT_OF_RANGE")

/**
 * Where a driver TypeError text starts quoting the offending value: every encoder message puts it after a colon, a
 * quote, a bracket, "obtained" or "from element" ("Expected Number, obtained 'abc'").
 */
const valueStart = /[:'"{[(]| obtained | from element /

/**
 * The text of an encoding error without the bound value it echoes. TypeError texts are cut where the value starts;
 * RangeError and SyntaxError texts put the value anywhere ("Cannot convert zz to a BigInt"), so only their kind is kept.
 */
export const encodingErrorText = (error: Error): string => {
  if (!(error instanceof TypeError)) {
    return error instanceof RangeError
      ? "a bound value is out of range for its CQL type (value not shown)"
      : "a bound value could not be converted to its CQL type (value not shown)"
  }
  const start = valueStart.exec(error.message)
  if (start === null) return error.message
  const description = error.message.slice(0, start.index).replace(/[\s,]+$/, "")
  return `${description.length > 0 ? description : "a bound value does not fit its CQL type"} (value not shown)`
}

/**
 * Server error texts that can echo a bound value, best effort over what Cassandra 5 is known to send: Jackson's
 * "(String was: …)" tail of a bad `INSERT … JSON ?` value, single-quoted values ("Unable to make int from 'x'"), and
 * runs of 8+ hex digits, which is how byte dumps look ("Expected 4 or 16 byte inetaddress; got 4028000000000000").
 * UUIDs are kept; a long decimal number is redacted too, which is the price of catching every byte dump.
 */
const echoedValues: ReadonlyArray<readonly [pattern: RegExp, replacement: string]> = [
  [/\(String was: [\s\S]*$/, "(String was: <redacted>)"],
  [/'(?:[^']|'')*'/g, "'<redacted>'"],
  [/(?<![\w-])(?:0x)?[0-9a-f]{8,}(?![\w-])/gi, "<redacted>"]
]

/** A server error text with any echo of a bound value replaced by `<redacted>`. */
export const redactEchoedValues = (serverText: string): string =>
  echoedValues.reduce((text, [pattern, replacement]) => text.replace(pattern, replacement), serverText)

/** The class name of a thrown value, for errors whose text is withheld. */
export const errorName = (error: unknown): string =>
  Predicate.isError(error) ? error.name : error === null ? "null" : typeof error
