import { inspect } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import type * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Logging from "effect-cassandra/Logging"
import * as Query from "effect-cassandra/Query"
import type * as Session from "effect-cassandra/Session"
import { recordingTracer } from "../support/programs.ts"
import { testOptions, uniqueKeyspace } from "../support/session.ts"

const { cql, identifier } = Query

interface Line {
  readonly level: string
  readonly message: unknown
  readonly annotations: Readonly<Record<string, unknown>>
  readonly cause?: string | undefined
}

/** Loggers that keep every line, structured and in the text formats applications print. */
const capturingLoggers = () => {
  const lines: Array<Line> = []
  const texts: Array<string> = []
  const layer = Logger.layer([
    Logger.map(Logger.formatStructured, (line) => {
      lines.push(line)
    }),
    Logger.map(Logger.formatLogFmt, (text) => {
      texts.push(text)
    }),
    Logger.map(Logger.formatJson, (text) => {
      texts.push(text)
    })
  ])
  return { lines, texts, layer }
}

/**
 * Runs a program on a session built with the capturing loggers, the given minimum log level and, when given, the
 * driver level; returns what was logged, the session's shutdown included.
 */
const withCapturedLogs = <A, E>(
  program: Effect.Effect<A, E, CassandraLayer.Services>,
  settings: {
    readonly minimum: LogLevel.LogLevel
    readonly driverLevel?: Logging.DriverLogLevel
    readonly options?: Partial<Session.Options>
  }
) => {
  const capture = capturingLoggers()
  const session = CassandraLayer.layer(testOptions(settings.options))
  return program.pipe(
    Effect.provide(
      settings.driverLevel === undefined ? session : session.pipe(Layer.provide(Logging.layer(settings.driverLevel)))
    ),
    Effect.exit,
    Effect.provide(capture.layer),
    Effect.provideService(References.MinimumLogLevel, settings.minimum),
    Effect.map((exit) => ({ exit, ...capture }))
  )
}

const node = () => `${testOptions().contactPoints[0]}:9042`

/** A statement the server answers with a warning: more replicas than nodes. */
const warnedAbout = Effect.gen(function* () {
  const keyspace = identifier(uniqueKeyspace("observed_warning"))
  yield* cql`CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}`
  yield* cql`DROP KEYSPACE ${keyspace}`
})

describe("driver logs in Effect's logger", () => {
  it.live("arrive at the mapped levels, annotated with the driver component and the node", () =>
    Effect.gen(function* () {
      const { exit, lines } = yield* withCapturedLogs(cql`SELECT release_version FROM system.local`, {
        minimum: "All",
        driverLevel: "verbose"
      })
      assert.isTrue(Exit.isSuccess(exit))
      const find = (level: string, component: string, message: RegExp) =>
        lines.find(
          (line) =>
            line.level === level && line.annotations.component === component && message.test(String(line.message))
        )
      assert.isDefined(find("INFO", "Client", /^Connecting to cluster using/))
      const connecting = find("INFO", "Connection", /^Connecting to /)
      assert.strictEqual(connecting?.annotations.node, node())
      const socket = find("DEBUG", "Connection", /^Socket connected to /)
      assert.strictEqual(socket?.annotations.node, node())
      assert.isDefined(find("INFO", "Client", /^Shutting down$/))
    })
  )

  it.live("honour the application's minimum log level", () =>
    Effect.gen(function* () {
      const { exit, lines } = yield* withCapturedLogs(cql`SELECT release_version FROM system.local`, {
        minimum: "Info",
        driverLevel: "verbose"
      })
      assert.isTrue(Exit.isSuccess(exit))
      assert.isTrue(lines.some((line) => line.level === "INFO"))
      assert.isFalse(lines.some((line) => line.level === "DEBUG"))
    })
  )

  it.live("forward warnings by default, and nothing when the bridge is off", () =>
    Effect.gen(function* () {
      const byDefault = yield* withCapturedLogs(warnedAbout, { minimum: "All" })
      assert.isTrue(Exit.isSuccess(byDefault.exit))
      const warnings = byDefault.lines.filter((line) => line.annotations.component === "RequestHandler")
      assert.deepStrictEqual(
        warnings.map((line) => line.level),
        ["WARN"]
      )
      assert.match(String(warnings[0]?.message), /replication factor 3/)
      assert.isFalse(byDefault.lines.some((line) => line.level === "INFO" || line.level === "DEBUG"))

      const off = yield* withCapturedLogs(warnedAbout, { minimum: "All", driverLevel: "off" })
      assert.isTrue(Exit.isSuccess(off.exit))
      assert.deepStrictEqual(off.lines, [])
    })
  )
})

