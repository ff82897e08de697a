/**
 * Generation from a live keyspace that uses every CQL type, against the committed module test/generated/every_type.ts
 * (type-checked and lint-checked by `npm run check`): generating it again gives the same bytes, a keyspace created from
 * its definitions generates the same bytes again, the formatter leaves it unchanged, and the command writes it.
 */
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Codegen from "effect-cassandra/Codegen"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Query from "effect-cassandra/Query"
import * as Table from "effect-cassandra/Table"
import { renderKeyspace } from "../../src/internal/codegen.ts"
import { readKeyspace } from "../../src/internal/liveSchema.ts"
import * as EveryType from "../generated/every_type.ts"
import { testConnection } from "../support/cassandra.ts"
import { testOptions, uniqueKeyspace } from "../support/session.ts"

const root = Path.resolve(import.meta.dirname, "..", "..")
const committedPath = Path.join(root, "test", "generated", "every_type.ts")
const committedKeyspace = "every_type"

/**
 * Every CQL type: primitives, nested frozen collections, tuples, UDTs in UDTs and collections, vectors of every kind,
 * counters (static too); names that are hard to generate; legacy tables; and what the module leaves out.
 */
const everyTypeDdl = (ks: Query.Identifier): ReadonlyArray<Query.Statement> => [
  Query.cql`CREATE TYPE ${ks}."GeoPoint" (lat double, lon double)`,
  Query.cql`CREATE TYPE ${ks}.address (street text, zip int, point frozen<"GeoPoint">, lines list<text>, extra frozen<map<text, frozen<set<int>>>>)`,
  Query.cql`CREATE TYPE ${ks}.contact (home frozen<address>, phones frozen<list<frozen<tuple<text, varchar>>>>)`,
  Query.cql`CREATE TABLE ${ks}.primitives (
    id uuid PRIMARY KEY, c_ascii ascii, c_bigint bigint, c_blob blob, c_boolean boolean, c_date date,
    c_decimal decimal, c_double double, c_duration duration, c_float float, c_inet inet, c_int int,
    c_smallint smallint, c_text text, c_time time, c_timestamp timestamp, c_timeuuid timeuuid, c_tinyint tinyint,
    c_varchar varchar, c_varint varint)`,
  Query.cql`CREATE TABLE ${ks}.nested (
    tenant text, bucket int, "createdAt" timeuuid, seq bigint, region text static,
    c_list list<int>, c_set set<frozen<list<text>>>, c_map map<text, frozen<map<int, frozen<set<text>>>>>,
    c_frozen frozen<list<frozen<map<int, int>>>>, c_tuple tuple<int, frozen<list<int>>, frozen<address>>,
    c_udt frozen<contact>, c_point_live "GeoPoint", c_udts list<frozen<address>>, c_udt_map map<frozen<"GeoPoint">, frozen<set<frozen<address>>>>,
    c_vector vector<float, 3>, c_vector_list vector<frozen<list<int>>, 2>, c_list_tuple list<frozen<tuple<int, text>>>,
    PRIMARY KEY ((tenant, bucket), "createdAt", seq)) WITH CLUSTERING ORDER BY ("createdAt" DESC, seq ASC)`,
  Query.cql`CREATE TABLE ${ks}.page_views (page text, day date, total counter static, views counter, visits counter, PRIMARY KEY (page, day))`,
  // Types named like a primitive in another case and like a collection keyword (printed unquoted by Cassandra).
  Query.cql`CREATE TYPE ${ks}."Text" (a int)`,
  Query.cql`CREATE TYPE ${ks}."list" (a int)`,
  // A table named like a JavaScript global, with columns named like Object.prototype's members and a reserved word.
  Query.cql`CREATE TABLE ${ks}.date (id int PRIMARY KEY, "constructor" text, "toString" text, "select" int, "Key" int,
    c_text_udt frozen<"Text">, c_list_udt frozen<"list">, c_vector_text vector<text, 2>,
    c_list_vector list<frozen<vector<float, 2>>>, c_map_vector map<int, frozen<vector<int, 2>>>,
    c_tuple_udts tuple<frozen<"Text">, frozen<address>>)`,
  // COMPACT STORAGE tables, generated as the tables CQL shows.
  Query.cql`CREATE TABLE ${ks}.legacy (id int PRIMARY KEY, v int) WITH COMPACT STORAGE`,
  Query.cql`CREATE TABLE ${ks}.legacy_dense (id int, ck int, PRIMARY KEY (id, ck)) WITH COMPACT STORAGE`,
  // What the module leaves out: a materialized view, indexes and a dropped column.
  Query.cql`CREATE MATERIALIZED VIEW ${ks}.by_int AS SELECT id, c_int FROM ${ks}.primitives WHERE id IS NOT NULL AND c_int IS NOT NULL PRIMARY KEY (c_int, id)`,
  Query.cql`CREATE INDEX ON ${ks}.nested (c_list)`,
  Query.cql`CREATE INDEX ON ${ks}.nested (c_vector) USING 'sai'`,
  Query.cql`ALTER TABLE ${ks}.nested ADD gone int`,
  Query.cql`ALTER TABLE ${ks}.nested DROP gone`
]

