/**
 * The differences between the tables and types an application declares and the ones a keyspace holds, as plain
 * data on both sides. Each difference names what differs and the CQL types and key structures involved, never a
 * value.
 */
import { canonical, isParseFailure, parse, print, withoutKeyspaces } from "./cqlTypeAst.ts"

export interface DeclaredColumn {
  readonly name: string
  /** The CQL type text of the column's schema; undefined for a schema built elsewhere than `CqlType`. */
  readonly type: string | undefined
  readonly acceptsNull: boolean
}

export interface DeclaredTable {
  readonly keyspace: string
  readonly name: string
  readonly columns: ReadonlyArray<DeclaredColumn>
  readonly partitionKey: ReadonlyArray<string>
  readonly clusteringKey: ReadonlyArray<{ readonly column: string; readonly order: "ASC" | "DESC" }>
  readonly staticColumns: ReadonlyArray<string>
}

export interface DeclaredType {
  readonly keyspace: string
  /** Empty when the schema is not a `CqlType.Udt`. */
  readonly name: string
  readonly fields: ReadonlyArray<{ readonly name: string; readonly type: string | undefined }>
}

export type ColumnKind = "partition_key" | "clustering" | "regular" | "static"

export interface LiveColumn {
  readonly name: string
  readonly kind: ColumnKind
  readonly position: number
  readonly clusteringOrder: "asc" | "desc" | "none"
  readonly type: string
}

export interface LiveTable {
  readonly name: string
  readonly columns: ReadonlyArray<LiveColumn>
}

export interface LiveType {
  readonly name: string
  readonly fields: ReadonlyArray<{ readonly name: string; readonly type: string }>
}

export interface LiveKeyspace {
  readonly name: string
  readonly tables: ReadonlyArray<LiveTable>
  readonly types: ReadonlyArray<LiveType>
}

export const failureKinds = [
  "MissingKeyspace",
  "MissingTable",
  "MissingType",
  "MissingColumn",
  "MissingField",
  "ColumnType",
  "FieldType",
  "PartitionKey",
  "ClusteringKey",
  "NotStatic",
  "NoCqlType"
] as const

export const warningKinds = ["ExtraColumn", "ExtraField", "FieldOrder", "Static", "Nullable"] as const

export type DifferenceKind = (typeof failureKinds)[number] | (typeof warningKinds)[number]

export interface Difference {
  readonly kind: DifferenceKind
  readonly severity: "failure" | "warning"
  readonly keyspace: string
  /** The table or type. */
  readonly name?: string
  /** The column or field. */
  readonly column?: string
  readonly message: string
}

const warnings: ReadonlySet<DifferenceKind> = new Set(warningKinds)

const difference = (
  kind: DifferenceKind,
  keyspace: string,
  message: string,
  name?: string,
  column?: string
): Difference => ({
  kind,
  severity: warnings.has(kind) ? "warning" : "failure",
  keyspace,
  ...(name === undefined ? {} : { name }),
  ...(column === undefined ? {} : { column }),
  message
})

/** The canonical text of a type, compared without keyspaces (a table's types all live in its keyspace). */
const canonicalText = (text: string): string | undefined => {
  const type = parse(text)
  return isParseFailure(type) ? undefined : print(canonical(withoutKeyspaces(type)))
}

const describeKey = (columns: ReadonlyArray<string>) => `(${columns.join(", ")})`

const compareType = (
  declared: string | undefined,
  live: string,
  onDifferent: (declared: string, live: string) => Difference,
  onUntyped: () => Difference
): ReadonlyArray<Difference> => {
  const declaredText = declared === undefined ? undefined : canonicalText(declared)
  if (declaredText === undefined) return [onUntyped()]
  const liveText = canonicalText(live) ?? live
  return declaredText === liveText ? [] : [onDifferent(declaredText, liveText)]
}

/** A table's columns and a type's fields follow the same rules; these are the words and kinds that tell them apart. */
const members = {
  column: { owner: "table", missing: "MissingColumn", type: "ColumnType", extra: "ExtraColumn" },
  field: { owner: "type", missing: "MissingField", type: "FieldType", extra: "ExtraField" }
} as const

