/**
 * CQL statements: a `cql` tagged template whose interpolated values become bound parameters, never text. A statement
 * is an Effect (`yield*` runs it), prepared by default, and can also run page by page or as a `Stream`.
 *
 * @since 0.1.0
 */
import type * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Effectable from "effect/Effectable"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Stream from "effect/Stream"
import * as CassandraError from "./CassandraError.ts"
import { toBuffer } from "./internal/bytes.ts"
import { type BatchType, CassandraSession, type RequestOptions } from "./Session.ts"

/**
 * A row as the driver returns it: column name to value.
 *
 * @since 0.1.0
 * @category models
 */
export type Row = { readonly [column: string]: unknown }

/**
 * Per-statement settings: consistency, serial consistency, page size and state, idempotence, write timestamp,
 * routing key, tracing, execution profile, end-to-end timeout and whether to prepare.
 *
 * Reads (`SELECT`) are idempotent unless `idempotent: false` is given; every other statement must be declared
 * idempotent to be retried or speculatively executed.
 *
 * @since 0.1.0
 * @category models
 */
export type StatementOptions = RequestOptions

const IdentifierTypeId = "~effect-cassandra/Query/Identifier"
const StatementTypeId = "~effect-cassandra/Query/Statement"

/**
 * A keyspace, table or column name, written into the CQL text quoted and case-sensitive.
 *
 * @since 0.1.0
 * @category models
 */
export interface Identifier {
  readonly [IdentifierTypeId]: typeof IdentifierTypeId
  readonly parts: ReadonlyArray<string>
}

// Cassandra itself only accepts alphanumeric and underscore names for keyspaces and tables (at most 48 characters);
// holding columns to the same rule keeps every identifier safe to quote without escaping.
const validIdentifier = /^[A-Za-z0-9_]{1,48}$/

/**
 * Creates an identifier from one name or a qualified path (`identifier("ks", "users")` gives `"ks"."users"`).
 * Names must match `[A-Za-z0-9_]{1,48}`; a statement holding any other name fails with an `InvalidIdentifier` reason before
 * anything is sent.
 *
 * @example
 * ```ts
 * import { Query } from "effect-cassandra"
 *
 * const table = Query.identifier("shop", "orders")
 * const statement = Query.cql`SELECT * FROM ${table} WHERE id = ${42}`
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const identifier = (...parts: readonly [string, ...Array<string>]): Identifier => ({
  [IdentifierTypeId]: IdentifierTypeId,
  parts
})

/**
 * Tells whether a value is an identifier.
 *
 * @since 0.1.0
 * @category guards
 */
export const isIdentifier = (u: unknown): u is Identifier => Predicate.hasProperty(u, IdentifierTypeId)

/**
 * One page of a query's rows, with the token that resumes the query after it (absent on the last page).
 *
 * @since 0.1.0
 * @category models
 */
export interface Page<A> {
  readonly rows: ReadonlyArray<A>
  readonly pageState: Option.Option<string>
}

/**
 * What Cassandra reported about one request, besides its rows.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExecutionInfo {
  readonly coordinator: string | undefined
  readonly triedHosts: ReadonlyArray<string>
  readonly speculativeExecutions: number
  readonly achievedConsistency: string | undefined
  readonly traceId: Option.Option<string>
  readonly warnings: ReadonlyArray<string>
}

/**
 * The outcome of a conditional statement (`IF NOT EXISTS`, `IF col = ?`) or a conditional batch: applied, or not
 * applied with the values that made the condition false.
 *
 * @since 0.1.0
 * @category models
 */
export type Conditional<A> =
  | { readonly _tag: "Applied" }
  | { readonly _tag: "NotApplied"; readonly current: ReadonlyArray<A> }

/**
 * A CQL statement: text with `?` markers, bound parameters and options. Yielding it runs it and returns all rows of
 * its first page; `stream` pulls every page on demand.
 *
 * @since 0.1.0
 * @category models
 */
