/**
 * CQL statements: a `cql` tagged template whose interpolated values become bound parameters, never text. A statement
 * is an Effect (`yield*` runs it), prepared by default, and can also run page by page or as a `Stream`. Only
 * fragments this module built (identifiers, statements, `join`, `identifiers`, `inList`) become CQL text; every other
 * value, whatever its shape, is bound.
 *
 * @since 0.1.0
 */
import type * as Cassandra from "cassandra-driver"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Effectable from "effect/Effectable"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Inspectable from "effect/Inspectable"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as CassandraError from "./CassandraError.ts"
import { boundSession, executeStatement, startStatement, startUnwaited } from "./internal/boundSession.ts"
import { toBuffer } from "./internal/bytes.ts"
import type { Settle } from "./internal/requestRunner.ts"
import { stackless } from "./internal/stackless.ts"
import { type BatchType, type RequestOptions, Session } from "./Session.ts"

/**
 * A row as the driver returns it: column name to value.
 *
 * @since 0.1.0
 * @category models
 */
export type Row = { readonly [column: string]: unknown }

/**
 * Per-statement settings: consistency, serial consistency, page size and state, idempotence, write timestamp,
 * routing key, tracing, execution profile, end-to-end and per-attempt timeouts and whether to prepare.
 *
 * Reads (`SELECT`) are idempotent unless `idempotent: false` is given; every other statement must be declared
 * idempotent to be retried or speculatively executed.
 *
 * @since 0.1.0
 * @category models
 */
export type StatementOptions = RequestOptions

declare const IdentifierTypeId: unique symbol
declare const FragmentTypeId: unique symbol
declare const StatementTypeId: unique symbol

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

/**
 * A piece of CQL built by this module (`join`, `identifiers`, `inList`, or a statement): interpolated into `cql`, its
 * text is inlined and its parameters are bound in order.
 *
 * @since 0.1.0
 * @category models
 */
export interface Fragment {
  readonly [FragmentTypeId]: typeof FragmentTypeId
  /** The CQL text, with a `?` for each bound parameter. */
  readonly text: string
  /** The bound parameters, in order. */
  readonly params: ReadonlyArray<unknown>
}

/**
 * What keeps a fragment from being sent, found while it was built: names that are not valid CQL names, and other
 * problems (an empty `IN` list). Absent on the usual fragment, which has none.
 */
interface Unsendable {
  readonly invalidNames: ReadonlyArray<string>
  readonly problems: ReadonlyArray<string>
}

/**
 * Passed to the constructors below: only this module holds it, so a built value's `constructor` (reachable from any
 * instance) cannot make one with text of the caller's choosing.
 */
const building: unique symbol = Symbol("effect-cassandra/Query/building")

const checkBuilding = (token: unknown) => {
  if (token !== building) throw new TypeError("Query fragments are built only by cql, join, identifiers and inList")
}

/**
 * Every fragment and statement this module builds is an instance of this class. Its text lives in a private field,
 * set only by its constructor: a lookalike (parsed from JSON, spread or copied from a real one, made from its
 * prototype, a Proxy of a real one, or carrying any of its property names) has none, so it is bound as a value instead
 * of written into the CQL text, and a built one's text cannot be changed afterwards.
 */
