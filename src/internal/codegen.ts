/**
 * The TypeScript module of a keyspace: a `CqlType.Udt` schema per user-defined type and a `Table.make` definition per
 * table, printed as the project's formatter (Biome, 120 columns, double quotes, no semicolons, no trailing commas)
 * prints it, so that the output is stable under formatting and the same keyspace always gives the same bytes.
 */
import { type CqlTypeNode, canonical, isParseFailure, type PrimitiveName, parse, udtsOf } from "./cqlTypeAst.ts"
import type { LiveColumn, LiveKeyspace, LiveTable, LiveType } from "./schemaDiff.ts"

const lineWidth = 120

type Doc =
  | { readonly _tag: "Text"; readonly text: string }
  | { readonly _tag: "Call"; readonly callee: string; readonly args: ReadonlyArray<Doc> }
  | { readonly _tag: "Array"; readonly items: ReadonlyArray<Doc> }
  | { readonly _tag: "Object"; readonly entries: ReadonlyArray<readonly [string, Doc]>; readonly expanded: boolean }

const text = (value: string): Doc => ({ _tag: "Text", text: value })
const call = (callee: string, ...args: ReadonlyArray<Doc>): Doc => ({ _tag: "Call", callee, args })
const array = (items: ReadonlyArray<Doc>): Doc => ({ _tag: "Array", items })
/** An object literal; an expanded one stays on several lines, as the formatter keeps objects written that way. */
const object = (entries: ReadonlyArray<readonly [string, Doc]>, expanded = false): Doc => ({
  _tag: "Object",
  entries,
  expanded
})
const string = (value: string): Doc => text(JSON.stringify(value))

const propertyKey = (key: string) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? key : JSON.stringify(key))

/** `key: value`, or the shorthand `key` when the value is the variable of that name. */
const property = (key: string, value: string) =>
  value === key && propertyKey(key) === key ? key : `${propertyKey(key)}: ${value}`

/** The doc on one line, or undefined when it cannot be (an expanded object inside). */
const flat = (doc: Doc): string | undefined => {
  switch (doc._tag) {
    case "Text":
      return doc.text
    case "Call": {
      const args = doc.args.map(flat)
      return args.every((arg) => arg !== undefined) ? `${doc.callee}(${args.join(", ")})` : undefined
    }
    case "Array": {
      if (isMatrix(doc.items)) return undefined
      const items = doc.items.map(flat)
      return items.every((item) => item !== undefined) ? `[${items.join(", ")}]` : undefined
    }
    case "Object": {
      if (doc.expanded) return undefined
      const entries = doc.entries.map(([key, value]) => {
        const printed = flat(value)
        return printed === undefined ? undefined : property(key, printed)
      })
      if (!entries.every((entry) => entry !== undefined)) return undefined
      return entries.length === 0 ? "{}" : `{ ${entries.join(", ")} }`
    }
  }
}

/** An array of several objects or arrays of several entries each, which the formatter always puts one per line. */
const isMatrix = (items: ReadonlyArray<Doc>) =>
  items.length > 1 &&
  items.every(
    (item) => (item._tag === "Object" && item.entries.length > 1) || (item._tag === "Array" && item.items.length > 1)
  )

const isHuggable = (doc: Doc | undefined) => doc !== undefined && (doc._tag === "Object" || doc._tag === "Array")

/**
 * Prints a doc starting at column `column` of a line indented by `indent`, followed on its last line by `suffix`
 * characters: flat when it fits, else broken the way the formatter breaks it.
 */
