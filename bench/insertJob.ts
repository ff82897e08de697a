/**
 * The insert-job comparisons of the full benchmark alone (bench/run.ts), measured the same way (`compareRounds`): the
 * same child, the same order of sides in each round (`roundOrder`), the same paired ratios with their intervals, for
 * re-measuring BatchJob without the rest of the run. Both ways of keeping the rows' outcomes are compared, one after
 * the other: counts and errors only (the driver's `executeConcurrent` by default against a BatchJob summary), and every
 * row's outcome (`collectResults: true` against a BatchJob report). Effect's floor runs in the same rounds: the
 * driver's requests in 256 looping fibers, one `Effect.promise` per row, so that the library's cost splits into
 * Effect's share and its own.
 *
 *   node --conditions=effect-cassandra/source bench/insertJob.ts [--contact-points 127.0.0.50] [--rounds 15] [--rows 100000]
 *
 * Prints the full run's tables of these comparisons (CPU and throughput, GC pauses, threads, Effect's floor) and
 * writes bench/results/insert-job.json with the machine, the code measured and every round's load average.
 */
import { parseArgs } from "node:util"
import { type InsertJobSide, insertJobLabel, insertOutcomes, type Job } from "./jobs.ts"
import { revision } from "./machine.ts"
import { reportComparisonsAlone } from "./report.ts"
import { compareRounds, positiveWholeFlag } from "./rounds.ts"

const { values: flags } = parseArgs({
  options: {
    "contact-points": { type: "string", default: process.env.CASSANDRA_CONTACT_POINTS ?? "127.0.0.50" },
    rounds: { type: "string", default: "15" },
    rows: { type: "string", default: "100000" }
  }
})
const rounds = positiveWholeFlag("rounds", flags.rounds ?? "")
const rows = positiveWholeFlag("rows", flags.rows ?? "")
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
reportComparisonsAlone(
  "insert-job.json",
  { startedAt, revision: measured },
  { contactPoints, rows, rounds },
  comparisons,
  {
    scope: `Insert job, ${rows} rows, ${rounds} rounds, real node ${contactPoints.join(",")}`,
    baseline: "the driver's executeConcurrent",
    subjects: "the library (BatchJob)"
  }
)
