/**
 * Schema-checked queries, shaped like `effect/sql`'s SqlSchema: the request is encoded by a Schema before anything is
 * sent, and every row is decoded by the result Schema.
 *
 * @since 0.1.0
 */
import * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as Stream from "effect/Stream"
import type * as CassandraError from "./CassandraError.ts"
import { type DecodeRecorder, decodeRecorderOf } from "./internal/metricsRecorder.ts"
import type { Conditional, Row, Statement } from "./Query.ts"
import { CassandraSession } from "./Session.ts"

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
  checkHook: (issue) => SchemaIssue.defaultCheckHook(issue) ?? `Expected ${issue.filter.toString()}`
})

const describe = (issue: SchemaIssue.Issue) => {
  const first = formatIssue(issue).issues[0]
  const path = first?.path?.map((key) => String(typeof key === "object" ? key.key : key)) ?? []
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
 * The options of every schema-checked query: a request Schema, a result Schema, and the statement built from the
 * encoded request.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueryOptions<Req extends Schema.Top, Res extends Schema.Top> {
  readonly Request: Req
  readonly Result: Res
  readonly execute: (request: Req["Encoded"]) => Statement<unknown>
}

const encoder = <Req extends Schema.Top>(Request: Req) => {
  const encode = Schema.encodeEffect(Request)
  return (request: Req["Type"]) =>
    Effect.mapError(encode(request), (error) => schemaError("Request", error, {})) as Effect.Effect<
      Req["Encoded"],
      CqlSchemaError,
      Req["EncodingServices"]
    >
}

// The session's decode recorder is looked up once per query, and rows are counted only when metrics are recorded.
const withDecodeRecorder = <A, E, R>(f: (recorder: DecodeRecorder | undefined) => Effect.Effect<A, E, R>) =>
  CassandraSession.use((session) => f(decodeRecorderOf(session.client)))

const decoder = <Res extends Schema.Top>(Result: Res) => {
  const decode = Schema.decodeUnknownEffect(Result)
  return (row: unknown, rowIndex: number, statement: Statement<unknown>, recorder: DecodeRecorder | undefined) => {
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

const decodeRows = <Res extends Schema.Top>(Result: Res) => {
  const decode = decoder(Result)
  return (statement: Statement<unknown>) =>
    withDecodeRecorder((recorder) =>
      Effect.flatMap(statement, (rows) => Effect.forEach(rows, (row, index) => decode(row, index, statement, recorder)))
    )
}

type Failure = CassandraError.CassandraError | CqlSchemaError

/**
 * Runs a query and decodes every row of its first page.
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
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const findAll = <Req extends Schema.Top, Res extends Schema.Top>(options: QueryOptions<Req, Res>) => {
  const encode = encoder(options.Request)
  const decode = decodeRows(options.Result)
  return (
    request: Req["Type"]
  ): Effect.Effect<Array<Res["Type"]>, Failure, CassandraSession | Req["EncodingServices"] | Res["DecodingServices"]> =>
    Effect.flatMap(encode(request), (encoded) => decode(options.execute(encoded)))
}

/**
 * Runs a query and decodes its rows, failing with `NoSuchElementError` when there is none.
 *
 * @since 0.1.0
 * @category constructors
 */
export const findNonEmpty = <Req extends Schema.Top, Res extends Schema.Top>(options: QueryOptions<Req, Res>) => {
  const find = findAll(options)
  return (
    request: Req["Type"]
  ): Effect.Effect<
    Arr.NonEmptyArray<Res["Type"]>,
    Failure | Cause.NoSuchElementError,
    CassandraSession | Req["EncodingServices"] | Res["DecodingServices"]
  > =>
    Effect.flatMap(find(request), (rows) =>
      Arr.isArrayNonEmpty(rows) ? Effect.succeed(rows) : Effect.fail(new Cause.NoSuchElementError())
    )
}

/**
 * Runs a query and decodes its first row, failing with `NoSuchElementError` when there is none.
 *
 * @since 0.1.0
 * @category constructors
 */
export const findOne = <Req extends Schema.Top, Res extends Schema.Top>(options: QueryOptions<Req, Res>) => {
  const find = findOneOption(options)
  return (
    request: Req["Type"]
  ): Effect.Effect<
    Res["Type"],
    Failure | Cause.NoSuchElementError,
    CassandraSession | Req["EncodingServices"] | Res["DecodingServices"]
  > =>
    Effect.flatMap(find(request), (row) =>
      Option.isSome(row) ? Effect.succeed(row.value) : Effect.fail(new Cause.NoSuchElementError())
    )
}

/**
 * Runs a query and decodes its first row, if any.
 *
 * @since 0.1.0
 * @category constructors
 */
export const findOneOption = <Req extends Schema.Top, Res extends Schema.Top>(options: QueryOptions<Req, Res>) => {
  const encode = encoder(options.Request)
  const decode = decoder(options.Result)
  return (
    request: Req["Type"]
  ): Effect.Effect<
    Option.Option<Res["Type"]>,
    Failure,
    CassandraSession | Req["EncodingServices"] | Res["DecodingServices"]
  > =>
    Effect.flatMap(encode(request), (encoded) => {
      const statement = options.execute(encoded)
      return withDecodeRecorder((recorder) =>
        Effect.flatMap(statement, (rows) =>
          rows.length === 0 ? Effect.succeedNone : Effect.asSome(decode(rows[0], 0, statement, recorder))
        )
      )
    })
}

const void_ = <Req extends Schema.Top>(options: {
  readonly Request: Req
  readonly execute: (request: Req["Encoded"]) => Statement<unknown>
}) => {
  const encode = encoder(options.Request)
  return (request: Req["Type"]): Effect.Effect<void, Failure, CassandraSession | Req["EncodingServices"]> =>
    Effect.flatMap(encode(request), (encoded) => Effect.asVoid(options.execute(encoded)))
}

export {
  /**
   * Runs a statement for its effect, after encoding the request.
   *
   * @since 0.1.0
   * @category constructors
   */
  void_ as void
}

/**
 * Streams every row of a query, decoded, pulling one page at a time as the stream is consumed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const stream = <Req extends Schema.Top, Res extends Schema.Top>(options: QueryOptions<Req, Res>) => {
  const encode = encoder(options.Request)
  const decode = decoder(options.Result)
  return (
    request: Req["Type"]
  ): Stream.Stream<Res["Type"], Failure, CassandraSession | Req["EncodingServices"] | Res["DecodingServices"]> =>
    Stream.unwrap(
      Effect.flatMap(encode(request), (encoded) =>
        withDecodeRecorder((recorder) => {
          const statement = options.execute(encoded)
          return Effect.succeed(
            statement.stream.pipe(
              Stream.zipWithIndex,
              Stream.mapEffect(([row, index]) => decode(row, index, statement, recorder))
            )
          )
        })
      )
    )
}

/**
 * Runs a conditional statement (`IF NOT EXISTS`, `IF col = ?`) and decodes the current values when it was not applied.
 *
 * @since 0.1.0
 * @category constructors
 */
export const conditional = <Req extends Schema.Top, Res extends Schema.Top>(options: QueryOptions<Req, Res>) => {
  const encode = encoder(options.Request)
  const decode = decoder(options.Result)
  return (
    request: Req["Type"]
  ): Effect.Effect<
    Conditional<Res["Type"]>,
    Failure,
    CassandraSession | Req["EncodingServices"] | Res["DecodingServices"]
  > =>
    Effect.flatMap(encode(request), (encoded) => {
      const statement = options.execute(encoded)
      return withDecodeRecorder((recorder) =>
        Effect.flatMap(statement.conditional, (outcome) =>
          outcome._tag === "Applied"
            ? Effect.succeed<Conditional<Res["Type"]>>(outcome)
            : Effect.map(
                Effect.forEach(outcome.current, (row: Row, index) => decode(row, index, statement, recorder)),
                (current): Conditional<Res["Type"]> => ({ _tag: "NotApplied", current })
              )
        )
      )
    })
}
