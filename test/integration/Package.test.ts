/**
 * The package as a user installs it: `npm pack` output installed with npm into a fresh project outside the
 * repository, type-checked with the project's own strict settings and run with plain `node` against the test node.
 */
import { execFile } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { testConnection } from "../support/cassandra.ts"

const root = Path.resolve(import.meta.dirname, "..", "..")
const packageJson = JSON.parse(readFileSync(Path.join(root, "package.json"), "utf8"))
const tsc = Path.join(root, "node_modules", "typescript", "bin", "tsc")

/** Runs a command to its end and returns its standard output; fails with everything it printed if it exits non-zero. */
const run = (command: string, args: ReadonlyArray<string>, options: { cwd: string; env?: Record<string, string> }) =>
  Effect.callback<string, Error>((resume) => {
    const child = execFile(
      command,
      args,
      { cwd: options.cwd, env: { ...process.env, ...options.env }, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 },
      (error, stdout, stderr) =>
        resume(
          error === null
            ? Effect.succeed(stdout)
            : Effect.fail(new Error(`${command} ${args.join(" ")} failed:\n${stdout}${stderr}`))
        )
    )
    return Effect.sync(() => child.kill())
  })

const node = (args: ReadonlyArray<string>, options: { cwd: string; env?: Record<string, string> }) =>
  run(process.execPath, args, options)

const npm = (args: ReadonlyArray<string>, cwd: string) => run("npm", args, { cwd })

const temporaryDirectory = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(Path.join(Os.tmpdir(), "effect-cassandra-consumer-"))),
  (directory) => Effect.sync(() => rmSync(directory, { recursive: true, force: true }))
)

// What a user writes: typed writes and reads through CqlSchema, settings from the environment.
const program = `import { Effect, Option, Redacted, Schema } from "effect"
import { CassandraLayer, CqlSchema, CqlType, Query } from "effect-cassandra"

const { cql, identifier } = Query
const keyspace = identifier(process.env.KEYSPACE ?? "consumer")
const users = identifier(process.env.KEYSPACE ?? "consumer", "users")

const User = Schema.Struct({ id: CqlType.Uuid, name: CqlType.Text, visits: CqlType.Int })

const saveUser = CqlSchema.void({
  Request: User,
  execute: (user) => cql\`INSERT INTO \${users} (id, name, visits) VALUES (\${user.id}, \${user.name}, \${user.visits})\`
})

const findUser = CqlSchema.findOneOption({
  Request: CqlType.Uuid,
  Result: User,
  execute: (id) => cql\`SELECT id, name, visits FROM \${users} WHERE id = \${id}\`
})

const program = Effect.gen(function* () {
  yield* cql\`CREATE KEYSPACE IF NOT EXISTS \${keyspace}
    WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}\`
  yield* cql\`CREATE TABLE IF NOT EXISTS \${users} (id uuid PRIMARY KEY, name text, visits int)\`
  const id = crypto.randomUUID()
  yield* saveUser({ id, name: "Ada", visits: 3 })
  const found = yield* findUser(id)
  const visits: number = Option.getOrThrow(found).visits
  console.log(\`read back \${Option.getOrThrow(found).name} with \${visits} visits\`)
  yield* cql\`DROP KEYSPACE \${keyspace}\`
})

const username = process.env.CASSANDRA_USERNAME
const password = process.env.CASSANDRA_PASSWORD

await program.pipe(
  Effect.provide(
    CassandraLayer.layer({
      contactPoints: (process.env.CASSANDRA_CONTACT_POINTS ?? "127.0.0.1").split(","),
      localDataCenter: process.env.CASSANDRA_LOCAL_DC ?? "datacenter1",
      ...(username !== undefined && password !== undefined
        ? { credentials: { username, password: Redacted.make(password) } }
        : {})
    })
  ),
  Effect.runPromise
)
`

// Type-only, so plain node strips it: the type checker must refuse an internal module.
const internalImport = `// @ts-expect-error internal modules are not part of the package's API
import type {} from "effect-cassandra/internal/requestRunner"
`

// Each public module with the names it exports at run time, and whether internal paths stay closed.
const surface = `const installed = await import("effect-cassandra")
const modules = Object.fromEntries(
  Object.entries(installed).map(([name, module]) => [name, Object.keys(module as object).sort()])
)
const refused = async (specifier: string) =>
  import(specifier).then(
    () => false,
    (error: { code?: string }) => error.code === "ERR_PACKAGE_PATH_NOT_EXPORTED"
  )
console.log(
  JSON.stringify({
    modules,
    entry: import.meta.resolve("effect-cassandra"),
    internalRefused: await refused("effect-cassandra/internal/requestRunner"),
    indexRefused: await refused("effect-cassandra/index"),
    subpathSession: Object.keys(await import("effect-cassandra/Session")).length > 0
  })
)
`

const strictOptions = {
  target: "ES2023",
  // Effect's own declarations name Web Crypto types (CryptoKey, JsonWebKey) that only the DOM library declares.
  lib: ["ES2023", "DOM"],
  types: ["node"],
  strict: true,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  verbatimModuleSyntax: true,
  erasableSyntaxOnly: true,
  noEmit: true,
  skipLibCheck: false
}

