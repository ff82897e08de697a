import { assert, describe, it } from "@effect/vitest"
import { seedsOf } from "../../../tools/cassandra/internal/nodeConfig.ts"
import type { NodeRecord } from "../../../tools/cassandra/internal/state.ts"

const node = (index: number, dataCenter: string, founding = true): NodeRecord => ({
  index,
  address: `127.0.0.${20 + index}`,
  dataCenter,
  rack: "rack1",
  jmxPort: 7000 + 100 * (20 + index),
  token: String(index),
  founding,
  pid: null,
  decommissioned: false
})

const seedIndexes = (nodes: ReadonlyArray<NodeRecord>) => seedsOf(nodes).map((seed) => seed.index)

describe("nodeConfig", () => {
  it("gives each data center one seed, its first founding node", () => {
    assert.deepStrictEqual(seedIndexes([node(1, "dc1"), node(2, "dc1"), node(3, "dc2"), node(4, "dc2")]), [1, 3])
    assert.deepStrictEqual(seedIndexes([node(1, "dc1"), node(2, "dc2"), node(3, "dc3"), node(4, "dc4")]), [1, 2, 3, 4])
  })

  it("gives a single data center up to three seeds, never an added node", () => {
    const ring = [node(1, "datacenter1"), node(2, "datacenter1"), node(3, "datacenter1"), node(4, "datacenter1")]
    assert.deepStrictEqual(seedIndexes(ring), [1, 2, 3])
    assert.deepStrictEqual(seedIndexes([node(1, "datacenter1"), node(2, "datacenter1", false)]), [1])
  })
})