class BuiltFragment extends Inspectable.Class {
  readonly #text: string
  readonly #params: ReadonlyArray<unknown>
  readonly #unsendable: Unsendable | undefined
  constructor(
    token: typeof building,
    text: string,
    params: ReadonlyArray<unknown>,
    unsendable: Unsendable | undefined
  ) {
    super()
    checkBuilding(token)
    this.#text = text
    this.#params = params
    this.#unsendable = unsendable
  }
  get text(): string {
    return this.#text
  }
  get params(): ReadonlyArray<unknown> {
    return this.#params
  }
  static is(u: unknown): u is BuiltFragment {
    return typeof u === "object" && u !== null && #text in u
  }
  // Read through these, never through `text` and `params`: a property defined on an instance shadows those getters.
  static textOf(fragment: BuiltFragment): string {
    return fragment.#text
  }
  static paramsOf(fragment: BuiltFragment): ReadonlyArray<unknown> {
    return fragment.#params
  }
  static unsendableOf(fragment: BuiltFragment): Unsendable | undefined {
    return fragment.#unsendable
  }
  // Parameters are left out of every printed form: they may hold personal data or secrets.
  toJSON(): unknown {
    return { _id: "Fragment", text: this.#text, parameterCount: this.#params.length }
  }
}

/** How a name that is not a string shows in an error: its type, never its value. */
const describeName = (part: unknown) => (typeof part === "string" ? part : `(not a string: ${typeof part})`)

/**
 * An identifier as `identifier` builds it, checked and quoted once when built (each part read once, so a value whose
 * `toString` changes cannot pass the check and then write something else); see `BuiltFragment` for the private field.
 */
class BuiltIdentifier {
  readonly #text: string
  readonly #invalidNames: ReadonlyArray<string>
  readonly parts: ReadonlyArray<string>
  constructor(token: typeof building, parts: ReadonlyArray<unknown>) {
    checkBuilding(token)
    const invalidNames: Array<string> = []
    // An identifier of no part (possible only through a cast) would write nothing: it is an empty, invalid name.
    if (parts.length === 0) invalidNames.push("")
    for (const part of parts) {
      if (typeof part !== "string" || !validIdentifier.test(part)) invalidNames.push(describeName(part))
    }
    this.parts = Object.freeze(parts.map(describeName))
    this.#text = this.parts.map(quote).join(".")
    this.#invalidNames = invalidNames
  }
  static is(u: unknown): u is BuiltIdentifier {
    return typeof u === "object" && u !== null && #text in u
  }
  static textOf(identifier: BuiltIdentifier): string {
    return identifier.#text
  }
  /** Whether two identifiers write the same text and refuse the same names (`"a"."b"` may be one name or two). */
  static writesTheSame(first: BuiltIdentifier, second: BuiltIdentifier): boolean {
    if (first.#text !== second.#text || first.#invalidNames.length !== second.#invalidNames.length) return false
    for (let index = 0; index < first.#invalidNames.length; index++) {
      if (first.#invalidNames[index] !== second.#invalidNames[index]) return false
    }
    return true
  }
  static unsendableOf(identifier: BuiltIdentifier): Unsendable | undefined {
    return identifier.#invalidNames.length === 0 ? undefined : { invalidNames: identifier.#invalidNames, problems: [] }
  }
  toJSON(): unknown {
    return { _id: "Identifier", parts: this.parts }
  }
}

// Cassandra itself only accepts alphanumeric and underscore names for keyspaces and tables (at most 48 characters);
// holding columns to the same rule keeps every identifier safe to quote without escaping.
const validIdentifier = /^[A-Za-z0-9_]{1,48}$/

const quote = (part: string) => `"${part}"`

/**
 * Creates an identifier from one name or a qualified path (`identifier("ks", "users")` gives `"ks"."users"`).
 * Names must be strings matching `[A-Za-z0-9_]{1,48}`; a statement holding any other name fails with an
 * `InvalidIdentifier` reason before anything is sent.
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
export const identifier = (...parts: readonly [string, ...Array<string>]): Identifier =>
  new BuiltIdentifier(building, parts) as unknown as Identifier

/**
 * Tells whether a value is an identifier built by `identifier`; a copy or lookalike is not.
 *
 * @since 0.1.0
 * @category guards
 */
export const isIdentifier = (u: unknown): u is Identifier => BuiltIdentifier.is(u)

/**
 * Tells whether a value is a fragment (or statement) built by this module; a copy or lookalike is not.
 *
 * @since 0.1.0
 * @category guards
 */
export const isFragment = (u: unknown): u is Fragment => BuiltFragment.is(u)

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
 * its first page (none for a write); `stream` pulls every page on demand.
 *
 * `R` is what running it requires: the `Session` for a statement of the global `cql` template, nothing for
 * one from a session's `template`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Statement<A = Row, R = Session>
  extends Fragment,
    Effect.Effect<ReadonlyArray<A>, CassandraError.CassandraError, R> {
  readonly [StatementTypeId]: typeof StatementTypeId
  /**
   * The per-statement options, read-only: statements built with none share one frozen object, and `withOptions`
   * returns a new statement.
   */
  readonly options: StatementOptions
  /** The same statement with these options added (later values win). */
  readonly withOptions: (options: StatementOptions) => Statement<A, R>
  /** One page of rows, starting at the given page state (or at the beginning). */
  readonly page: (pageState?: string) => Effect.Effect<Page<A>, CassandraError.CassandraError, R>
  /** Every row, pulling one page at a time as the stream is consumed; interrupting it stops fetching. */
  readonly stream: Stream.Stream<A, CassandraError.CassandraError, R>
  /** The rows of the first page and what Cassandra reported about the request. */
  readonly result: Effect.Effect<
    { readonly rows: ReadonlyArray<A>; readonly info: ExecutionInfo; readonly pageState: Option.Option<string> },
    CassandraError.CassandraError,
    R
  >
  /** Runs a conditional statement and tells whether it was applied. */
  readonly conditional: Effect.Effect<Conditional<Row>, CassandraError.CassandraError, R>
}

/** A statement's own fields, as this module sets them. */
interface StatementState extends BuiltFragment {
  readonly options: StatementOptions
  readonly [boundSession]: Session | undefined
}

const stateOf = (statement: Statement<unknown, unknown>) => statement as unknown as StatementState

/**
 * Tells whether a value is a statement built by `cql` or a session's template; a copy or lookalike is not.
 *
 * @since 0.1.0
 * @category guards
 */
export const isStatement = (u: unknown): u is Statement<unknown, unknown> => BuiltStatement.is(u)

const appliedColumn = "[applied]"

const withoutAppliedColumn = (row: Row): Row => {
  const { [appliedColumn]: _, ...current } = row
  return current
}

// The driver leaves `rows` undefined for a write; every way of running a statement gives an empty array instead.
const rowsOf = (result: Cassandra.types.ResultSet): Array<Row> => result.rows ?? []

const executionInfo = (result: Cassandra.types.ResultSet): ExecutionInfo => ({
  coordinator: result.info.queriedHost,
  triedHosts: Object.keys(result.info.triedHosts ?? {}),
  speculativeExecutions: result.info.speculativeExecutions ?? 0,
  achievedConsistency:
    result.info.achievedConsistency === undefined ? undefined : String(result.info.achievedConsistency),
  traceId: Option.fromNullishOr(result.info.traceId?.toString()),
  warnings: result.info.warnings ?? []
})

/** The error of a fragment that cannot be sent, naming the names or problems and never a bound value. */
const unsendableError = (
  unsendable: Unsendable,
  context: { readonly operation: string; readonly statement?: string }
) =>
  unsendable.invalidNames.length > 0
    ? CassandraError.invalidIdentifier(unsendable.invalidNames, context)
    : invalidArgument(unsendable.problems.join("; "), context)

const invalidArgument = (detail: string, context: { readonly operation: string; readonly statement?: string }) =>
  stackless(
    () => new CassandraError.CassandraError({ reason: new CassandraError.InvalidArgument({ detail }), ...context })
  )

/**
 * Runs one request for a statement in `fiber` and gives `project` of its result, failing before sending when it
 * cannot be sent. A value-free statement that cannot be sent needs no session to say so.
 */
const send = <A>(
  fiber: Fiber.Fiber<unknown, unknown>,
  statement: StatementState,
  options: StatementOptions,
  project: (result: Cassandra.types.ResultSet) => A
): Effect.Effect<A, CassandraError.CassandraError> => {
  const text = BuiltFragment.textOf(statement)
  return (
    unsentFailure(statement, text) ??
    executeStatement(fiber, statement, text, BuiltFragment.paramsOf(statement) as Array<unknown>, options, project)
  )
}

/** The failure of a statement that cannot be sent, or undefined: a value-free statement needs no session to say so. */
const unsentFailure = (statement: StatementState, text: string) => {
  const unsendable = BuiltFragment.unsendableOf(statement)
  return unsendable === undefined
    ? undefined
    : Exit.fail(unsendableError(unsendable, { operation: "execute", statement: text }))
}

/** `send` from outside the fiber: a statement run as an effect is given its fiber, its other ways need a `withFiber`. */
const sendFromOutside = <A>(
  statement: StatementState,
  options: StatementOptions,
  project: (result: Cassandra.types.ResultSet) => A
): Effect.Effect<A, CassandraError.CassandraError, Session> =>
  Effect.withFiber((fiber) => send(fiber, statement, options, project))

const pageStateOf = (result: Cassandra.types.ResultSet) => Option.fromNullishOr(result.pageState ?? undefined)

// Settings that describe how a statement runs and hold no value of the data; any other option (page state, timestamp,
// routing key, or one added later) is printed only as whether it is set.
const printedSettings = [
  "consistency",
  "serialConsistency",
  "idempotent",
  "pageSize",
  "tracing",
  "executionProfile",
  "prepare"
] as const satisfies ReadonlyArray<keyof StatementOptions>

/** A setting as printed: options of the wrong type (possible only through a cast) must not make printing throw. */
const printedSetting = (setting: unknown): string | number | boolean =>
  typeof setting === "string" || typeof setting === "number" || typeof setting === "boolean" ? setting : "invalid"

const printedDurations = ["timeout", "attemptTimeout"] as const satisfies ReadonlyArray<keyof StatementOptions>

/** The options as printed: the settings above, the timeouts as durations, and only whether the others are set. */
const printableOptions = (options: StatementOptions) => {
  const printable: Record<string, string | number | boolean> = {}
  for (const key of printedSettings) {
    const setting = options[key]
    if (setting !== undefined) printable[key] = printedSetting(setting)
  }
  for (const key of printedDurations) {
    const setting = options[key]
    if (setting !== undefined) {
      printable[key] = Option.match(Duration.fromInput(setting), { onNone: () => "invalid", onSome: Duration.format })
    }
  }
  if (options.pageState !== undefined) printable.hasPageState = true
  if (options.timestamp !== undefined) printable.hasTimestamp = true
  if (options.routingKey !== undefined) printable.hasRoutingKey = true
  return printable
}

const statementMembers = {
  withOptions(this: StatementState, options: StatementOptions) {
    return makeStatement(
      this.text,
      this.params,
      { ...this.options, ...options },
      BuiltFragment.unsendableOf(this),
      this[boundSession]
    )
  },
  page(this: StatementState, pageState?: string) {
    return sendFromOutside(
      this,
      pageState === undefined ? this.options : { ...this.options, pageState },
      (result): Page<Row> => ({ rows: rowsOf(result), pageState: pageStateOf(result) })
    )
  },
  get stream() {
    const self = this as unknown as Statement<unknown, unknown>
    return Stream.paginate(undefined as string | undefined, (pageState) =>
      Effect.map(self.page(pageState), (page) => [page.rows, page.pageState] as const)
    )
  },
  get result() {
    const self = this as unknown as StatementState
    return sendFromOutside(self, self.options, (result) => ({
      rows: rowsOf(result),
      info: executionInfo(result),
      pageState: pageStateOf(result)
    }))
  },
  get conditional() {
    const self = this as unknown as StatementState
    return sendFromOutside(self, self.options, conditionalOf)
  },
  [startUnwaited](this: StatementState, fiber: Fiber.Fiber<unknown, unknown>, settle: Settle): boolean {
    const text = BuiltFragment.textOf(this)
    const failure = unsentFailure(this, text)
    if (failure === undefined) {
      return startStatement(
        fiber,
        this,
        text,
        BuiltFragment.paramsOf(this) as Array<unknown>,
        this.options,
        rowsOf,
        settle
      )
    }
    settle(failure)
    return true
  },
  ...Effectable.Prototype<Statement<unknown, unknown>>({
    label: "Statement",
    evaluate(fiber) {
      const self = this as unknown as StatementState
      return send(fiber, self, self.options, rowsOf)
    }
  }),
  // Every printed form (`String`, `util.inspect`, Effect's formatter) goes through this: parameters and the options
  // derived from the data (page state, timestamp, routing key) are left out, as they may hold personal data or secrets.
  toJSON(this: StatementState): unknown {
    return {
      _id: "Statement",
      text: this.text,
      parameterCount: this.params.length,
      options: printableOptions(this.options)
    }
  }
}

const conditionalOf = (result: Cassandra.types.ResultSet): Conditional<Row> =>
  result.wasApplied() ? { _tag: "Applied" } : { _tag: "NotApplied", current: rowsOf(result).map(withoutAppliedColumn) }

class BuiltStatement extends BuiltFragment {
  readonly #options: StatementOptions
  readonly #session: Session | undefined
  constructor(
    token: typeof building,
    text: string,
    params: ReadonlyArray<unknown>,
    options: StatementOptions,
    unsendable: Unsendable | undefined,
    session: Session | undefined
  ) {
    super(token, text, params, unsendable)
    this.#options = options
    this.#session = session
  }
  get options(): StatementOptions {
    return this.#options
  }
  get [boundSession](): Session | undefined {
    return this.#session
  }
  static override is(u: unknown): u is BuiltStatement {
    return typeof u === "object" && u !== null && #options in u
  }
  /** Whether it holds no options (a routing key or page state is data) and no session. */
  static holdsOnlyText(statement: BuiltStatement): boolean {
    return statement.#session === undefined && Object.keys(statement.#options).length === 0
  }
}
// The Effect members (and the statement's own printed form) go on the class's prototype as they are, getters included.
Object.defineProperties(BuiltStatement.prototype, Object.getOwnPropertyDescriptors(statementMembers))

/** The options of every statement built with none: one frozen object, since statements may be built by the million. */
const noOptions: StatementOptions = Object.freeze({})

const makeStatement = <A, R>(
  text: string,
  params: ReadonlyArray<unknown>,
  options: StatementOptions,
  unsendable: Unsendable | undefined,
  session: Session | undefined
): Statement<A, R> =>
  new BuiltStatement(building, text, params, options, unsendable, session) as unknown as Statement<A, R>

const makeFragment = (text: string, params: ReadonlyArray<unknown>, unsendable: Unsendable | undefined): Fragment =>
  new BuiltFragment(building, text, params, unsendable) as unknown as Fragment

const mergeUnsendable = (into: Unsendable | undefined, from: Unsendable | undefined): Unsendable | undefined =>
  from === undefined
    ? into
    : into === undefined
      ? from
      : {
          invalidNames: [...into.invalidNames, ...from.invalidNames],
          problems: [...into.problems, ...from.problems]
        }

const withProblem = (unsendable: Unsendable | undefined, problem: string) =>
  mergeUnsendable(unsendable, { invalidNames: [], problems: [problem] })

/** Builds CQL text from literal pieces and values: built fragments are inlined, every other value is bound. */
class Builder {
  text = ""
  readonly params: Array<unknown> = []
  unsendable: Unsendable | undefined = undefined

  add(value: unknown) {
    if (BuiltIdentifier.is(value)) {
      this.text += BuiltIdentifier.textOf(value)
      this.unsendable = mergeUnsendable(this.unsendable, BuiltIdentifier.unsendableOf(value))
    } else if (BuiltFragment.is(value)) {
      this.text += BuiltFragment.textOf(value)
      for (const param of BuiltFragment.paramsOf(value)) this.params.push(param)
      this.unsendable = mergeUnsendable(this.unsendable, BuiltFragment.unsendableOf(value))
    } else {
      this.text += "?"
      this.params.push(value instanceof Uint8Array ? toBuffer(value) : value)
    }
  }
}

const isInlined = (value: unknown) => BuiltFragment.is(value) || BuiltIdentifier.is(value)

/**
 * A bound value, a name, or a fragment holding nothing but text: what a template's kept text may be built from, as
 * what it inlined is kept alive with it.
 */
const isValueFree = (value: unknown) =>
  !BuiltFragment.is(value) ||
  (BuiltFragment.paramsOf(value).length === 0 && (!BuiltStatement.is(value) || BuiltStatement.holdsOnlyText(value)))

/**
 * The text last built at a template call site that inlines names or value-free fragments, with what it inlined at
 * each position (undefined where a value was bound). Both are immutable, so the same objects (or names writing the
 * same text) at the same positions give the same text: the call reuses it, and the request path finds its plan by a
 * string whose hash is already computed. Fragments with values, and statements with options or a session, are never
 * kept, so no bound value outlives its statement here.
 */
interface BuiltTemplate {
  readonly inlined: ReadonlyArray<unknown>
  /** How many of its values are bound: a statement's parameters are allocated at their size, as it may be kept long. */
  readonly boundCount: number
  readonly text: string
  readonly unsendable: Unsendable | undefined
}

const builtTemplates = new WeakMap<TemplateStringsArray, BuiltTemplate>()

const inlinesTheSame = (inlined: ReadonlyArray<unknown>, values: ReadonlyArray<unknown>) => {
  // A strings array called as a function may be given any number of values.
  if (values.length !== inlined.length) return false
  for (let index = 0; index < values.length; index++) {
    const kept = inlined[index]
    if (kept === undefined ? isInlined(values[index]) : !inlinesAs(kept, values[index])) return false
  }
  return true
}

// A name built anew at each call (`${Query.identifier("ks", table)}`) is a new object writing the same text.
const inlinesAs = (kept: unknown, value: unknown) =>
  value === kept ||
  (BuiltIdentifier.is(kept) && BuiltIdentifier.is(value) && BuiltIdentifier.writesTheSame(kept, value))

const parameterTexts = new WeakMap<TemplateStringsArray, string>()

/** The text of a template of values only; a template literal's strings are frozen, so only theirs is kept. */
const parameterText = (strings: TemplateStringsArray) => {
  let text = parameterTexts.get(strings)
  if (text === undefined) {
    text = strings.join("?")
    if (Object.isFrozen(strings)) parameterTexts.set(strings, text)
  }
  return text
}

const build = <A, R>(
  strings: TemplateStringsArray,
  values: Array<unknown>,
  session: Session | undefined
): Statement<A, R> => {
  if (!values.some(isInlined)) {
    // A template of values only: its text is the same at every call, so it is built once per call site.
    for (let index = 0; index < values.length; index++) {
      const value = values[index]
      if (value instanceof Uint8Array) values[index] = toBuffer(value)
    }
    return makeStatement(parameterText(strings), values, noOptions, undefined, session)
  }
  const kept = builtTemplates.get(strings)
  if (kept !== undefined && inlinesTheSame(kept.inlined, values)) {
    // The same names and value-free fragments as the call that built the text: only the bound values are new.
    const params = new Array<unknown>(kept.boundCount)
    let bound = 0
    for (let index = 0; index < values.length; index++) {
      if (kept.inlined[index] !== undefined) continue
      const value = values[index]
      params[bound++] = value instanceof Uint8Array ? toBuffer(value) : value
    }
    return makeStatement(kept.text, params, noOptions, kept.unsendable, session)
  }
  const builder = new Builder()
  builder.text = strings[0] ?? ""
  values.forEach((value, index) => {
    builder.add(value)
    builder.text += strings[index + 1] ?? ""
  })
  if (Object.isFrozen(strings) && values.every(isValueFree)) {
    builtTemplates.set(strings, {
      inlined: values.map((value) => (isInlined(value) ? value : undefined)),
      boundCount: values.filter((value) => !isInlined(value)).length,
      text: builder.text,
      unsendable: builder.unsendable
    })
  }
  return makeStatement(builder.text, builder.params, noOptions, builder.unsendable, session)
}

/**
 * Builds a statement from a template: interpolated values become bound parameters (`?`), identifiers are written
 * quoted, and interpolated statements and fragments are inlined with their own parameters. Its statements require
 * the `Session`; inside an application, a session's `template` gives statements that require nothing.
 *
 * Use it as a tag: its literal pieces are CQL text, so calling it as a function with pieces taken from data would
 * make that data CQL text.
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
export const cql = <A = Row>(strings: TemplateStringsArray, ...values: Array<unknown>): Statement<A> =>
  build(strings, values, undefined)

/**
 * The options of a batch: per-request options and its kind, `logged` (atomic, the default), `unlogged` or `counter`.
 *
 * @since 0.1.0
 * @category models
 */
export type BatchOptions = StatementOptions & { readonly type?: BatchType }

/**
 * Runs a batch on the session its statements are bound to, or on `fallback` (a template's session) or the
 * `Session` in context when none is bound. Statements bound to another session are refused: a batch is one
 * request to one cluster.
 */
const runBatch = <R>(
  fallback: Session | undefined,
  statements: ReadonlyArray<Statement<unknown, unknown>>,
  options: BatchOptions
): Effect.Effect<Conditional<Row>, CassandraError.CassandraError, R> => {
  if (statements.length === 0) return Effect.fail(invalidArgument("a batch needs at least one statement", batchContext))
  let unsendable: Unsendable | undefined
  let session = fallback
  statements.forEach((statement, index) => {
    if (!isStatement(statement)) {
      unsendable = withProblem(unsendable, `batch item ${index} is not a statement built by cql`)
      return
    }
    unsendable = mergeUnsendable(unsendable, BuiltFragment.unsendableOf(stateOf(statement)))
    const bound = stateOf(statement)[boundSession]
    if (bound === undefined || bound === session) return
    if (session === undefined) session = bound
    else unsendable = withProblem(unsendable, `batch item ${index} is bound to another session than the batch`)
  })
  if (unsendable !== undefined) return Effect.fail(unsendableError(unsendable, batchContext))
  const run = (session: Session) =>
    Effect.map(
      session.batch(
        statements.map((statement) => ({ query: statement.text, params: statement.params })),
        { ...options, type: options.type ?? "logged" }
      ),
      conditionalOf
    )
  return (session === undefined ? Session.use(run) : run(session)) as Effect.Effect<
    Conditional<Row>,
    CassandraError.CassandraError,
    R
  >
}

const batchContext = { operation: "batch" }

/**
 * Runs statements as one batch: `logged` (atomic, the default), `unlogged` or `counter`. A batch holding conditions
 * tells whether it was applied. Statements of a session's `template` bring their session: a batch holding any runs
 * on it (its `cql` statements too), and a batch of only those requires nothing; a batch of `cql` statements only runs
 * on the `Session` in context. Statements bound to different sessions, and an empty list, are refused with an
 * `InvalidArgument` reason before anything is sent.
 *
 * @since 0.1.0
 * @category combinators
 */
export const batch = <R = never>(
  statements: ReadonlyArray<Statement<unknown, R>>,
  options: BatchOptions = {}
): Effect.Effect<Conditional<Row>, CassandraError.CassandraError, R> =>
  runBatch<R>(undefined, statements as ReadonlyArray<Statement<unknown, unknown>>, options)

/**
 * A `cql` template bound to one session, as `const cql = yield* Query.template` gives it: its statements and batches
 * require nothing, so a repository built from it has methods callers run without providing the session.
 *
 * A statement built by it always runs on that session, even where another `Session` is provided; once the
 * session's scope has closed, it fails with a `SessionClosed` reason.
 *
 * @since 0.1.0
 * @category models
 */
export interface Template {
  /** Builds a statement bound to the session, as `Query.cql` does. */
  <A = Row>(strings: TemplateStringsArray, ...values: Array<unknown>): Statement<A, never>
  /**
   * Runs statements as one batch on the session, as `Query.batch` does: `cql` statements run on it too, statements
   * bound to another session are refused.
   */
  readonly batch: (
    statements: ReadonlyArray<Statement<unknown, unknown>>,
    options?: BatchOptions
  ) => Effect.Effect<Conditional<Row>, CassandraError.CassandraError>
}

const makeTemplate = (session: Session): Template =>
  Object.assign(
    <A = Row>(strings: TemplateStringsArray, ...values: Array<unknown>): Statement<A, never> =>
      build(strings, values, session),
    {
      batch: (statements: ReadonlyArray<Statement<unknown, unknown>>, options: BatchOptions = {}) =>
        runBatch<never>(session, statements, options)
    }
  )

/**
 * The `cql` template of the session in context, in the shape of `effect/sql`'s `yield* SqlClient.SqlClient`: build a
 * repository from it once, and its statements run without the session being provided at each call.
 *
 * @example
 * ```ts
 * import { Context, Effect, Layer } from "effect"
 * import { type CassandraError, Query } from "effect-cassandra"
 *
 * class Users extends Context.Service<
 *   Users,
 *   { readonly rename: (id: number, name: string) => Effect.Effect<void, CassandraError.CassandraError> }
 * >()("app/Users") {
 *   static readonly layer = Layer.effect(
 *     Users,
 *     Effect.gen(function* () {
 *       const cql = yield* Query.template
 *       return Users.of({
 *         rename: (id, name) => Effect.asVoid(cql`UPDATE users SET name = ${name} WHERE id = ${id}`)
 *       })
 *     })
 *   )
 * }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const template: Effect.Effect<Template, never, Session> = Session.useSync(makeTemplate)

/**
 * The separators `join` accepts: commas, a space, and the boolean operators of a `WHERE` clause.
 *
 * @since 0.1.0
 * @category models
 */
export type Separator = ", " | "," | " " | " AND " | " OR "

const separators: ReadonlySet<string> = new Set<Separator>([", ", ",", " ", " AND ", " OR "])

/**
 * Joins values into one fragment with a separator (`", "` by default): identifiers, statements and fragments are
 * inlined, every other value is bound as a `?`. A separator outside `Separator` (possible only through a cast) makes
 * the statement fail with an `InvalidArgument` reason before sending.
 *
 * @example
 * ```ts
 * import { Query } from "effect-cassandra"
 *
 * const conditions = [Query.cql`country = ${"NO"}`, Query.cql`age > ${30}`]
 * const statement = Query.cql`SELECT * FROM users WHERE ${Query.join(conditions, " AND ")} ALLOW FILTERING`
 * // SELECT * FROM users WHERE country = ? AND age > ? ALLOW FILTERING
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const join = (values: Iterable<unknown>, separator: Separator = ", "): Fragment => {
  if (!isIterable(values)) return notAList("join", values)
  const builder = new Builder()
  let first = true
  for (const value of values) {
    if (!first) builder.text += separators.has(separator) ? separator : " "
    builder.add(value)
    first = false
  }
  const unsendable = separators.has(separator)
    ? builder.unsendable
    : withProblem(
        builder.unsendable,
        `a join separator must be one of ${[...separators].map((s) => `"${s}"`).join(", ")}`
      )
  return makeFragment(builder.text, builder.params, unsendable)
}

const isIterable = (u: unknown): u is Iterable<unknown> =>
  u !== null && u !== undefined && typeof (u as { [Symbol.iterator]?: unknown })[Symbol.iterator] === "function"

/** The fragment of a helper given something that is not a list (possible only through a cast, as from parsed JSON). */
const notAList = (helper: string, value: unknown) =>
  makeFragment(
    "",
    [],
    withProblem(undefined, `${helper} takes a list, not ${value === null ? "null" : `a ${typeof value}`}`)
  )

/**
 * A comma-separated list of quoted column names, for a dynamic column list. Each name is checked as `identifier`
 * checks it; an empty list makes the statement fail with an `InvalidArgument` reason before sending.
 *
 * @example
 * ```ts
 * import { Query } from "effect-cassandra"
 *
 * const statement = Query.cql`SELECT ${Query.identifiers(["id", "name"])} FROM users`
 * // SELECT "id", "name" FROM users
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const identifiers = (names: Iterable<string>): Fragment => {
  if (!isIterable(names)) return notAList("identifiers", names)
  const list = join(Array.from(names, (name) => identifier(name)))
  return list.text !== ""
    ? list
    : makeFragment(list.text, list.params, withProblem(undefined, "the identifier list is empty"))
}

/**
 * A parenthesised list of bound values for `IN`: `(?, ?, ?)` with each value a parameter. An empty list makes the
 * statement fail with an `InvalidArgument` reason before sending, instead of a server syntax error for `IN ()`. A
 * statement holds at most 65,535 bound values: Cassandra refuses more with an `Invalid` reason giving the count.
 *
 * @example
 * ```ts
 * import { Query } from "effect-cassandra"
 *
 * const statement = Query.cql`SELECT * FROM users WHERE id IN ${Query.inList([1, 2, 3])}`
 * // SELECT * FROM users WHERE id IN (?, ?, ?)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const inList = (values: Iterable<unknown>): Fragment => {
  if (!isIterable(values)) return notAList("inList", values)
  const list = join(values)
  const text = `(${list.text})`
  const unsendable = BuiltFragment.unsendableOf(list as unknown as BuiltFragment)
  return makeFragment(
    text,
    list.params,
    list.text !== "" ? unsendable : withProblem(unsendable, "the IN list is empty")
  )
}
