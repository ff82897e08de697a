/**
 * Latency distributions precise enough for percentiles: a log-linear histogram (the idea of HdrHistogram) that
 * splits every power of two between 1 µs and about 72 minutes into 64 buckets of equal ratio.
 *
 * A quantile q is the nearest-rank one (the ⌈q·n⌉-th smallest observation); the histogram finds the bucket holding
 * that observation and reports the bucket's geometric midpoint, clamped to the exact minimum and maximum. A bucket's
 * upper bound is 2^(1/64) times its lower bound, so the reported value is within a factor 2^(1/128) of the true one:
 * a relative error of at most 0.55%, for any number of observations, in constant memory (16 KiB) and constant time
 * per observation. Below 1 µs the error is at most 1 µs; above the range the maximum is reported.
 */

const bucketsPerOctave = 64
const octaves = 32
const bucketCount = bucketsPerOctave * octaves

/** The smallest latency told apart from zero, in seconds. */
export const lowestSeconds = 1e-6

/** The largest relative error of a reported quantile, for latencies of at least `lowestSeconds`. */
export const relativeErrorBound: number = 2 ** (1 / (2 * bucketsPerOctave)) - 1

/** A latency distribution: counts, sum, extremes and nearest-rank quantiles. */
export interface LatencyStatistics {
  /** Observations recorded. */
  readonly count: number
  /** Mean latency in seconds (0 without observations). */
  readonly mean: number
  readonly min: number
  readonly max: number
  readonly p50: number
  readonly p75: number
  readonly p95: number
  readonly p98: number
  readonly p99: number
  readonly p999: number
}

/** A latency histogram that only grows; one per series the summary reports. */
export interface LatencyHistogram {
  readonly record: (seconds: number) => void
  readonly quantile: (q: number) => number
  readonly statistics: () => LatencyStatistics
}

const bucketOf = (seconds: number): number => {
  if (!(seconds > lowestSeconds)) return 0
  const index = Math.floor(Math.log2(seconds / lowestSeconds) * bucketsPerOctave)
  return index < bucketCount ? index : bucketCount - 1
}

const midpointOf = (bucket: number): number => lowestSeconds * 2 ** ((bucket + 0.5) / bucketsPerOctave)

/** Creates an empty latency histogram. */
export const makeLatencyHistogram = (): LatencyHistogram => {
  const counts = new Float64Array(bucketCount)
  let count = 0
  let sum = 0
  let min = Number.POSITIVE_INFINITY
  let max = 0

  const quantile = (q: number): number => {
    if (count === 0) return 0
    const rank = Math.max(1, Math.ceil(q * count))
    let seen = 0
    for (let bucket = 0; bucket < bucketCount; bucket++) {
      seen += counts[bucket] ?? 0
      if (seen >= rank) return Math.min(max, Math.max(min, midpointOf(bucket)))
    }
    return max
  }

  return {
    record: (seconds) => {
      const bucket = bucketOf(seconds)
      counts[bucket] = (counts[bucket] ?? 0) + 1
      count++
      sum += seconds
      if (seconds < min) min = seconds
      if (seconds > max) max = seconds
    },
    quantile,
    statistics: () => ({
      count,
      mean: count === 0 ? 0 : sum / count,
      min: count === 0 ? 0 : min,
      max,
      p50: quantile(0.5),
      p75: quantile(0.75),
      p95: quantile(0.95),
      p98: quantile(0.98),
      p99: quantile(0.99),
      p999: quantile(0.999)
    })
  }
}
