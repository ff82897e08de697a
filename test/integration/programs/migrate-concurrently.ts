/**
 * One application instance starting up: runs the migrations of test/cluster/Migrator.test.ts, which starts several
 * of these at once (and kills one of them mid-migration), then prints what this instance applied.
 *
 * Each migration first records that it ran in `<keyspace>.runs`, so the test can count how often each one ran.
 * With MIGRATE_HOLD=1, migration 4 prints "holding 4" and never ends, for the test to kill the process there. With
 * MIGRATE_PAUSE=1, it prints "pausing 4" and blocks the process for 3 seconds, for the test to stop it (SIGSTOP)
 * there; once resumed, it runs `runs` row 41 at once, then goes on.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Duration, Effect, Layer } from "effect"
import * as CassandraLayer from "../../../src/Layer.ts"
import * as Migrator from "../../../src/Migrator.ts"
import * as Query from "../../../src/Query.ts"

const { cql, identifier } = Query
const keyspace = process.env.MIGRATE_KEYSPACE ?? ""
const appliedBy = process.env.MIGRATE_APPLIED_BY ?? ""
const withFourth = process.env.MIGRATE_FOURTH === "1"
const hold = process.env.MIGRATE_HOLD === "1"
const pause = process.env.MIGRATE_PAUSE === "1"

const recordRun = (migration: number) =>
  cql`INSERT INTO ${identifier(keyspace, "runs")} (migration, run, applied_by) VALUES (${migration}, now(), ${appliedBy})`

const migrations: Record<string, Migrator.Migration> = {
  "1_create_things": Effect.gen(function* () {
    yield* recordRun(1)
    yield* cql`CREATE TABLE ${identifier(keyspace, "things")} (id int PRIMARY KEY, label text)`
  }),
  "2_first_thing": Effect.gen(function* () {
    yield* recordRun(2)
    yield* cql`INSERT INTO ${identifier(keyspace, "things")} (id, label) VALUES (1, 'first')`
  }),
  "3_add_colour": Effect.gen(function* () {
    yield* recordRun(3)
    yield* cql`ALTER TABLE ${identifier(keyspace, "things")} ADD colour text`
  }),
  ...(withFourth
    ? {
        "4_create_more_things": Effect.gen(function* () {
          yield* recordRun(4)
          if (hold) {
            console.log("holding 4")
            yield* Effect.never
          }
          if (pause) {
            console.log("pausing 4")
            // Blocks timers too, so that nothing but the migration's own next step runs first once the process resumes.
            yield* Effect.sync(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3_000))
            yield* recordRun(41)
          }
          yield* cql`CREATE TABLE ${identifier(keyspace, "more_things")} (id int PRIMARY KEY)`
        })
      }
    : {})
}

const program = Effect.gen(function* () {
  const applied = yield* Migrator.run({
    loader: Migrator.fromRecord(migrations),
    keyspace,
    appliedBy,
    leaseTtl: Duration.seconds(Number(process.env.MIGRATE_LEASE_TTL ?? "30"))
  })
  console.log(`applied ${JSON.stringify(applied)}`)
})

const CassandraLive = CassandraLayer.layer({
  contactPoints: (process.env.CASSANDRA_CONTACT_POINTS ?? "").split(","),
  localDataCenter: process.env.CASSANDRA_LOCAL_DC ?? "datacenter1"
})

program.pipe(Effect.provide(Layer.orDie(CassandraLive)), NodeRuntime.runMain)
