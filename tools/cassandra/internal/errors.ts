/**
 * The local Cassandra manager's failure: its typed reasons, and the one-line summaries of a cause or of a command's
 * output that its messages quote.
 *
 * @since 0.1.0
 */
import * as Cassandra from "cassandra-driver"
import { Schema } from "effect"

/**
 * What went wrong in a local Cassandra operation.
 *
 * @since 0.1.0
 * @category errors
 */
export const LocalCassandraErrorReason = Schema.Literals([
  "InvalidOption",
  "ClusterNotFound",
  "PortInUse",
  "JavaMissing",
  "MavenMissing",
  "MavenFailed",
  "VersionNotFound",
  "TlsSetupFailed",
  "FileSystemFailed",
  "NodeFailed",
  "NodetoolFailed",
  "FirewallUnavailable",
  "Timeout"
])

/**
 * What went wrong in a local Cassandra operation.
 *
 * @since 0.1.0
 * @category errors
 */
export type LocalCassandraErrorReason = typeof LocalCassandraErrorReason.Type

/**
 * A failure of the local Cassandra manager; `message` is one line saying what is wrong and what to do about it.
 *
 * @since 0.1.0
 * @category errors
 */
export class LocalCassandraError extends Schema.TaggedError<LocalCassandraError>(
  "effect-cassandra/tools/LocalCassandraError"
)("LocalCassandraError", {
  reason: LocalCassandraErrorReason,
  message: Schema.String,
  /** The last lines of the node's logs, when a node failed. */
  logTail: Schema.optional(Schema.String)
}) {}

/**
 * A {@link LocalCassandraError} with the node's log tail when there is one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const failure = (reason: LocalCassandraErrorReason, message: string, logTail?: string) =>
  new LocalCassandraError(logTail === undefined ? { reason, message } : { reason, message, logTail })

/**
 * The first line of an error's message (or of any thrown value), for one-line failure messages.
 *
 * @since 0.1.0
 * @category utils
 */
export const firstLineOf = (cause: unknown): string => {
  const text = cause instanceof Error ? cause.message : String(cause)
  return text.split("\n")[0]!.trim()
}

// Progress lines repeat a node's last answer every few seconds: they must stay one short line.
const gistLimit = 200

/**
 * What a failure comes down to, in one line of at most 200 characters: for the driver's "All host(s) tried for
 * query failed. First host tried, …" the answer of each host it tried, else the first line of the message.
 *
 * @since 0.1.0
 * @category utils
 */
export const gistOf = (cause: unknown): string => {
  const tried = cause instanceof Cassandra.errors.NoHostAvailableError ? Object.entries(cause.innerErrors ?? {}) : []
  const gist =
    tried.length === 0 ? firstLineOf(cause) : tried.map(([host, error]) => `${host}: ${firstLineOf(error)}`).join("; ")
  return gist.length <= gistLimit ? gist : `${gist.slice(0, gistLimit - 1)}…`
}

/**
 * The last non-empty line of `text` (matching `pattern` when given): what a command said last before it failed.
 *
 * @since 0.1.0
 * @category utils
 */
export const lastLine = (text: string, pattern?: RegExp): string | undefined =>
  text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && (pattern === undefined || pattern.test(line)))
    .at(-1)
