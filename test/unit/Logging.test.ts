import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import type * as LogLevel from "effect/LogLevel"
import * as References from "effect/References"
import * as Logging from "effect-cassandra/Logging"
import { redactCqlLiterals, redactServerWarning } from "../../src/internal/errorClassification.ts"
import { bridgeDriverLogs, nodeOf, passes, redactLogMessage } from "../../src/internal/loggingBridge.ts"

describe("driver log levels", () => {
  it("map verbose, info, warning and error to Debug, Info, Warn and Error", () => {
    assert.deepStrictEqual(["verbose", "info", "warning", "error"].map(Logging.severityOf), [
      "Debug",
      "Info",
      "Warn",
      "Error"
    ])
    assert.isUndefined(Logging.severityOf("off"))
    assert.isUndefined(Logging.severityOf("toString"))
  })

  it("pass the bridge from its driver level up, and never when it is off", () => {
    assert.deepStrictEqual(
      ["verbose", "info", "warning", "error"].map((level) => passes(level, "info")),
      [false, true, true, true]
    )
    assert.deepStrictEqual(
      ["verbose", "info", "warning", "error", "off"].map((level) => passes(level, "verbose")),
      [true, true, true, true, false]
    )
    assert.isFalse(passes("error", "off"))
    assert.isFalse(passes("trace", "verbose"))
  })
})

describe("the node of a driver log event", () => {
  it("is the host the event carries, or the node its error names", () => {
    assert.strictEqual(nodeOf("Host added", { address: "10.0.0.3:9042" }), "10.0.0.3:9042")
    assert.strictEqual(
      nodeOf("Request failed", Object.assign(new Error("x"), { coordinator: "10.0.0.4:9042" })),
      "10.0.0.4:9042"
    )
  })

  it("is otherwise the first address in the message, IPv6 included", () => {
    assert.strictEqual(nodeOf("Connecting to 10.1.2.3:9042", ""), "10.1.2.3:9042")
    assert.strictEqual(nodeOf("Host 10.1.2.3 considered as DOWN", ""), "10.1.2.3")
    assert.strictEqual(nodeOf("Connection to [::1]:9042 closed", ""), "[::1]:9042")
    assert.isUndefined(nodeOf("Getting first connection", ""))
  })
})

interface Line {
  readonly level: string
  readonly message: unknown
  readonly annotations: Readonly<Record<string, unknown>>
  readonly cause?: string | undefined
}

const capturing = () => {
  const lines: Array<Line> = []
  const layer = Logger.layer([
    Logger.map(Logger.formatStructured, (line) => {
      lines.push(line)
    })
  ])
  return { lines, layer }
}

// A driver client that is never connected; the test emits log events on it as the driver's classes do.
const unconnectedClient = () => new Cassandra.Client({ contactPoints: ["192.0.2.1"], localDataCenter: "dc1" })

const emitAll = (client: Cassandra.Client) => {
  client.emit("log", "verbose", "Connection", "Sent stream #3 to 10.0.0.1:9042", "")
  client.emit("log", "info", "HostConnectionPool", "Connection to 10.0.0.2:9042 opened successfully", "")
  client.emit("log", "warning", "RequestHandler", "Received warning", "")
  client.emit(
    "log",
    "error",
    "ControlConnection",
    "Could not refresh",
    Object.assign(new Error("connect ECONNREFUSED 10.0.0.3:9042"), { code: "ECONNREFUSED", syscall: "connect" })
  )
}

const bridged = (driverLevel: Logging.DriverLogLevel, minimum: LogLevel.LogLevel) => {
  const capture = capturing()
  const client = unconnectedClient()
  return Effect.scoped(
    Effect.andThen(
      bridgeDriverLogs(client),
      Effect.sync(() => emitAll(client))
    )
  ).pipe(
    Effect.andThen(Effect.sync(() => emitAll(client))),
    Effect.provideService(Logging.DriverLogLevel, driverLevel),
    Effect.provide(capture.layer),
    Effect.provideService(References.MinimumLogLevel, minimum),
    Effect.as(capture.lines)
  )
}

