/**
 * Requests a node refused without running them, sent again to another node.
 *
 * A node shutting down answers every request with OVERLOADED "Server is shutting down" before it reads it (Cassandra's
 * transport `Dispatcher`, 5.0 and 6.0), so the request ran nowhere. The driver retries an idempotent one on the next
 * node, but fails any other one. Such a request is sent again once, whatever its idempotence, with that node moved to
 * the back of query plans ({@link shuttingDownNode}).
 *
 * The driver prepares a statement through a query plan the first time it runs it (lib/prepare-handler.js
 * `_prepareWithQueryPlan`), and moves to the next node only after a socket error or a timeout. A node in graceful
 * shutdown answers OVERLOADED and a joining one IS_BOOTSTRAPPING: that answer fails the request, and every request
 * waiting on the same preparation, although none of them ran. A rolling restart, or a deploy during one, then fails
 * requests that any other node would have served.
 *
 * Such a refusal is recognized by what only the prepare path leaves: a server error with no coordinator (every
 * failure of an attempt gets one, lib/request-execution.js `_handleError`). The statement is then prepared here, on
 * the nodes of a fresh query plan of the request's execution profile in turn, past every node that refuses or cannot
 * be reached (then on the plan's other nodes too, when the driver prepares on all hosts), and the result is handed to
 * the driver's cache of prepared statements the way its own preparation does, so the request is sent again and later
 * requests reuse it. Requests arriving meanwhile wait on that preparation, as they wait on the driver's.
 */
import * as Cassandra from "cassandra-driver"
import { avoidStoppingNode } from "./healthAwarePolicy.ts"
import { prepareWaitMillis } from "./rePrepare.ts"
import { stackless } from "./stackless.ts"

const codes = Cassandra.types.responseErrorCodes
const ignoredDistance = Cassandra.types.distance.ignored

/** The driver's record of one prepared statement (lib/metadata/index.js `PreparedQueries`), an `EventEmitter`. */
interface PreparedInfo {
  queryId?: unknown
  meta?: unknown
  preparing?: unknown
  readonly once: (event: "prepared", listener: (error: unknown) => void) => unknown
  readonly emit: (event: "prepared", error: unknown, info?: PreparedInfo) => boolean
  readonly rawListeners?: (event: "prepared") => ReadonlyArray<(error: unknown, info?: PreparedInfo) => unknown>
  readonly listeners?: (event: "prepared") => ReadonlyArray<(error: unknown) => void>
}

interface PoolConnection {
  readonly keyspace?: unknown
  readonly changeKeyspace: (keyspace: string) => Promise<void>
  readonly prepareOnceAsync: (query: string, keyspace: string | undefined) => Promise<{ id: unknown; meta: unknown }>
}

interface PoolHost {
  readonly address: string
  readonly isUp: () => boolean
  readonly borrowConnection: () => PoolConnection
}

/** The driver's cache of prepared statements (lib/metadata/index.js). */
interface PreparedCache {
  readonly getPreparedInfo?: (keyspace: string | undefined, query: string) => PreparedInfo
  readonly setPreparedById?: (info: PreparedInfo) => void
}

/** The driver's load-balancing policy, which gives the nodes to try in turn. */
interface QueryPlanner {
  readonly newQueryPlan: (
    keyspace: string | undefined,
    executionOptions: null,
    callback: (error: unknown, plan: Iterator<PoolHost>) => void
  ) => void
}

/** The driver internals this uses, untyped in its typings and checked before use. */
interface DriverInternals {
  readonly keyspace?: unknown
  readonly metadata?: PreparedCache
  readonly options?: {
    readonly policies?: { readonly loadBalancing?: QueryPlanner; readonly retry?: unknown }
    readonly prepareOnAllHosts?: unknown
  }
  readonly profileManager?: {
    readonly getDistance?: (host: PoolHost) => number
    readonly getProfile?: (
      name: unknown
    ) => { readonly loadBalancing?: QueryPlanner; readonly retry?: unknown } | undefined
  }
}

/** A node's answer that it cannot serve for now, another node may. */
const isRefusal = (error: unknown): error is Cassandra.errors.ResponseError =>
  error instanceof Cassandra.errors.ResponseError &&
  (error.code === codes.overloaded || error.code === codes.isBootstrapping)

/**
 * Whether `error` is a node's refusal of the PREPARE the driver sent to run a statement for the first time: the
 * statement did not run anywhere.
 */
