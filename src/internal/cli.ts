#!/usr/bin/env node
/**
 * The `effect-cassandra` command:
 *
 *   effect-cassandra generate --keyspace KS [--out DIR] [--contact-points HOST,HOST] [--local-data-center DC]
 *
 * writes the TypeScript module of a live keyspace (see `Codegen`) to `DIR/KS.ts`, or to standard output without
 * `--out`. Contact points default to `CASSANDRA_CONTACT_POINTS` or 127.0.0.1, the data center to
 * `CASSANDRA_LOCAL_DATA_CENTER` or datacenter1; credentials come from `CASSANDRA_USERNAME` and `CASSANDRA_PASSWORD`.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import * as Path from "node:path"
import { parseArgs } from "node:util"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import * as Codegen from "../Codegen.ts"
import * as Session from "../Session.ts"

const usage =
  "Usage: effect-cassandra generate --keyspace KS [--out DIR] [--contact-points HOST,HOST] [--local-data-center DC]"

const fail = (message: string) => {
  process.stderr.write(`${message}\n${usage}\n`)
  process.exitCode = 2
}

const main = async (argv: ReadonlyArray<string>) => {
  let parsed: ReturnType<typeof parseArguments>
  try {
    parsed = parseArguments(argv)
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error))
  }
  const { positionals, values } = parsed
  if (positionals[0] !== "generate" || positionals.length !== 1) return fail("Unknown command")
  if (values.keyspace === undefined) return fail("--keyspace is required")
  const keyspace = values.keyspace
  const env = process.env
  const username = env.CASSANDRA_USERNAME
  const password = env.CASSANDRA_PASSWORD
  const options: Session.Options = {
    contactPoints: (values["contact-points"] ?? env.CASSANDRA_CONTACT_POINTS ?? "127.0.0.1").split(","),
    localDataCenter: values["local-data-center"] ?? env.CASSANDRA_LOCAL_DATA_CENTER ?? "datacenter1",
    ...(username === undefined || password === undefined
      ? {}
      : { credentials: { username, password: Redacted.make(password) } })
  }
  const exit = await Effect.runPromiseExit(
    Effect.scoped(
      Effect.flatMap(Session.make(options), (session) =>
        Effect.provideService(Codegen.generate(keyspace), Session.Session, session)
      )
    ).pipe(
      // The command's outcome is its one line: the driver's warnings while connecting would repeat it, with stacks.
      Effect.provideService(References.MinimumLogLevel, "None")
    )
  )
  if (Exit.isFailure(exit)) return failed(Cause.squash(exit.cause))
  if (values.out === undefined) {
    process.stdout.write(exit.value)
    return
  }
  const file = Path.join(values.out, `${keyspace}.ts`)
  try {
    mkdirSync(values.out, { recursive: true })
    writeFileSync(file, exit.value)
  } catch (error) {
    return failed(error)
  }
  process.stderr.write(`Wrote ${file}\n`)
}

/**
 * A failure as one line, its message alone: no stack trace, and nothing but what the library's errors put in their
 * messages (never a credential).
 */
const failed = (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : "The command failed"}\n`)
  process.exitCode = 1
}

const parseArguments = (argv: ReadonlyArray<string>) =>
  parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      keyspace: { type: "string" },
      out: { type: "string" },
      "contact-points": { type: "string" },
      "local-data-center": { type: "string" }
    }
  })

await main(process.argv.slice(2))
