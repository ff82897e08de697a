/** The machine a run came from, and whether something else kept it busy. */
import { execFileSync } from "node:child_process"
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

/** The load averages around one round, and whether the rest of the machine was busier than the client. */
export interface RoundLoad {
  readonly before: readonly [number, number, number]
  readonly after: readonly [number, number, number]
  /** Cores the client's processes kept busy on average over the round. */
  readonly clientCores: number
  /**
   * True when the 1-minute load average (the larger of before and after), less the client's own cores, exceeds the
   * client's cores: the figures then measure contention as much as the code. A local Cassandra node counts as other
   * load, so against a node on the same machine a heavily loaded server flags its rounds too.
   */
  readonly busy: boolean
}

export const roundLoad = (
  before: readonly [number, number, number],
  after: readonly [number, number, number],
  samples: ReadonlyArray<Sample>
): RoundLoad => {
  const seconds = samples.reduce((sum, sample) => sum + sample.seconds, 0)
  const cpuSeconds = samples.reduce((sum, sample) => sum + sample.cpuMicros, 0) / 1e6
  const clientCores = seconds > 0 ? cpuSeconds / seconds : 0
  const others = Math.max(before[0], after[0]) - clientCores
  return { before, after, clientCores, busy: others > clientCores }
}
