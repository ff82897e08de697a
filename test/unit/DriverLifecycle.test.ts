import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import type * as DriverLifecycle from "../../src/internal/driverLifecycle.ts"
import { superviseDriverLifecycle } from "../../src/internal/driverLifecycle.ts"
import { until } from "../support/requestRunner.ts"

// The driver's own ControlConnection and host map, driven through the calls it makes when it (re)connects; nothing
// here talks to a server.

interface ControlConnectionInternals {
  readonly host: Cassandra.Host | null
  _setLocalInfo(initializing: boolean, setCurrentHost: boolean, connection: { endpoint: string }, result: unknown): void
  _refresh(hostIterator?: Iterator<Cassandra.Host>): Promise<void>
  _refreshControlConnection(hostIterator: Iterator<Cassandra.Host>): Promise<void>
  _reconnectionPolicy: unknown
  _reconnectionSchedule: unknown
}

const endpoint = "127.0.0.1:9042"
const modulePath = new URL("../../src/internal/driverLifecycle.ts", import.meta.url).href

const systemLocal = {
  rows: [
    {
      data_center: "dc1",
      rack: "rack1",
      tokens: ["0"],
      host_id: Cassandra.types.Uuid.random(),
      release_version: "5.0.9",
      partitioner: "org.apache.cassandra.dht.Murmur3Partitioner"
    }
  ]
}

// Port 1 refuses at once: the integration suite's own node may be listening on 127.0.0.1:9042 while these run.
const unconnectedClient = () => {
  const client = new Cassandra.Client({
    contactPoints: ["127.0.0.1"],
    protocolOptions: { port: 1 },
    localDataCenter: "dc1"
  })
  const control = (client as unknown as { readonly controlConnection: ControlConnectionInternals }).controlConnection
  return { client, control }
}

/** A TCP server on 127.0.0.1:`port` for as long as the scope is open. */
const listenOn = (port: number) =>
  Effect.acquireRelease(
    Effect.callback<Net.Server>((resume) => {
      const server = Net.createServer((socket) => socket.destroy())
      server.listen({ host: "127.0.0.1", port }, () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void)))
  )

/** A port on 127.0.0.1 that nothing listens on. */
const freePort = Effect.scoped(Effect.map(listenOn(0), (server) => (server.address() as Net.AddressInfo).port))

const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length

/**
 * Runs `effect`, then returns it with the timers armed meanwhile that are still pending and keep the process alive
 * (Node marks a timer that fired or was cleared as destroyed).
 */
const timersLeftBy = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const armed: Array<NodeJS.Timeout> = []
    const setTimeout = globalThis.setTimeout
    globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
      const timer = setTimeout(...args)
      armed.push(timer)
      return timer
    }) as typeof setTimeout
    const result = yield* Effect.ensuring(
      effect,
      Effect.sync(() => {
        globalThis.setTimeout = setTimeout
      })
    )
    // A timer whose callback is running (the one that woke `effect` up) is marked destroyed once it returns.
    yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
    const left = armed.filter((timer) => timer.hasRef() && !(timer as unknown as { _destroyed: boolean })._destroyed)
    return { result, left: left.length }
  })

/** The parts of the control connection the session replaces while it is open, to compare with the driver's own. */
const patchable = (control: ControlConnectionInternals) => ({
  setLocalInfo: control._setLocalInfo,
  refresh: control._refresh,
  policy: control._reconnectionPolicy,
  schedule: control._reconnectionSchedule
})

const warnings: Array<string> = []
const capturingWarnings = Logger.layer([
  Logger.make(({ logLevel, message }) => {
    if (logLevel === "Warn") warnings.push(String(message))
  })
])

/**
 * A known node at 127.0.0.1:`port` that the driver reports down, under a supervised session in the current scope;
 * `reconnections` counts the reconnections asked of the driver for it, and `probeRounds` waits until `count` rounds of
 * probes have ended (each round looks at the node's distance first: the next one's look says the last one ended).
 */
const supervisedDownNode = (port: number) =>
  Effect.gen(function* () {
    const { client, control } = unconnectedClient()
    control._setLocalInfo(true, true, { endpoint: `127.0.0.1:${port}` }, systemLocal)
    const host = client.hosts.get(`127.0.0.1:${port}`) as Cassandra.Host & { checkIsUp(): void }
    let reconnections = 0
    host.checkIsUp = () => {
      reconnections++
    }
    host.isUp = () => false
    let looks = 0
    ;(client as unknown as { profileManager: { getDistance(): number } }).profileManager.getDistance = () => {
      looks++
      return 0
    }
    yield* superviseDriverLifecycle(client)
    client.emit("hostDown", host)
    return {
      reconnections: () => reconnections,
      probeRounds: (count: number) =>
        until(
          Effect.sync(() => looks),
          (seen) => seen > count,
          `${count} rounds of probes, 500 ms apart`
        )
    }
  })

