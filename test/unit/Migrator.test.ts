import { mkdtempSync, rmSync, symlinkSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as CassandraError from "effect-cassandra/CassandraError"
import * as Migrator from "effect-cassandra/Migrator"
import * as Session from "effect-cassandra/Session"
import { isSchemaChange, schemaChangeHead } from "../../src/internal/migratorAgreement.ts"

const namesOf = (loader: Migrator.Loader) =>
  Effect.map(loader, (migrations) => migrations.map(([id, name]) => [id, name] as const))

describe("Migrator loaders", () => {
  it.effect("fromRecord orders migrations by their numeric id and keeps the rest of the key as the name", () =>
    Effect.gen(function* () {
      const loaded = yield* namesOf(
        Migrator.fromRecord({ "10_later": Effect.void, "0002_second": Effect.void, "1_first_one": Effect.void })
      )
      assert.deepStrictEqual(loaded, [
        [1, "first_one"],
        [2, "second"],
        [10, "later"]
      ])
    })
  )

  it.effect("fromRecord refuses a key that is not <id>_<name>, naming it", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(Migrator.fromRecord({ "1_ok": Effect.void, create_users: Effect.void }))
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined
      assert.instanceOf(error, Migrator.MigrationError)
      assert.strictEqual((error as Migrator.MigrationError).reason._tag, "ImportError")
      assert.include((error as Migrator.MigrationError).message, '"create_users"')
    })
  )

  it.effect("fromFileSystem reads <id>_<name> modules of a directory in id order and skips other files", () =>
    Effect.gen(function* () {
      const directory = new URL("./migrations-fixture", import.meta.url).pathname
      const migrations = yield* Migrator.fromFileSystem(directory)
      assert.deepStrictEqual(
        migrations.map(([id, name]) => [id, name]),
        [
          [1, "create_users"],
          [2, "add_email"]
        ]
      )
      const [, , load] = migrations[0]!
      assert.isTrue(Effect.isEffect(yield* load))
    })
  )

  it.effect("fromFileSystem fails with ImportError naming a migration whose default export is not an Effect", () =>
    Effect.gen(function* () {
      const directory = new URL("./migrations-fixture-broken", import.meta.url).pathname
      const migrations = yield* Migrator.fromFileSystem(directory)
      const [, , load] = migrations[0]!
      const exit = yield* Effect.exit(load)
      const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined
      assert.instanceOf(error, Migrator.MigrationError)
      assert.include((error as Migrator.MigrationError).message, 'Migration 1 "not_an_effect"')
    })
  )

  it.effect("fromFileSystem names a module that throws at import by the error's name only, never its message", () =>
    Effect.gen(function* () {
      const directory = new URL("./migrations-fixture-throws", import.meta.url).pathname
      const [, , load] = (yield* Migrator.fromFileSystem(directory))[0]!
      const error = failureOf(yield* Effect.exit(load))
      assert.instanceOf(error, Migrator.MigrationError)
      assert.strictEqual(
        (error as Migrator.MigrationError).message,
        'Migration 1 "throws" could not be loaded: importing it failed with a thrown Error'
      )
      assert.notInclude(JSON.stringify(error), "hunter2")
    })
  )

  it.effect("fromFileSystem fails with ImportError naming a directory that does not exist, with its error code", () =>
    Effect.gen(function* () {
      const error = failureOf(yield* Effect.exit(Migrator.fromFileSystem("/nonexistent/migrations")))
      assert.instanceOf(error, Migrator.MigrationError)
      assert.strictEqual(
        (error as Migrator.MigrationError).message,
        '"/nonexistent/migrations" could not be loaded: the migrations directory could not be read (ENOENT)'
      )
    })
  )
})

