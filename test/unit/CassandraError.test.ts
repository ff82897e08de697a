import { createRequire } from "node:module"
import { inspect } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as CassandraError from "effect-cassandra/CassandraError"
import * as fc from "fast-check"

const codes = Cassandra.types.responseErrorCodes
const consistencies = Cassandra.types.consistencies
const coordinator = "10.0.0.1:9042"

/** A server error as lib/readers.js builds it: code and text, then the code's extra fields, then the coordinator. */
const responseError = (code: number, message: string, fields: Record<string, unknown> = {}) =>
  Object.assign(new Cassandra.errors.ResponseError(code, message), fields, { coordinator })

/** Node's error for a refused TCP connection. */
const connectionRefused = (address: string) =>
  Object.assign(new Error(`connect ECONNREFUSED ${address}`), { code: "ECONNREFUSED", syscall: "connect", errno: -111 })

/** The driver's encoder is exported but not typed; it raises the real errors for values that do not fit a type. */
const { Encoder } = Cassandra as unknown as {
  readonly Encoder: new (version: number, options: object) => { encode(value: unknown, type: number): Buffer }
}
const encoder = new Encoder(4, { encoding: { useBigIntAsLong: true, useBigIntAsVarint: true } })

const encodingError = (value: unknown, type: Cassandra.types.dataTypes): unknown => {
  try {
    encoder.encode(value, type)
  } catch (error) {
    return error
  }
  throw new Error(`the encoder accepted ${String(value)} for type ${type}`)
}

/** Declared abstract in the driver's typings, yet thrown as is for a closed socket and a connect timeout. */
const DriverError = Cassandra.errors.DriverError as unknown as new (message: string) => Cassandra.errors.DriverError

const reasonOf = (error: unknown) => CassandraError.fromDriverError(error).reason

/** Everything a user or a log could see of an error: its message, its JSON form and its schema-encoded form. */
const visibleForms = (error: CassandraError.CassandraError) => [
  error.message,
  JSON.stringify(error),
  JSON.stringify(Schema.encodeSync(CassandraError.CassandraError)(error))
]

