/**
 * A cluster whose every node froze just long enough to be marked down serves again once it answers: on a one-node
 * cluster (127.0.0.86), the health monitor marks the frozen node down, the control connection starts over from the
 * contact points and reaches the node (a known one, whose entry the session keeps) as soon as it is resumed.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Session from "effect-cassandra/Session"
import * as LocalCassandra from "../../tools/cassandra/LocalCassandra.ts"

const firstAddress = 86
const select = { query: "SELECT release_version FROM system.local", params: [], options: {} }

describe("a short freeze of every node", () => {
  it.live(
    "a node marked down while frozen serves again once resumed",
    () =>
      Effect.gen(function* () {
        const cluster = yield* LocalCassandra.start({ nodes: 1, firstAddress, name: "shortFreeze" })
        const session = yield* Session.make({
          contactPoints: [...cluster.contactPoints],
          localDataCenter: cluster.localDataCenter,
          connectTimeout: "60 seconds",
          nodeHealth: { checkInterval: "100 millis", suspectAfter: "200 millis", downAfter: "1 second" }
        })
        let down = false
        let startedOver = false
        session.client.on("hostDown", () => (down = true))
        session.client.on("log", (_level: unknown, className: unknown, message: unknown) => {
          if (down && className === "ControlConnection" && message === "Getting first connection") startedOver = true
        })
        // An outstanding request is what lets the health monitor tell a frozen node from an idle one.
        yield* session
          .execute(select)
          .pipe(Effect.ignore, Effect.andThen(Effect.sleep("100 millis")), Effect.forever, Effect.forkScoped)
        yield* cluster.pauseNode(1)
        yield* Effect.sync(() => startedOver).pipe(
          Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (holds) => holds }),
          Effect.timeout("120 seconds"),
          Effect.ensuring(Effect.ignore(cluster.resumeNode(1)))
        )
        const served = yield* session
          .execute(select)
          .pipe(Effect.retry(Schedule.spaced("500 millis")), Effect.timeoutOption("60 seconds"))
        assert.isTrue(served._tag === "Some", "the session did not serve again within 60 seconds of the node's resume")
      }).pipe(Effect.scoped),
    600_000
  )
})
