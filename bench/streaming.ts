/**
 * Streaming a large result, library against the driver's own paging, each run in a process of its own so that its
 * peak memory (max RSS) is its alone (bench/stream-child.ts). Run in full mode only: it fills a wide table first.
 */
import { execFile } from "node:child_process"
import * as Cassandra from "cassandra-driver"
import { median } from "./stats.ts"
import { metaTable, pageSize, wideRowValues, wideTable } from "./tables.ts"

const variants = ["library", "driver-stream", "driver-collect"] as const
/** The small size, against which the large one's peak memory growth is judged. */
const smallStream = 100_000

interface StreamRun {
  readonly rows: number
  readonly seconds: number
  readonly maxRssMb: number
}

const runStreamChild = (variant: string, rows: number, contactPoints: ReadonlyArray<string>) =>
  new Promise<StreamRun>((resolve, reject) => {
    execFile(
      process.execPath,
      [
        ...process.execArgv,
        new URL("./stream-child.ts", import.meta.url).pathname,
        variant,
        String(rows),
        contactPoints.join(",")
      ],
      { maxBuffer: 1 << 20 },
      (error, stdout, stderr) =>
        error === null ? resolve(JSON.parse(stdout) as StreamRun) : reject(new Error(`${variant}: ${stderr}`))
    )
  })

/** Fills the wide table up to `rows` rows, once per node and size: a marker row says how many it holds. */
const fillWideTable = async (client: Cassandra.Client, rows: number) => {
  const marker = await client.execute(`SELECT rows FROM ${metaTable} WHERE name = 'wide'`)
  const held = (marker.first()?.get("rows") as number | undefined) ?? 0
  const chunk = 50_000
  for (let from = held; from < rows; from += chunk) {
    const to = Math.min(from + chunk, rows)
    await Cassandra.concurrent.executeConcurrent(
      client,
      `INSERT INTO ${wideTable} (p, c, name, amount, price, active, created, ref, note, qty) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      Array.from({ length: to - from }, (_, i) => Object.values(wideRowValues(from + i))),
      { concurrencyLevel: 256 }
    )
  }
  if (held < rows)
    await client.execute(`INSERT INTO ${metaTable} (name, rows) VALUES ('wide', ?)`, [rows], { prepare: true })
}

/** Rows per second and peak RSS of each variant at the small size and at `rows`, medians over `rounds` runs. */
export const streamingFigures = async (
  client: Cassandra.Client,
  contactPoints: ReadonlyArray<string>,
  rows: number,
  rounds: number
) => {
  await fillWideTable(client, rows)
  const figures: Record<string, Record<number, { rowsPerSecond: number; peakRssMb: number }>> = {}
  for (const variant of variants) {
    figures[variant] = {}
    for (const size of [smallStream, rows]) {
      const runs: Array<StreamRun> = []
      for (let round = 0; round < rounds; round++) runs.push(await runStreamChild(variant, size, contactPoints))
      for (const run of runs) if (run.rows !== size) throw new Error(`${variant} streamed ${run.rows} of ${size} rows`)
      figures[variant][size] = {
        rowsPerSecond: median(runs.map((run) => run.rows / run.seconds)),
        peakRssMb: median(runs.map((run) => run.maxRssMb))
      }
    }
  }
  const at = (variant: string, size: number) =>
    figures[variant]?.[size] ?? { rowsPerSecond: Number.NaN, peakRssMb: Number.NaN }
  const memoryGrowth = (variant: string) => at(variant, rows).peakRssMb / at(variant, smallStream).peakRssMb
  return {
    rows,
    smallRows: smallStream,
    pageSize,
    variants: figures,
    rowsPerSecondLibraryToDriverStream: at("library", rows).rowsPerSecond / at("driver-stream", rows).rowsPerSecond,
    memoryGrowth: Object.fromEntries(variants.map((variant) => [variant, memoryGrowth(variant)]))
  }
}
