/**
 * Keeps the driver's view of the cluster sound across outages, for as long as a session's scope is open.
 *
 * Three driver behaviours are corrected, read from `cassandra-driver` 4.10's lib/control-connection.js and host.js:
 * - When every node was down, the control connection starts over from the contact points as if it connected for the
 *   first time: it builds a new `Host` for the node it reaches and puts it in the host map in place of the known one.
 *   The map reports that as a removal plus an addition (a node that only restarted looked removed), and nothing ever
 *   shuts the replaced entry down, so its 200 ms health interval and reconnection timer keep the process alive after
 *   the client is closed. The known entry is kept instead: the driver's own path for a node it already knows; one
 *   marked down is marked up once the connection is in its pool, as the fresh entry would have started.
 * - A down node is retried on the reconnection back-off (up to a minute apart by default), also once it answers
 *   again, and the control connection reconnects only on its own back-off timer. While any node is down, its native
 *   port is probed with a plain TCP connect; when an address that refused or timed out starts accepting, the driver
 *   reconnects to it at once, and so does the control connection if it has none. The back-off keeps bounding the
 *   retries of dead addresses; nothing is probed while every node is up.
 * - Shutting the client down does not stop a reconnection of the control connection in flight. When every node was
 *   down it connects from the contact points again, and hands the connection it gets to the node's pool after that
 *   pool was shut down (a node it discovers meanwhile even gets a new pool): nothing closes them, and their sockets
 *   and timers keep the process alive. Once a reconnection settles after the client began shutting down, what it
 *   left is shut down too.
 *
 * All rely on driver internals, so they are installed only when the driver has them (else the session serves with
 * a warning naming what is missing), once per client however many sessions (or copies of this library) run over it,
 * and the driver's own methods are put back when the last of those sessions closed and no reconnection started
 * under them is still running.
 */
import * as Net from "node:net"
import type * as Cassandra from "cassandra-driver"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"

/** The parts of the driver's internal ControlConnection this module uses (4.10, lib/control-connection.js). */
interface ControlConnection {
  connection: ({ readonly isSocketOpen: boolean } & DriverConnection) | null
  host: Cassandra.Host | null
  readonly hosts: { get(key: string): Cassandra.Host | undefined }
  _reconnectionPolicy: Cassandra.policies.reconnection.ReconnectionPolicy
  _reconnectionSchedule: Iterator<number>
  _setLocalInfo(
    initializing: boolean,
    setCurrentHost: boolean,
    connection: { readonly endpoint: string },
    result: unknown
  ): void
  _refresh(hostIterator?: unknown): Promise<void>
  emit(event: "newConnection", error: Error): boolean
  [installationKey]?: Installation
  [pendingRestoreKey]?: () => void
}

/**
 * A driver host, with the methods the driver itself calls when a node is reported up and when the client shuts down,
 * and its pool's connections (lib/host.js, host-connection-pool.js).
 */
type DriverHost = Cassandra.Host & {
  checkIsUp?(): void
  setUp?(): void
  shutdown?(waitForPending: boolean): Promise<void>
  readonly pool?: { readonly connections?: ReadonlyArray<DriverConnection> }
}

/** A driver connection; closing one twice is harmless (lib/connection.js). */
interface DriverConnection {
  close?(): void
}

interface Internals {
  readonly controlConnection: ControlConnection
  readonly profileManager: { getDistance(host: Cassandra.Host): number }
}

/**
 * The internals this module relies on that `client` lacks (another driver release may rename or drop them), as the
 * paths a maintainer would look for.
 */
const missingInternals = (client: Cassandra.Client): ReadonlyArray<string> => {
  const { controlConnection: control, profileManager } = client as unknown as {
    readonly controlConnection?: Record<string, unknown> | null
    readonly profileManager?: unknown
  }
  if (typeof control !== "object" || control === null) return ["controlConnection"]
  const methods: Array<[owner: unknown, path: string, method: string]> = [
    [control, "controlConnection._setLocalInfo", "_setLocalInfo"],
    [control, "controlConnection._refresh", "_refresh"],
    [control, "controlConnection.emit", "emit"],
    [control.hosts, "controlConnection.hosts", "get"],
    [control._reconnectionPolicy, "controlConnection._reconnectionPolicy", "newSchedule"],
    [control._reconnectionSchedule, "controlConnection._reconnectionSchedule", "next"],
    [profileManager, "profileManager", "getDistance"]
  ]
  return methods.flatMap(([owner, path, method]) =>
    typeof (owner as Record<string, unknown> | undefined)?.[method] === "function" ? [] : [path]
  )
}