export interface Statement<A = Row>
  extends Effect.Effect<ReadonlyArray<A>, CassandraError.CassandraError, CassandraSession> {
  readonly [StatementTypeId]: typeof StatementTypeId
  /** The CQL text, with a `?` for each bound parameter. */
  readonly text: string
  /** The bound parameters, in order. */
  readonly params: ReadonlyArray<unknown>
  /** The per-statement options. */
  readonly options: StatementOptions
  /** The same statement with these options added (later values win). */
  readonly withOptions: (options: StatementOptions) => Statement<A>
  /** One page of rows, starting at the given page state (or at the beginning). */
  readonly page: (pageState?: string) => Effect.Effect<Page<A>, CassandraError.CassandraError, CassandraSession>
  /** Every row, pulling one page at a time as the stream is consumed; interrupting it stops fetching. */
  readonly stream: Stream.Stream<A, CassandraError.CassandraError, CassandraSession>
  /** The rows of the first page and what Cassandra reported about the request. */
  readonly result: Effect.Effect<
    { readonly rows: ReadonlyArray<A>; readonly info: ExecutionInfo; readonly pageState: Option.Option<string> },
    CassandraError.CassandraError,
    CassandraSession
  >
  /** Runs a conditional statement and tells whether it was applied. */
  readonly conditional: Effect.Effect<Conditional<Row>, CassandraError.CassandraError, CassandraSession>
}

/**
 * Tells whether a value is a statement.
 *
 * @since 0.1.0
 * @category guards
 */
export const isStatement = (u: unknown): u is Statement<unknown> => Predicate.hasProperty(u, StatementTypeId)

const invalidIdentifiers = (statement: Statement<unknown>): ReadonlyArray<string> =>
  (statement as unknown as StatementState).invalid

interface StatementState {
  readonly invalid: ReadonlyArray<string>
}

const appliedColumn = "[applied]"

const withoutAppliedColumn = (row: Row): Row => {
  const { [appliedColumn]: _, ...current } = row
  return current
}

const executionInfo = (result: Cassandra.types.ResultSet): ExecutionInfo => ({
  coordinator: result.info.queriedHost,
  triedHosts: Object.keys(result.info.triedHosts ?? {}),
  speculativeExecutions: result.info.speculativeExecutions ?? 0,
  achievedConsistency:
    result.info.achievedConsistency === undefined ? undefined : String(result.info.achievedConsistency),
  traceId: Option.fromNullishOr(result.info.traceId?.toString()),
  warnings: result.info.warnings ?? []
})

/**
 * Runs one request for a statement, failing with an `InvalidIdentifier` reason before sending when it holds an invalid name.
 */
const send = (statement: Statement<unknown>, options: StatementOptions) =>
  CassandraSession.use((session) => {
    const invalid = invalidIdentifiers(statement)
    if (invalid.length > 0) {
      return Effect.fail(CassandraError.invalidIdentifier(invalid, { operation: "execute", statement: statement.text }))
    }
    return session.execute({ query: statement.text, params: statement.params, options })
  })

const pageStateOf = (result: Cassandra.types.ResultSet) => Option.fromNullishOr(result.pageState ?? undefined)

const StatementProto = {
  [StatementTypeId]: StatementTypeId,
  withOptions(this: Statement<unknown>, options: StatementOptions) {
    return makeStatement(this.text, this.params, { ...this.options, ...options }, invalidIdentifiers(this))
  },
  page(this: Statement<unknown>, pageState?: string) {
    return Effect.map(
      send(this, pageState === undefined ? this.options : { ...this.options, pageState }),
      (result): Page<unknown> => ({ rows: result.rows, pageState: pageStateOf(result) })
    )
  },
  get stream() {
    const self = this as unknown as Statement<unknown>
    return Stream.paginate(undefined as string | undefined, (pageState) =>
      Effect.map(self.page(pageState), (page) => [page.rows, page.pageState] as const)
    )
  },
  get result() {
    const self = this as unknown as Statement<unknown>
    return Effect.map(send(self, self.options), (result) => ({
      rows: result.rows,
      info: executionInfo(result),
      pageState: pageStateOf(result)
    }))
  },
  get conditional() {
    const self = this as unknown as Statement<unknown>
    return Effect.map(send(self, self.options), (result) => conditionalOf(result))
  },
  ...Effectable.Prototype<Statement<unknown>>({
    label: "Statement",
    evaluate() {
      return Effect.map(send(this, this.options), (result) => result.rows)
    }
  }),
  toJSON(this: Statement<unknown>) {
    // Parameters are left out on purpose: they may hold personal data or secrets.
    return { _id: "Statement", text: this.text, parameterCount: this.params.length, options: this.options }
  }
}