export const isPrepareRefusal = (error: unknown): boolean => {
  try {
    return isRefusal(error) && (error as { readonly coordinator?: unknown }).coordinator === undefined
  } catch {
    return false
  }
}

/** The server's text of a refusal by a node that is shutting down (Cassandra's transport `Dispatcher`). */
const shuttingDown = "Server is shutting down"

/** Whether `error` is a node's refusal because it is shutting down; the caller guards against throwing fields. */
const refusesAsStopping = (error: unknown): error is Cassandra.errors.ResponseError =>
  error instanceof Cassandra.errors.ResponseError && error.code === codes.overloaded && error.message === shuttingDown

/**
 * The node that refused a request's attempt because it is shutting down, before running it; undefined for any other
 * failure, including one whose fields throw when read.
 */
export const shuttingDownNode = (error: unknown): string | undefined => {
  try {
    if (!refusesAsStopping(error)) return undefined
    const { coordinator } = error as { readonly coordinator?: unknown }
    return typeof coordinator === "string" ? coordinator : undefined
  } catch {
    return undefined
  }
}

/**
 * Whether a request under `executionProfile` refused by a node shutting down is sent again: not when the retry policy
 * the driver applies to it (its profile's, else the client's) is the one that never retries. Read on a refusal only.
 */
export const resendsRefused = (client: Cassandra.Client, executionProfile: unknown): boolean => {
  try {
    const internals = client as unknown as DriverInternals
    const retry = internals.profileManager?.getProfile?.(executionProfile)?.retry ?? internals.options?.policies?.retry
    return !(retry instanceof Cassandra.policies.retry.FallthroughRetryPolicy)
  } catch {
    return true
  }
}

/** Whether `error` is a node's refusal because it is shutting down, false when it cannot be read. */
const isStopping = (error: unknown) => {
  try {
    return refusesAsStopping(error)
  } catch {
    return false
  }
}

/**
 * Whether a node's failure to prepare says nothing about the statement, so the next node is tried: a refusal, a
 * connection that failed or timed out, no connection to borrow, or a failure that cannot even be read.
 */
const isNodeFailure = (error: unknown) => {
  try {
    return (
      isRefusal(error) ||
      !(error instanceof Cassandra.errors.ResponseError) ||
      (error as { readonly isSocketError?: unknown }).isSocketError === true
    )
  } catch {
    return true
  }
}

/** `error` with the node that answered it and the statement, as the driver marks its own; as it is if it cannot be. */
const answeredBy = (error: unknown, address: string, query: string) => {
  try {
    if (error !== null && typeof error === "object") Object.assign(error, { coordinator: address, query })
  } catch {
    // A frozen or otherwise hostile error is reported unmarked rather than in place of the node's failure.
  }
  return error ?? "Failed without an error"
}

const queryPlan = (policy: QueryPlanner, keyspace: string | undefined) =>
  new Promise<Iterator<PoolHost>>((resolve, reject) => {
    policy.newQueryPlan(keyspace, null, (error, plan) => (error ? reject(error) : resolve(plan)))
  })

/**
 * Prepares `query` on the first node of a fresh plan that accepts it: its answer (the prepared id and metadata), or
 * the error to fail with (the statement's own problem, as a node answered it, or every node's failure; `refusal`
 * once the preparation is `wanted` no more, before the next node is asked).
 */
const prepareOnFirstServing = async (
  internals: DriverInternals,
  policy: QueryPlanner,
  query: string,
  keyspace: string | undefined,
  waitMillis: number,
  refusal: unknown,
  wanted: Wanted
): Promise<
  { readonly id: unknown; readonly meta: unknown; readonly address: string } | { readonly failure: unknown }
