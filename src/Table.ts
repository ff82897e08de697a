/**
 * Tables and user-defined types declared once, as values: each column's `CqlType` schema is written in one place,
 * and the row Schema, the `CREATE TABLE` and `CREATE TYPE` statements and typed statements (insert a row, update or
 * delete one by its primary key, add to counters, read one by its primary key, read a partition) are derived from it. `SchemaCheck` compares the same values with the cluster.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CqlType, Table } from "effect-cassandra"
 *
 * const Address = CqlType.Udt("address", { street: CqlType.NullOr(CqlType.Text), zip: CqlType.NullOr(CqlType.Int) })
 *
 * const Users = Table.make({
 *   keyspace: "shop",
 *   name: "users",
 *   columns: {
 *     country: CqlType.Text,
 *     id: CqlType.Uuid,
 *     name: CqlType.NullOr(CqlType.Text),
 *     address: CqlType.NullOr(CqlType.Frozen(Address)),
 *     country_name: CqlType.NullOr(CqlType.Text)
 *   },
 *   partitionKey: ["country"],
 *   clusteringKey: [{ column: "id", order: "DESC" }],
 *   staticColumns: ["country_name"]
 * })
 *
 * // { country: string; id: string; name: string | null; address: {...} | null; country_name: string | null }
 * type User = typeof Users.Row.Type
 *
 * const program = Effect.gen(function* () {
 *   yield* Table.createType(Table.userType("shop", Address))
 *   yield* Table.create(Users)
 *   yield* Users.insert({
 *     country: "NO",
 *     id: "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
 *     name: "Kari",
 *     address: null,
 *     country_name: "Norway"
 *   })
 *   const user = yield* Users.find({ country: "NO", id: "1b4e28ba-2fa1-11d2-883f-0016d3cca427" })
 * })
 * ```
 *
 * @since 0.1.0
 */

import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Stream from "effect/Stream"
import * as CassandraError from "./CassandraError.ts"
import * as CqlSchema from "./CqlSchema.ts"
import { cqlTypeOf } from "./CqlType.ts"
import { type CqlTypeNode, isParseFailure, type PrimitiveName, parse } from "./internal/cqlTypeAst.ts"
import * as Query from "./Query.ts"
import type { Session } from "./Session.ts"

const TypeId = "~effect-cassandra/Table"
const UserTypeTypeId = "~effect-cassandra/Table/UserType"

/**
 * The order of a clustering column: `ASC` (Cassandra's default) or `DESC`.
 *
 * @since 0.1.0
 * @category models
 */
export type ClusteringOrder = "ASC" | "DESC"

/**
 * A clustering column and its order.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClusteringColumn<Name extends string = string> {
  readonly column: Name
  readonly order: ClusteringOrder
}

/**
 * What `make` takes: the table's keyspace and name, its columns (name to `CqlType` schema), the partition key
 * (at least one column), the clustering key in order (a name alone is `ASC`) and the static columns.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<
  Columns extends Schema.Struct.Fields,
  PartitionKey extends keyof Columns & string,
  ClusteringKey extends keyof Columns & string
> {
  readonly keyspace: string
  readonly name: string
  readonly columns: Columns
  readonly partitionKey: readonly [PartitionKey, ...Array<PartitionKey>]
  readonly clusteringKey?: ReadonlyArray<ClusteringKey | ClusteringColumn<ClusteringKey>> | undefined
  readonly staticColumns?: ReadonlyArray<keyof Columns & string> | undefined
}

/**
 * The failures of a table's typed statements: the request or a row refused by its Schema, or the request itself.
 *
 * @since 0.1.0
 * @category models
 */
export type Failure = CassandraError.CassandraError | CqlSchema.CqlSchemaError

/**
 * A table declared as a value. `Row` decodes its rows (every column) and works with every `CqlSchema` helper;
 * `PrimaryKey` and `PartitionKey` are the Schemas of its keys.
 *
 * @since 0.1.0
 * @category models
 */
export interface Table<
  Columns extends Schema.Struct.Fields = Schema.Struct.Fields,
  PartitionKey extends keyof Columns & string = keyof Columns & string,
  ClusteringKey extends keyof Columns & string = keyof Columns & string
