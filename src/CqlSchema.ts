/**
 * Schema-checked queries, shaped like `effect/sql`'s SqlSchema: the request is encoded by a Schema before anything is
 * sent, and every row is decoded by the result Schema.
 *
 * @since 0.1.0
 */
import * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as SchemaAST from "effect/SchemaAST"
import * as SchemaIssue from "effect/SchemaIssue"
import * as Stream from "effect/Stream"
import type * as CassandraError from "./CassandraError.ts"
import { useSession } from "./internal/boundSession.ts"
import { type DecodeRecorder, decodeRecorderOf } from "./internal/metricsRecorder.ts"
import type { Conditional, Page, Row, Statement } from "./Query.ts"
import type { Session } from "./Session.ts"

/**
 * A request that its Schema could not encode, or a row that its Schema could not decode. It names the statement,
 * the row and the column, and never carries a bound value.
 *
 * @since 0.1.0
 * @category errors
 */
export class CqlSchemaError extends Schema.TaggedError<CqlSchemaError>("effect-cassandra/CqlSchemaError")(
  "CqlSchemaError",
  {
    /** `Request` when the parameters could not be encoded, `Result` when a row could not be decoded. */
    direction: Schema.Literals(["Request", "Result"]),
    /** The statement's CQL text, when it was built. */
    statement: Schema.optional(Schema.String),
    /** The index of the row that failed to decode. */
    rowIndex: Schema.optional(Schema.Number),
    /** The column (or request field) at fault, as a path. */
    column: Schema.optional(Schema.String),
    /** What was expected there. */
    detail: Schema.String
  }
) {
  override get message(): string {
    const where = [
      this.rowIndex === undefined ? undefined : `row ${this.rowIndex}`,
      this.column === undefined ? undefined : `column ${this.column}`
    ]
      .filter((part) => part !== undefined)
      .join(", ")
    const subject = this.direction === "Request" ? "Could not encode the request" : "Could not decode a row"
    const statement = this.statement === undefined ? "" : ` of \`${this.statement}\``
    return `${subject}${statement}${where === "" ? "" : ` (${where})`}: ${this.detail}`
  }
}

// The default messages quote the offending input; rebuilding each leaf without its input keeps values out of errors.
const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1({
  leafHook: (issue) => {
    switch (issue._tag) {
      case "InvalidType":
        return SchemaIssue.defaultLeafHook(new SchemaIssue.InvalidType(issue.ast))
      case "InvalidValue":
        return SchemaIssue.defaultLeafHook(new SchemaIssue.InvalidValue(issue.annotations))
      case "UnexpectedKey":
        return SchemaIssue.defaultLeafHook(new SchemaIssue.UnexpectedKey(issue.ast))
      case "Forbidden":
        return SchemaIssue.defaultLeafHook(new SchemaIssue.Forbidden(issue.annotations))
      case "OneOf":
        return SchemaIssue.defaultLeafHook(new SchemaIssue.OneOf(issue.ast, issue.successes))
      case "MissingKey":
        return SchemaIssue.defaultLeafHook(issue)
    }
  },
  checkHook: (issue) => SchemaIssue.defaultCheckHook(issue) ?? `Expected ${expectedOf(issue)}`
})

/** What a failed check expected, from its own annotations: a filter's `toString` is not a description. */
function expectedOf(issue: SchemaIssue.Filter): string {
  const expected =
    issue.filter.annotations?.expected ??
    (issue.issue._tag === "InvalidValue" ? issue.issue.annotations?.expected : undefined)
  return typeof expected === "string" ? expected : "a value that passes its check"
}

/** Stands for a key the caller chose (a `Record`'s): it is data, so it is never shown. */
const callerKey = "<key>"

/**
 * The path to the first issue, as the formatter orders them, with every key that is not a field declared by the
 * schema (the keys of a `Record`, an unexpected key) replaced by `<key>`; positions in arrays and collections are kept.
 */
