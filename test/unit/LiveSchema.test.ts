import { assert, describe, it } from "@effect/vitest"
import { liveKeyspace } from "../../src/internal/liveSchema.ts"

const column = (table: string, name: string, kind: string, type: string, position = kind === "regular" ? -1 : 0) => ({
  table_name: table,
  column_name: name,
  kind: kind as "partition_key" | "clustering" | "regular" | "static",
  position,
  clustering_order: (kind === "clustering" ? "asc" : "none") as "asc" | "none",
  type
})

const columnsOf = (keyspace: ReturnType<typeof liveKeyspace>, table: string) =>
  keyspace.tables.find((candidate) => candidate.name === table)?.columns.map((c) => `${c.name} ${c.kind} ${c.type}`)

describe("liveSchema", () => {
  it("shows a COMPACT STORAGE table with the columns CQL shows, not the ones Cassandra keeps inside", () => {
    const keyspace = liveKeyspace(
      "ks",
      [
        { table_name: "static_compact", flags: new Set([]) },
        { table_name: "dense_no_value", flags: new Set(["dense"]) },
        { table_name: "dense", flags: new Set(["compound", "dense"]) },
        { table_name: "plain", flags: new Set(["compound"]) }
      ],
      [
        // CREATE TABLE static_compact (id int PRIMARY KEY, v int) WITH COMPACT STORAGE
        column("static_compact", "id", "partition_key", "int"),
        column("static_compact", "column1", "clustering", "text"),
        column("static_compact", "v", "static", "int"),
        column("static_compact", "value", "regular", "blob"),
        // CREATE TABLE dense_no_value (id int, ck int, PRIMARY KEY (id, ck)) WITH COMPACT STORAGE
        column("dense_no_value", "id", "partition_key", "int"),
        column("dense_no_value", "ck", "clustering", "int"),
        column("dense_no_value", "value", "regular", "empty"),
        column("dense", "id", "partition_key", "int"),
        column("dense", "ck", "clustering", "int"),
        column("dense", "v", "regular", "blob"),
        column("plain", "id", "partition_key", "int"),
        column("plain", "s", "static", "int")
      ],
      []
    )
    assert.deepStrictEqual(columnsOf(keyspace, "static_compact"), ["id partition_key int", "v regular int"])
    assert.deepStrictEqual(columnsOf(keyspace, "dense_no_value"), ["id partition_key int", "ck clustering int"])
    assert.deepStrictEqual(columnsOf(keyspace, "dense"), [
      "id partition_key int",
      "ck clustering int",
      "v regular blob"
    ])
    assert.deepStrictEqual(columnsOf(keyspace, "plain"), ["id partition_key int", "s static int"])
  })

  it("leaves out a table whose columns were gone when they were read, and columns of a table created since", () => {
    const keyspace = liveKeyspace(
      "ks",
      [
        { table_name: "dropped_meanwhile", flags: new Set(["compound"]) },
        { table_name: "kept", flags: new Set(["compound"]) }
      ],
      [column("kept", "id", "partition_key", "int"), column("created_meanwhile", "id", "partition_key", "int")],
      []
    )
    assert.deepStrictEqual(
      keyspace.tables.map((table) => table.name),
      ["kept"]
    )
  })
})
