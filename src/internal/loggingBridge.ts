/**
 * The bridge from the driver's `log` events to Effect's logger. The driver emits every event, verbose ones included,
 * whoever listens; the bridge drops those below the chosen driver level or below the application's minimum log level
 * before building anything, so a quiet bridge costs one comparison per event. What passes is redacted: the server
 * warnings the driver logs quote statements with their key values, and a refused login names the user.
 */
import type * as Cassandra from "cassandra-driver"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as LogLevel from "effect/LogLevel"
import * as References from "effect/References"
import * as CassandraError from "../CassandraError.ts"
import {
  redactCqlLiterals,
  redactEchoedValues,
  redactHead,
  redactServerWarning,
  redactUserName
} from "./errorClassification.ts"

/** The driver's log levels, quietest last, and `off`. */
export type DriverLogLevel = "verbose" | "info" | "warning" | "error" | "off"

/** The verbosity of the bridge in effect where sessions are built. */
export const DriverLogLevel = Context.Reference<DriverLogLevel>("effect-cassandra/Logging/DriverLogLevel", {
  defaultValue: () => "warning"
})

const severities: Readonly<Record<string, LogLevel.Severity>> = {
  verbose: "Debug",
  info: "Info",
  warning: "Warn",
  error: "Error"
}

const ranks: Readonly<Record<DriverLogLevel, number>> = { verbose: 0, info: 1, warning: 2, error: 3, off: 4 }

/** The Effect log level of a driver log level, or `undefined` for a level the driver does not define. */
export const severityOf = (driverLevel: string): LogLevel.Severity | undefined =>
  Object.hasOwn(severities, driverLevel) ? severities[driverLevel] : undefined

/** Whether an event at `driverLevel` passes a bridge set to `threshold`. */
export const passes = (driverLevel: string, threshold: DriverLogLevel): boolean =>
  Object.hasOwn(ranks, driverLevel) && driverLevel !== "off" && ranks[driverLevel as DriverLogLevel] >= ranks[threshold]

const nodeInText = /\[[0-9A-Fa-f:.]+\]:\d+|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b/

/**
 * The node an event is about: the host it carries, the node its error names, or the first address in its message.
 */
export const nodeOf = (message: string, detail: unknown): string | undefined => {
  if (typeof detail === "object" && detail !== null) {
    for (const field of nodeFields) {
      const candidate = readField(detail, field)
      if (typeof candidate === "string") return candidate
    }
  }
  return nodeInText.exec(message)?.[0]
}

const nodeFields = ["address", "coordinator", "host"] as const

/** A field of a log event's detail, undefined when reading it throws (a getter or a proxy). */
const readField = (detail: object, field: string): unknown => {
  try {
    return (detail as Readonly<Record<string, unknown>>)[field]
  } catch {
    return undefined
  }
}

/** How lib/request-handler.js opens each warning of a response: `Received warning (1 of 2) "…" for "<CQL or batch>"`. */
const receivedWarning = /^Received warning \(\d+ of \d+\) "/
const warningSeparator = '" for "'

/** How lib/prepare-handler.js logs a failed PREPARE of a statement on another host: it quotes the statement. */
const failedPrepare = "Unexpected error while preparing query ("
const failedPrepareHost = /^\) on \S{1,300}$/

/** A value's text, or undefined when converting it throws (a hostile `toString`, a revoked proxy). */
const textOf = (u: unknown): string | undefined => {
  try {
    return typeof u === "string" ? u : String(u)
  } catch {
    return undefined
  }
}

/** Whether a value is an `Error`, false when even asking throws (a proxy's prototype trap). */
const isError = (u: unknown): u is Error => {
  try {
    return u instanceof Error
  } catch {
    return false
  }
}

/**
 * A driver log message without bound values or user names: a server warning with its values and the literals of the
 * statement it was about redacted, a quoted statement without its literals, the text of the error it ends with (as
 * in "Connection to … could not be created: ${error}") redacted as a server's error text is, and the user name of a
 * refused login redacted anywhere. Each part is bounded, and every step is linear in the part's length.
 */
export const redactLogMessage = (message: string, detail: unknown): string => {
  const warning = receivedWarning.exec(message)
  // The last separator, as the statement the driver quotes comes last; only a warning is searched for it.
  const separator = warning === null ? -1 : message.lastIndexOf(warningSeparator)
  if (warning !== null && separator >= warning[0].length && message.endsWith('"')) {
    const text = message.slice(warning[0].length, separator)
    const statement = message.slice(separator + warningSeparator.length, -1)
    return `${warning[0]}${redactHead(text, redactServerWarning)}${warningSeparator}${redactHead(statement, redactCqlLiterals)}"`
  }
  if (message.startsWith(failedPrepare)) {
    const host = message.lastIndexOf(") on ")
    if (host >= failedPrepare.length && failedPrepareHost.test(message.slice(host))) {
      return `${failedPrepare}${redactHead(message.slice(failedPrepare.length, host), redactCqlLiterals)}${message.slice(host)}`
    }
  }
  const errorText = isError(detail) ? (textOf(detail) ?? "") : ""
  return errorText.length > 0 && message.endsWith(errorText)
    ? `${redactHead(message.slice(0, -errorText.length), redactUserName)}${redactHead(errorText, redactEchoedValues)}`
    : redactHead(message, redactUserName)
}

/** The error a log event carries, classified and redacted, or undefined for none. */
const loggedCause = (detail: unknown) =>
  isError(detail) ? Cause.fail(CassandraError.fromDriverError(detail)) : undefined

/**
 * Forwards the client's log events to the logger of the context the session is built in, redacted, annotated with
 * `component` (the driver class that logged) and `node`, until the scope closes. An error the driver attached is
 * logged as the line's cause, classified into a `CassandraError`.
 */
export const bridgeDriverLogs = Effect.fnUntraced(function* (client: Cassandra.Client) {
  const threshold = yield* DriverLogLevel
  if (threshold === "off") return
  const context = yield* Effect.context<never>()
  const minimum = Context.get(context, References.MinimumLogLevel)
  const runSync = Effect.runSyncWith(context)
  // Nothing may throw from here into the driver, which emits the event in the middle of its own work: an argument
  // that cannot be read is logged as unreadable, and a line the application's logger fails on is dropped.
  const listener = (driverLevel: unknown, className: unknown, message: unknown, detail: unknown) => {
    try {
      const level = textOf(driverLevel) ?? ""
      if (!passes(level, threshold)) return
      const severity = severityOf(level)
      if (severity === undefined || LogLevel.isGreaterThan(minimum, severity)) return
      const text = redactLogMessage(textOf(message) ?? "(a log message that could not be read)", detail)
      const component = textOf(className) ?? "(unknown)"
      const node = nodeOf(text, detail)
      const annotations = node === undefined ? { component } : { component, node }
      const log = Effect.logWithLevel(severity)
      // The driver's error is logged classified, as a request's error is, so its text echoes no value either.
      const cause = loggedCause(detail)
      runSync(Effect.annotateLogs(cause === undefined ? log(text) : log(text, cause), annotations))
    } catch {
      // The application's logger threw, or an argument defeated every guard: the line is lost, never the driver.
    }
  }
  yield* Effect.acquireRelease(
    Effect.sync(() => client.on("log", listener)),
    () => Effect.sync(() => client.off("log", listener))
  )
})
