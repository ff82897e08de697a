/**
 * The entry point of the matrix scripts (test/runtime/run.ts, test/server/run.ts): a program run to its end in a scope
 * of its own, interrupted by Ctrl-C or SIGTERM, its scope closed in every case so that every node it started stops.
 */
import { Cause, Effect, Exit, Fiber, Scope } from "effect"

/**
 * Runs `program`, closes its scope, and exits the process: status 0 when the program succeeded and did not yield
 * `false`, 1 otherwise (its failure printed).
 *
 * @since 0.1.0
 * @category runners
 */
export const runMain = async <A, E>(program: Effect.Effect<A, E, Scope.Scope>): Promise<never> => {
  const scope = Effect.runSync(Scope.make())
  const fiber = Effect.runFork(Scope.provide(program, scope))
  const interrupt = () => Effect.runFork(Fiber.interrupt(fiber))
  process.once("SIGINT", interrupt)
  process.once("SIGTERM", interrupt)
  const exit = await Effect.runPromise(Fiber.await(fiber))
  await Effect.runPromise(Scope.close(scope, Exit.void))
  if (Exit.isFailure(exit)) console.error(Cause.pretty(exit.cause))
  return process.exit(Exit.isSuccess(exit) && exit.value !== false ? 0 : 1)
}
