import { createRequire } from "node:module"
import { assert, describe, it } from "@effect/vitest"
import { driverEncoding, keyspaceReplicationReadable } from "../../src/internal/driverEncoding.ts"

interface Parser {
  readonly _parseKeyspace: (
    row: Record<string, unknown>,
    virtual: boolean
  ) => { readonly strategy: string | undefined; readonly strategyOptions: Record<string, string> | undefined }
}

const { getByVersion } = createRequire(import.meta.url)("cassandra-driver/lib/metadata/schema-parser.js") as {
  readonly getByVersion: (options: object, cc: unknown, udtResolver: unknown, version: Array<number>) => Parser
}

describe("the session's driver encoding", () => {
  it("lets the driver's metadata read a keyspace's replication decoded as a Map, for every schema version", () => {
    assert.isTrue(keyspaceReplicationReadable)
    for (const version of [3, 4, 5]) {
      const parser = getByVersion({ encoding: driverEncoding }, undefined, undefined, [version, 0, 0])
      const keyspace = parser._parseKeyspace(
        {
          keyspace_name: "ks",
          durable_writes: true,
          replication: new Map([
            ["class", "org.apache.cassandra.locator.NetworkTopologyStrategy"],
            ["datacenter1", "3"]
          ])
        },
        false
      )
      assert.strictEqual(keyspace.strategy, "org.apache.cassandra.locator.NetworkTopologyStrategy")
      assert.deepStrictEqual(keyspace.strategyOptions, { datacenter1: "3" })
    }
  })

  it("still decodes maps and sets of rows as Map and Set", () => {
    assert.strictEqual(driverEncoding.map, Map)
    assert.strictEqual(driverEncoding.set, Set)
  })

  it("patches the driver's parser once however many copies of the library a process loads", async () => {
    const parser = getByVersion({ encoding: driverEncoding }, undefined, undefined, [4, 0, 0])
    const patched = parser._parseKeyspace
    // A second module instance, as a process holding both the built and the source copy of the library has.
    const copy = (await import("../../src/internal/driverEncoding.ts?second-copy" as string)) as {
      readonly keyspaceReplicationReadable: boolean
    }
    assert.isTrue(copy.keyspaceReplicationReadable)
    assert.strictEqual(parser._parseKeyspace, patched)
    const local = parser._parseKeyspace(
      {
        keyspace_name: "system",
        durable_writes: true,
        replication: new Map([["class", "org.apache.cassandra.locator.LocalStrategy"]])
      },
      false
    )
    assert.strictEqual(local.strategy, "org.apache.cassandra.locator.LocalStrategy")
    assert.deepStrictEqual(local.strategyOptions, {})
    const virtual = parser._parseKeyspace({ keyspace_name: "system_views", durable_writes: false }, true)
    assert.isUndefined(virtual.strategy)
  })
})