> {
  readonly [TypeId]: typeof TypeId
  readonly keyspace: string
  readonly name: string
  readonly columns: Columns
  readonly partitionKey: ReadonlyArray<PartitionKey>
  readonly clusteringKey: ReadonlyArray<ClusteringColumn<ClusteringKey>>
  readonly staticColumns: ReadonlyArray<keyof Columns & string>
  /** The Schema of a whole row. */
  readonly Row: Schema.Struct<Columns>
  /** The Schema of the primary key: the partition key and clustering columns. */
  readonly PrimaryKey: Schema.Struct<Pick<Columns, PartitionKey | ClusteringKey>>
  /** The Schema of the partition key. */
  readonly PartitionKey: Schema.Struct<Pick<Columns, PartitionKey>>
  /**
   * Writes a whole row (`INSERT` of every column; a `null` column is written as no value), as an idempotent
   * statement: the session may retry it. A table with counter columns fails with a `Configuration` reason before
   * sending anything, as Cassandra writes counters only by `increment`.
   */
  insert(
    row: Schema.Struct<Columns>["Type"]
  ): Effect.Effect<void, Failure, Session | Schema.Struct<Columns>["EncodingServices"]>
  /**
   * Sets the given columns of the row with this primary key (`UPDATE … SET`; `null` clears a column, a column not
   * given is left as it is), as an idempotent statement. Counter columns are changed by `increment` only.
   */
  update(
    key: Schema.Struct<Pick<Columns, PartitionKey | ClusteringKey>>["Type"],
    values: Partial<Schema.Struct<Omit<Columns, PartitionKey | ClusteringKey>>["Type"]>
  ): Effect.Effect<void, Failure, Session | Schema.Struct<Columns>["EncodingServices"]>
  /**
   * Adds to counter columns of the row with this primary key (`UPDATE … SET c = c + ?`; a negative delta
   * subtracts). Not idempotent: the session never retries it. Fails with a `Configuration` reason, before sending
   * anything, for a column that is not a counter or when no column is given.
   */
  increment(
    key: Schema.Struct<Pick<Columns, PartitionKey | ClusteringKey>>["Type"],
    deltas: { readonly [K in Exclude<keyof Columns, PartitionKey | ClusteringKey>]?: bigint }
  ): Effect.Effect<void, Failure, Session | Schema.Struct<Columns>["EncodingServices"]>
  /** Deletes the row with this primary key, as an idempotent statement. */
  delete(
    key: Schema.Struct<Pick<Columns, PartitionKey | ClusteringKey>>["Type"]
  ): Effect.Effect<void, Failure, Session | Schema.Struct<Columns>["EncodingServices"]>
  /** Reads the row with this primary key, if there is one. */
  find(
    key: Schema.Struct<Pick<Columns, PartitionKey | ClusteringKey>>["Type"]
  ): Effect.Effect<
    Option.Option<Schema.Struct<Columns>["Type"]>,
    Failure,
    Session | Schema.Struct<Columns>["DecodingServices"] | Schema.Struct<Columns>["EncodingServices"]
  >
  /** Every row of one partition, in clustering order, pulled one page at a time. */
  findPartition(
    key: Schema.Struct<Pick<Columns, PartitionKey>>["Type"]
  ): Stream.Stream<
    Schema.Struct<Columns>["Type"],
    Failure,
    Session | Schema.Struct<Columns>["DecodingServices"] | Schema.Struct<Columns>["EncodingServices"]
  >
}

/**
 * A table of any columns, as `SchemaCheck` and `create` take it.
 *
 * @since 0.1.0
 * @category models
 */
export type Any = Table<any, any, any>

/**
 * A user-defined type declared as a value: a `CqlType.Udt` schema and the keyspace it lives in.
 *
 * @since 0.1.0
 * @category models
 */
export interface UserType<S extends Schema.Struct<Schema.Struct.Fields> = Schema.Struct<Schema.Struct.Fields>> {
  readonly [UserTypeTypeId]: typeof UserTypeTypeId
  readonly keyspace: string
  /** The type's name, as `CqlType.Udt` was given it (without a keyspace). */
  readonly name: string
  readonly schema: S
}

/**
 * Tells whether a value is a table built by `make`.
 *
 * @since 0.1.0
 * @category guards
 */
