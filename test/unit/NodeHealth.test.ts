import { EventEmitter } from "node:events"
import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Session from "effect-cassandra/Session"
import { makeClientOptions } from "../../src/internal/clientOptions.ts"
import { avoidingLast, HealthAwarePolicy } from "../../src/internal/healthAwarePolicy.ts"
import {
  assess,
  canProbe,
  defaultThresholds,
  type HealthThresholds,
  makeThresholds,
  type Observation,
  reportedDownAddress,
  type Verdict,
  type Watch,
  watchNodeHealth
} from "../../src/internal/nodeHealth.ts"
import { until } from "../support/requestRunner.ts"

const thresholds: HealthThresholds = { checkIntervalMillis: 250, suspectAfterMillis: 1_000, downAfterMillis: 5_000 }

/** Feeds one observation per check, 250 ms apart, and returns every verdict. */
const verdicts = (observations: ReadonlyArray<Observation>, reportedDownAt?: number): Array<Verdict> => {
  let watch: Watch | undefined
  return observations.map((seen, index) => {
    const next = assess(watch, seen, index * 250, thresholds, index === reportedDownAt)
    watch = next.watch
    return next.verdict
  })
}

const repeat = (seen: Observation, times: number) => Array.from({ length: times }, () => seen)

describe("nodeHealth.assess", () => {
  it("distrusts a node silent for suspectAfter with requests outstanding, and marks it down after downAfter", () => {
    const result = verdicts(repeat({ bytesRead: 100, inFlight: 3, timedOut: 0 }, 22))
    assert.strictEqual(result.indexOf("suspect"), 4) // 1 s after the silence began
    assert.strictEqual(result.indexOf("unresponsive"), 20) // 5 s after
  })

  it("never distrusts a node that keeps sending bytes, however many requests wait on it", () => {
    const busy = Array.from({ length: 200 }, (_, i) => ({ bytesRead: 100 + i * 10, inFlight: 2_000, timedOut: 0 }))
    assert.deepStrictEqual(new Set(verdicts(busy)), new Set(["healthy"]))
  })

  it("restarts the clock when bytes arrive: a slow answer every 4 s keeps a node up", () => {
    const slow = Array.from({ length: 100 }, (_, i) => ({
      bytesRead: Math.floor(i / 16),
      inFlight: 1,
      timedOut: 0
    }))
    const result = verdicts(slow)
    assert.isFalse(result.includes("unresponsive"))
    assert.isTrue(result.includes("suspect"))
  })

  it("does not count silence with nothing outstanding: an idle node stays healthy", () => {
    assert.deepStrictEqual(
      new Set(verdicts(repeat({ bytesRead: 5, inFlight: 0, timedOut: 0 }, 100))),
      new Set(["healthy"])
    )
  })

  it("distrusts a node whose attempt timed out for downAfter, without marking it down", () => {
    const seen = [
      { bytesRead: 1, inFlight: 0, timedOut: 0 },
      { bytesRead: 2, inFlight: 0, timedOut: 1 },
      ...Array.from({ length: 30 }, (_, i) => ({ bytesRead: 3 + i, inFlight: 0, timedOut: 1 }))
    ]
    const result = verdicts(seen)
    assert.strictEqual(result[1], "suspect")
    assert.strictEqual(result[20], "suspect")
    assert.strictEqual(result[21], "healthy") // 5 s after the timeout
    assert.isFalse(result.includes("unresponsive"))
  })

  it("starts the clock on the cluster's DOWN event even with nothing outstanding; an answer clears it", () => {
    const idle = { bytesRead: 7, inFlight: 0, timedOut: 0 }
    const probed = { bytesRead: 7, inFlight: 1, timedOut: 0 }
    const unanswered = verdicts([idle, idle, ...repeat(probed, 21)], 1)
    assert.strictEqual(unanswered[1], "suspect")
    assert.strictEqual(unanswered[21], "unresponsive")
    const answered = verdicts([idle, idle, probed, { bytesRead: 20, inFlight: 0, timedOut: 0 }, idle], 1)
    assert.deepStrictEqual(answered.slice(3), ["healthy", "healthy"])
  })
})