describe("Migrator loaders, hostile names and files", () => {
  it.effect("fromRecord keeps non-ASCII names, reads 0010 as 10, and refuses ids in other scripts' digits", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* namesOf(Migrator.fromRecord({ "0010_café_naïve": Effect.void })), [
        [10, "café_naïve"]
      ])
      for (const key of ["١_arabic_indic_one", "１_fullwidth_one", "-1_negative", "1e3_exponent"]) {
        const error = failureOf(yield* Effect.exit(Migrator.fromRecord({ [key]: Effect.void })))
        assert.instanceOf(error, Migrator.MigrationError, key)
        assert.strictEqual((error as Migrator.MigrationError).reason._tag, "ImportError", key)
      }
    })
  )

  it.effect("fromFileSystem follows a symlinked migration and names a dangling one when it is loaded", () =>
    Effect.acquireUseRelease(
      Effect.sync(() => mkdtempSync(Path.join(tmpdir(), "migrator-links-"))),
      (directory) =>
        Effect.gen(function* () {
          const target = new URL("./migrations-fixture/0001_create_users.ts", import.meta.url).pathname
          symlinkSync(target, Path.join(directory, "1_linked.ts"))
          symlinkSync(Path.join(directory, "missing.ts"), Path.join(directory, "2_dangling.ts"))
          const migrations = yield* Migrator.fromFileSystem(directory)
          assert.deepStrictEqual(
            migrations.map(([id, name]) => [id, name]),
            [
              [1, "linked"],
              [2, "dangling"]
            ]
          )
          assert.isTrue(Effect.isEffect(yield* migrations[0]![2]))
          const error = failureOf(yield* Effect.exit(migrations[1]![2]))
          assert.instanceOf(error, Migrator.MigrationError)
          assert.include((error as Migrator.MigrationError).message, 'Migration 2 "dangling" could not be loaded')
        }),
      (directory) => Effect.sync(() => rmSync(directory, { recursive: true, force: true }))
    )
  )
})

const failureOf = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined

/** A session that fails the test if anything is sent through it. */
const sendsNothing = {
  execute: () => Effect.die("no request expected"),
  batch: () => Effect.die("no request expected")
} as unknown as Session.Session

describe("Migrator.run settings", () => {
  it.effect("refuses a lease TTL under 3 seconds with a Configuration reason naming it, before sending anything", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        Migrator.run({ loader: Migrator.fromRecord({}), keyspace: "ks", leaseTtl: "2 seconds" }).pipe(
          Effect.provideService(Session.Session, sendsNothing)
        )
      )
      const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined
      assert.isTrue(CassandraError.isCassandraError(error), String(error))
      assert.strictEqual((error as CassandraError.CassandraError).reason._tag, "Configuration")
      assert.include((error as CassandraError.CassandraError).message, "leaseTtl must be from 3 seconds to a day")
    })
  )

  it.effect("refuses duplicate migration ids, naming them, before sending anything", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        Migrator.run({
          loader: Migrator.fromRecord({ "1_a": Effect.void, "01_b": Effect.void, "2_c": Effect.void }),
          keyspace: "ks"
        }).pipe(Effect.provideService(Session.Session, sendsNothing))
      )
      const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined
      assert.instanceOf(error, Migrator.MigrationError)
      assert.strictEqual(
        (error as Migrator.MigrationError).message,
        "Migration ids used more than once: 1; nothing was applied"
      )
    })
  )
})

describe("Migrator.run ids and names", () => {
  it.effect("refuses ids the record's int column cannot hold, naming each key, before sending anything", () =>
    Effect.gen(function* () {
      const error = failureOf(
        yield* Effect.exit(
          Migrator.run({
            loader: Migrator.fromRecord({
              "1_ok": Effect.void,
              "2147483648_too_big": Effect.void,
              "99999999999999999999_far_too_big": Effect.void
            }),
            keyspace: "ks"
          }).pipe(Effect.provideService(Session.Session, sendsNothing))
        )
      )
      assert.instanceOf(error, Migrator.MigrationError)
      const reason = (error as Migrator.MigrationError).reason
      assert.strictEqual(reason._tag, "ImportError")
      assert.strictEqual(
        (error as Migrator.MigrationError).message,
        'Migration 2147483648 "too_big" could not be loaded: its id is not a whole number from 0 to 2147483647; nothing was applied'
      )
    })
  )

  it.effect("refuses a table name too long for its lease table, with a Configuration reason, before sending", () =>
    Effect.gen(function* () {
      const error = failureOf(
        yield* Effect.exit(
          Migrator.run({ loader: Migrator.fromRecord({}), keyspace: "ks", table: "t".repeat(43) }).pipe(
            Effect.provideService(Session.Session, sendsNothing)
          )
        )
      )
      assert.isTrue(CassandraError.isCassandraError(error), String(error))
      assert.strictEqual((error as CassandraError.CassandraError).reason._tag, "Configuration")
      assert.include(
        (error as CassandraError.CassandraError).message,
        "Migrator: table must be at most 42 characters, so that its lease table (<table>_lease) is at most 48, not 43"
      )
    })
  )

  for (const [option, value] of [
    ["schemaAgreementTimeout", 0],
    ["schemaAgreementTimeout", "-1 second"],
    ["schemaChangeTimeout", 0],
    ["leaseTtl", Number.NaN]
  ] as const) {
    it.effect(`refuses ${option} ${String(value)} with a Configuration reason naming it, before sending`, () =>
      Effect.gen(function* () {
        const error = failureOf(
          yield* Effect.exit(
            Migrator.run({ loader: Migrator.fromRecord({}), keyspace: "ks", [option]: value }).pipe(
              Effect.provideService(Session.Session, sendsNothing)
            )
          )
        )
        assert.isTrue(CassandraError.isCassandraError(error), String(error))
        assert.strictEqual((error as CassandraError.CassandraError).reason._tag, "Configuration")
        assert.include((error as CassandraError.CassandraError).message, `Migrator: ${option} `)
      })
    )
  }
})