describe("the driver log bridge", () => {
  it.effect("logs each event at its level with the component, the node and the error, while its scope is open", () =>
    Effect.gen(function* () {
      const lines = yield* bridged("verbose", "All")
      assert.deepStrictEqual(
        lines.map((line) => [line.level, line.annotations]),
        [
          ["DEBUG", { component: "Connection", node: "10.0.0.1:9042" }],
          ["INFO", { component: "HostConnectionPool", node: "10.0.0.2:9042" }],
          ["WARN", { component: "RequestHandler" }],
          ["ERROR", { component: "ControlConnection" }]
        ]
      )
      assert.deepStrictEqual(
        lines.map((line) => line.message),
        [
          "Sent stream #3 to 10.0.0.1:9042",
          "Connection to 10.0.0.2:9042 opened successfully",
          "Received warning",
          "Could not refresh"
        ]
      )
      // The error the driver attached is the line's cause, classified.
      assert.isUndefined(lines[0]?.cause)
      assert.match(String(lines[3]?.cause), /Connection to the host failed: connect ECONNREFUSED 10\.0\.0\.3:9042/)
    })
  )

  it.effect("drops events below the driver level or the application's minimum level", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(
        (yield* bridged("warning", "All")).map((line) => line.level),
        ["WARN", "ERROR"]
      )
      assert.deepStrictEqual(
        (yield* bridged("verbose", "Error")).map((line) => line.level),
        ["ERROR"]
      )
      assert.deepStrictEqual(yield* bridged("off", "All"), [])
    })
  )
})

/** The driver's own wording of a server warning (lib/request-handler.js). */
const receivedWarning = (warning: string, statement: string) =>
  `Received warning (1 of 1) "${warning}" for "${statement}"`

/** The lines the bridge logs for events emitted as the driver emits them, every driver level included. */
const bridgedEvents = (
  events: ReadonlyArray<readonly [level: string, className: string, message: string, detail: unknown]>
) => {
  const capture = capturing()
  const client = unconnectedClient()
  return Effect.scoped(
    Effect.andThen(
      bridgeDriverLogs(client),
      Effect.sync(() => {
        for (const [level, className, message, detail] of events) client.emit("log", level, className, message, detail)
      })
    )
  ).pipe(
    Effect.provideService(Logging.DriverLogLevel, "verbose"),
    Effect.provide(capture.layer),
    Effect.provideService(References.MinimumLogLevel, "All"),
    Effect.as(capture.lines)
  )
}

