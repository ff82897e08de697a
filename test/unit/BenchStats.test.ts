import { assert, describe, it, vi } from "@effect/vitest"
import type { Sample } from "../../bench/jobs.ts"
import { printComparisons } from "../../bench/report.ts"
import { type Comparison, compareSampled, type Round, roundOrder } from "../../bench/rounds.ts"
import { estimate, median, pairedDifference, pairedRatio, quantile } from "../../bench/stats.ts"

/**
 * Rounds of three sides (baseline, subject, floor) on a machine whose speed changes between rounds: against the
 * baseline, the subject always costs 5 µs more CPU and 2 µs more GC pauses, the floor 4 µs more CPU and 3 µs more GC
 * pauses; the main thread takes three quarters of every sample's CPU.
 */
const threeSidedRounds = (): ReadonlyArray<Round> => {
  const sample = (cpuMicrosPerItem: number, gcMicrosPerItem: number, gcCount: number): Sample => ({
    seconds: 1,
    cpuMicros: cpuMicrosPerItem * 1000,
    mainThreadCpuMicros: cpuMicrosPerItem * 750,
    count: 1000,
    gcMillis: gcMicrosPerItem,
    gcCount
  })
  const load = { before: [0, 0, 0], after: [0, 0, 0], stolen: undefined, clientCores: 1, busy: false } as const
  return [1, 3, 2, 5, 1.5].map((speed) => ({
    samples: [
      sample(40 * speed, 10 * speed, 4),
      sample(40 * speed + 5, 10 * speed + 2, 6),
      sample(40 * speed + 4, 10 * speed + 3, 5)
    ],
    load
  }))
}

/** The tables `printComparisons` prints: each one's title, header cells and rows of cells (apart by 2+ spaces). */
const printedTables = (comparisons: ReadonlyArray<Comparison>) => {
  const printed: Array<string> = []
  const log = vi.spyOn(console, "log").mockImplementation((line: string) => void printed.push(line))
  try {
    printComparisons(comparisons, {
      scope: "Insert job",
      baseline: "the driver's executeConcurrent",
      subjects: "the library (BatchJob)"
    })
  } finally {
    log.mockRestore()
  }
  return printed
    .join("\n")
    .split("\n\n")
    .map((table) => table.trim().split("\n"))
    .filter((lines) => lines.length > 1)
    .map(([title = "", header = "", ...rows]) => ({
      title,
      header: header.trim().split(/\s{2,}/),
      rows: rows.map((row) => row.split(/\s{2,}/))
    }))
}

