/**
 * The migrator on a real 3-node cluster (keyspaces replicated three times): four application processes starting at
 * once apply each migration exactly once; a holder killed mid-migration (SIGKILL) leaves a lease that another
 * process takes over once it expired; each schema change is awaited until every node has it, so a session that only
 * talks to another node reads the new table at once; and a node that never agrees fails the run with a typed error.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Migrator from "effect-cassandra/Migrator"
import * as Query from "effect-cassandra/Query"
import * as Session from "effect-cassandra/Session"
import * as LocalCassandra from "../../tools/cassandra/LocalCassandra.ts"
import { startInstance } from "../support/migratingInstance.ts"

const { cql, identifier } = Query
const firstAddress = 91

/** A session that sends every request to one node only. */
const pinnedSession = (cluster: LocalCassandra.Cluster, node: number, overrides: Partial<Session.Options> = {}) => {
  const address = `127.0.0.${firstAddress + node - 1}`
  return Session.make({
    contactPoints: [address],
    localDataCenter: cluster.localDataCenter,
    ...overrides,
    driverOptions: {
      policies: {
        loadBalancing: new Cassandra.policies.loadBalancing.AllowListPolicy(
          new Cassandra.policies.loadBalancing.DCAwareRoundRobinPolicy(cluster.localDataCenter),
          [`${address}:9042`]
        )
      },
      // Only the migrator waits for schema agreement, not the driver.
      protocolOptions: { maxSchemaAgreementWaitSeconds: 0 }
    }
  })
}

const within =
  (session: Session.Session) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.provideService(effect, Session.Session, session)

const migrationErrorOf = <A>(exit: Exit.Exit<A, unknown>) => {
  assert.isTrue(Exit.isFailure(exit), "the run succeeded")
  const error = Exit.isFailure(exit) ? exit.cause.reasons.find((reason) => reason._tag === "Fail")?.error : undefined
  assert.instanceOf(error, Migrator.MigrationError, String(error))
  return error as Migrator.MigrationError
}

