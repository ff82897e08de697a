/** The statistics every benchmark figure is reported with: medians, quantiles and a seeded bootstrap interval. */

/**
 * The `q` quantile (0..1) of `values`, interpolated between the two nearest ranks; NaN when a value is NaN (a figure
 * not measured), which no sort can place.
 */
export const quantile = (values: ReadonlyArray<number>, q: number): number => {
  if (values.length === 0 || values.some(Number.isNaN)) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const position = (sorted.length - 1) * q
  const below = Math.floor(position)
  const lower = sorted[below] ?? Number.NaN
  // On a rank, or between equal ones, no interpolation: with infinite ranks (a ratio over a zero baseline) it is NaN.
  if (position === below) return lower
  const upper = sorted[below + 1] ?? lower
  return upper === lower ? lower : lower + (upper - lower) * (position - below)
}

export const median = (values: ReadonlyArray<number>): number => quantile(values, 0.5)

/**
 * A small seeded generator (mulberry32): the bootstrap must resample the same way on every run, so that two reports
 * of the same rounds show the same interval.
 */
const seededRandom = (seed: number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

const bootstrapResamples = 10_000
const bootstrapSeed = 13

/** A figure as reported: the median over rounds, its 95% bootstrap interval, and the smallest and largest round. */
export interface Estimate {
  readonly median: number
  readonly interval: readonly [low: number, high: number]
  readonly range: readonly [min: number, max: number]
  readonly rounds: ReadonlyArray<number>
}

/**
 * The median of `rounds` with a 95% percentile-bootstrap interval of that median; every figure NaN when there is no
 * round or a round is NaN (see `quantile`), rather than a median of the rounds that have one.
 */
export const estimate = (rounds: ReadonlyArray<number>): Estimate => {
  if (rounds.length === 0 || rounds.some(Number.isNaN)) {
    return { median: Number.NaN, interval: [Number.NaN, Number.NaN], range: [Number.NaN, Number.NaN], rounds }
  }
  const random = seededRandom(bootstrapSeed)
  const resample = new Array<number>(rounds.length)
  const medians = new Array<number>(bootstrapResamples)
  for (let b = 0; b < bootstrapResamples; b++) {
    for (let i = 0; i < rounds.length; i++) resample[i] = rounds[Math.floor(random() * rounds.length)] ?? Number.NaN
    medians[b] = median(resample)
  }
  return {
    median: median(rounds),
    interval: [quantile(medians, 0.025), quantile(medians, 0.975)],
    range: [Math.min(...rounds), Math.max(...rounds)],
    rounds
  }
}

/**
 * Two sides measured in the same rounds, compared round by round: the estimate of `combine(baseline, subject)` per
 * round. Pairing cancels what a round did to both sides (a busy machine, a warmer server), which a ratio of the two
 * sides' medians would keep.
 */
const paired = (
  baseline: ReadonlyArray<number>,
  subject: ReadonlyArray<number>,
  combine: (baseline: number, subject: number) => number
): Estimate => {
  if (baseline.length !== subject.length) {
    throw new Error(`paired rounds differ in number: ${baseline.length} baseline, ${subject.length} subject`)
  }
  return estimate(subject.map((value, round) => combine(baseline[round] as number, value)))
}

/** The per-round ratio subject / baseline, estimated over rounds. */
export const pairedRatio = (baseline: ReadonlyArray<number>, subject: ReadonlyArray<number>): Estimate =>
  paired(baseline, subject, (a, b) => b / a)

/** The per-round difference subject - baseline, estimated over rounds. */
export const pairedDifference = (baseline: ReadonlyArray<number>, subject: ReadonlyArray<number>): Estimate =>
  paired(baseline, subject, (a, b) => b - a)