const createKeyspace = (name: string, ddl: (ks: Query.Identifier) => ReadonlyArray<Query.Statement>) => {
  const ks = Query.identifier(name)
  return Effect.acquireRelease(
    Effect.gen(function* () {
      yield* Query.cql`CREATE KEYSPACE ${ks} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`
      for (const statement of ddl(ks)) yield* statement
    }),
    () => Effect.ignore(Query.cql`DROP KEYSPACE IF EXISTS ${ks}`)
  )
}

/** The module of a live keyspace, written as if it were the committed keyspace. */
const generateAs = (keyspace: string) =>
  Effect.map(readKeyspace(keyspace), (live) => {
    const module = renderKeyspace({ ...Option.getOrThrow(live), name: committedKeyspace })
    if (typeof module !== "string") throw new Error(module.problems.join("; "))
    return module
  })

const run = (command: string, args: ReadonlyArray<string>, input?: string) =>
  Effect.callback<string, Error>((resume) => {
    const child = execFile(
      command,
      args,
      { cwd: root, maxBuffer: 16 * 1024 * 1024, timeout: 120_000 },
      (error, stdout, stderr) =>
        resume(
          error === null
            ? Effect.succeed(stdout)
            : Effect.fail(new Error(`${command} ${args.join(" ")} failed:\n${stdout}${stderr}`))
        )
    )
    if (input !== undefined) child.stdin?.end(input)
    return Effect.sync(() => child.kill())
  })

/** Runs the generate command, with the exit code and both outputs whatever the code. */
const generateCommand = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.callback<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = execFile(
      process.execPath,
      ["--conditions=effect-cassandra/source", Path.join(root, "src", "internal", "cli.ts"), ...args],
      { cwd: root, timeout: 120_000, env: { ...process.env, ...env } },
      (error, stdout, stderr) =>
        resume(Effect.succeed({ code: error === null ? 0 : Number(error.code ?? -1), stdout, stderr }))
    )
    return Effect.sync(() => child.kill())
  })

const session = CassandraLayer.layer(testOptions())

