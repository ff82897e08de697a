/**
 * The driver's own logs in Effect's logger. Every session forwards the `cassandra-driver` log events at or above
 * the driver level in effect where it is built (default `warning`) to the application's loggers, so they honour
 * its `Logger` layers and its `References.MinimumLogLevel`.
 *
 * Levels map as `verbose` → Debug, `info` → Info, `warning` → Warn, `error` → Error. Each line is annotated with
 * `component`, the driver class that logged (`Connection`, `ControlConnection`, `HostConnectionPool`, …), and
 * `node`, the node's `address:port` when the event or its message names one. An error the driver attached is logged
 * with the line. Events are filtered before anything is formatted, so a quiet level costs one comparison per event.
 *
 * Nothing secret reaches these lines: the library hands the driver its password, TLS key and passphrase only inside
 * the driver's options, which the driver never logs. No bound value or user name does either: the server warnings
 * the driver logs (tombstones, batch sizes, aggregation without a partition key) keep their counts, sizes, tables
 * and thresholds but lose the literal values of the statements they quote (Cassandra prints a read's key values
 * there), tokens and key values; a refused login loses the user name; and an error the driver attached is logged
 * as a `CassandraError`, classified and redacted as a request's error is. Each part of a line (a warning, the
 * statement it is about, an error's text) shows at most its first 4,096 characters, redacted, and counts the rest;
 * redaction is linear in that head. Nothing the bridge is handed (a logger that throws, an argument that cannot be
 * read) throws back into the driver, which emits its events in the middle of its own work.
 *
 * @since 0.1.0
 */
import type * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import type * as LogLevel from "effect/LogLevel"
import * as internal from "./internal/loggingBridge.ts"

/**
 * The driver's log levels, most verbose first, and `off` to turn the bridge off.
 *
 * @since 0.1.0
 * @category models
 */
export type DriverLogLevel = internal.DriverLogLevel

/**
 * The driver level sessions forward from, read when a session is built (default `warning`).
 *
 * @since 0.1.0
 * @category references
 */
export const DriverLogLevel: Context.Reference<DriverLogLevel> = internal.DriverLogLevel

/**
 * Sets the driver level of the sessions built with this layer provided; `off` turns the bridge off.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { CassandraLayer, Logging } from "effect-cassandra"
 *
 * // Forward the driver's info lines too (connections opened and closed, nodes up and down).
 * const CassandraLive = CassandraLayer.layer({ contactPoints: ["127.0.0.1"], localDataCenter: "datacenter1" }).pipe(
 *   Layer.provide(Logging.layer("info"))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (level: DriverLogLevel): Layer.Layer<never> => Layer.succeed(DriverLogLevel, level)

/**
 * The Effect log level of a driver log level (`verbose` → Debug, `info` → Info, `warning` → Warn,
 * `error` → Error), or `undefined` for any other text.
 *
 * @since 0.1.0
 * @category mapping
 */
export const severityOf: (driverLevel: string) => LogLevel.Severity | undefined = internal.severityOf
