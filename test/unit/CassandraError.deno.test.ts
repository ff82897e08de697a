import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as CassandraError from "effect-cassandra/CassandraError"

/** What Deno throws for an operation its permission flags do not allow (`Deno.errors.NotCapable`). */
class NotCapable extends Error {
  override name = "NotCapable"
}

describe("CassandraError.fromDriverError on Deno", () => {
  it("says which permission flag a connection needs, as a Configuration reason, not retryable", () => {
    const denial = new NotCapable('Requires net access to "10.0.0.1:9042", run again with the --allow-net flag')
    const error = CassandraError.fromDriverError(
      new Cassandra.errors.NoHostAvailableError({ "10.0.0.1:9042": denial }),
      {
        operation: "connect"
      }
    )
    assert.strictEqual(error.reason._tag, "Configuration")
    assert.include(error.message, 'Requires net access to "10.0.0.1:9042", run again with the --allow-net flag')
    assert.isFalse(error.isRetryable)
  })
})
