/**
 * An import stopped by SIGINT that saves where it stopped: run by test/integration/BatchJob.interruption.test.ts,
 * which interrupts it once it printed progress and resumes from the checkpoint it saved to `CHECKPOINT_FILE`.
 */
import { writeFileSync } from "node:fs"
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Stream } from "effect"
import * as BatchJob from "../../../src/BatchJob.ts"
import * as CassandraLayer from "../../../src/Layer.ts"
import { importOptions, importTable } from "../../support/importData.ts"

const rowCount = Number(process.env.IMPORT_ROWS)
const importRow = importTable(process.env.IMPORT_KEYSPACE ?? "").row

const program = Effect.gen(function* () {
  const statements = Array.from({ length: rowCount }, (_, k) => importRow(k))
  const job = yield* BatchJob.start(statements, {
    ...importOptions(64),
    summary: true,
    progressInterval: "20 millis"
  })
  yield* Effect.forkScoped(
    Stream.runForEach(job.progress, (progress) => Effect.sync(() => console.log(`progress ${progress.completed}`)))
  )
  // On SIGINT the main fiber is interrupted here: stop the job and save what is left to do.
  yield* job.report.pipe(
    Effect.onInterrupt(() =>
      Effect.flatMap(job.interrupt, (report) =>
        Effect.sync(() => {
          // A file, not stdout: the process exits as soon as this returns, and a pipe may not have taken the whole
          // line by then (a CI run read 182,709 characters of it).
          writeFileSync(
            process.env.CHECKPOINT_FILE ?? "",
            JSON.stringify({
              interrupted: report.interrupted,
              succeeded: report.succeeded,
              unfinished: BatchJob.unfinished(report).map((statement) => statement.params[1])
            })
          )
          console.log("checkpoint saved")
        })
      )
    )
  )
  console.log("finished without interruption")
})

const CassandraLive = CassandraLayer.layer({
  contactPoints: (process.env.CASSANDRA_CONTACT_POINTS ?? "").split(","),
  localDataCenter: process.env.CASSANDRA_LOCAL_DC ?? "datacenter1"
})

program.pipe(Effect.scoped, Effect.provide(Layer.orDie(CassandraLive)), NodeRuntime.runMain)