export const isTable = (u: unknown): u is Any => typeof u === "object" && u !== null && TypeId in u

/**
 * Tells whether a value is a user-defined type built by `userType`.
 *
 * @since 0.1.0
 * @category guards
 */
export const isUserType = (u: unknown): u is UserType => typeof u === "object" && u !== null && UserTypeTypeId in u

const pick = <Columns extends Schema.Struct.Fields, K extends keyof Columns & string>(
  columns: Columns,
  names: ReadonlyArray<K>
): Pick<Columns, K> => Object.fromEntries(names.map((name) => [name, columns[name]])) as Pick<Columns, K>

const normalisedClustering = <K extends string>(
  clusteringKey: ReadonlyArray<K | ClusteringColumn<K>> | undefined
): ReadonlyArray<ClusteringColumn<K>> =>
  (clusteringKey ?? []).map((entry) => (typeof entry === "string" ? { column: entry, order: "ASC" } : entry))

// Writing a whole row or columns again writes the same values (no counter, no append, no condition), and deleting a
// row again deletes it: safe to retry. An increment is not.
const idempotentOptions = { idempotent: true } as const
const incrementOptions = { idempotent: false } as const

const isCounter = (schema: Schema.Top) => {
  const type = parseType(cqlTypeOf(schema))
  return type !== undefined && type._tag === "Primitive" && type.name === "counter"
}

/** `"a" = ? AND "b" = ?` for the given columns of an encoded request. */
const keyConditions = (columns: ReadonlyArray<string>, key: Record<string, unknown>) =>
  Query.join(
    columns.map((column) => Query.cql`${Query.identifier(column)} = ${key[column]}`),
    " AND "
  )