/** Every printed form of a value: its text, JSON and inspected forms. */
const printed = (value: unknown) => [String(value), JSON.stringify(value) ?? "", inspect(value, { depth: 20 })]

const printedExit = (exit: Exit.Exit<unknown, unknown>) =>
  Exit.isSuccess(exit)
    ? []
    : [Cause.pretty(exit.cause), ...Cause.prettyErrors(exit.cause).flatMap(printed), ...printed(exit.cause)]

describe("secrets", () => {
  it.live("never appear in logs, spans, errors or the printed forms of the options", () =>
    Effect.gen(function* () {
      // The test node accepts any credentials (AllowAllAuthenticator), so the password is sent but ignored.
      const password = "pw-SECRET-4d1f8a"
      const passphrase = "pass-SECRET-9c2e71"
      const keyBody = "KEYSECRET77aa0b1c"
      const key = `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${keyBody}\n-----END ENCRYPTED PRIVATE KEY-----\n`
      const credentials = { username: "observer", password: Redacted.make(password) }
      const withTls: Partial<Session.Options> = {
        credentials,
        tls: { key: Redacted.make(key), passphrase: Redacted.make(passphrase) },
        connectTimeout: "5 seconds"
      }
      const { spans, tracer } = recordingTracer()
      const traced = <A, E>(effect: Effect.Effect<A, E>) => Effect.provideService(effect, Tracer.Tracer, tracer)

      const session = yield* traced(
        withCapturedLogs(
          Effect.gen(function* () {
            yield* cql`SELECT release_version FROM system.local`
            return yield* Effect.flip(cql`SELEC * FROM system.local`)
          }),
          { minimum: "All", driverLevel: "verbose", options: { credentials } }
        )
      )
      assert.isTrue(Exit.isSuccess(session.exit))

      // The test node has no TLS: this session fails before or while connecting, and what it emits is searched too.
      const tlsSession = yield* traced(
        withCapturedLogs(cql`SELECT release_version FROM system.local`, {
          minimum: "All",
          driverLevel: "verbose",
          options: withTls
        })
      )
      assert.isTrue(Exit.isFailure(tlsSession.exit))

      const everything = [
        ...session.texts,
        ...session.lines.map((line) => JSON.stringify(line)),
        ...tlsSession.texts,
        ...tlsSession.lines.map((line) => JSON.stringify(line)),
        ...spans.flatMap((span) => [span.name, JSON.stringify([...span.attributes]), JSON.stringify(span.events)]),
        ...printedExit(session.exit),
        ...(Exit.isSuccess(session.exit) ? [session.exit.value.message, ...printed(session.exit.value)] : []),
        ...printedExit(tlsSession.exit),
        ...printed(testOptions(withTls))
      ].join("\n")
      assert.isTrue(session.lines.length > 10 && spans.length >= 2, "the session logged and traced its work")
      assert.match(everything, /<redacted>/)
      for (const secret of [password, passphrase, keyBody]) assert.notInclude(everything, secret)
    })
  )
})

