import { assert, describe, it } from "@effect/vitest"
import { renderKeyspace } from "../../src/internal/codegen.ts"
import type { LiveColumn, LiveKeyspace } from "../../src/internal/schemaDiff.ts"

const column = (name: string, type: string, kind: LiveColumn["kind"] = "regular", position = -1): LiveColumn => ({
  name,
  kind,
  position,
  clusteringOrder: kind === "clustering" ? "asc" : "none",
  type
})

/** The partition key column every table here has. */
const id = column("id", "int", "partition_key", 0)

/** The module for keyspace `ks` holding table `t` of `id` and `columns`, and `types`. */
const renderTableT = (columns: ReadonlyArray<LiveColumn>, types: LiveKeyspace["types"] = []) =>
  renderKeyspace({ name: "ks", tables: [{ name: "t", columns: [id, ...columns] }], types })

describe("Codegen", () => {
  it("names constants after tables and types without clashing with the imported modules or each other", () => {
    const module = renderKeyspace({
      name: "ks",
      tables: [
        { name: "table", columns: [id, column("point", "frozen<point>")] },
        { name: "point", columns: [id] }
      ],
      types: [{ name: "point", fields: [{ name: "x", type: "double" }] }]
    })
    assert.isString(module)
    if (typeof module !== "string") return
    assert.include(module, 'export const Point = CqlType.Udt("point", {\n  x: CqlType.NullOr(CqlType.Double)\n})')
    assert.include(module, "export const TableTable = Table.make({")
    assert.include(module, "export const PointTable = Table.make({")
    assert.include(module, "    point: CqlType.NullOr(CqlType.Frozen(Point))")
    assert.include(module, "  tables: [PointTable, TableTable]")
  })

  it("refuses a keyspace with names the library cannot quote or types it cannot read, listing each", () => {
    const result = renderTableT([column("my col", "text"), column("c", "'org.example.Custom'")])
    assert.deepStrictEqual(result, {
      problems: [
        'column of table t "my col" is not a name of [A-Za-z0-9_]{1,48}',
        "column t.c has a type the library cannot read (a type name, <, >, or a comma at position 0)"
      ]
    })
  })

  it("refuses a column or field named __proto__, which an object literal would turn into its prototype", () => {
    const result = renderTableT(
      [column("__proto__", "int"), column("constructor", "int"), column("toString", "int")],
      [{ name: "u", fields: [{ name: "__proto__", type: "int" }] }]
    )
    assert.deepStrictEqual(result, {
      problems: [
        'field of type u "__proto__" cannot be a property of a JavaScript object',
        'column of table t "__proto__" cannot be a property of a JavaScript object'
      ]
    })
  })

  it("names no constant after a JavaScript global, which would shadow it and fail the linter", () => {
    const module = renderKeyspace({
      name: "ks",
      tables: ["date", "object", "map", "promise", "JSON", "NaN", "int8_array"].map((name) => ({
        name,
        columns: [id]
      })),
      types: [{ name: "set", fields: [{ name: "x", type: "int" }] }]
    })
    assert.isString(module)
    const constants = [...String(module).matchAll(/^export const (\w+) =/gm)].map((match) => match[1])
    assert.deepStrictEqual(constants, [
      "keyspace",
      "SetType",
      "JSONTable",
      "NaNTable",
      "DateTable",
      "Int8ArrayTable",
      "MapTable",
      "ObjectTable",
      "PromiseTable",
      "definitions"
    ])
  })

  it("refuses a table that has no partition key column, as a table read while it was dropped has", () => {
    assert.deepStrictEqual(renderKeyspace({ name: "ks", tables: [{ name: "gone", columns: [] }], types: [] }), {
      problems: ["table gone has no partition key column (it changed while it was read: generate again)"]
    })
  })

  it("refuses a column of a type the keyspace read does not hold, rather than write an undefined constant", () => {
    assert.deepStrictEqual(renderTableT([column("home", "frozen<address>")]), {
      problems: ["column t.home uses the type address, which the keyspace does not hold (generate again)"]
    })
  })

  it("puts an empty keyspace in a module without imports", () => {
    const module = renderKeyspace({ name: "empty", tables: [], types: [] })
    assert.isString(module)
    assert.notInclude(String(module), "import")
    assert.include(String(module), "export const definitions = {\n  types: [],\n  tables: []\n}")
  })
})
