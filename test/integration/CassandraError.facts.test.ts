import { inspect } from "node:util"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as CassandraError from "effect-cassandra/CassandraError"
import * as Query from "effect-cassandra/Query"
import { Session } from "effect-cassandra/Session"
import { sessionWithKeyspace } from "../support/session.ts"

const { cql } = Query

/** Everything a user or a log could see of an error: its message, its JSON form and its schema-encoded form. */
const visibleForms = (error: CassandraError.CassandraError) => [
  error.message,
  JSON.stringify(error),
  JSON.stringify(Schema.encodeSync(CassandraError.CassandraError)(error))
]

/** A table with one partition of `rows` rows, under a name unique to the test. */
const partitionOf = Effect.fnUntraced(function* (table: string, rows: number) {
  yield* cql`CREATE TABLE ${Query.identifier(table)} (pk int, ck int, v text, PRIMARY KEY (pk, ck))`
  yield* Effect.forEach(
    Array.from({ length: rows }, (_, ck) => ck),
    (ck) => cql`INSERT INTO ${Query.identifier(table)} (pk, ck, v) VALUES (${1}, ${ck}, ${`value-${ck}`})`,
    { concurrency: 8, discard: true }
  )
  return cql`SELECT ck FROM ${Query.identifier(table)} WHERE pk = ${1}`.withOptions({ pageSize: 5 })
})

const { layer: sessionLayer } = sessionWithKeyspace("error_facts")

layer(sessionLayer, { timeout: 120_000 })("CassandraError keeps the facts against a real node", (it) => {
  it.effect("a table dropped between two pages of a read is Invalid (table does not exist), not NoHostAvailable", () =>
    Effect.gen(function* () {
      const read = yield* partitionOf("dropped_between_pages", 20)
      const first = yield* read.page()
      assert.lengthOf(first.rows, 5)
      yield* cql`DROP TABLE dropped_between_pages`
      const error = yield* Effect.flip(read.page(Option.getOrThrow(first.pageState)))
      assert.strictEqual(error.reason._tag, "Invalid", error.message)
      assert.match(error.message, /dropped_between_pages does not exist/)
      assert.isFalse(error.isRetryable)
    })
  )

  it.effect("a table dropped while a stream reads it ends the stream with Invalid (table does not exist)", () =>
    Effect.gen(function* () {
      const read = yield* partitionOf("dropped_while_streaming", 20)
      const error = yield* read.stream.pipe(
        Stream.mapEffect((row) =>
          row.ck === 0 ? Effect.as(cql`DROP TABLE dropped_while_streaming`, row) : Effect.succeed(row)
        ),
        Stream.runDrain,
        Effect.flip
      )
      assert.strictEqual(error.reason._tag, "Invalid", error.message)
      assert.match(error.message, /dropped_while_streaming does not exist/)
      assert.isFalse(error.isRetryable)
    })
  )

  it.effect("a 20 MB value is refused with the request's size and the limit, and the session keeps serving", () =>
    Effect.gen(function* () {
      yield* cql`CREATE TABLE big_values (pk int PRIMARY KEY, data blob)`
      const data = new Uint8Array(20 * 1024 * 1024).fill(0x5a)
      const error = yield* Effect.flip(cql`INSERT INTO big_values (pk, data) VALUES (${1}, ${data})`)
      assert.strictEqual(error.reason._tag, "Invalid", error.message)
      assert.match(error.message, /Request is too big: length 2\d{7} exceeds maximum allowed length 16777216/)
      for (const form of visibleForms(error)) assert.notMatch(form, /5a5a5a5a|ZZZZ/i)
      assert.lengthOf(yield* cql`SELECT pk FROM big_values`, 0)
    })
  )

  it.effect("70,000 bound values on an unprepared statement are reported as a count over 65,535", () =>
    Effect.gen(function* () {
      const session = yield* Session
      yield* cql`CREATE TABLE many_values (pk int PRIMARY KEY)`
      const count = 70_000
      const error = yield* Effect.flip(
        session.execute({
          query: `SELECT pk FROM many_values WHERE pk IN (${Array.from({ length: count }, () => "?").join(",")})`,
          params: Array.from({ length: count }, (_, index) => 1_000_000 + index),
          options: { prepare: false }
        })
      )
      assert.strictEqual(error.reason._tag, "InvalidArgument", error.message)
      assert.include(error.message, "70000")
      assert.include(error.message, "65535")
      for (const form of visibleForms(error)) assert.notMatch(form, /10[0-6]\d{4}/)
    })
  )

  it.effect("an empty set inside a list is reported with the argument the driver names and what it received", () =>
    Effect.gen(function* () {
      yield* cql`CREATE TABLE nested_sets (pk int PRIMARY KEY, sets list<frozen<set<int>>>)`
      const error = yield* Effect.flip(
        cql`INSERT INTO nested_sets (pk, sets) VALUES (${1}, ${[new Set([424242]), new Set<number>()]})`
      )
      assert.strictEqual(error.reason._tag, "InvalidArgument", error.message)
      assert.match(
        error.message,
        /The "list\[\d+\]" argument must be an instance of Buffer or Uint8Array\. Received null: an empty collection inside a collection/
      )
      for (const form of visibleForms(error)) assert.notInclude(form, "424242")
    })
  )

  it.effect("a JSON value of the wrong type is reported with the column and both types, not the value", () =>
    Effect.gen(function* () {
      yield* cql`CREATE TABLE json_values (k text PRIMARY KEY, b boolean, i int, l list<int>)`
      const cases = [
        ['{"k": "a", "b": 7531}', /Error decoding JSON value for b: Expected a boolean value, but got a Integer/],
        ['{"k": "a", "i": 75.31}', /Error decoding JSON value for i: Expected an int value, but got a Double/],
        ['{"k": "a", "l": 7531}', /Error decoding JSON value for l: Expected a list, but got a Integer/]
      ] as const
      for (const [json, facts] of cases) {
        const error = yield* Effect.flip(cql`INSERT INTO json_values JSON ${json}`)
        assert.strictEqual(error.reason._tag, "Invalid", error.message)
        assert.match(error.message, facts)
        for (const form of [...visibleForms(error), String(error), inspect(error)]) assert.notMatch(form, /75\.?31/)
      }
    })
  )
})
