import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as LocalCassandra from "../../../tools/cassandra/LocalCassandra.ts"

// Each start below is refused while its options are checked, before Java, Maven or any node is touched.
const refusal = (options: LocalCassandra.ClusterOptions) =>
  Effect.flip(Effect.scoped(LocalCassandra.start({ name: "unit-refused", firstAddress: 131, ...options })))

describe("LocalCassandra options", () => {
  it.effect("refuses a data center count too large for the address range with a typed error, not a crash", () =>
    Effect.gen(function* () {
      for (const dataCenters of [1e20, 2 ** 32, 1e8, 255]) {
        const error = yield* refusal({ dataCenters })
        assert.strictEqual(error.reason, "InvalidOption", String(dataCenters))
        assert.include(error.message, `${dataCenters} nodes`)
      }
    })
  )

  it.effect("refuses a version that is not a Maven release, naming it, before anything is fetched", () =>
    Effect.gen(function* () {
      for (const version of ["", "../x", "../../etc", "$(id)", "5.0.4;rm", "5.0.4/..", " 5.0.4", "latest"]) {
        const error = yield* refusal({ version })
        assert.strictEqual(error.reason, "InvalidOption", version)
        assert.include(error.message, `"${version}"`)
      }
    })
  )
})
