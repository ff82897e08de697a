/**
 * The request path against a real Cassandra, attacked through what an untyped caller hands `execute`: the values
 * reach the driver as they were given, and the library asks nothing of them the driver would not.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Session from "effect-cassandra/Session"
import { testOptions } from "../support/session.ts"

const local = "SELECT release_version FROM system.local WHERE key = ?"

describe("the request path against a real Cassandra, under values from an untyped caller", () => {
  it.live("sends values held in a Proxy whose prototype cannot be read, as the driver reads them", () =>
    Effect.gen(function* () {
      const session = yield* Session.make(testOptions())
      const values = new Proxy(["local"], {
        getPrototypeOf: () => {
          throw new Error("the prototype of these values is not to be read")
        }
      })
      for (const prepare of [true, false]) {
        const result = yield* session.execute({ query: local, params: values, options: { prepare } })
        assert.lengthOf(result.rows, 1, `prepare: ${prepare}`)
      }
      assert.strictEqual(yield* session.inFlight, 0)
    }).pipe(Effect.scoped)
  )
})
