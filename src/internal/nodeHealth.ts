import { createRequire } from "node:module"
import type * as Cassandra from "cassandra-driver"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as CassandraError from "../CassandraError.ts"
import type { NodeHealthOptions } from "../Session.ts"
import { durationMillis } from "./clientOptions.ts"
import { HealthAwarePolicy, noNode } from "./healthAwarePolicy.ts"

/**
 * When a node is distrusted and when it is marked down, in milliseconds.
 *
 * The driver itself only notices a node whose sockets close: its heartbeat is sent on idle connections only, so a
 * stream of requests keeps a dead connection "alive", and it ignores the cluster's DOWN events for nodes it is
 * connected to. A frozen JVM, a stopped VM or a partition closes nothing. What such a node cannot do is send bytes:
 * a node under load still answers something (and a probe) within a second or two, a frozen one answers nothing.
 */
export interface HealthThresholds {
  /** How often every node's connections are looked at. */
  readonly checkIntervalMillis: number
  /** Silence, with requests outstanding, after which a node goes to the back of query plans and is probed. */
  readonly suspectAfterMillis: number
  /**
   * Silence, with requests (the probe included) outstanding, after which the node's connections are closed: its
   * requests are retried on other nodes, the driver marks it down, and reconnects when it answers again. Also how long
   * a node whose attempt timed out stays at the back of query plans.
   */
  readonly downAfterMillis: number
}

/**
 * The defaults: a 250 ms check, distrust after 1 s, down after 5 s. Five seconds is long enough that a busy node on a
 * loaded machine, or a young-generation GC pause, never gets there (an OPTIONS probe is answered in milliseconds by
 * any live node), and shorter than the 6-second attempt timeout, so requests stuck on a frozen node are retried
 * elsewhere before their attempt would time out.
 */
export const defaultThresholds: HealthThresholds = {
  checkIntervalMillis: 250,
  suspectAfterMillis: 1_000,
  downAfterMillis: 5_000
}

/** What one check saw of a node's open connections. */
export interface Observation {
  /** Bytes received so far over all its connections. */
  readonly bytesRead: number
  /** Requests sent and not answered, probes included. */
  readonly inFlight: number
  /** Attempts that timed out and are still unanswered. */
  readonly timedOut: number
}

/** What the monitor remembers of a node between checks. */
export interface Watch {
  readonly bytesRead: number
  readonly timedOut: number
  /** Since when nothing was received while something was outstanding. */
  readonly silentSince: number | undefined
  readonly lastTimeoutAt: number | undefined
}

/** `suspect`: tried last and probed; `unresponsive`: to be marked down. */
export type Verdict = "healthy" | "suspect" | "unresponsive"

/**
 * One node's verdict from what it did since the last check. `reportedDown` is the cluster's own DOWN event for it:
 * it starts the silence clock even with nothing outstanding (a probe follows), and bytes received clear it.
 * `pausedMillis` is how long this process itself did not run (the check came that much later than due): the node's
 * answers may be waiting unread in the socket, so that time does not count as the node's silence.
 */
export const assess = (
  previous: Watch | undefined,
  seen: Observation,
  now: number,
  thresholds: HealthThresholds,
  reportedDown = false,
  pausedMillis = 0
): { readonly watch: Watch; readonly verdict: Verdict } => {
  const progressed = previous !== undefined && seen.bytesRead !== previous.bytesRead
  const silentSince = progressed
    ? undefined
    : seen.inFlight > 0 || reportedDown
      ? previous?.silentSince === undefined
        ? now
        : Math.min(now, previous.silentSince + pausedMillis)
      : undefined
  const lastTimeoutAt = previous !== undefined && seen.timedOut > previous.timedOut ? now : previous?.lastTimeoutAt
  const watch: Watch = { bytesRead: seen.bytesRead, timedOut: seen.timedOut, silentSince, lastTimeoutAt }
  const silence = silentSince === undefined ? 0 : now - silentSince
  const verdict: Verdict =
    silence >= thresholds.downAfterMillis
      ? "unresponsive"
      : silentSince !== undefined && (silence >= thresholds.suspectAfterMillis || reportedDown)
        ? "suspect"
        : lastTimeoutAt !== undefined && now - lastTimeoutAt < thresholds.downAfterMillis
          ? "suspect"
          : "healthy"
  return { watch, verdict }
}

/** The address in the driver's log line for a DOWN status event from the cluster, which it otherwise ignores. */
export const reportedDownAddress = (className: unknown, message: unknown): string | undefined => {
  const prefix = "Received status change to DOWN for host "
  return className === "ControlConnection" && typeof message === "string" && message.startsWith(prefix)
    ? message.slice(prefix.length)
    : undefined
}

