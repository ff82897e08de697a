/**
 * The insert-job comparisons of the full benchmark alone (bench/run.ts), measured the same way (`compareRounds`): the
 * same child, rounds alternating A B C and C B A, the same paired ratios with their intervals, for re-measuring
 * BatchJob without the rest of the run. Both ways of keeping the rows' outcomes are compared, one after the other:
 * counts and errors only (the driver's `executeConcurrent` by default against a BatchJob summary), and every row's
 * outcome (`collectResults: true` against a BatchJob report). Effect's floor runs in the same rounds: the driver's
 * requests in 256 looping fibers, one `Effect.promise` per row, so that the library's cost splits into Effect's share
 * and its own.
 *
 *   node --conditions=effect-cassandra/source bench/insertJob.ts [--contact-points 127.0.0.50] [--rounds 15] [--rows 100000]
 *
 * Writes bench/results/insert-job.json with the machine, the code measured and every round's load average.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { type InsertJobSide, insertJobLabel, insertOutcomes, type Job } from "./jobs.ts"
import { machine, revision } from "./machine.ts"
import { compareRounds, loadShown } from "./rounds.ts"

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

const startedAt = new Date()
const measured = revision()
const comparisons = []
for (const outcomes of insertOutcomes) {
  const job = (side: InsertJobSide): Job => ({
    kind: "insertJob",
    side,
    outcomes,
    rows,
    contactPoints
  })
  comparisons.push(
    await compareRounds(insertJobLabel(rows, outcomes), rounds, job("raw"), job("library"), job("effectFloor"))
  )
}
const report = {
  startedAt: startedAt.toISOString(),
  seconds: (Date.now() - startedAt.getTime()) / 1000,
  machine: machine(),
  revision: measured,
  contactPoints,
  rows,
  rounds,
  comparisons
}
const shown = (figure: { median: number; interval: readonly [number, number] }) =>
  `${figure.median.toFixed(3)} [${figure.interval[0].toFixed(3)}, ${figure.interval[1].toFixed(3)}]`
for (const comparison of comparisons) {
  console.log(
    `${comparison.label}, ${rounds} rounds: CPU per row ${shown(comparison.ratio.cpuPerItem)} of the raw driver's ` +
      `(${comparison.baseline.cpuMicrosPerItem.median.toFixed(2)} µs against ` +
      `${comparison.subject.cpuMicrosPerItem.median.toFixed(2)}), throughput ${shown(comparison.ratio.throughput)}; ` +
      `rounds: ${loadShown(comparison.load)}`
  )
  if (comparison.floor !== undefined) {
    console.log(
      `  Effect floor (the driver's requests in looping fibers): ${comparison.floor.cpuMicrosPerItem.median.toFixed(2)} µs, ` +
        `floor / raw driver ${shown(comparison.floor.cpuOverBaseline)}, library / floor ${shown(comparison.floor.subjectCpuOverFloor)}`
    )
  }
}
mkdirSync(new URL("./results/", import.meta.url), { recursive: true })
writeFileSync(new URL("./results/insert-job.json", import.meta.url), `${JSON.stringify(report, null, 2)}\n`)
