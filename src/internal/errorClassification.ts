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
 * Deno's refusal of an operation its permission flags do not allow (`Deno.errors.NotCapable`), such as a connection
 * without `--allow-net`. Its text names the resource and the flag to add ("Requires net access to "10.0.0.1:9042", run
 * again with the --allow-net flag"), never a bound value.
 */
export const isDenoPermissionDenial = (error: unknown): error is Error =>
  Predicate.isError(error) && error.name === "NotCapable"

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
const valueStart = /[:"{[(]|(?<![A-Za-z])'| obtained | from element /

/**
 * What the encoder obtained instead of a collection, as `util.inspect` begins it: a class name and, for a `Set` or a
 * `Map`, its size ("Set(1) {…}"). A primitive or a plain object starts with its content and is not kept.
 */
const obtainedClass = / obtained ([A-Z][\w$]*(?:\(\d+\))?)/

/**
 * The texts of Node's own argument and range errors: `The "list[2]" argument must be … Received null` names a
 * position, not a value, and `Received` is followed by the value or its type ("type number (5)", "an instance of
 * Set", "null").
 */
const nodeReceived = /^([\s\S]*?)\.? Received (null|undefined|type \w+|an instance of [\w$]+)?/

/**
 * `Buffer.concat` refusing a `null` part: the driver encodes an empty collection as `null` (no value), which the
 * collection holding it cannot contain.
 */
const nullPart = /^The "list\[\d+\]" argument must be an instance of Buffer or Uint8Array\. Received null$/

/**
 * The bounds of Node's integer writers ("It must be >= 0 and <= 65535"). The driver writes every count and length of
 * a request (bound values, statements of a batch, collection elements, key components) as an unsigned 16-bit
 * number, and no bound value that way: a value out of that range is a count, shown; any other value is withheld.
 */
const rangeBounds = /It must be (>= -?\d+ and <= \d+)/
const countRange = ">= 0 and <= 65535"

const rangeErrorText = (error: RangeError): string => {
  const bounds = rangeBounds.exec(error.message)?.[1]
  if (bounds === undefined) return "a bound value is out of range for its CQL type (value not shown)"
  const count = bounds === countRange ? /Received ([\d_]+)$/.exec(error.message)?.[1]?.replaceAll("_", "") : undefined
  return count === undefined
    ? `a bound value is out of range for its CQL type: It must be ${bounds} (value not shown)`
    : `${count} exceeds 65535, the most the protocol allows for the bound values of a statement, the statements of a batch, the elements of a collection or the bytes of a key component`
}

const typeErrorText = (error: TypeError): string => {
  if (stringField(error, "code")?.startsWith("ERR_") === true) {
    if (nullPart.test(error.message)) {
      return `${error.message}: an empty collection inside a collection is encoded as null, which a collection cannot hold`
    }
    const received = nodeReceived.exec(error.message)
    if (received !== null) {
      const kind = received[2]
      const shown = kind === undefined ? "a value" : kind
      return `${received[1]}. Received ${shown}${kind === undefined || kind.startsWith("type ") ? " (value not shown)" : ""}`
    }
  }
  const start = valueStart.exec(error.message)
  if (start === null) return error.message
  const description = error.message.slice(0, start.index).replace(/[\s,]+$/, "")
  const obtained = obtainedClass.exec(error.message)?.[1]
  const shown = description.length > 0 ? description : "a bound value does not fit its CQL type"
  return obtained === undefined ? `${shown} (value not shown)` : `${shown} obtained ${obtained} (content not shown)`
}

/**
 * The text of an encoding error without the bound value it echoes, keeping what it says about positions, types,
 * ranges and counts. SyntaxError texts put the value anywhere ("Cannot convert zz to a BigInt"): only their kind is kept.
 */
export const encodingErrorText = (error: Error): string =>
  error instanceof TypeError
    ? typeErrorText(error)
    : error instanceof RangeError
      ? rangeErrorText(error)
      : "a bound value could not be converted to its CQL type (value not shown)"

/**
 * The most characters of a text (a server's error text, a part of a driver log message: a warning, the statement it
 * is about, an error's text) that are redacted and shown. A text of megabytes would otherwise cost milliseconds to
 * redact and flood the log; the facts come first, and the rest is counted.
 */
const shownLimit = 4_096

const isSpace = (code: number) => code === 32 || (code >= 9 && code <= 13)

/**
 * A text redacted, at most {@link shownLimit} characters of it. A cut text loses its last, unfinished word (part of
 * a value the redaction would not recognise, such as the first digits of a byte dump), and its redaction is told it
 * was cut, so that a quoted value left open is redacted to the end.
 */
export const redactHead = (text: string, redact: (head: string, cutOff: boolean) => string): string => {
  if (text.length <= shownLimit) return redact(text, false)
  let end = shownLimit
  while (end > 0 && !isSpace(text.charCodeAt(end - 1))) end--
  return `${redact(text.slice(0, end), true)}… (${text.length - end} characters not shown)`
}

/** How Cassandra's answer to refused credentials (PasswordAuthenticator) surrounds the user name. */
const userNameBefore = "Provided username "
const userNameAfter = " and/or password are incorrect"

/**
 * A text with the user name of a refused login replaced by `<redacted>`, to the end of the text when the text was cut
 * before the name's end. A scan, not a regular expression: a lazy match would rescan the rest of the text from every
 * unanswered "Provided username ".
 */
export const redactUserName = (text: string): string => {
  let redacted = ""
  let from = 0
  for (let start = text.indexOf(userNameBefore); start !== -1; start = text.indexOf(userNameBefore, from)) {
    const nameStart = start + userNameBefore.length
    const end = text.indexOf(userNameAfter, nameStart)
    redacted += `${text.slice(from, nameStart)}<redacted>`
    if (end === -1) return redacted
    from = end
  }
  return from === 0 ? text : redacted + text.slice(from)
}

/** What makes a long decimal number a size or a count, not a byte dump: a size word before it, or "bytes" after it. */
const sizeBefore = /\b(?:length|size|threshold|limit|maximum|max|than)(?:\s+of)?\s+$/i
const sizeAfter = /^\s*bytes\b/i

/** Runs of 8+ hex digits, with or without `0x`: how byte dumps look. */
const hexRun = /(?<![\w-])(?:0x)?[0-9a-f]{8,}(?![\w-])/gi

const quoted = /'(?:[^']|'')*'/g
const quotedToEnd = /'(?:[^']|'')*(?:'|$)/g
const sizeContext = 32

/**
 * Server error texts that can echo a bound value or a user name, best effort over what Cassandra 5 is known to send:
 * Jackson's "(String was: …)" tail of a bad `INSERT … JSON ?` value and its `[Source: (String)"…"` (Cassandra 4),
 * the value ending "Expected a boolean value, but got a Integer: 7" (a JSON value of the wrong type), single-quoted values ("Unable to make int from
 * 'x'"), the user name of a refused login, and byte dumps ("Expected 4 or 16 byte inetaddress; got
 * 4028000000000000"). UUIDs are kept, and so are long decimal numbers that are sizes or counts ("length 20971576
 * exceeds maximum allowed length 16777216").
 */
const echoedValues: ReadonlyArray<(text: string, cutOff: boolean) => string> = [
  (text) => text.replace(/\(String was: [\s\S]*$/, "(String was: <redacted>)"),
  // Jackson before 2.16 quotes the JSON it could not parse as its source, up to the position it names.
  (text) =>
    text.replace(
      /\[Source: \(String\)[\s\S]*?(?:(; line: \d+, column: \d+\])|$)/,
      (_, position: string | undefined) => `[Source: (String)<redacted>${position ?? ""}`
    ),
  // A JSON value of the wrong type: "Expected a boolean value, but got a Integer: 7" ends with the value.
  (text) => text.replace(/(, but got an? [\w.]+: )[\s\S]*$/, "$1<redacted>"),
  // A text cut off inside a quoted value ends in that value.
  (text, cutOff) => text.replace(cutOff ? quotedToEnd : quoted, "'<redacted>'"),
  (text) => redactUserName(text),
  (text) =>
    text.replace(hexRun, (match: string, offset: number) =>
      /^\d+$/.test(match) &&
      // Only the words next to the number are read: testing the whole rest of a text for each number is quadratic.
      (sizeBefore.test(text.slice(Math.max(0, offset - sizeContext), offset)) ||
        sizeAfter.test(text.slice(offset + match.length, offset + match.length + sizeContext)))
        ? match
        : "<redacted>"
    )
]

/**
 * A server error text with any echo of a bound value or a user name replaced by `<redacted>`; `cutOff` says the text
 * is the head of a longer one, whose last quoted value may be unfinished.
 */
export const redactEchoedValues = (serverText: string, cutOff = false): string =>
  echoedValues.reduce((text, redact) => redact(text, cutOff), serverText)

/**
 * The literal values of CQL text: strings (quoted or between `$$`), blobs, UUIDs, numbers (durations and byte dumps
 * without `0x` included) and booleans; quoted names are matched only to be kept. Keywords, names, bind markers and
 * the number after LIMIT (a page size the server adds) are kept. A string cut off by the end of the text (Cassandra
 * quotes at most 512 characters of a statement) is a literal up to that end. A number is recognised by its first
 * character before LIMIT is looked for behind it: that look-behind reads back over any run of spaces, and read at
 * every position of the run it made a long run quadratic.
 */
const cqlToken =
  /"(?:[^"]|"")*"|'(?:[^']|'')*(?:'|$)|\$\$[\s\S]*?(?:\$\$|$)|\b0x[0-9a-f]*|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b|(?<![\w$.:])(?=-?\.?\d)(?<!LIMIT\s+)-?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?\w*|\b(?:true|false|NaN|Infinity)\b/gi

