import { spawn } from "node:child_process"
import { readdirSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Query from "effect-cassandra/Query"
import { testConnection } from "../support/cassandra.ts"
import { runProgram } from "../support/programs.ts"
import { testOptions } from "../support/session.ts"

/** What each example prints when it worked; every file in examples/ must be listed, so none can rot unrun. */
const expectedOutput: Record<string, RegExp> = {
  "batch-job.ts": /streamed back 20000 of 20000 rows, all correct: true/,
  "dependency-injection.ts": /found Ada Lovelace/,
  "schema-rows.ts": /streamed 5000 of 5000 readings, in order: true/,
  "demo.ts": /streamed 1000 orders back/,
  "metrics.ts": /errors by reason: Syntax 3/
}

/** Examples that run until interrupted, checked by their own test below. */
const watchingExamples = ["topology-watch.ts"]

/** Examples that need a secured node: test/cluster/Session.security.test.ts runs them against one. */
const securedExamples = ["secure-connection.ts"]

const exampleEnv = () => {
  const connection = testConnection()
  return {
    CASSANDRA_CONTACT_POINTS: connection.contactPoints.join(","),
    CASSANDRA_LOCAL_DC: connection.localDataCenter,
    BATCH_JOB_ROWS: "20000",
    ...(connection.credentials === undefined
      ? {}
      : { CASSANDRA_USERNAME: connection.credentials.username, CASSANDRA_PASSWORD: connection.credentials.password })
  }
}

const runExample = (file: string) => runProgram(`examples/${file}`, exampleEnv())

describe("examples", () => {
  it("are all listed here", () => {
    const files = readdirSync(new URL("../../examples", import.meta.url)).filter((file) => file.endsWith(".ts"))
    assert.deepStrictEqual(
      files.sort(),
      [...Object.keys(expectedOutput), ...watchingExamples, ...securedExamples].sort()
    )
  })

  for (const [file, expected] of Object.entries(expectedOutput)) {
    it.live(`${file} runs against the test node`, () =>
      Effect.gen(function* () {
        const { code, output } = yield* runExample(file)
        assert.strictEqual(code, 0, output)
        assert.match(output, expected)
      })
    )
  }

  it.live("topology-watch.ts prints the nodes, then each event until interrupted", () =>
    Effect.gen(function* () {
      const child = yield* Effect.acquireRelease(
        Effect.sync(() =>
          spawn(process.execPath, ["--conditions=effect-cassandra/source", "examples/topology-watch.ts"], {
            env: { ...process.env, ...exampleEnv() }
          })
        ),
        (child) => Effect.sync(() => child.kill("SIGKILL"))
      )
      let output = ""
      child.stdout.on("data", (chunk) => (output += chunk))
      child.stderr.on("data", (chunk) => (output += chunk))
      const printed = (pattern: RegExp) =>
        Effect.sync(() => pattern.test(output)).pipe(
          Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (seen) => seen }),
          Effect.timeout("60 seconds")
        )
      yield* printed(/watching topology events/)
      assert.match(output, /:9042\s+up\s/)
      const keyspace = `watched_${process.pid}`
      yield* Query.cql`CREATE KEYSPACE ${Query.identifier(keyspace)} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`
      yield* Query.cql`DROP KEYSPACE ${Query.identifier(keyspace)}`
      yield* printed(new RegExp(`dropped keyspace ${keyspace}`))
      assert.match(output, new RegExp(`created keyspace ${keyspace}`))
      const exit = yield* Effect.callback<number | null>((resume) => {
        child.once("exit", (code) => resume(Effect.succeed(code)))
        child.kill("SIGINT")
      })
      assert.strictEqual(exit, 130, output)
    }).pipe(Effect.provide(CassandraLayer.layer(testOptions())))
  )
})
