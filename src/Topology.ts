/**
 * The cluster's topology as the session sees it: which nodes exist, where they are, whether they are up and since
 * when, and every change (nodes added, removed, up, down; schema created, updated, dropped) as a `Stream`.
 *
 * @since 0.1.0
 */
import type * as Cassandra from "cassandra-driver"
import type * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { schemaChangeFromLog } from "./internal/schemaChangeLog.ts"
import { CassandraClient } from "./Session.ts"

/**
 * One node of the cluster, as known to the driver.
 *
 * @since 0.1.0
 * @category models
 */
export interface Node {
  /** `address:port` of the node's native transport. */
  readonly address: string
  readonly hostId: string | undefined
  readonly dataCenter: string
  readonly rack: string
  readonly cassandraVersion: string
  readonly state: "up" | "down"
  /** When the node entered its current state, or when the session first saw it. */
  readonly since: Date
}

/**
 * The whole cluster at one moment.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClusterState {
  readonly nodes: ReadonlyArray<Node>
  readonly at: Date
}

/**
 * A node joined the cluster, left it, came up or went down, as the driver saw it.
 *
 * @since 0.1.0
 * @category models
 */
export interface NodeEvent {
  readonly _tag: "NodeAdded" | "NodeRemoved" | "NodeUp" | "NodeDown"
  readonly node: Node
  readonly at: Date
}

/**
 * A schema object was created, updated or dropped.
 *
 * @since 0.1.0
 * @category models
 */
export interface SchemaChanged {
  readonly _tag: "SchemaChanged"
  readonly change: "created" | "updated" | "dropped"
  readonly target: "keyspace" | "table" | "type" | "function" | "aggregate"
  readonly keyspace: string
  /** The table, type, function or aggregate; absent for a keyspace. */
  readonly name: string | undefined
  readonly at: Date
}

/**
 * Every change the topology reports.
 *
 * @since 0.1.0
 * @category models
 */
export type TopologyEvent = NodeEvent | SchemaChanged

/**
 * Fewer nodes were up than required when the wait ran out.
 *
 * @since 0.1.0
 * @category errors
 */
export class NodesNotUpError extends Schema.TaggedError<NodesNotUpError>("effect-cassandra/NodesNotUpError")(
  "NodesNotUpError",
  { required: Schema.Number, up: Schema.Number, timeout: Schema.String }
) {
  override get message(): string {
    return `Only ${this.up} of the ${this.required} required nodes were up after ${this.timeout}`
  }
}

/**
 * The topology service.
 *
 * @since 0.1.0
 * @category models
 */
export interface Topology {
  /** The nodes known now. */
  readonly nodes: Effect.Effect<ReadonlyArray<Node>>
  /**
   * Node and schema events from the moment the stream is run; its driver listeners live as long as the stream. A
   * subscriber more than {@link eventBufferSize} events behind loses the oldest ones, with a logged warning.
   */
  readonly events: Stream.Stream<TopologyEvent>
  /**
   * Whole cluster states: the current one first, then one after every node event; a subscriber that pulls late gets
   * the newest state (states it did not pull in time are replaced, never queued).
   */
  readonly changes: Stream.Stream<ClusterState>
  /** Waits until at least `count` nodes are up, or fails after `timeout`. */
  readonly awaitNodesUp: (count: number, timeout: Duration.Input) => Effect.Effect<void, NodesNotUpError>
}

/**
 * The service key of the topology.
 *
 * @since 0.1.0
 * @category services
 */
export const Topology: Context.Service<Topology, Topology> = Context.Service<Topology>("effect-cassandra/Topology")

/**
 * How many events the `events` stream holds for a subscriber that has not pulled them yet. Past that the oldest are
 * dropped (a sliding buffer), and the subscriber's next pull logs a warning with how many it lost; `changes` holds
 * only the newest cluster state, so a slow subscriber of `changes` never misses the current one.
 *
 * @since 0.1.0
 * @category constants
 */
export const eventBufferSize = 1024

const nodeEvents = {
  hostAdd: "NodeAdded",
  hostRemove: "NodeRemoved",
  hostUp: "NodeUp",
  hostDown: "NodeDown"
} as const