const pathOf = (issue: SchemaIssue.Issue): Array<string> => {
  const path: Array<string> = []
  let schemaAst: SchemaAST.AST | undefined
  let current: SchemaIssue.Issue | undefined = issue
  while (current !== undefined) {
    switch (current._tag) {
      case "Composite":
      case "AnyOf":
        schemaAst = current.ast
        current = current.issues[0]
        break
      case "Encoding":
        schemaAst = current.ast
        current = current.issue
        break
      case "Filter":
        current = current.issue
        break
      case "Pointer":
        for (const key of current.path) path.push(keyText(schemaAst, key))
        current = current.issue
        break
      default:
        current = undefined
    }
  }
  return path
}

const keyText = (schemaAst: SchemaAST.AST | undefined, key: PropertyKey): string => {
  if (typeof key === "number") return String(key)
  const declared =
    schemaAst?._tag !== "Objects" || schemaAst.propertySignatures.some((signature) => signature.name === key)
  return declared ? String(key) : callerKey
}

const describe = (issue: SchemaIssue.Issue) => {
  const first = formatIssue(issue).issues[0]
  const path = pathOf(issue)
  return { column: path.length > 0 ? path.join(".") : undefined, detail: first?.message ?? "invalid value" }
}

const schemaError = (
  direction: "Request" | "Result",
  error: Schema.SchemaError,
  context: { readonly statement?: string | undefined; readonly rowIndex?: number | undefined }
) => {
  const { column, detail } = describe(error.issue)
  return new CqlSchemaError({
    direction,
    detail,
    ...(context.statement === undefined ? {} : { statement: context.statement }),
    ...(context.rowIndex === undefined ? {} : { rowIndex: context.rowIndex }),
    ...(column === undefined ? {} : { column })
  })
}

/**
 * A request whose encoding threw inside the Schema (a getter, a Proxy trap or an iterator of the caller's, or a
 * transformation), which the Schema reports as a defect. What it threw is left out: its message may quote the value.
 */
const unreadableRequest = () =>
  new CqlSchemaError({
    direction: "Request",
    detail:
      "a value that can be read: encoding the request threw (in a getter, a Proxy trap, an iterator or a transformation)"
  })

/**
 * The options of every schema-checked query: a request Schema, a result Schema, and the statement built from the
 * encoded request. Without `Request`, the request type is `void`: the query's function is called with no argument.
 *
 * `R` is what the statement requires: the `Session` for the global `cql` template, nothing for a session's
 * `template`; the query requires it, plus the Schemas' services.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueryOptions<Req extends Schema.Top, Res extends Schema.Top, R = Session> {
  readonly Request?: Req
  readonly Result: Res
  readonly execute: (request: Req["Encoded"]) => Statement<unknown, R>
}

const noRequest = Effect.succeed(undefined)

/**
 * Encodes requests with their Schema as every schema-checked query does (without a Schema, the request is
 * `undefined`): a value the Schema refuses fails with a `CqlSchemaError` that names the field and never holds the
 * value. `BatchJob.schema` encodes its inputs with it.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encoder = <Req extends Schema.Top>(Request: Req | undefined) => {
  if (Request === undefined) return (_request: Req["Type"]) => noRequest
  const encode = Schema.encodeEffect(Request)
  return (request: Req["Type"]): Effect.Effect<Req["Encoded"], CqlSchemaError, Req["EncodingServices"]> => {
    const encoded = encode(request)
    // A Schema that encodes synchronously answers with an `Exit`: a success needs no further effect.
    if (Exit.isExit(encoded) && encoded._tag === "Success") return Exit.succeed(encoded.value as Req["Encoded"])
    return encoded.pipe(
      Effect.mapError((error) => schemaError("Request", error, {})),
      Effect.catchDefect(() => Effect.fail(unreadableRequest()))
    ) as Effect.Effect<Req["Encoded"], CqlSchemaError, Req["EncodingServices"]>
  }
}

/**
 * Encodes the request, builds the statement and runs `f` with it and the session's decode recorder (looked up once
 * per query; rows are counted only when metrics are recorded).
 */