/**
 * Declares a table. The column names given as keys and static columns are checked against `columns` by the type
 * checker; names that are not valid CQL names (`[A-Za-z0-9_]{1,48}`) make its statements fail with an
 * `InvalidIdentifier` reason before anything is sent.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <
  const Columns extends Schema.Struct.Fields,
  const PartitionKey extends keyof Columns & string,
  const ClusteringKey extends keyof Columns & string = never
>(
  options: Options<Columns, PartitionKey, ClusteringKey>
): Table<Columns, PartitionKey, ClusteringKey> => {
  const clusteringKey = normalisedClustering(options.clusteringKey)
  const partitionKey = [...options.partitionKey]
  const primaryKey = [...partitionKey, ...clusteringKey.map((column) => column.column)]
  const Row = Schema.Struct(options.columns)
  const PrimaryKey = Schema.Struct(pick(options.columns, primaryKey))
  const PartitionKeySchema = Schema.Struct(pick(options.columns, partitionKey))
  const table = Query.identifier(options.keyspace, options.name)
  const columnNames = Object.keys(options.columns)
  const columnList = Query.identifiers(columnNames)
  const path = `${options.keyspace}.${options.name}`
  const primaryKeyNames: ReadonlySet<string> = new Set(primaryKey)
  const counters: ReadonlySet<string> = new Set(
    columnNames.filter((name) => isCounter(options.columns[name] as Schema.Top))
  )
  const refuse = (detail: string, operation: string) => Effect.fail(CassandraError.configuration(detail, { operation }))
  const insertRow = CqlSchema.void({
    Request: Row,
    execute: (row) =>
      Query.cql`INSERT INTO ${table} (${columnList}) VALUES ${Query.inList(columnNames.map((name) => (row as Record<string, unknown>)[name]))}`.withOptions(
        idempotentOptions
      )
  })
  const insert: Table<Columns, PartitionKey, ClusteringKey>["insert"] =
    counters.size === 0
      ? insertRow
      : () =>
          refuse(
            `table ${path} has counter columns (${[...counters].join(", ")}), which INSERT cannot write: use increment`,
            "Table.insert"
          )
  // The columns of a partial row, in declaration order: the request Schema encodes only those given.
  const PartialRow = Schema.Struct(
    Object.fromEntries(
      columnNames.map((name) => [
        name,
        primaryKeyNames.has(name) ? options.columns[name]! : Schema.optionalKey(options.columns[name]! as Schema.Top)
      ])
    ) as Schema.Struct.Fields
  )
  const givenColumns = (values: object) =>
    columnNames.filter((name) => !primaryKeyNames.has(name) && Object.hasOwn(values, name))
  /** `UPDATE … SET` of the columns a partial row gives, each assigned as `assign` writes it. */
  const updateGiven = (
    assign: (column: Query.Identifier, value: unknown) => Query.Fragment,
    statementOptions: Query.StatementOptions
  ) =>
    CqlSchema.void({
      Request: PartialRow,
      execute: (request) => {
        const values = request as Record<string, unknown>
        return Query.cql`UPDATE ${table} SET ${Query.join(
          givenColumns(values).map((name) => assign(Query.identifier(name), values[name]))
        )} WHERE ${keyConditions(primaryKey, values)}`.withOptions(statementOptions)
      }
    })
  const setColumns = updateGiven((column, value) => Query.cql`${column} = ${value}`, idempotentOptions)
  const addToCounters = updateGiven((column, delta) => Query.cql`${column} = ${column} + ${delta}`, incrementOptions)
  const update: Table<Columns, PartitionKey, ClusteringKey>["update"] = (key, values) => {
    const given = givenColumns(values)
    const givenCounters = given.filter((name) => counters.has(name))
    if (givenCounters.length > 0) {
      return refuse(
        `column ${givenCounters.join(", ")} of ${path} ${givenCounters.length === 1 ? "is a counter" : "are counters"}, which UPDATE … SET cannot write: use increment`,
        "Table.update"
      )
    }
    if (given.length === 0) return refuse(`an update of ${path} names no column to set`, "Table.update")
    return setColumns({ ...values, ...key })
  }
  const increment: Table<Columns, PartitionKey, ClusteringKey>["increment"] = (key, deltas) => {
    const given = givenColumns(deltas)
    const notCounters = given.filter((name) => !counters.has(name))
    // A key column given among the deltas is not a counter either.
    const keyColumns = Object.keys(deltas).filter((name) => primaryKeyNames.has(name))
    const wrong = [...keyColumns, ...notCounters]
    if (wrong.length > 0) {
      return refuse(
        `column ${wrong.join(", ")} of ${path} ${wrong.length === 1 ? "is not a counter column" : "are not counter columns"}`,
        "Table.increment"
      )
    }
    if (given.length === 0) return refuse(`an increment of ${path} names no counter column`, "Table.increment")
    return addToCounters({ ...deltas, ...key })
  }
  const deleteRow = CqlSchema.void({
    Request: PrimaryKey,
    execute: (key) =>
      Query.cql`DELETE FROM ${table} WHERE ${keyConditions(primaryKey, key as Record<string, unknown>)}`.withOptions(
        idempotentOptions
      )
  })
  const find = CqlSchema.findOneOption({
    Request: PrimaryKey,
    Result: Row,
    execute: (key) =>
      Query.cql`SELECT ${columnList} FROM ${table} WHERE ${keyConditions(primaryKey, key as Record<string, unknown>)}`
  })
  const findPartition = CqlSchema.stream({
    Request: PartitionKeySchema,
    Result: Row,
    execute: (key) =>
      Query.cql`SELECT ${columnList} FROM ${table} WHERE ${keyConditions(partitionKey, key as Record<string, unknown>)}`
  })
  return {
    [TypeId]: TypeId,
    keyspace: options.keyspace,
    name: options.name,
    columns: options.columns,
    partitionKey,
    clusteringKey,
    staticColumns: [...(options.staticColumns ?? [])],
    Row,
    PrimaryKey,
    PartitionKey: PartitionKeySchema,
    insert,
    update,
    increment,
    delete: deleteRow,
    find,
    findPartition
  }
}

/**
 * The same table in another keyspace: for an application that keeps one schema in several keyspaces (per tenant,
 * per test run).
 *
 * @since 0.1.0
 * @category combinators
 */
export const withKeyspace = <T extends Any>(table: T, keyspace: string): T =>
  make({
    keyspace,
    name: table.name,
    columns: table.columns,
    partitionKey: table.partitionKey as unknown as readonly [string, ...Array<string>],
    clusteringKey: table.clusteringKey,
    staticColumns: table.staticColumns
  }) as T

