/**
 * A session closed while its only node is frozen, with the node marked down at the last moment before the client's
 * shutdown, in a process that must then exit by itself. Started by test/cluster/Session.shutdown.test.ts against a
 * one-node cluster at CASSANDRA_CONTACT_POINTS, it prints one line per step:
 *
 * - `connected`: the session is serving; the test then freezes the node and writes `frozen` to the program's stdin;
 * - `closed`: the session was closed. Its health monitor runs until late in the close; here it marks the silent node
 *   down just before the client is shut down (as its last check would, by taking every connection out of the pool),
 *   so the control connection starts over from the contact points as the client shuts down, and waits for the frozen
 *   node. The test then resumes the node, which answers that attempt.
 *
 * Once closed, nothing may keep the process alive. Should something still do so after 45 seconds, it prints the
 * sockets and timers left (on a timer that does not keep the process alive itself).
 *
 *   node --conditions=effect-cassandra/source test/cluster/programs/closeAsNodeGoesDown.ts
 */
import * as Readline from "node:readline"
import * as Effect from "effect/Effect"
import * as Session from "effect-cassandra/Session"
import { print, reportLeftovers } from "./leftovers.ts"

/** The driver internals the health monitor uses to mark a node down (lib/host.js, host-connection-pool.js). */
interface DriverHost {
  readonly pool: { readonly connections: ReadonlyArray<unknown> }
  removeFromPool(connection: unknown): void
}

const lines = Readline.createInterface({ input: process.stdin })
const told = (expected: string) =>
  new Promise<void>((resolve) =>
    lines.on("line", (line) => {
      if (line === expected) resolve()
    })
  )

/** Marks every node down the way the session's health monitor does, right before the client begins to shut down. */
const markDownBeforeShutdown = (client: Session.Session["client"]) => {
  const shutdown = client.shutdown.bind(client)
  client.shutdown = (() => {
    for (const host of client.hosts.values() as ReadonlyArray<unknown> as ReadonlyArray<DriverHost>) {
      for (const connection of host.pool.connections) host.removeFromPool(connection)
    }
    return shutdown()
  }) as typeof client.shutdown
}

const program = Effect.gen(function* () {
  const session = yield* Session.make({
    contactPoints: (process.env.CASSANDRA_CONTACT_POINTS ?? "").split(","),
    localDataCenter: process.env.CASSANDRA_LOCAL_DC ?? "datacenter1",
    // Longer than the test takes to resume the node, so that the attempt in flight gets its answer.
    connectTimeout: "60 seconds",
    drainTimeout: "1 second"
  })
  markDownBeforeShutdown(session.client)
  const frozen = told("frozen")
  print("connected")
  yield* Effect.promise(() => frozen)
}).pipe(Effect.scoped)

await Effect.runPromise(program)
lines.close()
process.stdin.destroy()
print("closed")

reportLeftovers()
