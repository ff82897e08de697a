/**
 * The benchmark: this library against the raw `cassandra-driver`, each side of each round in a child process of its
 * own (bench/child.ts), the sides' order turning from round to round (`roundOrder`) so that none always runs on a warmer
 * server or a quieter machine.
 *
 *   npm run bench                    full run (15 rounds, streaming included)
 *   npm run bench -- --quick         7 rounds, no streaming
 *   npm run bench -- --client-only   no Cassandra: the library's overhead over a stub client (CI's report, about 3 min)
 *
 * Against a real node the contact points come from --contact-points or CASSANDRA_CONTACT_POINTS; without either a
 * local node is started (127.0.0.201, cluster "bench": an address no test uses). Every figure is the median over rounds
 * of a per-round value (a paired ratio where two sides are compared) with a seeded 95% bootstrap interval and the range
 * of the rounds.
 * The tables are printed; every figure goes to bench/results/latest.json (client-only.json for a client-only run) with
 * the machine and its load.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { parseArgs } from "node:util"
import * as Cassandra from "cassandra-driver"
import { Effect } from "effect"
import { Session } from "effect-cassandra"
import * as LocalCassandra from "../tools/cassandra/LocalCassandra.ts"
import {
  type ClientOnlyVariant,
  clientOnlyBaseline,
  clientOnlyVariants,
  fullRunRequests,
  type InsertJobSide,
  insertJobLabel,
  insertOutcomes,
  type Job,
  noPretenuring,
  type Sample
} from "./jobs.ts"
import { loadAverage, machine, revision, stolenLimit } from "./machine.ts"
import { digits, legend, printComparisons, printTable, shown } from "./report.ts"
import { type Comparison, compareRounds, loadOf, percent, runRounds, step, throughputOf } from "./rounds.ts"
import { type Estimate, estimate, median, pairedDifference, pairedRatio } from "./stats.ts"
import { streamingFigures } from "./streaming.ts"
import { kvTable, readKeys, schema } from "./tables.ts"

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    "client-only": { type: "boolean", default: false },
    "contact-points": { type: "string" }
  }
})
const mode = flags["client-only"] === true ? "client-only" : flags.quick === true ? "quick" : "full"
const plan =
  mode === "full"
    ? {
        rounds: 15,
        requests: fullRunRequests,
        insertRows: 100_000,
        latencyRounds: 7,
        latencySeconds: 10,
        peakRounds: 3
      }
    : {
        rounds: 7,
        requests: { 1: 4_000, 256: 20_000 },
        insertRows: 20_000,
        latencyRounds: 3,
        latencySeconds: 4,
        peakRounds: 3
      }
/**
 * The client-only plan is the same in every mode: it must stay within a CI step's few minutes. A child measures
 * 100,000 requests (0.1 to 2 s): with 10,000 a plain read's run lasted 20 to 40 ms, and the CPU that V8's compiler
 * threads still spent after the warm-up moved a row's figure by more than the overheads it reports.
 */
const clientOnlyPlan = {
  rounds: 5,
  warmUpRequests: 30_000,
  requests: 100_000,
  concurrency: 32,
  inFlightRequests: 10_000,
  inFlightRounds: 3,
  heldInputs: 100_000,
  heldInputsRounds: 3
}
const loadLevels = [0.25, 0.5, 0.75] as const
const streamRows = 1_000_000
const streamRounds = 3

type RequestsJob = Extract<Job, { readonly kind: "requests" }>

/** The one comparison whose subject is not the library: the raw driver against itself without V8's pretenuring. */
const pretenuringLabel = "raw driver read c=256: V8 pretenuring on -> off"
const subjects = `the library (for "${pretenuringLabel}", the raw driver without it)`

/** Two sides compared round by round over the plan's rounds (see `compareRounds`). */
const compareSides = (label: string, baseline: Job, subject: Job, floor?: Job) =>
  compareRounds(label, plan.rounds, baseline, subject, floor)

