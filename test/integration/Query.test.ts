import { assert, expectTypeOf, layer } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as CassandraError from "effect-cassandra/CassandraError"
import * as CqlSchema from "effect-cassandra/CqlSchema"
import * as CqlType from "effect-cassandra/CqlType"
import * as Query from "effect-cassandra/Query"
import { sessionWithKeyspace } from "../support/session.ts"

const { cql, identifier } = Query
const { keyspace, layer: sessionLayer } = sessionWithKeyspace("statements")
const writes = identifier(keyspace, "writes")
const many = identifier(keyspace, "many")
const users = identifier(keyspace, "users")

const manyRows = 12_000
const User = Schema.Struct({ id: CqlType.Int, name: CqlType.Text, email: CqlType.Text })

/** A repository built once from the session's template: its methods need nothing from their callers. */
class Users extends Context.Service<
  Users,
  {
    readonly insert: (
      user: typeof User.Type
    ) => Effect.Effect<void, CassandraError.CassandraError | CqlSchema.CqlSchemaError>
    readonly byId: (
      id: number
    ) => Effect.Effect<Option.Option<typeof User.Type>, CassandraError.CassandraError | CqlSchema.CqlSchemaError>
    readonly all: () => Stream.Stream<typeof User.Type, CassandraError.CassandraError | CqlSchema.CqlSchemaError>
    readonly names: (
      ids: ReadonlyArray<number>
    ) => Effect.Effect<ReadonlyArray<Query.Row>, CassandraError.CassandraError>
    readonly renameBoth: (
      a: number,
      b: number,
      name: string
    ) => Effect.Effect<Query.Conditional<Query.Row>, CassandraError.CassandraError>
  }
>()("test/Users") {
  static readonly layer = Layer.effect(
    Users,
    Effect.gen(function* () {
      const cql = yield* Query.template
      const insert = CqlSchema.void({
        Request: User,
        execute: (user) => cql`INSERT INTO ${users} (id, name, email) VALUES (${user.id}, ${user.name}, ${user.email})`
      })
      const byId = CqlSchema.findOneOption({
        Request: CqlType.Int,
        Result: User,
        execute: (id) => cql`SELECT id, name, email FROM ${users} WHERE id = ${id}`
      })
      const all = CqlSchema.stream({
        Result: User,
        execute: () => cql`SELECT id, name, email FROM ${users}`.withOptions({ pageSize: 2 })
      })
      return Users.of({
        insert,
        byId,
        all,
        names: (ids) => cql`SELECT ${Query.identifiers(["id", "name"])} FROM ${users} WHERE id IN ${Query.inList(ids)}`,
        renameBoth: (a, b, name) =>
          cql.batch([
            cql`UPDATE ${users} SET name = ${name} WHERE id = ${a}`,
            cql`UPDATE ${users} SET name = ${name} WHERE id = ${b}`
          ])
      })
    })
  )
}

