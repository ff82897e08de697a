/**
 * The real cause of a failed re-preparation. A node that no longer knows a prepared statement (its table was
 * dropped, the node restarted or evicted it) answers UNPREPARED; the driver prepares the statement again and, when
 * that fails, moves to the next host and drops the failure (lib/request-execution.js `_prepareAndRetry`). The caller
 * would see `NoHostAvailable` wrapping UNPREPARED (0x2500) where the node's own answer, such as `Invalid: table …
 * does not exist`, says what is wrong. Only such a failure costs one more PREPARE, waited for at most the driver's
 * per-attempt read timeout and never past the request's deadline; every other error is classified at once.
 */
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as CassandraError from "../CassandraError.ts"
import { innerErrors } from "./errorClassification.ts"

/**
 * The driver internals this reads, untyped in its typings and checked before use: the statement behind a prepared
 * id (lib/metadata), and a host's connection that can prepare on its own (lib/connection.js).
 */
interface DriverInternals {
  readonly options?: { readonly socketOptions?: { readonly readTimeout?: unknown } }
  readonly metadata: {
    readonly getPreparedById?: (id: unknown) => { readonly query?: unknown; readonly keyspace?: unknown } | undefined
  }
  readonly hosts: {
    get(address: string):
      | {
          readonly borrowConnection?: () => {
            readonly prepareOnceAsync?: (query: string, keyspace: string | undefined) => Promise<unknown>
          }
        }
      | undefined
  }
}

const unprepared = Cassandra.types.responseErrorCodes.unprepared

const isUnprepared = (error: unknown): error is Cassandra.errors.ResponseError & { readonly queryId?: unknown } =>
  error instanceof Cassandra.errors.ResponseError && error.code === unprepared

/**
 * The first host of a request that every host answered with UNPREPARED, and that answer; undefined for any other
 * failure, including one whose fields throw when read (this runs in the driver's callback).
 */
const unpreparedEverywhere = (error: unknown) => {
  try {
    if (!(error instanceof Cassandra.errors.NoHostAvailableError)) return undefined
    const tried = innerErrors(error)
    const first = tried[0]
    return first !== undefined && tried.every(([, inner]) => isUnprepared(inner)) ? first : undefined
  } catch {
    return undefined
  }
}

/** The driver's default per-attempt read timeout, for a session whose attempts have none. */
const defaultPrepareWaitMillis = 12_000

/**
 * How long a PREPARE the library sends itself (to learn a failure's cause, or past a node that refused it) is waited
 * for: the driver's per-attempt read timeout, which bounds that PREPARE too, or the driver's default where attempts
 * have none (an infinite `attemptTimeout`), since a frozen node would otherwise hold the request forever.
 */
export const prepareWaitMillis = (client: Cassandra.Client): number => {
  const readTimeout = (client as unknown as DriverInternals).options?.socketOptions?.readTimeout
  return typeof readTimeout === "number" && readTimeout > 0 ? readTimeout : defaultPrepareWaitMillis
}

/** The server's answer to preparing the statement again on the host, or undefined when it prepares or cannot be asked. */
const prepareAgain = async (client: Cassandra.Client, address: string, answer: unknown): Promise<unknown> => {
  const internals = client as unknown as DriverInternals
  try {
    const info = isUnprepared(answer) ? internals.metadata.getPreparedById?.(answer.queryId) : undefined
    const connection = internals.hosts.get(address)?.borrowConnection?.()
    if (typeof info?.query !== "string" || connection?.prepareOnceAsync === undefined) return undefined
    await connection.prepareOnceAsync(info.query, typeof info.keyspace === "string" ? info.keyspace : undefined)
    return undefined
  } catch (cause) {
    // Only the node's answer says why; a host that cannot be reached now says nothing about the statement.
    return cause instanceof Cassandra.errors.ResponseError
      ? Object.assign(cause, { coordinator: stringCoordinator(cause) ?? address })
      : undefined
  }
}

const stringCoordinator = (error: Cassandra.errors.ResponseError): string | undefined => {
  const { coordinator } = error as { readonly coordinator?: unknown }
  return typeof coordinator === "string" ? coordinator : undefined
}

/**
 * The failure of a request, classified: when re-preparing failed on every host, by the node's answer to preparing
 * the statement again, if it comes within `timeLeftMillis()` (read as that PREPARE would be sent: the time left of the
 * request's deadline, infinite for none, zero when it may no longer be sent); otherwise as
 * `CassandraError.fromDriverError` does.
 */
export const classifyFailure = (
  client: Cassandra.Client,
  error: unknown,
  context: CassandraError.ErrorContext,
  timeLeftMillis: () => number = () => Number.POSITIVE_INFINITY
): Effect.Effect<never, CassandraError.CassandraError> => {
  const first = unpreparedEverywhere(error)
  if (first === undefined) return Effect.fail(CassandraError.fromDriverError(error, context))
  return Effect.suspend(() => {
    const waitMillis = Math.min(prepareWaitMillis(client), timeLeftMillis())
    if (!(waitMillis > 0)) return Effect.fail(CassandraError.fromDriverError(error, context))
    return Effect.flatMap(
      Effect.timeoutOption(
        Effect.promise(() => prepareAgain(client, ...first)),
        waitMillis
      ),
      (cause) => Effect.fail(CassandraError.fromDriverError(Option.getOrUndefined(cause) ?? error, context))
    )
  })
}