describe("CassandraError.fromDriverError: server errors", () => {
  it("reads UNAVAILABLE with the consistency level by name", () => {
    const error = CassandraError.fromDriverError(
      responseError(codes.unavailableException, "Not enough replicas", {
        consistencies: consistencies.localQuorum,
        required: 3,
        alive: 2
      })
    )
    assert.instanceOf(error.reason, CassandraError.Unavailable)
    assert.deepInclude(error.reason, { coordinator, consistency: "LOCAL_QUORUM", required: 3, alive: 2 })
    assert.include(error.message, "2 of 3 required replicas alive at LOCAL_QUORUM")
    assert.isTrue(error.isRetryable)
  })

  it("reads READ_TIMEOUT and says which replicas did not answer", () => {
    const fields = { consistencies: consistencies.quorum, blockFor: 2 }
    const short = reasonOf(responseError(codes.readTimeout, "t", { ...fields, received: 1, isDataPresent: 0 }))
    const noData = reasonOf(responseError(codes.readTimeout, "t", { ...fields, received: 2, isDataPresent: 0 }))
    const repair = reasonOf(responseError(codes.readTimeout, "t", { ...fields, received: 2, isDataPresent: 1 }))
    assert.instanceOf(short, CassandraError.ReadTimeout)
    assert.deepInclude(short, { consistency: "QUORUM", received: 1, blockFor: 2, dataPresent: false })
    assert.include(short.message, "1 of 2 required replicas answered")
    assert.include(noData.message, "the replica asked for the data did not answer")
    assert.deepInclude(repair, { dataPresent: true })
    assert.include(repair.message, "repairing an inconsistent replica timed out")
    assert.isTrue(short.isRetryable)
  })

  it("reads WRITE_TIMEOUT with the write type", () => {
    const reason = reasonOf(
      responseError(codes.writeTimeout, "t", {
        consistencies: consistencies.one,
        received: 0,
        blockFor: 1,
        writeType: "BATCH_LOG"
      })
    )
    assert.instanceOf(reason, CassandraError.WriteTimeout)
    assert.deepInclude(reason, { consistency: "ONE", received: 0, blockFor: 1, writeType: "BATCH_LOG" })
    assert.include(reason.message, "write timeout (BATCH_LOG) at ONE: 0 of 1 required replicas acknowledged")
    assert.isTrue(reason.isRetryable)
  })

  it("reads READ_FAILURE and WRITE_FAILURE with the failure count and the per-replica codes", () => {
    const read = reasonOf(
      responseError(codes.readFailure, "f", {
        consistencies: consistencies.localOne,
        received: 0,
        blockFor: 1,
        failures: 1,
        reasons: { "10.0.0.2": 1 },
        isDataPresent: 0
      })
    )
    const write = reasonOf(
      responseError(codes.writeFailure, "f", {
        consistencies: consistencies.all,
        received: 1,
        blockFor: 3,
        failures: 2,
        writeType: "SIMPLE"
      })
    )
    assert.instanceOf(read, CassandraError.ReadFailure)
    assert.deepInclude(read, { consistency: "LOCAL_ONE", failures: 1, dataPresent: false })
    assert.deepStrictEqual(read.failuresByReplica, { "10.0.0.2": 1 })
    assert.instanceOf(write, CassandraError.WriteFailure)
    assert.deepInclude(write, { consistency: "ALL", received: 1, blockFor: 3, failures: 2, writeType: "SIMPLE" })
    assert.isUndefined(write.failuresByReplica)
    assert.include(write.message, "Write (SIMPLE) failed on 2 replica(s) at ALL")
    assert.isFalse(read.isRetryable)
    assert.isFalse(write.isRetryable)
  })

  it("reads ALREADY_EXISTS for a table and for a keyspace", () => {
    const table = reasonOf(responseError(codes.alreadyExists, "exists", { keyspace: "shop", table: "orders" }))
    const keyspace = reasonOf(responseError(codes.alreadyExists, "exists", { keyspace: "shop" }))
    assert.instanceOf(table, CassandraError.AlreadyExists)
    assert.deepInclude(table, { keyspace: "shop", table: "orders" })
    assert.include(table.message, "Table shop.orders already exists")
    assert.include(keyspace.message, "Keyspace shop already exists")
    assert.isFalse(table.isRetryable)
  })

  it("reads FUNCTION_FAILURE with the function's signature", () => {
    const reason = reasonOf(
      responseError(
        codes.functionFailure,
        "execution of 'shop.price[int, text]' failed: java.lang.ArithmeticException",
        {
          keyspace: "shop",
          functionName: "price",
          argTypes: ["int", "text"]
        }
      )
    )
    assert.instanceOf(reason, CassandraError.FunctionFailure)
    assert.deepInclude(reason, { keyspace: "shop", functionName: "price" })
    assert.deepStrictEqual(reason.argTypes, ["int", "text"])
    assert.include(reason.message, "Function shop.price(int, text) failed")
  })

  it("keeps the whole server text of a syntax error, which quotes only the statement", () => {
    const text = "line 1:0 no viable alternative at input 'SELEC' ([SELEC]...)"
    const error = CassandraError.fromDriverError(responseError(codes.syntaxError, text), {
      operation: "execute",
      statement: "SELEC * FROM users"
    })
    assert.instanceOf(error.reason, CassandraError.Syntax)
    assert.strictEqual(error.message, `execute: CQL syntax error: ${text}`)
    assert.strictEqual(error.statement, "SELEC * FROM users")
    assert.isFalse(error.isRetryable)
  })

  const byCode = [
    [codes.invalid, "keyspace nope does not exist", "Invalid", false],
    [codes.configError, "Unknown replication strategy", "Invalid", false],
    [codes.unauthorized, "User bob has no SELECT permission on <table shop.orders>", "Unauthorized", false],
    [codes.overloaded, "Too many in flight hints", "Overloaded", true],
    [codes.isBootstrapping, "Cannot read from a bootstrapping node", "Bootstrapping", true],
    [codes.truncateError, "Truncate timed out", "Truncate", true],
    [codes.serverError, "java.lang.AssertionError", "Server", false],
    [codes.protocolError, "Invalid or unsupported protocol version (5)", "Protocol", false],
    [codes.badCredentials, "Provided username bob and/or password are incorrect", "Authentication", false],
    [codes.unprepared, "Prepared query with ID 0a0b not found", "Unknown", false]
  ] as const

  for (const [code, text, tag, retryable] of byCode) {
    it(`classifies server code 0x${code.toString(16)} as ${tag}, ${retryable ? "retryable" : "not retryable"}`, () => {
      const error = CassandraError.fromDriverError(responseError(code, text))
      assert.strictEqual(error.reason._tag, tag)
      assert.strictEqual(error.isRetryable, retryable)
      assert.deepInclude(error.reason, { coordinator })
    })
  }

  it("keeps the server text of the reasons that carry it", () => {
    assert.strictEqual(
      reasonOf(responseError(codes.unauthorized, "User bob has no SELECT permission on <table shop.orders>")).message,
      "Not authorized: User bob has no SELECT permission on <table shop.orders>"
    )
    assert.strictEqual(
      reasonOf(responseError(codes.invalid, "Undefined column name nope in table shop.orders")).message,
      "Invalid request: Undefined column name nope in table shop.orders"
    )
    assert.include(reasonOf(responseError(codes.unprepared, "not found", { queryId: Buffer.of(1) })).message, "0x2500")
  })
})