const render = (doc: Doc, indent: number, column: number, suffix: number): string => {
  const oneLine = flat(doc)
  if (oneLine !== undefined && column + oneLine.length + suffix <= lineWidth) return oneLine
  const inner = " ".repeat(indent + 2)
  const close = " ".repeat(indent)
  switch (doc._tag) {
    case "Text":
      return doc.text
    case "Array":
      return `[\n${doc.items.map((item, index) => `${inner}${render(item, indent + 2, indent + 2, index === doc.items.length - 1 ? 0 : 1)}`).join(",\n")}\n${close}]`
    case "Object":
      return `{\n${doc.entries
        .map(([key, value], index) => {
          const suffix = index === doc.entries.length - 1 ? 0 : 1
          const oneLine = flat(value)
          if (oneLine !== undefined && value._tag === "Text") return `${inner}${property(key, oneLine)}`
          const head = `${propertyKey(key)}: `
          return `${inner}${head}${render(value, indent + 2, indent + 2 + head.length, suffix)}`
        })
        .join(",\n")}\n${close}}`
    case "Call": {
      const last = doc.args.at(-1)
      const leading = doc.args.slice(0, -1).map(flat)
      if (isHuggable(last) && !doc.args.slice(0, -1).some(isHuggable) && leading.every((arg) => arg !== undefined)) {
        // The last argument, an object or array, opens on the call's line and the call closes after it.
        const head = `${doc.callee}(${leading.map((arg) => `${arg}, `).join("")}`
        if (column + head.length < lineWidth)
          return `${head}${render(last!, indent, column + head.length, suffix + 1)})`
      }
      return `${doc.callee}(\n${doc.args.map((arg, index) => `${inner}${render(arg, indent + 2, indent + 2, index === doc.args.length - 1 ? 0 : 1)}`).join(",\n")}\n${close})`
    }
  }
}

/** `export const name = doc` with its doc comment. */
const declaration = (comment: string, name: string, doc: Doc) => {
  const head = `export const ${name} = `
  return `/** ${comment} */\n${head}${render(doc, 0, head.length, 0)}\n`
}

const primitiveSchemas: Record<PrimitiveName, string> = {
  ascii: "Ascii",
  bigint: "BigInt",
  blob: "Blob",
  boolean: "Boolean",
  counter: "Counter",
  date: "Date",
  decimal: "Decimal",
  double: "Double",
  duration: "Duration",
  float: "Float",
  inet: "Inet",
  int: "Int",
  smallint: "SmallInt",
  text: "Text",
  time: "Time",
  timestamp: "Timestamp",
  timeuuid: "TimeUuid",
  tinyint: "TinyInt",
  uuid: "Uuid",
  varint: "Varint"
}

const nullOr = (doc: Doc) => call("CqlType.NullOr", doc)

/** The `CqlType` expression of a type in its canonical form; `typeNames` gives each UDT's constant. */
const schemaOf = (type: CqlTypeNode, typeNames: ReadonlyMap<string, string>): Doc => {
  switch (type._tag) {
    case "Primitive":
      return text(`CqlType.${primitiveSchemas[type.name]}`)
    case "Udt":
      return text(typeNames.get(type.name)!)
    case "List":
      return call("CqlType.List", schemaOf(type.element, typeNames))
    case "Set":
      return call("CqlType.Set", schemaOf(type.element, typeNames))
    case "Map":
      return call("CqlType.Map", schemaOf(type.key, typeNames), schemaOf(type.value, typeNames))
    case "Tuple":
      // Cassandra lets any element of a tuple be null.
      return call("CqlType.Tuple", array(type.elements.map((element) => nullOr(schemaOf(element, typeNames)))))
    case "Vector":
      return call("CqlType.Vector", schemaOf(type.element, typeNames), text(String(type.dimension)))
    case "Frozen":
      // A tuple is always frozen: `CqlType.Tuple` alone says so.
      return type.type._tag === "Tuple"
        ? schemaOf(type.type, typeNames)
        : call("CqlType.Frozen", schemaOf(type.type, typeNames))
  }
}

/** Why a keyspace cannot be written as a module: names the library cannot quote, types it cannot read. */
export interface Unrepresentable {
  readonly problems: ReadonlyArray<string>
}

const validName = /^[A-Za-z0-9_]{1,48}$/

// `__proto__: …` in an object literal sets the object's prototype instead of a property, and the driver's rows are
// plain objects, where such a column cannot be read either.
const unrepresentableKey = "__proto__"

/**
 * The standard JavaScript globals a constant name could be: a constant of one of these names would shadow it, which
 * the linter refuses. A fixed list, so that the same keyspace gives the same module on every runtime.
 */