describe("benchmark statistics", () => {
  it("interpolates quantiles between the nearest ranks, without reordering the input", () => {
    const values = [4, 1, 3, 2]
    assert.strictEqual(quantile(values, 0.5), 2.5)
    assert.strictEqual(quantile(values, 0), 1)
    assert.strictEqual(quantile(values, 1), 4)
    assert.strictEqual(quantile(values, 0.25), 1.75)
    assert.deepStrictEqual(values, [4, 1, 3, 2])
    assert.isNaN(quantile([], 0.5))
    assert.strictEqual(median([7]), 7)
  })

  it("gives the median with a 95% bootstrap interval inside the rounds' range, the same on every run", () => {
    const rounds = [10, 12, 11, 30, 9, 10, 11, 13, 10, 12, 11, 10, 9, 12, 11]
    const figure = estimate(rounds)
    assert.strictEqual(figure.median, 11)
    assert.deepStrictEqual(figure.range, [9, 30])
    const [low, high] = figure.interval
    assert.isAtMost(low, figure.median)
    assert.isAtLeast(high, figure.median)
    assert.isAtLeast(low, 9)
    // One outlying round moves the median's interval little: it stays far below the outlier.
    assert.isBelow(high, 20)
    assert.deepStrictEqual(estimate(rounds).interval, figure.interval, "seeded: the same rounds, the same interval")
    assert.deepStrictEqual(estimate([5, 5, 5, 5, 5]).interval, [5, 5])
  })

  it("reports a figure with a missing round as not measured, not as the median of the rounds it has", () => {
    // A round whose child gave no figure (a fixed-load round with no p99) is NaN; sorting with it would order the rest
    // arbitrarily, so any of them could come out as the median.
    for (const rounds of [
      [Number.NaN, 3, 1, 2],
      [3, Number.NaN, 1, 2, 5],
      [4, 1, 3, 2, Number.NaN]
    ]) {
      assert.isNaN(quantile(rounds, 0.5))
      const figure = estimate(rounds)
      assert.isNaN(figure.median)
      assert.isNaN(figure.interval[0])
      assert.isNaN(figure.interval[1])
      assert.isNaN(figure.range[0])
      assert.isNaN(figure.range[1])
    }
    const none = estimate([])
    assert.isNaN(none.median)
    assert.isNaN(none.range[0])
    assert.isNaN(none.range[1])
  })

  it("takes an infinite round (a ratio over a zero baseline) as the largest, not as a figure not measured", () => {
    assert.strictEqual(median([1, 2, Number.POSITIVE_INFINITY]), 2)
    assert.strictEqual(quantile([1, 2, Number.POSITIVE_INFINITY], 1), Number.POSITIVE_INFINITY)
    assert.strictEqual(
      median([1, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]),
      Infinity
    )
    const figure = estimate([1, 2, 3, 4, Number.POSITIVE_INFINITY])
    assert.strictEqual(figure.median, 3)
    assert.deepStrictEqual(figure.interval, [1, Number.POSITIVE_INFINITY])
    assert.deepStrictEqual(figure.range, [1, Number.POSITIVE_INFINITY])
  })

  it("narrows the interval as rounds agree, and widens it as they spread", () => {
    const width = (rounds: ReadonlyArray<number>) => {
      const [low, high] = estimate(rounds).interval
      return high - low
    }
    const tight = [100, 101, 99, 100, 102, 98, 100, 101, 99, 100, 100, 101, 99]
    const spread = [100, 130, 70, 110, 160, 60, 100, 140, 80, 90, 120, 65, 150]
    assert.isBelow(width(tight), width(spread))
  })

  it("pairs the sides round by round, so that what a round does to both cancels out", () => {
    // A machine whose speed changes tenfold between rounds, with the subject always twice the baseline.
    const baseline = [1, 10, 100, 3, 30, 7, 70]
    const subject = baseline.map((value) => value * 2)
    const ratio = pairedRatio(baseline, subject)
    assert.strictEqual(ratio.median, 2)
    assert.deepStrictEqual(ratio.interval, [2, 2])
    assert.deepStrictEqual(ratio.range, [2, 2])
    const overhead = pairedDifference(baseline, subject)
    assert.deepStrictEqual(overhead.rounds, baseline)
    assert.strictEqual(overhead.median, 10)
    assert.throws(() => pairedRatio([1, 2], [1]), /paired rounds differ in number: 2 baseline, 1 subject/)
  })

  it("gives each side's GC pauses and threads' CPU per item and the paired differences of each, the floor's included", () => {
    const rounds = threeSidedRounds()
    const comparison = compareSampled("read c=256", rounds, true)
    assert.deepStrictEqual(comparison.extra.cpuMicrosPerItem.interval, [5, 5])
    assert.deepStrictEqual(comparison.extra.gcPauseMicrosPerItem.interval, [2, 2])
    assert.deepStrictEqual(comparison.extra.mainThreadCpuMicrosPerItem.interval, [3.75, 3.75])
    assert.deepStrictEqual(comparison.extra.otherThreadsCpuMicrosPerItem.interval, [1.25, 1.25])
    assert.strictEqual(comparison.baseline.mainThreadCpuMicrosPerItem.median, 60)
    assert.strictEqual(comparison.subject.otherThreadsCpuMicrosPerItem.median, 21.25)
    assert.strictEqual(comparison.baseline.gcPauseMicrosPerItem.median, 20)
    assert.strictEqual(comparison.subject.gcPauseMicrosPerItem.median, 22)
    assert.strictEqual(comparison.subject.gcCollections.median, 6)
    assert.strictEqual(comparison.floor?.gcPauseMicrosPerItem.median, 23)
    assert.deepStrictEqual(comparison.floor?.extraGcPauseMicrosOverBaseline.interval, [3, 3])
    assert.strictEqual(comparison.floor?.gcCollections.median, 5)
    assert.strictEqual(comparison.floor?.mainThreadCpuMicrosPerItem.median, 63)
    const twoSides = compareSampled(
      "two sides",
      rounds.map((round) => ({ ...round, samples: round.samples.slice(0, 2) })),
      false
    )
    assert.isUndefined(twoSides.floor)
    assert.strictEqual(twoSides.extra.gcPauseMicrosPerItem.median, 2)
    assert.throws(() => compareSampled("uneven", rounds, false), /uneven: round 1 has 3 samples, not 2/)
  })

  it("prints every figure of a comparison under its header, and a floor table of the comparisons with a floor", () => {
    const insertJob = compareSampled("insert job", threeSidedRounds(), true)
    const tables = printedTables([insertJob])
    assert.deepStrictEqual(
      tables.map(({ header, rows }) => ({ header, row: rows[0] })),
      [
        {
          header: [
            "baseline CPU µs/item",
            "library CPU µs/item",
            "CPU ratio",
            "baseline items/s",
            "throughput ratio",
            "rounds' load"
          ],
          row: [
            "insert job",
            "80.0 [40.0, 200.0] (40.0..200.0)",
            "85.0 [45.0, 205.0] (45.0..205.0)",
            "1.063 [1.025, 1.125] (1.025..1.125)",
            "1,000 [1,000, 1,000] (1,000..1,000)",
            "1.000 [1.000, 1.000] (1.000..1.000)",
            "0/5 busy"
          ]
        },
        {
          header: [
            "baseline GC µs/item",
            "library GC µs/item",
            "library - baseline CPU µs/item",
            "library - baseline GC µs/item"
          ],
          row: [
            "insert job",
            "20.0 [10.0, 50.0] (10.0..50.0)",
            "22.0 [12.0, 52.0] (12.0..52.0)",
            "5.0 [5.0, 5.0] (5.0..5.0)",
            "2.0 [2.0, 2.0] (2.0..2.0)"
          ]
        },
        {
          header: [
            "baseline main µs/item",
            "baseline other µs/item",
            "library main µs/item",
            "library other µs/item",
            "library - baseline main",
            "library - baseline other"
          ],
          row: [
            "insert job",
            "60.0 [30.0, 150.0] (30.0..150.0)",
            "20.0 [10.0, 50.0] (10.0..50.0)",
            "63.8 [33.8, 153.8] (33.8..153.8)",
            "21.3 [11.3, 51.3] (11.3..51.3)",
            "3.8 [3.8, 3.8] (3.8..3.8)",
            "1.3 [1.3, 1.3] (1.3..1.3)"
          ]
        },
        {
          header: [
            "floor CPU µs/item",
            "floor GC µs/item",
            "floor - raw driver GC µs/item",
            "floor / raw driver CPU",
            "library / floor CPU"
          ],
          row: [
            "insert job",
            "84.0 [44.0, 204.0] (44.0..204.0)",
            "23.0 [13.0, 53.0] (13.0..53.0)",
            "3.0 [3.0, 3.0] (3.0..3.0)",
            "1.050 [1.020, 1.100] (1.020..1.100)",
            "1.012 [1.005, 1.023] (1.005..1.023)"
          ]
        }
      ]
    )
    const sides = "baseline (the driver's executeConcurrent)"
    assert.match(tables[0]?.title ?? "", /^Insert job: baseline \(the driver's executeConcurrent\) against the library/)
    assert.include(tables[1]?.title, `${sides} and the library (BatchJob)`)
    assert.include(tables[2]?.title, "baseline and the library (BatchJob)")
    assert.include(tables[3]?.title, "(Effect's floor)")
    // A comparison without the floor has rows in the first three tables only; with none, there is no floor table.
    const rounds = threeSidedRounds().map((round) => ({ ...round, samples: round.samples.slice(0, 2) }))
    const twoSides = compareSampled("two sides", rounds, false)
    const mixed = printedTables([insertJob, twoSides])
    assert.deepStrictEqual(
      mixed.map((table) => table.rows.map(([label]) => label)),
      [["insert job", "two sides"], ["insert job", "two sides"], ["insert job", "two sides"], ["insert job"]]
    )
    const withoutFloor = printedTables([twoSides])
    assert.strictEqual(withoutFloor.length, 3)
    assert.notInclude(withoutFloor.map((table) => table.title).join("\n"), "Effect's floor")
  })

  it("runs no side always in the same place of its rounds: each place equally often over two rounds a side", () => {
    const letters = (sides: number, rounds: number) =>
      Array.from({ length: rounds }, (_, round) =>
        roundOrder(sides, round)
          .map((index) => "ABC"[index])
          .join("")
      )
    assert.deepStrictEqual(letters(2, 4), ["AB", "BA", "BA", "AB"])
    assert.deepStrictEqual(letters(3, 6), ["ABC", "CBA", "BCA", "ACB", "CAB", "BAC"])
    // Over 2n rounds of n sides, every side runs in every place exactly twice, and each round runs every side once.
    for (const sides of [1, 2, 3, 4, 15]) {
      const places = Array.from({ length: sides }, () => new Array<number>(sides).fill(0))
      for (let round = 0; round < 2 * sides; round++) {
        const order = roundOrder(sides, round)
        assert.deepStrictEqual(
          [...order].sort((a, b) => a - b),
          Array.from({ length: sides }, (_, index) => index)
        )
        order.forEach((side, place) => {
          const counts = places[side] as Array<number>
          counts[place] = (counts[place] as number) + 1
        })
      }
      assert.deepStrictEqual(
        places,
        Array.from({ length: sides }, () => new Array<number>(sides).fill(2))
      )
    }
  })
})
