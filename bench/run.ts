/**
 * The benchmark: this library against the raw `cassandra-driver`, side by side in one run, against the same tables.
 *
 *   npm run bench              full run (1,000,000 streamed rows, more rounds)
 *   npm run bench -- --quick   within 5 minutes on 2 cores (200,000 streamed rows)
 *
 * It starts a local node (127.0.0.61, cluster "bench") unless CASSANDRA_CONTACT_POINTS names one, prints a table and
 * writes every figure and ratio to bench/results/latest.json. Figures are medians over rounds; the order of the two
 * sides alternates between rounds so neither always runs on a warmer JVM.
 */
import { execFile } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import * as Os from "node:os"
import { parseArgs } from "node:util"
import * as Cassandra from "cassandra-driver"
import { Effect, Layer, Schema } from "effect"
import { BatchJob, CqlType, Logging, Metrics, Query, Session } from "effect-cassandra"
import * as LocalCassandra from "../tools/cassandra/LocalCassandra.ts"
import { importTable, kvTable, metaTable, pageSize, schema, widePartitions, wideTable } from "./tables.ts"

const { values: flags } = parseArgs({ options: { quick: { type: "boolean", default: false } } })
const quick = flags.quick === true
const localDataCenter = "datacenter1"

const plan = quick
  ? {
      rounds: 3,
      perRound: { 1: 1_000, 256: 20_000 },
      insertJob: 100_000,
      insertRounds: 2,
      streamRows: 200_000,
      streamRounds: 2
    }
  : {
      rounds: 5,
      perRound: { 1: 3_000, 256: 60_000 },
      insertJob: 100_000,
      insertRounds: 3,
      streamRows: 1_000_000,
      streamRounds: 3
    }
const smallStream = 100_000
const concurrencies = [1, 256] as const

/** What the run is doing, on stderr, so that a slow run shows where it is. */
const step = (text: string) => process.stderr.write(`bench: ${text}\n`)

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

interface Sample {
  readonly seconds: number
  readonly cpuMicros: number
}

/** Wall time and client CPU (user + system, this process) of one measured piece of work. */
const timed = async (work: () => Promise<unknown>): Promise<Sample> => {
  const cpu = process.cpuUsage()
  const started = performance.now()
  await work()
  const seconds = (performance.now() - started) / 1000
  const used = process.cpuUsage(cpu)
  return { seconds, cpuMicros: used.user + used.system }
}

/** Runs `count` requests with at most `concurrency` in flight, the way an application would with plain promises. */
const promisePool = async (count: number, concurrency: number, request: (i: number) => Promise<unknown>) => {
  let next = 0
  const worker = async () => {
    while (next < count) await request(next++)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
}

interface Side {
  readonly throughput: number
  readonly cpuMicrosPerRequest: number
}

const summarize = (samples: ReadonlyArray<Sample>, requests: number): Side => ({
  throughput: median(samples.map((s) => requests / s.seconds)),
  cpuMicrosPerRequest: median(samples.map((s) => s.cpuMicros / requests))
})

const ratios = (library: Side, driver: Side) => ({
  throughput: library.throughput / driver.throughput,
  cpuPerRequest: library.cpuMicrosPerRequest / driver.cpuMicrosPerRequest
})

/** Alternates which side runs first, round by round. */
const sideBySide = async (rounds: number, driver: () => Promise<Sample>, library: () => Promise<Sample>) => {
  const samples = { driver: [] as Array<Sample>, library: [] as Array<Sample> }
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      samples.driver.push(await driver())
      samples.library.push(await library())
    } else {
      samples.library.push(await library())
      samples.driver.push(await driver())
    }
  }
  return samples
}

const runStreamChild = (variant: string, rows: number, contactPoints: ReadonlyArray<string>) =>
  new Promise<{ rows: number; seconds: number; maxRssMb: number }>((resolve, reject) => {
    execFile(
      process.execPath,
      [
        "--conditions=source",
        new URL("./stream-child.ts", import.meta.url).pathname,
        variant,
        String(rows),
        contactPoints.join(",")
      ],
      { maxBuffer: 1 << 20 },
      (error, stdout, stderr) =>
        error === null ? resolve(JSON.parse(stdout)) : reject(new Error(`${variant}: ${stderr}`))
    )
  })

