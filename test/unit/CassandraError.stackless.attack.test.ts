/**
 * Attacks on the errors built without stack frames (src/internal/stackless.ts): what a user relies on is that the
 * library's errors still read and print as before, that `Error.stackTraceLimit` is left exactly as it was whatever runs
 * inside, that nothing throws where the limit cannot be written, and that the user's own errors keep their frames.
 */
import { execFileSync } from "node:child_process"
import { EventEmitter } from "node:events"
import { fileURLToPath } from "node:url"
import { inspect } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import * as CassandraError from "effect-cassandra/CassandraError"
import * as Query from "effect-cassandra/Query"
import * as Session from "effect-cassandra/Session"
import { stackless } from "../../src/internal/stackless.ts"
import {
  endedOrRejected,
  recordingClient,
  request,
  runnerOver,
  sentCount,
  watchRejections
} from "../support/requestRunner.ts"

const codes = Cassandra.types.responseErrorCodes
const coordinator = "10.0.0.1:9042"

/** Whether an error's stack names any frame (a stack trace's lines start with "    at "). */
const hasFrames = (error: unknown) => /\n\s+at /.test((error as Error | undefined)?.stack ?? "")

/** What V8 prints first in a stack: the error's name and message, as `Error.prototype.toString` gives them. */
const header = (error: Error) => (error.message === "" ? error.name : `${error.name}: ${error.message}`)

/** An error built here, by the test: the user's own error, which must keep its frames. */
const usersOwnError = () => new Error("the user's own failure")

const limitKey = "stackTraceLimit"

/** Error.stackTraceLimit's own property, as it is now (undefined when absent). */
const limitDescriptor = () => Object.getOwnPropertyDescriptor(Error, limitKey)

/** Puts back a descriptor taken by `limitDescriptor`, absent included. */
const restoreLimit = (descriptor: PropertyDescriptor | undefined) => {
  if (descriptor === undefined) Reflect.deleteProperty(Error, limitKey)
  else Object.defineProperty(Error, limitKey, descriptor)
}

/** Runs `body` with Error.stackTraceLimit's own property set to `descriptor` (absent when undefined), put back after. */
const withLimit = <A>(descriptor: PropertyDescriptor | undefined, body: () => A): A => {
  const saved = limitDescriptor()
  try {
    restoreLimit(descriptor)
    return body()
  } finally {
    restoreLimit(saved)
  }
}

/** The same for an effect: the descriptor is put back when it ends, however it ends. */
const withLimitEffect = <A, E, R>(descriptor: PropertyDescriptor | undefined, body: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const saved = limitDescriptor()
      restoreLimit(descriptor)
      return saved
    }),
    () => body,
    (saved) => Effect.sync(() => restoreLimit(saved))
  )

/** A plain, writable limit of `value`, as V8 has it by default. */
const dataLimit = (value: unknown): PropertyDescriptor => ({
  value,
  writable: true,
  enumerable: true,
  configurable: true
})

/** A server error as lib/readers.js builds it: code and text, then the code's extra fields, then the coordinator. */
const responseError = (code: number, message: string, fields: Record<string, unknown> = {}) =>
  Object.assign(new Cassandra.errors.ResponseError(code, message), fields, { coordinator })

/** Declared abstract in the driver's typings, yet thrown as is for a closed socket and a connect timeout. */
const DriverError = Cassandra.errors.DriverError as unknown as new (message: string) => Cassandra.errors.DriverError