const clientOnly = async () => {
  const jobs = clientOnlyVariants.map(
    (variant): Job => ({
      kind: "clientOnly",
      variant,
      concurrency: clientOnlyPlan.concurrency,
      warmUpRequests: clientOnlyPlan.warmUpRequests,
      requests: clientOnlyPlan.requests
    })
  )
  const rounds = await runRounds("client-only", clientOnlyPlan.rounds, jobs)
  const samplesOf = (variant: ClientOnlyVariant) => {
    const index = clientOnlyVariants.indexOf(variant)
    return rounds.map((round) => round.samples[index] as Sample)
  }
  const nanosPerRequest = (sample: Sample) => (sample.cpuMicros * 1000) / sample.count
  // Over the rounds that measured it: a child measures no allocation when a GC ran during its batch.
  const allocated = (samples: ReadonlyArray<Sample>) =>
    estimate(samples.flatMap((sample) => sample.allocatedBytesPerRequest ?? []))
  const figures = clientOnlyVariants.map((variant) => {
    const samples = samplesOf(variant)
    const baseline = clientOnlyBaseline(variant)
    return {
      variant,
      cpuNanosPerRequest: estimate(samples.map(nanosPerRequest)),
      overheadNanosPerRequest:
        baseline === undefined
          ? undefined
          : pairedDifference(samplesOf(baseline).map(nanosPerRequest), samples.map(nanosPerRequest)),
      allocatedBytesPerRequest: allocated(samples),
      gcMillisPer1000Requests: estimate(samples.map((sample) => (sample.gcMillis * 1000) / sample.count))
    }
  })
  printTable(
    `Client-only: the library over a stub client, ${clientOnlyPlan.concurrency} looping workers/fibers, ${clientOnlyPlan.requests} requests per round (${legend})`,
    ["", "CPU ns/req", "overhead over stub ns/req", "JS heap B/req", "GC ms/1000 req"],
    figures.map((row) => [
      row.variant,
      shown(row.cpuNanosPerRequest, 0),
      row.overheadNanosPerRequest === undefined ? "(baseline)" : shown(row.overheadNanosPerRequest, 0),
      shown(row.allocatedBytesPerRequest, 0),
      shown(row.gcMillisPer1000Requests, 2)
    ])
  )

  const inFlightJobs = (["raw", "effectFloor", "library"] as const).map(
    (side): Job => ({ kind: "inFlight", side, count: clientOnlyPlan.inFlightRequests })
  )
  const inFlightRounds = await runRounds("memory in flight", clientOnlyPlan.inFlightRounds, inFlightJobs)
  const heldBytes = (index: number) =>
    estimate(inFlightRounds.map((round) => round.samples[index]?.heapBytesPerRequest ?? Number.NaN))
  const inFlight = {
    requests: clientOnlyPlan.inFlightRequests,
    raw: heldBytes(0),
    effectFloor: heldBytes(1),
    library: heldBytes(2)
  }
  printTable(
    `Memory per in-flight request: ${clientOnlyPlan.inFlightRequests} reads held by the stub, heap after GC / count (${legend})`,
    ["", "raw driver", "Effect floor", "library"],
    [["heap B/request", shown(inFlight.raw, 0), shown(inFlight.effectFloor, 0), shown(inFlight.library, 0)]]
  )
  const heldInputsJobs = (["raw", "library"] as const).map(
    (side): Job => ({ kind: "heldInputs", side, count: clientOnlyPlan.heldInputs })
  )
  const heldInputsRounds = await runRounds("inputs held", clientOnlyPlan.heldInputsRounds, heldInputsJobs)
  const heldInputBytes = (index: number) =>
    estimate(heldInputsRounds.map((round) => round.samples[index]?.heapBytesPerRequest ?? Number.NaN))
  const heldInputs = { inputs: clientOnlyPlan.heldInputs, raw: heldInputBytes(0), library: heldInputBytes(1) }
  printTable(
    `Memory per input an insert job holds: ${clientOnlyPlan.heldInputs} rows built, heap after GC / count (${legend})`,
    ["", "raw driver (parameter array)", "library (statement)"],
    [["heap B/input", shown(heldInputs.raw, 0), shown(heldInputs.library, 0)]]
  )
  const overheadOf = (variant: ClientOnlyVariant) =>
    figures.find((row) => row.variant === variant)?.overheadNanosPerRequest
  return {
    plan: clientOnlyPlan,
    rows: figures,
    inFlight,
    heldInputs,
    load: { rows: loadOf(rounds), inFlight: loadOf(inFlightRounds), heldInputs: loadOf(heldInputsRounds) },
    targets: {
      plainReadOverheadNanos: target(overheadOf("read"), 1000, "atMost"),
      readWithMetricsAndTracerOverheadNanos: target(overheadOf("read+metrics+tracer"), 2500, "atMost")
    }
  }
}

/**
 * One of the issue's targets, judged on a figure's median and, where `intervalLimit` is given, on the far end of its
 * interval too.
 */