describe("MigrationError", () => {
  it("names the failed migration and the reason of a Cassandra failure, never a value", () => {
    const cause = new CassandraError.CassandraError({
      reason: new CassandraError.Invalid({ serverMessage: 'Invalid INTEGER constant (<redacted>) for "total"' }),
      operation: "execute"
    })
    const error = new Migrator.MigrationError({
      reason: new Migrator.Failed({ id: 3, name: "add_totals", cause })
    })
    assert.strictEqual(
      error.message,
      'Migration 3 "add_totals" failed: execute: Invalid request: Invalid INTEGER constant (<redacted>) for "total"; it is not recorded as applied and runs again on the next start, over the changes it (or an earlier attempt) made before it stopped: write it so that it can run again (IF NOT EXISTS, IF EXISTS)'
    )
  })

  it("names a failure that is not a Cassandra error by its tag only", () => {
    class Secret {
      readonly _tag = "SecretError"
      readonly value = "hunter2"
    }
    const error = new Migrator.MigrationError({
      reason: new Migrator.Failed({ id: 1, name: "x", cause: new Secret() })
    })
    assert.include(error.message, "SecretError")
    assert.notInclude(error.message, "hunter2")
  })
})

describe("schema change detection", () => {
  it("tells schema-changing statements from the rest, whatever their case, spacing and comments", () => {
    for (const text of [
      "CREATE TABLE ks.t (id int PRIMARY KEY)",
      "  create index i on ks.t (v)",
      "\n-- a comment\nALTER TABLE ks.t ADD v text",
      "/* why */ DROP TABLE ks.t",
      "// note\ncreate type ks.address (street text)"
    ]) {
      assert.isTrue(isSchemaChange(text), text)
    }
    for (const text of [
      "INSERT INTO ks.created (id) VALUES (1)",
      "SELECT * FROM ks.t",
      "UPDATE ks.t SET v = 'CREATE TABLE' WHERE id = 1",
      "TRUNCATE ks.t",
      "BEGIN BATCH INSERT INTO ks.t (id) VALUES (1) APPLY BATCH"
    ]) {
      assert.isFalse(isSchemaChange(text), text)
    }
  })

  it("names a schema change by its head, never by a literal it holds (a password, options, a function body)", () => {
    assert.deepStrictEqual(
      [
        "CREATE TABLE IF NOT EXISTS ks.t (id int PRIMARY KEY, secret text)",
        "  /* setup */ CREATE ROLE app WITH PASSWORD = 'hunter2' AND LOGIN = true",
        "ALTER USER bob WITH PASSWORD 'hunter2'",
        "alter table ks.t with comment = 'hunter2'",
        "ALTER TABLE ks.t ADD colour text",
        "CREATE FUNCTION ks.f(x int) RETURNS NULL ON NULL INPUT RETURNS int LANGUAGE java AS $$ return 1; $$",
        `CREATE TABLE "ks"."t"(id int PRIMARY KEY)`,
        `DROP TABLE ks.${"t".repeat(300)}`
      ].map(schemaChangeHead),
      [
        "CREATE TABLE IF NOT EXISTS ks.t",
        "CREATE ROLE app",
        "ALTER USER bob",
        "alter table ks.t",
        "ALTER TABLE ks.t ADD colour text",
        "CREATE FUNCTION ks.f",
        `CREATE TABLE "ks"."t"`,
        `DROP TABLE ks.${"t".repeat(114)}…`
      ]
    )
  })

  it("answers at once for long runs of spaces and comments, which a backtracking pattern would take years over", () => {
    assert.isFalse(isSchemaChange(`${" ".repeat(100_000)}SELECT 1`))
    assert.isFalse(isSchemaChange(`${"/* a */ -- b\n ".repeat(20_000)}INSERT`))
    assert.isTrue(isSchemaChange(`${"\t\n ".repeat(30_000)}DROP TABLE t`))
  })
})
