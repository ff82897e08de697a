import * as Tls from "node:tls"
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as CassandraError from "effect-cassandra/CassandraError"
import type * as Session from "effect-cassandra/Session"
import * as SessionModule from "effect-cassandra/Session"
import { makeClientOptions } from "../../src/internal/clientOptions.ts"

const base: Session.Options = { contactPoints: ["127.0.0.1"], localDataCenter: "datacenter1" }

const build = (options: Partial<Session.Options>) => makeClientOptions({ ...base, ...options })
const driverOptionsOf = (options: Partial<Session.Options>) =>
  Effect.map(build(options), (built) => built.clientOptions)

/** The Configuration message of options the session refuses to build with. */
const refusal = (options: Partial<Session.Options>) =>
  Effect.map(Effect.flip(build(options)), (error) => {
    assert.instanceOf(error.reason, CassandraError.Configuration)
    return error.message
  })

const aCertificate = Tls.rootCertificates[0]!

describe("session options", () => {
  it.effect("refuse an empty contact point list, blank addresses and entries that are not strings", () =>
    Effect.gen(function* () {
      assert.include(yield* refusal({ contactPoints: [] }), "contactPoints needs at least one node address")
      assert.include(yield* refusal({ contactPoints: ["127.0.0.1", "  "] }), "contactPoints[1]")
      assert.include(yield* refusal({ contactPoints: [""] }), "a blank string")
      assert.include(yield* refusal({ contactPoints: [42 as unknown as string] }), "contactPoints[0] must be")
      assert.include(
        yield* refusal({ contactPoints: "127.0.0.1" as unknown as ReadonlyArray<string> }),
        "contactPoints needs"
      )
      assert.include(
        yield* refusal({ driverOptions: { contactPoints: [] } }),
        "driverOptions.contactPoints needs at least one"
      )
    })
  )

  it.effect("refuse every duration a Node.js timer cannot hold, naming the option", () =>
    Effect.gen(function* () {
      const tooLong = Duration.millis(2 ** 31)
      const cases: ReadonlyArray<readonly [Partial<Session.Options>, string]> = [
        [{ requestTimeout: tooLong }, "requestTimeout must be at most 2147483647 milliseconds"],
        [{ requestTimeout: "30 days" }, "requestTimeout must be at most"],
        [{ requestTimeout: 0 }, "requestTimeout must be at least 1 millisecond"],
        [{ requestTimeout: -5 }, "requestTimeout must be at least 1 millisecond"],
        [{ requestTimeout: Number.NaN }, "requestTimeout must be at least 1 millisecond"],
        [{ requestTimeout: "soon" as Duration.Input }, "requestTimeout is not a duration"],
        [{ attemptTimeout: tooLong }, "attemptTimeout must be at most"],
        [{ drainTimeout: 0 }, "drainTimeout must be at least"],
        [{ connectTimeout: Duration.infinity }, "connectTimeout must be finite"],
        [{ connectTimeout: tooLong }, "connectTimeout must be at most"],
        [{ reconnection: { _tag: "Constant", delay: 0 } }, "reconnection.delay must be at least"],
        [{ reconnection: { _tag: "Exponential", base: "1 second", max: Duration.infinity } }, "reconnection.max"],
        [{ speculativeExecution: { delay: tooLong, maxExecutions: 1 } }, "speculativeExecution.delay"],
        [{ speculativeExecution: { delay: -1, maxExecutions: 1 } }, "speculativeExecution.delay must not be negative"],
        [{ pooling: { heartbeatInterval: -1 } }, "pooling.heartbeatInterval"]
      ]
      for (const [options, expected] of cases) assert.include(yield* refusal(options), expected)
    })
  )

  it.effect("take an infinite request, attempt or drain timeout as no limit at all", () =>
    Effect.gen(function* () {
      const { clientOptions, settings } = yield* build({
        requestTimeout: Duration.infinity,
        drainTimeout: Duration.infinity
      })
      assert.strictEqual(settings.requestTimeoutMillis, Number.POSITIVE_INFINITY)
      assert.strictEqual(settings.drainTimeoutMillis, Number.POSITIVE_INFINITY)
      assert.strictEqual(clientOptions.socketOptions?.readTimeout, 6000)
      const noAttemptLimit = yield* driverOptionsOf({ attemptTimeout: Duration.infinity })
      // The driver's own way to say no read timeout.
      assert.strictEqual(noAttemptLimit.socketOptions?.readTimeout, 0)
    })
  )

  it.effect("use a per-attempt read timeout well under the end-to-end deadline", () =>
    Effect.gen(function* () {
      const defaults = yield* build({})
      assert.strictEqual(defaults.clientOptions.socketOptions?.readTimeout, 6000)
      assert.strictEqual(defaults.settings.requestTimeoutMillis, 12000)
      assert.strictEqual(defaults.settings.attemptTimeoutMillis, 6000)
      const chosen = yield* build({ attemptTimeout: "2 seconds", requestTimeout: "20 seconds" })
      assert.strictEqual(chosen.clientOptions.socketOptions?.readTimeout, 2000)
      assert.strictEqual(chosen.settings.requestTimeoutMillis, 20000)
    })
  )

  it.effect("merge driverOptions.sslOptions over the library's verifying TLS defaults", () =>
    Effect.gen(function* () {
      const alone = yield* driverOptionsOf({ driverOptions: { sslOptions: { ca: [aCertificate] } } })
      const { secureContext, ...sslOptions } = alone.sslOptions!
      assert.deepStrictEqual(sslOptions, { minVersion: "TLSv1.2", rejectUnauthorized: true, ca: [aCertificate] })
      assert.isDefined(secureContext)
      const withTls = yield* driverOptionsOf({
        tls: { serverName: "db.example.org" },
        driverOptions: { sslOptions: { ciphers: "HIGH" } }
      })
      assert.deepInclude(withTls.sslOptions, {
        rejectUnauthorized: true,
        servername: "db.example.org",
        ciphers: "HIGH"
      })
    })
  )

  it.effect("refuse driverOptions that turn server verification off, unless the TLS option says so", () =>
    Effect.gen(function* () {
      assert.include(
        yield* refusal({ driverOptions: { sslOptions: { rejectUnauthorized: false } } }),
        "tls.dangerouslyDisableServerVerification"
      )
      assert.include(
        yield* refusal({ tls: {}, driverOptions: { sslOptions: { checkServerIdentity: () => undefined } } }),
        "driverOptions.sslOptions.checkServerIdentity"
      )
      const pinned = yield* driverOptionsOf({
        driverOptions: { sslOptions: { checkServerIdentity: Tls.checkServerIdentity } }
      })
      assert.strictEqual(pinned.sslOptions?.checkServerIdentity, Tls.checkServerIdentity)
      const allowed = yield* driverOptionsOf({
        tls: { dangerouslyDisableServerVerification: true },
        driverOptions: { sslOptions: { rejectUnauthorized: false } }
      })
      assert.strictEqual(allowed.sslOptions?.rejectUnauthorized, false)
    })
  )

  it.effect("merge driverOptions.socketOptions without losing the library's timeouts", () =>
    Effect.gen(function* () {
      const merged = yield* driverOptionsOf({
        connectTimeout: "3 seconds",
        driverOptions: { socketOptions: { keepAliveDelay: 500 } }
      })
      assert.deepInclude(merged.socketOptions, { connectTimeout: 3000, readTimeout: 6000, keepAliveDelay: 500 })
      assert.include(
        yield* refusal({ driverOptions: { socketOptions: { readTimeout: 1000 } } }),
        "driverOptions.socketOptions.readTimeout would be overridden on every request: set attemptTimeout instead"
      )
    })
  )

  it.effect("merge driverOptions.policies policy by policy", () =>
    Effect.gen(function* () {
      const loadBalancing = new Cassandra.policies.loadBalancing.DCAwareRoundRobinPolicy("datacenter1")
      const merged = yield* driverOptionsOf({
        speculativeExecution: { delay: "100 millis", maxExecutions: 2 },
        reconnection: { _tag: "Constant", delay: "2 seconds" },
        retry: "never",
        driverOptions: { policies: { loadBalancing } }
      })
      const policies = merged.policies!
      assert.strictEqual(policies.loadBalancing, loadBalancing)
      assert.instanceOf(policies.retry, Cassandra.policies.retry.FallthroughRetryPolicy)
      assert.instanceOf(policies.reconnection, Cassandra.policies.reconnection.ConstantReconnectionPolicy)
      assert.instanceOf(
        policies.speculativeExecution,
        Cassandra.policies.speculativeExecution.ConstantSpeculativeExecutionPolicy
      )
      const retry = new Cassandra.policies.retry.RetryPolicy()
      const replaced = yield* driverOptionsOf({ driverOptions: { policies: { retry } } })
      assert.strictEqual(replaced.policies?.retry, retry)
      assert.instanceOf(replaced.policies?.reconnection, Cassandra.policies.reconnection.ExponentialReconnectionPolicy)
    })
  )

  it.effect("merge driverOptions.pooling and queryOptions into the library's, refusing what every request sets", () =>
    Effect.gen(function* () {
      const merged = yield* driverOptionsOf({
        pooling: { connectionsPerHost: 2 },
        driverOptions: { pooling: { warmup: false }, queryOptions: { captureStackTrace: true } }
      })
      assert.strictEqual(merged.pooling?.warmup, false)
      assert.strictEqual(merged.pooling?.coreConnectionsPerHost?.[Cassandra.types.distance.local], 2)
      assert.deepInclude(merged.queryOptions, {
        captureStackTrace: true,
        consistency: Cassandra.types.consistencies.localQuorum,
        fetchSize: 5000,
        prepare: true
      })
      assert.include(
        yield* refusal({ driverOptions: { queryOptions: { consistency: Cassandra.types.consistencies.one } } }),
        "set consistency instead"
      )
      assert.include(yield* refusal({ driverOptions: { queryOptions: { fetchSize: 10 } } }), "set pageSize instead")
    })
  )

  it.effect("keep the value encoding the CQL type schemas rely on: only copyBuffer may change", () =>
    Effect.gen(function* () {
      const merged = yield* driverOptionsOf({ driverOptions: { encoding: { copyBuffer: false } } })
      assert.deepInclude(merged.encoding, { map: Map, set: Set, useBigIntAsLong: true, copyBuffer: false })
      const again = yield* driverOptionsOf({})
      assert.isUndefined(again.encoding?.copyBuffer)
      assert.include(
        yield* refusal({ driverOptions: { encoding: { useBigIntAsLong: false } } }),
        "driverOptions.encoding.useBigIntAsLong cannot change"
      )
      assert.include(yield* refusal({ driverOptions: { encoding: { map: Object as never } } }), "encoding.map")
    })
  )

  it.effect("refuse session defaults that no request could use", () =>
    Effect.gen(function* () {
      assert.include(yield* refusal({ consistency: "MOST" as never }), "consistency is not a consistency level")
      assert.include(yield* refusal({ serialConsistency: "ONE" as never }), "serialConsistency")
      assert.include(yield* refusal({ pageSize: 0 }), "pageSize must be a whole number")
      assert.include(yield* refusal({ port: 70000 }), "port must be")
    })
  )

  it.effect("refuse every option of the wrong shape with a Configuration error naming it, never a defect", () =>
    Effect.gen(function* () {
      const throwing = (name: string) =>
        Object.defineProperty({}, name, {
          enumerable: true,
          get: () => {
            throw new Error("hostile getter")
          }
        })
      const cases: ReadonlyArray<readonly [Partial<Session.Options>, string]> = [
        [{ throttle: null as never }, "throttle must be an object"],
        [{ throttle: { maxInFlight: Symbol("many") as never, maxQueued: 1 } }, "throttle needs a whole maxInFlight"],
        [{ throttle: throwing("maxInFlight") as never }, "throttle.maxInFlight could not be read"],
        [{ pooling: null as never }, "pooling must be an object"],
        [{ pooling: { connectionsPerHost: -1 } }, "pooling.connectionsPerHost must be a whole number"],
        [{ pooling: { connectionsPerHost: "2" as never } }, "pooling.connectionsPerHost must be a whole number"],
        [{ pooling: { maxRequestsPerConnection: Number.NaN } }, "pooling.maxRequestsPerConnection must be"],
        [{ pooling: { maxRequestsPerConnection: 2 ** 53 + 1 } }, "pooling.maxRequestsPerConnection must be"],
        [{ speculativeExecution: null as never }, "speculativeExecution must be an object"],
        [{ reconnection: null as never }, "reconnection must be an object"],
        [{ reconnection: { _tag: "Linear" } as never }, "reconnection._tag must be Exponential or Constant"],
        [{ credentials: null as never }, "credentials must be an object"],
        [{ credentials: { username: 42 as never, password: Redacted.make("pw") } }, "credentials.username"],
        [{ retry: "sometimes" as never }, "retry must be"],
        [{ retry: {} as never }, "retry must be"],
        [{ spanAttributes: "tenant" as never }, "spanAttributes must be an object"],
        [{ spanAttributes: { tenant: Symbol("t") } as never }, "spanAttributes.tenant must be"],
        [{ spanAttributes: { tenant: { nested: 1 } } as never }, "spanAttributes.tenant must be"],
        [{ spanAttributes: throwing("tenant") }, "spanAttributes.tenant could not be read"],
        [{ omitQueryTextInSpans: "yes" as never }, "omitQueryTextInSpans must be a boolean"],
        [{ applicationName: { name: "app" } as never }, "applicationName must be a string"],
        [{ applicationVersion: 1 as never }, "applicationVersion must be a string"],
        [{ keyspace: 5 as never }, "keyspace must be"],
        [{ keyspace: 'app"; DROP KEYSPACE audit; --' }, "keyspace must be a keyspace name"],
        [{ tls: null as never }, "tls must be an object"],
        [{ tls: { minVersion: "TLSv1" as never } }, "tls.minVersion must be TLSv1.2 or TLSv1.3"],
        [
          { tls: { dangerouslyDisableServerVerification: "false" as never } },
          "tls.dangerouslyDisableServerVerification"
        ],
        [{ driverOptions: throwing("sslOptions") as never }, "driverOptions could not be read"],
        [{ driverOptions: { pooling: throwing("warmup") } }, "driverOptions could not be read"]
      ]
      for (const [options, expected] of cases) {
        const exit = yield* Effect.exit(build(options))
        assert.isTrue(exit._tag === "Failure" && !Cause.hasDies(exit.cause), `no defect for ${expected}`)
        assert.include(yield* refusal(options), expected)
      }
      const hostilePort = Object.defineProperties({ ...base }, Object.getOwnPropertyDescriptors(throwing("port")))
      const error = yield* Effect.flip(makeClientOptions(hostilePort as Session.Options))
      assert.instanceOf(error.reason, CassandraError.Configuration)
      assert.include(error.message, "options.port could not be read")
    })
  )

  it.effect("never echo a password given unwrapped", () =>
    Effect.gen(function* () {
      const message = yield* refusal({ credentials: { username: "app", password: "hunter2-secret" as never } })
      assert.include(message, "credentials.password must be Redacted")
      assert.notInclude(message, "hunter2-secret")
    })
  )

  it.effect(
    "refuse driverOptions.sslOptions that verify nothing by any falsy rejectUnauthorized or allow old TLS",
    () =>
      Effect.gen(function* () {
        for (const value of [0, null, "", Number.NaN]) {
          assert.include(
            yield* refusal({ driverOptions: { sslOptions: { rejectUnauthorized: value as never } } }),
            "driverOptions.sslOptions.rejectUnauthorized"
          )
        }
        for (const version of ["TLSv1", "TLSv1.1"] as const) {
          assert.include(
            yield* refusal({ driverOptions: { sslOptions: { minVersion: version } } }),
            "driverOptions.sslOptions.minVersion"
          )
          assert.include(
            yield* refusal({ driverOptions: { sslOptions: { maxVersion: version } } }),
            "driverOptions.sslOptions.maxVersion"
          )
        }
        const strict = yield* driverOptionsOf({ driverOptions: { sslOptions: { rejectUnauthorized: true } } })
        assert.strictEqual(strict.sslOptions?.rejectUnauthorized, true)
      })
  )

  it.effect("keep keys named __proto__ and constructor in JSON-parsed driverOptions from reaching any prototype", () =>
    Effect.gen(function* () {
      const parsed = JSON.parse(
        '{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, "sslOptions": {"__proto__": {"rejectUnauthorized": false}}, "socketOptions": {"__proto__": {"readTimeout": 1}}}'
      )
      const merged = yield* driverOptionsOf({ driverOptions: parsed })
      assert.isUndefined(({} as Record<string, unknown>).polluted)
      assert.isUndefined(Object.getPrototypeOf(merged).polluted)
      assert.strictEqual(merged.sslOptions?.rejectUnauthorized, true)
      assert.strictEqual(merged.socketOptions?.readTimeout, 6000)
    })
  )

  it.effect("a session whose driver options the driver itself refuses fails with Configuration, not a defect", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        Effect.scoped(SessionModule.make({ ...base, driverOptions: { policies: { retry: {} as never } } }))
      )
      assert.isTrue(exit._tag === "Failure" && !Cause.hasDies(exit.cause), "no defect")
      const error = yield* Effect.flip(
        Effect.scoped(SessionModule.make({ ...base, driverOptions: { policies: { retry: {} as never } } }))
      )
      assert.instanceOf(error.reason, CassandraError.Configuration)
      assert.include(error.message, "Retry policy")
    })
  )

  it.effect("refuse a null in driverOptions that would silently drop a setting of the library's", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
        [{ policies: null }, "driverOptions.policies"],
        [{ policies: { speculativeExecution: null } }, "driverOptions.policies.speculativeExecution"],
        [{ socketOptions: null }, "driverOptions.socketOptions"],
        [{ socketOptions: { connectTimeout: null } }, "driverOptions.socketOptions.connectTimeout"],
        [{ queryOptions: null }, "driverOptions.queryOptions"],
        [{ protocolOptions: { port: null } }, "driverOptions.protocolOptions.port"]
      ]
      for (const [driverOptions, setting] of cases) {
        const message = yield* refusal({
          speculativeExecution: { delay: "100 millis", maxExecutions: 1 },
          driverOptions: driverOptions as Session.Options["driverOptions"]
        })
        assert.include(message, `${setting} is null`)
      }
    })
  )
})