/**
 * Opens and closes a supervised session while its control connection reconnects; every node it tries fails a little
 * after the close. Returns the reconnection, still in flight.
 */
const reconnectionFailingAfterClose = (client: Cassandra.Client, control: ControlConnectionInternals) => {
  control._refreshControlConnection = () =>
    new Promise((_, reject) => setTimeout(() => reject(new Error("no node answered")), 100))
  return Effect.scoped(
    Effect.gen(function* () {
      yield* superviseDriverLifecycle(client)
      return control._refresh([][Symbol.iterator]()).catch(() => undefined)
    })
  )
}

describe("driver lifecycle", () => {
  it.live("a failed control-connection reconnection leaves no driver timer behind once the session is closed", () =>
    Effect.gen(function* () {
      const { client, control } = unconnectedClient()
      const before = timers()
      yield* Effect.scoped(
        Effect.gen(function* () {
          yield* superviseDriverLifecycle(client)
          // The control connection lost its node and reaches no other: the driver schedules its next attempt.
          yield* Effect.promise(() => control._refresh().catch(() => undefined))
        })
      )
      assert.isAtMost(timers(), before, "a timer of the closed session is still armed")
    })
  )

  it.effect("a control connection starting over after a full outage keeps the host entry of a node it knows", () =>
    Effect.gen(function* () {
      const { client, control } = unconnectedClient()
      control._setLocalInfo(true, true, { endpoint }, systemLocal)
      const known = client.hosts.get(endpoint)
      assert.isDefined(known)
      const changes: Array<string> = []
      client.hosts.on("remove", (host: Cassandra.Host) => changes.push(`remove ${host.address}`))
      client.hosts.on("add", (host: Cassandra.Host) => changes.push(`add ${host.address}`))

      yield* superviseDriverLifecycle(client)
      // What the driver does when it reconnects from its contact points once every node was down.
      control._setLocalInfo(true, true, { endpoint }, systemLocal)

      assert.deepStrictEqual(changes, [], "a node that only restarted was removed and added again")
      assert.strictEqual(client.hosts.get(endpoint), known)
      assert.strictEqual(control.host, known)

      // A node the driver did not know is still added.
      control._setLocalInfo(true, true, { endpoint: "127.0.0.2:9042" }, systemLocal)
      assert.deepStrictEqual(changes, ["add 127.0.0.2:9042"])
    }).pipe(Effect.scoped)
  )

  it.live(
    "a down node is reconnected to as soon as its port accepts again, and a port that never refused is left alone",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const node = yield* supervisedDownNode(port)
        // Refused for a while: the back-off alone governs the retries of a dead address.
        yield* node.probeRounds(3)
        assert.strictEqual(node.reconnections(), 0)
        yield* listenOn(port)
        yield* Effect.sync(node.reconnections).pipe(
          Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (count) => count > 0 }),
          Effect.timeout("10 seconds")
        )
        assert.strictEqual(node.reconnections(), 1)
      }).pipe(Effect.scoped)
  )

  it.live("a node whose port accepts all along while it is down (frozen) gets no reconnection from the probe", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      yield* listenOn(port)
      const node = yield* supervisedDownNode(port)
      // Several probe rounds: the port accepted from the first one on, so none says the node came back.
      yield* node.probeRounds(3)
      assert.strictEqual(node.reconnections(), 0)
    }).pipe(Effect.scoped)
  )

  it.live("two sessions over one client, closed in the order they opened, leave the driver exactly as it was", () =>
    Effect.gen(function* () {
      const { client, control } = unconnectedClient()
      const driver = patchable(control)
      const first = yield* Scope.make()
      const second = yield* Scope.make()
      yield* Scope.provide(first)(superviseDriverLifecycle(client))
      yield* Scope.provide(second)(superviseDriverLifecycle(client))
      yield* Scope.close(first, Exit.void)
      // The session still open keeps the control connection's retry: a failed reconnection arms no driver timer,
      // and is retried after the back-off.
      let failedAttempts = 0
      const onAttempt = (error: Error | null) => {
        if (error !== null) failedAttempts++
      }
      ;(control as unknown as NodeJS.EventEmitter).on("newConnection", onAttempt)
      const { left } = yield* timersLeftBy(Effect.promise(() => control._refresh().catch(() => undefined)))
      assert.strictEqual(left, 0, "the remaining session lost the control connection's retry")
      yield* Effect.sync(() => failedAttempts).pipe(
        Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (count) => count >= 2 }),
        Effect.timeout("10 seconds")
      )
      ;(control as unknown as NodeJS.EventEmitter).off("newConnection", onAttempt)
      yield* Scope.close(second, Exit.void)
      assert.deepStrictEqual(patchable(control), driver, "the driver's own methods are not back once both closed")
    })
  )

  it.live("two copies of the library supervising one client share one installation", () =>
    Effect.gen(function* () {
      const copy = yield* Effect.promise(
        // The same file under another URL: a module instance of its own, as a second copy in node_modules would be.
        () => import(`${modulePath}?second-copy`) as Promise<typeof DriverLifecycle>
      )
      assert.notStrictEqual(copy.superviseDriverLifecycle, superviseDriverLifecycle, "not a second copy")
      const { client, control } = unconnectedClient()
      const driver = patchable(control)
      const first = yield* Scope.make()
      const second = yield* Scope.make()
      yield* Scope.provide(first)(superviseDriverLifecycle(client))
      yield* Scope.provide(second)(copy.superviseDriverLifecycle(client))
      yield* Scope.close(first, Exit.void)
      const { left } = yield* timersLeftBy(Effect.promise(() => control._refresh().catch(() => undefined)))
      assert.strictEqual(left, 0, "the copy still open lost the control connection's retry")
      yield* Scope.close(second, Exit.void)
      assert.deepStrictEqual(patchable(control), driver)
    })
  )

  it.live("nothing is armed or probed while every node is up", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const server = yield* listenOn(port)
      let probes = 0
      server.on("connection", () => probes++)
      const { client, control } = unconnectedClient()
      control._setLocalInfo(true, true, { endpoint: `127.0.0.1:${port}` }, systemLocal)
      const host = client.hosts.get(`127.0.0.1:${port}`)!
      host.isUp = () => true
      // The look ends by asking whether the control connection is open, the last thing it reads of the client.
      let looks = 0
      ;(control as unknown as { connection: { readonly isSocketOpen: boolean } }).connection = {
        get isSocketOpen() {
          looks++
          return true
        }
      }
      const { left } = yield* timersLeftBy(
        Effect.gen(function* () {
          yield* superviseDriverLifecycle(client)
          // A node reported down that is up again by the time it is looked at: one look, then nothing.
          client.emit("hostDown", host)
          yield* until(
            Effect.sync(() => looks),
            (seen) => seen >= 1,
            "the look at the nodes after the DOWN event to end (asking whether the control connection is open)"
          )
        })
      )
      assert.strictEqual(left, 0, "a timer is armed while every node is up")
      assert.strictEqual(probes, 0, "a node that is up was probed")
    }).pipe(Effect.scoped)
  )

  it.live("a reconnection in flight when the session closes arms no timer that keeps the process alive", () =>
    Effect.gen(function* () {
      const { client, control } = unconnectedClient()
      const refreshing = yield* reconnectionFailingAfterClose(client, control)
      const { left } = yield* timersLeftBy(Effect.promise(() => refreshing))
      assert.strictEqual(left, 0, "a driver timer armed by a reconnection that failed after the close")
      // The driver's retry is still armed, unreferenced: the client keeps its reconnection until it is shut down.
      yield* Effect.promise(() => client.shutdown())
    })
  )

  it.live("a session opened while a closed one's reconnection is in flight takes that reconnection over", () =>
    Effect.gen(function* () {
      const { client, control } = unconnectedClient()
      const driver = patchable(control)
      const refreshing = yield* reconnectionFailingAfterClose(client, control)
      const next = yield* Scope.make()
      yield* Scope.provide(next)(superviseDriverLifecycle(client))
      const { left } = yield* timersLeftBy(Effect.promise(() => refreshing))
      assert.strictEqual(left, 0)
      yield* Scope.close(next, Exit.void)
      delete (control as Partial<ControlConnectionInternals>)._refreshControlConnection
      assert.deepStrictEqual(patchable(control), driver, "the driver's own methods are not back once both closed")
    })
  )

  // What a driver release that renamed or dropped an internal would look like; the driver defines some of them
  // read-only, so those are shadowed on an object deriving from the client instead.
  const without = (client: Cassandra.Client, name: string): Cassandra.Client =>
    Object.defineProperty(Object.create(client), name, { value: undefined })
  const controlWithout = (client: Cassandra.Client, name: string): Cassandra.Client => {
    Object.defineProperty((client as unknown as Record<string, object>).controlConnection, name, {
      value: undefined,
      writable: true
    })
    return client
  }
  for (const [missing, remove] of [
    ["controlConnection", (client: Cassandra.Client) => without(client, "controlConnection")],
    ["profileManager", (client: Cassandra.Client) => without(client, "profileManager")],
    ["controlConnection._setLocalInfo", (client: Cassandra.Client) => controlWithout(client, "_setLocalInfo")],
    ["controlConnection._refresh", (client: Cassandra.Client) => controlWithout(client, "_refresh")],
    [
      "controlConnection._reconnectionPolicy",
      (client: Cassandra.Client) => controlWithout(client, "_reconnectionPolicy")
    ]
  ] as const) {
    it.live(`a driver without ${missing} is served unsupervised, and that is reported`, () =>
      Effect.gen(function* () {
        const client = remove(unconnectedClient().client)
        warnings.length = 0
        yield* Effect.scoped(superviseDriverLifecycle(client))
        assert.strictEqual(warnings.length, 1, warnings.join("\n"))
        assert.include(warnings[0], missing)
      }).pipe(Effect.provide(capturingWarnings))
    )
  }
})
