/**
 * The integration project's global setup: acquires one Cassandra for every integration test file, provides its
 * connection settings as `inject("cassandra")` (read them with `testConnection()` from ./cassandra.ts), and releases
 * it (stops a node it started) in the teardown. `CASSANDRA_VERSION` (e.g. `6.0-alpha2`) chooses the release of a node
 * started by the local manager (default: the newest 5.0.x).
 */
import { Cause, Effect, Exit, Scope } from "effect"
import type { TestProject } from "vitest/node"
import { acquireBackend } from "./backend.ts"
import type { TestConnection } from "./cassandra.ts"

/**
 * Acquires the integration tests' Cassandra and returns the teardown that releases it.
 *
 * @since 0.1.0
 * @category lifecycle
 */
export default async function setup({ provide }: TestProject): Promise<() => Promise<void>> {
  const scope = Effect.runSync(Scope.make())
  const close = () => Effect.runPromise(Scope.close(scope, Exit.void))
  const localVersion = process.env.CASSANDRA_VERSION?.trim() || undefined
  const acquired = await Effect.runPromiseExit(
    acquireBackend(localVersion === undefined ? {} : { localVersion }).pipe(Scope.provide(scope))
  )
  if (Exit.isFailure(acquired)) {
    await close()
    const error = Cause.findErrorOption(acquired.cause)
    throw new Error(error._tag === "Some" ? error.value.message : Cause.pretty(acquired.cause))
  }
  const backend = acquired.value
  const connection: TestConnection = {
    contactPoints: backend.contactPoints,
    localDataCenter: backend.localDataCenter,
    ...(backend.credentials === undefined ? {} : { credentials: backend.credentials })
  }
  provide("cassandra", connection)
  return close
}
