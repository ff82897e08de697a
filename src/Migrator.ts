/**
 * Schema migrations, shaped like `effect/sql`'s Migrator: numbered migrations (a record of Effects or the modules of
 * a directory), each applied once, in id order, and recorded in a table of the library's own
 * (`<keyspace>.effect_cassandra_migrations`: id, name, when, by whom).
 *
 * - Every schema change a migration makes (CREATE, ALTER, DROP) is followed by a wait until every node that is up
 *   has the new schema, so the next statement (or the application started after the migrations) finds it on any
 *   node; a wait that runs out fails with the `SchemaAgreement` reason.
 * - Several instances may start at once: a lease (a row written with lightweight transactions and a TTL) lets one
 *   apply while the others wait, then see every migration applied and go on. The holder renews the lease while it
 *   works and stops as soon as it cannot (`LeaseLost`); a holder that dies stops renewing and its lease expires, so
 *   the next instance takes over after at most `leaseTtl`.
 * - A migration that fails stops the run with the `Failed` reason naming it; it is not recorded, later ones are not
 *   applied, and the next run starts again with it. Cassandra has no transactional DDL: a migration that failed or
 *   was stopped halfway has made the changes it made, so write migrations that can run again
 *   (`CREATE TABLE IF NOT EXISTS`, `ALTER TABLE … ADD IF NOT EXISTS` from Cassandra 4.1, `DROP … IF EXISTS`).
 * - Ids run from 0 to 2147483647 (the record's `int`); a migration numbered below one already applied is refused
 *   (`OutOfOrder`) rather than applied after it, or silently never, as `effect/sql` does.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { readdir } from "node:fs/promises"
import { hostname } from "node:os"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as CassandraError from "./CassandraError.ts"
import { durationMillis } from "./internal/clientOptions.ts"
import { awaitSchemaAgreement, isSchemaChange, schemaChangeHead } from "./internal/migratorAgreement.ts"
import {
  type Acquisition,
  ensureHeld,
  type HeldLease,
  keepRenewed,
  type LeaseSettings,
  release,
  tryAcquire
} from "./internal/migratorLease.ts"
import * as Query from "./Query.ts"
import { Session } from "./Session.ts"

/**
 * One migration: an Effect run with the session, whose schema changes are each followed by a wait for agreement.
 *
 * @since 0.1.0
 * @category models
 */
export type Migration = Effect.Effect<unknown, unknown, Session>

/**
 * A migration as a loader finds it: its id, its name, and how to load it.
 *
 * @since 0.1.0
 * @category models
 */
export type ResolvedMigration = readonly [id: number, name: string, load: Effect.Effect<Migration, MigrationError>]

/**
 * Finds the migrations, in id order.
 *
 * @since 0.1.0
 * @category models
 */
export type Loader = Effect.Effect<ReadonlyArray<ResolvedMigration>, MigrationError>

/**
 * A migration as recorded once applied.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppliedMigration {
  readonly id: number
  readonly name: string
  readonly appliedAt: Date
  /** The `appliedBy` of the instance that applied it. */
  readonly appliedBy: string
}

/**
 * The name of the table that records applied migrations, unless `table` says otherwise; the lease lives next to it,
 * in `<table>_lease`.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultTable = "effect_cassandra_migrations"

/**
 * What `run` and `layer` take.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly loader: Loader
  /** The keyspace of the migrator's tables; it must exist (create it in code that runs first, with its replication). */
  readonly keyspace: string
  /** The table that records applied migrations (default {@link defaultTable}). */
  readonly table?: string | undefined
  /** Who applies, as recorded (default: the host name and process id). */
  readonly appliedBy?: string | undefined
  /**
   * How long the lease lasts without renewal, in whole seconds, from 3 seconds to a day (default 30 seconds): how
   * long the others wait after its holder died. The holder counts on one second less (servers expire TTLs on whole
   * seconds) and renews it every third of that.
   */
  readonly leaseTtl?: Duration.Input | undefined
  /** How long to wait for the cluster to agree on the schema after each schema change (default 60 seconds). */
  readonly schemaAgreementTimeout?: Duration.Input | undefined
  /**
   * End-to-end bound of each schema-changing statement of a migration that sets no timeout of its own (default 2
   * minutes): a schema change on a busy cluster can take longer than a session's usual request timeout.
   */
  readonly schemaChangeTimeout?: Duration.Input | undefined
}