const settingNames: ReadonlyArray<keyof NodeHealthOptions> = ["checkInterval", "suspectAfter", "downAfter"]

/**
 * Reads the `nodeHealth` option before the session connects: undefined when it is `false`, the thresholds otherwise.
 * A Configuration error names the setting for anything that would not work as written: a value that is not an object,
 * an unknown setting (a misspelt one would be ignored), a duration that is not positive and finite, and thresholds out
 * of order (a check less often than `suspectAfter` makes both thresholds a multiple of the interval).
 */
export const makeThresholds = (
  options: unknown
): Effect.Effect<HealthThresholds | undefined, CassandraError.CassandraError> =>
  Effect.gen(function* () {
    if (options === false) return undefined
    if (options === undefined) return defaultThresholds
    if (typeof options !== "object" || options === null || Array.isArray(options)) {
      return yield* Effect.fail(CassandraError.configuration("nodeHealth must be an object of settings, or false"))
    }
    const input: Partial<Record<keyof NodeHealthOptions, unknown>> = {}
    try {
      for (const key of Object.keys(options)) {
        if (!settingNames.includes(key as keyof NodeHealthOptions)) {
          return yield* Effect.fail(
            CassandraError.configuration(`nodeHealth has no setting ${key}: use ${settingNames.join(", ")}`)
          )
        }
        input[key as keyof NodeHealthOptions] = (options as Record<string, unknown>)[key]
      }
    } catch {
      return yield* Effect.fail(CassandraError.configuration("nodeHealth could not be read"))
    }
    const setting = (name: keyof NodeHealthOptions, fallback: number) => {
      const value = input[name]
      if (value === undefined) return Effect.succeed(fallback)
      const millis = durationMillis(value, false)
      return typeof millis === "string"
        ? Effect.fail(CassandraError.configuration(`nodeHealth.${name} ${millis}`))
        : Effect.succeed(millis)
    }
    const thresholds: HealthThresholds = {
      checkIntervalMillis: yield* setting("checkInterval", defaultThresholds.checkIntervalMillis),
      suspectAfterMillis: yield* setting("suspectAfter", defaultThresholds.suspectAfterMillis),
      downAfterMillis: yield* setting("downAfter", defaultThresholds.downAfterMillis)
    }
    if (thresholds.downAfterMillis < thresholds.suspectAfterMillis) {
      return yield* Effect.fail(
        CassandraError.configuration(
          `nodeHealth.downAfter (${thresholds.downAfterMillis} ms) must be at least nodeHealth.suspectAfter (${thresholds.suspectAfterMillis} ms)`
        )
      )
    }
    if (thresholds.checkIntervalMillis > thresholds.suspectAfterMillis) {
      return yield* Effect.fail(
        CassandraError.configuration(
          `nodeHealth.checkInterval (${thresholds.checkIntervalMillis} ms) must be at most nodeHealth.suspectAfter (${thresholds.suspectAfterMillis} ms)`
        )
      )
    }
    return thresholds
  })

// The driver's connection internals read here (cassandra-driver 4.10, lib/connection.js and host-connection-pool.js).
interface DriverConnection {
  readonly netClient?: { readonly bytesRead: number } | undefined
  readonly timedOutOperations: number
  getInFlight(): number
  sendStream(request: unknown, options: null, callback: (error?: Error) => void): unknown
}

interface DriverHost {
  readonly pool: { readonly connections: ReadonlyArray<DriverConnection> }
  removeFromPool(connection: DriverConnection): void
}

const internals = (host: Cassandra.Host) => host as unknown as DriverHost

/** The driver's OPTIONS request, the one its own heartbeat sends; undefined if a driver upgrade moved it. */
const optionsRequest: unknown = (() => {
  try {
    return (createRequire(import.meta.url)("cassandra-driver/lib/requests.js") as { readonly options?: unknown })
      .options
  } catch {
    return undefined
  }
})()

/** Whether probes can be sent: the unit tests fail if a driver upgrade moves the request. */
export const canProbe: boolean = optionsRequest !== undefined

const observe = (connections: ReadonlyArray<DriverConnection>): Observation => {
  let bytesRead = 0
  let inFlight = 0
  let timedOut = 0
  for (const connection of connections) {
    bytesRead += connection.netClient?.bytesRead ?? 0
    inFlight += connection.getInFlight()
    timedOut += connection.timedOutOperations
  }
  return { bytesRead, inFlight, timedOut }
}

