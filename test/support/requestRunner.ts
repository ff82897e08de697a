/**
 * A request runner over a stand-in driver client, for the request runner's unit tests: what is checked is what the
 * session hands the driver and when it answers, not what the driver does with it.
 */
import type * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Session from "effect-cassandra/Session"
import { makeSessionSettings } from "../../src/internal/clientOptions.ts"
import { makeRequestRunner } from "../../src/internal/requestRunner.ts"

/**
 * A stand-in for the driver client that records the options of each request and lets the test decide when it
 * answers: what is checked is what the session hands the driver, not what the driver does with it.
 */
export const recordingClient = () => {
  const calls: Array<{ readonly options: Cassandra.QueryOptions; readonly answer: () => void }> = []
  const client = {
    keyspace: undefined,
    execute: (_query: string, _params: Array<unknown>, options: Cassandra.QueryOptions) =>
      new Promise((resolve) => {
        calls.push({ options, answer: () => resolve({ rows: [], info: {} }) })
      })
  }
  return { calls, client: client as unknown as Cassandra.Client }
}

/** A runner over `client` with the session settings `options` make. */
export const runnerOver = (client: Cassandra.Client, options: Session.ClientSessionOptions) =>
  Effect.flatMap(makeSessionSettings(options), (settings) => makeRequestRunner(client, settings))

/** A read of one key, with `options`. */
export const request = (options: Session.RequestOptions = {}): Session.Request => ({
  query: "SELECT v FROM kv WHERE k = ?",
  params: [1],
  options
})

/** Repeats `effect` every 5 ms until `done` holds of its result. */
export const until = <A>(effect: Effect.Effect<A>, done: (a: A) => boolean) =>
  effect.pipe(Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: done }))

/** Waits until `count` requests have reached the client that records them in `calls`. */
export const sentCount = (calls: ReadonlyArray<unknown>, count: number) =>
  until(
    Effect.sync(() => calls.length),
    (sent) => sent === count
  )