/** What differs about a declared column or field of `owner`: missing (`liveType` undefined), untyped or retyped. */
const diffMember = (
  member: keyof typeof members,
  keyspace: string,
  owner: string,
  declared: { readonly name: string; readonly type: string | undefined },
  liveType: string | undefined
): ReadonlyArray<Difference> => {
  const path = `${keyspace}.${owner}`
  const { name, type } = declared
  if (liveType === undefined) {
    return [
      difference(
        members[member].missing,
        keyspace,
        `${members[member].owner} ${path} has no ${member} ${name} (declared as ${type === undefined ? "a schema without a CQL type" : (canonicalText(type) ?? type)})`,
        owner,
        name
      )
    ]
  }
  return compareType(
    type,
    liveType,
    (declaredText, liveText) =>
      difference(
        members[member].type,
        keyspace,
        `${member} ${path}.${name} is ${declaredText} in the code but ${liveText} in the cluster`,
        owner,
        name
      ),
    () =>
      difference(
        "NoCqlType",
        keyspace,
        `${member} ${path}.${name} has a schema without a CQL type (use the schemas of CqlType)`,
        owner,
        name
      )
  )
}

/** The live columns or fields of `owner` that the code does not declare, and so does not read. */
const extraMembers = (
  member: keyof typeof members,
  keyspace: string,
  owner: string,
  live: ReadonlyArray<{ readonly name: string; readonly type: string }>,
  declaredNames: ReadonlySet<string>
): ReadonlyArray<Difference> =>
  live
    .filter(({ name }) => !declaredNames.has(name))
    .map(({ name, type }) =>
      difference(
        members[member].extra,
        keyspace,
        `${member} ${keyspace}.${owner}.${name} (${type}) exists in the cluster but not in the code, which does not read it`,
        owner,
        name
      )
    )

const diffTable = (table: DeclaredTable, live: LiveTable): Array<Difference> => {
  const { keyspace, name } = table
  const path = `${keyspace}.${name}`
  const differences: Array<Difference> = []
  const liveColumns = new Map(live.columns.map((column) => [column.name, column]))
  const declaredNames = new Set(table.columns.map((column) => column.name))
  const keyColumns = new Set([...table.partitionKey, ...table.clusteringKey.map((column) => column.column)])
  const statics = new Set(table.staticColumns)
  for (const column of table.columns) {
    const liveColumn = liveColumns.get(column.name)
    differences.push(...diffMember("column", keyspace, name, column, liveColumn?.type))
    if (liveColumn === undefined) continue
    if (statics.has(column.name) && liveColumn.kind !== "static") {
      differences.push(
        difference(
          "NotStatic",
          keyspace,
          `column ${path}.${column.name} is static in the code but not in the cluster`,
          name,
          column.name
        )
      )
    } else if (!statics.has(column.name) && liveColumn.kind === "static") {
      differences.push(
        difference(
          "Static",
          keyspace,
          `column ${path}.${column.name} is static in the cluster but not in the code`,
          name,
          column.name
        )
      )
    }
    const isKey = keyColumns.has(column.name) || liveColumn.kind === "partition_key" || liveColumn.kind === "clustering"
    if (!isKey && !column.acceptsNull) {
      differences.push(
        difference(
          "Nullable",
          keyspace,
          `column ${path}.${column.name} can be null in the cluster (it is not in the primary key) but its schema does not accept null`,
          name,
          column.name
        )
      )
    }
  }
  const liveKey = (kind: ColumnKind) =>
    live.columns.filter((column) => column.kind === kind).sort((a, b) => a.position - b.position)
  const livePartition = liveKey("partition_key").map((column) => column.name)
  if (livePartition.join("\u0000") !== table.partitionKey.join("\u0000")) {
    differences.push(
      difference(
        "PartitionKey",
        keyspace,
        `table ${path} has partition key ${describeKey(table.partitionKey)} in the code but ${describeKey(livePartition)} in the cluster`,
        name
      )
    )
  }
  const liveClustering = liveKey("clustering").map(
    (column) => `${column.name} ${column.clusteringOrder === "desc" ? "DESC" : "ASC"}`
  )
  const declaredClustering = table.clusteringKey.map((column) => `${column.column} ${column.order}`)
  if (liveClustering.join("\u0000") !== declaredClustering.join("\u0000")) {
    differences.push(
      difference(
        "ClusteringKey",
        keyspace,
        `table ${path} has clustering key ${describeKey(declaredClustering)} in the code but ${describeKey(liveClustering)} in the cluster`,
        name
      )
    )
  }
  differences.push(...extraMembers("column", keyspace, name, live.columns, declaredNames))
  return differences
}