const target = (figure: Estimate | undefined, limit: number, kind: "atLeast" | "atMost", intervalLimit?: number) => {
  if (figure === undefined) return { limit, met: false, figure: null }
  const within = (value: number, bound: number) => (kind === "atLeast" ? value >= bound : value <= bound)
  const farEnd = kind === "atLeast" ? figure.interval[0] : figure.interval[1]
  return {
    median: figure.median,
    interval: figure.interval,
    limit,
    intervalLimit,
    met: within(figure.median, limit) && (intervalLimit === undefined || within(farEnd, intervalLimit))
  }
}

const prepareNode = async (contactPoints: ReadonlyArray<string>) => {
  const client = new Cassandra.Client({
    contactPoints: [...contactPoints],
    localDataCenter: "datacenter1",
    encoding: Session.encoding
  })
  await client.connect()
  for (const statement of schema) await client.execute(statement)
  await Cassandra.concurrent.executeConcurrent(
    client,
    `INSERT INTO ${kvTable} (k, v) VALUES (?, ?)`,
    Array.from({ length: readKeys }, (_, k) => [k, `value-${k}`]),
    { concurrencyLevel: 256 }
  )
  return client
}

const realNode = async (contactPoints: ReadonlyArray<string>) => {
  const client = await prepareNode(contactPoints)
  const comparisons: Array<Comparison> = []
  const requestsJob = (
    side: "raw" | "fibers" | "forEach" | "effectFloor",
    operation: "read" | "write",
    concurrency: 1 | 256,
    observability: "default" | "off" | "on" = "default"
  ): RequestsJob => ({
    kind: "requests",
    side,
    observability,
    operation,
    concurrency,
    requests: plan.requests[concurrency],
    contactPoints
  })
  for (const operation of ["read", "write"] as const)
    for (const concurrency of [1, 256] as const)
      comparisons.push(
        await compareSides(
          `${operation} c=${concurrency}`,
          requestsJob("raw", operation, concurrency),
          requestsJob("fibers", operation, concurrency),
          requestsJob("effectFloor", operation, concurrency)
        )
      )
  // Whether V8's pretenuring (see `noPretenuring`) moves the raw driver's CPU at c=256, and with it every ratio over
  // it: what it costs the driver, and the comparison above without it.
  const withoutPretenuring = (job: RequestsJob): RequestsJob => ({ ...job, v8Flags: noPretenuring })
  const rawRead = requestsJob("raw", "read", 256)
  comparisons.push(
    await compareSides(pretenuringLabel, rawRead, withoutPretenuring(rawRead)),
    await compareSides(
      "read c=256, V8 pretenuring off",
      withoutPretenuring(rawRead),
      withoutPretenuring(requestsJob("fibers", "read", 256)),
      withoutPretenuring(requestsJob("effectFloor", "read", 256))
    )
  )
  for (const operation of ["read", "write"] as const)
    comparisons.push(
      await compareSides(
        `${operation} c=256 Effect.forEach per item`,
        requestsJob("raw", operation, 256),
        requestsJob("forEach", operation, 256)
      )
    )
  for (const outcomes of insertOutcomes) {
    const insertJob = (side: InsertJobSide): Job => ({
      kind: "insertJob",
      side,
      outcomes,
      rows: plan.insertRows,
      contactPoints
    })
    comparisons.push(
      await compareSides(
        insertJobLabel(plan.insertRows, outcomes),
        insertJob("raw"),
        insertJob("library"),
        insertJob("effectFloor")
      )
    )
  }
  comparisons.push(
    await compareSides(
      "observability off -> on, write c=256",
      requestsJob("fibers", "write", 256, "off"),
      requestsJob("fibers", "write", 256, "on")
    )
  )
  printComparisons(comparisons, {
    scope: `Real node ${contactPoints.join(",")}`,
    baseline: "raw driver, or observability off",
    subjects
  })
  const latency = []
  for (const level of loadLevels) {
    // The raw driver's peak is measured again right before each level's rounds: a peak measured earlier, on a machine
    // that has since got busier, would set a level nearer saturation than it says, where tails grow with the queue.
    const peakRounds = await runRounds(`peak before latency at ${level * 100}%`, plan.peakRounds, [
      requestsJob("raw", "read", 256)
    ])
    const peak = estimate(peakRounds.map((round) => throughputOf(round.samples[0] as Sample)))
    const ratePerSecond = Math.round(peak.median * level)
    const latencyJob = (side: Extract<Job, { readonly kind: "latency" }>["side"]): Job => ({
      kind: "latency",
      side,
      ratePerSecond,
      seconds: plan.latencySeconds,
      contactPoints
    })
    const rounds = await runRounds(`latency at ${level * 100}% of peak`, plan.latencyRounds, [
      latencyJob("raw"),
      latencyJob("library"),
      latencyJob("effectFloor")
    ])
    const percentiles = (index: number, which: "p50" | "p99" | "p999") =>
      rounds.map((round) => round.samples[index]?.latencyMillis?.[which] ?? Number.NaN)
    const percentile = (index: number, which: "p50" | "p99" | "p999") => estimate(percentiles(index, which))
    const sideLatency = (index: number) => ({
      p50: percentile(index, "p50"),
      p99: percentile(index, "p99"),
      p999: percentile(index, "p999")
    })
    const failed = (index: number) => rounds.map((round) => round.samples[index]?.failedRequests ?? 0)
    latency.push({
      level,
      peak: { ...peak, load: loadOf(peakRounds) },
      ratePerSecond,
      raw: sideLatency(0),
      library: sideLatency(1),
      floor: sideLatency(2),
      failedRequests: { raw: failed(0), library: failed(1), floor: failed(2) },
      p99Ratio: pairedRatio(percentiles(0, "p99"), percentiles(1, "p99")),
      floorP99Ratio: pairedRatio(percentiles(0, "p99"), percentiles(2, "p99")),
      libraryOverFloorP99Ratio: pairedRatio(percentiles(2, "p99"), percentiles(1, "p99")),
      load: loadOf(rounds)
    })
  }
  printTable(
    `Latency of reads at fixed load (from each request's intended send time, ms), each level a share of the raw driver's read c=256 peak measured right before it; Effect's floor runs each raw driver request as its own Effect.runPromise of one Effect.promise, as the library side runs its requests (${legend})`,
    [
      "",
      "peak req/s",
      "raw p50",
      "library p50",
      "raw p99",
      "library p99",
      "p99 ratio",
      "floor p99",
      "floor / raw p99",
      "library / floor p99",
      "raw p99.9",
      "library p99.9",
      "failed raw/library/floor"
    ],
    latency.map((entry) => [
      `${entry.level * 100}% (${entry.ratePerSecond}/s)`,
      shown(entry.peak, 0),
      shown(entry.raw.p50, 2),
      shown(entry.library.p50, 2),
      shown(entry.raw.p99, 2),
      shown(entry.library.p99, 2),
      shown(entry.p99Ratio, 2),
      shown(entry.floor.p99, 2),
      shown(entry.floorP99Ratio, 2),
      shown(entry.libraryOverFloorP99Ratio, 2),
      shown(entry.raw.p999, 2),
      shown(entry.library.p999, 2),
      [entry.failedRequests.raw, entry.failedRequests.library, entry.failedRequests.floor]
        .map((counts) => counts.join("+"))
        .join("/")
    ])
  )

  let streaming: Awaited<ReturnType<typeof streamingFigures>> | undefined
  if (mode === "full") {
    step(`streaming ${streamRows} rows (one child process per run)`)
    streaming = await streamingFigures(client, contactPoints, streamRows, streamRounds)
    console.log(
      `\nStreaming ${streamRows} rows: ${JSON.stringify(streaming.memoryGrowth)} peak RSS growth over ${streaming.smallRows} rows`
    )
  }
  await client.shutdown()

  const byLabel = (label: string) => comparisons.find((entry) => entry.label === label)
  const requestLabels = ["read c=1", "read c=256", "write c=1", "write c=256"]
  return {
    plan,
    comparisons,
    latency,
    ...(streaming === undefined ? {} : { streaming }),
    targets: {
      ...Object.fromEntries(
        requestLabels.map((label) => [
          `cpuPerRequest ${label}`,
          target(byLabel(label)?.ratio.cpuPerItem, 1.1, "atMost", 1.15)
        ])
      ),
      ...Object.fromEntries(
        ["read c=256", "write c=256"].map((label) => [
          `throughput ${label}`,
          target(byLabel(label)?.ratio.throughput, 0.95, "atLeast")
        ])
      ),
      insertJobCpuPerRow: target(byLabel(insertJobLabel(plan.insertRows, "counted"))?.ratio.cpuPerItem, 1.1, "atMost"),
      observabilityCpu: target(byLabel("observability off -> on, write c=256")?.ratio.cpuPerItem, 1.1, "atMost"),
      latencyP99At50Percent: target(latency.find((entry) => entry.level === 0.5)?.p99Ratio, 1.1, "atMost")
    }
  }
}

