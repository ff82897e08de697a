/**
 * The insert-job comparisons of the full benchmark alone (bench/run.ts): the same child, the same A B, B A rounds, the
 * same paired ratios with their intervals, for re-measuring BatchJob without the rest of the run. Both ways of keeping
 * the rows' outcomes are compared: counts and errors only (the driver's `executeConcurrent` by default against a
 * BatchJob summary), and every row's outcome (`collectResults: true` against a BatchJob report).
 *
 *   node --conditions=effect-cassandra/source bench/insertJob.ts [--contact-points 127.0.0.50] [--rounds 15] [--rows 100000]
 *
 * Writes bench/results/insert-job.json with the machine and every round's load average.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { insertJobLabel, insertOutcomes, type Job, runChild, type Sample } from "./jobs.ts"
import { loadAverage, machine, type RoundLoad, roundLoad } from "./machine.ts"
import { estimate, pairedRatio } from "./stats.ts"

const { values: flags } = parseArgs({
  options: {
    "contact-points": { type: "string", default: process.env.CASSANDRA_CONTACT_POINTS ?? "127.0.0.50" },
    rounds: { type: "string", default: "15" },
    rows: { type: "string", default: "100000" }
  }
})
const rounds = Number(flags.rounds)
const rows = Number(flags.rows)
const contactPoints = (flags["contact-points"] ?? "").split(",")
// Each pair (raw, library) keeps the rows' outcomes the same way; its two sides run back to back, in A B, B A order.
const pairs = insertOutcomes.map((outcomes) =>
  (["raw", "library"] as const).map((side): Job => ({ kind: "insertJob", side, outcomes, rows, contactPoints }))
)

const startedAt = new Date()
const samples = pairs.map((): Array<ReadonlyArray<Sample>> => [])
const loads: Array<RoundLoad> = []
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 1 ? [1, 0] : [0, 1]
  const before = loadAverage()
  const sampledInRound: Array<Sample> = []
  for (const [pair, jobs] of pairs.entries()) {
    const sampled = new Array<Sample>(jobs.length)
    for (const index of order) sampled[index] = await runChild(jobs[index] as Job)
    samples[pair]?.push(sampled)
    sampledInRound.push(...sampled)
  }
  loads.push(roundLoad(before, loadAverage(), sampledInRound))
  process.stderr.write(`bench: insert job: round ${round + 1} of ${rounds}\n`)
}
const cpuPerRow = (sample: Sample) => sample.cpuMicros / sample.count
const rowsPerSecond = (sample: Sample) => sample.count / sample.seconds
const comparisons = insertOutcomes.map((outcomes, pair) => {
  const side = (index: number, figure: (sample: Sample) => number) =>
    (samples[pair] ?? []).map((sampled) => figure(sampled[index] as Sample))
  return {
    label: insertJobLabel(rows, outcomes),
    outcomes,
    raw: { cpuMicrosPerRow: estimate(side(0, cpuPerRow)) },
    library: { cpuMicrosPerRow: estimate(side(1, cpuPerRow)) },
    ratio: {
      cpuPerRow: pairedRatio(side(0, cpuPerRow), side(1, cpuPerRow)),
      throughput: pairedRatio(side(0, rowsPerSecond), side(1, rowsPerSecond))
    }
  }
})
const report = {
  startedAt: startedAt.toISOString(),
  seconds: (Date.now() - startedAt.getTime()) / 1000,
  machine: machine(),
  contactPoints,
  rows,
  rounds,
  comparisons,
  load: { busyRounds: loads.filter((load) => load.busy).length, rounds: loads }
}
const shown = (figure: { median: number; interval: readonly [number, number] }) =>
  `${figure.median.toFixed(3)} [${figure.interval[0].toFixed(3)}, ${figure.interval[1].toFixed(3)}]`
for (const comparison of comparisons) {
  console.log(
    `${comparison.label}, ${rounds} rounds: CPU per row ${shown(comparison.ratio.cpuPerRow)} of the raw driver's ` +
      `(${comparison.raw.cpuMicrosPerRow.median.toFixed(2)} µs against ` +
      `${comparison.library.cpuMicrosPerRow.median.toFixed(2)}), throughput ${shown(comparison.ratio.throughput)}`
  )
}
console.log(`${report.load.busyRounds} of ${rounds} rounds busy`)
mkdirSync(new URL("./results/", import.meta.url), { recursive: true })
writeFileSync(new URL("./results/insert-job.json", import.meta.url), `${JSON.stringify(report, null, 2)}\n`)