describe("nodeHealth.assess when this process pauses", () => {
  const silent = { bytesRead: 100, inFlight: 3, timedOut: 0 }

  it("does not count a late check's delay as the node's silence", () => {
    let watch = assess(undefined, silent, 0, thresholds).watch
    watch = assess(watch, silent, 900, thresholds).watch
    const late = assess(watch, silent, 900 + 60_000, thresholds, false, 60_000 - 500)
    assert.notStrictEqual(late.verdict, "unresponsive")
  })

  it("still marks down a silent node when every check comes late by a little", () => {
    let result = assess(undefined, silent, 0, thresholds)
    for (let at = 550; at <= 20_000 && result.verdict !== "unresponsive"; at += 550) {
      result = assess(result.watch, silent, at, thresholds, false, 50)
    }
    assert.strictEqual(result.verdict, "unresponsive")
  })
})

describe("nodeHealth options and driver hooks", () => {
  it("reads the driver's log line for the cluster's DOWN event and nothing else", () => {
    assert.strictEqual(
      reportedDownAddress("ControlConnection", "Received status change to DOWN for host 10.0.0.2:9042"),
      "10.0.0.2:9042"
    )
    assert.isUndefined(reportedDownAddress("Host", "Received status change to DOWN for host 10.0.0.2:9042"))
    assert.isUndefined(reportedDownAddress("ControlConnection", "Received topology change"))
  })

  it("can send the driver's own OPTIONS request as a probe", () => {
    assert.isTrue(canProbe)
  })

  it.effect("takes defaults, reads durations, and refuses thresholds out of order with the setting named", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* makeThresholds({}), defaultThresholds)
      assert.deepStrictEqual(yield* makeThresholds({ downAfter: "10 seconds", checkInterval: "1 second" }), {
        checkIntervalMillis: 1_000,
        suspectAfterMillis: 1_000,
        downAfterMillis: 10_000
      })
      const outOfOrder = yield* Effect.result(makeThresholds({ suspectAfter: "3 seconds", downAfter: "2 seconds" }))
      assert.isTrue(Result.isFailure(outOfOrder) && outOfOrder.failure.message.includes("nodeHealth.downAfter"))
      const zero = yield* Effect.result(makeThresholds({ checkInterval: 0 }))
      assert.isTrue(Result.isFailure(zero) && zero.failure.message.includes("nodeHealth.checkInterval"))
    })
  )

  it.effect("turns off with false, and refuses every other setting that would not work as written", () =>
    Effect.gen(function* () {
      assert.isUndefined(yield* makeThresholds(false))
      const refused = (input: unknown) =>
        Effect.map(Effect.flip(makeThresholds(input)), (error) => [error.reason._tag, error.message])
      const cases: ReadonlyArray<readonly [input: unknown, names: string]> = [
        [{ checkInterval: "10 seconds" }, "nodeHealth.checkInterval"],
        [{ checkInterval: "2 seconds", suspectAfter: "1 second", downAfter: "10 seconds" }, "nodeHealth.checkInterval"],
        [{ downAfter: Duration.infinity }, "nodeHealth.downAfter"],
        [{ suspectAfter: -5 }, "nodeHealth.suspectAfter"],
        [{ downAfter: Number.NaN }, "nodeHealth.downAfter"],
        [{ suspectAfter: "soon" }, "nodeHealth.suspectAfter"],
        [{ downafter: "10 seconds" }, "downafter"],
        [true, "nodeHealth"],
        ["fast", "nodeHealth"],
        [null, "nodeHealth"],
        [[], "nodeHealth"],
        [
          Object.defineProperty({}, "downAfter", {
            enumerable: true,
            get: () => {
              throw new Error("getter")
            }
          }),
          "nodeHealth"
        ]
      ]
      for (const [input, names] of cases) {
        const [tag, message] = yield* refused(input)
        assert.strictEqual(tag, "Configuration", message)
        assert.include(message, names)
      }
    })
  )

  it.effect("nodeHealth: false leaves the driver's own load-balancing policy, unwrapped", () =>
    Effect.gen(function* () {
      const required = { contactPoints: ["127.0.0.1"], localDataCenter: "dc1" }
      const policyOf = (options: Session.Options) =>
        Effect.map(makeClientOptions(options), ({ clientOptions }) => clientOptions.policies?.loadBalancing)
      assert.instanceOf(yield* policyOf(required), HealthAwarePolicy)
      const off = yield* policyOf({ ...required, nodeHealth: false })
      assert.instanceOf(off, Cassandra.policies.loadBalancing.DefaultLoadBalancingPolicy)
      assert.notInstanceOf(off, HealthAwarePolicy)
    })
  )

  it.live("a session with bad nodeHealth settings fails with a Configuration reason before it connects", () =>
    Effect.gen(function* () {
      // Nothing listens there: a session that tried to connect would fail with NoHostAvailable instead.
      const unreachable = { contactPoints: ["127.0.0.1"], port: 1, localDataCenter: "dc1" }
      const built = yield* Effect.flip(
        Effect.scoped(Session.make({ ...unreachable, nodeHealth: { downAfter: "0 millis" } }))
      )
      assert.strictEqual(built.reason._tag, "Configuration")
      assert.include(built.message, "nodeHealth.downAfter")
      const client = new Cassandra.Client({ ...unreachable, protocolOptions: { port: 1 } })
      const over = yield* Effect.flip(
        Effect.scoped(Session.makeFromClient(client, { nodeHealth: { checkInterval: "1 minute" } }))
      )
      assert.strictEqual(over.reason._tag, "Configuration")
      assert.include(over.message, "nodeHealth.checkInterval")
      yield* Effect.promise(() => client.shutdown())
    })
  )
})

