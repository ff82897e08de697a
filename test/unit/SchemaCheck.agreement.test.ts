import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/testing/TestClock"
import * as CassandraError from "effect-cassandra/CassandraError"
import { checkAfterAgreement, recheckOnChanges } from "../../src/internal/schemaRecheck.ts"

describe("SchemaCheck re-check", () => {
  it.effect("reads the schema again only once the cluster agrees on it", () =>
    Effect.gen(function* () {
      const polls = yield* Ref.make(0)
      const agreedAt = 3
      // The node that reported the change has it; the others catch up after a few polls.
      const inAgreement = Effect.map(
        Ref.updateAndGet(polls, (count) => count + 1),
        (count) => count >= agreedAt
      )
      const checkedAfterPolls = yield* Ref.make<number | undefined>(undefined)
      const check = Effect.flatMap(Ref.get(polls), (count) => Ref.set(checkedAfterPolls, count))
      const fiber = yield* Effect.forkChild(checkAfterAgreement(inAgreement, 10_000, check))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      assert.strictEqual(yield* Ref.get(checkedAfterPolls), agreedAt)
    })
  )

  it.effect("reads it anyway when no agreement comes in time (a node down keeps its old version)", () =>
    Effect.gen(function* () {
      const checked = yield* Ref.make(false)
      const fiber = yield* Effect.forkChild(checkAfterAgreement(Effect.succeed(false), 2_000, Ref.set(checked, true)))
      yield* TestClock.adjust("1 second")
      assert.isFalse(yield* Ref.get(checked))
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(fiber)
      assert.isTrue(yield* Ref.get(checked))
    })
  )

  it.effect("keeps re-checking at later changes after a re-check failed or died", () =>
    Effect.gen(function* () {
      const rechecks = yield* Ref.make(0)
      const outcomes = [
        Effect.die(new Error("a defect in the check")),
        Effect.fail(CassandraError.sessionClosed({ operation: "SchemaCheck" })),
        Effect.void
      ]
      const recheck = Effect.flatMap(
        Ref.getAndUpdate(rechecks, (count) => count + 1),
        (count) => outcomes[count] ?? Effect.void
      )
      const changes = Stream.make("first", "second", "third").pipe(Stream.rechunk(1))
      yield* recheckOnChanges(changes, recheck)
      assert.strictEqual(yield* Ref.get(rechecks), 3)
    })
  )

  it.effect("stops when interrupted in the middle of a re-check", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(recheckOnChanges(Stream.make("change"), Effect.never))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(fiber)
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(exit._tag === "Failure" && exit.cause.reasons.every((reason) => reason._tag === "Interrupt"))
    })
  )
})