layer(sessionLayer, { excludeTestServices: true })("Statements", (it) => {
  it.effect("creates the tables", () =>
    Effect.gen(function* () {
      yield* cql`CREATE TABLE ${writes} (k int PRIMARY KEY, v text)`
      yield* cql`CREATE TABLE ${many} (p int, c int, v text, PRIMARY KEY (p, c))`
      yield* cql`CREATE TABLE ${users} (id int PRIMARY KEY, name text, email text)`
    })
  )

  it.effect("gives an empty array for a write, through every way of running it", () =>
    Effect.gen(function* () {
      const insert = (k: number) => cql`INSERT INTO ${writes} (k, v) VALUES (${k}, ${"v"})`
      const rows = yield* insert(1)
      assert.deepStrictEqual(rows, [])
      assert.strictEqual(rows.length, 0)
      assert.deepStrictEqual(yield* Stream.runCollect(insert(2).stream), [])
      const page = yield* insert(3).page()
      assert.deepStrictEqual(page.rows, [])
      assert.isTrue(Option.isNone(page.pageState))
      const result = yield* insert(4).result
      assert.deepStrictEqual(result.rows, [])
      assert.deepStrictEqual(yield* Query.batch([insert(5), insert(6)]), { _tag: "Applied" })
      const bound = yield* Query.template
      assert.deepStrictEqual(yield* bound`INSERT INTO ${writes} (k, v) VALUES (${7}, ${"v"})`, [])
      const count = yield* cql<{ readonly count: bigint }>`SELECT count(*) AS count FROM ${writes}`
      assert.strictEqual(count[0]?.count, 7n)
    })
  )

  it.effect("fails findOne with no row naming the statement, never its values", () =>
    Effect.gen(function* () {
      const secret = 424_242
      const findOne = CqlSchema.findOne({
        Request: CqlType.Int,
        Result: Schema.Struct({ k: CqlType.Int }),
        execute: (k) => cql`SELECT k FROM ${writes} WHERE k = ${k}`
      })
      const findNonEmpty = CqlSchema.findNonEmpty({
        Request: CqlType.Int,
        Result: Schema.Struct({ k: CqlType.Int }),
        execute: (k) => cql`SELECT k FROM ${writes} WHERE k = ${k}`
      })
      for (const find of [Effect.asVoid(findOne(secret)), Effect.asVoid(findNonEmpty(secret))]) {
        const exit = yield* Effect.exit(find)
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
        assert.isTrue(Cause.isNoSuchElementError(error))
        const message = (error as Cause.NoSuchElementError).message
        assert.include(message, `SELECT k FROM "${keyspace}"."writes" WHERE k = ?`)
        assert.notInclude(message, String(secret))
      }
    })
  )

  it.effect(
    "returns every row from findAll and findNonEmpty, fetching all pages",
    () =>
      Effect.gen(function* () {
        yield* Effect.forEach(
          Array.from({ length: manyRows }, (_, c) => c),
          (c) => cql`INSERT INTO ${many} (p, c, v) VALUES (${c % 3}, ${c}, ${"x"})`,
          { concurrency: 64, discard: true }
        )
        const Row = Schema.Struct({ c: CqlType.Int })
        const findAll = CqlSchema.findAll({ Result: Row, execute: () => cql`SELECT c FROM ${many}` })
        const all = yield* findAll()
        assert.strictEqual(all.length, manyRows)
        assert.strictEqual(new Set(all.map((row) => row.c)).size, manyRows)
        const smallPages = CqlSchema.findNonEmpty({
          Request: CqlType.Int,
          Result: Row,
          execute: (p) => cql`SELECT c FROM ${many} WHERE p = ${p}`.withOptions({ pageSize: 1000 })
        })
        const partition = yield* smallPages(1)
        assert.strictEqual(partition.length, manyRows / 3)
        assert.deepStrictEqual(
          partition.map((row) => row.c),
          Array.from({ length: manyRows / 3 }, (_, i) => i * 3 + 1)
        )
      }),
    { timeout: 240_000 }
  )

  it.effect("serves a repository built from the session's template with no session at its call sites", () =>
    Effect.gen(function* () {
      const repository = yield* Users
      const insert = repository.insert({ id: 1, name: "Ada", email: "ada@example.com" })
      // The type checker proves the repository's effects need nothing from their callers.
      expectTypeOf(insert).toEqualTypeOf<
        Effect.Effect<void, CassandraError.CassandraError | CqlSchema.CqlSchemaError, never>
      >()
      expectTypeOf(repository.all()).toEqualTypeOf<
        Stream.Stream<typeof User.Type, CassandraError.CassandraError | CqlSchema.CqlSchemaError, never>
      >()
      const bound = yield* Query.template
      expectTypeOf(bound`SELECT * FROM t`).toEqualTypeOf<Query.Statement<Query.Row, never>>()
      expectTypeOf(bound`SELECT * FROM t`.page()).toEqualTypeOf<
        Effect.Effect<Query.Page<Query.Row>, CassandraError.CassandraError, never>
      >()
      yield* insert
      yield* repository.insert({ id: 2, name: "Grace", email: "grace@example.com" })
      yield* repository.insert({ id: 3, name: "Edsger", email: "edsger@example.com" })
      const found = yield* repository.byId(2)
      assert.deepStrictEqual(found, Option.some({ id: 2, name: "Grace", email: "grace@example.com" }))
      assert.deepStrictEqual(yield* repository.renameBoth(1, 3, "Anon"), { _tag: "Applied" })
      const everyone = yield* Stream.runCollect(repository.all())
      assert.deepStrictEqual(everyone.map((user) => `${user.id}:${user.name}`).sort(), ["1:Anon", "2:Grace", "3:Anon"])
    }).pipe(Effect.provide(Users.layer))
  )

  it.effect("runs a dynamic column list and an IN query of bound values", () =>
    Effect.gen(function* () {
      const repository = yield* Users
      const rows = yield* repository.names([3, 1, 99])
      assert.deepStrictEqual(
        rows.map((row) => Object.keys(row).sort().join(",")),
        ["id,name", "id,name"]
      )
      assert.deepStrictEqual(rows.map((row) => row.id).sort(), [1, 3])
      const columns = ["email", "id"].map((name) => identifier(name))
      const where = Query.join([cql`id IN ${Query.inList([2])}`, cql`name = ${"Grace"}`], " AND ")
      const emails = yield* cql`SELECT ${Query.join(columns)} FROM ${users} WHERE ${where} ALLOW FILTERING`
      assert.deepStrictEqual(
        emails.map((row) => ({ ...row })),
        [{ email: "grace@example.com", id: 2 }]
      )
      const empty = yield* Effect.exit(repository.names([]))
      assert.isTrue(Exit.isFailure(empty))
      const reason = Exit.isFailure(empty) ? Cause.squash(empty.cause) : undefined
      assert.strictEqual((reason as CassandraError.CassandraError).reason._tag, "InvalidArgument")
      // The session keeps serving after the refused statement.
      assert.strictEqual((yield* repository.names([2])).length, 1)
    }).pipe(Effect.provide(Users.layer))
  )

  it.effect("streams a parameterless CqlSchema query and runs parameterless findOneOption and void", () =>
    Effect.gen(function* () {
      const count = CqlSchema.findOneOption({
        Result: Schema.Struct({ count: CqlType.BigInt }),
        execute: () => cql`SELECT count(*) AS count FROM ${users}`
      })
      expectTypeOf(count).toBeCallableWith()
      assert.deepStrictEqual(yield* count(), Option.some({ count: 3n }))
      const stream = CqlSchema.stream({
        Result: Schema.Struct({ id: CqlType.Int }),
        execute: () => cql`SELECT id FROM ${users}`.withOptions({ pageSize: 1 })
      })
      const ids = yield* Stream.runCollect(stream())
      assert.deepStrictEqual(ids.map((row) => row.id).sort(), [1, 2, 3])
      const touch = CqlSchema.void({
        execute: () => cql`UPDATE ${users} SET email = ${"x@example.com"} WHERE id = ${3}`
      })
      yield* touch()
      const withRequest = CqlSchema.findAll({
        Request: CqlType.Int,
        Result: Schema.Struct({ email: CqlType.Text }),
        execute: (id) => cql`SELECT email FROM ${users} WHERE id = ${id}`
      })
      expectTypeOf(withRequest).parameters.toEqualTypeOf<[request: number]>()
      assert.deepStrictEqual(yield* withRequest(3), [{ email: "x@example.com" }])
    })
  )
})
