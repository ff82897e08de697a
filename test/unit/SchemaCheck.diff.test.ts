import { assert, describe, it } from "@effect/vitest"
import { type DeclaredTable, diff, type LiveKeyspace } from "../../src/internal/schemaDiff.ts"

const table: DeclaredTable = {
  keyspace: "ks",
  name: "t",
  columns: [
    { name: "id", type: "int", acceptsNull: false },
    { name: "ts", type: "timestamp", acceptsNull: false },
    { name: "pair", type: "tuple<int, text>", acceptsNull: true },
    { name: "name", type: "varchar", acceptsNull: false }
  ],
  partitionKey: ["id"],
  clusteringKey: [{ column: "ts", order: "DESC" }],
  staticColumns: []
}

const live = (columns: LiveKeyspace["tables"][number]["columns"]): ReadonlyMap<string, LiveKeyspace> =>
  new Map([["ks", { name: "ks", tables: [{ name: "t", columns }], types: [] }]])

const matching = [
  { name: "id", kind: "partition_key", position: 0, clusteringOrder: "none", type: "int" },
  { name: "ts", kind: "clustering", position: 0, clusteringOrder: "desc", type: "timestamp" },
  { name: "pair", kind: "regular", position: -1, clusteringOrder: "none", type: "frozen<tuple<int, text>>" },
  { name: "name", kind: "regular", position: -1, clusteringOrder: "none", type: "text" }
] as const

describe("schemaDiff", () => {
  it("finds no difference between a table and the same table as Cassandra stores it, but warns of nullable columns", () => {
    assert.deepStrictEqual(
      diff({ tables: [table], types: [] }, live(matching)).map((difference) => [
        difference.severity,
        difference.message
      ]),
      [
        [
          "warning",
          "column ks.t.name can be null in the cluster (it is not in the primary key) but its schema does not accept null"
        ]
      ]
    )
  })

  it("reports a missing keyspace once, and nothing inside it", () => {
    const differences = diff(
      { tables: [table, { ...table, name: "u" }], types: [{ keyspace: "ks", name: "a", fields: [] }] },
      new Map()
    )
    assert.deepStrictEqual(
      differences.map((difference) => difference.message),
      ["keyspace ks does not exist"]
    )
  })

  it("tells a clustering order from a key structure", () => {
    const flipped = matching.map((column) =>
      column.name === "ts" ? { ...column, clusteringOrder: "asc" as const } : column
    )
    assert.deepStrictEqual(
      diff({ tables: [{ ...table, columns: table.columns.slice(0, 3) }], types: [] }, live(flipped)).map(
        (difference) => difference.message
      ),
      [
        "table ks.t has clustering key (ts DESC) in the code but (ts ASC) in the cluster",
        "column ks.t.name (text) exists in the cluster but not in the code, which does not read it"
      ]
    )
  })

  it("warns of a user-defined type whose fields are declared in another order than the cluster's", () => {
    const declared = {
      keyspace: "ks",
      name: "address",
      fields: [
        { name: "zip", type: "int" },
        { name: "street", type: "text" },
        { name: "city", type: "text" }
      ]
    }
    const liveTypes: ReadonlyMap<string, LiveKeyspace> = new Map([
      [
        "ks",
        {
          name: "ks",
          tables: [],
          types: [
            {
              name: "address",
              fields: [
                { name: "street", type: "text" },
                { name: "city", type: "text" },
                { name: "zip", type: "int" }
              ]
            }
          ]
        }
      ]
    ])
    assert.deepStrictEqual(
      diff({ tables: [], types: [declared] }, liveTypes).map((difference) => [
        difference.kind,
        difference.severity,
        difference.message
      ]),
      [
        [
          "FieldOrder",
          "warning",
          "type ks.address has fields (zip, street, city) in the code but (street, city, zip) in the cluster: values are read and written by field name, but sets of it and maps keyed by it nested in a frozen value are sorted in the code's order, not Cassandra's"
        ]
      ]
    )
    // A field missing on either side is reported as such; the order compared is that of the fields on both sides.
    const missing = diff(
      { tables: [], types: [{ ...declared, fields: [declared.fields[1]!, declared.fields[0]!] }] },
      liveTypes
    ).map((difference) => difference.kind)
    assert.deepStrictEqual(missing, ["ExtraField"])
  })
})