const globalNames: ReadonlySet<string> = new Set([
  "AggregateError",
  "Array",
  "ArrayBuffer",
  "AsyncDisposableStack",
  "Atomics",
  "BigInt",
  "BigInt64Array",
  "BigUint64Array",
  "Boolean",
  "DataView",
  "Date",
  "DisposableStack",
  "Error",
  "EvalError",
  "FinalizationRegistry",
  "Float16Array",
  "Float32Array",
  "Float64Array",
  "Function",
  "Infinity",
  "Int16Array",
  "Int32Array",
  "Int8Array",
  "Intl",
  "Iterator",
  "JSON",
  "Map",
  "Math",
  "NaN",
  "Number",
  "Object",
  "Promise",
  "Proxy",
  "RangeError",
  "ReferenceError",
  "Reflect",
  "RegExp",
  "Set",
  "SharedArrayBuffer",
  "String",
  "SuppressedError",
  "Symbol",
  "SyntaxError",
  "TypeError",
  "URIError",
  "Uint16Array",
  "Uint32Array",
  "Uint8Array",
  "Uint8ClampedArray",
  "WeakMap",
  "WeakRef",
  "WeakSet"
])

const pascalCase = (name: string) => {
  const words = name.split("_").filter((word) => word !== "")
  const joined = words.map((word) => word[0]!.toUpperCase() + word.slice(1)).join("")
  return joined === "" || /^[0-9]/.test(joined) ? `_${joined}` : joined
}

