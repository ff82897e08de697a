/**
 * The request comparisons of the full benchmark alone (bench/run.ts), measured the same way (`compareRounds`): for
 * each operation and concurrency asked for, the raw driver's looping workers, the library's looping fibers and
 * Effect's floor, in the same child and the same order of sides in each round (`roundOrder`), with the same paired
 * ratios and intervals, for re-measuring a row of the request path without the rest of the run.
 *
 *   node --conditions=effect-cassandra/source bench/requests.ts [--contact-points 127.0.0.201] [--rounds 15]
 *     [--operations read,write] [--concurrency 1,256] [--requests N]
 *
 * `--requests` is what each child measures (by default the full run's count at its concurrency). The node must hold
 * the benchmark's tables (a run of bench/run.ts against it makes them). Prints the full run's tables of these
 * comparisons and writes bench/results/requests.json with the machine, the code measured and every round's load.
 */
import { parseArgs } from "node:util"
import { fullRunRequests, type Job, type Operation } from "./jobs.ts"
import { revision } from "./machine.ts"
import { reportComparisonsAlone } from "./report.ts"
import { compareRounds, positiveWholeFlag } from "./rounds.ts"

const { values: flags } = parseArgs({
  options: {
    "contact-points": { type: "string", default: process.env.CASSANDRA_CONTACT_POINTS ?? "127.0.0.201" },
    rounds: { type: "string", default: "15" },
    operations: { type: "string", default: "read,write" },
    concurrency: { type: "string", default: "1,256" },
    requests: { type: "string" }
  }
})
const rounds = positiveWholeFlag("rounds", flags.rounds ?? "")
const contactPoints = (flags["contact-points"] ?? "").split(",")
const operations = (flags.operations ?? "").split(",") as Array<Operation>
for (const operation of operations)
  if (operation !== "read" && operation !== "write")
    throw new Error(`--operations: "${operation}" is not read or write`)
const concurrencies = (flags.concurrency ?? "").split(",").map((given) => {
  if (given !== "1" && given !== "256") throw new Error(`--concurrency: "${given}" is not 1 or 256, the benchmark's`)
  return Number(given) as keyof typeof fullRunRequests
})

const requestsGiven = flags.requests === undefined ? undefined : positiveWholeFlag("requests", flags.requests)

const startedAt = new Date()
const measured = revision()
const comparisons = []
for (const operation of operations)
  for (const concurrency of concurrencies) {
    const requests = requestsGiven ?? fullRunRequests[concurrency]
    const job = (side: "raw" | "fibers" | "effectFloor"): Job => ({
      kind: "requests",
      side,
      observability: "default",
      operation,
      concurrency,
      requests,
      contactPoints
    })
    comparisons.push(
      await compareRounds(`${operation} c=${concurrency}`, rounds, job("raw"), job("fibers"), job("effectFloor"))
    )
  }
reportComparisonsAlone("requests.json", { startedAt, revision: measured }, { contactPoints, rounds }, comparisons, {
  scope: `Requests, ${rounds} rounds, real node ${contactPoints.join(",")}`,
  baseline: "raw driver",
  subjects: "the library"
})
