import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import { gistOf } from "../../../tools/cassandra/internal/errors.ts"

describe("errors", () => {
  it("shortens the driver's 'All host(s) tried' message to what the node answered", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.131:9042"), { code: "ECONNREFUSED" })
    const error = new Cassandra.errors.NoHostAvailableError({ "127.0.0.131:9042": refused })
    assert.strictEqual(gistOf(error), "127.0.0.131:9042: connect ECONNREFUSED 127.0.0.131:9042")
  })

  it("keeps a progress line short whatever the cause says: one line of at most 200 characters", () => {
    const gist = gistOf(new Error(`${"x".repeat(10_000)}\nsecond line`))
    assert.strictEqual(gist.length, 200)
    assert.isTrue(gist.endsWith("…"))
    assert.strictEqual(gistOf("Keyspace ks does not exist"), "Keyspace ks does not exist")
  })
})