const conditionalOf = (result: Cassandra.types.ResultSet): Conditional<Row> =>
  result.wasApplied() ? { _tag: "Applied" } : { _tag: "NotApplied", current: result.rows.map(withoutAppliedColumn) }

const makeStatement = <A>(
  text: string,
  params: ReadonlyArray<unknown>,
  options: StatementOptions,
  invalid: ReadonlyArray<string>
): Statement<A> => {
  const self = Object.create(StatementProto)
  self.text = text
  self.params = params
  self.options = options
  self.invalid = invalid
  return self
}

const quote = (part: string) => `"${part}"`

const isFragment = (value: unknown) => isIdentifier(value) || isStatement(value)

const parameterTexts = new WeakMap<TemplateStringsArray, string>()

const noInvalidNames: ReadonlyArray<string> = []

/**
 * Builds a statement from a template: interpolated values become bound parameters (`?`), identifiers are written
 * quoted, and interpolated statements are inlined with their own parameters.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Query } from "effect-cassandra"
 *
 * const findUser = (id: string) => Query.cql`SELECT name, email FROM users WHERE id = ${id}`
 *
 * const program = Effect.gen(function* () {
 *   const rows = yield* findUser("1b4e28ba-2fa1-11d2-883f-0016d3cca427")
 *   return rows[0]
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const cql = <A = Row>(strings: TemplateStringsArray, ...values: Array<unknown>): Statement<A> => {
  if (!values.some(isFragment)) {
    // A template of values only: its text is the same at every call, so it is built once per call site.
    let text = parameterTexts.get(strings)
    if (text === undefined) {
      text = strings.join("?")
      parameterTexts.set(strings, text)
    }
    for (let index = 0; index < values.length; index++) {
      const value = values[index]
      if (value instanceof Uint8Array) values[index] = toBuffer(value)
    }
    return makeStatement(text, values, {}, noInvalidNames)
  }
  let text = strings[0] ?? ""
  const params: Array<unknown> = []
  const invalid: Array<string> = []
  values.forEach((value, index) => {
    if (isIdentifier(value)) {
      for (const part of value.parts) if (!validIdentifier.test(part)) invalid.push(part)
      text += value.parts.map(quote).join(".")
    } else if (isStatement(value)) {
      text += value.text
      params.push(...value.params)
      invalid.push(...invalidIdentifiers(value))
    } else {
      text += "?"
      params.push(value instanceof Uint8Array ? toBuffer(value) : value)
    }
    text += strings[index + 1] ?? ""
  })
  return makeStatement(text, params, {}, invalid)
}

/**
 * Runs statements as one batch: `logged` (atomic, the default), `unlogged` or `counter`. A batch holding conditions
 * tells whether it was applied.
 *
 * @since 0.1.0
 * @category combinators
 */
export const batch = (
  statements: ReadonlyArray<Statement<unknown>>,
  options: StatementOptions & { readonly type?: BatchType } = {}
): Effect.Effect<Conditional<Row>, CassandraError.CassandraError, CassandraSession> =>
  CassandraSession.use((session) => {
    const invalid = statements.flatMap(invalidIdentifiers)
    if (invalid.length > 0) {
      return Effect.fail(CassandraError.invalidIdentifier(invalid, { operation: "batch" }))
    }
    return Effect.map(
      session.batch(
        statements.map((statement) => ({ query: statement.text, params: statement.params })),
        { ...options, type: options.type ?? "logged" }
      ),
      conditionalOf
    )
  })