/** `Migration 3 "add_index"`, or the migrator's own tables when no migration is concerned. */
const subject = (migration: { readonly id?: number | undefined; readonly name?: string | undefined }) =>
  migration.name === undefined
    ? "The migrator's own tables"
    : `Migration ${migration.id === undefined ? "" : `${migration.id} `}"${migration.name}"`

const notRecorded =
  "it is not recorded as applied and runs again on the next start, over the changes it (or an earlier attempt) made before it stopped: write it so that it can run again (IF NOT EXISTS, IF EXISTS)"

/**
 * Several migrations have the same id. Nothing was applied.
 *
 * @since 0.1.0
 * @category errors
 */
export class Duplicates extends Schema.TaggedError<Duplicates>("effect-cassandra/Migrator/Duplicates")("Duplicates", {
  ids: Schema.Array(Schema.Number)
}) {
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Migration ids used more than once: ${this.ids.join(", ")}; nothing was applied`
  }
}

/**
 * A migration could not be found or loaded: a record key or file name that is not `<id>_<name>`, an id the record
 * cannot hold, a directory that cannot be read, a module that failed to import (named by its error's type and code,
 * never its message) or whose default export is not an Effect. Nothing was applied from it on.
 *
 * @since 0.1.0
 * @category errors
 */
export class ImportError extends Schema.TaggedError<ImportError>("effect-cassandra/Migrator/ImportError")(
  "ImportError",
  { id: Schema.optional(Schema.Number), name: Schema.String, detail: Schema.String }
) {
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.id === undefined ? `"${this.name}"` : subject(this)} could not be loaded: ${this.detail}`
  }
}

/**
 * A migration failed (or died). It is not recorded as applied and later ones were not applied; whatever it changed
 * before failing stays changed. `cause` is its failure; the message names only its tag, or the redacted message of a
 * `CassandraError`, so that no value it holds is printed.
 *
 * @since 0.1.0
 * @category errors
 */
export class Failed extends Schema.TaggedError<Failed>("effect-cassandra/Migrator/Failed")("Failed", {
  id: Schema.Number,
  name: Schema.String,
  cause: Schema.Defect()
}) {
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `${subject(this)} failed: ${describeFailure(this.cause)}; ${notRecorded}`
  }
}

/**
 * The cluster did not agree on the schema within `schemaAgreementTimeout` after a schema change: some node that is up
 * still has another schema version. The change itself was made; the migration is not recorded as applied.
 * `statement` is the head of the schema change, up to where a literal could start (`CREATE ROLE app`, not its
 * password).
 *
 * @since 0.1.0
 * @category errors
 */
export class SchemaAgreement extends Schema.TaggedError<SchemaAgreement>("effect-cassandra/Migrator/SchemaAgreement")(
  "SchemaAgreement",
  {
    id: Schema.optional(Schema.Number),
    name: Schema.optional(Schema.String),
    statement: Schema.String,
    waitedMillis: Schema.Number
  }
) {
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    const waited = Duration.format(Duration.millis(this.waitedMillis))
    const unrecorded = this.name === undefined ? "" : `; ${notRecorded}`
    return `${subject(this)}: the nodes did not agree on the schema within ${waited} after ${this.statement}${unrecorded}`
  }
}

/**
 * The lease could not be renewed in time, another instance holds it now, or the process was paused past it: the
 * migration running was stopped before its next statement (another instance may be applying it) and is not recorded
 * as applied.
 *
 * @since 0.1.0
 * @category errors
 */
