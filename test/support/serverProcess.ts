/**
 * Servers and tools the observability tests start for themselves (Prometheus, Zipkin, Maven, an example program): a
 * free loopback port, a child process that lives no longer than the test's scope, polling for readiness (never sleeping
 * for a guess), and the HTTP calls that poll them.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import { Duration, Effect, Schedule, type Scope } from "effect"

/**
 * A port nothing listens on at 127.0.0.1 right now, chosen by the kernel.
 *
 * @since 0.1.0
 * @category constructors
 */
export const freePort: Effect.Effect<number> = Effect.callback((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    server.close(() => resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0)))
  })
})

/**
 * The ids of the processes of group `group` still alive (a zombie, already dead, does not count); Linux's /proc.
 *
 * @since 0.1.0
 * @category getters
 */
export const liveProcessesOf = (group: number): Array<string> =>
  Fs.readdirSync("/proc").filter((entry) => {
    if (!/^\d+$/.test(entry)) return false
    try {
      const stat = Fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      // After the command name in parentheses: state, parent pid, process group.
      const [state, , processGroup] = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      return state !== "Z" && Number(processGroup) === group
    } catch {
      return false
    }
  })

const groupIsAlive = (group: number): boolean => liveProcessesOf(group).length > 0

const signalGroup = (group: number, signal: NodeJS.Signals) => {
  try {
    process.kill(-group, signal)
  } catch {
    // The group is gone already.
  }
}

// The groups still running, killed should this process exit without closing their scopes (a worker torn down).
const runningGroups = new Set<number>()
process.once("exit", () => {
  for (const group of runningGroups) signalGroup(group, "SIGKILL")
})

/**
 * Ends process group `group`: SIGTERM, then SIGKILL to whatever is left after 10 seconds; done when no process of the
 * group is alive. Real timers, so that it also ends under a test clock.
 */
const stopGroup = (group: number): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    // A group with no process left is not signalled: its id may be given to another process.
    if (!groupIsAlive(group)) {
      runningGroups.delete(group)
      return resume(Effect.void)
    }
    signalGroup(group, "SIGTERM")
    const startedAt = Date.now()
    const poll = setInterval(() => {
      if (!groupIsAlive(group)) {
        clearInterval(poll)
        runningGroups.delete(group)
        return resume(Effect.void)
      }
      if (Date.now() - startedAt > 10_000) signalGroup(group, "SIGKILL")
    }, 50)
    return Effect.sync(() => clearInterval(poll))
  })

// What a server printed is kept for failure messages, which quote its end: its last lines are enough.
const outputLimit = 64 * 1024

/**
 * Runs `start` with a free port, and again with another (at most three tries) when the server found it taken: another
 * process may bind the port between `freePort` and the server's own bind.
 *
 * @since 0.1.0
 * @category combinators
 */
export const onFreePort = <A, R>(start: (port: number) => Effect.Effect<A, Error, R>): Effect.Effect<A, Error, R> =>
  Effect.flatMap(freePort, start).pipe(
    Effect.retry({
      times: 2,
      while: (error) => /address already in use|EADDRINUSE|BindException/i.test(error.message)
    })
  )

/**
 * A child process started for the life of a scope, with everything it printed so far.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerProcess {
  readonly name: string
  readonly child: ChildProcess.ChildProcess
  readonly output: () => string
  /** Fails, with the process's last output, when it could not start or has exited. */
  readonly assertRunning: Effect.Effect<void, Error>
  /** Waits for the process to exit and gives its exit code (`null` when a signal ended it). */
  readonly exited: Effect.Effect<number | null, Error>
}

/**
 * Starts `command` in a process group of its own for the life of the scope: closing the scope (on success, failure or
 * interruption) sends SIGTERM to the whole group, so that the processes the command started end with it, then
 * SIGKILL to what is left after 10 seconds, and waits until none of them is alive.
 *
 * @since 0.1.0
 * @category constructors
 */
