/**
 * The migrator against the real node: migrations applied once and recorded, re-runs that change nothing, a migration
 * failing halfway then fixed, an interrupted migration, a lease taken away from its holder and one left by a dead
 * holder.
 */
import { assert, layer } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import * as CassandraError from "effect-cassandra/CassandraError"
import * as Migrator from "effect-cassandra/Migrator"
import * as Query from "effect-cassandra/Query"
import * as Session from "effect-cassandra/Session"
import { monotonicMillis } from "../../src/internal/migratorAgreement.ts"
import { keepRenewed, tryAcquire } from "../../src/internal/migratorLease.ts"
import { testConnection } from "../support/cassandra.ts"
import { startInstance } from "../support/migratingInstance.ts"
import { recordingTracer } from "../support/programs.ts"
import { sessionWithKeyspace } from "../support/session.ts"

const { cql, identifier } = Query
const { keyspace, layer: sessionLayer } = sessionWithKeyspace("migrator")

/** Each migration adds a row here when it runs, so a test can count how often each one ran. */
const runsTable = identifier(keyspace, "migration_runs")
const recordRun = (migration: string) =>
  cql`INSERT INTO ${runsTable} (migration, run) VALUES (${migration}, now())`.pipe(Effect.asVoid)
const runsOf = (migration: string) =>
  Effect.map(
    cql<{ readonly count: bigint }>`SELECT count(*) AS count FROM ${runsTable} WHERE migration = ${migration}`,
    (rows) => Number(rows[0]?.count ?? -1)
  )

const tableExists = (table: string) =>
  Effect.map(
    cql`SELECT table_name FROM system_schema.tables WHERE keyspace_name = ${keyspace} AND table_name = ${table}`,
    (rows) => rows.length === 1
  )

/** Who holds the lease of the migrations recorded in `table`, read as a lightweight transaction would. */
const leaseHolder = (table: string) =>
  Effect.map(
    cql<{
      readonly holder: string
    }>`SELECT holder FROM ${identifier(keyspace, `${table}_lease`)} WHERE name = 'migrations'`.withOptions({
      consistency: "SERIAL"
    }),
    (rows) => rows[0]?.holder
  )

const appliedIds = (table?: string) =>
  Effect.map(Migrator.applied({ keyspace, table }), (rows) => rows.map((row) => [row.id, row.name] as const))

const migrationErrorOf = <A>(exit: Exit.Exit<A, unknown>) => {
  assert.isTrue(Exit.isFailure(exit), "the run succeeded")
  const error = Exit.isFailure(exit) ? exit.cause.reasons.find((reason) => reason._tag === "Fail")?.error : undefined
  assert.instanceOf(error, Migrator.MigrationError)
  return error as Migrator.MigrationError
}

