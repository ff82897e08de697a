/**
 * What the benchmark asks of a child process, and how it asks: every measured side runs in a process of its own, with
 * its own warm-up, so that one side's garbage collection and JIT work never lands in the other's figures.
 */
import { execFile } from "node:child_process"

export type Operation = "read" | "write"

/**
 * How the library side is driven: `fibers` is N looping fibers (the library's equivalent of N looping async
 * workers), `forEach` forks one fiber per item with `Effect.forEach`, as code written that way pays.
 */
export type LibraryStyle = "fibers" | "forEach"

/**
 * The raw driver inside N looping fibers, each request one `Effect.promise`: what any Effect program calling the driver
 * pays for Effect's fiber runtime, the floor under this library's cost. At fixed load (the `latency` job) each request
 * is a fiber of its own instead, as the library side runs them there.
 */
export type EffectFloor = "effectFloor"

/**
 * The features installed on a library session against the real node: `default` is what `Session.make` gives (the
 * driver-log bridge at its default level, no metrics); `off` has the bridge off too; `on` adds the metrics layer.
 */
export type Observability = "default" | "off" | "on"

/**
 * The rows of the client-only benchmark; each `stub-*` row is the stub alone, the baseline of the rows after it (see
 * {@link clientOnlyBaseline}), and `effect-floor` is the stub inside looping fibers, one `Effect.promise` per request
 * (see {@link EffectFloor}); `effect-floor+tracer` wraps each of those in `Effect.useSpan`, named and attributed as the
 * library's span of a read, under the same tracer as the library's `+tracer` rows: Effect's own cost of a span, which
 * those rows pay too. `stub-failed-read` and `failed-read` read a table whose every read the stub fails with a
 * server read timeout, each failure caught: what a failed request costs, the building of its errors included (their
 * stack capture was most of it), which an overloaded client, failing many requests at once, feels most.
 */
export const clientOnlyVariants = [
  "stub-read",
  "stub-wide",
  "stub-write",
  "stub-failed-read",
  "effect-floor",
  "effect-floor+tracer",
  "read",
  "failed-read",
  "findAll-10-columns",
  "write",
  "read+metrics",
  "read+tracer",
  "read+metrics+tracer",
  "read+throttle",
  "read+log-bridge"
] as const
export type ClientOnlyVariant = (typeof clientOnlyVariants)[number]

/**
 * The stub-alone row a client-only row's overhead is measured over, sending the same query shape (undefined for a
 * stub row itself): the library's own cost per request is the row's CPU less its baseline's, round by round.
 */
export const clientOnlyBaseline = (variant: ClientOnlyVariant): ClientOnlyVariant | undefined =>
  variant.startsWith("stub-")
    ? undefined
    : variant === "findAll-10-columns"
      ? "stub-wide"
      : variant === "write"
        ? "stub-write"
        : variant === "failed-read"
          ? "stub-failed-read"
          : "stub-read"

export type Job =
  | {
      readonly kind: "requests"
      readonly side: "raw" | LibraryStyle | EffectFloor
      readonly observability: Observability
      readonly operation: Operation
      readonly concurrency: number
      readonly requests: number
      readonly contactPoints: ReadonlyArray<string>
      /** V8 flags the child runs with, besides the parent's (see {@link noPretenuring}). */
      readonly v8Flags?: ReadonlyArray<string>
    }
  | {
      readonly kind: "insertJob"
      readonly side: InsertJobSide
      /**
       * What each side keeps of the rows' outcomes. `counted`: counts and errors (the driver's `executeConcurrent` by
       * default, a BatchJob `summary`); `kept`: every row's result (`collectResults: true`, a BatchJob report).
       */
      readonly outcomes: InsertOutcomes
      readonly rows: number
      readonly contactPoints: ReadonlyArray<string>
    }
  | {
      readonly kind: "latency"
      /**
       * `effectFloor` runs each raw driver request as its own `Effect.runPromise` of one `Effect.promise`, as the
       * library side runs each of its requests: Effect's own share of the library's tail.
       */
      readonly side: "raw" | "library" | EffectFloor
      readonly ratePerSecond: number
      readonly seconds: number
      readonly contactPoints: ReadonlyArray<string>
    }
  | {
      readonly kind: "clientOnly"
      readonly variant: ClientOnlyVariant
      readonly concurrency: number
      /** Requests run before measuring: the request path reaches V8's optimizing tiers only after tens of thousands. */
      readonly warmUpRequests: number
      readonly requests: number
    }
  | { readonly kind: "inFlight"; readonly side: "raw" | EffectFloor | "library"; readonly count: number }
  | { readonly kind: "heldInputs"; readonly side: "raw" | "library"; readonly count: number }

/**
 * The sides of an insert job: the driver's `executeConcurrent`, a `BatchJob`, and Effect's floor (the driver's
 * requests in looping fibers, one `Effect.promise` per row; see {@link EffectFloor}).
 */
export type InsertJobSide = "raw" | "library" | EffectFloor