export const spawnServer = (
  name: string,
  command: string,
  args: ReadonlyArray<string>,
  options: {
    readonly env?: Readonly<Record<string, string>>
    /** How to get `command` when it is not installed. */
    readonly missingHint?: string
  } = {}
): Effect.Effect<ServerProcess, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = ChildProcess.spawn(command, args, {
        env: { ...process.env, ...options.env },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true
      })
      if (child.pid !== undefined) runningGroups.add(child.pid)
      let output = ""
      const append = (chunk: unknown) => {
        output += chunk
        if (output.length > 2 * outputLimit) output = output.slice(-outputLimit)
      }
      child.stdout.on("data", append)
      child.stderr.on("data", append)
      const notStarted = (error: NodeJS.ErrnoException) =>
        new Error(
          error.code === "ENOENT"
            ? `${name}: ${command} was not found${options.missingHint === undefined ? "" : `: ${options.missingHint}`}`
            : `${name} (${command}) could not start: ${error.message}`
        )
      let startError: Error | undefined
      const exit = new Promise<number | null>((resolve, reject) => {
        child.once("exit", (code) => resolve(code))
        child.once("error", (error) => {
          startError = notStarted(error)
          reject(startError)
        })
      })
      // The rejection is read through `exited` or `assertRunning`; unread, it must not end the test run.
      exit.catch(() => undefined)
      const server: ServerProcess = {
        name,
        child,
        output: () => output,
        assertRunning: Effect.suspend(() =>
          startError !== undefined
            ? Effect.fail(startError)
            : child.exitCode !== null || child.signalCode !== null
              ? Effect.fail(
                  new Error(`${name} exited (${child.exitCode ?? child.signalCode}):\n${output.slice(-4000)}`)
                )
              : Effect.void
        ),
        exited: Effect.tryPromise({
          try: () => exit,
          catch: (error) => (error instanceof Error ? error : new Error(String(error)))
        })
      }
      return server
    }),
    // Also when the command itself has exited: the processes it started may still run.
    ({ child }) => (child.pid === undefined ? Effect.void : stopGroup(child.pid))
  )

/**
 * Runs `poll` every 200 ms until `done` holds for its result, and returns that result; fails when the process exits
 * or `timeout` passes, saying what was awaited and ending with the process's last output.
 *
 * @since 0.1.0
 * @category combinators
 */
export const pollUntil = <A>(
  server: ServerProcess,
  what: string,
  poll: Effect.Effect<A>,
  done: (result: A) => boolean,
  timeout: Duration.Input
): Effect.Effect<A, Error> =>
  Effect.andThen(server.assertRunning, poll).pipe(
    Effect.repeat({ schedule: Schedule.spaced("200 millis"), until: done }),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () =>
        Effect.fail(
          new Error(
            `${server.name}: ${what} did not happen within ${Duration.format(Duration.fromInputUnsafe(timeout))}:\n${server.output().slice(-4000)}`
          )
        )
    })
  )

/**
 * Polls `check` until it is `true`, as `pollUntil` does.
 *
 * @since 0.1.0
 * @category combinators
 */
export const awaitReady = (
  server: ServerProcess,
  what: string,
  check: Effect.Effect<boolean>,
  timeout: Duration.Input
): Effect.Effect<void, Error> => Effect.asVoid(pollUntil(server, what, check, (ready) => ready, timeout))

/**
 * Whether a GET of `url` answers 2xx; a refused connection or an error status is `false`.
 *
 * @since 0.1.0
 * @category predicates
 */
export const answers = (url: string): Effect.Effect<boolean> =>
  Effect.promise(() =>
    fetch(url).then(
      (response) => response.ok,
      () => false
    )
  )

/**
 * GETs `url` and parses the JSON it answers, failing with the status and body on a non-2xx answer.
 *
 * @since 0.1.0
 * @category constructors
 */
export const getJson = (url: string): Effect.Effect<unknown, Error> =>
  Effect.tryPromise({
    try: async () => {
      const response = await fetch(url)
      const body = await response.text()
      if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${body.slice(0, 2000)}`)
      return JSON.parse(body) as unknown
    },
    catch: (cause) => (cause instanceof Error ? cause : new Error(String(cause)))
  })