/** The driver's `types.distance.ignored`: a host the load-balancing policy never uses. */
const ignoredDistance = 2

/** How often down nodes' ports are probed, and how long one probe may take. */
const probeInterval = Duration.millis(500)
const probeTimeout = Duration.seconds(1)

/**
 * The corrections installed on one client, shared by every session over it (several sessions over one caller-owned
 * client, or several copies of this library in one process), and removed when the last of them closes: the key is
 * global so that every copy finds it, and the removal is a plain promise so that no copy runs another's effects.
 */
const installationKey = Symbol.for("effect-cassandra/driverLifecycle")

interface Installation {
  sessions: number
  readonly uninstall: () => Promise<void>
}

/**
 * Where a closed installation waiting for a reconnection to settle leaves its restoration: a new installation runs
 * it first, so that it wraps the driver's own methods and the reconnection's failure goes to the new session.
 */
const pendingRestoreKey = Symbol.for("effect-cassandra/driverLifecycle/pendingRestore")

/**
 * What the corrections replaced on the control connection, put back once the last session closed and no
 * reconnection that started under them is still running (it reads the replaced schedule when it fails).
 */
class Patches {
  private readonly restores: Array<() => void> = []
  private refreshing = 0
  open = true
  private readonly control: ControlConnection

  constructor(control: ControlConnection) {
    this.control = control
    control[pendingRestoreKey]?.()
  }

  /** Replaces `name` on `target`; `restore` puts back what `replacement` stands for, if the driver kept it. */
  override<T extends object, K extends keyof T>(
    target: T,
    name: K,
    replacement: (original: T[K]) => T[K],
    restore: (current: T[K], original: T[K], installed: T[K]) => T[K] | undefined = (current, original, installed) =>
      current === installed ? original : undefined
  ): void {
    const original = target[name]
    // The driver's methods live on its prototype: an own property shadowing one is deleted, not left behind.
    const inherited = !Object.hasOwn(target, name)
    const installed = replacement(original)
    target[name] = installed
    this.restores.push(() => {
      const restored = restore(target[name], original, installed)
      if (restored === undefined) return
      if (inherited && restored === original) delete target[name]
      else target[name] = restored
    })
  }

  /** Counts a reconnection of the control connection until it settles. */
  track(refresh: Promise<void>): Promise<void> {
    this.refreshing++
    const settled = () => {
      this.refreshing--
      this.restoreWhenIdle()
    }
    refresh.then(settled, settled)
    return refresh
  }

  close(): void {
    this.open = false
    this.restoreWhenIdle()
    if (this.restores.length > 0) this.control[pendingRestoreKey] = this.restore
  }

  private restoreWhenIdle(): void {
    if (!this.open && this.refreshing === 0) this.restore()
  }

  private readonly restore = (): void => {
    if (this.control[pendingRestoreKey] === this.restore) delete this.control[pendingRestoreKey]
    for (const restore of this.restores.splice(0).reverse()) restore()
  }
}

/** A re-initialising control connection that reaches a node it already knows keeps that node's host entry. */
const keepKnownHosts = (control: ControlConnection, patches: Patches) =>
  patches.override(
    control,
    "_setLocalInfo",
    (setLocalInfo) =>
      function (this: ControlConnection, initializing, setCurrentHost, connection, result) {
        const known = initializing && this.hosts.get(connection.endpoint) !== undefined
        return setLocalInfo.call(this, initializing && !known, setCurrentHost, connection, result)
      }
  )

/**
 * Shuts every host down again (which stops its health timer and any pending reconnection, and closes its pool's
 * connections) and closes any connection still held by a pool or the control connection.
 */
const closeWhatShutdownLeft = (client: Cassandra.Client & Internals): void => {
  for (const host of client.hosts.values() as ReadonlyArray<DriverHost>) {
    Promise.resolve(host.shutdown?.(false)).catch(() => undefined)
    // A pool still closing the connections the client's own shutdown took from it keeps one handed to it since.
    for (const connection of host.pool?.connections ?? []) connection.close?.()
  }
  client.controlConnection.connection?.close?.()
}

/**
 * Marks up the node the control connection reconnected to, if it is marked down. Starting over from the contact
 * points, it kept a known node's entry (see `keepKnownHosts`) and put its connection in that entry's pool: a down
 * entry's pool then counts as full, so its own reconnection opens nothing and the node would stay down for good, where
 * the fresh entry the driver would have made starts up.
 */
