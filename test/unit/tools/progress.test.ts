import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Logger } from "effect"
import * as TestClock from "effect/testing/TestClock"
import * as Progress from "../../../tools/cassandra/internal/progress.ts"

const capturedLines = (lines: Array<string>) =>
  Logger.layer([
    Logger.make(({ message }) => {
      lines.push(Array.isArray(message) ? message.join(" ") : String(message))
    })
  ])

describe("progress", () => {
  it.effect("reports a long wait every interval, with what it did so far and the time spent, until it ends", () => {
    const lines: Array<string> = []
    return Effect.gen(function* () {
      const done = yield* Deferred.make<string>()
      let fetched = 0
      const waiting = yield* Progress.withProgress(
        Deferred.await(done),
        (elapsed) => `fetching: ${fetched} artifacts, ${elapsed}`,
        "5 seconds"
      ).pipe(Effect.forkChild)
      yield* TestClock.adjust("4 seconds")
      assert.deepStrictEqual(lines, [], "a wait shorter than one interval prints nothing")
      fetched = 12
      yield* TestClock.adjust("1 second")
      fetched = 40
      yield* TestClock.adjust("5 seconds")
      yield* Deferred.succeed(done, "jars")
      assert.strictEqual(yield* Fiber.join(waiting), "jars")
      yield* TestClock.adjust("20 seconds")
      assert.deepStrictEqual(lines, ["fetching: 12 artifacts, 5 s", "fetching: 40 artifacts, 10 s"])
    }).pipe(Effect.provide(capturedLines(lines)))
  })

  it.effect("keeps the outcome of the wait: its failure passes through unchanged", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Progress.withProgress(Effect.fail("refused"), () => "never printed"))
      assert.strictEqual(error, "refused")
    })
  )

  it.effect("stops reporting once the wait fails or is interrupted", () => {
    const lines: Array<string> = []
    return Effect.gen(function* () {
      const failed = yield* Deferred.make<never, string>()
      const failing = yield* Progress.withProgress(Deferred.await(failed), () => "failing", "5 seconds").pipe(
        Effect.forkChild
      )
      const interrupted = yield* Progress.withProgress(Effect.never, () => "interrupted", "5 seconds").pipe(
        Effect.forkChild
      )
      yield* TestClock.adjust("5 seconds")
      yield* Deferred.fail(failed, "refused")
      assert.strictEqual(yield* Effect.flip(Fiber.join(failing)), "refused")
      yield* Fiber.interrupt(interrupted)
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(lines.toSorted(), ["failing", "interrupted"])
    }).pipe(Effect.provide(capturedLines(lines)))
  })

  it("formats elapsed time in whole seconds, then minutes and seconds", () => {
    assert.strictEqual(Progress.formatElapsed(4_999), "4 s")
    assert.strictEqual(Progress.formatElapsed(59_600), "59 s")
    assert.strictEqual(Progress.formatElapsed(100_000), "1 min 40 s")
  })
})
