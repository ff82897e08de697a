/**
 * Progress lines for the long waits of the local Cassandra manager (fetching jars, a node starting, nodes converging,
 * a node stopping), so that a first start on a machine with cold caches does not sit silent for minutes.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect } from "effect"

/**
 * How often a long wait reports: a wait shorter than this prints nothing.
 *
 * @since 0.1.0
 * @category constants
 */
export const progressInterval: Duration.Duration = Duration.seconds(5)

/**
 * Milliseconds as "42 s" or "1 min 40 s".
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatElapsed = (millis: number): string => {
  const seconds = Math.floor(millis / 1000)
  return seconds < 60 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`
}

/**
 * Runs `effect` and, while it runs, logs `describe(elapsed)` once every `interval` (the first after one interval);
 * `describe` reads whatever the wait has learned so far (artifacts fetched, the last answer of a node). The outcome
 * of `effect` is unchanged.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withProgress = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  describe: (elapsed: string) => string,
  interval: Duration.Input = progressInterval
): Effect.Effect<A, E, R> =>
  Effect.flatMap(Clock.currentTimeMillis, (startedAt) => {
    const report = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.logInfo(describe(formatElapsed(now - startedAt)))
    )
    return Effect.raceFirst(effect, Effect.forever(Effect.andThen(Effect.sleep(interval), report)))
  })