const withStatement = <Req extends Schema.Top, R>(options: {
  readonly Request?: Req
  readonly execute: (request: Req["Encoded"]) => Statement<unknown, R>
}) => {
  const encode = encoder(options.Request)
  return <A, E, R2>(
    request: Req["Type"],
    f: (statement: Statement<unknown, R>, recorder: DecodeRecorder | undefined) => Effect.Effect<A, E, R2>
  ): Effect.Effect<A, E | CqlSchemaError, R | R2 | Req["EncodingServices"]> =>
    Effect.flatMap(encode(request), (encoded) => {
      const statement = options.execute(encoded)
      return useSession<A, E, R2, R>(statement, (session) => f(statement, decodeRecorderOf(session.client)))
    })
}

const decoder = <Res extends Schema.Top>(Result: Res) => {
  const decode = Schema.decodeUnknownEffect(Result)
  return (
    row: unknown,
    rowIndex: number,
    statement: Statement<unknown, unknown>,
    recorder: DecodeRecorder | undefined
  ) => {
    const decoded = Effect.mapError(decode(row), (error) =>
      schemaError("Result", error, { statement: statement.text, rowIndex })
    ) as Effect.Effect<Res["Type"], CqlSchemaError, Res["DecodingServices"]>
    return recorder === undefined
      ? decoded
      : Effect.onExit(decoded, (exit) =>
          Effect.sync(() => (exit._tag === "Success" ? recorder.decoded(1) : recorder.failed()))
        )
  }
}

/**
 * Decodes every row of every page, fetching the next page once the previous one is decoded. A page is decoded in a
 * plain loop: a Schema that decodes synchronously answers each row with an `Exit` at once, so no effect runs per row
 * and decoded rows are counted once per page; a row whose Schema has to wait (an asynchronous transformation) or
 * needs services is decoded as an effect, and the loop goes on after it.
 */
const decodeAllPages = <Res extends Schema.Top>(Result: Res) => {
  const decode = Schema.decodeUnknownEffect(Result)
  return <R>(statement: Statement<unknown, R>, recorder: DecodeRecorder | undefined) => {
    type Decoded = Effect.Effect<Array<Res["Type"]>, Failure, R | Res["DecodingServices"]>
    const asRowError = (rowIndex: number) => (error: Schema.SchemaError) =>
      schemaError("Result", error, { statement: statement.text, rowIndex })
    const countDecoded = (rows: number) => {
      if (recorder !== undefined && rows > 0) recorder.decoded(rows)
    }
    const from = (pageState: string | undefined, decoded: Array<Res["Type"]>): Decoded =>
      Effect.flatMap(statement.page(pageState), (page) => decodePage(page, decoded, 0))
    const decodePage = (page: Page<unknown>, decoded: Array<Res["Type"]>, start: number): Decoded => {
      const rows = page.rows
      for (let index = start; index < rows.length; index++) {
        const result = decode(rows[index])
        if (!Exit.isExit(result)) {
          countDecoded(index - start)
          const decodedRow = Effect.mapError(result, asRowError(decoded.length))
          return Effect.flatMap(
            recorder === undefined ? decodedRow : Effect.onError(decodedRow, () => Effect.sync(recorder.failed)),
            (row) => {
              countDecoded(1)
              decoded.push(row)
              return decodePage(page, decoded, index + 1)
            }
          )
        }
        if (result._tag === "Failure") {
          countDecoded(index - start)
          recorder?.failed()
          return Effect.mapError(
            Exit.failCause(result.cause as Cause.Cause<Schema.SchemaError>),
            asRowError(decoded.length)
          )
        }
        decoded.push(result.value)
      }
      countDecoded(rows.length - start)
      return Option.isSome(page.pageState) ? from(page.pageState.value, decoded) : Effect.succeed(decoded)
    }
    return from(undefined, [])
  }
}