describe("CassandraError.fromDriverError: driver and network errors", () => {
  it("reads the driver's client-side timeout with the host", () => {
    const error = CassandraError.fromDriverError(
      new Cassandra.errors.OperationTimedOutError(
        "The host 10.0.0.1:9042 did not reply before timeout 12000 ms",
        coordinator
      )
    )
    assert.instanceOf(error.reason, CassandraError.ClientTimeout)
    assert.strictEqual(error.reason.coordinator, coordinator)
    assert.include(error.message, "did not reply before timeout 12000 ms")
    assert.isTrue(error.isRetryable)
  })

  it("classifies closed sockets, connect timeouts and refused connections as Connection", () => {
    const closed = Object.assign(new DriverError("Socket was closed"), { isSocketError: true })
    const timeout = new DriverError("Connection timeout")
    for (const error of [closed, timeout, connectionRefused("10.0.0.9:9042")]) {
      const reason = reasonOf(error)
      assert.instanceOf(reason, CassandraError.Connection)
      assert.isTrue(reason.isRetryable)
    }
    assert.deepInclude(reasonOf(connectionRefused("10.0.0.9:9042")), {
      code: "ECONNREFUSED",
      detail: "connect ECONNREFUSED 10.0.0.9:9042"
    })
  })

  it("classifies an exhausted connection pool as Busy, retryable", () => {
    const reason = reasonOf(new Cassandra.errors.BusyConnectionError(coordinator, 2048, 1))
    assert.instanceOf(reason, CassandraError.Busy)
    assert.include(reason.message, "pooling.maxRequestsPerConnection")
    assert.isTrue(reason.isRetryable)
  })

  it("tells refused credentials from a missing authenticator, and never keeps the username", () => {
    const refusedAnswer = responseError(codes.badCredentials, "Provided username alice and/or password are incorrect")
    const refused = Object.assign(new Cassandra.errors.AuthenticationError(refusedAnswer.message), {
      additionalInfo: refusedAnswer
    })
    const missing = new Cassandra.errors.AuthenticationError(
      "Host 10.0.0.1:9042 requires authentication, but no authenticator found in the options"
    )
    const refusedError = CassandraError.fromDriverError(refused, { operation: "connect" })
    assert.deepInclude(refusedError.reason, { _tag: "Authentication", refusedByServer: true })
    assert.include(refusedError.message, "refused the credentials; check the username and password")
    for (const form of visibleForms(refusedError)) assert.notInclude(form, "alice")
    assert.deepInclude(reasonOf(missing), { _tag: "Authentication", refusedByServer: false })
    assert.include(reasonOf(missing).message, "no authenticator found in the options")
    assert.isFalse(refusedError.isRetryable)
  })

  it("classifies the driver's argument errors as InvalidArgument", () => {
    const profile = reasonOf(new Cassandra.errors.ArgumentError('Execution profile "nope" not found'))
    const unsupported = reasonOf(new Cassandra.errors.NotSupportedError("Batch is not supported"))
    assert.deepInclude(profile, { _tag: "InvalidArgument", detail: 'Execution profile "nope" not found' })
    assert.strictEqual(unsupported._tag, "InvalidArgument")
    assert.isFalse(profile.isRetryable)
  })

  it("classifies the encoder's errors as InvalidArgument without the value", () => {
    const text = reasonOf(encodingError({ password: "hunter2" }, Cassandra.types.dataTypes.text))
    const int = reasonOf(encodingError(3_000_000_000, Cassandra.types.dataTypes.int))
    const varint = reasonOf(encodingError("zz", Cassandra.types.dataTypes.varint))
    assert.deepInclude(text, {
      _tag: "InvalidArgument",
      detail: "Not a valid text value, expected String (value not shown)"
    })
    assert.deepInclude(int, { _tag: "InvalidArgument" })
    assert.notInclude(int.message, "3000000000")
    assert.deepInclude(varint, { _tag: "InvalidArgument" })
    assert.notInclude(varint.message, "zz")
  })

  it("classifies other failures as Unknown, keeping only the driver's own texts", () => {
    const internal = reasonOf(new Cassandra.errors.DriverInternalError("Unexpected response from Cassandra"))
    const foreign = reasonOf(new Error("Invalid input 'hunter2'."))
    const thrown = reasonOf("boom")
    assert.deepInclude(internal, { _tag: "Unknown", errorName: "DriverInternalError" })
    assert.include(internal.message, "Unexpected response from Cassandra")
    assert.deepInclude(foreign, { _tag: "Unknown", errorName: "Error" })
    assert.notProperty(foreign, "detail")
    assert.notInclude(foreign.message, "hunter2")
    assert.deepInclude(thrown, { _tag: "Unknown", errorName: "string" })
    assert.isFalse(internal.isRetryable)
  })
})