layer(sessionLayer, { excludeTestServices: true })("Migrator", (it) => {
  it.effect("creates the table that counts migration runs", () =>
    cql`CREATE TABLE ${runsTable} (migration text, run timeuuid, PRIMARY KEY (migration, run))`.pipe(Effect.asVoid)
  )

  it.effect("applies each migration once, in id order, and records its id, name, time and who applied it", () =>
    Effect.gen(function* () {
      const order: Array<number> = []
      const loader = Migrator.fromRecord({
        "0002_add_ada": Effect.gen(function* () {
          order.push(2)
          yield* recordRun("basic_2")
          yield* cql`INSERT INTO ${identifier(keyspace, "users")} (id, name) VALUES (1, 'Ada')`
        }),
        "0001_create_users": Effect.gen(function* () {
          order.push(1)
          yield* recordRun("basic_1")
          yield* cql`CREATE TABLE ${identifier(keyspace, "users")} (id int PRIMARY KEY, name text)`
        })
      })
      const before = Date.now()
      const applied = yield* Migrator.run({ loader, keyspace, table: "basic_migrations", appliedBy: "test runner" })
      assert.deepStrictEqual(applied, [
        [1, "create_users"],
        [2, "add_ada"]
      ])
      assert.deepStrictEqual(order, [1, 2])
      const records = yield* Migrator.applied({ keyspace, table: "basic_migrations" })
      assert.deepStrictEqual(
        records.map((record) => [record.id, record.name, record.appliedBy]),
        [
          [1, "create_users", "test runner"],
          [2, "add_ada", "test runner"]
        ]
      )
      for (const record of records) assert.isAtLeast(record.appliedAt.getTime(), before - 60_000)

      const again = yield* Migrator.run({ loader, keyspace, table: "basic_migrations", appliedBy: "another runner" })
      assert.deepStrictEqual(again, [])
      assert.deepStrictEqual(order, [1, 2])
      assert.strictEqual(yield* runsOf("basic_1"), 1)
      assert.strictEqual(yield* runsOf("basic_2"), 1)
      assert.deepStrictEqual(
        (yield* Migrator.applied({ keyspace, table: "basic_migrations" })).map((record) => record.appliedBy),
        ["test runner", "test runner"]
      )
      assert.isUndefined(yield* leaseHolder("basic_migrations"))
    })
  )

  it.effect(
    "stops at a migration failing halfway, names it without values, records nothing for it, then applies it once fixed",
    () =>
      Effect.gen(function* () {
        const table = "failing_migrations"
        const first = Effect.gen(function* () {
          yield* recordRun("failing_1")
          yield* cql`CREATE TABLE ${identifier(keyspace, "orders")} (id int PRIMARY KEY, total int)`
        })
        const third = Effect.gen(function* () {
          yield* recordRun("failing_3")
          yield* cql`CREATE TABLE ${identifier(keyspace, "invoices")} (id int PRIMARY KEY)`
        })
        // Halfway: the index is created, then a statement binding a secret fails (a text into an int column).
        const broken = Effect.gen(function* () {
          yield* cql`CREATE INDEX IF NOT EXISTS orders_by_total ON ${identifier(keyspace, "orders")} (total)`
          yield* cql`INSERT INTO ${identifier(keyspace, "orders")} (id, total) VALUES (1, ${"secret-value-4711"})`
        })
        const fixed = Effect.gen(function* () {
          yield* cql`CREATE INDEX IF NOT EXISTS orders_by_total ON ${identifier(keyspace, "orders")} (total)`
          yield* cql`INSERT INTO ${identifier(keyspace, "orders")} (id, total) VALUES (1, ${4711})`
        })

        const exit = yield* Effect.exit(
          Migrator.run({
            loader: Migrator.fromRecord({
              "1_create_orders": first,
              "2_index_totals": broken,
              "3_create_invoices": third
            }),
            keyspace,
            table
          })
        )
        const error = migrationErrorOf(exit)
        assert.strictEqual(error.reason._tag, "Failed")
        if (error.reason._tag === "Failed") {
          assert.strictEqual(error.reason.id, 2)
          assert.strictEqual(error.reason.name, "index_totals")
        }
        assert.include(error.message, 'Migration 2 "index_totals" failed')
        assert.notInclude(error.message, "secret-value-4711")
        assert.notInclude(JSON.stringify(error), "secret-value-4711")
        assert.deepStrictEqual(yield* appliedIds(table), [[1, "create_orders"]])
        assert.isFalse(yield* tableExists("invoices"))
        assert.strictEqual(yield* runsOf("failing_3"), 0)
        assert.isUndefined(yield* leaseHolder(table))

        const rerun = yield* Migrator.run({
          loader: Migrator.fromRecord({
            "1_create_orders": first,
            "2_index_totals": fixed,
            "3_create_invoices": third
          }),
          keyspace,
          table
        })
        assert.deepStrictEqual(rerun, [
          [2, "index_totals"],
          [3, "create_invoices"]
        ])
        assert.deepStrictEqual(yield* appliedIds(table), [
          [1, "create_orders"],
          [2, "index_totals"],
          [3, "create_invoices"]
        ])
        assert.strictEqual(yield* runsOf("failing_1"), 1)
        assert.strictEqual(yield* runsOf("failing_3"), 1)
      })
  )

  it.effect("leaves an interrupted migration unrecorded and releases the lease, so that the next run applies it", () =>
    Effect.gen(function* () {
      const table = "interrupted_migrations"
      const started = yield* Deferred.make<void>()
      const hanging = Effect.gen(function* () {
        yield* recordRun("interrupted_1")
        yield* Deferred.succeed(started, undefined)
        yield* Effect.never
      })
      const fiber = yield* Migrator.run({ loader: Migrator.fromRecord({ "1_hangs": hanging }), keyspace, table }).pipe(
        Effect.forkChild
      )
      yield* Deferred.await(started)
      assert.isDefined(yield* leaseHolder(table))
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(yield* appliedIds(table), [])
      assert.isUndefined(yield* leaseHolder(table))

      const applied = yield* Migrator.run({
        loader: Migrator.fromRecord({ "1_hangs": recordRun("interrupted_1") }),
        keyspace,
        table
      })
      assert.deepStrictEqual(applied, [[1, "hangs"]])
      assert.strictEqual(yield* runsOf("interrupted_1"), 2)
    })
  )

  it.effect("stops applying, with LeaseLost naming the migration, when another instance holds the lease", () =>
    Effect.gen(function* () {
      const table = "stolen_migrations"
      const stolenLease = identifier(keyspace, `${table}_lease`)
      const started = yield* Deferred.make<void>()
      const slow = Effect.gen(function* () {
        yield* Deferred.succeed(started, undefined)
        yield* Effect.never
      })
      const fiber = yield* Migrator.run({
        loader: Migrator.fromRecord({ "1_first": Effect.void, "2_slow": slow, "3_after": recordRun("stolen_3") }),
        keyspace,
        table,
        leaseTtl: "3 seconds"
      }).pipe(Effect.forkChild)
      yield* Deferred.await(started)
      // As if the lease had expired and another instance had taken it.
      yield* cql`UPDATE ${stolenLease} USING TTL 60 SET holder = 'another instance' WHERE name = 'migrations'`
      const error = migrationErrorOf(yield* Fiber.await(fiber))
      assert.strictEqual(error.reason._tag, "LeaseLost")
      if (error.reason._tag === "LeaseLost") {
        assert.strictEqual(error.reason.id, 2)
        assert.strictEqual(error.reason.name, "slow")
      }
      assert.deepStrictEqual(yield* appliedIds(table), [[1, "first"]])
      assert.strictEqual(yield* runsOf("stolen_3"), 0)
    })
  )

  it.effect("waits for a lease left by a dead holder to expire, then applies", () =>
    Effect.gen(function* () {
      const table = "orphaned_migrations"
      // Creates the migrator's tables, with nothing to apply.
      yield* Migrator.run({ loader: Migrator.fromRecord({}), keyspace, table })
      const lease = identifier(keyspace, `${table}_lease`)
      yield* cql`INSERT INTO ${lease} (name, holder) VALUES ('migrations', 'a dead instance') IF NOT EXISTS USING TTL 3`
      const fiber = yield* Migrator.run({
        loader: Migrator.fromRecord({ "1_after_expiry": recordRun("orphaned_1") }),
        keyspace,
        table
      }).pipe(Effect.forkChild)
      // Until the run ends: the migration must not have run while the dead holder's lease was still there. The runs
      // are read before the lease, so a run seen with the lease seen still held ran under that lease.
      let sawWaiting = false
      while (fiber.pollUnsafe() === undefined) {
        const runs = yield* runsOf("orphaned_1")
        const holder = yield* leaseHolder(table)
        if (holder === "a dead instance") {
          assert.strictEqual(runs, 0, "the migration ran while another instance held the lease")
          sawWaiting = true
        }
      }
      assert.isTrue(sawWaiting)
      assert.deepStrictEqual(yield* Fiber.join(fiber), [[1, "after_expiry"]])
      assert.strictEqual(yield* runsOf("orphaned_1"), 1)
    })
  )

  it.effect("never believes it holds a lease the server has already let expire (TTLs expire on whole seconds)", () =>
    Effect.gen(function* () {
      const table = "expiry_migrations"
      yield* Migrator.run({ loader: Migrator.fromRecord({}), keyspace, table })
      // Sent late in a wall-clock second: the server counts the TTL from the start of that second.
      while (Date.now() % 1000 < 850) yield* Effect.sleep("10 millis")
      const acquisition = yield* tryAcquire({
        session: yield* Session.Session,
        table: identifier(keyspace, `${table}_lease`),
        holder: "expiry test",
        ttlSeconds: 3
      })
      assert.strictEqual(acquisition._tag, "Held")
      if (acquisition._tag !== "Held") return
      while ((yield* leaseHolder(table)) === "expiry test") yield* Effect.sleep("20 millis")
      assert.isAtLeast(yield* monotonicMillis, acquisition.expiresAt, "the lease row expired before the holder's lease")
    })
  )

  it.effect("keeps renewing a lease whose renewals take longer than the renewal interval, as on a loaded machine", () =>
    Effect.gen(function* () {
      const table = "slow_renewal_migrations"
      yield* Migrator.run({ loader: Migrator.fromRecord({}), keyspace, table })
      const session = yield* Session.Session
      const renewed = yield* Deferred.make<void>()
      let renewals = 0
      // Each renewal answers 2 seconds late: more than the third of the 5 seconds a 6-second lease is counted on.
      const slow: Session.Session = {
        ...session,
        execute: (request) =>
          request.query.startsWith("UPDATE")
            ? session.execute(request).pipe(
                Effect.delay("2 seconds"),
                Effect.tap(() => (++renewals === 3 ? Deferred.succeed(renewed, undefined) : Effect.void))
              )
            : session.execute(request)
      }
      const lease = { session: slow, table: identifier(keyspace, `${table}_lease`), holder: "slow", ttlSeconds: 6 }
      const acquisition = yield* tryAcquire(lease)
      assert.strictEqual(acquisition._tag, "Held")
      if (acquisition._tag !== "Held") return
      const outcome = yield* Effect.raceFirst(
        Effect.as(Deferred.await(renewed), "renewed three times"),
        Effect.flip(keepRenewed(lease, { expiresAt: acquisition.expiresAt, ended: false }))
      )
      assert.strictEqual(outcome, "renewed three times", JSON.stringify(outcome))
      assert.strictEqual(yield* leaseHolder(table), "slow")
    })
  )

  it.effect("a holder frozen past its lease stops before its next statement, with LeaseLost, and records nothing", () =>
    Effect.gen(function* () {
      const table = "frozen_migrations"
      // Blocks the whole process, timers included, as a SIGSTOP or a long pause of the garbage collector would.
      const freeze = Effect.sync(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 4_000))
      const exit = yield* Effect.exit(
        Migrator.run({
          loader: Migrator.fromRecord({
            "1_frozen": Effect.gen(function* () {
              yield* freeze
              yield* recordRun("frozen_1")
            }),
            "2_after": recordRun("frozen_2")
          }),
          keyspace,
          table,
          leaseTtl: "3 seconds"
        })
      )
      const error = migrationErrorOf(exit)
      assert.strictEqual(error.reason._tag, "LeaseLost", error.message)
      if (error.reason._tag === "LeaseLost") assert.strictEqual(error.reason.id, 1)
      assert.strictEqual(yield* runsOf("frozen_1"), 0, "a statement was sent after the lease expired")
      assert.strictEqual(yield* runsOf("frozen_2"), 0)
      assert.deepStrictEqual(yield* appliedIds(table), [])
    })
  )

  it.effect(
    "a holder process stopped (SIGSTOP) past its lease, while another takes over, sends nothing more once resumed",
    () =>
      Effect.gen(function* () {
        yield* cql`CREATE TABLE ${identifier(keyspace, "runs")} (migration int, run timeuuid, applied_by text, PRIMARY KEY (migration, run))`
        const runsBy = (migration: number) =>
          Effect.map(
            cql<{
              readonly applied_by: string
            }>`SELECT applied_by FROM ${identifier(keyspace, "runs")} WHERE migration = ${migration}`,
            (rows) => rows.map((row) => row.applied_by).sort()
          )
        const instance = (appliedBy: string, pause: boolean) =>
          startInstance(testConnection().contactPoints, {
            MIGRATE_KEYSPACE: keyspace,
            MIGRATE_APPLIED_BY: appliedBy,
            MIGRATE_FOURTH: "1",
            MIGRATE_PAUSE: pause ? "1" : "0",
            MIGRATE_LEASE_TTL: "3"
          })
        const paused = yield* instance("paused-holder", true)
        yield* paused.printed("pausing 4").pipe(Effect.timeout("120 seconds"))
        yield* paused.signal("SIGSTOP")
        const taker = yield* instance("taker", false)
        const took = yield* taker.exited
        assert.strictEqual(took.code, 0, took.output)
        assert.include(took.output, 'applied [[4,"create_more_things"]]')
        yield* paused.signal("SIGCONT")
        const resumed = yield* paused.exited
        assert.notStrictEqual(resumed.code, 0, resumed.output)
        assert.include(resumed.output, "the migrations lease was lost", resumed.output)
        assert.deepStrictEqual(yield* runsBy(41), [], "the resumed holder sent a statement after its lease expired")
        assert.deepStrictEqual(yield* runsBy(4), ["paused-holder", "taker"])
        assert.deepStrictEqual(
          (yield* Migrator.applied({ keyspace })).map((record) => [record.id, record.appliedBy]),
          [
            [1, "paused-holder"],
            [2, "paused-holder"],
            [3, "paused-holder"],
            [4, "taker"]
          ]
        )
      }).pipe(Effect.scoped),
    300_000
  )

  it.effect("refuses a statement a migration's forked fiber sends after the run ended and gave the lease back", () =>
    Effect.gen(function* () {
      const go = yield* Deferred.make<void>()
      let late: Fiber.Fiber<unknown, unknown> | undefined
      const forking = Effect.gen(function* () {
        late = yield* Effect.forkDetach(Effect.andThen(Deferred.await(go), recordRun("forked_late")))
      })
      const applied = yield* Migrator.run({
        loader: Migrator.fromRecord({ "1_forks": forking }),
        keyspace,
        table: "forking_migrations"
      })
      assert.deepStrictEqual(applied, [[1, "forks"]])
      yield* Deferred.succeed(go, undefined)
      assert.isDefined(late)
      const exit = yield* Fiber.await(late!)
      assert.isTrue(Exit.isFailure(exit), "the forked fiber's statement was sent")
      assert.strictEqual(yield* runsOf("forked_late"), 0)
    })
  )

  it.effect("keeps the lease through a migration several times longer than its TTL, while another instance waits", () =>
    Effect.gen(function* () {
      const table = "long_migrations"
      const started = yield* Deferred.make<void>()
      const long = Effect.gen(function* () {
        yield* recordRun("long_1")
        yield* Deferred.succeed(started, undefined)
        yield* Effect.sleep("8 seconds")
      })
      const options: Migrator.Options = {
        loader: Migrator.fromRecord({ "1_long": long }),
        keyspace,
        table,
        leaseTtl: "3 seconds"
      }
      const first = yield* Migrator.run(options).pipe(Effect.forkChild)
      yield* Deferred.await(started)
      const second = yield* Migrator.run(options).pipe(Effect.forkChild)
      assert.deepStrictEqual(yield* Fiber.join(first), [[1, "long"]])
      assert.deepStrictEqual(yield* Fiber.join(second), [])
      assert.strictEqual(yield* runsOf("long_1"), 1)
    })
  )

  it.effect("refuses a pending migration numbered below one already applied, naming it, and applies nothing", () =>
    Effect.gen(function* () {
      const table = "out_of_order_migrations"
      yield* Migrator.run({
        loader: Migrator.fromRecord({ "1_first": Effect.void, "3_third": Effect.void }),
        keyspace,
        table
      })
      const exit = yield* Effect.exit(
        Migrator.run({
          loader: Migrator.fromRecord({
            "1_first": Effect.void,
            "2_late": recordRun("late_2"),
            "3_third": Effect.void,
            "4_next": recordRun("late_4")
          }),
          keyspace,
          table
        })
      )
      const error = migrationErrorOf(exit)
      assert.strictEqual(error.reason._tag, "OutOfOrder", error.message)
      assert.strictEqual(
        error.message,
        "Migration 2 is not applied but migration 3 is: migrations run in id order, so renumber it above 3; nothing was applied"
      )
      assert.strictEqual(yield* runsOf("late_2"), 0)
      assert.strictEqual(yield* runsOf("late_4"), 0)
      assert.deepStrictEqual(yield* appliedIds(table), [
        [1, "first"],
        [3, "third"]
      ])
    })
  )

  it.effect("names a migration that ran but could not be recorded, saying it runs again on the next start", () =>
    Effect.gen(function* () {
      const table = "unrecorded_migrations"
      const exit = yield* Effect.exit(
        Migrator.run({
          loader: Migrator.fromRecord({
            // Recording fails after the migration succeeded: here because it dropped the record table.
            "1_drops_records": cql`DROP TABLE ${identifier(keyspace, table)}`
          }),
          keyspace,
          table
        })
      )
      const error = migrationErrorOf(exit)
      assert.strictEqual(error.reason._tag, "NotRecorded", error.message)
      if (error.reason._tag === "NotRecorded") {
        assert.strictEqual(error.reason.id, 1)
        assert.strictEqual(error.reason.name, "drops_records")
      }
      assert.include(error.message, 'Migration 1 "drops_records" was applied but recording it failed')
      assert.isUndefined(yield* leaseHolder(table))
    })
  )

  it.effect("gives the lease back when the run is interrupted while the lease is being taken", () =>
    Effect.gen(function* () {
      const table = "interrupted_acquisition_migrations"
      yield* Migrator.run({ loader: Migrator.fromRecord({}), keyspace, table })
      const session = yield* Session.Session
      const sent = yield* Deferred.make<void>()
      // The answer to the lease's INSERT comes late, as from a slow coordinator: the run is interrupted meanwhile.
      const lateAnswers: Session.Session = {
        ...session,
        execute: (request) =>
          request.query.includes("IF NOT EXISTS USING TTL")
            ? session.execute(request).pipe(
                Effect.tap(() => Deferred.succeed(sent, undefined)),
                Effect.delay("1 second")
              )
            : session.execute(request)
      }
      const fiber = yield* Migrator.run({
        loader: Migrator.fromRecord({ "1_never": recordRun("acquisition_1") }),
        keyspace,
        table
      }).pipe(Effect.provideService(Session.Session, lateAnswers), Effect.forkChild)
      yield* Deferred.await(sent)
      yield* Fiber.interrupt(fiber)
      assert.isUndefined(yield* leaseHolder(table), "the interrupted run left its lease behind")
      assert.strictEqual(yield* runsOf("acquisition_1"), 0)
    })
  )

  it.effect("refuses hostile keyspace and table names with InvalidIdentifier, creating and dropping nothing", () =>
    Effect.gen(function* () {
      for (const options of [
        { keyspace: `${keyspace}"; DROP TABLE "${keyspace}"."migration_runs"; --`, table: undefined },
        { keyspace, table: `x" (id int PRIMARY KEY); DROP TABLE "${keyspace}"."migration_runs"; --` }
      ]) {
        const exit = yield* Effect.exit(
          Migrator.run({ loader: Migrator.fromRecord({ "1_x": Effect.void }), ...options })
        )
        const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined
        assert.isTrue(CassandraError.isCassandraError(error), String(error))
        if (!CassandraError.isCassandraError(error)) return
        assert.include(["InvalidIdentifier", "Configuration"], error.reason._tag, error.message)
      }
      assert.isTrue(yield* tableExists("migration_runs"))
    })
  )

  it.effect("traces each wait for schema agreement as a span inside its migration's span", () =>
    Effect.gen(function* () {
      const { spans, tracer } = recordingTracer()
      yield* Migrator.run({
        loader: Migrator.fromRecord({
          "1_create_traced": cql`CREATE TABLE ${identifier(keyspace, "traced")} (id int PRIMARY KEY)`
        }),
        keyspace,
        table: "traced_migrations"
      }).pipe(Effect.provideService(Tracer.Tracer, tracer))
      const migration = spans.find((span) => span.name === "Migrator.migration")
      assert.isDefined(migration)
      const waitsInMigration = spans.filter(
        (span) =>
          span.name === "Migrator.awaitSchemaAgreement" &&
          Option.getOrUndefined(Option.map(span.parent, (parent) => parent.spanId)) === migration?.spanId
      )
      assert.lengthOf(waitsInMigration, 1)
    })
  )

  it.effect("tells how to make a migration safe to re-run when it fails on a change an earlier attempt made", () =>
    Effect.gen(function* () {
      const table = "rerun_migrations"
      const things = identifier(keyspace, "rerun_things")
      yield* cql`CREATE TABLE ${things} (id int PRIMARY KEY)`
      const addColumn = cql`ALTER TABLE ${things} ADD colour text`
      const first = yield* Effect.exit(
        Migrator.run({
          loader: Migrator.fromRecord({
            "1_add_colour": Effect.andThen(addColumn, Effect.fail("interrupted by a crash"))
          }),
          keyspace,
          table
        })
      )
      assert.strictEqual(migrationErrorOf(first).reason._tag, "Failed")
      const error = migrationErrorOf(
        yield* Effect.exit(
          Migrator.run({ loader: Migrator.fromRecord({ "1_add_colour": addColumn }), keyspace, table })
        )
      )
      assert.strictEqual(error.reason._tag, "Failed")
      assert.include(error.message, 'Migration 1 "add_colour" failed')
      assert.include(
        error.message,
        "it is not recorded as applied and runs again on the next start, over the changes it (or an earlier attempt) made before it stopped: write it so that it can run again (IF NOT EXISTS, IF EXISTS)"
      )
      const fixed = yield* Migrator.run({
        loader: Migrator.fromRecord({ "1_add_colour": cql`ALTER TABLE ${things} ADD IF NOT EXISTS colour text` }),
        keyspace,
        table
      })
      assert.deepStrictEqual(fixed, [[1, "add_colour"]])
    })
  )
})