/**
 * Declares the user-defined type of a `CqlType.Udt` schema in a keyspace. A name the schema gives with a keyspace
 * (`CqlType.Udt("shop.address", …)`) is used without it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const userType = <S extends Schema.Struct<Schema.Struct.Fields>>(keyspace: string, schema: S): UserType<S> => {
  const type = parseType(cqlTypeOf(schema))
  return {
    [UserTypeTypeId]: UserTypeTypeId,
    keyspace,
    // A schema that is not a UDT has no name: `createType` and `SchemaCheck` report it.
    name: type !== undefined && type._tag === "Udt" ? type.name : "",
    schema
  }
}

const parseType = (text: string | undefined): CqlTypeNode | undefined => {
  if (text === undefined) return undefined
  const type = parse(text)
  return isParseFailure(type) ? undefined : type
}

// The CQL text of types, built only from literal templates and identifiers: no text of the caller's ever becomes CQL.
const primitiveTypes: Record<PrimitiveName, Query.Fragment> = {
  ascii: Query.cql`ascii`,
  bigint: Query.cql`bigint`,
  blob: Query.cql`blob`,
  boolean: Query.cql`boolean`,
  counter: Query.cql`counter`,
  date: Query.cql`date`,
  decimal: Query.cql`decimal`,
  double: Query.cql`double`,
  duration: Query.cql`duration`,
  float: Query.cql`float`,
  inet: Query.cql`inet`,
  int: Query.cql`int`,
  smallint: Query.cql`smallint`,
  text: Query.cql`text`,
  time: Query.cql`time`,
  timestamp: Query.cql`timestamp`,
  timeuuid: Query.cql`timeuuid`,
  tinyint: Query.cql`tinyint`,
  uuid: Query.cql`uuid`,
  varint: Query.cql`varint`
}

const digits = [
  Query.cql`0`,
  Query.cql`1`,
  Query.cql`2`,
  Query.cql`3`,
  Query.cql`4`,
  Query.cql`5`,
  Query.cql`6`,
  Query.cql`7`,
  Query.cql`8`,
  Query.cql`9`
]

/** A number written into the CQL text (a vector's dimension cannot be a bound value), digit by digit. */
const literalNumber = (value: number): Query.Fragment =>
  [...String(value)].map((digit) => digits[Number(digit)]!).reduce((text, digit) => Query.cql`${text}${digit}`)

const typeFragment = (type: CqlTypeNode): unknown => {
  switch (type._tag) {
    case "Primitive":
      return primitiveTypes[type.name]
    case "Udt":
      return type.keyspace === undefined ? Query.identifier(type.name) : Query.identifier(type.keyspace, type.name)
    case "List":
      return Query.cql`list<${typeFragment(type.element)}>`
    case "Set":
      return Query.cql`set<${typeFragment(type.element)}>`
    case "Map":
      return Query.cql`map<${typeFragment(type.key)}, ${typeFragment(type.value)}>`
    case "Tuple":
      return Query.cql`tuple<${Query.join(type.elements.map(typeFragment))}>`
    case "Vector":
      return Query.cql`vector<${typeFragment(type.element)}, ${literalNumber(type.dimension)}>`
    case "Frozen":
      return Query.cql`frozen<${typeFragment(type.type)}>`
  }
}

/**
 * The CQL type of each named schema, or the error naming every schema without one (a schema built elsewhere than
 * `CqlType`).
 */
const typesOf = (
  what: string,
  entries: ReadonlyArray<readonly [string, Schema.Struct.Fields[string]]>,
  operation: string
): Effect.Effect<ReadonlyArray<readonly [string, CqlTypeNode]>, CassandraError.CassandraError> => {
  const typed = entries.map(([name, schema]) => [name, parseType(cqlTypeOf(schema as Schema.Top))] as const)
  const untyped = typed.filter(([, type]) => type === undefined).map(([name]) => name)
  return untyped.length === 0
    ? Effect.succeed(typed as ReadonlyArray<readonly [string, CqlTypeNode]>)
    : Effect.fail(
        CassandraError.configuration(
          `${what} ${untyped.join(", ")} ${untyped.length === 1 ? "has" : "have"} a schema without a CQL type (use the schemas of CqlType)`,
          { operation }
        )
      )
}