describe("CassandraError.fromDriverError: NoHostAvailable", () => {
  it("summarises each host tried with its reason's tag and message", () => {
    const error = CassandraError.fromDriverError(
      new Cassandra.errors.NoHostAvailableError({
        "10.0.0.9:9042": connectionRefused("10.0.0.9:9042"),
        "10.0.0.8:9042": new Cassandra.errors.OperationTimedOutError(
          "The host 10.0.0.8:9042 did not reply",
          "10.0.0.8:9042"
        )
      }),
      { operation: "connect" }
    )
    assert.instanceOf(error.reason, CassandraError.NoHostAvailable)
    assert.deepStrictEqual(error.reason.hosts, [
      {
        address: "10.0.0.9:9042",
        reason: "Connection",
        message: "Connection to 10.0.0.9:9042 failed: connect ECONNREFUSED 10.0.0.9:9042",
        retryable: true
      },
      {
        address: "10.0.0.8:9042",
        reason: "ClientTimeout",
        message: "Client-side timeout: The host 10.0.0.8:9042 did not reply",
        retryable: true
      }
    ])
    assert.strictEqual(
      error.message,
      "connect: No host could serve the request: 10.0.0.9:9042 Connection: Connection to 10.0.0.9:9042 failed: connect ECONNREFUSED 10.0.0.9:9042; 10.0.0.8:9042 ClientTimeout: Client-side timeout: The host 10.0.0.8:9042 did not reply"
    )
    assert.isTrue(error.isRetryable)
  })

  it("shows at most three hosts in the message", () => {
    const hosts = Array.from({ length: 5 }, (_, index) => `10.0.0.${index + 1}:9042`)
    const error = CassandraError.fromDriverError(
      new Cassandra.errors.NoHostAvailableError(
        Object.fromEntries(hosts.map((host) => [host, connectionRefused(host)]))
      )
    )
    assert.lengthOf((error.reason as CassandraError.NoHostAvailable).hosts, 5)
    assert.include(error.message, "10.0.0.3:9042")
    assert.notInclude(error.message, "10.0.0.4:9042")
    assert.match(error.message, /; and 2 more$/)
  })

  it("is the hosts' common answer when every host tried was reached and gave the same one", () => {
    const unavailable = CassandraError.fromDriverError(
      new Cassandra.errors.NoHostAvailableError({
        [coordinator]: responseError(codes.unavailableException, "Not enough replicas", {
          consistencies: consistencies.quorum,
          required: 2,
          alive: 1
        })
      })
    )
    const wrongDataCenter = CassandraError.fromDriverError(
      new Cassandra.errors.NoHostAvailableError({
        "10.0.0.2:9042": new Cassandra.errors.ArgumentError(
          "localDataCenter was configured as 'dc9', but only found hosts in data centers: [datacenter1]"
        )
      })
    )
    assert.deepInclude(unavailable.reason, { _tag: "Unavailable", consistency: "QUORUM", required: 2, alive: 1 })
    assert.deepInclude(wrongDataCenter.reason, { _tag: "InvalidArgument", coordinator: "10.0.0.2:9042" })
    assert.include(wrongDataCenter.message, "localDataCenter was configured as 'dc9'")
    assert.isFalse(wrongDataCenter.isRetryable)
  })

  it("is not retryable when every host failed for a non-retryable reason", () => {
    const error = CassandraError.fromDriverError(
      new Cassandra.errors.NoHostAvailableError({
        "10.0.0.1:9042": new Cassandra.errors.AuthenticationError("Authentication provider not set"),
        "10.0.0.2:9042": new Cassandra.errors.ArgumentError("Invalid query at index 0")
      })
    )
    assert.strictEqual(error.reason._tag, "NoHostAvailable")
    assert.isFalse(error.isRetryable)
  })

  it("keeps the driver's explanation when no host was tried", () => {
    const unresolved = reasonOf(new Cassandra.errors.NoHostAvailableError({}, "No host could be resolved"))
    const shutDown = reasonOf(
      new Cassandra.errors.NoHostAvailableError(null, "Connecting after shutdown is not supported")
    )
    assert.deepInclude(unresolved, { _tag: "NoHostAvailable", detail: "No host could be resolved" })
    assert.strictEqual(unresolved.message, "No host could serve the request: No host could be resolved")
    assert.deepInclude(shutDown, { detail: "Connecting after shutdown is not supported" })
    assert.isTrue(unresolved.isRetryable)
  })
})

