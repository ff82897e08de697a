import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as BatchJob from "effect-cassandra/BatchJob"
import * as Query from "effect-cassandra/Query"
import { progressReaches } from "../support/batchJob.ts"
import { testConnection } from "../support/cassandra.ts"
import { importOptions, importRowCount, importTable } from "../support/importData.ts"
import { sessionWithKeyspace } from "../support/session.ts"

const { cql } = Query
const { keyspace, layer: sessionLayer } = sessionWithKeyspace("batch_job_interruption")
const { table: imported, create, row: importRow, check: checkTable } = importTable(keyspace)
const rowCount = importRowCount
const options = importOptions(64)

/**
 * Runs test/integration/programs/batch-job-sigint.ts, sends it SIGINT once it reports `interruptAt` rows written,
 * and returns its exit code, its output and the checkpoint it saved (undefined for none).
 */
const importUntilSigint = (interruptAt: number) =>
  Effect.callback<{
    readonly code: number | null
    readonly stdout: string
    readonly stderr: string
    readonly checkpoint: string | undefined
  }>((resume) => {
    const connection = testConnection()
    const directory = mkdtempSync(join(tmpdir(), "batch-job-sigint-"))
    const checkpointFile = join(directory, "checkpoint.json")
    const child = spawn(
      process.execPath,
      ["--conditions=effect-cassandra/source", new URL("programs/batch-job-sigint.ts", import.meta.url).pathname],
      {
        env: {
          ...process.env,
          CASSANDRA_CONTACT_POINTS: connection.contactPoints.join(","),
          CASSANDRA_LOCAL_DC: connection.localDataCenter,
          IMPORT_KEYSPACE: keyspace,
          IMPORT_ROWS: String(rowCount),
          CHECKPOINT_FILE: checkpointFile
        }
      }
    )
    let stdout = ""
    let stderr = ""
    let signalled = false
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
      const progress = [...stdout.matchAll(/progress (\d+)/g)].at(-1)
      if (!signalled && progress !== undefined && Number(progress[1]) >= interruptAt) {
        signalled = true
        child.kill("SIGINT")
      }
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.on("close", (code) => {
      let checkpoint: string | undefined
      try {
        checkpoint = readFileSync(checkpointFile, "utf8")
      } catch {
        checkpoint = undefined
      }
      rmSync(directory, { recursive: true, force: true })
      resume(Effect.succeed({ code, stdout, stderr, checkpoint }))
    })
    return Effect.sync(() => {
      child.kill()
      rmSync(directory, { recursive: true, force: true })
    })
  })

layer(sessionLayer, { excludeTestServices: true, timeout: "5 minutes" })("BatchJob interrupted", (it) => {
  it.effect("creates the table", () => Effect.asVoid(create))

  it.effect(
    "an import interrupted by closing its scope resumes from its report to exactly every row",
    () =>
      Effect.gen(function* () {
        const statements = Array.from({ length: rowCount }, (_, k) => importRow(k))
        // The scope closes once a fifth of the rows are written, as when the program is stopped.
        const job = yield* Effect.scoped(
          Effect.gen(function* () {
            const job = yield* BatchJob.start(statements, { ...options, progressInterval: "10 millis" })
            yield* progressReaches(job, rowCount / 5)
            return job
          })
        )
        const report = yield* job.report
        assert.isTrue(report.interrupted)
        assert.isAtLeast(report.succeeded, rowCount / 5)
        assert.isBelow(report.succeeded, rowCount)
        assert.deepStrictEqual(report.failures, [])
        const unfinished = BatchJob.unfinished(report)
        assert.strictEqual(unfinished.length, rowCount - report.succeeded)
        // Requests in flight were waited for, so the table holds exactly the rows reported as written.
        const before = yield* checkTable
        assert.deepStrictEqual(before, { rows: report.succeeded, distinct: report.succeeded, wrong: 0 })

        const resumed = yield* BatchJob.run(unfinished, { ...options, summary: true })
        assert.strictEqual(resumed.succeeded, unfinished.length)
        assert.strictEqual(resumed.failed, 0)
        assert.deepStrictEqual(yield* checkTable, { rows: rowCount, distinct: rowCount, wrong: 0 })
      }),
    { timeout: 240_000 }
  )

  it.effect("interrupting a job returns its partial report", () =>
    Effect.scoped(
      Effect.gen(function* () {
        yield* cql`TRUNCATE ${imported}`
        const statements = Array.from({ length: 5000 }, (_, k) => importRow(k))
        const job = yield* BatchJob.start(statements, { ...options, progressInterval: "5 millis" })
        yield* progressReaches(job, 1)
        const report = yield* job.interrupt
        assert.isTrue(report.interrupted)
        assert.strictEqual(report.total, 5000)
        assert.deepStrictEqual(
          report.outcomes.map((outcome) => outcome._tag),
          Array.from({ length: report.succeeded }, () => "Success")
        )
        assert.strictEqual(BatchJob.unfinished(report).length, 5000 - report.succeeded)
        assert.strictEqual((yield* checkTable).rows, report.succeeded)
        assert.deepStrictEqual(yield* job.report, report)
        const last = (yield* Stream.runCollect(job.progress)).at(-1)
        assert.deepInclude(last, { done: true, total: 5000, completed: report.succeeded, failed: 0 })
      })
    )
  )

  it.effect(
    "an import stopped by SIGINT saves a checkpoint from which it resumes to exactly every row",
    () =>
      Effect.gen(function* () {
        yield* cql`TRUNCATE ${imported}`
        const { stdout, stderr, checkpoint: saved } = yield* importUntilSigint(rowCount / 5)
        assert.isDefined(saved, `${stdout}\n${stderr}`)
        const checkpoint: { interrupted: boolean; succeeded: number; unfinished: Array<number> } = JSON.parse(
          saved ?? "{}"
        )
        assert.isTrue(checkpoint.interrupted)
        assert.isAtLeast(checkpoint.succeeded, rowCount / 5)
        assert.strictEqual(checkpoint.unfinished.length, rowCount - checkpoint.succeeded)
        const before = yield* checkTable
        assert.deepStrictEqual(before, { rows: checkpoint.succeeded, distinct: checkpoint.succeeded, wrong: 0 })

        const resumed = yield* BatchJob.run(checkpoint.unfinished.map(importRow), { ...options, summary: true })
        assert.strictEqual(resumed.succeeded, checkpoint.unfinished.length)
        assert.deepStrictEqual(yield* checkTable, { rows: rowCount, distinct: rowCount, wrong: 0 })
      }),
    { timeout: 240_000 }
  )
})