/**
 * Options of the `CREATE` statements.
 *
 * @since 0.1.0
 * @category models
 */
export interface CreateOptions {
  /** Adds `IF NOT EXISTS`, so an existing table or type is left as it is. */
  readonly ifNotExists?: boolean | undefined
}

const ifNotExistsClause = (options: CreateOptions) => (options.ifNotExists ? Query.cql` IF NOT EXISTS` : Query.cql``)

// DDL has nothing to bind; preparing it would only cost a round trip.
const ddlOptions = { prepare: false } as const

/**
 * The `CREATE TABLE` statement of a table: its columns with their CQL types, static columns, primary key and
 * clustering order, every name quoted. Fails with a `Configuration` reason naming the columns whose schema has no
 * CQL type.
 *
 * @since 0.1.0
 * @category constructors
 */
export const createStatement = (
  table: Any,
  options: CreateOptions = {}
): Effect.Effect<Query.Statement, CassandraError.CassandraError> =>
  Effect.map(typesOf("column", Object.entries(table.columns as Schema.Struct.Fields), "Table.create"), (columns) => {
    const statics: ReadonlySet<string> = new Set(table.staticColumns)
    const definitions = columns.map(([name, type]) =>
      statics.has(name)
        ? Query.cql`${Query.identifier(name)} ${typeFragment(type)} STATIC`
        : Query.cql`${Query.identifier(name)} ${typeFragment(type)}`
    )
    const clustering: ReadonlyArray<ClusteringColumn> = table.clusteringKey
    const partition = Query.identifiers(table.partitionKey)
    const primaryKey =
      clustering.length === 0
        ? Query.cql`PRIMARY KEY ((${partition}))`
        : Query.cql`PRIMARY KEY ((${partition}), ${Query.identifiers(clustering.map((column) => column.column))})`
    const clusteringOrder =
      clustering.length === 0
        ? Query.cql``
        : Query.cql` WITH CLUSTERING ORDER BY (${Query.join(
            clustering.map((column) =>
              column.order === "DESC"
                ? Query.cql`${Query.identifier(column.column)} DESC`
                : Query.cql`${Query.identifier(column.column)} ASC`
            )
          )})`
    return Query.cql`CREATE TABLE${ifNotExistsClause(options)} ${Query.identifier(table.keyspace, table.name)} (${Query.join(
      [...definitions, primaryKey]
    )})${clusteringOrder}`.withOptions(ddlOptions)
  })

/**
 * Creates a table (see `createStatement`).
 *
 * @since 0.1.0
 * @category combinators
 */
export const create = (
  table: Any,
  options: CreateOptions = {}
): Effect.Effect<void, CassandraError.CassandraError, Session> =>
  Effect.flatMap(createStatement(table, options), Effect.asVoid)

/**
 * The `CREATE TYPE` statement of a user-defined type, its fields in the schema's order. Fails with a
 * `Configuration` reason when the schema is not a `CqlType.Udt` or a field's schema has no CQL type.
 *
 * @since 0.1.0
 * @category constructors
 */
export const createTypeStatement = (
  type: UserType,
  options: CreateOptions = {}
): Effect.Effect<Query.Statement, CassandraError.CassandraError> =>
  type.name === ""
    ? Effect.fail(
        CassandraError.configuration("the schema of a user-defined type must be a CqlType.Udt", {
          operation: "Table.createType"
        })
      )
    : Effect.map(typesOf("field", Object.entries(type.schema.fields), "Table.createType"), (fields) => {
        const definitions = fields.map(
          ([name, fieldType]) => Query.cql`${Query.identifier(name)} ${typeFragment(fieldType)}`
        )
        return Query.cql`CREATE TYPE${ifNotExistsClause(options)} ${Query.identifier(type.keyspace, type.name)} (${Query.join(
          definitions
        )})`.withOptions(ddlOptions)
      })

/**
 * Creates a user-defined type (see `createTypeStatement`).
 *
 * @since 0.1.0
 * @category combinators
 */
export const createType = (
  type: UserType,
  options: CreateOptions = {}
): Effect.Effect<void, CassandraError.CassandraError, Session> =>
  Effect.flatMap(createTypeStatement(type, options), Effect.asVoid)
