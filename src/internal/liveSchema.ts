/**
 * Reads a keyspace's tables, columns and user-defined types from `system_schema`, through the library's own
 * statements, as the plain data `schemaDiff` and the generator compare and print.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as CqlSchema from "../CqlSchema.ts"
import * as CqlType from "../CqlType.ts"
import * as Query from "../Query.ts"
import type { LiveColumn, LiveKeyspace } from "./schemaDiff.ts"

const keyspaceRow = CqlSchema.findOneOption({
  Request: Schema.String,
  Result: Schema.Struct({ keyspace_name: Schema.String }),
  execute: (keyspace) => Query.cql`SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ${keyspace}`
})

const TableRow = Schema.Struct({ table_name: Schema.String, flags: CqlType.NullOr(CqlType.Set(CqlType.Text)) })

const tableRows = CqlSchema.findAll({
  Request: Schema.String,
  Result: TableRow,
  execute: (keyspace) => Query.cql`SELECT table_name, flags FROM system_schema.tables WHERE keyspace_name = ${keyspace}`
})

const ColumnRow = Schema.Struct({
  table_name: Schema.String,
  column_name: Schema.String,
  kind: Schema.Literals(["partition_key", "clustering", "regular", "static"]),
  position: Schema.Number,
  clustering_order: Schema.Literals(["asc", "desc", "none"]),
  type: Schema.String
})

const columnRows = CqlSchema.findAll({
  Request: Schema.String,
  Result: ColumnRow,
  execute: (keyspace) =>
    Query.cql`SELECT table_name, column_name, kind, position, clustering_order, type FROM system_schema.columns WHERE keyspace_name = ${keyspace}`
})

const TypeRow = Schema.Struct({
  type_name: Schema.String,
  field_names: Schema.NullOr(Schema.Array(Schema.String)),
  field_types: Schema.NullOr(Schema.Array(Schema.String))
})

const typeRows = CqlSchema.findAll({
  Request: Schema.String,
  Result: TypeRow,
  execute: (keyspace) =>
    Query.cql`SELECT type_name, field_names, field_types FROM system_schema.types WHERE keyspace_name = ${keyspace}`
})

/**
 * The columns CQL shows of a table stored with `COMPACT STORAGE` (still accepted by Cassandra 5), which keeps columns of
 * its own in `system_schema`: a static compact table (neither compound nor dense) shows its static columns as regular
 * ones and hides its clustering column and value column; a dense one without a value column hides the `empty` one.
 */
const cqlColumns = (flags: ReadonlySet<string>, columns: Array<LiveColumn>): Array<LiveColumn> => {
  if (!flags.has("compound") && !flags.has("dense") && !flags.has("super")) {
    return columns.flatMap((column) =>
      column.kind === "partition_key"
        ? [column]
        : column.kind === "static"
          ? [{ ...column, kind: "regular" as const }]
          : []
    )
  }
  return flags.has("dense") ? columns.filter((column) => column.type !== "empty") : columns
}

const noFlags: ReadonlySet<string> = new Set()

/**
 * The keyspace as its `system_schema` rows describe it. The three reads are not one snapshot: a table whose columns
 * were all gone when they were read (dropped meanwhile) is left out, as are columns of a table created meanwhile, so
 * that a concurrent change shows as the table's absence, never as a table without a key.
 */
export const liveKeyspace = (
  name: string,
  tables: ReadonlyArray<typeof TableRow.Type>,
  columns: ReadonlyArray<typeof ColumnRow.Type>,
  types: ReadonlyArray<typeof TypeRow.Type>
): LiveKeyspace => {
  const byTable = new Map<string, Array<LiveColumn>>(tables.map((table) => [table.table_name, []]))
  for (const column of columns) {
    byTable.get(column.table_name)?.push({
      name: column.column_name,
      kind: column.kind,
      position: column.position,
      clusteringOrder: column.clustering_order,
      type: column.type
    })
  }
  return {
    name,
    tables: tables.flatMap((table) => {
      const tableColumns = cqlColumns(table.flags ?? noFlags, byTable.get(table.table_name)!)
      return tableColumns.length === 0 ? [] : [{ name: table.table_name, columns: tableColumns }]
    }),
    types: types.map((type) => ({
      name: type.type_name,
      fields: (type.field_names ?? []).map((field, index) => ({ name: field, type: type.field_types?.[index] ?? "" }))
    }))
  }
}

/**
 * The keyspace's tables (materialized views left out) and types, by name; `None` when the keyspace does not exist.
 * A `CqlSchemaError` here means `system_schema` is not what Cassandra 3 to 5 keep, which the library cannot work
 * with: it is a defect.
 */
export const readKeyspace = (keyspace: string) =>
  Effect.gen(function* () {
    if (Option.isNone(yield* keyspaceRow(keyspace))) return Option.none<LiveKeyspace>()
    const [tables, columns, types] = yield* Effect.all([tableRows(keyspace), columnRows(keyspace), typeRows(keyspace)])
    return Option.some(liveKeyspace(keyspace, tables, columns, types))
  }).pipe(Effect.catchTag("CqlSchemaError", Effect.die))