describe("CassandraError: no bound values or secrets in what is shown", () => {
  it("never shows the bound value an encoder error quotes", () => {
    const types = [
      Cassandra.types.dataTypes.text,
      Cassandra.types.dataTypes.int,
      Cassandra.types.dataTypes.bigint,
      Cassandra.types.dataTypes.varint,
      Cassandra.types.dataTypes.inet,
      Cassandra.types.dataTypes.uuid,
      Cassandra.types.dataTypes.timestamp,
      Cassandra.types.dataTypes.date
    ]
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9]{4,16}$/).map((suffix) => `s3cr3t${suffix}`),
        fc.constantFrom(...types),
        fc.boolean(),
        (secret, type, wrapped) => {
          const value = type === Cassandra.types.dataTypes.text || wrapped ? { password: secret } : secret
          const error = CassandraError.fromDriverError(encodingError(value, type), { operation: "execute" })
          assert.strictEqual(error.reason._tag, "InvalidArgument")
          for (const form of visibleForms(error)) assert.notInclude(form, "s3cr3t")
        }
      )
    )
  })

  it("redacts the bound values Cassandra echoes in its error texts", () => {
    const echoes = [
      [
        codes.invalid,
        "Expected 4 or 16 byte inetaddress; got 4028000000000000",
        "Expected 4 or 16 byte inetaddress; got <redacted>"
      ],
      [
        codes.invalid,
        "Error decoding JSON value for v: Unable to make int from 'hunter2'",
        "Error decoding JSON value for v: Unable to make int from '<redacted>'"
      ],
      [
        codes.invalid,
        `Could not decode JSON string as a map: com.fasterxml.jackson.core.JsonParseException: Unrecognized token 'hunter2': was expecting (JSON String)\n at [Source: REDACTED]. (String was: {"k": 1, "v": hunter2})`,
        "Could not decode JSON string as a map: com.fasterxml.jackson.core.JsonParseException: Unrecognized token '<redacted>': was expecting (JSON String)\n at [Source: REDACTED]. (String was: <redacted>)"
      ],
      [codes.invalid, "Invalid UTF-8 bytes 68756e74657232", "Invalid UTF-8 bytes <redacted>"],
      [
        codes.functionFailure,
        "execution of 'shop.f[text]' failed: bad input 'hunter2'",
        "execution of '<redacted>' failed: bad input '<redacted>'"
      ],
      [codes.serverError, "java.lang.RuntimeException: 0x68756e74657232", "java.lang.RuntimeException: <redacted>"]
    ] as const
    for (const [code, text, redacted] of echoes) {
      const reason = reasonOf(responseError(code, text, { keyspace: "shop", functionName: "f", argTypes: ["text"] }))
      assert.strictEqual("serverMessage" in reason ? reason.serverMessage : undefined, redacted)
    }
    const uuid = "Unknown table id 5a1c395e-b41f-11e5-9f22-ba0be0483c18"
    assert.strictEqual(reasonOf(responseError(codes.invalid, uuid)).message, `Invalid request: ${uuid}`)
  })

  it("never reads params, bound values or credentials attached to a driver error", () => {
    const error = CassandraError.fromDriverError(
      responseError(codes.invalid, "there were 1 markers(?) in CQL but 2 bound variables", {
        params: ["hunter2", { password: "hunter2" }],
        query: "INSERT INTO users (id) VALUES (?)",
        credentials: { username: "alice", password: "hunter2" }
      }),
      { operation: "execute" }
    )
    assert.strictEqual(error.statement, "INSERT INTO users (id) VALUES (?)")
    for (const form of visibleForms(error)) {
      assert.notInclude(form, "hunter2")
      assert.notInclude(form, "alice")
    }
  })

  it("never shows a secret from the inner errors of NoHostAvailable, nor the driver's own summary of them", () => {
    const inner = encodingError({ password: "hunter2" }, Cassandra.types.dataTypes.text)
    const driverError = new Cassandra.errors.NoHostAvailableError({
      [coordinator]: inner,
      "10.0.0.2:9042": connectionRefused("10.0.0.2:9042")
    })
    assert.include(driverError.message, "hunter2")
    const error = CassandraError.fromDriverError(driverError)
    assert.strictEqual(error.reason._tag, "NoHostAvailable")
    for (const form of visibleForms(error)) assert.notInclude(form, "hunter2")
  })
})

