import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import type * as LogLevel from "effect/LogLevel"
import * as References from "effect/References"
import { bridgeDriverLogs, nodeOf, passes } from "../../src/internal/loggingBridge.ts"
import * as Logging from "../../src/Logging.ts"

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
  client.emit("log", "error", "ControlConnection", "Could not refresh", new Error("refused"))
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
      // The error the driver attached is the line's cause.
      assert.isUndefined(lines[0]?.cause)
      assert.match(String(lines[3]?.cause), /Error: refused/)
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
