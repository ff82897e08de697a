/**
 * A session closed while its control connection is reconnecting, in a process that must then exit by itself.
 * Started by test/cluster/Session.shutdown.test.ts against a one-node cluster at CASSANDRA_CONTACT_POINTS, it prints
 * one line per step:
 *
 * - `connected`: the session is serving, with one request outstanding at any time; the test then freezes the node;
 * - `closed`: the health monitor marked the frozen node down, the driver started over from the contact points (its
 *   only node is down) and the session was closed while that connection attempt waited for the frozen node; the test
 *   then resumes the node, which answers the attempt.
 *
 * Once closed, nothing may keep the process alive. Should something still do so after 45 seconds, it prints the
 * sockets and timers left (on a timer that does not keep the process alive itself).
 *
 *   node --conditions=effect-cassandra/source test/cluster/programs/closeWhileReconnecting.ts
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Session from "effect-cassandra/Session"
import { print, reportLeftovers } from "./leftovers.ts"

/** Resolves when the driver starts a new control connection from the contact points after its node went down. */
const reconnectingFromScratch = (client: Session.Session["client"]) =>
  new Promise<void>((resolve) => {
    let down = false
    client.on("hostDown", () => (down = true))
    client.on("log", (_level: unknown, className: unknown, message: unknown) => {
      if (down && className === "ControlConnection" && message === "Getting first connection") resolve()
    })
  })

const program = Effect.gen(function* () {
  const session = yield* Session.make({
    contactPoints: (process.env.CASSANDRA_CONTACT_POINTS ?? "").split(","),
    localDataCenter: process.env.CASSANDRA_LOCAL_DC ?? "datacenter1",
    // Longer than the test takes to resume the node, so that the attempt in flight gets its answer; a test that leaves
    // the node frozen waits this long for the attempt to give up, and sets it shorter (CONNECT_TIMEOUT_SECONDS).
    connectTimeout: Duration.seconds(Number(process.env.CONNECT_TIMEOUT_SECONDS ?? 60)),
    drainTimeout: "1 second",
    nodeHealth: { checkInterval: "100 millis", suspectAfter: "200 millis", downAfter: "1 second" }
  })
  const reconnecting = reconnectingFromScratch(session.client)
  // An outstanding request is what lets the health monitor tell a frozen node from an idle one.
  yield* session
    .execute({ query: "SELECT release_version FROM system.local", params: [], options: {} })
    .pipe(Effect.ignore, Effect.andThen(Effect.sleep("100 millis")), Effect.forever, Effect.forkScoped)
  print("connected")
  yield* Effect.promise(() => reconnecting)
}).pipe(Effect.scoped)

await Effect.runPromise(program)
print("closed")

reportLeftovers()