describe("healthAwarePolicy.HealthAwarePolicy", () => {
  const child = (hosts: ReadonlyArray<string>) =>
    ({
      newQueryPlan: (_keyspace: string, _options: unknown, callback: (error: null, plan: Iterator<string>) => void) =>
        callback(null, hosts[Symbol.iterator]())
    }) as unknown as ConstructorParameters<typeof HealthAwarePolicy>[0]
  const planOf = (policy: HealthAwarePolicy) => {
    let plan: Array<unknown> = []
    policy.newQueryPlan("ks", undefined as never, (_error, hosts) => {
      plan = [...{ [Symbol.iterator]: () => hosts }]
    })
    return plan
  }

  it("passes the child's plan through untouched until the monitor distrusts a node, then tries that node last", () => {
    const policy = new HealthAwarePolicy(child(["a", "b", "c"]))
    assert.deepStrictEqual(planOf(policy), ["a", "b", "c"])
    policy.avoided = new Set(["a"]) as unknown as ReadonlySet<Cassandra.Host>
    assert.deepStrictEqual(planOf(policy), ["b", "c", "a"])
  })
})

describe("healthAwarePolicy.avoidingLast", () => {
  it("keeps the plan's order but tries avoided nodes last", () => {
    const plan = ["a", "b", "c", "d"][Symbol.iterator]()
    assert.deepStrictEqual([...avoidingLast(plan, new Set(["a", "c"]))], ["b", "d", "a", "c"])
    assert.deepStrictEqual([...avoidingLast(["x"][Symbol.iterator](), new Set<string>())], ["x"])
  })
})

/**
 * A node behind a real socket: a request it never answers stays outstanding, and every OPTIONS probe is answered by
 * `answerProbe`, which may take its time (blocking the whole process, as a long synchronous task or the client's own
 * pause would).
 */