/** Types before the types and tables that use them, by name otherwise. */
const creationOrder = (types: ReadonlyArray<LiveType>, parsed: ReadonlyMap<string, ReadonlyArray<CqlTypeNode>>) => {
  const ordered: Array<LiveType> = []
  const placed = new Set<string>()
  const byName = new Map(types.map((type) => [type.name, type]))
  const place = (type: LiveType) => {
    if (placed.has(type.name)) return
    placed.add(type.name)
    const uses = (parsed.get(type.name) ?? []).flatMap(udtsOf).map((udt) => udt.name)
    for (const used of [...new Set(uses)].sort()) {
      const dependency = byName.get(used)
      if (dependency !== undefined) place(dependency)
    }
    ordered.push(type)
  }
  for (const type of [...types].sort((a, b) => compare(a.name, b.name))) place(type)
  return ordered
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

const kindOrder = { partition_key: 0, clustering: 1, static: 2, regular: 3 } as const

/** Key columns by position, then static columns, then the others, each group by name. */
const columnOrder = (a: LiveColumn, b: LiveColumn) =>
  kindOrder[a.kind] - kindOrder[b.kind] || a.position - b.position || compare(a.name, b.name)

/** The module text of a keyspace, or every reason it cannot be written. */
export const renderKeyspace = (keyspace: LiveKeyspace): string | Unrepresentable => {
  const problems: Array<string> = []
  const checkName = (what: string, name: string) => {
    if (!validName.test(name)) problems.push(`${what} ${JSON.stringify(name)} is not a name of [A-Za-z0-9_]{1,48}`)
    else if (name === unrepresentableKey) {
      problems.push(`${what} ${JSON.stringify(name)} cannot be a property of a JavaScript object`)
    }
  }
  const typeNamesRead: ReadonlySet<string> = new Set(keyspace.types.map((type) => type.name))
  const typeOf = (what: string, text: string): CqlTypeNode => {
    const parsed = parse(text)
    if (isParseFailure(parsed)) {
      problems.push(`${what} has a type the library cannot read (${parsed.expected} at position ${parsed.position})`)
      return { _tag: "Primitive", name: "blob" }
    }
    // The reads of tables, columns and types are not one snapshot: a type may have changed in between.
    for (const udt of udtsOf(parsed)) {
      if (!typeNamesRead.has(udt.name)) {
        problems.push(`${what} uses the type ${udt.name}, which the keyspace does not hold (generate again)`)
      }
    }
    return canonical(parsed)
  }
  checkName("keyspace", keyspace.name)
  const fieldTypes = new Map<string, ReadonlyArray<CqlTypeNode>>()
  for (const type of keyspace.types) {
    checkName("type", type.name)
    for (const field of type.fields) checkName(`field of type ${type.name}`, field.name)
    fieldTypes.set(
      type.name,
      type.fields.map((field) => typeOf(`field ${type.name}.${field.name}`, field.type))
    )
  }
  const tables = [...keyspace.tables].sort((a, b) => compare(a.name, b.name))
  const columnTypes = new Map<LiveTable, ReadonlyArray<readonly [LiveColumn, CqlTypeNode]>>()
  for (const table of tables) {
    checkName("table", table.name)
    const columns = [...table.columns].sort(columnOrder)
    for (const column of columns) checkName(`column of table ${table.name}`, column.name)
    if (!columns.some((column) => column.kind === "partition_key")) {
      problems.push(`table ${table.name} has no partition key column (it changed while it was read: generate again)`)
    }
    columnTypes.set(
      table,
      columns.map((column) => [column, typeOf(`column ${table.name}.${column.name}`, column.type)] as const)
    )
  }
  if (problems.length > 0) return { problems }

  const taken = new Set(["CqlType", "Table", ...globalNames])
  const constantName = (name: string, suffix: string) => {
    let candidate = pascalCase(name)
    if (taken.has(candidate)) candidate = `${candidate}${suffix}`
    for (let index = 2; taken.has(candidate); index++) candidate = `${pascalCase(name)}${suffix}${index}`
    taken.add(candidate)
    return candidate
  }
  const types = creationOrder(keyspace.types, fieldTypes)
  const typeNames = new Map(types.map((type) => [type.name, constantName(type.name, "Type")]))
  const tableNames = new Map(tables.map((table) => [table, constantName(table.name, "Table")]))

  const typeDeclarations = types.map((type) => {
    const fields = fieldTypes.get(type.name)!
    return declaration(
      `The user-defined type \`${type.name}\`.`,
      typeNames.get(type.name)!,
      call(
        "CqlType.Udt",
        string(type.name),
        object(
          type.fields.map((field, index) => [field.name, nullOr(schemaOf(fields[index]!, typeNames))] as const),
          true
        )
      )
    )
  })

  const tableDeclarations = tables.map((table) => {
    const columns = columnTypes.get(table)!
    const ofKind = (kind: LiveColumn["kind"]) => columns.filter(([column]) => column.kind === kind)
    const entries: Array<readonly [string, Doc]> = [
      ["keyspace", text("keyspace")],
      ["name", string(table.name)],
      [
        "columns",
        object(
          columns.map(([column, type]) => {
            const schema = schemaOf(type, typeNames)
            const isKey = column.kind === "partition_key" || column.kind === "clustering"
            return [column.name, isKey ? schema : nullOr(schema)] as const
          }),
          true
        )
      ],
      ["partitionKey", array(ofKind("partition_key").map(([column]) => string(column.name)))]
    ]
    const clustering = ofKind("clustering")
    if (clustering.length > 0) {
      entries.push([
        "clusteringKey",
        array(
          clustering.map(([column]) =>
            object([
              ["column", string(column.name)],
              ["order", string(column.clusteringOrder === "desc" ? "DESC" : "ASC")]
            ])
          )
        )
      ])
    }
    const statics = ofKind("static")
    if (statics.length > 0) entries.push(["staticColumns", array(statics.map(([column]) => string(column.name)))])
    return declaration(
      `The table \`${table.name}\`.`,
      tableNames.get(table)!,
      call("Table.make", object(entries, true))
    )
  })

  const definitions = declaration(
    "Every type and table above, types in creation order, to create them or to check them with `SchemaCheck.layer`.",
    "definitions",
    object(
      [
        [
          "types",
          array(types.map((type) => call("Table.userType", text("keyspace"), text(typeNames.get(type.name)!))))
        ],
        ["tables", array(tables.map((table) => text(tableNames.get(table)!)))]
      ],
      true
    )
  )

  // An empty keyspace uses neither module, and an unused import would not pass the linter.
  const imports =
    types.length > 0 || tables.length > 0
      ? ['import * as CqlType from "effect-cassandra/CqlType"', 'import * as Table from "effect-cassandra/Table"']
      : []
  return [
    `/**\n * The tables and user-defined types of the keyspace \`${keyspace.name}\`, generated by \`effect-cassandra generate\`:\n * generate it again rather than editing it.\n */\n${imports.join("\n")}\n`,
    declaration("The keyspace of these tables and types.", "keyspace", string(keyspace.name)),
    ...typeDeclarations,
    ...tableDeclarations,
    definitions
  ].join("\n")
}