const diffType = (type: DeclaredType, live: LiveType): Array<Difference> => {
  const { keyspace, name } = type
  const path = `${keyspace}.${name}`
  const differences: Array<Difference> = []
  const liveFields = new Map(live.fields.map((field) => [field.name, field.type]))
  for (const field of type.fields) {
    differences.push(...diffMember("field", keyspace, name, field, liveFields.get(field.name)))
  }
  const declaredNames = new Set(type.fields.map((field) => field.name))
  // A warning, not a failure: the driver writes and reads a UDT value field by field by name, in the cluster's order
  // (encoder.js `encodeUdt`), so reads and writes work. What differs is the order `CqlType.Set` and `CqlType.Map` sort
  // values of the type in, which matters only where Cassandra keeps a set as sent: nested in a frozen value.
  const declaredOrder = type.fields.map((field) => field.name).filter((field) => liveFields.has(field))
  const liveOrder = live.fields.map((field) => field.name).filter((field) => declaredNames.has(field))
  if (declaredOrder.join("\u0000") !== liveOrder.join("\u0000")) {
    differences.push(
      difference(
        "FieldOrder",
        keyspace,
        `type ${path} has fields ${describeKey(type.fields.map((field) => field.name))} in the code but ${describeKey(live.fields.map((field) => field.name))} in the cluster: values are read and written by field name, but sets of it and maps keyed by it nested in a frozen value are sorted in the code's order, not Cassandra's`,
        name
      )
    )
  }
  differences.push(...extraMembers("field", keyspace, name, live.fields, declaredNames))
  return differences
}

/**
 * Every difference between the declared tables and types and the live keyspaces (a keyspace missing from `live`
 * does not exist), types first, each group in declaration order.
 */
export const diff = (
  declared: { readonly tables: ReadonlyArray<DeclaredTable>; readonly types: ReadonlyArray<DeclaredType> },
  live: ReadonlyMap<string, LiveKeyspace>
): ReadonlyArray<Difference> => {
  const differences: Array<Difference> = []
  const missingKeyspaces = new Set<string>()
  const keyspaceOf = (keyspace: string) => {
    const found = live.get(keyspace)
    if (found === undefined && !missingKeyspaces.has(keyspace)) {
      missingKeyspaces.add(keyspace)
      differences.push(difference("MissingKeyspace", keyspace, `keyspace ${keyspace} does not exist`))
    }
    return found
  }
  for (const type of declared.types) {
    const keyspace = keyspaceOf(type.keyspace)
    if (keyspace === undefined) continue
    if (type.name === "") {
      differences.push(
        difference(
          "NoCqlType",
          type.keyspace,
          `a type declared in ${type.keyspace} has a schema that is not a CqlType.Udt`
        )
      )
      continue
    }
    const liveType = keyspace.types.find((candidate) => candidate.name === type.name)
    if (liveType === undefined) {
      differences.push(
        difference("MissingType", type.keyspace, `type ${type.keyspace}.${type.name} does not exist`, type.name)
      )
    } else {
      differences.push(...diffType(type, liveType))
    }
  }
  for (const table of declared.tables) {
    const keyspace = keyspaceOf(table.keyspace)
    if (keyspace === undefined) continue
    const liveTable = keyspace.tables.find((candidate) => candidate.name === table.name)
    if (liveTable === undefined) {
      differences.push(
        difference("MissingTable", table.keyspace, `table ${table.keyspace}.${table.name} does not exist`, table.name)
      )
    } else {
      differences.push(...diffTable(table, liveTable))
    }
  }
  return differences
}