const WideRow = Schema.Struct({
  p: CqlType.Int,
  c: CqlType.Int,
  name: CqlType.Text,
  amount: CqlType.BigInt,
  price: CqlType.Double,
  active: CqlType.Boolean,
  created: CqlType.Timestamp,
  ref: CqlType.Uuid,
  note: CqlType.Text,
  qty: CqlType.Int
})

const wideRowParams = (i: number) => [
  i % widePartitions,
  i,
  `name-${i}`,
  BigInt(i) * 1000n,
  i / 7,
  i % 2 === 0,
  new Date(1_700_000_000_000 + i),
  Cassandra.types.Uuid.random(),
  "a note of moderate length for every row",
  i % 1000
]

interface Sessions {
  readonly plain: Session.CassandraSession
  /** The same settings, built with the metrics layer and the driver-log bridge (at `info`) provided. */
  readonly observed: Session.CassandraSession
}

const benchmark = async (contactPoints: ReadonlyArray<string>, sessions: Sessions) => {
  const session = sessions.plain
  const client = new Cassandra.Client({
    contactPoints: [...contactPoints],
    localDataCenter,
    encoding: Session.encoding,
    queryOptions: { consistency: Cassandra.types.consistencies.localQuorum }
  })
  await client.connect()
  for (const statement of schema) await client.execute(statement)
  const runLibrary = <A, E>(effect: Effect.Effect<A, E, Session.CassandraSession>, on = session) =>
    Effect.runPromise(Effect.provideService(effect, Session.CassandraSession, on))

  const kv = Query.identifier("bench", "kv")
  const results: Record<string, unknown> = {}
  const table: Array<[string, string, string, string]> = []
  const row = (name: string, driver: string, library: string, ratio: string) =>
    table.push([name, driver, library, ratio])
  const fmt = (n: number, digits = 0) =>
    n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
  /** The two rows of one comparison: throughput, then client CPU per request. */
  const compare = (
    labels: readonly [throughput: string, cpu: string],
    first: Side,
    second: Side,
    ratio: ReturnType<typeof ratios>
  ) => {
    row(labels[0], fmt(first.throughput), fmt(second.throughput), fmt(ratio.throughput, 3))
    row(labels[1], fmt(first.cpuMicrosPerRequest, 1), fmt(second.cpuMicrosPerRequest, 1), fmt(ratio.cpuPerRequest, 3))
  }

  // Keys 0..9999 exist for the reads.
  await promisePool(10_000, 256, (k) =>
    client.execute(`INSERT INTO ${kvTable} (k, v) VALUES (?, ?)`, [k, `value-${k}`], { prepare: true })
  )

  const driverRequest = {
    read: (i: number) => client.execute(`SELECT v FROM ${kvTable} WHERE k = ?`, [i % 10_000], { prepare: true }),
    write: (i: number) =>
      client.execute(`INSERT INTO ${kvTable} (k, v) VALUES (?, ?)`, [i % 10_000, "written"], { prepare: true })
  }
  const libraryRequest = {
    read: (i: number) => Query.cql`SELECT v FROM ${kv} WHERE k = ${i % 10_000}`,
    write: (i: number) => Query.cql`INSERT INTO ${kv} (k, v) VALUES (${i % 10_000}, ${"written"})`
  }
  const singleRow: Array<{
    readonly operation: string
    readonly concurrency: number
    readonly requestsPerRound: number
    readonly driver: Side
    readonly library: Side
    readonly ratio: { readonly throughput: number; readonly cpuPerRequest: number }
  }> = []
  for (const operation of ["read", "write"] as const) {
    for (const concurrency of concurrencies) {
      const requests = plan.perRound[concurrency]
      step(`single-row ${operation}s at concurrency ${concurrency}`)
      const driver = () => timed(() => promisePool(requests, concurrency, driverRequest[operation]))
      const library = () =>
        timed(() =>
          runLibrary(
            Effect.forEach(
              Array.from({ length: requests }, (_, i) => i),
              (i) => libraryRequest[operation](i),
              {
                concurrency,
                discard: true
              }
            )
          )
        )
      await sideBySide(1, driver, library) // warm-up: prepares the statements and warms the JIT, not measured
      const samples = await sideBySide(plan.rounds, driver, library)
      const sides = { driver: summarize(samples.driver, requests), library: summarize(samples.library, requests) }
      const ratio = ratios(sides.library, sides.driver)
      singleRow.push({ operation, concurrency, requestsPerRound: requests, ...sides, ratio })
      compare(
        [`${operation} c=${concurrency} req/s`, `${operation} c=${concurrency} CPU µs/req`],
        sides.driver,
        sides.library,
        ratio
      )
    }
  }
  results.singleRow = singleRow

  // Observability: the same library writes at concurrency 256 on a session with the metrics layer and the driver-log
  // bridge, and on one with neither. Spans are created either way (Effect's built-in tracer, nothing exported).
  step("observability on against off")
  const observedRequests = plan.perRound[256]
  const libraryWrites = (on: Session.CassandraSession) => () =>
    timed(() =>
      runLibrary(
        Effect.forEach(
          Array.from({ length: observedRequests }, (_, i) => i),
          (i) => libraryRequest.write(i),
          {
            concurrency: 256,
            discard: true
          }
        ),
        on
      )
    )
  await sideBySide(1, libraryWrites(sessions.plain), libraryWrites(sessions.observed))
  const observedSamples = await sideBySide(plan.rounds, libraryWrites(sessions.plain), libraryWrites(sessions.observed))
  const observability = {
    off: summarize(observedSamples.driver, observedRequests),
    on: summarize(observedSamples.library, observedRequests)
  }
  const observabilityRatio = ratios(observability.on, observability.off)
  results.observability = {
    what: "metrics layer and driver-log bridge on vs off, library writes at concurrency 256",
    ...observability,
    ratio: observabilityRatio
  }
  compare(
    ["observability off | on: write c=256 req/s", "observability off | on: CPU µs/req"],
    observability.off,
    observability.on,
    observabilityRatio
  )

  step(`insert job of ${plan.insertJob} rows`)
  // A 100,000-insert job: the driver's executeConcurrent against BatchJob.run, both 256 in flight.
  const insertQuery = `INSERT INTO ${importTable} (k, v, n) VALUES (?, ?, ?)`
  const imports = Query.identifier("bench", "imports")
  const insertSamples = await sideBySide(
    plan.insertRounds,
    () =>
      timed(() =>
        Cassandra.concurrent.executeConcurrent(
          client,
          insertQuery,
          Array.from({ length: plan.insertJob }, (_, k) => [k, `row-${k}`, BigInt(k)]),
          { concurrencyLevel: 256 }
        )
      ),
    () =>
      timed(async () => {
        const statements = Array.from(
          { length: plan.insertJob },
          (_, k) => Query.cql`INSERT INTO ${imports} (k, v, n) VALUES (${k}, ${`row-${k}`}, ${BigInt(k)})`
        )
        const report = await runLibrary(BatchJob.run(statements, { concurrency: 256 }))
        if (report.failures.length > 0) throw report.failures[0]?.error
      })
  )
  const insertSides = {
    driver: summarize(insertSamples.driver, plan.insertJob),
    library: summarize(insertSamples.library, plan.insertJob)
  }
  const insertRatio = ratios(insertSides.library, insertSides.driver)
  results.insertJob = { rows: plan.insertJob, concurrency: 256, ...insertSides, ratio: insertRatio }
  compare(
    [`insert job ${fmt(plan.insertJob)} rows/s`, "insert job CPU µs/row"],
    insertSides.driver,
    insertSides.library,
    insertRatio
  )

  // The wide table is filled once per node and size; a marker row says how many rows it holds.
  const marker = await client.execute(`SELECT rows FROM ${metaTable} WHERE name = 'wide'`)
  const held = (marker.first()?.get("rows") as number | undefined) ?? 0
  if (held < plan.streamRows) {
    step(`filling ${wideTable} up to ${plan.streamRows} rows`)
    const chunk = 50_000
    for (let from = held; from < plan.streamRows; from += chunk) {
      const to = Math.min(from + chunk, plan.streamRows)
      await Cassandra.concurrent.executeConcurrent(
        client,
        `INSERT INTO ${wideTable} (p, c, name, amount, price, active, created, ref, note, qty) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        Array.from({ length: to - from }, (_, i) => wideRowParams(from + i)),
        { concurrencyLevel: 256 }
      )
    }
    await client.execute(`INSERT INTO ${metaTable} (name, rows) VALUES ('wide', ?)`, [plan.streamRows], {
      prepare: true
    })
  }

  step("streaming (one child process per run)")
  const streaming: Record<string, unknown> = {}
  for (const variant of ["library", "driver-stream", "driver-execute"]) {
    const bySize: Record<string, unknown> = {}
    for (const rows of [smallStream, plan.streamRows]) {
      const runs: Array<{ rows: number; seconds: number; maxRssMb: number }> = []
      for (let round = 0; round < plan.streamRounds; round++)
        runs.push(await runStreamChild(variant, rows, contactPoints))
      for (const run of runs) if (run.rows !== rows) throw new Error(`${variant} streamed ${run.rows} of ${rows} rows`)
      bySize[rows] = {
        rowsPerSecond: median(runs.map((r) => r.rows / r.seconds)),
        peakRssMb: median(runs.map((r) => r.maxRssMb))
      }
    }
    streaming[variant] = bySize
  }
  const stream = (variant: string, rows: number) =>
    (streaming[variant] as Record<number, { rowsPerSecond: number; peakRssMb: number }>)[rows] ?? {
      rowsPerSecond: Number.NaN,
      peakRssMb: Number.NaN
    }
  const memoryGrowth = (variant: string) =>
    stream(variant, plan.streamRows).peakRssMb / stream(variant, smallStream).peakRssMb
  results.streaming = {
    rows: plan.streamRows,
    pageSize,
    variants: streaming,
    ratio: {
      rowsPerSecondLibraryToDriverStream:
        stream("library", plan.streamRows).rowsPerSecond / stream("driver-stream", plan.streamRows).rowsPerSecond,
      memoryGrowthLibrary: memoryGrowth("library"),
      memoryGrowthDriverStream: memoryGrowth("driver-stream"),
      memoryGrowthDriverExecute: memoryGrowth("driver-execute")
    }
  }
  row(
    `stream ${fmt(plan.streamRows)} rows/s`,
    fmt(stream("driver-stream", plan.streamRows).rowsPerSecond),
    fmt(stream("library", plan.streamRows).rowsPerSecond),
    fmt(stream("library", plan.streamRows).rowsPerSecond / stream("driver-stream", plan.streamRows).rowsPerSecond, 3)
  )
  for (const rows of [smallStream, plan.streamRows]) {
    row(
      `stream ${fmt(rows)} peak RSS MB`,
      fmt(stream("driver-stream", rows).peakRssMb),
      fmt(stream("library", rows).peakRssMb),
      ""
    )
    row(`  driver whole execute ${fmt(rows)} MB`, fmt(stream("driver-execute", rows).peakRssMb), "", "")
  }
  row(
    `peak RSS ${fmt(plan.streamRows)} / ${fmt(smallStream)}`,
    `${fmt(memoryGrowth("driver-stream"), 2)} (execute ${fmt(memoryGrowth("driver-execute"), 2)})`,
    fmt(memoryGrowth("library"), 2),
    ""
  )

  // Schema decoding of a 10-column row, the CqlSchema way (one Effect decode per row).
  const rowsToDecode = (await client.execute(`SELECT * FROM ${wideTable} LIMIT ${pageSize}`, [], { prepare: true }))
    .rows
  const decodeRow = Schema.decodeUnknownEffect(WideRow)
  const decodeSamples: Array<number> = []
  for (let round = 0; round < plan.rounds + 1; round++) {
    const sample = await timed(() =>
      Effect.runPromise(Effect.forEach(rowsToDecode, (r) => decodeRow(r), { discard: true }))
    )
    if (round > 0) decodeSamples.push(sample.cpuMicros / rowsToDecode.length)
  }
  const decodeMicros = median(decodeSamples)
  const libraryStreamMicrosPerRow = 1e6 / stream("library", plan.streamRows).rowsPerSecond
  results.decoding = {
    columns: 10,
    rows: rowsToDecode.length,
    cpuMicrosPerRow: decodeMicros,
    streamedMicrosPerRowWithoutDecoding: libraryStreamMicrosPerRow
  }
  row("Schema decode CPU µs/row (10 cols)", "", fmt(decodeMicros, 2), "")

  // The issue's targets, each with the figure it is judged on.
  const atConcurrency256 = singleRow.filter((entry) => entry.concurrency === 256)
  const target = (figure: number, limit: number, kind: "atLeast" | "atMost") => ({
    figure,
    limit,
    met: kind === "atLeast" ? figure >= limit : figure <= limit
  })
  results.targets = {
    throughputRatioAtConcurrency256: target(
      Math.min(...atConcurrency256.map((e) => e.ratio.throughput)),
      0.95,
      "atLeast"
    ),
    cpuPerRequestRatio: target(Math.max(...singleRow.map((e) => e.ratio.cpuPerRequest)), 1.1, "atMost"),
    streamingMemoryGrowthLibrary: target(memoryGrowth("library"), 1.2, "atMost"),
    streamingMemoryGrowthDriverExecuteIsNotFlat: target(memoryGrowth("driver-execute"), 1.2, "atLeast"),
    observabilityCpuRatio: target(observabilityRatio.cpuPerRequest, 1.1, "atMost")
  }

  await client.shutdown()
  return { results, table }
}

const machine = () => ({
  cpus: Os.cpus().length,
  cpuModel: Os.cpus()[0]?.model,
  memoryGb: Math.round(Os.totalmem() / 2 ** 30),
  node: process.version,
  platform: `${Os.platform()} ${Os.release()}`,
  loadAverage: Os.loadavg()
})

const program = Effect.gen(function* () {
  const fromEnvironment = process.env.CASSANDRA_CONTACT_POINTS
  const contactPoints =
    fromEnvironment !== undefined && fromEnvironment !== ""
      ? fromEnvironment.split(",")
      : (yield* LocalCassandra.start({ nodes: 1, firstAddress: 61, name: "bench" })).contactPoints
  const startedAt = new Date()
  const loadBefore = Os.loadavg()
  const plain = yield* Session.make({ contactPoints, localDataCenter }).pipe(Effect.provide(Logging.layer("off")))
  const observability = yield* Layer.build(Layer.merge(Metrics.layer(), Logging.layer("info")))
  const observed = yield* Session.make({ contactPoints, localDataCenter }).pipe(Effect.provide(observability))
  const { results, table } = yield* Effect.promise(() => benchmark(contactPoints, { plain, observed }))
  const widths = [0, 1, 2, 3].map((column) =>
    Math.max(...[["", "driver", "library", "ratio"], ...table].map((r) => (r[column] ?? "").length))
  )
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ")
  console.log(line(["", "driver", "library", "ratio"]))
  for (const r of table) console.log(line(r))
  const report = {
    startedAt: startedAt.toISOString(),
    seconds: (Date.now() - startedAt.getTime()) / 1000,
    quick,
    plan,
    cassandra: { contactPoints, started: fromEnvironment === undefined || fromEnvironment === "" },
    machine: { ...machine(), loadAverageBefore: loadBefore },
    ...results
  }
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true })
  writeFileSync(new URL("./results/latest.json", import.meta.url), `${JSON.stringify(report, null, 2)}\n`)
  console.log(
    `\nwrote bench/results/latest.json (${Math.round(report.seconds)} s, load average ${Os.loadavg()
      .map((n) => n.toFixed(2))
      .join(" ")})`
  )
})

await Effect.runPromise(Effect.scoped(program))