/** The error of a query that needed a row and got none: it names the statement's text, never its values. */
const noRow = (statement: Statement<unknown, unknown>) =>
  new Cause.NoSuchElementError(`The query returned no row: ${statement.text}`)

type Failure = CassandraError.CassandraError | CqlSchemaError

type Services<Req extends Schema.Top, Res extends Schema.Top, R> = R | Req["EncodingServices"] | Res["DecodingServices"]

/**
 * Runs a query and decodes every row, fetching every page (the statement's `pageSize`, 5,000 rows by default, sets
 * how many rows each request brings). The whole result is held in memory: for large results use `stream`, which
 * pulls one page at a time, or the statement's `page` to resume from a page state.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { CqlSchema, CqlType, Query } from "effect-cassandra"
 *
 * const usersByCountry = CqlSchema.findAll({
 *   Request: Schema.String,
 *   Result: Schema.Struct({ id: CqlType.Uuid, name: CqlType.Text }),
 *   execute: (country) => Query.cql`SELECT id, name FROM users_by_country WHERE country = ${country}`
 * })
 *
 * const everyCountry = CqlSchema.findAll({
 *   Result: Schema.Struct({ country: CqlType.Text }),
 *   execute: () => Query.cql`SELECT DISTINCT country FROM users_by_country`
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const findAll = <Req extends Schema.Top = Schema.Void, Res extends Schema.Top = Schema.Top, R = Session>(
  options: QueryOptions<Req, Res, R>
) => {
  const run = withStatement(options)
  const decodeAll = decodeAllPages(options.Result)
  return (request: Req["Type"]): Effect.Effect<Array<Res["Type"]>, Failure, Services<Req, Res, R>> =>
    run(request, decodeAll)
}

/**
 * Runs a query and decodes every row, fetching every page as `findAll` does, failing with `NoSuchElementError`
 * (naming the statement) when there is none.
 *
 * @since 0.1.0
 * @category constructors
 */
export const findNonEmpty = <Req extends Schema.Top = Schema.Void, Res extends Schema.Top = Schema.Top, R = Session>(
  options: QueryOptions<Req, Res, R>
) => {
  const run = withStatement(options)
  const decodeAll = decodeAllPages(options.Result)
  return (
    request: Req["Type"]
  ): Effect.Effect<Arr.NonEmptyArray<Res["Type"]>, Failure | Cause.NoSuchElementError, Services<Req, Res, R>> =>
    run(request, (statement, recorder) =>
      Effect.flatMap(decodeAll(statement, recorder), (rows) =>
        Arr.isArrayNonEmpty(rows) ? Effect.succeed(rows) : Effect.fail(noRow(statement))
      )
    )
}

/**
 * Decodes the first row, reading pages until one holds a row: Cassandra may answer a page with no row and a page
 * state (a filtering query whose first rows do not match, a partition of tombstones), and only the last page says
 * there is none.
 */
const firstRow = <Res extends Schema.Top>(Result: Res) => {
  const decode = decoder(Result)
  return <R>(statement: Statement<unknown, R>, recorder: DecodeRecorder | undefined) => {
    const from = (
      pageState: string | undefined
    ): Effect.Effect<Option.Option<Res["Type"]>, Failure, R | Res["DecodingServices"]> =>
      Effect.flatMap(statement.page(pageState), (page) =>
        page.rows.length > 0
          ? Effect.asSome(decode(page.rows[0], 0, statement, recorder))
          : Option.isSome(page.pageState)
            ? from(page.pageState.value)
            : Effect.succeedNone
      )
    return from(undefined)
  }
}