const tsconfigs = {
  "tsconfig.bundler.json": { module: "ESNext", moduleResolution: "bundler" },
  "tsconfig.nodenext.json": { module: "NodeNext", moduleResolution: "NodeNext" },
  // A monorepo that resolves its own packages to their sources with a generic condition.
  "tsconfig.source.json": { module: "ESNext", moduleResolution: "bundler", customConditions: ["source"] }
}

const installedPackage = "/node_modules/effect-cassandra/"

/** Every declaration file tsc read from the installed package, relative to the package. */
const packageFilesRead = (listing: string) =>
  listing
    .split("\n")
    .map((line) => line.trim().replaceAll("\\", "/"))
    .filter((line) => line.includes(installedPackage))
    .map((line) => line.slice(line.indexOf(installedPackage) + installedPackage.length))

describe("the package as installed from npm pack", () => {
  it.live(
    "type-checks under bundler and nodenext, runs with plain node, exports every module and hides internals",
    () =>
      Effect.gen(function* () {
        const directory = yield* temporaryDirectory
        const packDirectory = Path.join(directory, "pack")
        const consumer = Path.join(directory, "consumer")
        mkdirSync(packDirectory)
        mkdirSync(consumer)

        // prepack builds dist/ first, so the tarball holds what `npm run build` makes of the current src/.
        const packed = JSON.parse(
          yield* npm(["pack", "--json", "--pack-destination", packDirectory], root)
        ) as ReadonlyArray<{ readonly filename: string; readonly files: ReadonlyArray<{ readonly path: string }> }>
        const tarball = packed[0]
        assert.isDefined(tarball)
        const shipped = tarball.files.map((file) => file.path)
        assert.include(shipped, "dist/index.js")
        assert.include(shipped, "dist/index.d.ts")
        assert.isFalse(
          shipped.some((file) => file.startsWith("test/") || file.startsWith("tools/") || file.startsWith("bench/")),
          `the tarball ships only the package: ${shipped.join(", ")}`
        )

        writeFileSync(
          Path.join(consumer, "package.json"),
          JSON.stringify({ name: "consumer", private: true, type: "module" })
        )
        yield* npm(
          [
            "install",
            "--no-audit",
            "--no-fund",
            "--prefer-offline",
            "--no-package-lock",
            Path.join(packDirectory, Path.basename(tarball.filename)),
            `effect@${packageJson.devDependencies.effect}`,
            `@types/node@${packageJson.devDependencies["@types/node"]}`
          ],
          consumer
        )

        writeFileSync(Path.join(consumer, "main.ts"), program)
        writeFileSync(Path.join(consumer, "internal.ts"), internalImport)
        writeFileSync(Path.join(consumer, "surface.ts"), surface)
        for (const [file, resolution] of Object.entries(tsconfigs)) {
          writeFileSync(
            Path.join(consumer, file),
            JSON.stringify({ compilerOptions: { ...strictOptions, ...resolution }, include: ["*.ts"] })
          )
          const listing = yield* node([tsc, "-p", file, "--listFiles"], { cwd: consumer })
          const read = packageFilesRead(listing)
          assert.include(read, "dist/index.d.ts", `${file} resolves effect-cassandra to dist/`)
          assert.deepStrictEqual(
            read.filter((path) => !path.startsWith("dist/")),
            [],
            `${file} reads only dist/ from the package`
          )
        }

        const connection = testConnection()
        const env = {
          CASSANDRA_CONTACT_POINTS: connection.contactPoints.join(","),
          CASSANDRA_LOCAL_DC: connection.localDataCenter,
          KEYSPACE: `consumer_${process.pid}_${Date.now() % 100_000}`,
          ...(connection.credentials === undefined
            ? {}
            : {
                CASSANDRA_USERNAME: connection.credentials.username,
                CASSANDRA_PASSWORD: connection.credentials.password
              })
        }
        const output = yield* node(["main.ts"], { cwd: consumer, env })
        assert.match(output, /read back Ada with 3 visits/)

        const expected = yield* Effect.promise(() => import("../../src/index.ts"))
        const expectedModules = Object.fromEntries(
          Object.entries(expected).map(([name, module]) => [name, Object.keys(module as object).sort()])
        )
        const seen = JSON.parse(yield* node(["surface.ts"], { cwd: consumer }))
        assert.deepStrictEqual(seen.modules, expectedModules, "the installed package exports what src/index.ts does")
        assert.match(seen.entry, /\/node_modules\/effect-cassandra\/dist\/index\.js$/)
        assert.isTrue(seen.internalRefused, "effect-cassandra/internal/* is not importable")
        assert.isTrue(seen.indexRefused, "effect-cassandra/index is not importable")
        assert.isTrue(seen.subpathSession, "effect-cassandra/Session is importable")

        // A consumer resolving its own workspace packages with a generic `source` condition still gets dist/.
        const withSource = JSON.parse(yield* node(["--conditions=source", "surface.ts"], { cwd: consumer }))
        assert.match(withSource.entry, /\/node_modules\/effect-cassandra\/dist\/index\.js$/)
      }).pipe(Effect.scoped),
    240_000
  )
})