const bringReachedHostUp = (control: ControlConnection): void => {
  const host = control.host as DriverHost | null
  const connection = control.connection
  if (host === null || connection === null || !connection.isSocketOpen || host.isUp()) return
  if (host.pool?.connections?.includes(connection) === true) host.setUp?.()
}

/**
 * Runs as a reconnection of the control connection settles: once the client began shutting down, closes what it left
 * open; otherwise marks up the node it reached. Each driver internal is used only where the driver has it.
 */
const afterReconnection = (client: Cassandra.Client & Internals): void => {
  // The driver awaits the reconnection's promise: a throw here would become its failure.
  try {
    if ((client as { readonly isShuttingDown?: unknown }).isShuttingDown === true) closeWhatShutdownLeft(client)
    else bringReachedHostUp(client.controlConnection)
  } catch {
    // A driver whose internals changed shape: what could not be done is left as the driver left it.
  }
}

/** Thrown to the driver instead of a back-off delay, so that it arms no timer of its own. */
class RetryOwnedBySession extends Error {}

/**
 * Takes the control connection's reconnection over: the driver asks its schedule for the next delay and would arm a
 * timer nobody can cancel (it outlives `shutdown`); here the delay goes to `retries` instead and the driver gives up
 * that attempt, so that the retry runs in the session's scope, and can run early when a node answers again. An
 * attempt that fails after the last session closed is retried as the driver would, on a timer that does not keep the
 * process alive; one that settles once the client is shutting down leaves nothing open behind it.
 */
const ownControlReconnection = (
  client: Cassandra.Client & Internals,
  patches: Patches,
  retries: Queue.Queue<Duration.Duration>
) => {
  const control = client.controlConnection
  const owned = new WeakMap<Iterator<number>, Iterator<number>>()
  const own = (schedule: Iterator<number>): Iterator<number> => {
    const wrapper = {
      next: (): IteratorResult<number> => {
        const delay = Duration.millis(schedule.next().value ?? 0)
        if (patches.open) {
          Queue.offerUnsafe(retries, delay)
        } else {
          setTimeout(() => void control._refresh().catch(() => undefined), Duration.toMillis(delay)).unref()
        }
        // What the driver would tell its queries waiting for a connection, so that they fail now instead of timing out.
        control.emit(
          "newConnection",
          new Error(`The control connection could not reconnect: retrying in ${Duration.format(delay)}`)
        )
        throw new RetryOwnedBySession()
      }
    }
    owned.set(wrapper, schedule)
    return wrapper
  }
  patches.override(
    control,
    "_refresh",
    (refresh) =>
      function (this: ControlConnection, hostIterator) {
        return patches.track(refresh.call(this, hostIterator).finally(() => afterReconnection(client)))
      }
  )
  // The driver replaces the schedule with a new one of its policy after each success: whichever is current is put
  // back unwrapped.
  patches.override(control, "_reconnectionSchedule", own, (current) => owned.get(current))
  const policy = control._reconnectionPolicy
  patches.override(
    control,
    "_reconnectionPolicy",
    () => Object.assign(Object.create(policy), { newSchedule: () => own(policy.newSchedule()) }) as typeof policy
  )
}

/** Whether a TCP connection to `address` (`host:port`) is accepted within the probe timeout. */
const accepts = (address: string): Effect.Effect<boolean> =>
  Effect.callback<boolean>((resume) => {
    const separator = address.lastIndexOf(":")
    let socket: Net.Socket
    try {
      socket = Net.connect({
        host: address.slice(0, separator).replace(/^\[|\]$/g, ""),
        port: Number(address.slice(separator + 1)),
        timeout: Duration.toMillis(probeTimeout)
      })
    } catch {
      // An address the driver holds but Node cannot connect to (no port): it never answers a probe.
      return resume(Effect.succeed(false))
    }
    const settle = (accepted: boolean) => () => {
      socket.destroy()
      resume(Effect.succeed(accepted))
    }
    socket.once("connect", settle(true))
    socket.once("timeout", settle(false))
    socket.once("error", settle(false))
    return Effect.sync(() => socket.destroy())
  })

const hasControlConnection = (control: ControlConnection) => control.connection?.isSocketOpen === true

