/**
 * How the benchmark prints its figures: each as `median [interval] (smallest..largest)`, in tables of labelled rows,
 * and the four tables of a set of paired comparisons (CPU and throughput, GC pauses, threads, Effect's floor), which
 * the full run, the insert job alone and the request rows alone print alike.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { machine, type revision } from "./machine.ts"
import { type Comparison, loadShown } from "./rounds.ts"
import type { Estimate } from "./stats.ts"

export const digits = (value: number, places: number) =>
  value.toLocaleString("en-US", { maximumFractionDigits: places, minimumFractionDigits: places })

/** A figure as the table shows it: the median, its 95% interval, and the range of the rounds. */
export const shown = (figure: Estimate, places: number) =>
  `${digits(figure.median, places)} [${digits(figure.interval[0], places)}, ${digits(figure.interval[1], places)}] (${digits(figure.range[0], places)}..${digits(figure.range[1], places)})`

export const printTable = (
  title: string,
  header: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>
) => {
  const widths = header.map((_, column) => Math.max(...[header, ...rows].map((row) => (row[column] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ")
  console.log(`\n${title}\n${line(header)}`)
  for (const row of rows) console.log(line(row))
}

/** A table of labelled entries (comparisons), one row each: its label, then each column's cell. */
const printLabelled = <Entry extends { readonly label: string }>(
  title: string,
  entries: ReadonlyArray<Entry>,
  columns: ReadonlyArray<readonly [header: string, cell: (entry: Entry) => string]>
) =>
  printTable(
    title,
    ["", ...columns.map(([header]) => header)],
    entries.map((entry) => [entry.label, ...columns.map(([, cell]) => cell(entry))])
  )

export const legend = "each figure: median [95% bootstrap interval] (smallest..largest round)"

/**
 * The tables of paired comparisons: `scope` says where they ran, `baseline` and `subjects` what each comparison's
 * two sides are.
 */
export const printComparisons = (
  comparisons: ReadonlyArray<Comparison>,
  sides: { readonly scope: string; readonly baseline: string; readonly subjects: string }
) => {
  const { scope, baseline, subjects } = sides
  printLabelled(`${scope}: baseline (${baseline}) against ${subjects} (${legend})`, comparisons, [
    ["baseline CPU µs/item", (entry) => shown(entry.baseline.cpuMicrosPerItem, 1)],
    ["library CPU µs/item", (entry) => shown(entry.subject.cpuMicrosPerItem, 1)],
    ["CPU ratio", (entry) => shown(entry.ratio.cpuPerItem, 3)],
    ["baseline items/s", (entry) => shown(entry.baseline.throughput, 0)],
    ["throughput ratio", (entry) => shown(entry.ratio.throughput, 3)],
    ["rounds' load", (entry) => loadShown(entry.load)]
  ])
  printLabelled(
    `Garbage collection: the main thread's GC pauses per item (wall time: a busy machine stretches them, and GC work on helper threads is not in them), baseline (${baseline}) and ${subjects}, and the per-round differences library - baseline of CPU and of GC pauses (medians of differences, not differences of the medians beside them; not additive) (${legend})`,
    comparisons,
    [
      ["baseline GC µs/item", (entry) => shown(entry.baseline.gcPauseMicrosPerItem, 1)],
      ["library GC µs/item", (entry) => shown(entry.subject.gcPauseMicrosPerItem, 1)],
      ["library - baseline CPU µs/item", (entry) => shown(entry.extra.cpuMicrosPerItem, 1)],
      ["library - baseline GC µs/item", (entry) => shown(entry.extra.gcPauseMicrosPerItem, 1)]
    ]
  )
  printLabelled(
    `Threads: CPU per item on the main thread (JavaScript, socket calls, GC pauses) and on the others (V8's GC and compiler helpers, libuv), baseline and ${subjects}, and the per-round differences library - baseline of each (${legend})`,
    comparisons,
    [
      ["baseline main µs/item", (entry) => shown(entry.baseline.mainThreadCpuMicrosPerItem, 1)],
      ["baseline other µs/item", (entry) => shown(entry.baseline.otherThreadsCpuMicrosPerItem, 1)],
      ["library main µs/item", (entry) => shown(entry.subject.mainThreadCpuMicrosPerItem, 1)],
      ["library other µs/item", (entry) => shown(entry.subject.otherThreadsCpuMicrosPerItem, 1)],
      ["library - baseline main", (entry) => shown(entry.extra.mainThreadCpuMicrosPerItem, 1)],
      ["library - baseline other", (entry) => shown(entry.extra.otherThreadsCpuMicrosPerItem, 1)]
    ]
  )
  const withFloor = comparisons.flatMap(({ label, floor }) => (floor === undefined ? [] : [{ label, floor }]))
  if (withFloor.length === 0) return
  printLabelled(
    `Where the library's cost goes: the raw driver in looping fibers, one Effect.promise per request or row (Effect's floor), in the same rounds (${legend})`,
    withFloor,
    [
      ["floor CPU µs/item", ({ floor }) => shown(floor.cpuMicrosPerItem, 1)],
      ["floor GC µs/item", ({ floor }) => shown(floor.gcPauseMicrosPerItem, 1)],
      ["floor - raw driver GC µs/item", ({ floor }) => shown(floor.extraGcPauseMicrosOverBaseline, 1)],
      ["floor / raw driver CPU", ({ floor }) => shown(floor.cpuOverBaseline, 3)],
      ["library / floor CPU", ({ floor }) => shown(floor.subjectCpuOverFloor, 3)]
    ]
  )
}

/**
 * The end of a run of some comparisons alone (bench/insertJob.ts, bench/requests.ts): prints their tables and writes
 * them to bench/results/`file` with when the run started, how long it took, the machine, the code measured and the
 * run's own `settings`.
 */
export const reportComparisonsAlone = (
  file: string,
  run: { readonly startedAt: Date; readonly revision: ReturnType<typeof revision> },
  settings: Record<string, unknown>,
  comparisons: ReadonlyArray<Comparison>,
  sides: Parameters<typeof printComparisons>[1]
) => {
  const report = {
    startedAt: run.startedAt.toISOString(),
    seconds: (Date.now() - run.startedAt.getTime()) / 1000,
    machine: machine(),
    revision: run.revision,
    ...settings,
    comparisons
  }
  printComparisons(comparisons, sides)
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true })
  writeFileSync(new URL(`./results/${file}`, import.meta.url), `${JSON.stringify(report, null, 2)}\n`)
}