export class LeaseLost extends Schema.TaggedError<LeaseLost>("effect-cassandra/Migrator/LeaseLost")("LeaseLost", {
  id: Schema.optional(Schema.Number),
  name: Schema.optional(Schema.String),
  detail: Schema.String
}) {
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    const stopped = this.name === undefined ? "The migrations were stopped" : `${subject(this)} was stopped`
    return `${stopped}: the migrations lease was lost (${this.detail}); ${notRecorded}`
  }
}

/**
 * Migrations not applied yet are numbered below one already applied (added late, say from a branch merged after a
 * later migration was deployed). Migrations run in id order, so none was applied: renumber them above the highest
 * applied id.
 *
 * @since 0.1.0
 * @category errors
 */
export class OutOfOrder extends Schema.TaggedError<OutOfOrder>("effect-cassandra/Migrator/OutOfOrder")("OutOfOrder", {
  ids: Schema.Array(Schema.Number),
  highestApplied: Schema.Number
}) {
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    const [which, are, them] = this.ids.length === 1 ? ["Migration", "is", "it"] : ["Migrations", "are", "them"]
    return `${which} ${this.ids.join(", ")} ${are} not applied but migration ${this.highestApplied} is: migrations run in id order, so renumber ${them} above ${this.highestApplied}; nothing was applied`
  }
}

/**
 * A migration ran to its end but recording it failed (`cause`, named without values in the message): it is applied
 * yet not recorded, so the next run applies it again.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotRecorded extends Schema.TaggedError<NotRecorded>("effect-cassandra/Migrator/NotRecorded")(
  "NotRecorded",
  { id: Schema.Number, name: Schema.String, cause: Schema.Defect() }
) {
  /**
   * What went wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `${subject(this)} was applied but recording it failed: ${describeFailure(this.cause)}; ${notRecorded}`
  }
}

/**
 * Every reason a migration run can fail for, as a schema.
 *
 * @since 0.1.0
 * @category models
 */
export const Reason = Schema.Union([
  Duplicates,
  ImportError,
  OutOfOrder,
  Failed,
  SchemaAgreement,
  LeaseLost,
  NotRecorded
])

/**
 * Every reason a migration run can fail for; switch on `_tag`.
 *
 * @since 0.1.0
 * @category models
 */
export type Reason = typeof Reason.Type

/**
 * The error of a migration run: `reason` says what went wrong and which migration it concerns. Failures of the
 * migrator's own requests (its tables, records and lease) are `CassandraError`s.
 *
 * @since 0.1.0
 * @category errors
 */
