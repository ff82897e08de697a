import { assert, describe, it, layer } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as CassandraError from "effect-cassandra/CassandraError"
import * as CqlSchema from "effect-cassandra/CqlSchema"
import * as CqlType from "effect-cassandra/CqlType"
import * as Query from "effect-cassandra/Query"
import * as Session from "effect-cassandra/Session"
import * as Topology from "effect-cassandra/Topology"
import { sessionWithKeyspace, testOptions } from "../support/session.ts"

const { cql, identifier } = Query

const reasonOf = <A, R>(effect: Effect.Effect<A, CassandraError.CassandraError, R>) =>
  Effect.map(Effect.flip(effect), (error) => error.reason._tag)

const User = Schema.Struct({ id: CqlType.Int, name: CqlType.Text, email: Schema.NullOr(CqlType.Text) })

const setup = sessionWithKeyspace("session")

// Big enough (about 10 MB in one page) that a read of it stays in flight long after the request is sent.
const createBlobs = Effect.gen(function* () {
  yield* cql`CREATE TABLE IF NOT EXISTS blobs (p int, c int, data blob, PRIMARY KEY (p, c))`
  const chunk = new Uint8Array(16 * 1024).fill(7)
  yield* Effect.forEach(
    Array.from({ length: 600 }, (_, c) => c),
    (c) => cql`INSERT INTO blobs (p, c, data) VALUES (${1}, ${c}, ${chunk})`,
    { concurrency: 16, discard: true }
  )
  return cql`SELECT * FROM blobs WHERE p = ${1}`.withOptions({ pageSize: 600 })
})

