/**
 * A request runner over a stand-in driver client, for the request runner's unit tests: what is checked is what the
 * session hands the driver and when it answers, not what the driver does with it.
 */
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import type * as Session from "effect-cassandra/Session"
import { makeSessionSettings } from "../../src/internal/clientOptions.ts"
import { MetricsHub, makeMetricsHub } from "../../src/internal/metricsRecorder.ts"
import { makeRequestRunner } from "../../src/internal/requestRunner.ts"

/**
 * A stand-in for the driver client that records the options of each request and lets the test decide when it
 * answers: what is checked is what the session hands the driver, not what the driver does with it.
 */
export const recordingClient = () => {
  const calls: Array<{ readonly options: Cassandra.QueryOptions; readonly answer: () => void }> = []
  // A real client, never connected, so that the metrics layer can attach to it as to any other.
  const client = Object.assign(new Cassandra.Client({ contactPoints: ["192.0.2.1"], localDataCenter: "dc1" }), {
    execute: (_query: string, _params: Array<unknown>, options: Cassandra.QueryOptions) =>
      new Promise((resolve) => {
        calls.push({ options, answer: () => resolve({ rows: [], info: {} }) })
      })
  })
  return { calls, client: client as Cassandra.Client }
}

/** A runner over `client` with the session settings `options` make. */
export const runnerOver = (client: Cassandra.Client, options: Session.ClientSessionOptions) =>
  Effect.flatMap(makeSessionSettings(options), (settings) => makeRequestRunner(client, settings))

/** A runner over `client` whose requests are counted by a metrics layer, and that layer's summary. */
export const countedRunner = (client: Cassandra.Client, options: Session.ClientSessionOptions = {}) =>
  Effect.gen(function* () {
    const hub = yield* makeMetricsHub("1 hour")
    const runner = yield* Effect.provideService(runnerOver(client, options), MetricsHub, hub)
    return { runner, summary: hub.summary }
  }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))

/** A read of one key, with `options`. */
export const request = (options: Session.RequestOptions = {}): Session.Request => ({
  query: "SELECT v FROM kv WHERE k = ?",
  params: [1],
  options
})

/** Holds the event loop until `performance.now()` reaches `until`, as a loaded process does. */
export const holdEventLoopUntil = (until: number) => {
  while (performance.now() < until) {
    // Busy: no timer, socket or microtask runs meanwhile.
  }
}

/**
 * Repeats `effect` every 5 ms until `done` holds of its result. Given `what` (what is awaited, for the message), it
 * gives up after 4 seconds (a wait's bound, under vitest's default 5 for a test with one such wait; a test with several
 * long ones needs a timeout of its own) and fails the test with `what` and the last result seen.
 */
export const until = <A>(effect: Effect.Effect<A>, done: (a: A) => boolean, what?: string) => {
  let last: { readonly value: A } | undefined
  const repeated = effect.pipe(
    Effect.map((value) => {
      last = { value }
      return value
    }),
    Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: done })
  )
  return what === undefined
    ? repeated
    : Effect.timeoutOrElse(repeated, {
        duration: "4 seconds",
        orElse: () =>
          Effect.die(
            new Error(`Waited 4s for ${what}; last seen: ${last === undefined ? "nothing" : String(last.value)}`)
          )
      })
}

/** Waits until `count` requests have reached the client that records them in `calls`. */
export const sentCount = (calls: ReadonlyArray<unknown>, count: number) =>
  until(
    Effect.sync(() => calls.length),
    (sent) => sent === count
  )

/** A request held by a stand-in client until the test answers it, by the key it was sent for. */
export interface Held {
  readonly key: number
  readonly answer: () => void
}

/** Answers every held request sent so far (answering one twice does nothing). */
export const answerAll = (sent: ReadonlyArray<Held>) =>
  Effect.sync(() => {
    for (const request of sent) request.answer()
  })

/** Waits until at least `count` requests reached the stand-in client that lists them in `sent`. */
export const sentAtLeast = (sent: ReadonlyArray<unknown>, count: number) =>
  until(
    Effect.sync(() => sent.length),
    (length) => length >= count
  )

/**
 * Unhandled rejections seen while the test runs: a throw inside the request path's promise callback, where no fiber
 * can see it, lands there, and whatever waited for that request's outcome waits for ever.
 */
export const watchRejections = Effect.acquireRelease(
  Effect.sync(() => {
    const seen: Array<unknown> = []
    const listener = (reason: unknown) => {
      seen.push(reason)
    }
    process.on("unhandledRejection", listener)
    return { seen, listener }
  }),
  ({ listener }) => Effect.sync(() => process.off("unhandledRejection", listener))
).pipe(Effect.map(({ seen }) => seen))

/**
 * Waits until `fiber` ends, or until a rejection is seen in `rejections` (from `watchRejections`): a throw that reached
 * a driver's callback, after which the fiber may wait for ever. Gives the fiber's exit, if it ended.
 */
export const endedOrRejected = <A, E>(fiber: Fiber.Fiber<A, E>, rejections: ReadonlyArray<unknown>) =>
  Effect.map(
    until(
      Effect.sync(() => fiber.pollUnsafe() !== undefined || rejections.length > 0),
      (done) => done
    ),
    () => fiber.pollUnsafe()
  )