const contactPointsGiven = () => {
  const given = flags["contact-points"] ?? process.env.CASSANDRA_CONTACT_POINTS ?? ""
  return given === "" ? undefined : given.split(",")
}

const program = Effect.gen(function* () {
  const startedAt = new Date()
  const measured = revision()
  const loadBefore = loadAverage()
  const clientOnlyResults = yield* Effect.promise(clientOnly)
  let realNodeResults: Awaited<ReturnType<typeof realNode>> | undefined
  let contactPoints: ReadonlyArray<string> | undefined
  if (mode !== "client-only") {
    contactPoints =
      contactPointsGiven() ??
      (yield* LocalCassandra.start({ nodes: 1, firstAddress: 201, name: "bench" })).contactPoints
    const points = contactPoints
    realNodeResults = yield* Effect.promise(() => realNode(points))
  }
  const loads = [
    clientOnlyResults.load.rows,
    clientOnlyResults.load.inFlight,
    clientOnlyResults.load.heldInputs,
    ...(realNodeResults?.comparisons.map((entry) => entry.load) ?? []),
    ...(realNodeResults?.latency.flatMap((entry) => [entry.peak.load, entry.load]) ?? [])
  ]
  const busyRounds = loads.reduce(
    (sum, load) => ({ busy: sum.busy + load.busyRounds, all: sum.all + load.rounds.length }),
    { busy: 0, all: 0 }
  )
  // The run as a whole is flagged when most of its rounds were: one busy round is noise the median absorbs.
  const busy = busyRounds.busy * 2 > busyRounds.all
  const stolenShares = loads.flatMap((load) => load.rounds.flatMap((round) => round.stolen ?? []))
  const stolenMedian = stolenShares.length === 0 ? undefined : median(stolenShares)
  const stolen =
    stolenMedian === undefined
      ? undefined
      : {
          median: stolenMedian,
          largest: Math.max(...stolenShares),
          limit: stolenLimit,
          flagged: stolenMedian > stolenLimit
        }
  const report = {
    startedAt: startedAt.toISOString(),
    seconds: (Date.now() - startedAt.getTime()) / 1000,
    mode,
    machine: { ...machine(), loadAverageBefore: loadBefore, loadAverageAfter: loadAverage() },
    revision: measured,
    busy: { flagged: busy, busyRounds: busyRounds.busy, rounds: busyRounds.all },
    stolen,
    statistics: "median over rounds; interval: 95% percentile bootstrap of the median, 10,000 resamples, seed 13",
    clientOnly: clientOnlyResults,
    ...(realNodeResults === undefined ? {} : { cassandra: { contactPoints }, realNode: realNodeResults })
  }
  const targets = { ...clientOnlyResults.targets, ...(realNodeResults?.targets ?? {}) }
  console.log("\nTargets (issue 13):")
  for (const [name, result] of Object.entries(targets))
    console.log(
      `  ${result.met ? "met   " : "MISSED"} ${name}: ${"median" in result && !Number.isNaN(result.median) ? `${digits(result.median ?? Number.NaN, 3)} [${result.interval?.map((n) => digits(n, 3)).join(", ")}]` : "not measured"} (limit ${result.limit})`
    )
  if (busy)
    console.log(
      `\nWARNING: ${busyRounds.busy} of ${busyRounds.all} rounds ran on a machine busier than the client itself (load average minus the client's cores above the client's cores): the figures measure contention as much as the code.`
    )
  if (stolen !== undefined)
    console.log(
      `\n${stolen.flagged ? "WARNING: " : ""}steal time: the hypervisor ran other guests for ${percent(stolen.median)} of this machine's CPU time in the median round, ${percent(stolen.largest)} at most (${stolen.flagged ? "over" : "within"} the limit of ${percent(stolen.limit)} for the median round)${stolen.flagged ? ": its CPU, throughput and latency figures ran slower than on a host of its own; compare this run's paired ratios, not those figures with another run's." : "."}`
    )
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true })
  // A client-only run (CI's) must not overwrite the figures of the last run against a real node.
  const file = mode === "client-only" ? "client-only.json" : "latest.json"
  writeFileSync(new URL(`./results/${file}`, import.meta.url), `${JSON.stringify(report, null, 2)}\n`)
  const loadAfter = loadAverage()
  console.log(
    `\nwrote bench/results/${file} (${mode}, ${Math.round(report.seconds)} s, ${report.machine.cores} × ${report.machine.cpuModel}, load average ${loadBefore.map((n) => n.toFixed(2)).join(" ")} before, ${loadAfter.map((n) => n.toFixed(2)).join(" ")} after)`
  )
})

await Effect.runPromise(Effect.scoped(program))
