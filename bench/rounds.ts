/**
 * Rounds of child processes and the paired comparison of their sides: what bench/run.ts, bench/insertJob.ts and
 * bench/requests.ts measure with.
 */
import { type Job, runChild, type Sample } from "./jobs.ts"
import { loadReading, type RoundLoad, roundLoad } from "./machine.ts"
import { estimate, median, pairedDifference, pairedRatio } from "./stats.ts"

/**
 * A numeric flag of a script that runs comparisons alone: a positive whole number, or an error naming the flag and
 * what it was given, before anything runs or a results file is overwritten.
 */
export const positiveWholeFlag = (flag: string, given: string) => {
  const value = Number(given)
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${flag} ${given}: a positive whole number is needed`)
  return value
}

/** What the run is doing, on stderr, so that a slow run shows where it is. */
export const step = (text: string) => process.stderr.write(`bench: ${text}\n`)

/** One round: every job's sample, and the machine's load around it. */
export interface Round {
  /** One sample per job, in the order the jobs were given (not the order they ran in). */
  readonly samples: ReadonlyArray<Sample>
  readonly load: RoundLoad
}

/**
 * The order in which round `round` runs `sides` jobs (their indices): round 2k runs them rotated left by k, round
 * 2k + 1 in the reverse of that. With two sides the rounds run A B, B A, B A, A B; with three A B C, C B A, B C A, A C B,
 * C A B, B A C. Over 2n rounds each of n sides runs in each place twice, so that none always runs first, last or between
 * the others (the server and the machine warm and cool along a round).
 */
export const roundOrder = (sides: number, round: number): Array<number> => {
  const shift = Math.floor(round / 2) % sides
  const order = Array.from({ length: sides }, (_, place) => (place + shift) % sides)
  return round % 2 === 1 ? order.reverse() : order
}

/** Runs every job once per round, each in its own child, in the order {@link roundOrder} gives. */
export const runRounds = async (label: string, rounds: number, jobs: ReadonlyArray<Job>): Promise<Array<Round>> => {
  const result: Array<Round> = []
  for (let round = 0; round < rounds; round++) {
    step(`${label}: round ${round + 1} of ${rounds}`)
    const order = roundOrder(jobs.length, round)
    const before = loadReading()
    const samples = new Array<Sample>(jobs.length)
    for (const index of order) samples[index] = await runChild(jobs[index] as Job)
    result.push({ samples, load: roundLoad(before, loadReading(), samples) })
  }
  return result
}

const cpuMicrosPerItem = (sample: Sample) => sample.cpuMicros / sample.count
/** The main thread's CPU per item, and the other threads' (V8's helpers and libuv's): together the CPU figure. */
const mainThreadCpuMicrosPerItem = (sample: Sample) => sample.mainThreadCpuMicros / sample.count
const otherThreadsCpuMicrosPerItem = (sample: Sample) => (sample.cpuMicros - sample.mainThreadCpuMicros) / sample.count
/**
 * The main thread's garbage-collection pauses per item of a sample's measured run, in µs (see `Sample.gcMillis`): wall
 * time, so on a busy machine it grows with the waits for a core as CPU time does not; and not GC work on helper
 * threads, which CPU time counts. So it is neither a share nor a bound of the CPU figure.
 */
const gcPauseMicrosPerItem = (sample: Sample) => (sample.gcMillis * 1000) / sample.count
/** Requests (or rows) per second of a sample's measured run. */
export const throughputOf = (sample: Sample) => sample.count / sample.seconds

/**
 * How many rounds ran on a machine busier than the client, the median steal time of the rounds whose steal was read
 * (undefined when none was) and how many those were, and every round's load.
 */
export const loadOf = (rounds: ReadonlyArray<Round>) => {
  const stolen = rounds.flatMap((round) => round.load.stolen ?? [])
  return {
    busyRounds: rounds.filter((round) => round.load.busy).length,
    stolenMedian: stolen.length === 0 ? undefined : median(stolen),
    stolenRounds: stolen.length,
    rounds: rounds.map((round) => round.load)
  }
}

/** A share as a percentage with one decimal. */
export const percent = (share: number) => `${(share * 100).toFixed(1)}%`

/**
 * A comparison's load as its table shows it: "3/15 busy, 4.2% stolen", ending "(read in 12 of 15 rounds)" when some
 * rounds' steal could not be read.
 */
export const loadShown = (load: ReturnType<typeof loadOf>) => {
  const read =
    load.stolenRounds < load.rounds.length ? ` (read in ${load.stolenRounds} of ${load.rounds.length} rounds)` : ""
  return `${load.busyRounds}/${load.rounds.length} busy${load.stolenMedian === undefined ? "" : `, ${percent(load.stolenMedian)} stolen${read}`}`
}

/**
 * Two sides compared round by round: each side's CPU (and its main thread's and other threads' parts), GC pauses (and
 * collections) and throughput per item; the per-round ratios subject / baseline of CPU and throughput; the per-round
 * differences subject - baseline of CPU, of each part of it and of GC pauses per item (medians of differences, not
 * differences of the sides' medians; CPU and GC pauses are not additive, see `gcPauseMicrosPerItem`). With a `floor`
 * (the raw driver in looping fibers, one `Effect.promise` per request) run in the same rounds, the ratios floor /
 * baseline and subject / floor split the subject's cost into Effect's fiber runtime and the library's own, and the
 * difference floor - baseline of GC pauses shows the runtime's garbage.
 */
export const compareRounds = async (label: string, rounds: number, baseline: Job, subject: Job, floor?: Job) =>
  compareSampled(
    label,
    await runRounds(label, rounds, floor === undefined ? [baseline, subject] : [baseline, subject, floor]),
    floor !== undefined
  )

/**
 * The figures of {@link compareRounds} from rounds already run: each round's samples are the baseline's, the
 * subject's and, `withFloor`, the floor's.
 */
export const compareSampled = (label: string, sampled: ReadonlyArray<Round>, withFloor: boolean) => {
  const sides = withFloor ? 3 : 2
  const uneven = sampled.findIndex((round) => round.samples.length !== sides)
  if (uneven >= 0) {
    throw new Error(`${label}: round ${uneven + 1} has ${sampled[uneven]?.samples.length} samples, not ${sides}`)
  }
  /** Side `index`'s figure in each round. */
  const valuesOf = (figure: (sample: Sample) => number, index: number) =>
    sampled.map((round) => figure(round.samples[index] as Sample))
  const sideFigures = (index: number) => ({
    cpuMicrosPerItem: estimate(valuesOf(cpuMicrosPerItem, index)),
    mainThreadCpuMicrosPerItem: estimate(valuesOf(mainThreadCpuMicrosPerItem, index)),
    otherThreadsCpuMicrosPerItem: estimate(valuesOf(otherThreadsCpuMicrosPerItem, index)),
    gcPauseMicrosPerItem: estimate(valuesOf(gcPauseMicrosPerItem, index)),
    gcCollections: estimate(valuesOf((sample) => sample.gcCount, index)),
    throughput: estimate(valuesOf(throughputOf, index))
  })
  /** The per-round ratio of side `over`'s figure to side `under`'s. */
  const ratioOf = (figure: (sample: Sample) => number, over: number, under: number) =>
    pairedRatio(valuesOf(figure, under), valuesOf(figure, over))
  /** The per-round difference of side `over`'s figure less side `under`'s. */
  const differenceOf = (figure: (sample: Sample) => number, over: number, under: number) =>
    pairedDifference(valuesOf(figure, under), valuesOf(figure, over))
  return {
    label,
    baseline: sideFigures(0),
    subject: sideFigures(1),
    ratio: { cpuPerItem: ratioOf(cpuMicrosPerItem, 1, 0), throughput: ratioOf(throughputOf, 1, 0) },
    extra: {
      cpuMicrosPerItem: differenceOf(cpuMicrosPerItem, 1, 0),
      mainThreadCpuMicrosPerItem: differenceOf(mainThreadCpuMicrosPerItem, 1, 0),
      otherThreadsCpuMicrosPerItem: differenceOf(otherThreadsCpuMicrosPerItem, 1, 0),
      gcPauseMicrosPerItem: differenceOf(gcPauseMicrosPerItem, 1, 0)
    },
    ...(withFloor
      ? {
          floor: {
            ...sideFigures(2),
            cpuOverBaseline: ratioOf(cpuMicrosPerItem, 2, 0),
            extraGcPauseMicrosOverBaseline: differenceOf(gcPauseMicrosPerItem, 2, 0),
            subjectCpuOverFloor: ratioOf(cpuMicrosPerItem, 1, 2)
          }
        }
      : {}),
    load: loadOf(sampled)
  }
}

/** Two sides (and the floor) compared round by round: what {@link compareSampled} gives. */
export type Comparison = ReturnType<typeof compareSampled>