export class MigrationError extends Schema.TaggedError<MigrationError>("effect-cassandra/Migrator/MigrationError")(
  "MigrationError",
  { reason: Reason }
) {
  /**
   * The reason's message.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return this.reason.message
  }
}

/** A failure named without anything it holds: a CassandraError's message is redacted already, others by tag. */
const describeFailure = (cause: unknown): string => {
  if (CassandraError.isCassandraError(cause)) return cause.message
  if (Predicate.hasProperty(cause, "_tag") && typeof cause._tag === "string") return `a ${cause._tag}`
  if (cause instanceof Error) {
    return `a thrown ${cause.name}${Predicate.hasProperty(cause, "code") && typeof cause.code === "string" ? ` (${cause.code})` : ""}`
  }
  return `a failure of type ${cause === null ? "null" : typeof cause}`
}

const migrationError = (reason: Reason) => new MigrationError({ reason })

// ---------------------------------------------------------------------------------------------------------------------
// Loaders
// ---------------------------------------------------------------------------------------------------------------------

const recordKey = /^(\d+)_(.+)$/
const moduleFile = /^(?:.*\/)?(\d+)_([^./]+)\.(?:js|ts|mjs|mts)$/

const byId = (migrations: Array<ResolvedMigration>): ReadonlyArray<ResolvedMigration> =>
  migrations.sort(([a], [b]) => a - b)

/**
 * Migrations from a record of Effects keyed `<id>_<name>` (`"0001_create_users"`), in id order. A key of another
 * form fails with `ImportError` naming it.
 *
 * @example
 * ```ts
 * import { Migrator, Query } from "effect-cassandra"
 *
 * const loader = Migrator.fromRecord({
 *   "0001_create_users": Query.cql`CREATE TABLE IF NOT EXISTS users (id int PRIMARY KEY, name text)`,
 *   "0002_add_email": Query.cql`ALTER TABLE users ADD IF NOT EXISTS email text`
 * })
 * ```
 *
 * @since 0.1.0
 * @category loaders
 */
export const fromRecord = (migrations: Readonly<Record<string, Migration>>): Loader =>
  Effect.suspend(() => {
    const resolved: Array<ResolvedMigration> = []
    for (const [key, migration] of Object.entries(migrations)) {
      const match = recordKey.exec(key)
      if (match === null) {
        return Effect.fail(
          migrationError(
            new ImportError({ name: key, detail: "its key is not <id>_<name> (digits, an underscore, then a name)" })
          )
        )
      }
      resolved.push([Number(match[1]), match[2] ?? "", Effect.succeed(migration)])
    }
    return Effect.succeed(byId(resolved))
  })

/** The migration a module exports by default (or as the default of its default, as some bundlers write it). */
const defaultMigration = (id: number, name: string, module: unknown): Effect.Effect<Migration, MigrationError> => {
  const exported = Predicate.hasProperty(module, "default") ? module.default : undefined
  const migration = Predicate.hasProperty(exported, "default") ? exported.default : exported
  return Effect.isEffect(migration)
    ? Effect.succeed(migration as Migration)
    : Effect.fail(migrationError(new ImportError({ id, name, detail: "its default export is not an Effect" })))
}

const importModule = (id: number, name: string, load: () => Promise<unknown>) =>
  Effect.tryPromise({
    try: load,
    // The module's own message may hold anything (a connection string, a secret): it is named by its type only.
    catch: (cause) =>
      migrationError(new ImportError({ id, name, detail: `importing it failed with ${describeFailure(cause)}` }))
  }).pipe(Effect.flatMap((module) => defaultMigration(id, name, module)))

/**
 * Migrations from a glob of module loaders, as `import.meta.glob("./migrations/*.ts")` gives them: each file named
 * `<id>_<name>.(ts|js|mts|mjs)` whose default export is the migration; other files are left out.
 *
 * @since 0.1.0
 * @category loaders
 */
export const fromGlob = (migrations: Readonly<Record<string, () => Promise<unknown>>>): Loader =>
  Effect.sync(() => {
    const resolved: Array<ResolvedMigration> = []
    for (const [path, load] of Object.entries(migrations)) {
      const match = moduleFile.exec(path)
      if (match === null) continue
      const id = Number(match[1])
      const name = match[2] ?? ""
      resolved.push([id, name, importModule(id, name, load)])
    }
    return byId(resolved)
  })

/**
 * Migrations from the modules of a directory: each file named `<id>_<name>.(ts|js|mts|mjs)` whose default export is
 * the migration, imported when it is to be applied; other files (helpers, `.d.ts`) are left out.
 *
 * @example
 * ```ts
 * import { Migrator } from "effect-cassandra"
 *
 * const loader = Migrator.fromFileSystem(new URL("./migrations", import.meta.url).pathname)
 * ```
 *
 * @since 0.1.0
 * @category loaders
 */
export const fromFileSystem = (directory: string): Loader =>
  Effect.tryPromise({
    try: () => readdir(directory),
    catch: (cause) =>
      migrationError(
        new ImportError({
          name: directory,
          detail: `the migrations directory could not be read (${Predicate.hasProperty(cause, "code") ? String(cause.code) : "unknown error"})`
        })
      )
  }).pipe(
    Effect.flatMap((files) =>
      fromGlob(
        Object.fromEntries(
          files.map((file) => [file, () => import(pathToFileURL(Path.join(directory, file)).href) as Promise<unknown>])
        )
      )
    )
  )

// ---------------------------------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------------------------------

/** Settings read once from the options, in the units the requests use. */
interface Settings {
  readonly records: Query.Identifier
  readonly lease: Query.Identifier
  readonly keyspace: string
  readonly table: string
  readonly appliedBy: string
  readonly leaseTtlSeconds: number
  readonly agreementTimeoutMillis: number
  readonly schemaChangeTimeoutMillis: number
}

const leasePollInterval = "500 millis"
const maxLeaseTtlSeconds = 86_400
const leaseSuffix = "_lease"
// Cassandra's longest table name: the lease table's name, the record table's and a suffix, must fit in it.
const maxTableLength = 48 - leaseSuffix.length
// The record's id column is a CQL int.
const maxId = 2_147_483_647
// Records are read and written at QUORUM so that an instance in any data center sees what the holder recorded.
const recordConsistency = { consistency: "QUORUM" } as const

/** Whole milliseconds of a duration option (by the session's rule for durations), or the Configuration reason. */
const durationSetting = (name: string, input: Duration.Input | undefined, fallbackMillis: number) => {
  const millis = input === undefined ? fallbackMillis : durationMillis(input, false)
  return typeof millis === "string"
    ? Effect.fail(CassandraError.configuration(`Migrator: ${name} ${millis}`))
    : Effect.succeed(millis)
}

const settingsOf = Effect.fnUntraced(function* (options: Options) {
  const table = options.table ?? defaultTable
  if (table.length > maxTableLength) {
    return yield* CassandraError.configuration(
      `Migrator: table must be at most ${maxTableLength} characters, so that its lease table (<table>${leaseSuffix}) is at most 48, not ${table.length}`
    )
  }
  const leaseTtlSeconds = Math.ceil((yield* durationSetting("leaseTtl", options.leaseTtl, 30_000)) / 1000)
  if (leaseTtlSeconds < 3 || leaseTtlSeconds > maxLeaseTtlSeconds) {
    return yield* CassandraError.configuration(
      `Migrator: leaseTtl must be from 3 seconds to a day, not ${leaseTtlSeconds} seconds`
    )
  }
  const settings: Settings = {
    records: Query.identifier(options.keyspace, table),
    lease: Query.identifier(options.keyspace, `${table}${leaseSuffix}`),
    keyspace: options.keyspace,
    table,
    appliedBy: options.appliedBy ?? `${hostname()} pid ${process.pid}`,
    leaseTtlSeconds,
    agreementTimeoutMillis: yield* durationSetting("schemaAgreementTimeout", options.schemaAgreementTimeout, 60_000),
    schemaChangeTimeoutMillis: yield* durationSetting("schemaChangeTimeout", options.schemaChangeTimeout, 120_000)
  }
  return settings
})

/**
 * Why the migrator stopped a request of a migration: thrown as a defect through the migration's own code, so that no
 * handler in it mistakes it for a failed request, and made the reason of the run's failure when the migration ends.
 */
class Stopped extends Error {
  readonly reason: (migration: MigrationName) => Reason
  constructor(reason: (migration: MigrationName) => Reason) {
    // Read as is only where it escapes the migration: in a fiber the migration forked and left running.
    super(reason({}).message)
    this.reason = reason
  }
}

type MigrationName = { readonly id?: number; readonly name?: string }

/**
 * The session a migration runs with: each request is sent only while the lease is held (a process that was paused
 * past it must not send one more); each schema change gets the schema-change timeout unless it sets one, and is
 * followed by the wait for agreement.
 */
const agreeingSession = (session: Session, settings: Settings, held: HeldLease | undefined): Session => {
  const whileHeld =
    held === undefined
      ? Effect.void
      : Effect.catch(ensureHeld(held), ({ detail }) =>
          Effect.die(new Stopped((migration) => new LeaseLost({ ...migration, detail })))
        )
  return {
    ...session,
    execute: (request) => {
      if (!isSchemaChange(request.query)) return Effect.andThen(whileHeld, session.execute(request))
      const bounded =
        request.options.timeout === undefined
          ? { ...request, options: { ...request.options, timeout: settings.schemaChangeTimeoutMillis } }
          : request
      return Effect.andThen(
        whileHeld,
        Effect.tap(session.execute(bounded), (result) =>
          awaitSchemaAgreement(session.client, result.info.queriedHost, settings.agreementTimeoutMillis).pipe(
            Effect.catch(({ waitedMillis }) =>
              Effect.die(
                new Stopped(
                  (migration) =>
                    new SchemaAgreement({
                      ...migration,
                      statement: schemaChangeHead(request.query),
                      waitedMillis: Math.round(waitedMillis)
                    })
                )
              )
            )
          )
        )
      )
    },
    batch: (requests, options) => Effect.andThen(whileHeld, session.batch(requests, options))
  }
}

const withAgreement = <A, E>(
  effect: Effect.Effect<A, E, Session>,
  session: Session,
  settings: Settings,
  held: HeldLease | undefined,
  migration: MigrationName
) =>
  effect.pipe(
    Effect.provideService(Session, agreeingSession(session, settings, held)),
    Effect.catchDefect((defect) =>
      defect instanceof Stopped ? Effect.fail(migrationError(defect.reason(migration))) : Effect.die(defect)
    )
  )

/** A deterministic table id, so that instances creating the table at once on different nodes create one table. */
const tableId = (keyspace: string, table: string) => {
  const hex = createHash("sha1").update(`effect-cassandra/Migrator/${keyspace}/${table}`).digest("hex")
  const variant = ((Number.parseInt(hex.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(18, 20)}-${hex.slice(20, 32)}`
}

/**
 * `CREATE TABLE IF NOT EXISTS <table> <definition> WITH id = <tableId>`. The id cannot be a bound value in a schema
 * change, so it is written into the text: hex digits and dashes made above, never data.
 */
const createTable = (table: Query.Identifier, definition: string, id: string) => {
  const pieces = ["CREATE TABLE IF NOT EXISTS ", ` ${definition} WITH id = ${id}`]
  return Query.cql(Object.assign(pieces, { raw: pieces }), table)
}

/**
 * Waits until every node has the migrator's tables, then creates those still missing. Another instance may have just
 * created them and still be waiting for the nodes to agree: the node that says they exist must not be the only one
 * that knows them. Tables in place cost two reads of the schema and of the schema versions that node knows, and no
 * schema change.
 */
const ensureTables = (session: Session, settings: Settings) =>
  Effect.gen(function* () {
    const leaseTable = `${settings.table}${leaseSuffix}`
    const existence = Query.cql<{
      readonly table_name: string
    }>`SELECT table_name FROM system_schema.tables WHERE keyspace_name = ${settings.keyspace} AND table_name IN (${settings.table}, ${leaseTable})`
    const { rows, info } = yield* existence.result
    yield* awaitSchemaAgreement(session.client, info.coordinator ?? "", settings.agreementTimeoutMillis).pipe(
      Effect.mapError(({ waitedMillis }) =>
        migrationError(new SchemaAgreement({ statement: existence.text, waitedMillis: Math.round(waitedMillis) }))
      )
    )
    const exists = (table: string) => rows.some((row) => row.table_name === table)
    if (!exists(settings.table)) {
      yield* createTable(
        settings.records,
        "(id int PRIMARY KEY, name text, applied_at timestamp, applied_by text)",
        tableId(settings.keyspace, settings.table)
      )
    }
    if (!exists(leaseTable)) {
      yield* createTable(
        settings.lease,
        "(name text PRIMARY KEY, holder text, acquired_at timestamp, renewed_at timestamp)",
        tableId(settings.keyspace, leaseTable)
      )
    }
  })

interface RecordRow {
  readonly id: number
  readonly name: string
  readonly applied_at: Date
  readonly applied_by: string
}

const readApplied = (records: Query.Identifier) =>
  Effect.map(
    Query.cql<RecordRow>`SELECT id, name, applied_at, applied_by FROM ${records}`.withOptions(recordConsistency),
    (rows): ReadonlyArray<AppliedMigration> =>
      rows
        .map((row) => ({ id: row.id, name: row.name, appliedAt: row.applied_at, appliedBy: row.applied_by }))
        .sort((a, b) => a.id - b.id)
  )

/**
 * The migrations not recorded yet, or `OutOfOrder` when one of them is numbered below one recorded; a read that fails
 * for now (a timeout, a node going down) is tried again.
 */
const pendingOf = (migrations: ReadonlyArray<ResolvedMigration>, records: Query.Identifier) =>
  readApplied(records).pipe(
    Effect.retry({ while: (error) => error.isRetryable, schedule: Schedule.spaced(leasePollInterval), times: 3 }),
    Effect.flatMap((applied) => {
      const done = new Set(applied.map((migration) => migration.id))
      const pending = migrations.filter(([id]) => !done.has(id))
      const highestApplied = applied.at(-1)?.id ?? -1
      const late = pending.filter(([id]) => id < highestApplied).map(([id]) => id)
      return late.length === 0
        ? Effect.succeed(pending)
        : Effect.fail(migrationError(new OutOfOrder({ ids: late, highestApplied })))
    })
  )

/** Migrations whose id the record cannot hold, named; checked before anything is sent. */
const unrecordableId = (migrations: ReadonlyArray<ResolvedMigration>) => {
  const found = migrations.find(([id]) => !(Number.isSafeInteger(id) && id >= 0 && id <= maxId))
  return found === undefined
    ? Effect.void
    : Effect.fail(
        migrationError(
          new ImportError({
            id: found[0],
            name: found[1],
            detail: `its id is not a whole number from 0 to ${maxId}; nothing was applied`
          })
        )
      )
}

const duplicateIds = (migrations: ReadonlyArray<ResolvedMigration>) => {
  const seen = new Set<number>()
  const duplicates = new Set<number>()
  for (const [id] of migrations) (seen.has(id) ? duplicates : seen).add(id)
  return [...duplicates]
}

type Busy = Extract<Acquisition, { readonly _tag: "Busy" }>

/** Applies the pending migrations in order while holding the lease, recording each one once it succeeded. */
const applyHolding = (
  session: Session,
  settings: Settings,
  lease: LeaseSettings,
  held: HeldLease,
  migrations: ReadonlyArray<ResolvedMigration>
) =>
  Effect.gen(function* () {
    let running: { readonly id: number; readonly name: string } | undefined
    const applyAll = Effect.gen(function* () {
      // Read again under the lease: an instance that held it before may have applied some since the first read.
      const pending = yield* pendingOf(migrations, settings.records)
      const applied: Array<readonly [id: number, name: string]> = []
      for (const [id, name, load] of pending) {
        running = { id, name }
        const migration = yield* load
        yield* withAgreement(migration, session, settings, held, running).pipe(
          Effect.catchDefect((defect) => Effect.fail(defect)),
          Effect.mapError((cause) =>
            cause instanceof MigrationError ? cause : migrationError(new Failed({ id, name, cause }))
          ),
          Effect.withSpan("Migrator.migration", { attributes: { "migration.id": id, "migration.name": name } })
        )
        // A process paused past its lease records nothing: the instance holding it now may be applying this one.
        yield* ensureHeld(held).pipe(
          Effect.mapError(({ detail }) => migrationError(new LeaseLost({ id, name, detail })))
        )
        // Idempotent, so that the driver retries it on another node rather than leave an applied migration unrecorded.
        yield* Query.cql`INSERT INTO ${settings.records} (id, name, applied_at, applied_by) VALUES (${id}, ${name}, toTimestamp(now()), ${settings.appliedBy})`
          .withOptions({ ...recordConsistency, idempotent: true })
          .pipe(Effect.mapError((cause) => migrationError(new NotRecorded({ id, name, cause }))))
        yield* Effect.logInfo(`Applied migration ${id} "${name}"`)
        applied.push([id, name])
      }
      running = undefined
      return applied
    })
    return yield* Effect.raceFirst(
      applyAll,
      keepRenewed(lease, held).pipe(
        Effect.mapError(({ detail }) => migrationError(new LeaseLost({ ...running, detail })))
      )
    )
  }).pipe(
    // Before the lease is given back: a fiber a migration forked and left running sends nothing more.
    Effect.ensuring(
      Effect.sync(() => {
        held.ended = true
      })
    )
  )

/**
 * Applies the migrations the table does not record yet, in id order, and returns the ids and names it applied (none
 * when another instance applied them, or nothing was pending). Creates the migrator's tables in `keyspace` first.
 *
 * @since 0.1.0
 * @category running
 */
export const run: (
  options: Options
) => Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  MigrationError | CassandraError.CassandraError,
  Session
> = Effect.fn("Migrator.run")(function* (options: Options) {
  const session = yield* Session
  const settings = yield* settingsOf(options)
  const migrations = yield* options.loader
  yield* unrecordableId(migrations)
  const duplicates = duplicateIds(migrations)
  if (duplicates.length > 0) return yield* migrationError(new Duplicates({ ids: duplicates }))
  yield* withAgreement(ensureTables(session, settings), session, settings, undefined, {})
  const lease: LeaseSettings = {
    session,
    table: settings.lease,
    holder: `${settings.appliedBy} ${crypto.randomUUID()}`,
    ttlSeconds: settings.leaseTtlSeconds
  }
  let waitingFor: string | undefined
  while (true) {
    const pending = yield* pendingOf(migrations, settings.records)
    if (pending.length === 0) return []
    // Taking the lease is not interrupted halfway, so that a lease taken is always given back.
    const acquisition = yield* Effect.acquireUseRelease(
      tryAcquire(lease),
      (
        acquisition
      ): Effect.Effect<
        { readonly _tag: "Applied"; readonly applied: ReadonlyArray<readonly [id: number, name: string]> } | Busy,
        MigrationError | CassandraError.CassandraError,
        Session
      > =>
        acquisition._tag === "Held"
          ? Effect.map(
              applyHolding(session, settings, lease, { expiresAt: acquisition.expiresAt, ended: false }, migrations),
              (applied) => ({ _tag: "Applied", applied }) as const
            )
          : Effect.succeed(acquisition),
      (acquisition) => (acquisition._tag === "Held" ? release(lease) : Effect.void)
    )
    if (acquisition._tag === "Applied") return acquisition.applied
    if (acquisition.holder !== waitingFor) {
      waitingFor = acquisition.holder
      yield* Effect.logInfo(
        `Waiting for the migrations lease, held by ${acquisition.holder ?? "another instance"}, to apply ${pending.length} migration(s)`
      )
    }
    yield* Effect.sleep(leasePollInterval)
  }
})

/**
 * The migrations recorded as applied in `keyspace`, in id order.
 *
 * @since 0.1.0
 * @category running
 */
export const applied = (options: {
  readonly keyspace: string
  readonly table?: string | undefined
}): Effect.Effect<ReadonlyArray<AppliedMigration>, CassandraError.CassandraError, Session> =>
  readApplied(Query.identifier(options.keyspace, options.table ?? defaultTable))

/**
 * Runs the migrations when the layer is built: provide it before the layers that use the session, so that they
 * start only once every migration is applied.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { CassandraLayer, Migrator, Query } from "effect-cassandra"
 *
 * const CassandraLive = CassandraLayer.layer({ contactPoints: ["127.0.0.1"], localDataCenter: "datacenter1" })
 *
 * // The session, raw client and topology, provided once the migrations are applied.
 * const DatabaseLive = Migrator.layer({
 *   keyspace: "shop",
 *   loader: Migrator.fromRecord({
 *     "0001_create_orders": Query.cql`CREATE TABLE IF NOT EXISTS shop.orders (id uuid PRIMARY KEY, total int)`
 *   })
 * }).pipe(Layer.provideMerge(CassandraLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<never, MigrationError | CassandraError.CassandraError, Session> =>
  Layer.effectDiscard(run(options))
