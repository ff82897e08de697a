import { spawn } from "node:child_process"
import { readdirSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Query from "effect-cassandra/Query"
import { testConnection } from "../support/cassandra.ts"
import { runProgram } from "../support/programs.ts"
import { awaitReady, freePort, spawnServer } from "../support/serverProcess.ts"
import { testOptions } from "../support/session.ts"

/** What each example prints when it worked; every file in examples/ must be listed, so none can rot unrun. */
const expectedOutput: Record<string, RegExp> = {
  "batch-job.ts": /streamed back 20000 of 20000 rows, all correct: true/,
  "dependency-injection.ts": /found Ada Lovelace/,
  "schema-rows.ts": /streamed 5000 of 5000 readings, in order: true/,
  "demo.ts": /streamed 1000 orders back/,
  "metrics.ts": /errors by reason: Syntax 3/,
  "schema-first.ts": /found Ada with 2 orders, newest first: 80, 120/
}

/** Examples that run until interrupted, checked by their own test below. */
const watchingExamples = ["topology-watch.ts"]

/** Examples that need a secured node: test/cluster/Session.security.test.ts runs them against one. */
const securedExamples = ["secure-connection.ts"]

/** Services that run until told to stop, checked over HTTP by their own test below. */
const serviceExamples = ["http-workers.ts"]

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
      [...Object.keys(expectedOutput), ...watchingExamples, ...securedExamples, ...serviceExamples].sort()
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
  it.live(
    "http-workers.ts serves typed reads and writes from each worker, and drains on SIGTERM",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const base = `http://127.0.0.1:${port}`
        const server = yield* spawnServer(
          "http-workers",
          process.execPath,
          ["--conditions=effect-cassandra/source", "examples/http-workers.ts"],
          { env: { ...exampleEnv(), HTTP_PORT: String(port), HTTP_WORKERS: "2" } }
        )
        yield* awaitReady(
          server,
          "serving",
          Effect.sync(() => server.output().includes(`serving ${base}`)),
          "90 seconds"
        )
        const request = (method: string, path: string, body?: unknown) =>
          Effect.promise(async () => {
            const response = await fetch(`${base}${path}`, {
              method,
              ...(body === undefined
                ? {}
                : { body: JSON.stringify(body), headers: { "content-type": "application/json" } })
            })
            return { status: response.status, worker: response.headers.get("x-worker"), body: await response.json() }
          })
        const ids = Array.from({ length: 20 }, (_, index) => process.pid * 100 + index)
        const written = yield* Effect.forEach(ids, (id) => request("PUT", `/users/${id}`, { name: `user ${id}` }), {
          concurrency: "unbounded"
        })
        assert.deepStrictEqual(
          written.map(({ status, body }) => [status, body]),
          ids.map((id) => [200, { id, name: `user ${id}` }])
        )
        const read = yield* Effect.forEach(ids, (id) => request("GET", `/users/${id}`), { concurrency: "unbounded" })
        assert.deepStrictEqual(
          read.map(({ status, body }) => [status, body]),
          ids.map((id) => [200, { id, name: `user ${id}` }])
        )
        // Each worker served with its own session.
        assert.deepStrictEqual(new Set([...written, ...read].map(({ worker }) => worker)), new Set(["1", "2"]))
        const notANumber = yield* request("GET", "/users/not-a-number")
        assert.deepStrictEqual([notANumber.status, notANumber.body], [400, { error: "bad request" }])
        assert.strictEqual((yield* request("GET", "/users/-1")).status, 404)
        assert.strictEqual((yield* request("PUT", `/users/${ids[0]}`, { name: "" })).status, 400)

        // SIGTERM while writes are in flight: each answered write is stored, none fails, and every worker drains.
        const draining = ids.map((id) => id + 50)
        const outcomes = draining.map((id) =>
          fetch(`${base}/users/${id}`, {
            method: "PUT",
            body: JSON.stringify({ name: `drained ${id}` }),
            headers: { "content-type": "application/json", connection: "close" }
          }).then(
            (response) => response.status,
            () => "not accepted" as const
          )
        )
        server.child.kill("SIGTERM")
        const statuses = yield* Effect.promise(() => Promise.all(outcomes))
        // Watched since the spawn: the process may well have exited before the last answer was read.
        const code = yield* server.exited
        assert.match(server.output(), /draining workers\nall workers drained/)
        assert.strictEqual(code, 0, server.output())
        assert.deepStrictEqual(
          statuses.filter((status) => status !== 200 && status !== "not accepted"),
          [],
          "a request failed instead of being answered or refused"
        )
        const stored = yield* Effect.forEach(
          draining.filter((_, index) => statuses[index] === 200),
          (id) =>
            Query.cql<{ readonly name: string }>`SELECT name FROM example_http.users WHERE id = ${id}`.pipe(
              Effect.map((rows) => rows[0]?.name === `drained ${id}`)
            )
        )
        assert.notInclude(stored, false)
      }).pipe(Effect.provide(CassandraLayer.layer(testOptions()))),
    180_000
  )
})