describe("Migrator on a real cluster", () => {
  it.live(
    "applies migrations exactly once across processes, survives a killed holder and awaits schema agreement",
    () =>
      Effect.gen(function* () {
        const cluster = yield* LocalCassandra.start({ nodes: 3, firstAddress, name: "migrator" })
        const admin = yield* Session.make({
          contactPoints: cluster.contactPoints,
          localDataCenter: cluster.localDataCenter
        })
        const asAdmin = within(admin)
        const keyspace = "migrator_concurrent"
        yield* asAdmin(
          Effect.gen(function* () {
            yield* cql`CREATE KEYSPACE ${identifier(keyspace)} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}`
            yield* cql`CREATE KEYSPACE migrator_agreement WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}`
            yield* cql`CREATE TABLE ${identifier(keyspace, "runs")} (migration int, run timeuuid, applied_by text, PRIMARY KEY (migration, run))`
          })
        )
        const runs = asAdmin(
          Effect.map(
            cql<{
              readonly migration: number
              readonly applied_by: string
            }>`SELECT migration, applied_by FROM ${identifier(keyspace, "runs")}`,
            (rows) => rows.map((row) => [row.migration, row.applied_by] as const).sort(([a], [b]) => a - b)
          )
        )
        const records = asAdmin(
          Effect.map(Migrator.applied({ keyspace }), (rows) => rows.map((row) => [row.id, row.appliedBy] as const))
        )

        // Four instances start at once: one applies, the others wait, then find everything applied.
        const instances = yield* Effect.forEach([1, 2, 3, 4], (k) =>
          startInstance(cluster.contactPoints, {
            MIGRATE_KEYSPACE: keyspace,
            MIGRATE_APPLIED_BY: `instance-${k}`,
            MIGRATE_LEASE_TTL: "10"
          })
        )
        const exits = yield* Effect.forEach(instances, (instance) => instance.exited, { concurrency: "unbounded" })
        for (const exit of exits) assert.strictEqual(exit.code, 0, exit.output)
        const appliedByEach = exits.map((exit) => JSON.parse(/applied (.*)/.exec(exit.output)?.[1] ?? "null"))
        assert.deepStrictEqual(
          appliedByEach
            .flat()
            .map(([id]: [number]) => id)
            .sort(),
          [1, 2, 3]
        )
        const recorded = yield* records
        assert.deepStrictEqual(
          recorded.map(([id]) => id),
          [1, 2, 3]
        )
        const ranOnce = yield* runs
        assert.deepStrictEqual(
          ranOnce.map(([migration]) => migration),
          [1, 2, 3],
          "each migration ran exactly once"
        )
        for (const [migration, by] of ranOnce) {
          assert.deepStrictEqual(
            recorded.find(([id]) => id === migration),
            [migration, by],
            "recorded as applied by the instance that ran it"
          )
        }
        console.log(`migrator concurrent: applied per instance ${JSON.stringify(appliedByEach)}`)

        // A holder killed in the middle of migration 4 leaves its lease behind; once it expired, the next instance
        // applies migration 4, and never while the dead holder's lease is still there.
        const leaseHolder = asAdmin(
          Effect.map(
            cql<{
              readonly holder: string
            }>`SELECT holder FROM ${identifier(keyspace, `${Migrator.defaultTable}_lease`)} WHERE name = 'migrations'`.withOptions(
              { consistency: "SERIAL" }
            ),
            (rows) => rows[0]?.holder ?? ""
          )
        ).pipe(
          // A SERIAL read is a Paxos round of its own: beside the instances' lease traffic on a busy machine it may
          // time out, which says nothing about the lease.
          Effect.retry({
            times: 10,
            while: (error) => error.reason._tag === "WriteTimeout" || error.reason._tag === "ReadTimeout"
          })
        )
        const holder = yield* startInstance(cluster.contactPoints, {
          MIGRATE_KEYSPACE: keyspace,
          MIGRATE_APPLIED_BY: "killed-holder",
          MIGRATE_FOURTH: "1",
          MIGRATE_HOLD: "1",
          MIGRATE_LEASE_TTL: "15"
        })
        yield* holder.printed("holding 4").pipe(Effect.timeout("120 seconds"))
        yield* holder.signal("SIGKILL")
        const killed = yield* holder.exited
        assert.strictEqual(killed.signal, "SIGKILL")
        assert.match(yield* leaseHolder, /^killed-holder /, "the killed holder left its lease")
        const taker = yield* startInstance(cluster.contactPoints, {
          MIGRATE_KEYSPACE: keyspace,
          MIGRATE_APPLIED_BY: "taker",
          MIGRATE_FOURTH: "1",
          MIGRATE_LEASE_TTL: "5"
        })
        // Runs are read before the lease: a run of the taker seen with the dead lease seen still held ran under it.
        const takerRuns = Effect.map(runs, (all) => all.filter(([migration, by]) => migration === 4 && by === "taker"))
        while (!taker.done()) {
          const ran = yield* takerRuns
          if ((yield* leaseHolder).startsWith("killed-holder ")) {
            assert.deepStrictEqual(ran, [], "the taker ran migration 4 while the dead holder's lease was there")
          }
          yield* Effect.sleep("100 millis")
        }
        const took = yield* taker.exited
        assert.strictEqual(took.code, 0, took.output)
        assert.include(took.output, 'applied [[4,"create_more_things"]]')
        assert.deepStrictEqual((yield* records).at(-1), [4, "taker"])
        assert.deepStrictEqual(
          (yield* runs)
            .filter(([migration]) => migration === 4)
            .map(([, by]) => by)
            .sort(),
          ["killed-holder", "taker"]
        )

        // Schema agreement: migrations run through node 1 only; node 3 serves the new table right after each run.
        const onNode1 = within(yield* pinnedSession(cluster, 1))
        const onNode3 = within(yield* pinnedSession(cluster, 3))
        const tables = [1, 2, 3, 4, 5]
        for (const k of tables) {
          const loader = Migrator.fromRecord(
            Object.fromEntries(
              tables
                .filter((j) => j <= k)
                .map((j) => [
                  `${j}_create_t${j}`,
                  cql`CREATE TABLE IF NOT EXISTS ${identifier("migrator_agreement", `t${j}`)} (id int PRIMARY KEY)`
                ])
            )
          )
          const applied = yield* onNode1(Migrator.run({ loader, keyspace: "migrator_agreement" }))
          assert.deepStrictEqual(applied, [[k, `create_t${k}`]])
          const rows = yield* onNode3(cql`SELECT id FROM ${identifier("migrator_agreement", `t${k}`)}`)
          assert.deepStrictEqual(rows, [])
        }

        // A node that never takes the new schema (frozen right before the change): the wait runs out, typed.
        const third = (yield* cluster.nodes).find((node) => node.index === 3)?.pid
        assert.isDefined(third)
        const createWhileFrozen = cql`CREATE TABLE IF NOT EXISTS migrator_agreement.while_frozen (id int PRIMARY KEY)`
        const freezeThenCreate = Effect.gen(function* () {
          yield* Effect.sync(() => process.kill(third as number, "SIGSTOP"))
          yield* createWhileFrozen
        })
        // Without the library's node health checks, the driver keeps the frozen node up, as after a short pause.
        const onNode1WithoutHealth = within(yield* pinnedSession(cluster, 1, { nodeHealth: false }))
        const exit = yield* onNode1WithoutHealth(
          Effect.exit(
            Migrator.run({
              loader: Migrator.fromRecord({ "6_while_frozen": freezeThenCreate }),
              keyspace: "migrator_agreement",
              schemaAgreementTimeout: "3 seconds"
            })
          )
        ).pipe(Effect.ensuring(Effect.sync(() => process.kill(third as number, "SIGCONT"))))
        const error = migrationErrorOf(exit)
        assert.strictEqual(error.reason._tag, "SchemaAgreement", error.message)
        if (error.reason._tag === "SchemaAgreement") {
          assert.strictEqual(error.reason.id, 6)
          assert.strictEqual(error.reason.name, "while_frozen")
          assert.isAtLeast(error.reason.waitedMillis, 3000)
        }
        assert.include(error.message, 'Migration 6 "while_frozen"')
        assert.notInclude(
          (yield* onNode1(Migrator.applied({ keyspace: "migrator_agreement" }))).map((row) => row.id),
          6
        )

        // Once the node is back, the same migration runs again and is recorded.
        yield* cluster.waitUntilUp(3)
        const rerun = yield* onNode1(
          Migrator.run({
            loader: Migrator.fromRecord({ "6_while_frozen": createWhileFrozen }),
            keyspace: "migrator_agreement"
          })
        )
        assert.deepStrictEqual(rerun, [[6, "while_frozen"]])
        assert.deepStrictEqual(yield* onNode3(cql`SELECT id FROM migrator_agreement.while_frozen`), [])
      }).pipe(Effect.scoped),
    900_000
  )
})