const socketNode = (answerProbe: (answer: () => void) => void) =>
  Effect.gen(function* () {
    const server = yield* Effect.acquireRelease(
      Effect.callback<Net.Server>((resume) => {
        const listening = Net.createServer((socket) => {
          socket.on("data", () => answerProbe(() => socket.write("answer")))
          socket.on("error", () => undefined)
        })
        listening.listen({ host: "127.0.0.1", port: 0 }, () => resume(Effect.succeed(listening)))
      }),
      (listening) => Effect.callback<void>((resume) => void listening.close(() => resume(Effect.void)))
    )
    const socket = yield* Effect.acquireRelease(
      Effect.callback<Net.Socket>((resume) => {
        const connected = Net.connect((server.address() as Net.AddressInfo).port, "127.0.0.1", () =>
          resume(Effect.succeed(connected))
        )
      }),
      (connected) => Effect.sync(() => connected.destroy())
    )
    const probes: Array<(error?: Error) => void> = []
    socket.on("data", () => {
      for (const callback of probes.splice(0)) callback()
    })
    const connection = {
      netClient: socket,
      timedOutOperations: 0,
      getInFlight: () => 1 + probes.length,
      sendStream: (_request: unknown, _options: null, callback: (error?: Error) => void) => {
        probes.push(callback)
        socket.write("probe")
      }
    }
    const removed: Array<unknown> = []
    const host = {
      address: "127.0.0.1:9042",
      isUp: () => removed.length === 0,
      pool: { connections: [connection] },
      removeFromPool: (closed: unknown) => removed.push(closed)
    }
    const client = Object.assign(new EventEmitter(), { hosts: { values: () => [host] } })
    return { client: client as unknown as Cassandra.Client, removed, probes }
  })

describe("nodeHealth.watchNodeHealth", () => {
  const quick: HealthThresholds = { checkIntervalMillis: 50, suspectAfterMillis: 200, downAfterMillis: 500 }

  it.live("does not blame a node for the time this process itself was not running (a blocked event loop)", () =>
    Effect.gen(function* () {
      let blocked = false
      const node = yield* socketNode((answer) => {
        if (!blocked) {
          blocked = true
          const until = Date.now() + 3 * quick.downAfterMillis
          while (Date.now() < until) {
            // a synchronous task of the application, or the client machine suspended
          }
        }
        answer()
      })
      yield* watchNodeHealth(node.client, quick)
      // Probed (so silent for suspectAfter while the process was blocked), then answered, then probed again.
      yield* Effect.sleep("50 millis").pipe(
        Effect.repeat({ until: () => blocked && node.probes.length === 0 }),
        Effect.timeout("20 seconds")
      )
      yield* Effect.sleep(Duration.millis(3 * quick.downAfterMillis))
      assert.deepStrictEqual(node.removed, [])
    }).pipe(Effect.scoped)
  )

  it.live("closes the connections of a node that answers nothing, probe included, after downAfter", () =>
    Effect.gen(function* () {
      const node = yield* socketNode(() => undefined)
      yield* watchNodeHealth(node.client, quick)
      yield* Effect.sleep("50 millis").pipe(
        Effect.repeat({ until: () => node.removed.length > 0 }),
        Effect.timeout("20 seconds")
      )
      assert.strictEqual(node.removed.length, 1)
    }).pipe(Effect.scoped)
  )

  it.live(
    "keeps a node that refused a request as it shuts down at the back of plans until it is down, or downAfter",
    () =>
      Effect.gen(function* () {
        let up = true
        const stopping = { address: "127.0.0.1:9042", isUp: () => up, pool: { connections: [] } }
        // Each check of a monitor begins by listing the nodes, and runs through without waiting.
        let checked = 0
        /** A session's policy with the monitor watching the stopping node under `thresholds`. */
        const monitored = (thresholds: HealthThresholds) =>
          Effect.gen(function* () {
            const policy = new HealthAwarePolicy(new Cassandra.policies.loadBalancing.RoundRobinPolicy())
            const client = Object.assign(new EventEmitter(), {
              hosts: {
                values: () => {
                  checked++
                  return [stopping]
                }
              },
              options: { policies: { loadBalancing: policy } }
            })
            yield* watchNodeHealth(client as unknown as Cassandra.Client, thresholds)
            return policy
          })
        const host = stopping as unknown as Cassandra.Host
        /** Waits until the monitor has made `count` more checks. */
        const checks = (count: number) => {
          const target = checked + count
          return until(
            Effect.sync(() => checked),
            (seen) => seen >= target,
            `${count} checks of the monitor, ${quick.checkIntervalMillis} ms apart`
          )
        }
        const forgotten = (policy: HealthAwarePolicy) =>
          Effect.sleep("10 millis").pipe(
            Effect.repeat({ until: () => !policy.avoided.has(host) && policy.stopping.size === 0 }),
            Effect.timeout("20 seconds")
          )

        const lasting = yield* monitored({ ...quick, downAfterMillis: 60_000 })
        lasting.avoidStopping(host)
        assert.isTrue(lasting.avoided.has(host), "avoided at once, before the monitor's next check")
        yield* checks(4)
        assert.isTrue(lasting.avoided.has(host), "forgotten by the monitor while up and within downAfter")
        up = false
        yield* forgotten(lasting)

        up = true
        const brief = yield* monitored(quick)
        brief.avoidStopping(host)
        yield* forgotten(brief)
      }).pipe(Effect.scoped)
  )

  it.live("leaves no listener and no timer behind once its scope closes, at whatever moment", () =>
    Effect.gen(function* () {
      const node = yield* socketNode((answer) => answer())
      const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length
      const before = timers()
      for (const after of [0, 10, 60, 130, 260]) {
        yield* Effect.scoped(Effect.andThen(watchNodeHealth(node.client, quick), Effect.sleep(Duration.millis(after))))
        assert.strictEqual(node.client.listenerCount("log"), 0)
      }
      // Closing the scope waited for the checking fiber to end, its timer cleared with it: nothing is left to wait for.
      assert.strictEqual(timers(), before)
    }).pipe(Effect.scoped)
  )
})