layer(setup.layer, { timeout: 120_000, excludeTestServices: true })("session against a real Cassandra", (it) => {
  it.effect("creates a table, writes a row and reads it back through the layer", () =>
    Effect.gen(function* () {
      yield* cql`CREATE TABLE users (id int PRIMARY KEY, name text, email text)`
      yield* cql`INSERT INTO users (id, name, email) VALUES (${1}, ${"Ada"}, ${"ada@example.com"})`
      const rows = yield* cql`SELECT id, name, email FROM users WHERE id = ${1}`
      assert.deepStrictEqual(
        rows.map((row) => ({ ...row })),
        [{ id: 1, name: "Ada", email: "ada@example.com" }]
      )
      const nodes = yield* Topology.Topology.use((topology) => topology.nodes)
      assert.isTrue(nodes.length >= 1 && nodes.every((node) => node.state === "up"))
    })
  )

  it.effect("binds interpolated values as parameters, never as text", () =>
    Effect.gen(function* () {
      const hostile = "x'); DROP TABLE users; --"
      const statement = cql`INSERT INTO users (id, name) VALUES (${2}, ${hostile})`
      assert.strictEqual(statement.text, "INSERT INTO users (id, name) VALUES (?, ?)")
      assert.deepStrictEqual(statement.params, [2, hostile])
      assert.notInclude(JSON.stringify(statement), hostile)
      yield* statement
      const rows = yield* cql`SELECT name FROM users WHERE id = ${2}`
      assert.strictEqual(rows[0]?.name, hostile)
    })
  )

  it.effect("writes identifiers quoted and refuses invalid ones before sending", () =>
    Effect.gen(function* () {
      const table = cql`SELECT count(*) FROM ${identifier(setup.keyspace, "users")}`
      assert.strictEqual(table.text, `SELECT count(*) FROM "${setup.keyspace}"."users"`)
      const reason = yield* reasonOf(cql`SELECT * FROM ${identifier("users; DROP TABLE users")}`)
      assert.strictEqual(reason, "InvalidIdentifier")
      assert.lengthOf(yield* cql`SELECT id FROM users WHERE id = ${1}`, 1)
    })
  )

  it.effect("decodes rows with CqlSchema helpers shaped like effect/sql's SqlSchema", () =>
    Effect.gen(function* () {
      const insert = CqlSchema.void({
        Request: User,
        execute: (user) => cql`INSERT INTO users (id, name, email) VALUES (${user.id}, ${user.name}, ${user.email})`
      })
      yield* insert({ id: 10, name: "Grace", email: null })
      yield* insert({ id: 11, name: "Linus", email: "linus@example.com" })
      const byId = {
        Request: CqlType.Int,
        Result: User,
        execute: (id: number) => cql`SELECT id, name, email FROM users WHERE id = ${id}`
      }
      assert.deepStrictEqual(yield* CqlSchema.findOne(byId)(10), { id: 10, name: "Grace", email: null })
      assert.deepStrictEqual(yield* CqlSchema.findOneOption(byId)(99), Option.none())
      const missing = yield* Effect.flip(CqlSchema.findOne(byId)(99))
      assert.isTrue(Cause.isNoSuchElementError(missing))
      assert.isTrue(Cause.isNoSuchElementError(yield* Effect.flip(CqlSchema.findNonEmpty(byId)(99))))
      const both = yield* CqlSchema.findAll({
        Request: Schema.Array(CqlType.Int),
        Result: User,
        execute: (ids) => cql`SELECT id, name, email FROM users WHERE id IN ${ids}`
      })([10, 11])
      assert.deepStrictEqual(
        both.map((user) => user.name),
        ["Grace", "Linus"]
      )
    })
  )

  it.effect("names the statement, row and column of a row that does not match its Schema, without values", () =>
    Effect.gen(function* () {
      yield* cql`INSERT INTO users (id, name, email) VALUES (${20}, ${"secret-name-value"}, ${"not-an-int"})`
      const error = yield* Effect.flip(
        CqlSchema.findAll({
          Request: Schema.Void,
          Result: Schema.Struct({ id: CqlType.Int, email: CqlType.Int }),
          execute: () => cql`SELECT id, email FROM users WHERE id = 20`
        })(undefined)
      )
      assert.instanceOf(error, CqlSchema.CqlSchemaError)
      assert.strictEqual(error.direction, "Result")
      assert.strictEqual(error.rowIndex, 0)
      assert.strictEqual(error.column, "email")
      assert.include(error.message, "SELECT id, email FROM users WHERE id = 20")
      assert.notInclude(error.message, "not-an-int")
    })
  )

  it.effect("rejects a request its Schema cannot encode before sending, without the value", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        CqlSchema.void({
          Request: Schema.Struct({ id: CqlType.TinyInt }),
          execute: (request) => cql`INSERT INTO users (id) VALUES (${request.id})`
        })({ id: 4242 })
      )
      assert.instanceOf(error, CqlSchema.CqlSchemaError)
      assert.strictEqual(error.direction, "Request")
      assert.strictEqual(error.column, "id")
      assert.notInclude(error.message, "4242")
      assert.lengthOf(yield* cql`SELECT id FROM users WHERE id = ${4242}`, 0)
    })
  )

  it.effect("streams a large partition page by page and resumes from a page-state token", () =>
    Effect.gen(function* () {
      yield* cql`CREATE TABLE events (day text, seq int, payload text, PRIMARY KEY (day, seq))`
      yield* Effect.forEach(
        Array.from({ length: 1000 }, (_, seq) => seq),
        (seq) => cql`INSERT INTO events (day, seq, payload) VALUES (${"d1"}, ${seq}, ${`event-${seq}`})`,
        { concurrency: 32, discard: true }
      )
      const all = cql`SELECT seq FROM events WHERE day = ${"d1"}`.withOptions({ pageSize: 100 })
      const seqs = yield* Stream.runCollect(Stream.map(all.stream, (row) => row.seq as number))
      assert.deepStrictEqual(
        seqs,
        Array.from({ length: 1000 }, (_, seq) => seq)
      )

      const first = yield* all.page()
      assert.lengthOf(first.rows, 100)
      assert.isTrue(Option.isSome(first.pageState))
      const second = yield* all.page(Option.getOrThrow(first.pageState))
      assert.deepStrictEqual(
        second.rows.map((row) => row.seq),
        Array.from({ length: 100 }, (_, index) => index + 100)
      )

      const decoded = yield* CqlSchema.stream({
        Request: Schema.String,
        Result: Schema.Struct({ seq: CqlType.Int, payload: CqlType.Text }),
        execute: (day) => cql`SELECT seq, payload FROM events WHERE day = ${day}`.withOptions({ pageSize: 64 })
      })("d1").pipe(Stream.take(3), Stream.runCollect)
      assert.deepStrictEqual(decoded, [
        { seq: 0, payload: "event-0" },
        { seq: 1, payload: "event-1" },
        { seq: 2, payload: "event-2" }
      ])
    })
  )

  it.effect("fetches only the pages a consumer pulls", () =>
    Effect.gen(function* () {
      const session = yield* Session.Session
      let pages = 0
      const counting: Session.Session = {
        ...session,
        execute: (request) => Effect.tap(session.execute(request), () => Effect.sync(() => pages++))
      }
      const rows = yield* cql`SELECT seq FROM events WHERE day = ${"d1"}`
        .withOptions({ pageSize: 100 })
        .stream.pipe(Stream.take(150), Stream.runCollect, Effect.provideService(Session.Session, counting))
      assert.lengthOf(rows, 150)
      assert.strictEqual(pages, 2)
    })
  )

  it.effect("runs logged, unlogged and counter batches", () =>
    Effect.gen(function* () {
      yield* cql`CREATE TABLE page_views (page text PRIMARY KEY, views counter)`
      const logged = yield* Query.batch([
        cql`INSERT INTO users (id, name) VALUES (${30}, ${"a"})`,
        cql`INSERT INTO users (id, name) VALUES (${31}, ${"b"})`
      ])
      assert.strictEqual(logged._tag, "Applied")
      yield* Query.batch([cql`INSERT INTO users (id, name) VALUES (${32}, ${"c"})`], { type: "unlogged" })
      yield* Query.batch(
        [
          cql`UPDATE page_views SET views = views + ${3n} WHERE page = ${"home"}`,
          cql`UPDATE page_views SET views = views + ${4n} WHERE page = ${"home"}`
        ],
        { type: "counter" }
      )
      assert.lengthOf(yield* cql`SELECT id FROM users WHERE id IN (30, 31, 32)`, 3)
      const views = yield* cql`SELECT views FROM page_views WHERE page = ${"home"}`
      assert.strictEqual(views[0]?.views, 7n)
    })
  )

  it.effect("reports whether a conditional statement applied, with the current values when not", () =>
    Effect.gen(function* () {
      const insertIfAbsent = CqlSchema.conditional({
        Request: User,
        Result: User,
        execute: (user) =>
          cql`INSERT INTO users (id, name, email) VALUES (${user.id}, ${user.name}, ${user.email}) IF NOT EXISTS`
      })
      assert.deepStrictEqual(yield* insertIfAbsent({ id: 40, name: "first", email: null }), { _tag: "Applied" })
      assert.deepStrictEqual(yield* insertIfAbsent({ id: 40, name: "second", email: null }), {
        _tag: "NotApplied",
        current: [{ id: 40, name: "first", email: null }]
      })
      const update = yield* cql`UPDATE users SET name = ${"third"} WHERE id = ${40} IF name = ${"nobody"}`.conditional
      assert.strictEqual(update._tag, "NotApplied")
      assert.deepStrictEqual(update._tag === "NotApplied" ? update.current[0]?.name : undefined, "first")
    })
  )

  it.effect("gives typed reasons for bad input and keeps serving", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* reasonOf(cql`SELEC * FROM users`), "Syntax")
      assert.strictEqual(yield* reasonOf(cql`SELECT * FROM no_such_table`), "Invalid")
      assert.strictEqual(yield* reasonOf(cql`SELECT * FROM no_such_keyspace.users`), "Invalid")
      assert.strictEqual(
        yield* reasonOf(cql`INSERT INTO users (id, name) VALUES (${"not a number"}, ${"x"})`),
        "InvalidArgument"
      )
      const missing = yield* Effect.flip(cql`INSERT INTO users (id, name) VALUES (?, ?)`)
      assert.strictEqual(missing.reason._tag, "Invalid")
      assert.include(missing.message, "bound variables")
      assert.strictEqual(yield* reasonOf(cql`INSERT INTO users (id, name) VALUES (${null}, ${"x"})`), "Invalid")
      assert.strictEqual(
        yield* reasonOf(
          cql`CREATE TABLE big_keys (k text PRIMARY KEY)`.pipe(
            Effect.andThen(cql`INSERT INTO big_keys (k) VALUES (${"k".repeat(70_000)})`)
          )
        ),
        "Invalid"
      )
      assert.lengthOf(yield* cql`SELECT id FROM users WHERE id = ${1}`, 1)
    })
  )

  it.effect("stops waiting at once when interrupted, drops the late result and returns in-flight to zero", () =>
    Effect.gen(function* () {
      const session = yield* Session.Session
      const slow = yield* createBlobs
      const fiber = yield* Effect.forkChild(slow)
      yield* session.inFlight.pipe(Effect.repeat({ schedule: Schedule.spaced("1 millis"), until: (n) => n > 0 }))
      yield* Fiber.interrupt(fiber)
      assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(fiber)))
      yield* session.inFlight.pipe(Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (n) => n === 0 }))
      const timedOut = yield* reasonOf(slow.withOptions({ timeout: "1 millis" }))
      assert.strictEqual(timedOut, "ClientTimeout")
      assert.lengthOf(
        yield* slow
          .withOptions({ pageSize: 10 })
          .page()
          .pipe(Effect.map((page) => page.rows)),
        10
      )
    })
  )
  it.effect("drains requests in flight on close, then refuses new ones", () =>
    Effect.gen(function* () {
      const slow = yield* createBlobs
      const scope = yield* Scope.make()
      const session = yield* Session.make(testOptions({ keyspace: setup.keyspace })).pipe(Scope.provide(scope))
      const fibers = yield* Effect.forEach(
        Array.from({ length: 8 }, () => slow),
        (statement) => Effect.forkChild(Effect.provideService(statement, Session.Session, session))
      )
      yield* session.inFlight.pipe(Effect.repeat({ schedule: Schedule.spaced("1 millis"), until: (n) => n > 0 }))
      yield* Scope.close(scope, Exit.void)
      const results = yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(
        results.map((rows) => rows.length),
        Array.from({ length: 8 }, () => 600)
      )
      assert.strictEqual(yield* session.inFlight, 0)
      const refused = yield* Effect.flip(
        session.execute({ query: "SELECT release_version FROM system.local", params: [], options: {} })
      )
      assert.strictEqual(refused.reason._tag, "SessionClosed")
    })
  )
})

describe("session lifecycle", () => {
  it.live("fails with a typed NoHostAvailable within the connect timeout when no node answers", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Session.make(testOptions({ contactPoints: ["127.0.0.254:9999"], connectTimeout: "2 seconds" }))
      )
      assert.strictEqual(error.reason._tag, "NoHostAvailable")
    })
  )

  it.live("refuses throttle limits that would block every request", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Session.make(testOptions({ throttle: { maxInFlight: 0, maxQueued: 10 } })))
      assert.strictEqual(error.reason._tag, "Configuration")
      assert.include(error.message, "maxInFlight")
    })
  )

  it.live("fails with a typed reason when the local data center does not exist", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Session.make(testOptions({ localDataCenter: "no-such-dc" })))
      assert.include(error.message, "no-such-dc")
    })
  )
})