describe("what the driver log bridge lets through", () => {
  it.effect(
    "server warnings without the key values, literals and tokens of the read, with their counts and sizes",
    () =>
      Effect.gen(function* () {
        const lines = yield* bridgedEvents([
          [
            "warning",
            "RequestHandler",
            receivedWarning(
              "Read 10 live rows and 1990 tombstone cells for query SELECT * FROM shop.basket WHERE customer = 'ana@example.com' AND item > 0x6b6579 AND added >= 1700000000 LIMIT 5000 ALLOW FILTERING; token 8413089589345688709 (see tombstone_warn_threshold)",
              "SELECT * FROM shop.basket WHERE customer = ? AND item > ? AND added >= ?"
            ),
            ""
          ],
          [
            "warning",
            "RequestHandler",
            receivedWarning(
              "2 nodes scanned up to 1500 tombstones and issued tombstone warnings for query SELECT * FROM shop.basket WHERE customer = 'ana@example.com'  (see tombstone_warn_threshold) with token=8413089589345688709",
              "SELECT * FROM shop.basket WHERE customer = 'ana@example.com'"
            ),
            ""
          ],
          [
            "warning",
            "RequestHandler",
            receivedWarning("Aggregation query used without partition key", "SELECT count(*) FROM shop.basket"),
            ""
          ],
          [
            "warning",
            "RequestHandler",
            receivedWarning(
              "Batch for [shop.basket] is of size 10740, exceeding specified threshold of 5120 by 5620.",
              "batch"
            ),
            ""
          ],
          [
            "warning",
            "RequestHandler",
            receivedWarning(
              "Guardrail partition_size violated: Partition shop.basket:ana@example.com has size 2147483648",
              "INSERT INTO shop.basket (customer) VALUES ('ana@example.com')"
            ),
            ""
          ]
        ])
        const messages = lines.map((line) => String(line.message))
        for (const message of messages) {
          assert.notInclude(message, "ana@example.com")
          assert.notInclude(message, "6b6579")
          assert.notInclude(message, "1700000000")
          assert.notInclude(message, "8413089589345688709")
        }
        assert.strictEqual(
          messages[0],
          receivedWarning(
            "Read 10 live rows and 1990 tombstone cells for query SELECT * FROM shop.basket WHERE customer = <redacted> AND item > <redacted> AND added >= <redacted> LIMIT 5000 ALLOW FILTERING; token <redacted> (see tombstone_warn_threshold)",
            "SELECT * FROM shop.basket WHERE customer = ? AND item > ? AND added >= ?"
          )
        )
        assert.match(
          messages[1] ?? "",
          /^Received warning \(1 of 1\) "2 nodes scanned up to 1500 tombstones and issued tombstone warnings for query SELECT \* FROM shop\.basket WHERE customer = <redacted> {2}\(see tombstone_warn_threshold\) with token=<redacted>" for "SELECT \* FROM shop\.basket WHERE customer = <redacted>"$/
        )
        assert.strictEqual(
          messages[2],
          receivedWarning("Aggregation query used without partition key", "SELECT count(*) FROM shop.basket")
        )
        assert.strictEqual(
          messages[3],
          receivedWarning(
            "Batch for [shop.basket] is of size 10740, exceeding specified threshold of 5120 by 5620.",
            "batch"
          )
        )
        assert.include(messages[4], "Partition shop.basket:<redacted> has size 2147483648")
      })
  )

  it.effect("a refused login without the user name, in the message and in the error the driver attached", () =>
    Effect.gen(function* () {
      const refused = "Provided username alice and/or password are incorrect"
      const answer = Object.assign(
        new Cassandra.errors.ResponseError(Cassandra.types.responseErrorCodes.badCredentials, refused),
        {
          coordinator: "10.0.0.1:9042"
        }
      )
      const error = Object.assign(new Cassandra.errors.AuthenticationError(refused), { additionalInfo: answer })
      const lines = yield* bridgedEvents([
        ["warning", "HostConnectionPool", `Connection to 10.0.0.1:9042 could not be created: ${error}`, error],
        ["error", "ControlConnection", "ControlConnection failed to acquire a connection", error]
      ])
      assert.strictEqual(lines.length, 2)
      for (const line of lines) assert.notInclude(JSON.stringify(line), "alice")
      assert.strictEqual(lines[0]?.annotations.node, "10.0.0.1:9042")
      assert.strictEqual(
        lines[0]?.message,
        "Connection to 10.0.0.1:9042 could not be created: AuthenticationError: Provided username <redacted> and/or password are incorrect"
      )
      assert.match(String(lines[1]?.cause), /refused the credentials/)
    })
  )

  it.effect("the driver's errors classified, with no value their text echoes, nor the statements it quotes", () =>
    Effect.gen(function* () {
      const keyspaceMissing = new Cassandra.errors.ResponseError(
        Cassandra.types.responseErrorCodes.invalid,
        "Keyspace 'hunter2' does not exist"
      )
      const lines = yield* bridgedEvents([
        ["error", "ControlConnection", "Could not refresh", new Error("Invalid input 'hunter2'")],
        [
          "warning",
          "HostConnectionPool",
          "Connection failed",
          Object.assign(new Error("connect ECONNREFUSED 10.0.0.2:9042"), { code: "ECONNREFUSED", syscall: "connect" })
        ],
        [
          "error",
          "Connection",
          `Connection to 10.0.0.3:9042 could not switch active keyspace: ${keyspaceMissing}`,
          keyspaceMissing
        ],
        [
          "verbose",
          "PrepareHandler",
          "Unexpected error while preparing query (SELECT v FROM ks.t WHERE pk = 'hunter2' AND ck = ?) on 10.0.0.4:9042",
          keyspaceMissing
        ]
      ])
      assert.notInclude(JSON.stringify(lines), "hunter2")
      assert.match(String(lines[0]?.cause), /Unexpected Error/)
      assert.match(String(lines[1]?.cause), /Connection to the host failed: connect ECONNREFUSED 10\.0\.0\.2:9042/)
      assert.strictEqual(
        lines[2]?.message,
        "Connection to 10.0.0.3:9042 could not switch active keyspace: ResponseError: Keyspace '<redacted>' does not exist"
      )
      assert.strictEqual(
        lines[3]?.message,
        "Unexpected error while preparing query (SELECT v FROM ks.t WHERE pk = <redacted> AND ck = ?) on 10.0.0.4:9042"
      )
    })
  )
})

