/**
 * A start-up check that the cluster's schema is the one the application declares with `Table`: every declared
 * table and user-defined type is compared with the live `system_schema` of its keyspace, and the layer fails with one
 * `SchemaDriftError` listing every difference that would break reads or writes (a missing keyspace, table, type,
 * column or field; a column or field of another CQL type; another partition key, clustering key or clustering order;
 * a declared static column that is not static). Differences the application can live with (a column or field it does
 * not read, a column the cluster keeps static, a column that can be null where its schema does not accept null, a
 * type whose fields are declared in another order: the driver reads and writes UDT values by field name) are logged
 * as warnings.
 *
 * While the application runs, the layer checks again after every schema change the `Topology` reports in a declared
 * keyspace, once the nodes agree on the schema (so that the node answering the re-check has the change; waiting at
 * most the driver's `maxSchemaAgreementWaitSeconds`), and reports new differences through the log and the `cassandra_schema_drift` gauge of `Metrics`
 * (recorded when `Metrics.layer` is provided), without failing anything: requests that still work keep working.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { CassandraLayer, CqlType, SchemaCheck, Table } from "effect-cassandra"
 *
 * const Users = Table.make({
 *   keyspace: "shop",
 *   name: "users",
 *   columns: { id: CqlType.Uuid, name: CqlType.NullOr(CqlType.Text) },
 *   partitionKey: ["id"]
 * })
 *
 * const CassandraLive = CassandraLayer.layer({ contactPoints: ["127.0.0.1"], localDataCenter: "datacenter1" })
 * const SchemaChecked = SchemaCheck.layer({ tables: [Users] }).pipe(Layer.provideMerge(CassandraLive))
 *
 * const program = Effect.flatMap(SchemaCheck.differences, (differences) =>
 *   Effect.log(`${differences.length} schema differences`)
 * ).pipe(Effect.provide(SchemaChecked))
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as CassandraError from "./CassandraError.ts"
import { cqlTypeOf } from "./CqlType.ts"
import { readKeyspace } from "./internal/liveSchema.ts"
import { MetricsHub } from "./internal/metricsRecorder.ts"
import {
  type DeclaredTable,
  type DeclaredType,
  diff,
  failureKinds,
  type LiveKeyspace,
  warningKinds
} from "./internal/schemaDiff.ts"
import { agreementTimeoutMillis, checkAfterAgreement, inAgreement, recheckOnChanges } from "./internal/schemaRecheck.ts"
import * as Metrics from "./Metrics.ts"
import { Session } from "./Session.ts"
import type * as Table from "./Table.ts"
import { Topology } from "./Topology.ts"

/**
 * The schema of one difference between the declared schema and the cluster's: its kind, whether it fails the check
 * or is a warning, where it is (keyspace, table or type, column or field) and a message naming the CQL types or key
 * structures involved. It never holds a value of the data.
 *
 * @since 0.1.0
 * @category models
 */
export const Difference = Schema.Struct({
  kind: Schema.Literals([...failureKinds, ...warningKinds]),
  severity: Schema.Literals(["failure", "warning"]),
  keyspace: Schema.String,
  /** The table or type. */
  name: Schema.optionalKey(Schema.String),
  /** The column or field. */
  column: Schema.optionalKey(Schema.String),
  message: Schema.String
})

/**
 * One difference between the declared schema and the cluster's (see the `Difference` schema).
 *
 * @since 0.1.0
 * @category models
 */
export type Difference = typeof Difference.Type

/**
 * The cluster's schema differs from the declared one in ways that would break reads or writes: every such
 * difference, in one error.
 *
 * @since 0.1.0
 * @category errors
 */
export class SchemaDriftError extends Schema.TaggedError<SchemaDriftError>("effect-cassandra/SchemaDriftError")(
  "SchemaDriftError",
  { differences: Schema.Array(Difference) }
) {
  override get message(): string {
    const count = this.differences.length
    return `The cluster's schema differs from the declared one (${count} ${count === 1 ? "difference" : "differences"}):\n${this.differences.map((difference) => `- ${difference.message}`).join("\n")}`
  }
}

/**
 * What to check: the declared tables and user-defined types.
 *
 * @since 0.1.0
 * @category models
 */
export interface Definitions {
  readonly tables?: ReadonlyArray<Table.Any> | undefined
  readonly types?: ReadonlyArray<Table.UserType> | undefined
}

/**
 * The schema check service: the differences its latest check found (warnings included), and a way to check again.
 *
 * @since 0.1.0
 * @category models
 */
export interface SchemaCheck {
  readonly differences: Effect.Effect<ReadonlyArray<Difference>>
  readonly recheck: Effect.Effect<ReadonlyArray<Difference>, CassandraError.CassandraError>
}

/**
 * The service key of the schema check.
 *
 * @since 0.1.0
 * @category services
 */
export const SchemaCheck: Context.Service<SchemaCheck, SchemaCheck> =
  Context.Service<SchemaCheck>("effect-cassandra/SchemaCheck")

const acceptsNull = (schema: Schema.Top) =>
  Option.isSome(Schema.decodeUnknownOption(schema as Schema.Codec<unknown>)(null))

const declaredTable = (table: Table.Any): DeclaredTable => ({
  keyspace: table.keyspace,
  name: table.name,
  columns: Object.entries(table.columns as Schema.Struct.Fields).map(([name, schema]) => ({
    name,
    type: cqlTypeOf(schema as Schema.Top),
    acceptsNull: acceptsNull(schema as Schema.Top)
  })),
  partitionKey: table.partitionKey,
  clusteringKey: table.clusteringKey,
  staticColumns: table.staticColumns
})

