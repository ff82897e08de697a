/** The machine a run came from, and whether something else kept it busy. */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import * as Os from "node:os"
import type { Sample } from "./jobs.ts"

/**
 * The code a run measured: its commit, and whether the library or the benchmark differed from it when the run started
 * (the children read the source as it is on disk). Undefined outside a git checkout.
 */
export const revision = () => {
  const git = (...args: Array<string>) =>
    execFileSync("git", args, { cwd: new URL("..", import.meta.url), encoding: "utf8", stdio: "pipe" }).trim()
  try {
    return {
      commit: git("rev-parse", "HEAD"),
      uncommittedChanges: git("status", "--porcelain", "--", "src", "bench", ":!bench/results") !== ""
    }
  } catch {
    return undefined
  }
}

/** The machine a run came from. */
export const machine = () => ({
  cpuModel: Os.cpus()[0]?.model ?? "unknown",
  cores: Os.cpus().length,
  memoryGb: Math.round(Os.totalmem() / 2 ** 30),
  node: process.version,
  platform: `${Os.platform()} ${Os.release()}`
})

/** The 1, 5 and 15 minute load averages. */
export const loadAverage = (): readonly [number, number, number] => {
  const [one = 0, five = 0, fifteen = 0] = Os.loadavg()
  return [one, five, fifteen]
}

/** The machine's CPU time since boot, in clock ticks, from the first line of /proc/stat. */
interface CpuTimes {
  readonly total: number
  readonly steal: number
}

/** Undefined where there is no /proc/stat (not Linux) or its first line has no steal field (kernels before 2.6.11). */
const cpuTimes = (): CpuTimes | undefined => {
  try {
    const [line = ""] = readFileSync("/proc/stat", "utf8").split("\n", 1)
    const [name, ...fields] = line.trim().split(/\s+/)
    // user nice system idle iowait irq softirq steal: guest time is already counted in user and nice
    const ticks = fields.slice(0, 8).map(Number)
    if (name !== "cpu" || ticks.length < 8) return undefined
    return { total: ticks.reduce((sum, n) => sum + n, 0), steal: ticks[7] as number }
  } catch {
    return undefined
  }
}

/** What is read of the machine before and after a round. */
export interface LoadReading {
  readonly average: readonly [number, number, number]
  readonly cpu: CpuTimes | undefined
}

/** The machine's load averages and CPU time counters now. */
export const loadReading = (): LoadReading => ({ average: loadAverage(), cpu: cpuTimes() })

/**
 * The steal time of a run's median round above which the run is flagged. A guest's load average cannot see the other
 * guests of its host. Their work slows both sides of a round, which keeps the paired ratios fairer than the absolute
 * figures (unless a burst lands on one side more than the other: steal is read per round, not per side), but such a
 * run's CPU, throughput and latency figures are not comparable with another run's.
 */
export const stolenLimit = 0.1

/**
 * The load averages and steal time around one round, and whether the rest of the machine was busier than the client.
 */
export interface RoundLoad {
  readonly before: readonly [number, number, number]
  readonly after: readonly [number, number, number]
  /**
   * The share of the machine's CPU time, over the round, that the hypervisor gave to other guests instead (steal time
   * in /proc/stat); undefined where /proc/stat is missing.
   */
  readonly stolen: number | undefined
  /** Cores the client's processes kept busy on average over the round. */
  readonly clientCores: number
  /**
   * True when the 1-minute load average (the larger of before and after), less the client's own cores, exceeds the
   * client's cores: the figures then measure contention as much as the code. A local Cassandra node counts as other
   * load, so against a node on the same machine a heavily loaded server flags its rounds too.
   */
  readonly busy: boolean
}

export const roundLoad = (before: LoadReading, after: LoadReading, samples: ReadonlyArray<Sample>): RoundLoad => {
  const seconds = samples.reduce((sum, sample) => sum + sample.seconds, 0)
  const cpuSeconds = samples.reduce((sum, sample) => sum + sample.cpuMicros, 0) / 1e6
  const clientCores = seconds > 0 ? cpuSeconds / seconds : 0
  const others = Math.max(before.average[0], after.average[0]) - clientCores
  const ticks = before.cpu !== undefined && after.cpu !== undefined ? after.cpu.total - before.cpu.total : 0
  return {
    before: before.average,
    after: after.average,
    // A counter that stepped back (a kernel's accounting fix-up) is no steal, not a negative share.
    stolen: ticks > 0 ? Math.max(0, (after.cpu?.steal ?? 0) - (before.cpu?.steal ?? 0)) / ticks : undefined,
    clientCores,
    busy: others > clientCores
  }
}