/** One driver failure of each kind the library classifies, by a name for the assertion messages. */
const driverFailures = (): ReadonlyArray<readonly [string, unknown]> => [
  [
    "unavailable",
    responseError(codes.unavailableException, "Not enough replicas", { consistencies: 6, required: 3, alive: 2 })
  ],
  ["read timeout", responseError(codes.readTimeout, "timeout", { consistencies: 1, received: 0, blockFor: 1 })],
  ["read failure", responseError(codes.readFailure, "failure", { consistencies: 1, received: 0, blockFor: 1 })],
  ["write timeout", responseError(codes.writeTimeout, "timeout", { consistencies: 1, writeType: "SIMPLE" })],
  ["write failure", responseError(codes.writeFailure, "failure", { consistencies: 1, writeType: "BATCH" })],
  ["already exists", responseError(codes.alreadyExists, "exists", { keyspace: "ks", table: "t" })],
  [
    "function failure",
    responseError(codes.functionFailure, "execution of 'ks.f[text]' failed: bad input 'hunter2'", {
      keyspace: "ks",
      functionName: "f",
      argTypes: ["text"]
    })
  ],
  ["bad credentials", responseError(codes.badCredentials, "Provided username alice and/or password are incorrect")],
  ["syntax", responseError(codes.syntaxError, "line 1:0 no viable alternative at input 'SELEC'")],
  ["unauthorized", responseError(codes.unauthorized, "User alice has no SELECT permission")],
  ["invalid", responseError(codes.invalid, "Error decoding JSON value for v: Unable to make int from 'hunter2'")],
  ["overloaded", responseError(codes.overloaded, "Queue full")],
  ["bootstrapping", responseError(codes.isBootstrapping, "bootstrapping")],
  ["truncate", responseError(codes.truncateError, "truncate failed")],
  ["server", responseError(codes.serverError, "java.lang.RuntimeException: 0x68756e74657232")],
  ["protocol", responseError(codes.protocolError, "bad frame")],
  ["unknown code", responseError(0x9999, "what")],
  ["client timeout", new Cassandra.errors.OperationTimedOutError("Operation timed out", coordinator)],
  ["authentication", new Cassandra.errors.AuthenticationError("no authenticator")],
  ["busy", new Cassandra.errors.BusyConnectionError(coordinator, 2048, 1)],
  ["argument", new Cassandra.errors.ArgumentError("bad argument")],
  ["not supported", new Cassandra.errors.NotSupportedError("not supported")],
  [
    "no host available",
    new Cassandra.errors.NoHostAvailableError({
      [coordinator]: new Cassandra.errors.OperationTimedOutError("timed out", coordinator),
      "10.0.0.2:9042": responseError(codes.overloaded, "Queue full")
    })
  ],
  ["closed socket", new DriverError("Socket was closed")],
  [
    "refused connection",
    Object.assign(new Error("connect ECONNREFUSED 10.0.0.1:9042"), { code: "ECONNREFUSED", syscall: "connect" })
  ],
  ["tls", Object.assign(new Error("certificate has expired"), { code: "CERT_HAS_EXPIRED" })],
  ["encoding", new TypeError("Expected Number, obtained { password: 'hunter2' }")],
  ["plain error", new Error("something with hunter2")],
  ["string", "a thrown string"],
  ["null", null],
  ["symbol", Symbol("thrown")],
  ["throttled", new CassandraError.Throttled({ maxInFlight: 1, maxQueued: 0 })],
  ["already a CassandraError", CassandraError.fromDriverError(new Error("x"), { operation: "execute" })]
]

/** The library's own errors, by name, each built afresh. */
const ownErrors = (): ReadonlyArray<readonly [string, () => CassandraError.CassandraError]> => [
  ["sessionClosed", () => CassandraError.sessionClosed({ operation: "execute" })],
  ["invalidIdentifier", () => CassandraError.invalidIdentifier(["a b"], { operation: "execute" })],
  ["configuration", () => CassandraError.configuration("no such file", { operation: "connect" })],
  ["Query's invalid argument", () => queryFailure(Query.cql`SELECT * FROM t WHERE k IN ${Query.inList([])}`)]
]

/**
 * The three failures the request path builds itself, each with a driver error of its own: a timeout (held by the
 * client until the deadline sweep fails it), a throttle refusal, and an option the driver cannot take.
 */
const requestPathFailures = Effect.gen(function* () {
  const { calls, client } = recordingClient()
  const runner = yield* runnerOver(client, { throttle: { maxInFlight: 1, maxQueued: 0 } })
  const expired = yield* Effect.flip(runner.execute(request({ timeout: "20 millis" })))
  calls[0]!.answer()
  const held = yield* Effect.forkChild(runner.execute(request()))
  yield* sentCount(calls, 2)
  const refused = yield* Effect.flip(runner.execute(request()))
  calls[1]!.answer()
  yield* Fiber.join(held)
  const unreadable = yield* Effect.flip(runner.execute({ query: 42 } as unknown as Session.Request))
  return { expired, refused, unreadable }
})

/** A session that fails the test if anything reaches it: the statements run here fail before sending. */
const unreachableSession: Session.Session = {
  client: undefined as never,
  keyspace: undefined,
  execute: () => Effect.die("a request was sent"),
  batch: () => Effect.die("a batch was sent"),
  inFlight: Effect.succeed(0)
}