const declaredType = (type: Table.UserType): DeclaredType => ({
  keyspace: type.keyspace,
  name: type.name,
  fields: Object.entries(type.schema.fields as Schema.Struct.Fields).map(([name, schema]) => ({
    name,
    type: cqlTypeOf(schema as Schema.Top)
  }))
})

const keyspacesOf = (definitions: Definitions): ReadonlyArray<string> => [
  ...new Set([
    ...(definitions.types ?? []).map((type) => type.keyspace),
    ...(definitions.tables ?? []).map((table) => table.keyspace)
  ])
]

/**
 * Compares the declared tables and types with the cluster's schema once, and returns every difference, warnings
 * included. Fails only when `system_schema` cannot be read.
 *
 * @since 0.1.0
 * @category checks
 */
export const check = (
  definitions: Definitions
): Effect.Effect<ReadonlyArray<Difference>, CassandraError.CassandraError, Session> => {
  const declared = {
    tables: (definitions.tables ?? []).map(declaredTable),
    types: (definitions.types ?? []).map(declaredType)
  }
  const keyspaces = keyspacesOf(definitions)
  return Effect.map(Effect.forEach(keyspaces, readKeyspace, { concurrency: "unbounded" }), (found) => {
    const live = new Map<string, LiveKeyspace>()
    for (const keyspace of found) if (Option.isSome(keyspace)) live.set(keyspace.value.name, keyspace.value)
    return diff(declared, live)
  })
}

const isFailure = (difference: Difference) => difference.severity === "failure"

/** Sets the drift gauge of each checked keyspace to its count of failing differences. */
const recordDrift = (
  hub: MetricsHub | undefined,
  keyspaces: ReadonlyArray<string>,
  differences: ReadonlyArray<Difference>
) =>
  hub === undefined
    ? Effect.void
    : Effect.forEach(
        keyspaces,
        (keyspace) =>
          Metric.update(
            Metric.withAttributes(Metrics.schemaDrift, { keyspace }),
            differences.filter((difference) => isFailure(difference) && difference.keyspace === keyspace).length
          ),
        { discard: true }
      )

const logDifference = (prefix: string) => (difference: Difference) =>
  (isFailure(difference) ? Effect.logError : Effect.logWarning)(`${prefix}${difference.message}`).pipe(
    Effect.annotateLogs({ keyspace: difference.keyspace, kind: difference.kind })
  )

/**
 * Checks the declared tables and types when the layer is built, and fails it with a `SchemaDriftError` listing every
 * difference that would break reads or writes; warnings are logged. Then checks again after each schema change in a
 * declared keyspace, for as long as the layer lives: differences that appear are logged (failures at error level),
 * differences that disappear are logged at info level, and the `cassandra_schema_drift` gauge follows them.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  definitions: Definitions
): Layer.Layer<SchemaCheck, SchemaDriftError | CassandraError.CassandraError, Session | Topology> =>
  Layer.effect(
    SchemaCheck,
    Effect.gen(function* () {
      const keyspaces = keyspacesOf(definitions)
      const session = yield* Session
      const checkNow = Effect.provideService(check(definitions), Session, session)
      const topology = yield* Topology
      const hub = yield* MetricsHub
      // Listening before the first check, so that no change made after it goes unseen.
      const changes = yield* Stream.toPull(
        topology.events.pipe(
          Stream.filter((event) => event._tag === "SchemaChanged" && keyspaces.includes(event.keyspace))
        )
      )
      const differences = yield* checkNow
      yield* recordDrift(hub, keyspaces, differences)
      const failures = differences.filter(isFailure)
      yield* Effect.forEach(
        differences.filter((difference) => !isFailure(difference)),
        logDifference(""),
        {
          discard: true
        }
      )
      if (failures.length > 0) return yield* new SchemaDriftError({ differences: failures })
      const latest = yield* Ref.make(differences)
      const recheck = Effect.gen(function* () {
        const current = yield* checkNow
        const previous = new Set((yield* Ref.getAndSet(latest, current)).map((difference) => difference.message))
        const now = new Set(current.map((difference) => difference.message))
        yield* Effect.forEach(
          current.filter((difference) => !previous.has(difference.message)),
          logDifference("Schema drift: "),
          { discard: true }
        )
        yield* Effect.forEach(
          [...previous].filter((message) => !now.has(message)),
          (message) => Effect.logInfo(`Schema drift resolved: ${message}`),
          { discard: true }
        )
        yield* recordDrift(hub, keyspaces, current)
        return current
      })
      const recheckAfterAgreement = checkAfterAgreement(
        inAgreement(session.client),
        agreementTimeoutMillis(session.client),
        recheck
      )
      yield* Effect.forkScoped(recheckOnChanges(Stream.fromPull(Effect.succeed(changes)), recheckAfterAgreement))
      return SchemaCheck.of({ differences: Ref.get(latest), recheck })
    })
  )

/**
 * The differences the schema check's latest check found, warnings included.
 *
 * @since 0.1.0
 * @category accessors
 */
export const differences: Effect.Effect<ReadonlyArray<Difference>, never, SchemaCheck> = SchemaCheck.use(
  (service) => service.differences
)
