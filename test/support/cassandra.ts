/**
 * The connection settings of the Cassandra that test/support/globalSetup.ts acquired for the integration tests.
 */
import { inject } from "vitest"

/**
 * How the integration tests reach their Cassandra.
 *
 * @since 0.1.0
 * @category models
 */
export interface TestConnection {
  readonly contactPoints: ReadonlyArray<string>
  readonly localDataCenter: string
  readonly credentials?: { readonly username: string; readonly password: string }
}

declare module "vitest" {
  export interface ProvidedContext {
    cassandra: TestConnection
  }
}

/**
 * The connection settings provided by the integration project's global setup.
 *
 * @since 0.1.0
 * @category accessors
 */
export const testConnection = (): TestConnection => inject("cassandra")