type HostEventName = keyof typeof nodeEvents

const hostEventNames = Object.keys(nodeEvents) as ReadonlyArray<HostEventName>

/**
 * Creates the topology service over a driver client. It listens to the driver for as long as the scope is open, to
 * know since when each node is in its state.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (client: Cassandra.Client) => Effect.Effect<Topology, never, Scope.Scope> = Effect.fnUntraced(
  function* (client: Cassandra.Client) {
    const sessionStart = new Date()
    const since = new Map<string, Date>()
    const toNode = (host: Cassandra.Host): Node => ({
      address: host.address,
      hostId: host.hostId?.toString(),
      dataCenter: host.datacenter,
      rack: host.rack,
      cassandraVersion: host.cassandraVersion,
      state: host.isUp() ? "up" : "down",
      since: since.get(host.address) ?? sessionStart
    })
    const snapshot = (): ClusterState => ({ nodes: client.hosts.values().map(toNode), at: new Date() })

    const listen = (
      onHostEvent: (name: HostEventName, host: Cassandra.Host) => void,
      onLog?: (...args: Array<unknown>) => void
    ) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const handlers = hostEventNames.map(
            (name) => [name, (host: Cassandra.Host) => onHostEvent(name, host)] as const
          )
          for (const [name, handler] of handlers) client.on(name, handler)
          if (onLog !== undefined) client.on("log", onLog)
          return handlers
        }),
        (handlers) =>
          Effect.sync(() => {
            for (const [name, handler] of handlers) client.off(name, handler)
            if (onLog !== undefined) client.off("log", onLog)
          })
      )

    yield* listen((name, host) => {
      if (name === "hostRemove") since.delete(host.address)
      else since.set(host.address, new Date())
    })

    const events = Stream.suspend(() => {
      let dropped = 0
      const offerTo = (queue: Queue.Queue<TopologyEvent, Cause.Done>, event: TopologyEvent) => {
        if (Queue.sizeUnsafe(queue) >= eventBufferSize) dropped++
        Queue.offerUnsafe(queue, event)
      }
      const reportDropped = Effect.suspend(() => {
        const count = dropped
        dropped = 0
        return Effect.logWarning(
          `The topology events subscriber fell ${eventBufferSize} events behind: ${count} older events were dropped`
        )
      })
      return Stream.callback<TopologyEvent>(
        (queue) =>
          listen(
            (name, host) => offerTo(queue, { _tag: nodeEvents[name], node: toNode(host), at: new Date() }),
            (_level, className, message, detail) => {
              const change = schemaChangeFromLog(String(className), String(message), detail, new Date())
              if (change !== undefined) offerTo(queue, change)
            }
          ),
        { bufferSize: eventBufferSize, strategy: "sliding" }
      ).pipe(Stream.tap(() => (dropped === 0 ? Effect.void : reportDropped)))
    })

    // Only the newest state matters to a subscriber of whole states: an unread one is replaced.
    const changes = Stream.callback<ClusterState>(
      (queue) =>
        Effect.andThen(
          listen(() => {
            Queue.offerUnsafe(queue, snapshot())
          }),
          Effect.sync(() => {
            Queue.offerUnsafe(queue, snapshot())
          })
        ),
      { bufferSize: 1, strategy: "sliding" }
    )

    const nodes = Effect.sync(() => snapshot().nodes)
    const upCount = Effect.map(nodes, (all) => all.filter((node) => node.state === "up").length)

    return Topology.of({
      nodes,
      events,
      changes,
      awaitNodesUp: (count, timeout) =>
        upCount.pipe(
          Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (up) => up >= count }),
          Effect.timeoutOrElse({
            duration: timeout,
            orElse: () =>
              Effect.flatMap(upCount, (up) =>
                Effect.fail(
                  new NodesNotUpError({
                    required: count,
                    up,
                    timeout: Duration.format(Duration.fromInputUnsafe(timeout))
                  })
                )
              )
          }),
          Effect.asVoid
        )
    })
  }
)

/**
 * A layer providing the topology of the session's client.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Topology, never, Cassandra.Client> = Layer.effect(
  Topology,
  Effect.flatMap(Effect.service(CassandraClient), make)
)
