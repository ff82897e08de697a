import { execFile } from "node:child_process"
import * as Effect from "effect/Effect"
import * as Tracer from "effect/Tracer"

/**
 * Runs a TypeScript program of the project (an example, the README's tour) in its own Node process with
 * `effect-cassandra` resolved to src/, and returns its exit code and everything it printed.
 */
export const runProgram = (file: string, env: Readonly<Record<string, string | undefined>>) =>
  Effect.callback<{ readonly code: number; readonly output: string }>((resume) => {
    const child = execFile(
      process.execPath,
      ["--conditions=effect-cassandra/source", file],
      { timeout: 120_000, env: { ...process.env, ...env } },
      (error, stdout, stderr) =>
        resume(Effect.succeed({ code: error === null ? 0 : Number(error.code ?? 1), output: `${stdout}${stderr}` }))
    )
    return Effect.sync(() => child.kill())
  })

/** A tracer that keeps every span it creates, to inspect once they ended. */
export const recordingTracer = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { spans, tracer }
}