/**
 * Runs a query and decodes its first row, failing with `NoSuchElementError` (naming the statement) when there is
 * none. Pages are read until one holds a row, so a first page left empty by filtering does not count as no row; a
 * `LIMIT 1` in the statement keeps the server from reading further than needed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const findOne = <Req extends Schema.Top = Schema.Void, Res extends Schema.Top = Schema.Top, R = Session>(
  options: QueryOptions<Req, Res, R>
) => {
  const run = withStatement(options)
  const first = firstRow(options.Result)
  return (
    request: Req["Type"]
  ): Effect.Effect<Res["Type"], Failure | Cause.NoSuchElementError, Services<Req, Res, R>> =>
    run(request, (statement, recorder) =>
      Effect.flatMap(first(statement, recorder), (row) =>
        Option.isSome(row) ? Effect.succeed(row.value) : Effect.fail(noRow(statement))
      )
    )
}

/**
 * Runs a query and decodes its first row, if any, reading pages until one holds a row as `findOne` does.
 *
 * @since 0.1.0
 * @category constructors
 */
export const findOneOption = <Req extends Schema.Top = Schema.Void, Res extends Schema.Top = Schema.Top, R = Session>(
  options: QueryOptions<Req, Res, R>
) => {
  const run = withStatement(options)
  const first = firstRow(options.Result)
  return (request: Req["Type"]): Effect.Effect<Option.Option<Res["Type"]>, Failure, Services<Req, Res, R>> =>
    run(request, first)
}

const void_ = <Req extends Schema.Top = Schema.Void, R = Session>(options: {
  readonly Request?: Req
  readonly execute: (request: Req["Encoded"]) => Statement<unknown, R>
}) => {
  const encode = encoder(options.Request)
  return (request: Req["Type"]): Effect.Effect<void, Failure, R | Req["EncodingServices"]> =>
    Effect.flatMap(encode(request), (encoded) => Effect.asVoid(options.execute(encoded)))
}

export {
  /**
   * Runs a statement for its effect, after encoding the request (with no `Request`, the function takes no
   * parameters).
   *
   * @since 0.1.0
   * @category constructors
   */
  void_ as void
}

/**
 * Streams every row of a query, decoded, pulling one page at a time as the stream is consumed: memory stays at about
 * one page whatever the result size.
 *
 * @example
 * ```ts
 * import { Schema, Stream } from "effect"
 * import { CqlSchema, CqlType, Query } from "effect-cassandra"
 *
 * const everyEvent = CqlSchema.stream({
 *   Result: Schema.Struct({ id: CqlType.TimeUuid, kind: CqlType.Text }),
 *   execute: () => Query.cql`SELECT id, kind FROM events`.withOptions({ pageSize: 1000 })
 * })
 *
 * const kinds = Stream.runCount(everyEvent())
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const stream = <Req extends Schema.Top = Schema.Void, Res extends Schema.Top = Schema.Top, R = Session>(
  options: QueryOptions<Req, Res, R>
) => {
  const run = withStatement(options)
  const decode = decoder(options.Result)
  return (request: Req["Type"]): Stream.Stream<Res["Type"], Failure, Services<Req, Res, R>> =>
    Stream.unwrap(
      run(request, (statement, recorder) =>
        Effect.succeed(
          statement.stream.pipe(
            Stream.zipWithIndex,
            Stream.mapEffect(([row, index]) => decode(row, index, statement, recorder))
          )
        )
      )
    )
}

/**
 * Runs a conditional statement (`IF NOT EXISTS`, `IF col = ?`) and decodes the current values when it was not applied.
 *
 * @since 0.1.0
 * @category constructors
 */
export const conditional = <Req extends Schema.Top = Schema.Void, Res extends Schema.Top = Schema.Top, R = Session>(
  options: QueryOptions<Req, Res, R>
) => {
  const run = withStatement(options)
  const decode = decoder(options.Result)
  return (request: Req["Type"]): Effect.Effect<Conditional<Res["Type"]>, Failure, Services<Req, Res, R>> =>
    run(request, (statement, recorder) =>
      Effect.flatMap(statement.conditional, (outcome) =>
        outcome._tag === "Applied"
          ? Effect.succeed<Conditional<Res["Type"]>>(outcome)
          : Effect.map(
              Effect.forEach(outcome.current, (row: Row, index) => decode(row, index, statement, recorder)),
              (current): Conditional<Res["Type"]> => ({ _tag: "NotApplied", current })
            )
      )
    )
}