describe("CassandraError: the error value", () => {
  const unavailable = () =>
    CassandraError.fromDriverError(
      responseError(codes.unavailableException, "Not enough replicas", {
        consistencies: consistencies.localQuorum,
        required: 3,
        alive: 2,
        query: "SELECT * FROM orders"
      }),
      { operation: "execute" }
    )

  it("keeps the driver error as its cause, the driver's statement text and the operation", () => {
    const driverError = new Cassandra.errors.ResponseError(codes.invalid, "bad")
    const error = CassandraError.fromDriverError(driverError, { operation: "batch", statement: "BEGIN BATCH" })
    assert.strictEqual(error.driverError, driverError)
    assert.strictEqual(error.operation, "batch")
    assert.strictEqual(error.statement, "BEGIN BATCH")
    assert.strictEqual(unavailable().statement, "SELECT * FROM orders")
  })

  it("is recognised by isCassandraError and returned as is by fromDriverError", () => {
    const error = unavailable()
    assert.isTrue(CassandraError.isCassandraError(error))
    assert.isFalse(CassandraError.isCassandraError(error.driverError))
    assert.isFalse(CassandraError.isCassandraError({ _tag: "CassandraError" }))
    assert.strictEqual(CassandraError.fromDriverError(error, { operation: "other" }), error)
  })

  it("has a JSON form with the message and the reason's detail, without the driver error", () => {
    assert.deepStrictEqual(JSON.parse(JSON.stringify(unavailable())), {
      _tag: "CassandraError",
      message:
        "execute: 2 of 3 required replicas alive at LOCAL_QUORUM; check the replicas' state or lower the consistency level",
      reason: { _tag: "Unavailable", coordinator, consistency: "LOCAL_QUORUM", required: 3, alive: 2 },
      operation: "execute",
      statement: "SELECT * FROM orders"
    })
  })

  it("encodes through its schema without the driver error, and decodes back", () => {
    const encoded = Schema.encodeSync(CassandraError.CassandraError)(unavailable())
    assert.deepStrictEqual(JSON.parse(JSON.stringify(encoded)), {
      _tag: "CassandraError",
      reason: { _tag: "Unavailable", coordinator, consistency: "LOCAL_QUORUM", required: 3, alive: 2 },
      operation: "execute",
      statement: "SELECT * FROM orders"
    })
    const decoded = Schema.decodeUnknownSync(CassandraError.CassandraError)(JSON.parse(JSON.stringify(encoded)))
    assert.deepStrictEqual(Schema.encodeSync(CassandraError.CassandraError)(decoded), encoded)
    assert.instanceOf(decoded.reason, CassandraError.Unavailable)
    assert.strictEqual(decoded.message, unavailable().message)
    assert.isTrue(decoded.isRetryable)
  })

  it.effect("lets Effect.catchReason handle one reason and keeps the others", () =>
    Effect.gen(function* () {
      const alive = yield* Effect.fail(unavailable()).pipe(
        Effect.catchReason("CassandraError", "Unavailable", (reason) => Effect.succeed(reason.alive))
      )
      assert.strictEqual(alive, 2)
      const unhandled = yield* Effect.fail(unavailable()).pipe(
        Effect.catchReason("CassandraError", "Syntax", () => Effect.succeed(0)),
        Effect.flip
      )
      assert.strictEqual(unhandled.reason._tag, "Unavailable")
    })
  )

  it("builds the library's own errors: closed session, invalid names, unusable options", () => {
    const closed = CassandraError.sessionClosed({ operation: "execute", statement: "SELECT 1" })
    const names = CassandraError.invalidIdentifier(["users; DROP TABLE users"], { operation: "execute" })
    const options = CassandraError.configuration("Could not read the TLS CA certificate file ca.pem (ENOENT)")
    assert.deepInclude(closed, { operation: "execute", statement: "SELECT 1" })
    assert.strictEqual(closed.reason._tag, "SessionClosed")
    assert.strictEqual(
      names.message,
      'execute: Not a valid CQL name: "users; DROP TABLE users"; the statement was not sent'
    )
    assert.strictEqual(options.message, "Could not read the TLS CA certificate file ca.pem (ENOENT)")
    for (const error of [closed, names, options]) {
      assert.isFalse(error.isRetryable)
      assert.isUndefined(error.driverError)
    }
  })
})

describe("printed errors", () => {
  it("keep the raw driver error, and the bound value its text quotes, out of Cause.pretty and inspect", () => {
    const driverError = new TypeError("Expected Number, obtained { password: 'hunter2' }")
    const error = CassandraError.fromDriverError(driverError, { operation: "execute" })
    assert.strictEqual(error.driverError, driverError)
    const printed = Cause.pretty(Cause.fail(error))
    assert.include(printed, "Expected Number")
    assert.notInclude(printed, "hunter2")
    assert.notInclude(inspect(error, { depth: 10 }), "hunter2")
    assert.notInclude(inspect(Cause.fail(error), { depth: 10 }), "hunter2")
  })
})

const require = createRequire(import.meta.url)

/** The driver's connection pool (lib/host-connection-pool.js) is not exported; it is what raises its own errors. */
const HostConnectionPool: new (
  host: object,
  protocolVersion: number
) => { borrowConnection(): unknown } = require("cassandra-driver/lib/host-connection-pool.js")
const { defaultOptions } = require("cassandra-driver/lib/client-options.js") as { defaultOptions(): object }

