/**
 * The frame of a cluster scenario: client traffic (test/support/traffic.ts) running while the scenario's steps break
 * and mend nodes, the session's topology events recorded, and the acknowledged writes checked once it is over.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type * as CassandraLayer from "effect-cassandra/Layer"
import * as Topology from "effect-cassandra/Topology"
import { lostWrites, newTraffic, startClients, stopClients, type Traffic } from "./traffic.ts"

/** A topology event the session reported: its kind, the node's index in the cluster, and when (epoch ms). */
export interface Seen {
  readonly kind: Topology.NodeEvent["_tag"]
  readonly index: number
  readonly at: number
}

/** What a scenario's steps can watch while they run. */
export interface Run {
  readonly traffic: Traffic
  readonly events: Array<Seen>
}

/** Waits until `condition` holds, re-checking every 100 ms; gives up quietly after `within` (the checks then fail). */
export const awaitCondition = (condition: () => boolean, within: Duration.Input) =>
  Effect.sync(condition).pipe(
    Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (holds) => holds }),
    Effect.timeout(within),
    Effect.ignore
  )

/** How many requests started at `from` (epoch ms) or later succeeded. */
export const successesSince = (traffic: Traffic, from: number) =>
  traffic.samples.filter((sample) => sample.failure === undefined && sample.startedAt >= from).length

/** The first event of `kind` about node `index` within `[from, to)`. */
export const firstEvent = (
  events: ReadonlyArray<Seen>,
  kind: Seen["kind"],
  index: number,
  from: number,
  to = Number.POSITIVE_INFINITY
) => events.find((event) => event.kind === kind && event.index === index && event.at >= from && event.at < to)

/**
 * Runs `steps` under `clientFibers` clients once `nodes` nodes are up, with the session's topology events recorded
 * (`indexOf` turns a node's address into its index); then, once the session served 100 more requests, stops the
 * clients and counts the acknowledged writes that no longer read back.
 */
export const underTraffic = <A>(
  cluster: { readonly nodes: number; readonly indexOf: (address: string) => number; readonly clientFibers: number },
  steps: (run: Run) => Effect.Effect<A, unknown, CassandraLayer.Services>
): Effect.Effect<{ readonly result: A; readonly run: Run; readonly lost: number }, unknown, CassandraLayer.Services> =>
  Effect.scoped(
    Effect.gen(function* () {
      const topology = yield* Topology.Topology
      yield* topology.awaitNodesUp(cluster.nodes, "180 seconds")
      const events: Array<Seen> = []
      const watcher = yield* topology.events.pipe(
        Stream.runForEach((event) =>
          Effect.sync(() => {
            if (event._tag !== "SchemaChanged") {
              events.push({ kind: event._tag, index: cluster.indexOf(event.node.address), at: event.at.getTime() })
            }
          })
        ),
        Effect.forkScoped
      )
      const traffic = newTraffic()
      const clients = yield* startClients(traffic, cluster.clientFibers)
      const warmFrom = Date.now()
      yield* awaitCondition(() => successesSince(traffic, warmFrom) >= 100, "60 seconds")
      const run = { traffic, events }
      const result = yield* steps(run)
      // Some traffic after the fault, so that the session is seen serving again.
      const after = Date.now()
      yield* awaitCondition(() => successesSince(traffic, after) >= 100, "60 seconds")
      yield* stopClients(clients)
      yield* Fiber.interrupt(watcher)
      const lost = yield* lostWrites(traffic.acknowledged)
      return { result, run, lost }
    })
  )