/** CQL text with its literal values replaced by `<redacted>`. */
export const redactCqlLiterals = (cql: string): string =>
  cql.replace(cqlToken, (token) => (token.startsWith('"') ? token : "<redacted>"))

/** Where a server warning quotes a statement: at its first verb, upper case as Cassandra prints it. */
const statementVerb = /\b(?:SELECT|INSERT|UPDATE|DELETE|BEGIN)\b/

/**
 * The parts of a quoted statement that decide where it ends: strings, `$$` strings and quoted names, skipped whole
 * because a key value may hold any words; an opening quote that is never closed (group 1); and the warning's own tail
 * ("; token …", "(see …_threshold)", " with token…", or the end), matched empty where it starts. Whitespace before
 * a tail is read only from its first character, so a run of spaces is never rescanned.
 */
const statementPart =
  /'(?:[^']|'')*'|\$\$[\s\S]*?\$\$|"(?:[^"]|"")*"|('|\$\$)|(?<!\s)(?=\s*(?:;\s*token\b|\(see \w+\)|$)|\s+with token)/g

/** The warning's own tails after a string that is never closed; the last one starts what the server added. */
const warningTail = /(?<!\s)\s*(?:;\s*token\b|\(see \w+\))|\s+with token/g

/** Where the statement starting at `from` ends: at the first tail outside its literals, or the last after a cut one. */
const statementEnd = (warning: string, from: number): number => {
  statementPart.lastIndex = from
  for (let part = statementPart.exec(warning); part !== null; part = statementPart.exec(warning)) {
    if (part[1] !== undefined) {
      let end = warning.length
      warningTail.lastIndex = part.index
      for (let tail = warningTail.exec(warning); tail !== null; tail = warningTail.exec(warning)) end = tail.index
      return end
    }
    if (part[0].length === 0) return part.index
  }
  return warning.length
}