describe("a node that refused requests as it shut down, restarted", () => {
  /** A session's policy, with the monitor checking `hosts` under `thresholds`, and the client it watches. */
  const monitored = (hosts: ReadonlyArray<unknown>, thresholds: HealthThresholds) =>
    Effect.gen(function* () {
      const policy = new HealthAwarePolicy(new Cassandra.policies.loadBalancing.RoundRobinPolicy())
      const client = Object.assign(new EventEmitter(), {
        hosts: { values: () => hosts },
        options: { policies: { loadBalancing: policy } }
      })
      yield* watchNodeHealth(client as unknown as Cassandra.Client, thresholds)
      return { policy, client }
    })
  // Checks far apart: a restart fits between two of them.
  const seldom: HealthThresholds = { checkIntervalMillis: 60_000, suspectAfterMillis: 60_000, downAfterMillis: 120_000 }

  it.live("is no longer avoided once the driver has it up again, though no check saw it down", () =>
    Effect.gen(function* () {
      const restarted = { address: "127.0.0.1:9042", isUp: () => true, pool: { connections: [] } }
      const other = { address: "127.0.0.2:9042", isUp: () => true, pool: { connections: [] } }
      const { policy, client } = yield* monitored([restarted, other], seldom)
      policy.avoidStopping(restarted as unknown as Cassandra.Host)
      policy.avoidStopping(other as unknown as Cassandra.Host)
      client.emit("hostUp", restarted)
      assert.isFalse(policy.avoided.has(restarted as unknown as Cassandra.Host))
      assert.isFalse(policy.stopping.has(restarted as unknown as Cassandra.Host))
      // Another node still shutting down stays avoided.
      assert.isTrue(policy.avoided.has(other as unknown as Cassandra.Host))
      // Refusing again as it shuts down once more, it is avoided again.
      policy.avoidStopping(restarted as unknown as Cassandra.Host)
      assert.isTrue(policy.avoided.has(restarted as unknown as Cassandra.Host))
    }).pipe(Effect.scoped)
  )

  it.live("stops listening for nodes coming up once the monitor's scope closes", () =>
    Effect.gen(function* () {
      const { client } = yield* Effect.scoped(monitored([], seldom))
      assert.strictEqual(client.listenerCount("hostUp"), 0)
    })
  )

  it("avoids a node once however many requests it refuses, copying the avoided nodes once", () => {
    const policy = new HealthAwarePolicy(new Cassandra.policies.loadBalancing.RoundRobinPolicy())
    const host = { address: "127.0.0.1:9042" } as unknown as Cassandra.Host
    policy.avoidStopping(host)
    const avoided = policy.avoided
    for (let i = 0; i < 1000; i++) policy.avoidStopping(host)
    assert.strictEqual(policy.avoided, avoided)
    assert.strictEqual(policy.avoided.size, 1)
    assert.strictEqual(policy.stopping.size, 1)
  })
})
