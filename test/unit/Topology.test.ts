import { EventEmitter } from "node:events"
import { assert, describe, it } from "@effect/vitest"
import type * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Topology from "effect-cassandra/Topology"
import { until } from "../support/requestRunner.ts"

/** Just what the topology reads of a driver client: its host events and its hosts. */
class FakeClient extends EventEmitter {
  readonly host = {
    address: "10.0.0.1:9042",
    hostId: undefined,
    datacenter: "dc1",
    rack: "0",
    cassandraVersion: "5.0.9",
    isUp: () => true
  }
  readonly hosts = { values: () => [this.host] }
  /** Waits until `count` listeners (the topology's own, and one per subscription running) hear host-up events. */
  listening(count: number) {
    return until(
      Effect.sync(() => this.listenerCount("hostUp")),
      (listeners) => listeners === count,
      `${count} host-up listeners`
    )
  }
  /** Emits `count` host-up events, the i-th one for the host in rack `i`. */
  emitUps(count: number) {
    for (let i = 1; i <= count; i++) {
      this.host.rack = String(i)
      this.emit("hostUp", this.host)
    }
  }
}

/** Everything the stream has ready, pulled without waiting for more. */
const drain = <A>(pull: Effect.Effect<ReadonlyArray<A>, unknown>) =>
  Effect.gen(function* () {
    const all: Array<A> = []
    for (;;) {
      const chunk = yield* pull.pipe(Effect.timeoutOption("200 millis"), Effect.orDie)
      if (Option.isNone(chunk)) return all
      all.push(...chunk.value)
    }
  })

const warnings: Array<string> = []
const capturingWarnings = Logger.layer([
  Logger.make(({ logLevel, message }) => {
    if (logLevel === "Warn") warnings.push(String(message))
  })
])

describe("Topology streams and slow subscribers", () => {
  it.live("changes: a subscriber that does not pull during 100,000 events holds one state, the newest", () =>
    Effect.gen(function* () {
      const client = new FakeClient()
      const topology = yield* Topology.make(client as unknown as Cassandra.Client)
      const pull = yield* Stream.toPull(topology.changes)
      const current = yield* pull
      assert.strictEqual(current[0]?.nodes[0]?.rack, "0")
      client.emitUps(100_000)
      const pending = yield* drain(pull)
      assert.deepStrictEqual(
        pending.map((state) => state.nodes[0]?.rack),
        ["100000"]
      )
    }).pipe(Effect.scoped)
  )

  it.live(
    "events: a subscriber that does not pull during 100,000 events holds a bounded buffer ending with the newest",
    () =>
      Effect.gen(function* () {
        warnings.length = 0
        const client = new FakeClient()
        const topology = yield* Topology.make(client as unknown as Cassandra.Client)
        const pull = yield* Stream.toPull(topology.events)
        const first = yield* Effect.forkChild(pull)
        yield* client.listening(2) // the subscription's listeners are in place
        client.emitUps(100_000)
        const pending = [...(yield* Fiber.join(first)), ...(yield* drain(pull))]
        assert.isAtMost(pending.length, Topology.eventBufferSize + 1)
        const last = pending.at(-1)
        assert.strictEqual(last?._tag === "NodeUp" ? last.node.rack : undefined, "100000")
        const dropped = warnings.map((message) => /(\d+) older events were dropped/.exec(message)?.[1])
        assert.strictEqual(Number(dropped.find((count) => count !== undefined)), 100_000 - pending.length)
      }).pipe(Effect.scoped, Effect.provide(capturingWarnings))
  )
})

describe("Topology events with several subscribers", () => {
  it.live(
    "a stalled subscriber neither blocks nor drops another's events; warnings come one per pull, with a count",
    () =>
      Effect.gen(function* () {
        warnings.length = 0
        const client = new FakeClient()
        const topology = yield* Topology.make(client as unknown as Cassandra.Client)
        const stalled = yield* Stream.toPull(topology.events)
        const stalledFirst = yield* Effect.forkChild(stalled)
        const received: Array<string> = []
        yield* Effect.forkChild(
          Stream.runForEach(topology.events, (event) =>
            Effect.sync(() => {
              if (event._tag === "NodeUp") received.push(event.node.rack)
            })
          )
        )
        yield* client.listening(3) // both subscriptions' listeners are in place
        const pulls = 5
        for (let round = 1; round <= pulls; round++) {
          client.emitUps(Topology.eventBufferSize) // each round refills the stalled subscriber's buffer
          // The other subscriber keeps up: it has every event of this round before the next one comes.
          yield* until(
            Effect.sync(() => received.length),
            (count) => count >= round * Topology.eventBufferSize,
            `the other subscriber to receive round ${round}'s events`
          )
        }
        assert.strictEqual(received.length, pulls * Topology.eventBufferSize)
        assert.strictEqual(warnings.length, 0)
        yield* Fiber.join(stalledFirst)
        for (let round = 0; round < pulls; round++) {
          client.emitUps(2 * Topology.eventBufferSize)
          yield* stalled
        }
        assert.isAtMost(warnings.length, pulls + 1)
        assert.isAtLeast(warnings.length, pulls)
      }).pipe(Effect.scoped, Effect.provide(capturingWarnings))
  )
})