> => {
  const plan = await queryPlan(policy, keyspace)
  const tried: Record<string, unknown> = {}
  const goingOn = () => wanted.byThisRequest() || wanted.byOthers()
  for (let host = nextUsable(internals, plan, tried); host !== undefined; host = nextUsable(internals, plan, tried)) {
    if (!goingOn()) return { failure: refusal }
    let prepared: { readonly id: unknown; readonly meta: unknown }
    try {
      prepared = await prepareOn(host, query, keyspace, waitMillis, goingOn)
    } catch (error) {
      const failure = answeredBy(error, host.address, query)
      if (!isNodeFailure(error)) return { failure }
      // The request, sent again once prepared, goes past it too: the driver's plan could pick it again.
      if (isStopping(error)) avoidStoppingNode(internals as unknown as Cassandra.Client, host.address)
      tried[host.address] = failure
      continue
    }
    // As the driver's own preparation with `prepareOnAllHosts`, so later requests find it prepared on their nodes; but
    // in the background, since the node that prepared it is enough to release the requests waiting, and another node
    // may be frozen. Who wants them is decided now: the requests waiting stop waiting as soon as this returns.
    if (internals.options?.prepareOnAllHosts === true) {
      const rest = wanted.onOtherNodes()
      if (rest()) startPreparingOnRest(internals, plan, query, keyspace, waitMillis, rest)
    }
    return { id: prepared.id, meta: prepared.meta, address: host.address }
  }
  return { failure: stackless(() => new Cassandra.errors.NoHostAvailableError(tried)) }
}

/**
 * The plan's next node that is not ignored and is up, as the driver picks one (lib/prepare-handler.js `getNextHost`),
 * each down node skipped noted in `tried`.
 */
const nextUsable = (internals: DriverInternals, plan: Iterator<PoolHost>, tried?: Record<string, unknown>) => {
  for (let next = plan.next(); next.done !== true; next = plan.next()) {
    const host = next.value
    if (internals.profileManager?.getDistance?.(host) === ignoredDistance) continue
    if (host.isUp()) return host
    if (tried !== undefined) tried[host.address] = "Host considered as DOWN"
  }
  return undefined
}

/**
 * The node's answer to preparing `query`, waited for at most `waitMillis`: a node that does not answer by then fails
 * as one that timed out, so the next node is tried and the statement is never held by a frozen node. A preparation
 * `goingOn` no longer wants once the connection's keyspace is changed fails unsent.
 */
const prepareOn = (
  host: PoolHost,
  query: string,
  keyspace: string | undefined,
  waitMillis: number,
  goingOn: () => boolean
) => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const unanswered = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          stackless(
            () =>
              new Cassandra.errors.OperationTimedOutError(
                `The node did not answer the PREPARE within ${waitMillis} ms`,
                host.address
              )
          )
        ),
      waitMillis
    )
  })
  const answer = (async () => {
    const connection = host.borrowConnection()
    if (keyspace !== undefined && connection.keyspace !== keyspace) {
      await connection.changeKeyspace(keyspace)
      if (!goingOn()) throw stackless(() => new Error("The preparation was no longer wanted"))
    }
    return connection.prepareOnceAsync(query, keyspace)
  })()
  return Promise.race([answer, unanswered]).finally(() => clearTimeout(timer))
}

/**
 * Starts preparing `query` on the plan's remaining nodes, each failure ignored. A node that fails to (or a plan that
 * fails) is left alone, as the driver leaves it: a request such a node coordinates gets UNPREPARED, and the driver
 * prepares the statement there and then.
 */
const startPreparingOnRest = (
  internals: DriverInternals,
  plan: Iterator<PoolHost>,
  query: string,
  keyspace: string | undefined,
  waitMillis: number,
  goingOn: () => boolean
) => {
  try {
    for (let host = nextUsable(internals, plan); host !== undefined; host = nextUsable(internals, plan)) {
      prepareOn(host, query, keyspace, waitMillis, goingOn).catch(() => undefined)
    }
  } catch {
    // The statement is prepared on one node already; the nodes planned so far are still prepared on.
  }
}

/** Whether a request a node refused may still be sent, and whether its session still sends requests. */
interface Sendable {
  readonly request: () => boolean
  readonly session: () => boolean
}

const alwaysSendable: Sendable = { request: () => true, session: () => true }

/**
 * Who wants a preparation a request started: the request itself while it may still be sent, and the requests waiting
 * on it (of any session over the same client, or the driver's own), which it serves as well; and, decided as it is
 * prepared, for how long the other nodes are wanted prepared too (`prepareOnAllHosts`).
 */
interface Wanted {
  readonly byThisRequest: () => boolean
  readonly byOthers: () => boolean
  readonly onOtherNodes: () => () => boolean
}

const always = () => true

/**
 * The listener by which each request of this library waits on a preparation, and whether it and its session send.
 * Any other listener is someone else's: the driver's own requests (of any session, the library cannot tell), or the
 * caller's.
 */
