/** Waiting on a started batch job, as the tests that interrupt one partway do. */
import * as Stream from "effect/Stream"
import type * as BatchJob from "effect-cassandra/BatchJob"

/** Ends once the job's progress reports at least `completed` inputs completed (or the job ends). */
export const progressReaches = (job: { readonly progress: Stream.Stream<BatchJob.Progress> }, completed: number) =>
  job.progress.pipe(
    Stream.takeUntil((progress) => progress.completed >= completed),
    Stream.runDrain
  )