/** The error a host's pool throws while it has no open connection (during a restart or a reconnection). */
const noConnectionAvailable = (address: string): unknown => {
  const pool = new HostConnectionPool({ address, options: defaultOptions() }, 4)
  try {
    pool.borrowConnection()
  } catch (error) {
    return error
  }
  throw new Error("the pool lent a connection it does not have")
}

describe("CassandraError.fromDriverError: transient pool errors", () => {
  it("classifies a pool with no connection, and one closing, as Connection, retryable, keeping the driver's text", () => {
    const empty = reasonOf(Object.assign(noConnectionAvailable(coordinator) as Error, { coordinator }))
    assert.deepInclude(empty, { _tag: "Connection", coordinator, detail: "No connection available" })
    assert.isTrue(empty.isRetryable)
    // lib/host-connection-pool.js: a connection opened while its pool was closing is refused with this plain Error.
    const closing = reasonOf(new Error("Connection closed"))
    assert.deepInclude(closing, { _tag: "Connection", detail: "Connection closed" })
    assert.isTrue(closing.isRetryable)
  })

  it("makes NoHostAvailable retryable when every host failed for a transient connection reason", () => {
    // lib/request-handler.js keeps, per host tried, the error its pool threw or the text of a host marked down.
    const error = CassandraError.fromDriverError(
      new Cassandra.errors.NoHostAvailableError({
        "10.0.0.1:9042": noConnectionAvailable("10.0.0.1:9042"),
        "10.0.0.2:9042": "Host considered as DOWN",
        "10.0.0.3:9042": new Error("Connection closed")
      })
    )
    assert.instanceOf(error.reason, CassandraError.NoHostAvailable)
    assert.deepStrictEqual(
      error.reason.hosts.map((host) => [host.reason, host.retryable]),
      [
        ["Connection", true],
        ["Connection", true],
        ["Connection", true]
      ]
    )
    assert.include(error.message, "No connection available")
    assert.include(error.message, "Host considered as DOWN")
    assert.isTrue(error.isRetryable)
  })

  it("keeps other plain errors Unknown, with their text withheld", () => {
    const foreign = reasonOf(new Error("Connection closed by 'hunter2'"))
    assert.deepInclude(foreign, { _tag: "Unknown", errorName: "Error" })
    assert.notInclude(foreign.message, "hunter2")
  })
})

/** The driver's encoder with the type of a column: `list<frozen<set<int>>>` and the like. */
const encodingErrorOf = (value: unknown, type: object): unknown => {
  try {
    encoder.encode(value, type as unknown as number)
  } catch (error) {
    return error
  }
  throw new Error("the encoder accepted the value")
}

describe("CassandraError: redaction keeps the facts", () => {
  it("keeps the sizes of a request too big for the server", () => {
    const text = "Request is too big: length 20971576 exceeds maximum allowed length 16777216."
    assert.strictEqual(reasonOf(responseError(codes.invalid, text)).message, `Invalid request: ${text}`)
  })

  it("says that more than 65,535 bound values were given, with their count", () => {
    // lib/writers.js writes the count of bound values as an unsigned 16-bit number (FrameWriter.writeShort).
    let error: unknown
    try {
      Buffer.alloc(2).writeUInt16BE(70_000, 0)
    } catch (thrown) {
      error = thrown
    }
    const reason = reasonOf(error)
    assert.strictEqual(reason._tag, "InvalidArgument")
    assert.include(reason.message, "70000")
    assert.include(reason.message, "65535")
    assert.notInclude(reason.message, "a bound value is out of range")
  })

  it("keeps the argument the driver names and what it received for an empty collection inside a collection", () => {
    const listOfSets = {
      code: Cassandra.types.dataTypes.list,
      info: { code: Cassandra.types.dataTypes.set, info: { code: Cassandra.types.dataTypes.int } }
    }
    const reason = reasonOf(encodingErrorOf([[1], []], listOfSets))
    assert.strictEqual(reason._tag, "InvalidArgument")
    assert.include(reason.message, 'The "list[4]" argument must be an instance of Buffer or Uint8Array. Received null')
    assert.include(reason.message, "empty collection")
  })

  it("keeps the range a bound value must fit, never the value", () => {
    const reason = reasonOf(encodingError(3_000_000_000, Cassandra.types.dataTypes.int))
    assert.include(reason.message, "It must be >= -2147483648 and <= 2147483647")
    assert.notInclude(reason.message, "3000000000")
    assert.notInclude(reason.message, "3_000_000_000")
  })

  it("keeps the whole text of an encoder error that quotes no value", () => {
    const listOfInts = { code: Cassandra.types.dataTypes.list, info: { code: Cassandra.types.dataTypes.int } }
    const reason = reasonOf(encodingErrorOf([1, null], listOfInts))
    assert.deepInclude(reason, { _tag: "InvalidArgument", detail: "A collection can't contain null or unset values" })
  })

  it("keeps the type of what the driver obtained instead of a collection, never its content", () => {
    const reason = reasonOf(encodingError(new Set(["hunter2"]), Cassandra.types.dataTypes.list))
    assert.strictEqual(reason._tag, "InvalidArgument")
    assert.include(reason.message, "Not a valid list value, expected Array obtained Set(1)")
    assert.notInclude(reason.message, "hunter2")
  })

  it("redacts the username of a refused login wherever the server's text appears", () => {
    const text = "Provided username alice smith and/or password are incorrect"
    const missing = new Cassandra.errors.AuthenticationError(text)
    const reason = reasonOf(missing)
    assert.notInclude(reason.message, "alice")
    assert.include(reason.message, "Provided username <redacted> and/or password are incorrect")
  })
})