describe("CQL literals in a logged statement", () => {
  it("are redacted up to the end of a statement Cassandra cut off inside a string", () => {
    assert.strictEqual(
      redactServerWarning(
        "Read 0 live rows and 1200 tombstone cells for query SELECT * FROM ks.t WHERE pk = 'my very secret; token 5 (see tombstone_warn_threshold)"
      ),
      // The value is cut, so where it ends is unknown: all up to the warning's last tail is taken as the value.
      "Read 0 live rows and 1200 tombstone cells for query SELECT * FROM ks.t WHERE pk = <redacted> (see tombstone_warn_threshold)"
    )
    assert.strictEqual(
      redactCqlLiterals("SELECT * FROM ks.t WHERE pk = 'my very secret"),
      "SELECT * FROM ks.t WHERE pk = <redacted>"
    )
  })

  it("are redacted, keeping keywords, identifiers, quoted names, bind markers and LIMIT", () => {
    const statement =
      "SELECT \"Name\", t1.v FROM ks.t1 WHERE pk = 'it''s' AND ck IN (1, -2.5e3, .5) AND u = 5a1c395e-b41f-11e5-9f22-ba0be0483c18 AND b = 0xCAFE AND s = {'a': [1, 2]} AND d = 1h30m AND f = true AND x = $$dollar$$ AND h = 0702052a44656c AND q = ? AND n = :name LIMIT 10"
    assert.strictEqual(
      redactCqlLiterals(statement),
      'SELECT "Name", t1.v FROM ks.t1 WHERE pk = <redacted> AND ck IN (<redacted>, <redacted>, <redacted>) AND u = <redacted> AND b = <redacted> AND s = {<redacted>: [<redacted>, <redacted>]} AND d = <redacted> AND f = <redacted> AND x = <redacted> AND h = <redacted> AND q = ? AND n = :name LIMIT 10'
    )
  })
})

describe("key values that look like a warning's own words", () => {
  // The server quotes a read's key values in its warning; a value may hold the words that end the statement there.
  it("are redacted whole, wherever the warning's tail words appear inside them", () => {
    for (const value of ["x (see y) hunter2", "a; token 5 hunter2", "a with token hunter2", "o''b (see z) hunter2"]) {
      const redacted = redactServerWarning(
        `Read 0 live rows and 1001 tombstone cells for query SELECT * FROM ks.t WHERE pk = '${value}' LIMIT 5000 ALLOW FILTERING; token 12 (see tombstone_warn_threshold)`
      )
      assert.strictEqual(
        redacted,
        "Read 0 live rows and 1001 tombstone cells for query SELECT * FROM ks.t WHERE pk = <redacted> LIMIT 5000 ALLOW FILTERING; token <redacted> (see tombstone_warn_threshold)"
      )
    }
    assert.strictEqual(
      redactServerWarning(
        "1 nodes scanned up to 1001 tombstones and issued tombstone warnings for query SELECT * FROM ks.t WHERE pk = $$a (see b) hunter2$$ LIMIT 5000  (see tombstone_warn_threshold)"
      ),
      "1 nodes scanned up to 1001 tombstones and issued tombstone warnings for query SELECT * FROM ks.t WHERE pk = <redacted> LIMIT 5000  (see tombstone_warn_threshold)"
    )
  })
})