/** The error of a statement that fails before it is sent. */
const queryFailure = <A>(effect: Effect.Effect<A, CassandraError.CassandraError, Session.Session>) => {
  const exit = Effect.runSyncExit(Effect.provideService(effect, Session.Session, unreachableSession))
  if (Exit.isSuccess(exit)) throw new Error("the statement was expected to fail before sending")
  const reason = exit.cause.reasons[0]
  if (reason?._tag !== "Fail") throw new Error("the statement was expected to fail with a CassandraError")
  return reason.error
}

/** Everything a user or a log could see of an error, except its stack. */
const visible = (error: CassandraError.CassandraError) => ({
  tag: error.reason._tag,
  name: error.name,
  message: error.message,
  string: String(error),
  reasonMessage: error.reason.message,
  isRetryable: error.isRetryable,
  operation: error.operation,
  statement: error.statement,
  json: JSON.stringify(error),
  encoded: JSON.stringify(Schema.encodeSync(CassandraError.CassandraError)(error)),
  driverErrorKept: Object.hasOwn(error, "driverError"),
  driverErrorEnumerable: Object.keys(error).includes("driverError"),
  keys: Object.keys(error),
  reasonKeys: Object.keys(error.reason),
  inspected: inspect(error, { depth: 10 }),
  reasonInspected: inspect(error.reason, { depth: 10 })
})

/** Cause.pretty's text without its frame lines. */
const withoutFrames = (text: string) =>
  text
    .split("\n")
    .filter((line) => !/^\s+at /.test(line))
    .join("\n")

/** Builds `build` as the library did before this change: where the limit cannot be written, it is built as is. */
const asBefore = <A>(build: () => A): A => withLimit({ ...dataLimit(Error.stackTraceLimit), writable: false }, build)

describe("stackless attack 1: no frames, same header, same printed message", () => {
  it("every reason the classification gives, and every error the library builds, has exactly its header as stack", () => {
    const built: Array<readonly [string, CassandraError.CassandraError]> = [
      ...driverFailures().map(
        ([name, failure]) =>
          [name, CassandraError.fromDriverError(failure, { operation: "execute", statement: "SELECT 1" })] as const
      ),
      ...ownErrors().map(([name, build]) => [name, build()] as const)
    ]
    for (const [name, error] of built) {
      assert.strictEqual(error.stack, header(error), `${name}: the error's stack`)
      assert.isTrue(error.stack?.startsWith(`effect-cassandra/CassandraError: ${error.message}`), name)
      // A reason the caller made itself (a Throttled) is kept as it is, with the caller's frames.
      if (error.reason !== error.driverError) {
        assert.strictEqual(error.reason.stack, header(error.reason), `${name}: the reason's stack`)
      }
      const printed = Cause.pretty(Cause.fail(error))
      assert.include(printed, error.message, `${name}: Cause.pretty`)
      assert.isFalse(/\n\s+at /.test(printed), `${name}: Cause.pretty prints frames`)
    }
  })

  it("Cause.pretty prints what it printed before, less the frames", () => {
    for (const [name, failure] of driverFailures()) {
      const context = { operation: "execute", statement: "SELECT * FROM t" }
      const before = Cause.pretty(Cause.fail(asBefore(() => CassandraError.fromDriverError(failure, context))))
      const now = Cause.pretty(Cause.fail(CassandraError.fromDriverError(failure, context)))
      assert.strictEqual(now, withoutFrames(before), name)
    }
  })

  it.live(
    "the request path's timeout, throttle refusal and invalid option hold no frames, their driver errors neither",
    () =>
      Effect.gen(function* () {
        const { expired, refused, unreadable } = yield* requestPathFailures
        const cases: ReadonlyArray<
          readonly [string, CassandraError.CassandraError, string, (driverError: unknown) => boolean]
        > = [
          ["timeout", expired, "ClientTimeout", (u) => u instanceof Cassandra.errors.OperationTimedOutError],
          ["throttle", refused, "Throttled", (u) => u instanceof CassandraError.Throttled],
          ["invalid option", unreadable, "InvalidArgument", (u) => u instanceof Cassandra.errors.ArgumentError]
        ]
        for (const [name, error, tag, isDriverError] of cases) {
          assert.strictEqual(error.reason._tag, tag, name)
          assert.isTrue(isDriverError(error.driverError), name)
          for (const built of [error, error.reason, error.driverError as Error]) {
            assert.strictEqual(built.stack, header(built), `${name}: ${built.name}`)
          }
          assert.include(Cause.pretty(Cause.fail(error)), error.message, name)
        }
      }).pipe(Effect.scoped)
  )

  it.live("the connect timeout's driver error, which the library makes itself, holds no frames either", () =>
    Effect.gen(function* () {
      // A client whose connect never ends: the session gives up at its connect timeout with an error of its own.
      const client = Object.assign(new EventEmitter(), { keyspace: undefined, connect: () => new Promise(() => {}) })
      const error = yield* Effect.flip(
        Effect.scoped(Session.makeFromClient(client as unknown as Cassandra.Client, { connectTimeout: "30 millis" }))
      )
      assert.strictEqual(error.reason._tag, "NoHostAvailable")
      assert.include(error.message, "connect timeout")
      assert.isFalse(hasFrames(error))
      assert.isFalse(hasFrames(error.reason))
      // Made by the library in the fiber's run loop, as the request path's timeout: its frames name only the
      // library's and Effect's internals.
      assert.instanceOf(error.driverError, Cassandra.errors.NoHostAvailableError)
      assert.isFalse(hasFrames(error.driverError), (error.driverError as Error).stack)
    })
  )
})