describe("Codegen", () => {
  it.live(
    "generates the committed module from a keyspace of every CQL type, and the same again from its own definitions",
    () =>
      Effect.gen(function* () {
        const original = uniqueKeyspace("codegen_every_type")
        yield* createKeyspace(original, everyTypeDdl)
        const generated = yield* generateAs(original)
        // Fails when the committed module is not what the generator writes now; `vitest -u` writes it again.
        yield* Effect.promise(() => expect(generated).toMatchFileSnapshot(committedPath))
        const committed = readFileSync(committedPath, "utf8")

        // Created from the generated definitions' CREATE statements, the keyspace generates the same bytes.
        const copy = uniqueKeyspace("codegen_round_trip")
        yield* createKeyspace(copy, () => [])
        for (const type of EveryType.definitions.types) yield* Table.createType(Table.userType(copy, type.schema))
        for (const table of EveryType.definitions.tables) yield* Table.create(Table.withKeyspace(table, copy))
        assert.strictEqual(yield* generateAs(copy), committed)
      }).pipe(Effect.scoped, Effect.provide(session))
  )

  it.live("writes a module the formatter leaves as it is", () =>
    Effect.gen(function* () {
      const committed = readFileSync(committedPath, "utf8")
      const formatted = yield* run(
        process.execPath,
        [
          Path.join(root, "node_modules", "@biomejs", "biome", "bin", "biome"),
          "format",
          "--stdin-file-path=every_type.ts"
        ],
        committed
      )
      assert.strictEqual(formatted, committed)
    })
  )

  it.live("the generate command writes the module of a keyspace to a file", () =>
    Effect.gen(function* () {
      const keyspace = uniqueKeyspace("codegen_cli")
      yield* createKeyspace(keyspace, everyTypeDdl)
      const directory = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(Path.join(Os.tmpdir(), "effect-cassandra-generate-"))),
        (path) => Effect.sync(() => rmSync(path, { recursive: true, force: true }))
      )
      const connection = testConnection()
      yield* run(process.execPath, [
        "--conditions=effect-cassandra/source",
        Path.join(root, "src", "internal", "cli.ts"),
        "generate",
        "--keyspace",
        keyspace,
        "--out",
        directory,
        "--contact-points",
        connection.contactPoints.join(","),
        "--local-data-center",
        connection.localDataCenter
      ])
      assert.strictEqual(
        readFileSync(Path.join(directory, `${keyspace}.ts`), "utf8"),
        yield* Codegen.generate(keyspace)
      )
      const missing = yield* Effect.flip(Codegen.generate(`${keyspace}_gone`))
      assert.strictEqual(missing.message, `The keyspace ${keyspace}_gone cannot be generated: it does not exist`)
    }).pipe(Effect.scoped, Effect.provide(session))
  )

  it.live(
    "the generate command reports bad arguments and failures in a line, with an exit code and no stack trace",
    () =>
      Effect.gen(function* () {
        const connection = testConnection()
        const target = [
          "--contact-points",
          connection.contactPoints.join(","),
          "--local-data-center",
          connection.localDataCenter
        ]
        const usage =
          "Usage: effect-cassandra generate --keyspace KS [--out DIR] [--contact-points HOST,HOST] [--local-data-center DC]"
        assert.deepStrictEqual(yield* generateCommand(["generate"]), {
          code: 2,
          stdout: "",
          stderr: `--keyspace is required\n${usage}\n`
        })
        assert.deepStrictEqual(yield* generateCommand(["generate", "--keyspace", "no_such_keyspace", ...target]), {
          code: 1,
          stdout: "",
          stderr: "The keyspace no_such_keyspace cannot be generated: it does not exist\n"
        })
        // Nothing listens on port 1: the connection fails, and neither a stack trace nor the password is printed.
        const password = "pa55-w0rd-never-printed"
        const unreachable = yield* generateCommand(
          ["generate", "--keyspace", "ks", "--contact-points", "127.0.0.50:1", "--local-data-center", "dc1"],
          { CASSANDRA_USERNAME: "someone", CASSANDRA_PASSWORD: password }
        )
        assert.strictEqual(unreachable.code, 1)
        assert.notInclude(unreachable.stderr, password)
        assert.notMatch(unreachable.stderr, /^\s+at /m)
        assert.strictEqual(unreachable.stderr.trimEnd().split("\n").length, 1)
        assert.include(unreachable.stderr, "127.0.0.50:1")

        // An output directory that cannot be made (a file is in the way): a line, exit code 1.
        const keyspace = uniqueKeyspace("codegen_cli_out")
        yield* createKeyspace(keyspace, () => [])
        const file = yield* Effect.acquireRelease(
          Effect.sync(() => {
            const directory = mkdtempSync(Path.join(Os.tmpdir(), "effect-cassandra-generate-"))
            writeFileSync(Path.join(directory, "taken"), "")
            return directory
          }),
          (path) => Effect.sync(() => rmSync(path, { recursive: true, force: true }))
        )
        const blocked = yield* generateCommand([
          "generate",
          "--keyspace",
          keyspace,
          "--out",
          Path.join(file, "taken", "dir"),
          ...target
        ])
        assert.strictEqual(blocked.code, 1)
        assert.notMatch(blocked.stderr, /^\s+at /m)
        assert.strictEqual(blocked.stderr.trimEnd().split("\n").length, 1)
        assert.include(blocked.stderr, "ENOTDIR")
      }).pipe(Effect.scoped, Effect.provide(session))
  )
})