const ownWaiters = new WeakMap<(error: unknown) => void, Sendable>()

/** The listeners waiting on the preparation of `info`, or undefined for a record that cannot list them. */
const listenersOf = (info: PreparedInfo) => {
  try {
    return [...(info as Required<PreparedInfo>).listeners("prepared")]
  } catch {
    return undefined
  }
}

/**
 * Whether a request that may still be sent waits on the preparation of `info` under way: one of this library's whose
 * fiber still waits for it, or any other listener (true for a record that cannot say).
 */
const waitedOn = (info: PreparedInfo) => {
  const listeners = listenersOf(info)
  if (listeners === undefined) return true
  for (const listener of listeners) {
    const waiter = ownWaiters.get(listener)
    if (waiter === undefined || waiter.request()) return true
  }
  return false
}

/**
 * For how long the other nodes are wanted prepared with the statement of `info`, decided as it is prepared by a request
 * of `session`: while that session, or another whose requests waited on it, still sends requests; for good when any
 * other listener waited (the driver's own requests, whose client may outlive every session).
 */
const otherNodesWanted = (info: PreparedInfo, session: () => boolean): (() => boolean) => {
  const listeners = listenersOf(info)
  if (listeners === undefined) return always
  const sessions = new Set([session])
  for (const listener of listeners) {
    const waiter = ownWaiters.get(listener)
    if (waiter === undefined) return always
    sessions.add(waiter.session)
  }
  if (sessions.size === 1) return session
  return () => {
    for (const open of sessions) if (open()) return true
    return false
  }
}

/**
 * Waits for the driver's (or another request's) preparation of `info`, for a request `sendable` says may still be
 * sent or not: undefined when prepared, else its error.
 */
const preparedBySomeoneElse = (info: PreparedInfo, sendable: Sendable) =>
  new Promise<unknown>((resolve) => {
    const listener = (error: unknown) => resolve(error ?? undefined)
    ownWaiters.set(listener, sendable)
    info.once("prepared", listener)
  })

/**
 * Prepares `query` after a node refused it, unless it is prepared (or being prepared) meanwhile: undefined once the
 * driver holds it prepared, else the error the request fails with (`refusal` once it may no longer be sent and no
 * other request waits on the preparation it started).
 */
const prepareAfterRefusal = async (
  client: Cassandra.Client,
  driver: PreparingDriver,
  query: string,
  refusal: unknown,
  sendable: Sendable
): Promise<unknown> => {
  const { metadata, getPreparedInfo, setPreparedById, policy, keyspace } = driver
  const info = getPreparedInfo.call(metadata, keyspace, query)
  if (info.queryId) return undefined
  while (info.preparing) {
    const error = await preparedBySomeoneElse(info, sendable)
    // Refused by the node another preparation picked: unless yet another is under way, this one goes past that node.
    if (!isPrepareRefusal(error)) return error
    if (info.queryId) return undefined
  }
  if (!sendable.request()) return refusal
  const wanted: Wanted = {
    byThisRequest: sendable.request,
    byOthers: () => waitedOn(info),
    onOtherNodes: () => otherNodesWanted(info, sendable.session)
  }
  info.preparing = true
  let failure: unknown
  let address: string | undefined
  try {
    const outcome = await prepareOnFirstServing(
      driver.internals,
      policy,
      query,
      keyspace,
      driver.waitMillis,
      refusal,
      wanted
    )
    if ("failure" in outcome) failure = outcome.failure
    else {
      info.queryId = outcome.id
      info.meta = outcome.meta
      setPreparedById.call(metadata, info)
      address = outcome.address
    }
  } catch (error) {
    failure = error ?? refusal
  }
  // As the driver's own preparation ends (lib/prepare-handler.js `_prepare`): every request waiting on it learns.
  info.preparing = false
  if (failure !== undefined) {
    announce(info, failure)
    return failure
  }
  announce(info, null, info)
  logResent(client, `Prepared on ${address} a statement another node refused to prepare`, refusal)
  return undefined
}

/**
 * Tells each listener waiting on the preparation of `info` how it ended, as `emit` does, but each on its own: `emit`
 * stops at a listener that throws, and the listeners after it would then wait for good, since nothing tells them again.
 */