describe("stackless attack 2: Error.stackTraceLimit restored exactly", () => {
  const timeout = () => new Cassandra.errors.OperationTimedOutError("Operation timed out", coordinator)
  const builders: ReadonlyArray<readonly [string, () => unknown]> = [
    ["fromDriverError", () => CassandraError.fromDriverError(timeout(), { operation: "execute" })],
    ...ownErrors()
  ]

  it("restores every value a user may have set, by identity, and the property's attributes", () => {
    const throwingValueOf = {
      valueOf: () => {
        throw new Error("valueOf")
      }
    }
    const values: ReadonlyArray<unknown> = [
      10,
      50,
      0,
      -0,
      -1,
      2.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      undefined,
      null,
      "20",
      Symbol("limit"),
      10n,
      throwingValueOf
    ]
    for (const value of values) {
      for (const enumerable of [true, false]) {
        const descriptor = { ...dataLimit(value), enumerable }
        withLimit(descriptor, () => {
          for (const [name, build] of builders) {
            build()
            assert.deepStrictEqual(limitDescriptor(), descriptor, `${name} with ${String(value)}`)
            assert.isTrue(Object.is(Error.stackTraceLimit, value), `${name} with ${String(value)}`)
          }
        })
      }
    }
  })

  it("leaves a limit a user deleted deleted", () => {
    withLimit(undefined, () => {
      for (const [name, build] of builders) {
        build()
        assert.isFalse(Object.hasOwn(Error, limitKey), `${name} left Error.stackTraceLimit behind`)
      }
    })
  })

  it("restores it after hostile values: proxies, throwing or recursing getters, getters that make errors", () => {
    const throwing = (what: string) => () => {
      throw new Error(what)
    }
    const revoked = Proxy.revocable({}, {})
    revoked.revoke()
    const everyTrapThrows = new Proxy(new Error("x"), {
      get: throwing("get"),
      has: throwing("has"),
      getPrototypeOf: throwing("getPrototypeOf"),
      getOwnPropertyDescriptor: throwing("getOwnPropertyDescriptor"),
      ownKeys: throwing("ownKeys")
    })
    const recursing: { readonly message: string } = Object.defineProperty(new Error("x"), "message", {
      get(this: { readonly message: string }): string {
        return this.message
      }
    })
    const makesErrors = Object.defineProperty(new Cassandra.errors.ArgumentError("x"), "message", {
      get: () => `${new RangeError("made in a getter").stack}`
    })
    const throwsHostile = Object.defineProperty(new Error("x"), "code", {
      get: () => {
        throw everyTrapThrows
      }
    })
    const hostile: ReadonlyArray<readonly [string, unknown]> = [
      ["revoked proxy", revoked.proxy],
      ["proxy whose every trap throws", everyTrapThrows],
      ["name that throws", Object.defineProperty(new Error("x"), "name", { get: throwing("name") })],
      ["message that throws", Object.defineProperty(new Error("x"), "message", { get: throwing("message") })],
      ["code that throws", Object.defineProperty(new Error("x"), "code", { get: throwing("code") })],
      ["code that throws a hostile proxy", throwsHostile],
      ["message that recurses for ever", recursing],
      ["message that makes errors", makesErrors],
      [
        "toPrimitive that throws",
        { [Symbol.toPrimitive]: throwing("toPrimitive"), toString: throwing("toString"), name: 1 }
      ]
    ]
    for (const limit of [10, 37, undefined]) {
      withLimit(dataLimit(limit), () => {
        for (const [name, value] of hostile) {
          const error = CassandraError.fromDriverError(value, { operation: "execute" })
          assert.isTrue(CassandraError.isCassandraError(error), name)
          assert.strictEqual(error.stack, header(error), name)
          assert.deepStrictEqual(limitDescriptor(), dataLimit(limit), name)
        }
      })
    }
    assert.isTrue(hasFrames(usersOwnError()))
  })

  it("restores it when the build throws: a context whose fields throw, one the schema refuses", () => {
    withLimit(dataLimit(23), () => {
      const unreadable = Object.defineProperty({}, "operation", {
        get: () => {
          throw new Error("unreadable context")
        },
        enumerable: true
      }) as CassandraError.ErrorContext
      const refused = { operation: 42 } as unknown as CassandraError.ErrorContext
      for (const context of [unreadable, refused]) {
        try {
          CassandraError.fromDriverError(new Error("x"), context)
        } catch {
          // Whether it throws is not what is checked here, only what it leaves behind.
        }
        assert.deepStrictEqual(limitDescriptor(), dataLimit(23))
        assert.isTrue(hasFrames(usersOwnError()))
      }
    })
  })

  it("is re-entrant: a getter running inside the build that builds errors itself, nested three deep", () => {
    withLimit(dataLimit(41), () => {
      const seenInside: Array<unknown> = []
      const innerErrors: Array<CassandraError.CassandraError> = []
      const nested = (depth: number): unknown =>
        Object.defineProperty(new Cassandra.errors.ArgumentError(`depth ${depth}`), "message", {
          get: () => {
            seenInside.push(Error.stackTraceLimit)
            if (depth > 0) innerErrors.push(CassandraError.fromDriverError(nested(depth - 1)))
            innerErrors.push(CassandraError.sessionClosed())
            return `depth ${depth}`
          }
        })
      const error = CassandraError.fromDriverError(nested(3), { operation: "execute" })
      assert.strictEqual(error.reason._tag, "InvalidArgument")
      assert.include(error.message, "depth 3")
      assert.isAbove(innerErrors.length, 3)
      for (const inner of innerErrors) assert.isFalse(hasFrames(inner))
      assert.isTrue(seenInside.every((limit) => limit === 0))
      assert.deepStrictEqual(limitDescriptor(), dataLimit(41))
      // Nested directly, with the innermost build throwing through both.
      assert.throws(() =>
        stackless(() =>
          stackless(() => {
            throw new Error("inner")
          })
        )
      )
      assert.deepStrictEqual(limitDescriptor(), dataLimit(41))
    })
  })

  it("restores the limit from before, when user code inside the build changes it", () => {
    withLimit(dataLimit(12), () => {
      const changing = Object.defineProperty(new Cassandra.errors.ArgumentError("x"), "message", {
        get: () => {
          Error.stackTraceLimit = 99
          return "x"
        }
      })
      CassandraError.fromDriverError(changing)
      assert.deepStrictEqual(limitDescriptor(), dataLimit(12))
    })
  })

  it("restores the limit of the Error V8 reads, when user code inside the build replaces the global Error", () => {
    const NativeError = globalThis.Error
    withLimit(dataLimit(10), () => {
      try {
        // A module loaded lazily inside a getter that wraps the global Error (as error-reporting polyfills do).
        const wrapping = Object.defineProperty(new Cassandra.errors.ArgumentError("x"), "message", {
          get: () => {
            globalThis.Error = class WrappedError extends NativeError {} as ErrorConstructor
            return "x"
          }
        })
        CassandraError.fromDriverError(wrapping)
      } finally {
        globalThis.Error = NativeError
      }
      assert.strictEqual(Object.getOwnPropertyDescriptor(NativeError, limitKey)?.value, 10)
      assert.isTrue(hasFrames(new NativeError("the user's own failure")))
    })
  })
})