/**
 * Watches every node the session is connected to, for as long as the scope is open: distrusted nodes go to the back of
 * query plans (when the session's policy is the health-aware one) and are probed, unresponsive ones have their
 * connections closed so that the driver marks them down through its own path (`hostDown`, the topology's `NodeDown`,
 * the control connection moving elsewhere) and brings them back (`NodeUp`) when a connection opens again. Does
 * nothing when `thresholds` is undefined (`nodeHealth: false`, see {@link makeThresholds}).
 */
export const watchNodeHealth = Effect.fnUntraced(function* (
  client: Cassandra.Client,
  thresholds: HealthThresholds | undefined
) {
  if (thresholds === undefined) return
  // The options the client was built with, defaults filled in (the driver's typings leave the property out).
  const policy = (client as unknown as { readonly options?: Cassandra.ClientOptions }).options?.policies?.loadBalancing
  const avoidance = policy instanceof HealthAwarePolicy ? policy : undefined
  // Weak: a node removed from the cluster is forgotten with its Host.
  const watches = new WeakMap<Cassandra.Host, Watch>()
  const probing = new WeakSet<DriverConnection>()
  const reportedDown = new Set<string>()

  const onLog = (_level: unknown, className: unknown, message: unknown) => {
    const address = reportedDownAddress(className, message)
    if (address !== undefined) reportedDown.add(address)
  }
  yield* Effect.acquireRelease(
    Effect.sync(() => client.on("log", onLog)),
    () => Effect.sync(() => client.off("log", onLog))
  )
  if (avoidance !== undefined) {
    // A node restarted between two checks was never seen down: its coming up ends its refusals.
    const onUp = (host: Cassandra.Host) => avoidance.restarted(host)
    yield* Effect.acquireRelease(
      Effect.sync(() => client.on("hostUp", onUp)),
      () => Effect.sync(() => client.off("hostUp", onUp))
    )
  }

  const probe = (connections: ReadonlyArray<DriverConnection>) => {
    if (optionsRequest === undefined) return
    for (const connection of connections) {
      if (probing.has(connection)) continue
      probing.add(connection)
      connection.sendStream(optionsRequest, null, () => probing.delete(connection))
    }
  }

  // A monotonic clock: a wall-clock step is not silence either.
  let lastCheckAt: number | undefined
  const check = Effect.suspend(() => {
    const now = performance.now()
    // Timers run before sockets are read: after a pause of this process (a long synchronous task, its own GC, the
    // machine suspended), the check comes late and the answers received meanwhile are not counted yet. A check up to
    // one interval late is ordinary timer lag on a loaded machine and counts.
    const pausedMillis =
      lastCheckAt === undefined ? 0 : Math.max(0, now - lastCheckAt - 2 * thresholds.checkIntervalMillis)
    lastCheckAt = now
    let avoided: Set<Cassandra.Host> | undefined
    let markedDown: Array<string> | undefined
    for (const host of client.hosts.values()) {
      const connections = internals(host).pool.connections
      if (!host.isUp() || connections.length === 0) {
        watches.delete(host)
        continue
      }
      const seen = observe(connections)
      const reported = reportedDown.delete(host.address)
      const { watch, verdict } = assess(watches.get(host), seen, now, thresholds, reported, pausedMillis)
      watches.set(host, watch)
      if (verdict === "healthy") continue
      if (verdict === "suspect") {
        avoided ??= new Set()
        avoided.add(host)
        if (watch.silentSince !== undefined) probe(connections)
        continue
      }
      watches.delete(host)
      const silence = Duration.format(Duration.millis(Math.round(now - (watch.silentSince ?? now))))
      markedDown ??= []
      markedDown.push(`${host.address} received nothing for ${silence} with ${seen.inFlight} requests outstanding`)
      for (const connection of connections) internals(host).removeFromPool(connection)
    }
    reportedDown.clear()
    // A node that refused requests as it shuts down stays avoided until the driver marks it down, or for as long as a
    // node whose attempt timed out, should it stay up.
    if (avoidance !== undefined) {
      for (const [host, refusedAt] of avoidance.stopping) {
        if (!host.isUp() || now - refusedAt >= thresholds.downAfterMillis) {
          avoidance.stopping.delete(host)
          continue
        }
        avoided ??= new Set()
        avoided.add(host)
      }
      if (avoided !== undefined || avoidance.avoided.size > 0) avoidance.avoided = avoided ?? noNode
    }
    return markedDown === undefined
      ? Effect.void
      : Effect.logWarning(
          `Marking down nodes that stopped answering (their idempotent requests are retried on other nodes, the others fail with a Connection reason and may or may not have been applied): ${markedDown.join("; ")}`
        )
  })

  yield* check.pipe(
    Effect.repeat(Schedule.spaced(Duration.millis(thresholds.checkIntervalMillis))),
    Effect.annotateLogs({ component: "NodeHealth" }),
    Effect.forkScoped
  )
})