/**
 * Probes the down nodes until every node in use is up and the control connection is back; a node whose address did
 * not accept and now does is reconnected to at once, and `answered` is told.
 */
const reconnectWhenAnswering = (
  client: Cassandra.Client & Internals,
  answered: Queue.Queue<void>
): Effect.Effect<void> => {
  const accepted = new Map<string, boolean>()
  const round = Effect.gen(function* () {
    const down = client.hosts
      .values()
      .filter((host) => !host.isUp() && client.profileManager.getDistance(host) !== ignoredDistance)
    const answering = yield* Effect.forEach(
      down,
      (host) =>
        Effect.map(accepts(host.address), (now) => {
          const before = accepted.get(host.address)
          accepted.set(host.address, now)
          // A frozen node's kernel still accepts: only a change from not accepting to accepting says it is back.
          return now && before === false ? [host] : []
        }),
      { concurrency: "unbounded" }
    )
    for (const host of answering.flat()) (host as DriverHost).checkIsUp?.()
    if (answering.flat().length > 0) Queue.offerUnsafe(answered, undefined)
    return down.length === 0 && hasControlConnection(client.controlConnection)
  })
  return round.pipe(
    Effect.repeat({ schedule: Schedule.spaced(probeInterval), until: (recovered) => recovered }),
    Effect.asVoid
  )
}

/** Installs the corrections on a connected client until `patches` is closed (the probes and retries until `scope` is). */
const install = (client: Cassandra.Client & Internals, patches: Patches): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const control = client.controlConnection
    const retries = yield* Queue.sliding<Duration.Duration>(1)
    const answered = yield* Queue.sliding<void>(1)
    const nodeDown = yield* Queue.sliding<void>(1)
    keepKnownHosts(control, patches)
    ownControlReconnection(client, patches, retries)
    yield* Effect.addFinalizer(() => Effect.sync(() => patches.close()))
    const onDown = () => Queue.offerUnsafe(nodeDown, undefined)
    yield* Effect.acquireRelease(
      Effect.sync(() => client.on("hostDown", onDown)),
      () => Effect.sync(() => client.off("hostDown", onDown))
    )
    yield* Queue.take(nodeDown).pipe(
      Effect.andThen(reconnectWhenAnswering(client, answered)),
      Effect.forever,
      Effect.forkScoped
    )
    // After a failed attempt: the next one after the back-off delay, or at once when a node answers again. A
    // failure schedules the next attempt through `retries` again; a success ends the sequence.
    yield* Queue.take(retries).pipe(
      Effect.flatMap((delay) => Effect.raceFirst(Effect.sleep(delay), Queue.take(answered))),
      Effect.andThen(Effect.promise(() => control._refresh().catch(() => undefined))),
      Effect.forever,
      Effect.forkScoped
    )
  })

/**
 * Installs the corrections on a connected client for as long as the scope is open (and any other session's over
 * the same client); closing the last one stops every probe and retry, so nothing of them outlives the sessions, and
 * gives the driver its own methods back. A driver without the internals they rely on is served as it is, with a
 * warning naming what is missing. A session that shuts the client down closes this scope only after the shutdown:
 * a reconnection the driver starts until then (a node marked down as the session closes) is then still one whose
 * leftovers are closed once it settles; one started under the driver's own methods would leave them open.
 */
export const superviseDriverLifecycle = (driverClient: Cassandra.Client): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const missing = missingInternals(driverClient)
    if (missing.length > 0) {
      return yield* Effect.logWarning(
        `effect-cassandra: this cassandra-driver lacks ${missing.join(", ")}; the session runs without keeping ` +
          "host entries across a full outage and without reconnecting promptly to nodes that answer again"
      )
    }
    const client = driverClient as Cassandra.Client & Internals
    const control = client.controlConnection
    yield* Effect.acquireRelease(
      Effect.suspend(() => {
        const installed = control[installationKey]
        if (installed !== undefined) {
          installed.sessions++
          return Effect.succeed(installed)
        }
        const scope = Scope.makeUnsafe()
        const installation: Installation = {
          sessions: 1,
          uninstall: () => Effect.runPromise(Scope.close(scope, Exit.void))
        }
        control[installationKey] = installation
        return Effect.as(Scope.provide(scope)(install(client, new Patches(control))), installation)
      }),
      (installation) =>
        Effect.suspend(() => {
          if (--installation.sessions > 0) return Effect.void
          delete control[installationKey]
          return Effect.promise(installation.uninstall)
        })
    )
  })