describe("stackless attack 3: a limit that cannot be written", () => {
  const timeout = () => new Cassandra.errors.OperationTimedOutError("Operation timed out", coordinator)

  it("builds every error, throws nothing, and leaves a setter that always throws as it was", () => {
    const descriptor: PropertyDescriptor = {
      get: () => 10,
      set: () => {
        throw new TypeError("Error.stackTraceLimit is locked")
      },
      enumerable: true,
      configurable: true
    }
    withLimit(descriptor, () => {
      assert.strictEqual(CassandraError.fromDriverError(timeout()).reason._tag, "ClientTimeout")
      for (const [name, build] of ownErrors()) assert.doesNotThrow(build, name)
      assert.deepStrictEqual(limitDescriptor(), descriptor)
    })
  })

  it("leaves the value of a setter that stores, then throws, as it was", () => {
    let stored: unknown = 10
    withLimit(
      {
        get: () => stored,
        set: (value: unknown) => {
          stored = value
          throw new TypeError("Error.stackTraceLimit changed: refused")
        },
        enumerable: true,
        configurable: true
      },
      () => {
        assert.strictEqual(CassandraError.fromDriverError(timeout()).reason._tag, "ClientTimeout")
        assert.strictEqual(stored, 10)
      }
    )
  })

  it("throws nothing where the limit can be written once only (a setter locking after its first write)", () => {
    let stored: unknown = 10
    let written = false
    withLimit(
      {
        get: () => stored,
        set: (value: unknown) => {
          if (written) throw new TypeError("Error.stackTraceLimit is locked")
          written = true
          stored = value
        },
        enumerable: true,
        configurable: true
      },
      () => {
        const built = (() => {
          try {
            return CassandraError.fromDriverError(timeout())
          } catch (thrown) {
            return thrown
          }
        })()
        assert.isTrue(CassandraError.isCassandraError(built), `fromDriverError threw ${String(built)}`)
      }
    )
  })

  it("throws nothing where user code inside the build makes the limit read-only", () => {
    withLimit(dataLimit(10), () => {
      // A hardening routine run from a getter: it freezes the limit at whatever value it holds at that moment.
      const hardening = Object.defineProperty(new Cassandra.errors.ArgumentError("x"), "message", {
        get: () => {
          Object.defineProperty(Error, limitKey, { writable: false })
          return "x"
        }
      })
      const built = (() => {
        try {
          return CassandraError.fromDriverError(hardening)
        } catch (thrown) {
          return thrown
        }
      })()
      assert.isTrue(CassandraError.isCassandraError(built), `fromDriverError threw ${String(built)}`)
    })
  })

  it.live("a request whose driver error makes the limit read-only while it is classified still ends", () =>
    Effect.gen(function* () {
      const rejections = yield* watchRejections
      // Hardens the limit only while the library builds its error (the limit is 0 only then).
      const hardening = Object.defineProperty(new Cassandra.errors.ArgumentError("x"), "message", {
        get: () => {
          if (Error.stackTraceLimit === 0) Object.defineProperty(Error, limitKey, { writable: false })
          return "x"
        }
      })
      const client = { keyspace: undefined, execute: () => Promise.reject(hardening) } as unknown as Cassandra.Client
      const runner = yield* runnerOver(client, {})
      // The request is sent, fails and is classified inside, so that the limit it hardens is put back after.
      const { ended, rejected } = yield* withLimitEffect(
        dataLimit(10),
        Effect.gen(function* () {
          const fiber = yield* Effect.forkChild(runner.execute(request()))
          const ended = yield* endedOrRejected(fiber, rejections)
          if (ended === undefined) yield* Fiber.interrupt(fiber)
          return { ended, rejected: rejections.splice(0).map(String) }
        })
      )
      assert.deepStrictEqual(limitDescriptor(), dataLimit(10))
      assert.deepStrictEqual(rejected, [], "a throw reached the driver's callback: the request never ends")
      assert.isTrue(ended !== undefined && Exit.isFailure(ended))
    }).pipe(Effect.scoped)
  )

  it.live("the request path's failures are built where the limit is read-only", () =>
    withLimitEffect(
      { ...dataLimit(10), writable: false },
      Effect.gen(function* () {
        const { expired, refused, unreadable } = yield* requestPathFailures
        assert.deepStrictEqual(
          [expired.reason._tag, refused.reason._tag, unreadable.reason._tag],
          ["ClientTimeout", "Throttled", "InvalidArgument"]
        )
        assert.deepStrictEqual(limitDescriptor(), { ...dataLimit(10), writable: false })
      }).pipe(Effect.scoped)
    )
  )

  it("builds every error, and the request path's, where Error is frozen entirely (in a process of its own)", () => {
    const root = fileURLToPath(new URL("../../", import.meta.url))
    // Frozen for good, which no test could undo: run in a Node process of its own, over the library's sources.
    const script = `
      Object.freeze(Error)
      const Cassandra = (await import("cassandra-driver")).default
      const Effect = await import("effect/Effect")
      const Fiber = await import("effect/Fiber")
      const CassandraError = await import("effect-cassandra/CassandraError")
      const Query = await import("effect-cassandra/Query")
      const { Session } = await import("effect-cassandra/Session")
      const support = await import("./test/support/requestRunner.ts")
      const tags = [
        CassandraError.fromDriverError(new Cassandra.errors.OperationTimedOutError("t", "h")).reason._tag,
        CassandraError.sessionClosed().reason._tag,
        CassandraError.invalidIdentifier(["a b"]).reason._tag,
        CassandraError.configuration("no").reason._tag
      ]
      const session = { keyspace: undefined, execute: () => Effect.die("sent"), batch: () => Effect.die("sent") }
      const emptyIn = Query.cql\`SELECT * FROM t WHERE k IN \${Query.inList([])}\`
      tags.push((await Effect.runPromise(Effect.flip(Effect.provideService(emptyIn, Session, session)))).reason._tag)
      const requestTags = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
        const { calls, client } = support.recordingClient()
        const runner = yield* support.runnerOver(client, { throttle: { maxInFlight: 1, maxQueued: 0 } })
        const expired = yield* Effect.flip(runner.execute(support.request({ timeout: "20 millis" })))
        calls[0].answer()
        const held = yield* Effect.forkChild(runner.execute(support.request()))
        yield* support.sentCount(calls, 2)
        const refused = yield* Effect.flip(runner.execute(support.request()))
        calls[1].answer()
        yield* Fiber.join(held)
        const unreadable = yield* Effect.flip(runner.execute({ query: 42 }))
        return [expired.reason._tag, refused.reason._tag, unreadable.reason._tag]
      })))
      const after = new Error("the user's own failure")
      console.log(JSON.stringify({
        frozen: Object.isFrozen(Error),
        limit: Error.stackTraceLimit,
        tags: [...tags, ...requestTags],
        userFrames: /\\n\\s+at /.test(after.stack)
      }))
    `
    const output = execFileSync(
      process.execPath,
      ["--conditions=effect-cassandra/source", "--no-warnings", "--input-type=module", "--eval", script],
      { cwd: root, encoding: "utf8", timeout: 60_000 }
    )
    const result = JSON.parse(output.trim().split("\n").at(-1)!)
    assert.deepStrictEqual(result, {
      frozen: true,
      limit: 10,
      tags: [
        "ClientTimeout",
        "SessionClosed",
        "InvalidIdentifier",
        "Configuration",
        "InvalidArgument",
        "ClientTimeout",
        "Throttled",
        "InvalidArgument"
      ],
      userFrames: true
    })
  })
})

