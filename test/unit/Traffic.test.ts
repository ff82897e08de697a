import { assert, describe, it } from "@effect/vitest"
import type * as Cassandra from "cassandra-driver"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { Session } from "effect-cassandra/Session"
import { latencySummary, newTraffic, type Sample, startClients, stopClients } from "../support/traffic.ts"

// The fault suite's client traffic, against a session that answers after a delay: what it counts must hold every
// request the clients sent, so that a scenario's checks cannot pass on requests it never saw end.

/** A session whose every request succeeds after `answerAfter`, counting the requests sent. */
const slowSession = (answerAfter: Duration.Input) => {
  const sent = { count: 0 }
  const resultSet = { rows: [], info: { queriedHost: "127.0.0.1:9042", triedHosts: {} } }
  const session = {
    execute: () =>
      Effect.sync(() => {
        sent.count++
      }).pipe(Effect.andThen(Effect.sleep(answerAfter)), Effect.as(resultSet as unknown as Cassandra.types.ResultSet))
  } as unknown as Session
  return { session, sent }
}

describe("fault-suite traffic", () => {
  it.live("stopping the clients lets the requests in flight end and counts each of them", () => {
    const { session, sent } = slowSession("300 millis")
    return Effect.gen(function* () {
      const traffic = newTraffic()
      const clients = yield* startClients(traffic, 4)
      yield* Effect.sync(() => sent.count).pipe(
        Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (count) => count >= 4 })
      )
      yield* stopClients(clients)
      assert.strictEqual(traffic.requests, sent.count, "requests sent but never counted")
      assert.strictEqual(traffic.samples.length, sent.count)
      assert.strictEqual(traffic.failed, 0)
    }).pipe(Effect.scoped, Effect.provideService(Session, session))
  })

  it("summarises the latencies of a scenario of any size", () => {
    // A quiet machine runs hundreds of thousands of requests through a 45 s fault.
    const samples: Array<Sample> = Array.from({ length: 400_000 }, (_, index) => ({
      startedAt: index,
      ms: index % 1000,
      failure: undefined
    }))
    assert.deepStrictEqual(latencySummary(samples), { p50: 499, p99: 989, max: 999 })
    assert.deepStrictEqual(latencySummary([]), { p50: Number.NaN, p99: Number.NaN, max: Number.NaN })
  })
})