// Inputs on which the backtracking regexes this bridge once had took from 16 s to minutes: each redaction here must
// finish within the test's own timeout (a guard against hanging, not a speed measure; speed is the benchmark's).
describe("redaction of crafted inputs that make backtracking regexes hang", () => {
  const size = 128_000
  const crafted: ReadonlyArray<readonly [name: string, message: string]> = [
    ["a statement verb followed by spaces", receivedWarning(`SELECT${" ".repeat(size)}x`, "batch")],
    ["the word token followed by spaces", receivedWarning(`token${" ".repeat(size)}x`, "batch")],
    [
      "a warning whose text repeats the driver's separator",
      `Received warning (1 of 1) "${'" for "'.repeat(size / 7)}x`
    ],
    ["an unanswered refused-login prefix, repeated", "Provided username ".repeat(size / 18)]
  ]
  for (const [name, message] of crafted) {
    it(`ends for ${name}, with a bounded message`, () => {
      assert.isBelow(redactLogMessage(message, undefined).length, 4_200)
    })
  }

  it("ends for a statement with a long run of spaces before a number, where LIMIT is looked for", () => {
    const spaces = " ".repeat(size)
    assert.strictEqual(
      redactCqlLiterals(`SELECT * FROM ks.t WHERE k =${spaces}5 LIMIT${spaces}10`),
      `SELECT * FROM ks.t WHERE k =${spaces}<redacted> LIMIT${spaces}10`
    )
  })

  it("ends for a server error text holding many numbers, keeping a bounded head", () => {
    const error = new Cassandra.errors.ResponseError(
      Cassandra.types.responseErrorCodes.invalid,
      "12345678 ".repeat(size / 9)
    )
    assert.match(
      redactLogMessage(`Connection could not switch active keyspace: ${error}`, error),
      /characters not shown\)$/
    )
  })

  it("keeps a bounded head of a message of megabytes, redacted, and says how long it was", () => {
    // A key value of words: the head is cut inside the quoted value, which stays redacted to the cut.
    const warning = receivedWarning(
      `Read 1 live rows and 1001 tombstone cells for query SELECT * FROM ks.t WHERE k = '${"hunter2 ".repeat(300_000)}' LIMIT 5000; token 1 (see tombstone_warn_threshold)`,
      "SELECT * FROM ks.t WHERE k = ?"
    )
    assert.match(
      redactLogMessage(warning, undefined),
      /^Received warning \(1 of 1\) "Read 1 live rows and 1001 tombstone cells for query SELECT \* FROM ks\.t WHERE k = <redacted>… \(\d+ characters not shown\)" for "SELECT \* FROM ks\.t WHERE k = \?"$/
    )
  })

  it("cuts a huge error text before a user name or a quoted value it would leave half shown", () => {
    // The values start before the cut at 4,096 characters and end after it.
    const pad = "x ".repeat(1_900)
    const words = "hunter2 ".repeat(100)
    for (const [text, secret] of [
      [`${pad}Provided username ${words}and/or password are incorrect`, "hunter"],
      [`${pad}Keyspace '${words}' does not exist`, "hunter"],
      [`${pad}Expected 4 or 16 byte inetaddress; got ${"4028".repeat(200)}`, "4028"]
    ] as const) {
      const error = new Cassandra.errors.ResponseError(Cassandra.types.responseErrorCodes.invalid, text)
      const message = redactLogMessage(`Connection could not switch active keyspace: ${error}`, error)
      assert.notInclude(message, secret)
      assert.match(message, /characters not shown\)$/)
    }
  })
})