/** What an insert job keeps of its rows' outcomes (see the `insertJob` job). */
export type InsertOutcomes = "counted" | "kept"

/** Both ways of keeping an insert job's outcomes, the like-for-like one (and the target's) first. */
export const insertOutcomes: ReadonlyArray<InsertOutcomes> = ["counted", "kept"]

/** The row of an insert job in the tables and the JSON. */
export const insertJobLabel = (rows: number, outcomes: InsertOutcomes) =>
  `insert job ${rows} rows, ${outcomes === "counted" ? "outcomes counted" : "every outcome kept"}`

/** One measured run of a child. Fields a job does not measure are absent. */
export interface Sample {
  readonly seconds: number
  /** Client CPU (user + system) of the measured run, this process only: every thread. */
  readonly cpuMicros: number
  /**
   * The part of `cpuMicros` the main thread spent (JavaScript, the driver's socket calls, GC pauses); the rest is
   * V8's helper threads (concurrent marking, parallel scavenging, sweeping, compiling) and libuv's.
   */
  readonly mainThreadCpuMicros: number
  /** Requests (or rows) in the measured run. */
  readonly count: number
  /**
   * The main thread's garbage-collection pauses during the measured run, wall time (the durations of
   * PerformanceObserver "gc" entries): not the incremental-marking steps interleaved with JavaScript, nor GC work on
   * helper threads, which the CPU figure counts.
   */
  readonly gcMillis: number
  /** How many collections those pauses were: a figure resting on a few is coarse. */
  readonly gcCount: number
  /**
   * JS heap bytes allocated per request, from `used_heap_size` growth over a batch run between two forced GCs and
   * during which no GC ran (so nothing was freed); absent when a GC ran anyway. Counts the V8 heap only, not Buffer
   * or other external memory.
   */
  readonly allocatedBytesPerRequest?: number
  /** Latency from each request's intended send time, in milliseconds. */
  readonly latencyMillis?: { readonly p50: number; readonly p99: number; readonly p999: number }
  /** Requests of a fixed-load run that failed (counted in the latencies with the time they took to fail). */
  readonly failedRequests?: number
  /** Heap held per in-flight request (or per input of a job waiting to run, for `heldInputs`), after a forced GC. */
  readonly heapBytesPerRequest?: number
}

/**
 * Requests a child of a full run measures, by concurrency. At c=1 12,000 (9 to 11 s at the c=1 rates of the full run
 * of ad54f25): in 10 rounds of read c=1 (scratch runs on this project's 2-core machine, every round busy), the library
 * over the raw driver was 1.233 [1.065, 1.392] (0.77..1.63) with 3,000 and 1.194 [1.083, 1.261] (1.02..1.51) with
 * 12,000 (both with half the count as warm-up, before the child's warm-up passed V8's optimization of the hot code).
 * It makes a full run some 15 to 18 minutes longer.
 */
export const fullRunRequests = { 1: 12_000, 256: 60_000 } as const

/** How many of a child's log lines are shown; an overloaded run can log one per failed request. */
const shownLogLines = 3

/**
 * Turns off V8's allocation-site pretenuring. With 256 requests in flight against a real node, per-request objects
 * may live across young-generation collections; V8 may then allocate what those allocation sites make in the old
 * generation, where full mark-compacts, mostly on helper threads, collect it. The comparisons run with it measure
 * what pretenuring costs the raw driver, and what the library adds without it.
 */
export const noPretenuring: ReadonlyArray<string> = ["--no-allocation-site-pretenuring"]

/**
 * Runs `job` in a new Node process. The child gets the parent's Node flags, so it resolves the library through the
 * same export condition the `bench` script gives the parent, and `--expose-gc` for its heap figures. Its sample is
 * the last line it writes; the lines before it are what the library logged (the driver-log bridge writes through
 * Effect's default logger), shown on stderr.
 */
export const runChild = (job: Job): Promise<Sample> =>
  new Promise((resolve, reject) => {
    const v8Flags = job.kind === "requests" ? (job.v8Flags ?? []) : []
    execFile(
      process.execPath,
      [
        ...process.execArgv,
        "--expose-gc",
        ...v8Flags,
        new URL("./child.ts", import.meta.url).pathname,
        JSON.stringify(job)
      ],
      { maxBuffer: 1 << 28 },
      (error, stdout, stderr) => {
        if (error !== null) {
          return reject(new Error(`benchmark child ${JSON.stringify(job)} failed: ${stderr || error.message}`))
        }
        const lines = stdout.trimEnd().split("\n")
        const logged = lines.slice(0, -1)
        if (logged.length > 0) {
          const more = logged.length > shownLogLines ? `\n  … ${logged.length - shownLogLines} more lines` : ""
          process.stderr.write(`bench: the child logged:\n  ${logged.slice(0, shownLogLines).join("\n  ")}${more}\n`)
        }
        resolve(JSON.parse(lines.at(-1) ?? "") as Sample)
      }
    )
  })
