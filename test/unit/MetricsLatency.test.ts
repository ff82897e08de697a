import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { lowestSeconds, makeLatencyHistogram, relativeErrorBound } from "../../src/internal/metricsLatency.ts"

/** The nearest-rank quantile of a sample: its ⌈q·n⌉-th smallest value. */
const exactQuantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1] ?? Number.NaN

const quantiles = [0.5, 0.75, 0.95, 0.98, 0.99, 0.999] as const

const histogramOf = (latencies: ReadonlyArray<number>) => {
  const histogram = makeLatencyHistogram()
  for (const latency of latencies) histogram.record(latency)
  return histogram
}

describe("latency histogram", () => {
  it("reports zeros when nothing was recorded", () => {
    const statistics = makeLatencyHistogram().statistics()
    assert.deepStrictEqual(statistics, {
      count: 0,
      mean: 0,
      min: 0,
      max: 0,
      p50: 0,
      p75: 0,
      p95: 0,
      p98: 0,
      p99: 0,
      p999: 0
    })
  })

  it("states an error bound of about 0.55%", () => {
    assert.isTrue(relativeErrorBound > 0.0054 && relativeErrorBound < 0.0055)
  })

  it("gives the nearest-rank percentiles of 1..1000 ms within the bound, and exact count, mean and extremes", () => {
    const latencies = Array.from({ length: 1000 }, (_, i) => (i + 1) / 1000)
    const statistics = histogramOf(latencies).statistics()
    assert.strictEqual(statistics.count, 1000)
    assert.closeTo(statistics.mean, 0.5005, 1e-12)
    assert.strictEqual(statistics.min, 0.001)
    assert.strictEqual(statistics.max, 1)
    const expected = { p50: 0.5, p75: 0.75, p95: 0.95, p98: 0.98, p99: 0.99, p999: 0.999 }
    for (const [name, value] of Object.entries(expected)) {
      const reported = statistics[name as keyof typeof expected]
      assert.isTrue(Math.abs(reported - value) <= value * relativeErrorBound, `${name}: ${reported} vs ${value}`)
    }
  })

  it("keeps every percentile within the stated relative error of the exact one", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: lowestSeconds, max: 100, noNaN: true }), { minLength: 1, maxLength: 2000 }),
        (latencies) => {
          const histogram = histogramOf(latencies)
          const sorted = [...latencies].sort((a, b) => a - b)
          for (const q of quantiles) {
            const exact = exactQuantile(sorted, q)
            // A hair of floating-point slack where a value sits on a bucket boundary.
            assert.isTrue(Math.abs(histogram.quantile(q) - exact) <= exact * (relativeErrorBound + 1e-12))
          }
        }
      )
    )
  })

  it("reports exactly the one value recorded, and stays within 1 µs below the smallest latency told apart", () => {
    assert.strictEqual(histogramOf([0.0123]).quantile(0.99), 0.0123)
    const tiny = histogramOf([0, 1e-7, 5e-7]).statistics()
    assert.isTrue(tiny.p50 <= lowestSeconds && tiny.p99 <= lowestSeconds)
    assert.strictEqual(tiny.max, 5e-7)
  })
})
