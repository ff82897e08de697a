/**
 * Application instances running test/integration/programs/migrate-concurrently.ts, each in its own Node process, for
 * the migrator's tests that start several at once, kill one, or stop one (SIGSTOP) mid-migration.
 */
import { spawn } from "node:child_process"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

const program = new URL("../integration/programs/migrate-concurrently.ts", import.meta.url).pathname

/** One running instance. */
export interface Instance {
  /** Resolves with the exit code (or the signal) and everything printed once the process exits. */
  readonly exited: Effect.Effect<{
    readonly code: number | null
    readonly signal: string | null
    readonly output: string
  }>
  /** Resolves once the process printed `line`. */
  readonly printed: (line: string) => Effect.Effect<void>
  /** Sends the process a signal (SIGKILL, SIGSTOP, SIGCONT). */
  readonly signal: (signal: NodeJS.Signals) => Effect.Effect<void>
  /** Whether the process has exited. */
  readonly done: () => boolean
}

/** Starts an instance of the migrating program; the scope kills it if it still runs (a stopped one included). */
export const startInstance = (contactPoints: ReadonlyArray<string>, env: Readonly<Record<string, string>>) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const exit = yield* Deferred.make<{ code: number | null; signal: string | null; output: string }>()
      const waiting: Array<{ readonly line: string; readonly seen: Deferred.Deferred<void> }> = []
      let output = ""
      const child = spawn(process.execPath, ["--conditions=effect-cassandra/source", program], {
        env: { ...process.env, CASSANDRA_CONTACT_POINTS: contactPoints.join(","), ...env }
      })
      const onOutput = (chunk: Buffer) => {
        output += chunk.toString()
        for (const { line, seen } of waiting) if (output.includes(line)) Deferred.doneUnsafe(seen, Exit.void)
      }
      child.stdout.on("data", onOutput)
      child.stderr.on("data", onOutput)
      child.on("exit", (code, signal) => Deferred.doneUnsafe(exit, Exit.succeed({ code, signal, output })))
      const instance: Instance & { readonly process: typeof child } = {
        process: child,
        exited: Deferred.await(exit),
        printed: (line) =>
          Effect.gen(function* () {
            const seen = yield* Deferred.make<void>()
            waiting.push({ line, seen })
            if (output.includes(line)) yield* Deferred.succeed(seen, undefined)
            yield* Deferred.await(seen)
          }),
        signal: (signal) => Effect.sync(() => void child.kill(signal)),
        done: () => child.exitCode !== null || child.signalCode !== null
      }
      return instance
    }),
    (instance) => Effect.sync(() => instance.process.exitCode === null && instance.process.kill("SIGKILL"))
  )