const announce = (info: PreparedInfo, error: unknown, prepared?: PreparedInfo) => {
  let listeners: ReadonlyArray<(error: unknown, info?: PreparedInfo) => unknown> | undefined
  try {
    listeners = [...(info as Required<PreparedInfo>).rawListeners("prepared")]
  } catch {
    listeners = undefined
  }
  // A listener's own failure is its own: the requests waiting beside it, and the one that prepared, are served alike.
  if (listeners === undefined) {
    // A record that cannot list them is told as the driver tells its own.
    try {
      info.emit("prepared", error, prepared)
    } catch {}
    return
  }
  for (const listener of listeners) {
    try {
      listener.call(info, error, prepared)
    } catch {}
  }
}

/**
 * Logs a request sent again past a refusal through the driver's log events, so the session's log bridge reports it
 * like the driver's own retries, at `info`.
 */
const logResent = (client: Cassandra.Client, message: string, refusal: unknown) => {
  try {
    client.emit("log", "info", "RequestRefusal", message, refusal)
  } catch {
    // A log listener that throws must not fail a request, nor the requests waiting on the same preparation.
  }
}

/**
 * Moves the node at `address`, which refused a request because it is shutting down, to the back of query plans, and
 * logs that the request is sent again.
 */
export const avoidStopping = (client: Cassandra.Client, address: string, refusal: unknown) => {
  avoidStoppingNode(client, address)
  logResent(client, `Sending again a request ${address} refused as it is shutting down`, refusal)
}

/** The driver internals a preparation uses, read once and checked. */
interface PreparingDriver {
  readonly internals: DriverInternals
  readonly metadata: PreparedCache
  readonly getPreparedInfo: NonNullable<PreparedCache["getPreparedInfo"]>
  readonly setPreparedById: NonNullable<PreparedCache["setPreparedById"]>
  readonly policy: QueryPlanner
  /** The session's keyspace, which the driver prepares in; undefined for none (the driver reads "" as none). */
  readonly keyspace: string | undefined
  /** How long one node's answer to a PREPARE is waited for. */
  readonly waitMillis: number
}

/** The internals `prepareElsewhere` uses, or undefined for a driver without them (another version, a stand-in). */
const preparingDriver = (client: Cassandra.Client, executionProfile: unknown): PreparingDriver | undefined => {
  const internals = client as unknown as DriverInternals
  const metadata = internals.metadata
  const getPreparedInfo = metadata?.getPreparedInfo
  const setPreparedById = metadata?.setPreparedById
  // The nodes the request may use, as the driver picks them to prepare it (lib/client.js `_execute`).
  const policy =
    internals.profileManager?.getProfile?.(executionProfile)?.loadBalancing ??
    internals.options?.policies?.loadBalancing
  if (
    metadata === undefined ||
    typeof getPreparedInfo !== "function" ||
    typeof setPreparedById !== "function" ||
    typeof policy?.newQueryPlan !== "function"
  ) {
    return undefined
  }
  const keyspace = typeof internals.keyspace === "string" && internals.keyspace !== "" ? internals.keyspace : undefined
  return {
    internals,
    metadata,
    getPreparedInfo,
    setPreparedById,
    policy,
    keyspace,
    waitMillis: prepareWaitMillis(client)
  }
}

/**
 * Prepares each of `queries` that a node refused to prepare, on the other nodes of the request's execution profile:
 * undefined once all are prepared (the request can be sent again), else the error the request fails with. It never
 * rejects. Before each PREPARE it sends it asks `sendable` whether the request may still be sent (not once its fiber
 * stopped waiting, nor once its session's closing stopped waiting for it): if not, and no other request waits on that
 * preparation, it stops, with `refusal`. Once prepared, it prepares on the other nodes too (`prepareOnAllHosts`) while
 * its session, or one whose requests waited on it, still sends requests; for good when the driver's own requests
 * waited.
 */
export const prepareElsewhere = async (
  client: Cassandra.Client,
  queries: ReadonlyArray<string>,
  refusal: unknown,
  executionProfile?: unknown,
  sendable: Sendable = alwaysSendable
): Promise<unknown> => {
  try {
    const driver = preparingDriver(client, executionProfile)
    // Without the internals it needs, the request fails as the driver failed it.
    if (driver === undefined) return refusal
    for (const query of queries) {
      const failure = await prepareAfterRefusal(client, driver, query, refusal, sendable)
      if (failure !== undefined) return failure
    }
    return undefined
  } catch (error) {
    return error ?? refusal
  }
}