/** A value whose every property read, conversion and prototype lookup throws. */
const explosive = () =>
  new Proxy(
    {},
    {
      get: () => {
        throw new Error("read")
      },
      getPrototypeOf: () => {
        throw new Error("prototype")
      },
      has: () => {
        throw new Error("has")
      },
      ownKeys: () => {
        throw new Error("keys")
      }
    }
  )

describe("hostile log events", () => {
  it.effect("never throw into the driver's event emitter, and still log what can be read", () =>
    Effect.gen(function* () {
      const circular: Record<string, unknown> = { address: 5 }
      circular.self = circular
      const unreadableMessage = Object.defineProperty(new Error("x"), "message", {
        get: () => {
          throw new Error("message getter")
        }
      })
      const unreadableCoordinator = Object.defineProperty(
        new Cassandra.errors.ResponseError(Cassandra.types.responseErrorCodes.invalid, "bad"),
        "coordinator",
        {
          get: () => {
            throw new Error("coordinator getter")
          }
        }
      )
      const events: ReadonlyArray<readonly [unknown, unknown, unknown, unknown]> = [
        ["warning", "Connection", Symbol("message"), ""],
        ["warning", Symbol("class"), "symbol class", ""],
        [Symbol("level"), "Connection", "symbol level", ""],
        ["warning", "Connection", { toString: () => 42 } as unknown, ""],
        ["warning", "Connection", explosive(), ""],
        ["warning", explosive(), "explosive class", ""],
        ["warning", "Connection", "explosive detail", explosive()],
        ["warning", "Connection", "circular detail", circular],
        ["warning", "Connection", "unreadable message", unreadableMessage],
        ["warning", "Connection", "unreadable coordinator", unreadableCoordinator],
        ["warning", "Connection", 12345, null]
      ]
      const capture = capturing()
      const client = unconnectedClient()
      const thrown: Array<unknown> = []
      yield* Effect.scoped(
        Effect.andThen(
          bridgeDriverLogs(client),
          Effect.sync(() => {
            for (const [level, className, message, detail] of events) {
              try {
                client.emit("log", level, className, message, detail)
              } catch (error) {
                thrown.push(error)
              }
            }
          })
        )
      ).pipe(
        Effect.provideService(Logging.DriverLogLevel, "verbose"),
        Effect.provide(capture.layer),
        Effect.provideService(References.MinimumLogLevel, "All")
      )
      assert.deepStrictEqual(thrown, [])
      const messages = capture.lines.map((line) => String(line.message))
      for (const readable of [
        "symbol class",
        "circular detail",
        "unreadable message",
        "unreadable coordinator",
        "12345"
      ]) {
        assert.include(messages, readable)
      }
    })
  )

  it.effect("never throw into the driver's event emitter when the application's logger throws", () =>
    Effect.gen(function* () {
      const client = unconnectedClient()
      const thrown: Array<unknown> = []
      yield* Effect.scoped(
        Effect.andThen(
          bridgeDriverLogs(client),
          Effect.sync(() => {
            try {
              client.emit("log", "warning", "Connection", "Connection to 10.0.0.1:9042 closed", "")
            } catch (error) {
              thrown.push(error)
            }
          })
        )
      ).pipe(
        Effect.provideService(Logging.DriverLogLevel, "verbose"),
        Effect.provide(
          Logger.layer([
            Logger.make(() => {
              throw new Error("logger")
            })
          ])
        ),
        Effect.provideService(References.MinimumLogLevel, "All")
      )
      assert.deepStrictEqual(thrown, [])
    })
  )
})