describe("server warnings in the logs", () => {
  it.live(
    "carry no key value, literal or token of the read, and keep the table, counts and sizes",
    () =>
      Effect.gen(function* () {
        const keyspace = uniqueKeyspace("warned_values")
        const ks = identifier(keyspace)
        const secretKey = "pk-SECRET-77f3"
        const secretText = "v-SECRET-1b9e"
        const readWithTombstones = Effect.gen(function* () {
          yield* cql`CREATE KEYSPACE ${ks} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`
          yield* cql`CREATE TABLE ${ks}.basket (customer text, item int, note text, PRIMARY KEY (customer, item))`
          // The default tombstone_warn_threshold is 1000: a read over 1001 deleted rows of one partition warns.
          yield* Effect.forEach(
            Array.from({ length: 1001 }, (_, item) => item),
            (item) => cql`DELETE FROM ${ks}.basket WHERE customer = ${secretKey} AND item = ${item}`,
            { concurrency: 16, discard: true }
          )
          yield* cql`SELECT * FROM ${ks}.basket WHERE customer = ${secretKey} AND item >= ${0}`
          // Counting without a partition key warns too.
          yield* cql`SELECT count(*) FROM ${ks}.basket`
          // An unlogged batch over 5 KiB (batch_size_warn_threshold) across partitions warns with its size.
          yield* Query.batch(
            Array.from(
              { length: 10 },
              (_, item) =>
                cql`INSERT INTO ${ks}.basket (customer, item, note) VALUES (${`${secretKey}-${item}`}, ${item}, ${secretText.padEnd(1000, "x")})`
            ),
            { type: "unlogged" }
          )
          yield* cql`DROP KEYSPACE ${ks}`
        })
        const { exit, lines, texts } = yield* withCapturedLogs(readWithTombstones, { minimum: "All" })
        assert.isTrue(Exit.isSuccess(exit), Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "")
        const warnings = lines
          .filter((line) => line.annotations.component === "RequestHandler")
          .map((line) => String(line.message))
        const tombstones = warnings.find((warning) => /tombstone cells/.test(warning))
        assert.match(
          tombstones ?? "",
          new RegExp(
            `^Received warning \\(\\d of \\d\\) "Read 0 live rows and 1001 tombstone cells for query SELECT \\* FROM ${keyspace}\\.basket WHERE customer = <redacted> AND item >= <redacted> LIMIT \\d+ ALLOW FILTERING; token <redacted> \\(see tombstone_warn_threshold\\)" for "SELECT \\* FROM "${keyspace}"\\.basket WHERE customer = \\? AND item >= \\?"$`
          )
        )
        assert.isTrue(warnings.some((warning) => warning.includes('"Aggregation query used without partition key"')))
        assert.isTrue(
          warnings.some((warning) =>
            new RegExp(
              `"Batch for \\[${keyspace}\\.basket\\] is of size \\d{5}, exceeding specified threshold of 5120 by \\d+\\." for "batch"`
            ).test(warning)
          )
        )
        const everything = [...texts, ...lines.map((line) => JSON.stringify(line))].join("\n")
        for (const value of [secretKey, secretText, "SECRET"]) assert.notInclude(everything, value)
        assert.notMatch(everything, /token -?\d{6,}/)
      }),
    120_000
  )

  it.live(
    "carry no part of a key value that holds the warning's own closing words",
    () =>
      Effect.gen(function* () {
        const keyspace = uniqueKeyspace("warned_tail_words")
        const ks = identifier(keyspace)
        // Cassandra quotes the key in its warning; these words are the ones that end the statement it quotes.
        const secretKey = "it''s (see tombstone_warn_threshold) SECRET-a1; token 5 SECRET-b2 with token SECRET-c3"
        const readWithTombstones = Effect.gen(function* () {
          yield* cql`CREATE KEYSPACE ${ks} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`
          yield* cql`CREATE TABLE ${ks}.basket (customer text, item int, PRIMARY KEY (customer, item))`
          yield* Effect.forEach(
            Array.from({ length: 1001 }, (_, item) => item),
            (item) => cql`DELETE FROM ${ks}.basket WHERE customer = ${secretKey} AND item = ${item}`,
            { concurrency: 16, discard: true }
          )
          yield* cql`SELECT * FROM ${ks}.basket WHERE customer = ${secretKey}`
          yield* cql`DROP KEYSPACE ${ks}`
        })
        const { exit, lines, texts } = yield* withCapturedLogs(readWithTombstones, { minimum: "All" })
        assert.isTrue(Exit.isSuccess(exit), Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "")
        const tombstones = lines
          .filter((line) => line.annotations.component === "RequestHandler")
          .map((line) => String(line.message))
          .find((warning) => /tombstone cells/.test(warning))
        assert.match(
          tombstones ?? "",
          new RegExp(
            `^Received warning \\(\\d of \\d\\) "Read 0 live rows and 1001 tombstone cells for query SELECT \\* FROM ${keyspace}\\.basket WHERE customer = <redacted> LIMIT \\d+ ALLOW FILTERING; token <redacted> \\(see tombstone_warn_threshold\\)" for "SELECT \\* FROM "${keyspace}"\\.basket WHERE customer = \\?"$`
          )
        )
        const everything = [...texts, ...lines.map((line) => JSON.stringify(line))].join("\n")
        assert.notInclude(everything, "SECRET")
      }),
    120_000
  )
})