/**
 * Key values and tokens named outside the statement: "token 8413…", "token=8413…", "token range: (a, b]", a
 * partition as "ks.table:key", and "for key …". A token is a hash of the key, so it is withheld like the key.
 */
const keyFacts: ReadonlyArray<readonly [pattern: RegExp, replacement: string]> = [
  [/\b(token range:\s*)[[(]\s*-?\d+\s*,\s*-?\d+\s*[\])]/gi, "$1<redacted>"],
  [/\b(tokens?\s*(?:[=:]\s*)?)-?\d+/gi, "$1<redacted>"],
  [/\b(partition\s+[\w"]+[./][\w"]+):\S+/gi, "$1:<redacted>"],
  [/\b(for (?:partition )?key\s+)(?!<redacted>)\S+/gi, "$1<redacted>"]
]

const redactWarningProse = (text: string, cutOff: boolean) =>
  keyFacts.reduce(
    (redacted, [pattern, replacement]) => redacted.replace(pattern, replacement),
    redactEchoedValues(text, cutOff)
  )

/**
 * A server warning without the values it quotes: the literals of the statement it embeds (the key values of the
 * read), tokens and key values around it, and any echoed value; counts, sizes, names and thresholds are kept.
 */
export const redactServerWarning = (warning: string, cutOff = false): string => {
  const start = statementVerb.exec(warning)?.index
  if (start === undefined) return redactWarningProse(warning, cutOff)
  const end = statementEnd(warning, start)
  return `${redactWarningProse(warning.slice(0, start), false)}${redactCqlLiterals(warning.slice(start, end))}${redactWarningProse(warning.slice(end), cutOff)}`
}

/**
 * The plain errors the driver raises while a host's connections come and go (lib/host-connection-pool.js: a pool
 * with no open connection, a connection opened while its pool closes) and the text lib/request-handler.js keeps for a
 * host it skipped as down. They name no value; a retry on another connection or host can succeed.
 */
const transientConnectionTexts: ReadonlySet<string> = new Set([
  "No connection available",
  "Connection closed",
  "Host considered as DOWN"
])

/** The driver's text of a transient connection failure, or undefined for any other error. */
export const transientConnectionText = (error: unknown): string | undefined => {
  const text = Predicate.isString(error)
    ? error
    : Predicate.isError(error) && Object.getPrototypeOf(error) === Error.prototype
      ? error.message
      : undefined
  return text !== undefined && transientConnectionTexts.has(text) ? text : undefined
}

/** The class name of a thrown value, for errors whose text is withheld. */
export const errorName = (error: unknown): string =>
  Predicate.isError(error) ? error.name : error === null ? "null" : typeof error