describe("CassandraError.fromDriverError: values that cannot be read", () => {
  it("never throws, whatever was thrown: getters and proxies that throw become Unknown", () => {
    const throwing = (what: string) => () => {
      throw new Error(what)
    }
    const unreadable: ReadonlyArray<unknown> = [
      new Proxy({}, { get: throwing("read"), getPrototypeOf: throwing("prototype"), has: throwing("has") }),
      Object.defineProperty(new Error("x"), "message", { get: throwing("message") }),
      Object.defineProperty(new Error("x"), "code", { get: throwing("code") }),
      Object.defineProperty(
        new Cassandra.errors.ResponseError(Cassandra.types.responseErrorCodes.invalid, "x"),
        "message",
        { get: throwing("message") }
      ),
      Object.assign(new Cassandra.errors.NoHostAvailableError({}), {
        innerErrors: new Proxy({}, { ownKeys: throwing("keys") })
      })
    ]
    for (const value of unreadable) {
      const error = CassandraError.fromDriverError(value, { operation: "execute" })
      assert.instanceOf(error.reason, CassandraError.Unknown)
      assert.strictEqual(error.operation, "execute")
      assert.strictEqual(
        error.reason.message,
        "Unexpected value that could not be read: its text is withheld because it may echo a bound value (see the error's driverError)"
      )
    }
  })
})

describe("CassandraError: JSON values echoed by the server", () => {
  it("withholds the value of a JSON field of the wrong type and Jackson's quoted source, keeping column, types and position", () => {
    const invalid = (text: string) =>
      CassandraError.fromDriverError(
        new Cassandra.errors.ResponseError(Cassandra.types.responseErrorCodes.invalid, text)
      ).message
    assert.strictEqual(
      invalid("Error decoding JSON value for b: Expected a boolean value, but got a Integer: 7531"),
      "Invalid request: Error decoding JSON value for b: Expected a boolean value, but got a Integer: <redacted>"
    )
    assert.strictEqual(
      invalid(
        "Could not decode JSON string as a map: com.fasterxml.jackson.core.JsonParseException: Unrecognized token 'hunter2': was expecting ('true', 'false' or 'null')\n at [Source: (String)\"hunter2 \"x\"\"; line: 1, column: 8]"
      ),
      "Invalid request: Could not decode JSON string as a map: com.fasterxml.jackson.core.JsonParseException: Unrecognized token '<redacted>': was expecting ('<redacted>', '<redacted>' or '<redacted>')\n at [Source: (String)<redacted>; line: 1, column: 8]"
    )
  })
})

/** Whether an error's stack names any frame (a stack trace's lines start with "    at "). */
const hasFrames = (error: Error) => /\n\s+at /.test(error.stack ?? "")

describe("CassandraError: built without stack frames", () => {
  // A request that fails is built in a driver callback or the deadline sweep, where the frames would only name the
  // library's internals; capturing them cost most of a failed request's CPU, under overload when it matters most.
  const timeout = new Cassandra.errors.OperationTimedOutError("Operation timed out", "10.0.0.1:9042")

  it("has no frames in the error, its reason, or the library's own errors, and keeps its header", () => {
    const errors = [
      CassandraError.fromDriverError(timeout, { operation: "execute" }),
      CassandraError.fromDriverError(responseError(codes.overloaded, "Queue full")),
      CassandraError.sessionClosed({ operation: "execute" }),
      CassandraError.invalidIdentifier(["a b"]),
      CassandraError.configuration("no such file")
    ]
    for (const error of errors) {
      assert.isFalse(hasFrames(error), `${error.reason._tag} has frames`)
      assert.isFalse(hasFrames(error.reason), `${error.reason._tag}'s reason has frames`)
      assert.include(error.stack, "CassandraError")
    }
    // The driver's own error keeps its stack: it is the driver's, and kept for debugging.
    assert.isTrue(hasFrames(timeout))
  })
})
