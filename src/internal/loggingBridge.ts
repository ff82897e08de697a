/**
 * The bridge from the driver's `log` events to Effect's logger. The driver emits every event, verbose ones included,
 * whoever listens; the bridge drops those below the chosen driver level or below the application's minimum log level
 * before building anything, so a quiet bridge costs one comparison per event.
 */
import type * as Cassandra from "cassandra-driver"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as LogLevel from "effect/LogLevel"
import * as References from "effect/References"

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
    const { address, coordinator, host } = detail as {
      readonly address?: unknown
      readonly coordinator?: unknown
      readonly host?: unknown
    }
    for (const candidate of [address, coordinator, host]) if (typeof candidate === "string") return candidate
  }
  return nodeInText.exec(message)?.[0]
}

/**
 * Forwards the client's log events to the logger of the context the session is built in, annotated with
 * `component` (the driver class that logged) and `node`, until the scope closes.
 */
export const bridgeDriverLogs = Effect.fnUntraced(function* (client: Cassandra.Client) {
  const threshold = yield* DriverLogLevel
  if (threshold === "off") return
  const context = yield* Effect.context<never>()
  const minimum = Context.get(context, References.MinimumLogLevel)
  const runSync = Effect.runSyncWith(context)
  const listener = (driverLevel: unknown, className: unknown, message: unknown, detail: unknown) => {
    const level = String(driverLevel)
    if (!passes(level, threshold)) return
    const severity = severityOf(level)
    if (severity === undefined || LogLevel.isGreaterThan(minimum, severity)) return
    const text = String(message)
    const node = nodeOf(text, detail)
    const annotations = node === undefined ? { component: String(className) } : { component: String(className), node }
    const log = Effect.logWithLevel(severity)
    runSync(Effect.annotateLogs(detail instanceof Error ? log(text, Cause.fail(detail)) : log(text), annotations))
  }
  yield* Effect.acquireRelease(
    Effect.sync(() => client.on("log", listener)),
    () => Effect.sync(() => client.off("log", listener))
  )
})