describe("stackless attack 4: nothing else about the errors changes", () => {
  it("classification, messages, JSON, schema encoding, inspect, driverError and isRetryable are as with frames", () => {
    for (const [name, failure] of driverFailures()) {
      for (const context of [{}, { operation: "execute", statement: "INSERT INTO users (id) VALUES (?)" }]) {
        const before = asBefore(() => CassandraError.fromDriverError(failure, context))
        const now = CassandraError.fromDriverError(failure, context)
        // The comparison is between an error with frames and one without.
        assert.isTrue(hasFrames(before) || CassandraError.isCassandraError(failure), name)
        assert.isFalse(hasFrames(now), name)
        assert.deepStrictEqual(visible(now), visible(before), name)
        assert.strictEqual(now.driverError, before.driverError, name)
        assert.deepStrictEqual(
          Schema.decodeUnknownSync(CassandraError.CassandraError)(Schema.encodeSync(CassandraError.CassandraError)(now))
            .message,
          now.message,
          name
        )
        for (const secret of ["hunter2", "68756e74657232"]) {
          for (const form of [now.message, JSON.stringify(now), Cause.pretty(Cause.fail(now)), now.stack ?? ""]) {
            assert.notInclude(form, secret, name)
          }
        }
      }
    }
    for (const [name, build] of ownErrors()) {
      assert.deepStrictEqual(visible(build()), visible(asBefore(build)), name)
    }
  })
})

