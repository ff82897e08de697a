import { assert, describe, it } from "@effect/vitest"
import { schemaChangeFromLog } from "../../src/internal/schemaChangeLog.ts"

const at = new Date(0)

describe("schemaChangeLog", () => {
  it("reads keyspace, table, type, function and aggregate changes from the driver's control-connection log", () => {
    const read = (detail: Record<string, unknown>) => {
      const change = schemaChangeFromLog("ControlConnection", "Schema change", detail, at)
      return change === undefined ? undefined : [change.change, change.target, change.keyspace, change.name]
    }
    assert.deepStrictEqual(read({ schemaChangeType: "CREATED", keyspace: "ks", isKeyspace: true }), [
      "created",
      "keyspace",
      "ks",
      undefined
    ])
    assert.deepStrictEqual(read({ schemaChangeType: "UPDATED", keyspace: "ks", table: "t" }), [
      "updated",
      "table",
      "ks",
      "t"
    ])
    assert.deepStrictEqual(read({ schemaChangeType: "DROPPED", keyspace: "ks", udt: "address" }), [
      "dropped",
      "type",
      "ks",
      "address"
    ])
    assert.deepStrictEqual(read({ schemaChangeType: "CREATED", keyspace: "ks", functionName: "f" }), [
      "created",
      "function",
      "ks",
      "f"
    ])
    assert.deepStrictEqual(read({ schemaChangeType: "CREATED", keyspace: "ks", aggregate: "a" }), [
      "created",
      "aggregate",
      "ks",
      "a"
    ])
  })

  it("ignores every other log line and malformed details", () => {
    assert.isUndefined(schemaChangeFromLog("Connection", "Schema change", { schemaChangeType: "CREATED" }, at))
    assert.isUndefined(schemaChangeFromLog("ControlConnection", "Connected", {}, at))
    assert.isUndefined(schemaChangeFromLog("ControlConnection", "Schema change", null, at))
    assert.isUndefined(
      schemaChangeFromLog("ControlConnection", "Schema change", { schemaChangeType: "MOVED", keyspace: "ks" }, at)
    )
  })
})
