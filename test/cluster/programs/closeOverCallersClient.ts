/**
 * A session over a caller-owned client, closed while the client's control connection is reconnecting: the client must
 * stay the caller's, working and with the driver's own methods, until the caller shuts it down, after which the
 * process must exit by itself. Started by test/cluster/Session.shutdown.test.ts against a one-node cluster at
 * CASSANDRA_CONTACT_POINTS, it prints one line per step:
 *
 * - `connected`: the session is serving, with one request outstanding at any time; the test then freezes the node;
 * - `closed`: the health monitor marked the frozen node down, the driver started over from the contact points and the
 *   session was closed while that attempt waited for the frozen node; the test then resumes the node;
 * - `served`: the client answered the caller again once its control connection was back, and the library left none
 *   of its corrections on the driver; the caller then shuts the client down.
 *
 * Anything else that happened is printed as `failed: <why>` (exit status 1). Should something keep the process alive
 * after its client was shut down, it prints the sockets and timers left after 45 seconds.
 *
 *   node --conditions=effect-cassandra/source test/cluster/programs/closeOverCallersClient.ts
 */
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Session from "effect-cassandra/Session"
import { print, reportLeftovers } from "./leftovers.ts"

/** How long the caller waits for its client to answer again once the node was resumed. */
const answerAgainWithin = 45_000

/** Resolves when the driver starts a new control connection from the contact points after its node went down. */
const reconnectingFromScratch = (client: Cassandra.Client) =>
  new Promise<void>((resolve) => {
    let down = false
    client.on("hostDown", () => (down = true))
    client.on("log", (_level: unknown, className: unknown, message: unknown) => {
      if (down && className === "ControlConnection" && message === "Getting first connection") resolve()
    })
  })

/** The driver's control connection, as far as it tells whether the library's corrections are still on it. */
interface ControlConnection {
  readonly connection: { readonly isSocketOpen: boolean } | null
  readonly _reconnectionPolicy: unknown
}

/** What the library still has on the driver's control connection: each should be the driver's own again. */
const leftCorrections = (client: Cassandra.Client): ReadonlyArray<string> => {
  const control = (client as unknown as { readonly controlConnection: ControlConnection }).controlConnection
  const policy = (client as unknown as { readonly options: Cassandra.ClientOptions }).options.policies?.reconnection
  return [
    ...["_refresh", "_setLocalInfo"].filter((method) => Object.hasOwn(control, method)),
    ...(control._reconnectionPolicy === policy ? [] : ["_reconnectionPolicy"]),
    ...Object.getOwnPropertySymbols(control).flatMap((key) =>
      Symbol.keyFor(key)?.startsWith("effect-cassandra/") === true ? [String(key)] : []
    )
  ]
}

/** The client's hosts and control connection as the driver sees them, for a failure's message. */
const state = (client: Cassandra.Client) => {
  const control = (client as unknown as { readonly controlConnection: ControlConnection }).controlConnection
  const hosts = (
    client.hosts.values() as unknown as ReadonlyArray<
      Cassandra.Host & { readonly pool: { connections: ReadonlyArray<unknown> } }
    >
  ).map((host) => `${host.address} up ${host.isUp()} with ${host.pool.connections.length} connections`)
  return `hosts: ${hosts.join(", ")}; control connection open: ${control.connection?.isSocketOpen === true}`
}

const answersAgain = async (client: Cassandra.Client) => {
  const control = (client as unknown as { readonly controlConnection: ControlConnection }).controlConnection
  const deadline = Date.now() + answerAgainWithin
  for (;;) {
    try {
      await client.execute("SELECT release_version FROM system.local")
      if (control.connection?.isSocketOpen === true) return
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${String(error)} (${state(client)})`)
    }
    if (Date.now() > deadline) throw new Error(`the control connection did not come back (${state(client)})`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

const client = new Cassandra.Client({
  contactPoints: (process.env.CASSANDRA_CONTACT_POINTS ?? "").split(","),
  localDataCenter: process.env.CASSANDRA_LOCAL_DC ?? "datacenter1",
  encoding: Session.encoding,
  // Longer than the test takes to resume the node, so that the attempt in flight gets its answer.
  socketOptions: { connectTimeout: 60_000 }
})
await client.connect()

await Effect.runPromise(
  Effect.gen(function* () {
    const session = yield* Session.makeFromClient(client, {
      drainTimeout: "1 second",
      nodeHealth: { checkInterval: "100 millis", suspectAfter: "200 millis", downAfter: "1 second" }
    })
    const reconnecting = reconnectingFromScratch(client)
    // An outstanding request is what lets the health monitor tell a frozen node from an idle one.
    yield* session
      .execute({ query: "SELECT release_version FROM system.local", params: [], options: {} })
      .pipe(Effect.ignore, Effect.andThen(Effect.sleep("100 millis")), Effect.forever, Effect.forkScoped)
    print("connected")
    yield* Effect.promise(() => reconnecting)
  }).pipe(Effect.scoped)
)
print("closed")

try {
  await answersAgain(client)
  const left = leftCorrections(client)
  if (left.length > 0) throw new Error(`the library left ${left.join(", ")} on the driver`)
  print("served")
} catch (error) {
  print(`failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
}
await client.shutdown()

reportLeftovers()