describe("stackless attack 5: the user's own errors keep their frames", () => {
  it.live("after the deadline sweep fails a request, with a limit the user set while it was in flight", () =>
    withLimitEffect(
      dataLimit(10),
      Effect.gen(function* () {
        const { calls, client } = recordingClient()
        const runner = yield* runnerOver(client, {})
        const fiber = yield* Effect.forkChild(Effect.flip(runner.execute(request({ timeout: "30 millis" }))))
        yield* sentCount(calls, 1)
        // Set by the user while the request waits: what the deadline sweep must leave behind.
        Error.stackTraceLimit = 37
        const expired = yield* Fiber.join(fiber)
        const inFiber = usersOwnError()
        calls[0]!.answer()
        assert.strictEqual(expired.reason._tag, "ClientTimeout")
        assert.strictEqual(Error.stackTraceLimit, 37)
        assert.isTrue(hasFrames(inFiber))
        const later = yield* Effect.promise(
          () => new Promise<Error>((resolve) => setTimeout(() => resolve(usersOwnError()), 1))
        )
        assert.isTrue(hasFrames(later))
      }).pipe(Effect.scoped)
    )
  )

  it.live("after a failure classified in the driver's callback, also one whose classification threw inside", () =>
    withLimitEffect(
      dataLimit(10),
      Effect.gen(function* () {
        const unreadable = new Proxy(new Error("x"), {
          get: () => {
            throw new Error("unreadable")
          },
          getPrototypeOf: () => {
            throw new Error("unreadable")
          }
        })
        const failures: ReadonlyArray<unknown> = [responseError(codes.overloaded, "Queue full"), unreadable]
        for (const failure of failures) {
          let userErrorInDriverCallback: Error | undefined
          const rejected = Promise.reject(failure)
          // A callback of the user on the same driver promise, run after the library's.
          const client = {
            keyspace: undefined,
            execute: () => {
              rejected.catch(() => {
                userErrorInDriverCallback = usersOwnError()
              })
              return rejected
            }
          } as unknown as Cassandra.Client
          const runner = yield* runnerOver(client, {})
          const error = yield* Effect.flip(runner.execute(request()))
          const inFiber = usersOwnError()
          yield* Effect.yieldNow
          assert.isTrue(CassandraError.isCassandraError(error))
          assert.strictEqual(Error.stackTraceLimit, 10)
          assert.isTrue(hasFrames(inFiber))
          assert.isDefined(userErrorInDriverCallback)
          assert.isTrue(hasFrames(userErrorInDriverCallback))
        }
      }).pipe(Effect.scoped)
    )
  )

  it.live("after a throttle refusal, an invalid option and a statement refused before sending", () =>
    Effect.gen(function* () {
      const { calls, client } = recordingClient()
      const runner = yield* runnerOver(client, { throttle: { maxInFlight: 1, maxQueued: 0 } })
      const held = yield* Effect.forkChild(runner.execute(request()))
      yield* sentCount(calls, 1)
      const refusals = [
        yield* Effect.flip(runner.execute(request())),
        yield* Effect.flip(runner.execute({ query: 42 } as unknown as Session.Request)),
        yield* Effect.flip(runner.batch([{ query: 7 } as unknown as Session.Request], { type: "logged" }))
      ]
      const inFiber = usersOwnError()
      calls[0]!.answer()
      yield* Fiber.join(held)
      const query = queryFailure(Query.cql`SELECT * FROM t WHERE k IN ${Query.inList([])}`)
      assert.deepStrictEqual(
        [...refusals, query].map((error) => error.reason._tag),
        ["Throttled", "InvalidArgument", "InvalidArgument", "InvalidArgument"]
      )
      assert.isTrue(hasFrames(inFiber))
      assert.isTrue(hasFrames(usersOwnError()))
      assert.strictEqual(Error.stackTraceLimit, 10)
    }).pipe(Effect.scoped)
  )
})
