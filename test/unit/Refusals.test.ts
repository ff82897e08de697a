import { EventEmitter } from "node:events"
import { createRequire } from "node:module"
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import type * as CassandraError from "effect-cassandra/CassandraError"
import * as Session from "effect-cassandra/Session"
import { HealthAwarePolicy } from "../../src/internal/healthAwarePolicy.ts"
import { isPrepareRefusal, prepareElsewhere, shuttingDownNode } from "../../src/internal/refusals.ts"
import { fakeCluster } from "../support/fakeCqlCluster.ts"
import { countedRunner, request, runnerOver, until } from "../support/requestRunner.ts"
import { standInNode } from "../support/standInNode.ts"

const codes = Cassandra.types.responseErrorCodes
const { distance } = Cassandra.types

const query = "SELECT v FROM kv WHERE k = ?"
const shuttingDown = () => new Cassandra.errors.ResponseError(codes.overloaded, "Server is shutting down")
const bootstrapping = () =>
  new Cassandra.errors.ResponseError(codes.isBootstrapping, "Cannot prepare while bootstrapping")
const syntaxError = () => new Cassandra.errors.ResponseError(codes.syntaxError, "line 1:0 no viable alternative")

/** The driver's record of a prepared statement (lib/metadata/index.js `PreparedQueries`): an EventEmitter. */
class Info extends EventEmitter {
  queryId: unknown = undefined
  meta: unknown = undefined
  preparing = false
  readonly keyspace: string | undefined
  readonly query: string
  constructor(keyspace: string | undefined, query: string) {
    super()
    this.keyspace = keyspace
    this.query = query
    this.setMaxListeners(0)
  }
}

type Answer = { readonly id: unknown; readonly meta: unknown } | { readonly error: unknown }

/** A node of the stand-in driver: what its connection answers to a PREPARE, and what was asked of it. */
interface StubHost {
  readonly address: string
  up: boolean
  distance: number
  connectionKeyspace: string | undefined
  borrow: () => void
  answer: (query: string) => Answer | Promise<Answer>
  readonly prepared: Array<{ readonly query: string; readonly keyspace: string | undefined }>
  readonly keyspaceChanges: Array<string>
  readonly borrowed: { count: number }
}

const stubHost = (address: string, answer: StubHost["answer"]): StubHost => ({
  address,
  up: true,
  distance: distance.local,
  connectionKeyspace: undefined,
  borrow: () => {},
  answer,
  prepared: [],
  keyspaceChanges: [],
  borrowed: { count: 0 }
})

const serving = (address: string) =>
  stubHost(address, (query) => ({ id: Buffer.from(`${address}:${query}`), meta: { columns: [] } }))
const refusing = (address: string, error: () => unknown = shuttingDown) => stubHost(address, () => ({ error: error() }))

/** The driver-shaped object `prepareElsewhere` reads: its prepared-statement cache, load-balancing plan and hosts. */
const stubDriver = (hosts: ReadonlyArray<StubHost>, keyspace?: string) => {
  const infos = new Map<string, Info>()
  const byId = new Map<string, Info>()
  const logs: Array<ReadonlyArray<unknown>> = []
  const plans = { count: 0 }
  const driver = new EventEmitter() as EventEmitter & Record<string, unknown>
  driver.keyspace = keyspace
  driver.metadata = {
    getPreparedInfo: (keyspace: string | undefined, query: string) => {
      const key = (keyspace || "") + query
      let info = infos.get(key)
      if (info === undefined) {
        info = new Info(keyspace, query)
        infos.set(key, info)
      }
      return info
    },
    setPreparedById: (info: Info) => {
      byId.set(String(info.queryId), info)
    }
  }
  /** The nodes of `hosts` as the driver's query plan gives them. */
  const planOver = (hosts: ReadonlyArray<StubHost>) =>
    hosts
      .map((host) => ({
        address: host.address,
        isUp: () => host.up,
        borrowConnection: () => {
          host.borrowed.count++
          host.borrow()
          return {
            keyspace: host.connectionKeyspace,
            changeKeyspace: async (keyspace: string) => {
              host.keyspaceChanges.push(keyspace)
              host.connectionKeyspace = keyspace
            },
            prepareOnceAsync: async (query: string, keyspace: string | undefined) => {
              host.prepared.push({ query, keyspace })
              const answer = await host.answer(query)
              if ("error" in answer) throw answer.error
              return answer
            }
          }
        },
        distance: host.distance
      }))
      [Symbol.iterator]()
  let newQueryPlan = (_keyspace: unknown, _options: unknown, callback: (error: unknown, plan: unknown) => void) => {
    plans.count++
    callback(null, planOver(hosts))
  }
  driver.options = {
    policies: {
      loadBalancing: {
        newQueryPlan: (keyspace: unknown, options: unknown, callback: (error: unknown, plan: unknown) => void) =>
          newQueryPlan(keyspace, options, callback)
      }
    }
  }
  const profiles = new Map<string, ReadonlyArray<StubHost>>()
  driver.profileManager = {
    getDistance: (host: { readonly distance: number }) => host.distance,
    // As the driver's: the default profile's policy is the client's.
    getProfile: (name: string | undefined) => {
      if (name === undefined || name === "default")
        return { loadBalancing: (driver.options as { policies?: { loadBalancing?: unknown } }).policies?.loadBalancing }
      const hosts = profiles.get(name)
      return hosts === undefined
        ? undefined
        : {
            loadBalancing: {
              newQueryPlan: (
                _keyspace: unknown,
                _options: unknown,
                callback: (error: unknown, plan: unknown) => void
              ) => callback(null, planOver(hosts))
            }
          }
    }
  }
  driver.on("log", (...args: ReadonlyArray<unknown>) => logs.push(args))
  const info = (query: string) =>
    (driver.metadata as { getPreparedInfo: (keyspace: string | undefined, query: string) => Info }).getPreparedInfo(
      keyspace,
      query
    )
  return {
    client: driver as unknown as Cassandra.Client,
    driver,
    info,
    byId,
    logs,
    plans,
    replacePlan: (plan: typeof newQueryPlan) => {
      newQueryPlan = plan
    },
    planOver,
    /** An execution profile whose load-balancing policy plans over `hosts`. */
    addProfile: (name: string, hosts: ReadonlyArray<StubHost>) => {
      profiles.set(name, hosts)
    },
    prepareOnAllHosts: (value: boolean) => {
      ;(driver.options as Record<string, unknown>).prepareOnAllHosts = value
    }
  }
}

/** What a request waiting on the driver's preparation of `info` learns (lib/promise-utils.js `fromEvent`). */
const driverWaiter = (info: Info) =>
  new Promise<{ readonly error: unknown; readonly result: unknown }>((resolve) =>
    info.once("prepared", (error: unknown, result: unknown) => resolve({ error, result }))
  )

const innerErrorsOf = (error: unknown) => {
  assert.instanceOf(error, Cassandra.errors.NoHostAvailableError)
  return (error as Cassandra.errors.NoHostAvailableError).innerErrors as Record<string, unknown>
}

describe("isPrepareRefusal", () => {
  it("recognizes OVERLOADED and IS_BOOTSTRAPPING answers that no attempt of a request got", () => {
    assert.isTrue(isPrepareRefusal(shuttingDown()))
    assert.isTrue(isPrepareRefusal(bootstrapping()))
    // The driver sets the coordinator of every attempt's failure to a host's address, never to undefined.
    assert.isTrue(isPrepareRefusal(Object.assign(shuttingDown(), { coordinator: undefined })))
  })

  it("rejects a refusal an attempt got, other codes, other errors and non-errors", () => {
    assert.isFalse(isPrepareRefusal(Object.assign(shuttingDown(), { coordinator: "127.0.0.1:9042" })))
    assert.isFalse(isPrepareRefusal(syntaxError()))
    assert.isFalse(isPrepareRefusal(new Cassandra.errors.ResponseError(codes.unprepared, "unprepared")))
    assert.isFalse(isPrepareRefusal(new Cassandra.errors.NoHostAvailableError({})))
    assert.isFalse(isPrepareRefusal(Object.assign(new Error("Server is shutting down"), { code: codes.overloaded })))
    for (const value of [undefined, null, "overloaded", codes.overloaded, {}]) assert.isFalse(isPrepareRefusal(value))
  })

  it("answers false for a hostile error whose fields or prototype throw when read", () => {
    const throwingCode = shuttingDown()
    Object.defineProperty(throwingCode, "code", {
      get: () => {
        throw new Error("code")
      }
    })
    const throwingCoordinator = shuttingDown()
    Object.defineProperty(throwingCoordinator, "coordinator", {
      get: () => {
        throw new Error("coordinator")
      }
    })
    const throwingPrototype = new Proxy(shuttingDown(), {
      getPrototypeOf: () => {
        throw new Error("prototype")
      }
    })
    assert.isFalse(isPrepareRefusal(throwingCode))
    assert.isFalse(isPrepareRefusal(throwingCoordinator))
    assert.isFalse(isPrepareRefusal(throwingPrototype))
  })
})

describe("prepareElsewhere", () => {
  it("prepares on the next node after one refuses, and hands the result to the driver's cache and waiters", async () => {
    const first = refusing("10.0.0.1:9042")
    const second = serving("10.0.0.2:9042")
    const third = serving("10.0.0.3:9042")
    const stub = stubDriver([first, second, third])
    const refusal = shuttingDown()
    const pending = prepareElsewhere(stub.client, [query], refusal)
    const info = stub.info(query)
    // A request arriving meanwhile waits on this preparation, as on the driver's own.
    assert.isTrue(info.preparing)
    const waiter = driverWaiter(info)
    assert.isUndefined(await pending)
    assert.deepStrictEqual(info.queryId, Buffer.from(`10.0.0.2:9042:${query}`))
    assert.deepStrictEqual(info.meta, { columns: [] })
    assert.isFalse(info.preparing)
    assert.strictEqual(stub.byId.get(String(info.queryId)), info)
    const { error, result } = await waiter
    assert.isNull(error)
    assert.strictEqual(result, info)
    assert.strictEqual(first.prepared.length, 1)
    assert.strictEqual(second.prepared.length, 1)
    assert.strictEqual(third.prepared.length, 0)
    assert.strictEqual(stub.logs.length, 1)
    const [level, , message, reason] = stub.logs[0]!
    assert.strictEqual(level, "info")
    assert.include(message as string, "10.0.0.2:9042")
    assert.strictEqual(reason, refusal)
  })

  it("fails with NoHostAvailable naming each node's refusal when every node refuses, and releases the waiters", async () => {
    const stub = stubDriver([refusing("10.0.0.1:9042"), refusing("10.0.0.2:9042", bootstrapping)])
    const pending = prepareElsewhere(stub.client, [query], shuttingDown())
    const info = stub.info(query)
    const waiter = driverWaiter(info)
    const failure = await pending
    const inner = innerErrorsOf(failure)
    assert.deepStrictEqual(Object.keys(inner), ["10.0.0.1:9042", "10.0.0.2:9042"])
    assert.strictEqual((inner["10.0.0.1:9042"] as Cassandra.errors.ResponseError).code, codes.overloaded)
    assert.strictEqual((inner["10.0.0.2:9042"] as Cassandra.errors.ResponseError).code, codes.isBootstrapping)
    for (const [address, error] of Object.entries(inner)) {
      assert.strictEqual((error as { coordinator?: unknown }).coordinator, address)
      // Each is a node's answer now: the request fails with it, and does not take it for a new refusal.
      assert.isFalse(isPrepareRefusal(error))
    }
    assert.isFalse(isPrepareRefusal(failure))
    assert.strictEqual((await waiter).error, failure)
    assert.isFalse(info.preparing)
    assert.isUndefined(info.queryId)
  })

  it("stops at a statement error, with the node that answered it and the statement", async () => {
    const first = stubHost("10.0.0.1:9042", () => ({ error: syntaxError() }))
    const second = serving("10.0.0.2:9042")
    const stub = stubDriver([first, second])
    const pending = prepareElsewhere(stub.client, [query], shuttingDown())
    const waiter = driverWaiter(stub.info(query))
    const failure = (await pending) as Cassandra.errors.ResponseError & { coordinator?: unknown; query?: unknown }
    assert.instanceOf(failure, Cassandra.errors.ResponseError)
    assert.strictEqual(failure.code, codes.syntaxError)
    assert.strictEqual(failure.coordinator, "10.0.0.1:9042")
    assert.strictEqual(failure.query, query)
    assert.strictEqual(second.prepared.length, 0)
    assert.strictEqual((await waiter).error, failure)
    assert.isFalse(stub.info(query).preparing)
  })

  it("skips ignored and down nodes, and moves past a node with no connection or a lost one", async () => {
    const ignored = serving("10.0.0.1:9042")
    ignored.distance = distance.ignored
    const down = serving("10.0.0.2:9042")
    down.up = false
    const busy = serving("10.0.0.3:9042")
    busy.borrow = () => {
      throw new Cassandra.errors.BusyConnectionError("10.0.0.3:9042", 2048, 1)
    }
    const lost = stubHost("10.0.0.4:9042", () => ({
      error: Object.assign(new Error("socket hang up"), { isSocketError: true })
    }))
    const timedOut = stubHost("10.0.0.5:9042", () => ({
      error: new Cassandra.errors.OperationTimedOutError("timed out", "10.0.0.5:9042")
    }))
    const last = serving("10.0.0.6:9042")
    const stub = stubDriver([ignored, down, busy, lost, timedOut, last])
    assert.isUndefined(await prepareElsewhere(stub.client, [query], shuttingDown()))
    assert.strictEqual(ignored.borrowed.count, 0)
    assert.strictEqual(down.borrowed.count, 0)
    assert.strictEqual(last.prepared.length, 1)
    assert.deepStrictEqual(stub.info(query).queryId, Buffer.from(`10.0.0.6:9042:${query}`))
  })

  it("lists down nodes but not ignored ones when no node can prepare", async () => {
    const ignored = serving("10.0.0.1:9042")
    ignored.distance = distance.ignored
    const down = serving("10.0.0.2:9042")
    down.up = false
    const stub = stubDriver([ignored, down, refusing("10.0.0.3:9042")])
    const inner = innerErrorsOf(await prepareElsewhere(stub.client, [query], shuttingDown()))
    assert.deepStrictEqual(Object.keys(inner), ["10.0.0.2:9042", "10.0.0.3:9042"])
  })

  it("changes the connection's keyspace to the session's when it differs, and only then", async () => {
    const other = serving("10.0.0.1:9042")
    other.connectionKeyspace = "other"
    other.answer = () => ({ error: shuttingDown() })
    const same = serving("10.0.0.2:9042")
    same.connectionKeyspace = "app"
    const stub = stubDriver([other, same], "app")
    assert.isUndefined(await prepareElsewhere(stub.client, [query], shuttingDown()))
    assert.deepStrictEqual(other.keyspaceChanges, ["app"])
    assert.deepStrictEqual(same.keyspaceChanges, [])
    assert.deepStrictEqual(same.prepared, [{ query, keyspace: "app" }])
    assert.isDefined(stub.info(query).queryId)
  })

  it("leaves the connection's keyspace alone in a session with no keyspace", async () => {
    for (const keyspace of [undefined, ""]) {
      const host = serving("10.0.0.1:9042")
      host.connectionKeyspace = "other"
      const stub = stubDriver([host], keyspace)
      assert.isUndefined(await prepareElsewhere(stub.client, [query], shuttingDown()))
      assert.deepStrictEqual(host.keyspaceChanges, [])
    }
  })

  it("prepares only the statements of a batch not prepared yet, each once", async () => {
    const host = serving("10.0.0.1:9042")
    const stub = stubDriver([host])
    const insert = "INSERT INTO kv (k, v) VALUES (?, ?)"
    const done = stub.info(insert)
    done.queryId = Buffer.from("known")
    assert.isUndefined(await prepareElsewhere(stub.client, [insert, query, query], shuttingDown()))
    assert.deepStrictEqual(
      host.prepared.map((p) => p.query),
      [query]
    )
    assert.deepStrictEqual(done.queryId, Buffer.from("known"))
  })

  it("waits on a preparation under way instead of sending another, and succeeds with it", async () => {
    const host = serving("10.0.0.1:9042")
    const stub = stubDriver([host])
    const info = stub.info(query)
    info.preparing = true
    const pending = prepareElsewhere(stub.client, [query], shuttingDown())
    await Promise.resolve()
    info.preparing = false
    info.queryId = Buffer.from("by the driver")
    info.emit("prepared", null, info)
    assert.isUndefined(await pending)
    assert.strictEqual(host.prepared.length, 0)
    assert.strictEqual(stub.plans.count, 0)
  })

  it("fails with the error of a preparation under way that failed on the statement", async () => {
    const host = serving("10.0.0.1:9042")
    const stub = stubDriver([host])
    const info = stub.info(query)
    info.preparing = true
    const pending = prepareElsewhere(stub.client, [query], shuttingDown())
    const invalid = Object.assign(syntaxError(), { query })
    info.preparing = false
    info.emit("prepared", invalid)
    assert.strictEqual(await pending, invalid)
    assert.strictEqual(host.prepared.length, 0)
  })

  it("prepares past a node that refused a preparation under way", async () => {
    const host = serving("10.0.0.2:9042")
    const stub = stubDriver([refusing("10.0.0.1:9042"), host])
    const info = stub.info(query)
    info.preparing = true
    const pending = prepareElsewhere(stub.client, [query], shuttingDown())
    info.preparing = false
    info.emit("prepared", Object.assign(shuttingDown(), { query }))
    assert.isUndefined(await pending)
    assert.deepStrictEqual(info.queryId, Buffer.from(`10.0.0.2:9042:${query}`))
  })

  it("keeps going while every preparation under way it waits on is refused, then prepares itself", async () => {
    const host = serving("10.0.0.2:9042")
    const stub = stubDriver([refusing("10.0.0.1:9042"), host])
    const info = stub.info(query)
    info.preparing = true
    const pending = prepareElsewhere(stub.client, [query], shuttingDown())
    // The driver's preparation is refused, and another request's starts at once, to be refused by the same node.
    info.preparing = false
    info.emit("prepared", Object.assign(shuttingDown(), { query }))
    info.preparing = true
    await new Promise((resolve) => setImmediate(resolve))
    info.preparing = false
    info.emit("prepared", Object.assign(shuttingDown(), { query }))
    assert.isUndefined(await pending)
    assert.deepStrictEqual(info.queryId, Buffer.from(`10.0.0.2:9042:${query}`))
  })

  it("fails, releasing the waiters, when the query plan cannot be had", async () => {
    const broken = new Error("plan")
    const plans: Array<(keyspace: unknown, options: unknown, callback: (e: unknown, p: unknown) => void) => void> = [
      () => {
        throw broken
      },
      (_keyspace, _options, callback) => callback(broken, undefined),
      (_keyspace, _options, callback) =>
        callback(null, {
          next: () => {
            throw broken
          }
        })
    ]
    for (const plan of plans) {
      const stub = stubDriver([serving("10.0.0.1:9042")])
      stub.replacePlan(plan)
      const pending = prepareElsewhere(stub.client, [query], shuttingDown())
      const waiter = driverWaiter(stub.info(query))
      assert.strictEqual(await pending, broken)
      assert.strictEqual((await waiter).error, broken)
      assert.isFalse(stub.info(query).preparing)
    }
  })

  it("never takes a thrown undefined for success", async () => {
    const stub = stubDriver([serving("10.0.0.1:9042")])
    ;(stub.driver.metadata as Record<string, unknown>).getPreparedInfo = () => {
      throw undefined
    }
    const refusal = shuttingDown()
    assert.strictEqual(await prepareElsewhere(stub.client, [query], refusal), refusal)
  })

  it("fails with the refusal itself on a driver without the internals it needs", async () => {
    const refusal = shuttingDown()
    const withoutCache = stubDriver([serving("10.0.0.1:9042")])
    withoutCache.driver.metadata = {}
    assert.strictEqual(await prepareElsewhere(withoutCache.client, [query], refusal), refusal)
    const withoutPolicy = stubDriver([serving("10.0.0.1:9042")])
    withoutPolicy.driver.options = {}
    assert.strictEqual(await prepareElsewhere(withoutPolicy.client, [query], refusal), refusal)
    // Nothing was started that a later request could wait on.
    assert.isFalse(withoutPolicy.info(query).preparing)
  })

  it("moves past a node whose failure cannot be read or annotated, and past non-object failures", async () => {
    const unreadable = stubHost("10.0.0.1:9042", () => {
      const error = shuttingDown()
      Object.defineProperty(error, "code", {
        get: () => {
          throw new Error("code")
        }
      })
      return { error }
    })
    const frozen = stubHost("10.0.0.2:9042", () => ({ error: Object.freeze(shuttingDown()) }))
    const text = stubHost("10.0.0.3:9042", () => ({ error: "connection reset" }))
    const nothing = stubHost("10.0.0.4:9042", () => ({ error: undefined }))
    const last = serving("10.0.0.5:9042")
    const stub = stubDriver([unreadable, frozen, text, nothing, last])
    assert.isUndefined(await prepareElsewhere(stub.client, [query], shuttingDown()))
    assert.strictEqual(last.prepared.length, 1)
  })

  it("names each node's non-object failure when no node can prepare", async () => {
    const stub = stubDriver([
      stubHost("10.0.0.1:9042", () => ({ error: "connection reset" })),
      stubHost("10.0.0.2:9042", () => ({ error: undefined }))
    ])
    const inner = innerErrorsOf(await prepareElsewhere(stub.client, [query], shuttingDown()))
    assert.deepStrictEqual(Object.keys(inner), ["10.0.0.1:9042", "10.0.0.2:9042"])
    assert.strictEqual(inner["10.0.0.1:9042"], "connection reset")
    assert.isDefined(inner["10.0.0.2:9042"])
  })

  it("prepares on the nodes of the request's execution profile, not the default one's", async () => {
    const local = refusing("10.0.0.1:9042")
    const remote = serving("10.1.0.1:9042")
    const stub = stubDriver([local, serving("10.0.0.2:9042")])
    stub.addProfile("remote", [remote])
    assert.isUndefined(await prepareElsewhere(stub.client, [query], shuttingDown(), "remote"))
    assert.strictEqual(remote.prepared.length, 1)
    assert.strictEqual(local.prepared.length, 0)
    assert.strictEqual(stub.plans.count, 0)
  })

  it("also prepares on the plan's other nodes when the driver prepares on all hosts, as the driver does", async () => {
    for (const onAll of [true, false]) {
      const first = refusing("10.0.0.1:9042")
      const second = serving("10.0.0.2:9042")
      const refusingToo = refusing("10.0.0.3:9042")
      const down = serving("10.0.0.4:9042")
      down.up = false
      const ignored = serving("10.0.0.5:9042")
      ignored.distance = distance.ignored
      const last = serving("10.0.0.6:9042")
      const stub = stubDriver([first, second, refusingToo, down, ignored, last])
      stub.prepareOnAllHosts(onAll)
      assert.isUndefined(await prepareElsewhere(stub.client, [query], shuttingDown()))
      assert.deepStrictEqual(stub.info(query).queryId, Buffer.from(`10.0.0.2:9042:${query}`))
      assert.strictEqual(first.prepared.length, 1)
      assert.strictEqual(second.prepared.length, 1)
      assert.strictEqual(down.borrowed.count + ignored.borrowed.count, 0)
      assert.strictEqual(refusingToo.prepared.length, onAll ? 1 : 0)
      assert.strictEqual(last.prepared.length, onAll ? 1 : 0)
    }
  })

  it("releases the waiters once one node prepared it, while the plan's other nodes have not answered", async () => {
    const silent = stubHost("10.0.0.3:9042", () => new Promise<Answer>(() => {}))
    const stub = stubDriver([refusing("10.0.0.1:9042"), serving("10.0.0.2:9042"), silent])
    stub.prepareOnAllHosts(true)
    const recovering = prepareElsewhere(stub.client, [query], shuttingDown())
    assert.isTrue(stub.info(query).preparing)
    const waiter = driverWaiter(stub.info(query))
    assert.isUndefined(await recovering)
    assert.strictEqual((await waiter).result, stub.info(query))
    assert.strictEqual(silent.prepared.length, 1)
    assert.deepStrictEqual(stub.info(query).queryId, Buffer.from(`10.0.0.2:9042:${query}`))
  })

  it("moves past a node that does not answer the PREPARE within the driver's read timeout", async () => {
    const frozen = stubHost("10.0.0.1:9042", () => new Promise<Answer>(() => {}))
    const stub = stubDriver([frozen, serving("10.0.0.2:9042")])
    ;(stub.driver.options as Record<string, unknown>).socketOptions = { readTimeout: 50 }
    assert.isUndefined(await prepareElsewhere(stub.client, [query], shuttingDown()))
    assert.strictEqual(frozen.prepared.length, 1)
    assert.deepStrictEqual(stub.info(query).queryId, Buffer.from(`10.0.0.2:9042:${query}`))
  })

  it("fails with every node's failure, a frozen one's timeout included, when none prepares it", async () => {
    const frozen = stubHost("10.0.0.1:9042", () => new Promise<Answer>(() => {}))
    const stub = stubDriver([frozen, refusing("10.0.0.2:9042")])
    ;(stub.driver.options as Record<string, unknown>).socketOptions = { readTimeout: 50 }
    const inner = innerErrorsOf(await prepareElsewhere(stub.client, [query], shuttingDown()))
    assert.instanceOf(inner["10.0.0.1:9042"], Cassandra.errors.OperationTimedOutError)
    assert.strictEqual((inner["10.0.0.2:9042"] as Cassandra.errors.ResponseError).code, codes.overloaded)
    assert.isFalse(stub.info(query).preparing)
  })

  it("succeeds once prepared on one node, though the plan fails while preparing on the others", async () => {
    const first = refusing("10.0.0.1:9042")
    const second = serving("10.0.0.2:9042")
    const stub = stubDriver([first, second])
    stub.prepareOnAllHosts(true)
    stub.replacePlan((_keyspace, _options, callback) => {
      const planned = stub.planOver([first, second])
      callback(null, {
        next: () => {
          const next = planned.next()
          if (next.done) throw new Error("plan")
          return next
        }
      })
    })
    assert.isUndefined(await prepareElsewhere(stub.client, [query], shuttingDown()))
    assert.deepStrictEqual(stub.info(query).queryId, Buffer.from(`10.0.0.2:9042:${query}`))
    assert.strictEqual(second.prepared.length, 1)
  })

  it("succeeds, and releases the waiters with the statement prepared, even when a log listener throws", async () => {
    const stub = stubDriver([refusing("10.0.0.1:9042"), serving("10.0.0.2:9042")])
    stub.driver.on("log", () => {
      throw new Error("listener")
    })
    const pending = prepareElsewhere(stub.client, [query], shuttingDown())
    const waiter = driverWaiter(stub.info(query))
    assert.isUndefined(await pending)
    assert.isNull((await waiter).error)
    assert.isDefined(stub.info(query).queryId)
  })

  it("releases the waiters with the statement prepared when a listener before them throws", async () => {
    const stub = stubDriver([refusing("10.0.0.1:9042"), serving("10.0.0.2:9042")])
    stub.info(query).once("prepared", () => {
      throw new Error("listener")
    })
    const pending = prepareElsewhere(stub.client, [query], shuttingDown())
    const waiter = driverWaiter(stub.info(query))
    assert.isUndefined(await pending)
    assert.deepStrictEqual(await waiter, { error: null, result: stub.info(query) })
  })

  it("keeps the statement prepared and releases its waiters for a record whose listeners cannot be gone through", async () => {
    const stub = stubDriver([refusing("10.0.0.1:9042"), serving("10.0.0.2:9042"), serving("10.0.0.3:9042")])
    stub.prepareOnAllHosts(true)
    for (const method of ["listeners", "rawListeners"])
      Object.defineProperty(stub.info(query), method, { value: () => null })
    const waiter = driverWaiter(stub.info(query))
    assert.isUndefined(await prepareElsewhere(stub.client, [query], shuttingDown()))
    assert.isDefined(stub.info(query).queryId)
    assert.isNull((await waiter).error)
  })

  it("releases the waiters of a record that cannot list its listeners, as the driver's emit does", async () => {
    const stub = stubDriver([refusing("10.0.0.1:9042"), serving("10.0.0.2:9042")])
    Object.defineProperty(stub.info(query), "rawListeners", {
      value: () => {
        throw new Error("unreadable")
      }
    })
    const pending = prepareElsewhere(stub.client, [query], shuttingDown())
    const waiter = driverWaiter(stub.info(query))
    assert.isUndefined(await pending)
    assert.isNull((await waiter).error)
  })
})

/** A promise the test settles. */
const deferred = <A>() => {
  let resolve!: (value: A) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<A>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

const emptyResult = { rows: [], rowLength: 0, columns: null, info: { speculativeExecutions: 0 } }

/**
 * A real driver client (its prepared-statement cache, profiles and log events) over two stand-in nodes, the first
 * refusing every PREPARE (or answering as `nodes.first` does), the second preparing when `serve` says, and with
 * `nodes.third` a third one preparing at once; `execute` and `batch` are answered by the test. With
 * `nodes.keyspace`, each node's connection changes to it before preparing, as `nodes.use` answers for its address.
 */
const refusingCluster = (
  policies: Cassandra.ClientOptions["policies"] = {},
  profiles: ReadonlyArray<Cassandra.ExecutionProfile> = [],
  nodes: {
    readonly first?: (query: string) => Promise<void>
    readonly third?: boolean
    readonly prepareOnAllHosts?: boolean
    readonly keyspace?: string
    readonly use?: Record<string, () => Promise<void>>
  } = {}
) => {
  const prepares: Array<{ readonly address: string; readonly query: string }> = []
  const uses: Array<string> = []
  let serve: (query: string) => Promise<void> = async () => {}
  const node = (address: string, answer: (query: string) => Promise<void>) =>
    standInNode(
      address,
      async (query) => {
        prepares.push({ address, query })
        await answer(query)
        return { id: Buffer.from(`${address}:${query}`), meta: { columns: [] } }
      },
      async () => {
        uses.push(address)
        await nodes.use?.[address]?.()
      }
    )
  const planned = [
    node(
      "10.0.0.1:9042",
      nodes.first ??
        (async () => {
          throw shuttingDown()
        })
    ),
    node("10.0.0.2:9042", (query) => serve(query)),
    ...(nodes.third === true ? [node("10.0.0.3:9042", async () => {})] : [])
  ]
  const plans = { count: 0 }
  /** A policy planning over `planned`, every node local. */
  const planning = (planned: ReadonlyArray<ReturnType<typeof node>>) =>
    new (class extends Cassandra.policies.loadBalancing.LoadBalancingPolicy {
      override getDistance() {
        return distance.local
      }
      override newQueryPlan(
        _keyspace: string,
        _options: unknown,
        callback: (error: Error, plan: Iterator<Cassandra.Host>) => void
      ) {
        plans.count++
        // The driver's callback convention: no error is null.
        callback(null as unknown as Error, planned[Symbol.iterator]() as unknown as Iterator<Cassandra.Host>)
      }
    })()
  const client = new Cassandra.Client({
    contactPoints: ["192.0.2.1"],
    localDataCenter: "dc1",
    policies: { loadBalancing: planning(planned), ...policies },
    prepareOnAllHosts: nodes.prepareOnAllHosts === true,
    ...(nodes.keyspace === undefined ? {} : { keyspace: nodes.keyspace }),
    // Its own node, which prepares as the second one does.
    profiles: [
      new Cassandra.ExecutionProfile("remote", {
        loadBalancing: planning([node("10.1.0.1:9042", (query) => serve(query))])
      }),
      ...profiles
    ]
  })
  const calls: Array<{
    readonly queries: ReadonlyArray<string>
    readonly options: Cassandra.QueryOptions
    readonly answer: () => void
    readonly fail: (error: unknown) => void
  }> = []
  const call = (queries: ReadonlyArray<string>, options: Cassandra.QueryOptions) =>
    new Promise((resolve, reject) => {
      calls.push({ queries, options, answer: () => resolve(emptyResult), fail: reject })
    })
  Object.assign(client, {
    execute: (query: string, _params: unknown, options: Cassandra.QueryOptions) => call([query], options),
    batch: (statements: ReadonlyArray<{ readonly query: string }>, options: Cassandra.QueryOptions) =>
      call(
        statements.map((statement) => statement.query),
        options
      )
  })
  return {
    client,
    calls,
    prepares,
    uses,
    plans,
    nodes: planned,
    serveWith: (answer: (query: string) => Promise<void>) => {
      serve = answer
    },
    prepared: (query: string) =>
      (
        client.metadata as unknown as { getPreparedInfo: (keyspace: string | undefined, query: string) => Info }
      ).getPreparedInfo(nodes.keyspace, query)
  }
}

const callsReach = (calls: ReadonlyArray<unknown>, count: number) =>
  until(
    Effect.sync(() => calls.length),
    (n) => n >= count
  )

/**
 * Waits until the promise chains started so far have settled: the stand-in nodes answer through promises alone, no
 * timer or I/O, so everything they were to do by then has happened once a turn of the event loop has passed.
 */
const promiseChainsSettled = Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))

const reasonOf = (exit: Exit.Exit<unknown, CassandraError.CassandraError>) => {
  assert.isTrue(Exit.isFailure(exit))
  const error = Exit.findErrorOption(exit as Exit.Exit<never, CassandraError.CassandraError>)
  assert.isTrue(Option.isSome(error))
  return (error as Option.Some<CassandraError.CassandraError>).value.reason
}

/**
 * A runner over `cluster`'s client, closed by `scope` and giving up its drain after 20 ms, and the exit of a request
 * it sent (`fiber`), which the node it was sent to refused to prepare.
 */
const refusedBeforeClosing = (cluster: ReturnType<typeof refusingCluster>) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const { runner, summary } = yield* Scope.provide(
      countedRunner(cluster.client, { drainTimeout: "20 millis" }),
      scope
    )
    const fiber = yield* Effect.forkChild(Effect.exit(runner.execute(request())))
    yield* callsReach(cluster.calls, 1)
    cluster.calls[0]!.fail(shuttingDown())
    return { runner, summary, scope, fiber }
  })

/**
 * A cluster of three nodes in keyspace "ks" that prepares on all of them, whose third node's connection changes
 * keyspace only when `using` settles.
 */
const preparingOnAllWithThirdLate = () => {
  const using = deferred<void>()
  const cluster = refusingCluster({}, [], {
    third: true,
    prepareOnAllHosts: true,
    keyspace: "ks",
    use: { "10.0.0.3:9042": () => using.promise }
  })
  return { cluster, using }
}

/** A cluster whose first node refuses to prepare late the first time (when `refusing` settles), at once after. */
const refusingLateOnce = () => {
  const refusing = deferred<void>()
  let asked = 0
  const cluster = refusingCluster({}, [], {
    first: () => (asked++ === 0 ? refusing.promise : Promise.reject(shuttingDown()))
  })
  return { cluster, refusing }
}

/**
 * Asserts that each of `refused` failed as its session closed, and what they left: the preparations asked for
 * (`address query`), the requests sent, and none still in flight.
 */
const leftAfterClosing = (left: {
  readonly cluster: ReturnType<typeof refusingCluster>
  readonly runner: { readonly inFlight: Effect.Effect<number> }
  readonly refused: ReadonlyArray<Fiber.Fiber<Exit.Exit<unknown, CassandraError.CassandraError>>>
  readonly prepares: ReadonlyArray<string>
  readonly sent: number
}) =>
  Effect.gen(function* () {
    for (const fiber of left.refused) assert.strictEqual(reasonOf(yield* Fiber.join(fiber))._tag, "SessionClosed")
    // Whatever the closed session would still send goes out from the callbacks its requests' failures ran.
    yield* Effect.yieldNow
    assert.deepStrictEqual(
      left.cluster.prepares.map(({ address, query }) => `${address} ${query}`),
      left.prepares,
      "prepared after closing ended"
    )
    assert.strictEqual(left.cluster.calls.length, left.sent, "sent after closing ended")
    assert.strictEqual(yield* left.runner.inFlight, 0)
  })

/**
 * A request (`starter`) whose statement the first node refused to prepare, prepared on the second until `serving`
 * settles, and another request (`waiter`) refused too and waiting on that preparation behind a foreign listener that
 * throws.
 */
const waitingBehindHostileListener = Effect.gen(function* () {
  const cluster = refusingCluster()
  const serving = deferred<void>()
  cluster.serveWith(() => serving.promise)
  const { runner } = yield* countedRunner(cluster.client, { requestTimeout: "Infinity" })
  const starter = yield* Effect.forkChild(Effect.exit(runner.execute(request())))
  yield* callsReach(cluster.calls, 1)
  cluster.calls[0]!.fail(shuttingDown())
  yield* callsReach(cluster.prepares, 2)
  cluster.prepared(query).once("prepared", () => {
    throw new Error("a listener's own failure")
  })
  const waiter = yield* Effect.forkChild(Effect.exit(runner.execute(request())))
  yield* callsReach(cluster.calls, 2)
  cluster.calls[1]!.fail(shuttingDown())
  yield* waitersOn(cluster.prepared(query), 2)
  return { cluster: { ...cluster, serving }, starter, waiter }
})

/** Waits until at least `count` requests wait on the preparation of `info` under way. */
const waitersOn = (info: Info, count: number) =>
  until(
    Effect.sync(() => info.listenerCount("prepared")),
    (n) => n >= count,
    `${count} requests waiting on the preparation under way`
  )

/** The driver's own preparation of `query` for a request (lib/prepare-handler.js, as `execute` with `prepare`). */
const driverPrepared = (client: Cassandra.Client, query: string): Promise<unknown> => {
  const { getPrepared } = createRequire(import.meta.url)("cassandra-driver/lib/prepare-handler.js") as {
    readonly getPrepared: (
      client: Cassandra.Client,
      policy: unknown,
      query: string,
      keyspace: unknown
    ) => Promise<unknown>
  }
  const policy = (client as unknown as { readonly options: { readonly policies: { readonly loadBalancing: unknown } } })
    .options.policies.loadBalancing
  return getPrepared(client, policy, query, undefined)
}

describe("a request whose statement a node refused to prepare", () => {
  it.live("is prepared on another node and sent again once, counted as one success", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const { runner, summary } = yield* countedRunner(cluster.client)
      const fiber = yield* Effect.forkChild(runner.execute(request()))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(shuttingDown())
      yield* callsReach(cluster.calls, 2)
      assert.isDefined(cluster.prepared(query).queryId)
      assert.deepStrictEqual(cluster.prepares, [
        { address: "10.0.0.1:9042", query },
        { address: "10.0.0.2:9042", query }
      ])
      // Sent again with the same options: its deadline and attempt timeout still bound it, and the retry policy
      // counts its one timeout retry by them.
      assert.strictEqual(cluster.calls[1]!.options, cluster.calls[0]!.options)
      assert.strictEqual(cluster.calls[1]!.options.prepare, true)
      cluster.calls[1]!.answer()
      yield* Fiber.join(fiber)
      const counted = yield* summary
      assert.strictEqual(counted.requests, 1)
      assert.strictEqual(counted.succeeded, 1)
      assert.strictEqual(counted.failed, 0)
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("fails with the second refusal when the statement is refused again once sent, without a loop", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const { runner, summary } = yield* countedRunner(cluster.client)
      const fiber = yield* Effect.forkChild(Effect.exit(runner.execute(request())))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(shuttingDown())
      yield* callsReach(cluster.calls, 2)
      // The driver's cache was emptied meanwhile (a schema change): the node it picks refuses again.
      cluster.calls[1]!.fail(shuttingDown())
      assert.strictEqual(reasonOf(yield* Fiber.join(fiber))._tag, "Overloaded")
      assert.strictEqual(cluster.calls.length, 2)
      assert.strictEqual(cluster.plans.count, 1)
      const counted = yield* summary
      assert.strictEqual(counted.failed, 1)
      assert.strictEqual(counted.succeeded, 0)
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("fails at once, unprepared elsewhere, for a refusal an attempt got, without prepare, or unreadable", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const { runner } = yield* countedRunner(cluster.client)
      const unreadable = shuttingDown()
      Object.defineProperty(unreadable, "code", {
        get: () => {
          throw new Error("code")
        }
      })
      const cases: ReadonlyArray<readonly [error: unknown, options: Session.RequestOptions]> = [
        [
          Object.assign(new Cassandra.errors.ResponseError(codes.overloaded, "Too many in flight hints: 10"), {
            coordinator: "10.0.0.1:9042"
          }),
          {}
        ],
        [shuttingDown(), { prepare: false }],
        [unreadable, {}],
        ["shutting down", {}],
        [undefined, {}],
        [null, {}]
      ]
      for (const [error, options] of cases) {
        const sent = cluster.calls.length
        const fiber = yield* Effect.forkChild(Effect.exit(runner.execute(request(options))))
        yield* callsReach(cluster.calls, sent + 1)
        cluster.calls[sent]!.fail(error)
        assert.isTrue(Exit.isFailure(yield* Fiber.join(fiber)))
        assert.strictEqual(cluster.calls.length, sent + 1)
      }
      assert.strictEqual(cluster.plans.count, 0)
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("prepares a refusal with its coordinator left undefined elsewhere, as one with none", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const { runner } = yield* countedRunner(cluster.client)
      const fiber = yield* Effect.forkChild(runner.execute(request()))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(Object.assign(shuttingDown(), { coordinator: undefined }))
      yield* callsReach(cluster.calls, 2)
      cluster.calls[1]!.answer()
      yield* Fiber.join(fiber)
    }).pipe(Effect.scoped)
  )

  it.live("ends an interrupted request at once, never sends it again, and counts it until preparing ends", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const preparing = deferred<void>()
      cluster.serveWith(() => preparing.promise)
      const { runner, summary } = yield* countedRunner(cluster.client)
      const fiber = yield* Effect.forkChild(runner.execute(request()))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(shuttingDown())
      yield* callsReach(cluster.prepares, 2)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* runner.inFlight, 1)
      preparing.resolve()
      yield* until(runner.inFlight, (n) => n === 0)
      assert.strictEqual(cluster.calls.length, 1)
      // Prepared all the same, for the requests to come.
      assert.isDefined(cluster.prepared(query).queryId)
      const counted = yield* summary
      assert.strictEqual(counted.interrupted, 1)
      assert.strictEqual(counted.failed + counted.succeeded, 0)
    }).pipe(Effect.scoped)
  )

  it.live("times a request out at its deadline while it is prepared elsewhere, counted once", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const preparing = deferred<void>()
      cluster.serveWith(() => preparing.promise)
      const { runner, summary } = yield* countedRunner(cluster.client, { requestTimeout: "300 millis" })
      const fiber = yield* Effect.forkChild(Effect.exit(runner.execute(request())))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(shuttingDown())
      const exit = yield* Fiber.join(fiber)
      assert.strictEqual(reasonOf(exit)._tag, "ClientTimeout")
      assert.strictEqual(yield* runner.inFlight, 1)
      preparing.resolve()
      yield* until(runner.inFlight, (n) => n === 0)
      assert.strictEqual(cluster.calls.length, 1)
      const counted = yield* summary
      assert.strictEqual(counted.requests, 1)
      assert.strictEqual(counted.failed, 1)
    }).pipe(Effect.scoped)
  )

  it.live("keeps its throttle place while prepared elsewhere and gives it back exactly once", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const preparing = deferred<void>()
      cluster.serveWith(() => preparing.promise)
      const { runner } = yield* countedRunner(cluster.client, { throttle: { maxInFlight: 1, maxQueued: 10 } })
      const refused = yield* Effect.forkChild(runner.execute(request()))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(shuttingDown())
      yield* callsReach(cluster.prepares, 2)
      const queued = yield* Effect.forEach([1, 2], () => Effect.forkChild(runner.execute(request())))
      // Their fibers have started, and asked for a place, before the promise chains settle.
      yield* promiseChainsSettled
      assert.strictEqual(cluster.calls.length, 1)
      preparing.resolve()
      for (let sent = 2; sent <= 4; sent++) {
        yield* callsReach(cluster.calls, sent)
        // One place: never a second request sent while one is in flight.
        yield* promiseChainsSettled
        assert.strictEqual(cluster.calls.length, sent)
        cluster.calls[sent - 1]!.answer()
      }
      yield* Fiber.join(refused)
      yield* Fiber.joinAll(queued)
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("is waited for by a closing session, which closes once it is answered", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const preparing = deferred<void>()
      cluster.serveWith(() => preparing.promise)
      const scope = yield* Scope.make()
      const { runner } = yield* Scope.provide(countedRunner(cluster.client), scope)
      const fiber = yield* Effect.forkChild(runner.execute(request()))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(shuttingDown())
      yield* callsReach(cluster.prepares, 2)
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      // Nothing in closing waits on a timer or I/O: had it not waited for the request, it would have ended by then.
      yield* promiseChainsSettled
      assert.isUndefined(closing.pollUnsafe())
      preparing.resolve()
      yield* callsReach(cluster.calls, 2)
      cluster.calls[1]!.answer()
      yield* Fiber.join(closing)
      yield* Fiber.join(fiber)
      assert.strictEqual(yield* runner.inFlight, 0)
    })
  )

  it.live(
    "fails unsent as the session closed once closing stopped waiting, before or while it is prepared elsewhere",
    () =>
      Effect.gen(function* () {
        const cluster = refusingCluster()
        const preparing = deferred<void>()
        cluster.serveWith(() => preparing.promise)
        const scope = yield* Scope.make()
        const { runner } = yield* Scope.provide(countedRunner(cluster.client, { drainTimeout: "20 millis" }), scope)
        const whilePrepared = yield* Effect.forkChild(Effect.exit(runner.execute(request())))
        yield* callsReach(cluster.calls, 1)
        cluster.calls[0]!.fail(shuttingDown())
        yield* callsReach(cluster.prepares, 2)
        const refusedLater = yield* Effect.forkChild(Effect.exit(runner.execute(request({ pageSize: 7 }))))
        yield* callsReach(cluster.calls, 2)
        // Both outlast the drain timeout: closing ends, and the client is shut down next.
        yield* Scope.close(scope, Exit.void)
        cluster.calls[1]!.fail(shuttingDown())
        preparing.resolve()
        assert.strictEqual(reasonOf(yield* Fiber.join(whilePrepared))._tag, "SessionClosed")
        assert.strictEqual(reasonOf(yield* Fiber.join(refusedLater))._tag, "SessionClosed")
        assert.strictEqual(cluster.calls.length, 2, "a request was sent again after closing ended")
        assert.strictEqual(cluster.prepares.length, 2, "a statement was prepared after closing ended")
        assert.strictEqual(yield* runner.inFlight, 0)
      })
  )

  it.live("asks no further node to prepare it once closing stopped waiting, and fails as the session closed", () =>
    Effect.gen(function* () {
      const refusing = deferred<void>()
      const cluster = refusingCluster({}, [], { first: () => refusing.promise })
      const { runner, scope, fiber } = yield* refusedBeforeClosing(cluster)
      yield* callsReach(cluster.prepares, 1)
      yield* Scope.close(scope, Exit.void)
      // The first node of the plan refuses to prepare it only now.
      refusing.reject(shuttingDown())
      yield* leftAfterClosing({ cluster, runner, refused: [fiber], prepares: [`10.0.0.1:9042 ${query}`], sent: 1 })
    })
  )

  it.live("prepares neither a batch's next statement nor on the other nodes once closing stopped waiting", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster({}, [], { third: true, prepareOnAllHosts: true })
      const preparing = deferred<void>()
      cluster.serveWith(() => preparing.promise)
      const scope = yield* Scope.make()
      const { runner, summary } = yield* Scope.provide(
        countedRunner(cluster.client, { drainTimeout: "20 millis" }),
        scope
      )
      const statements = [
        { query, params: [1] },
        { query: "UPDATE kv SET v = ? WHERE k = ?", params: [3, 1] }
      ]
      const fiber = yield* Effect.forkChild(Effect.exit(runner.batch(statements, { type: "logged" })))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(shuttingDown())
      yield* callsReach(cluster.prepares, 2)
      yield* Scope.close(scope, Exit.void)
      // The second node prepares the first statement only now: the third is not asked to, nor anyone the second.
      preparing.resolve()
      yield* leftAfterClosing({
        cluster,
        runner,
        refused: [fiber],
        prepares: [`10.0.0.1:9042 ${query}`, `10.0.0.2:9042 ${query}`],
        sent: 1
      })
      assert.strictEqual((yield* summary).failed, 1)
    })
  )

  it.live("does not prepare it for itself when the preparation it waited on is refused after closing ended", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const info = cluster.prepared(query)
      // The driver prepares the statement for another request meanwhile.
      info.preparing = true
      const { runner, scope, fiber } = yield* refusedBeforeClosing(cluster)
      yield* Scope.close(scope, Exit.void)
      info.preparing = false
      info.emit("prepared", shuttingDown())
      yield* leftAfterClosing({ cluster, runner, refused: [fiber], prepares: [], sent: 1 })
    })
  )

  it.live("sends no PREPARE once closing stopped waiting while the connection changed keyspace for it", () =>
    Effect.gen(function* () {
      const using = deferred<void>()
      const cluster = refusingCluster({}, [], { keyspace: "ks", use: { "10.0.0.1:9042": () => using.promise } })
      const { runner, scope, fiber } = yield* refusedBeforeClosing(cluster)
      yield* callsReach(cluster.uses, 1)
      yield* Scope.close(scope, Exit.void)
      using.resolve()
      yield* leftAfterClosing({ cluster, runner, refused: [fiber], prepares: [], sent: 1 })
    })
  )

  it.live("sends no PREPARE on the other nodes once closing stopped waiting while they changed keyspace for it", () =>
    Effect.gen(function* () {
      const { cluster, using } = preparingOnAllWithThirdLate()
      const { scope, fiber } = yield* refusedBeforeClosing(cluster)
      // Prepared on the second node, and sent again; the third changes keyspace in the background meanwhile.
      yield* callsReach(cluster.calls, 2)
      assert.deepStrictEqual(cluster.uses, ["10.0.0.1:9042", "10.0.0.2:9042", "10.0.0.3:9042"])
      yield* Scope.close(scope, Exit.void)
      using.resolve()
      cluster.calls[1]!.answer()
      yield* Fiber.join(fiber)
      yield* promiseChainsSettled
      assert.deepStrictEqual(
        cluster.prepares.map(({ address }) => address),
        ["10.0.0.1:9042", "10.0.0.2:9042"],
        "the third node was asked to prepare it after closing ended"
      )
    })
  )

  it.live("prepares it on the other nodes of an open session after the request it was prepared for succeeded", () =>
    Effect.gen(function* () {
      const { cluster, using } = preparingOnAllWithThirdLate()
      const { runner } = yield* countedRunner(cluster.client)
      const fiber = yield* Effect.forkChild(Effect.exit(runner.execute(request())))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(shuttingDown())
      // Prepared on the second node and sent again; the third changes keyspace in the background meanwhile.
      yield* callsReach(cluster.calls, 2)
      assert.include(cluster.uses, "10.0.0.3:9042")
      cluster.calls[1]!.answer()
      assert.isTrue(Exit.isSuccess(yield* Fiber.join(fiber)))
      using.resolve()
      yield* callsReach(cluster.prepares, 3)
      assert.deepStrictEqual(
        cluster.prepares.map(({ address }) => address),
        ["10.0.0.1:9042", "10.0.0.2:9042", "10.0.0.3:9042"]
      )
    }).pipe(Effect.scoped)
  )

  it.live("prepares no other node once closing ended when only requests of the same session waited on it", () =>
    Effect.gen(function* () {
      const { cluster, using } = preparingOnAllWithThirdLate()
      const serving = deferred<void>()
      cluster.serveWith(() => serving.promise)
      const scope = yield* Scope.make()
      const { runner } = yield* Scope.provide(countedRunner(cluster.client, { drainTimeout: "20 millis" }), scope)
      const first = yield* Effect.forkChild(Effect.exit(runner.execute(request())))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(shuttingDown())
      yield* callsReach(cluster.prepares, 2)
      const second = yield* Effect.forkChild(Effect.exit(runner.execute(request())))
      yield* callsReach(cluster.calls, 2)
      cluster.calls[1]!.fail(shuttingDown())
      yield* waitersOn(cluster.prepared(query), 1)
      // Prepared on the second node, both are sent again; the third node changes keyspace meanwhile.
      serving.resolve()
      yield* callsReach(cluster.calls, 4)
      for (const call of cluster.calls.slice(2)) call.answer()
      assert.isTrue(Exit.isSuccess(yield* Fiber.join(first)))
      assert.isTrue(Exit.isSuccess(yield* Fiber.join(second)))
      yield* Scope.close(scope, Exit.void)
      using.resolve()
      yield* promiseChainsSettled
      assert.deepStrictEqual(
        cluster.prepares.map(({ address }) => address),
        ["10.0.0.1:9042", "10.0.0.2:9042"],
        "the third node was asked to prepare it after closing ended"
      )
    })
  )

  it.live(
    "goes on preparing it for the driver's own request waiting on it after someone removed the listeners before",
    () =>
      Effect.gen(function* () {
        const { cluster, refusing } = refusingLateOnce()
        const { scope, fiber } = yield* refusedBeforeClosing(cluster)
        yield* callsReach(cluster.prepares, 1)
        const info = cluster.prepared(query)
        // A request of an open session waits on the preparation; its listener is removed by someone else, so it stays
        // in flight until that session's drain timeout.
        const open = yield* countedRunner(cluster.client, { drainTimeout: "20 millis" })
        const lost = yield* Effect.forkChild(Effect.exit(open.runner.execute(request())))
        yield* callsReach(cluster.calls, 2)
        cluster.calls[1]!.fail(shuttingDown())
        yield* waitersOn(info, 1)
        info.removeAllListeners("prepared")
        yield* Fiber.interrupt(lost)
        const driverRequest = driverPrepared(cluster.client, query).then(
          () => undefined,
          (error: unknown) => error
        )
        yield* Scope.close(scope, Exit.void)
        refusing.reject(shuttingDown())
        assert.strictEqual(reasonOf(yield* Fiber.join(fiber))._tag, "SessionClosed")
        assert.isUndefined(yield* Effect.promise(() => driverRequest), "the driver's own request failed")
      }).pipe(Effect.scoped)
  )

  it.live("goes on preparing it for a request of another session over the same client waiting on it", () =>
    Effect.gen(function* () {
      const serving = deferred<void>()
      const { cluster, using } = preparingOnAllWithThirdLate()
      cluster.serveWith(() => serving.promise)
      const closingScope = yield* Scope.make()
      const closing = yield* Scope.provide(countedRunner(cluster.client, { drainTimeout: "20 millis" }), closingScope)
      const open = yield* countedRunner(cluster.client)
      const closed = yield* Effect.forkChild(Effect.exit(closing.runner.execute(request())))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(shuttingDown())
      yield* callsReach(cluster.prepares, 2)
      // The open session's request, refused too, waits on the preparation the closing session's request started.
      const served = yield* Effect.forkChild(Effect.exit(open.runner.execute(request())))
      yield* callsReach(cluster.calls, 2)
      cluster.calls[1]!.fail(shuttingDown())
      yield* waitersOn(cluster.prepared(query), 1)
      yield* Scope.close(closingScope, Exit.void)
      serving.resolve()
      assert.strictEqual(reasonOf(yield* Fiber.join(closed))._tag, "SessionClosed")
      yield* callsReach(cluster.calls, 3)
      cluster.calls[2]!.answer()
      assert.isTrue(Exit.isSuccess(yield* Fiber.join(served)))
      // The third node's connection changes keyspace in the background, after the waiters were released.
      assert.include(cluster.uses, "10.0.0.3:9042")
      using.resolve()
      yield* callsReach(cluster.prepares, 3)
      // Prepared on the other nodes too, as the driver would for the open session.
      assert.deepStrictEqual(
        cluster.prepares.map(({ address }) => address),
        ["10.0.0.1:9042", "10.0.0.2:9042", "10.0.0.3:9042"]
      )
      assert.strictEqual(yield* closing.runner.inFlight, 0)
      assert.strictEqual(yield* open.runner.inFlight, 0)
    })
  )

  it.live("stops preparing it once closing stopped waiting when only requests of the same session wait on it", () =>
    Effect.gen(function* () {
      const { cluster, refusing } = refusingLateOnce()
      const { runner, summary, scope, fiber: first } = yield* refusedBeforeClosing(cluster)
      yield* callsReach(cluster.prepares, 1)
      // A second request of the same session, refused too, waits on the preparation the first one started.
      const second = yield* Effect.forkChild(Effect.exit(runner.execute(request())))
      yield* callsReach(cluster.calls, 2)
      cluster.calls[1]!.fail(shuttingDown())
      yield* waitersOn(cluster.prepared(query), 1)
      yield* Scope.close(scope, Exit.void)
      refusing.reject(shuttingDown())
      yield* leftAfterClosing({
        cluster,
        runner,
        refused: [first, second],
        prepares: [`10.0.0.1:9042 ${query}`],
        sent: 2
      })
      assert.strictEqual((yield* summary).requests, 2)
    })
  )

  it.live(
    "stops preparing it once closing stopped waiting when the only other request waiting on it was interrupted",
    () =>
      Effect.gen(function* () {
        const { cluster, refusing } = refusingLateOnce()
        const { runner, scope, fiber } = yield* refusedBeforeClosing(cluster)
        yield* callsReach(cluster.prepares, 1)
        // A request of an open session waits on that preparation, then stops waiting.
        const open = yield* countedRunner(cluster.client)
        const waiter = yield* Effect.forkChild(Effect.exit(open.runner.execute(request())))
        yield* callsReach(cluster.calls, 2)
        cluster.calls[1]!.fail(shuttingDown())
        yield* waitersOn(cluster.prepared(query), 1)
        yield* Fiber.interrupt(waiter)
        yield* Scope.close(scope, Exit.void)
        refusing.reject(shuttingDown())
        yield* leftAfterClosing({ cluster, runner, refused: [fiber], prepares: [`10.0.0.1:9042 ${query}`], sent: 2 })
        yield* until(open.runner.inFlight, (n) => n === 0)
      }).pipe(Effect.scoped)
  )

  it.live("fails a request waiting on a preparation as the session closes, though that preparation never ends", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      // The caller's client prepares the statement on a node that never answers (its read timeout 0).
      cluster.prepared(query).preparing = true
      const scope = yield* Scope.make()
      const { runner } = yield* Scope.provide(
        countedRunner(cluster.client, { drainTimeout: "20 millis", requestTimeout: "Infinity" }),
        scope
      )
      const fiber = yield* Effect.forkChild(Effect.exit(runner.execute(request())))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(shuttingDown())
      yield* waitersOn(cluster.prepared(query), 1)
      yield* Scope.close(scope, Exit.void)
      yield* leftAfterClosing({ cluster, runner, refused: [fiber], prepares: [], sent: 1 })
    })
  )

  it.live("goes on preparing it for the driver's own request waiting on it once closing stopped waiting", () =>
    Effect.gen(function* () {
      const { cluster, refusing } = refusingLateOnce()
      const { scope, fiber } = yield* refusedBeforeClosing(cluster)
      yield* callsReach(cluster.prepares, 1)
      // A request of the caller's own through the driver (lib/prepare-handler.js, as execute with prepare: true)
      // waits on that preparation.
      const driverWaits = Effect.promise(() =>
        driverPrepared(cluster.client, query).then(
          () => undefined,
          (error: unknown) => error
        )
      )
      const driverRequest = yield* Effect.forkChild(driverWaits)
      yield* Effect.yieldNow
      yield* Scope.close(scope, Exit.void)
      refusing.reject(shuttingDown())
      assert.strictEqual(reasonOf(yield* Fiber.join(fiber))._tag, "SessionClosed")
      assert.isUndefined(yield* Fiber.join(driverRequest), "the driver's own request failed")
      assert.isDefined(cluster.prepared(query).queryId)
    })
  )

  it.live("prepares once a statement refused to several requests at once, and sends each again", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const preparing = deferred<void>()
      cluster.serveWith(() => preparing.promise)
      const { runner } = yield* countedRunner(cluster.client)
      const fibers = yield* Effect.forEach([1, 2, 3], () => Effect.forkChild(runner.execute(request())))
      yield* callsReach(cluster.calls, 3)
      for (const call of cluster.calls) call.fail(shuttingDown())
      yield* callsReach(cluster.prepares, 2)
      // The other two wait on the preparation the first one started.
      yield* waitersOn(cluster.prepared(query), 2)
      preparing.resolve()
      yield* callsReach(cluster.calls, 6)
      for (const call of cluster.calls.slice(3)) call.answer()
      yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(
        cluster.prepares.map((p) => p.address),
        ["10.0.0.1:9042", "10.0.0.2:9042"]
      )
    }).pipe(Effect.scoped)
  )

  it.live("prepares each statement of a batch not prepared yet once, then sends the batch again", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const { runner } = yield* countedRunner(cluster.client)
      const insert = "INSERT INTO kv (k, v) VALUES (?, ?)"
      cluster.prepared(insert).queryId = Buffer.from("known")
      const update = "UPDATE kv SET v = ? WHERE k = ?"
      const fiber = yield* Effect.forkChild(
        runner.batch(
          [
            { query: insert, params: [1, 2] },
            { query: update, params: [3, 1] },
            { query: update, params: [4, 2] },
            { query, params: [1] }
          ] as never,
          { type: "logged" } as never
        )
      )
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(bootstrapping())
      yield* callsReach(cluster.calls, 2)
      assert.deepStrictEqual(cluster.calls[1]!.queries, [insert, update, update, query])
      assert.deepStrictEqual(
        cluster.prepares.filter((p) => p.address === "10.0.0.2:9042").map((p) => p.query),
        [update, query]
      )
      cluster.calls[1]!.answer()
      yield* Fiber.join(fiber)
    }).pipe(Effect.scoped)
  )

  it.live("sends again every request waiting on the preparation it ended, though a listener before them throws", () =>
    Effect.gen(function* () {
      const { cluster, starter, waiter } = yield* waitingBehindHostileListener
      cluster.serving.resolve()
      yield* callsReach(cluster.calls, 4)
      for (const call of cluster.calls.slice(2)) call.answer()
      assert.isTrue(Exit.isSuccess(yield* Fiber.join(starter)), "the request that prepared it failed")
      assert.isTrue(Exit.isSuccess(yield* Fiber.join(waiter)))
      assert.strictEqual(cluster.prepared(query).listenerCount("prepared"), 0)
    }).pipe(Effect.scoped)
  )

  it.live(
    "fails every request waiting on the preparation it ended with its error, though a listener before them throws",
    () =>
      Effect.gen(function* () {
        const { cluster, starter, waiter } = yield* waitingBehindHostileListener
        cluster.serving.reject(syntaxError())
        assert.strictEqual(reasonOf(yield* Fiber.join(starter))._tag, "Syntax")
        assert.strictEqual(reasonOf(yield* Fiber.join(waiter))._tag, "Syntax")
        assert.strictEqual(cluster.prepared(query).listenerCount("prepared"), 0)
      }).pipe(Effect.scoped)
  )

  it.live("is prepared on the nodes of its execution profile", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const { runner } = yield* countedRunner(cluster.client)
      const fiber = yield* Effect.forkChild(runner.execute(request({ executionProfile: "remote" })))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(shuttingDown())
      yield* callsReach(cluster.calls, 2)
      assert.deepStrictEqual(cluster.prepares, [{ address: "10.1.0.1:9042", query }])
      cluster.calls[1]!.answer()
      yield* Fiber.join(fiber)
    }).pipe(Effect.scoped)
  )

  it.live("ends a traced request in one span, with the outcome of the request sent again", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const spans: Array<Tracer.Span> = []
      const tracer = Tracer.make({
        span: (options) => {
          const span = Tracer.nativeTracer.span(options)
          spans.push(span)
          return span
        }
      })
      const { runner } = yield* countedRunner(cluster.client)
      const fiber = yield* Effect.forkChild(runner.execute(request()).pipe(Effect.withTracer(tracer)))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(shuttingDown())
      yield* callsReach(cluster.calls, 2)
      cluster.calls[1]!.answer()
      yield* Fiber.join(fiber)
      assert.strictEqual(spans.length, 1)
      assert.strictEqual(spans[0]!.status._tag, "Ended")
      assert.isFalse(spans[0]!.attributes.has("error.type"))
    }).pipe(Effect.scoped)
  )
})

/** A node's answer to an attempt, as the driver hands it on: the refusal of a node shutting down, with its address. */
const refusedAttempt = (address = "10.0.0.1:9042") => Object.assign(shuttingDown(), { coordinator: address })

describe("a request a node refused because it is shutting down", () => {
  it("is recognized by the server's text and the attempt's coordinator only", () => {
    assert.strictEqual(shuttingDownNode(refusedAttempt()), "10.0.0.1:9042")
    assert.isUndefined(shuttingDownNode(shuttingDown()))
    const hints = new Cassandra.errors.ResponseError(codes.overloaded, "Too many in flight hints: 10")
    assert.isUndefined(shuttingDownNode(Object.assign(hints, { coordinator: "10.0.0.1:9042" })))
    const unreadable = refusedAttempt()
    Object.defineProperty(unreadable, "message", {
      get: () => {
        throw new Error("message")
      }
    })
    assert.isUndefined(shuttingDownNode(unreadable))
    assert.isUndefined(shuttingDownNode("Server is shutting down"))
  })

  it.live("is sent again once, whatever its idempotence, and that node goes to the back of query plans", () =>
    Effect.gen(function* () {
      const policy = new HealthAwarePolicy(new Cassandra.policies.loadBalancing.RoundRobinPolicy())
      const cluster = refusingCluster({ loadBalancing: policy })
      // The driver's own entry for the node, as far as the session reads it; its typings do not export Host.
      const stopping = {
        address: "10.0.0.1:9042",
        isUp: () => true,
        pool: { connections: [] }
      } as unknown as Cassandra.Host
      ;(cluster.client.hosts as unknown as { set: (key: string, host: Cassandra.Host) => void }).set(
        stopping.address,
        stopping
      )
      const { runner, summary } = yield* countedRunner(cluster.client)
      const write = { query: "UPDATE counts SET c = c + 1 WHERE k = ?", params: [1], options: {} }
      const fiber = yield* Effect.forkChild(runner.execute(write))
      yield* callsReach(cluster.calls, 1)
      assert.isFalse(cluster.calls[0]!.options.isIdempotent)
      cluster.calls[0]!.fail(refusedAttempt())
      yield* callsReach(cluster.calls, 2)
      assert.strictEqual(cluster.calls[1]!.options, cluster.calls[0]!.options, "sent again with other options")
      assert.isTrue(policy.avoided.has(stopping))
      assert.strictEqual(yield* runner.inFlight, 1)
      cluster.calls[1]!.answer()
      yield* Fiber.join(fiber)
      assert.strictEqual(yield* runner.inFlight, 0)
      assert.strictEqual(cluster.calls.length, 2)
      assert.strictEqual(cluster.plans.count, 0)
      assert.strictEqual((yield* summary).requests, 1)
    }).pipe(Effect.scoped)
  )

  it.live("fails when refused again after it was sent again: it is never sent a third time", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const { runner } = yield* countedRunner(cluster.client)
      const fiber = yield* Effect.forkChild(Effect.exit(runner.execute(request())))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(refusedAttempt())
      yield* callsReach(cluster.calls, 2)
      cluster.calls[1]!.fail(refusedAttempt("10.0.0.2:9042"))
      const reason = reasonOf(yield* Fiber.join(fiber))
      assert.strictEqual(reason._tag, "Overloaded")
      assert.strictEqual(cluster.calls.length, 2)
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("fails unsent as the session closed when refused once closing stopped waiting for it", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const scope = yield* Scope.make()
      const { runner } = yield* Scope.provide(
        countedRunner(cluster.client, { drainTimeout: "20 millis", throttle: { maxInFlight: 1, maxQueued: 1 } }),
        scope
      )
      const fiber = yield* Effect.forkChild(Effect.exit(runner.execute(request())))
      yield* callsReach(cluster.calls, 1)
      // The refusal comes after the drain timed out: the client is shut down next, or is the caller's to keep using.
      yield* Scope.close(scope, Exit.void)
      cluster.calls[0]!.fail(refusedAttempt())
      assert.strictEqual(reasonOf(yield* Fiber.join(fiber))._tag, "SessionClosed")
      assert.strictEqual(cluster.calls.length, 1, "the request was sent again after closing ended")
      assert.strictEqual(yield* runner.inFlight, 0)
    })
  )

  it.live("fails at once under the retry policy that never retries", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster({ retry: new Cassandra.policies.retry.FallthroughRetryPolicy() })
      const { runner } = yield* countedRunner(cluster.client)
      const fiber = yield* Effect.forkChild(Effect.exit(runner.execute(request())))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(refusedAttempt())
      assert.strictEqual(reasonOf(yield* Fiber.join(fiber))._tag, "Overloaded")
      assert.strictEqual(cluster.calls.length, 1)
    }).pipe(Effect.scoped)
  )
})

describe("a request refused by a node shutting down, attacked", () => {
  /** The driver's own entry for a node of `cluster`, as far as the session reads it. */
  const knownHost = (cluster: ReturnType<typeof refusingCluster>, address: string) => {
    const host = { address, isUp: () => true, pool: { connections: [] } } as unknown as Cassandra.Host
    ;(cluster.client.hosts as unknown as { set: (key: string, host: Cassandra.Host) => void }).set(address, host)
    return host
  }

  it.live(
    "after a node refused to prepare it as it shuts down, is sent past that node, which then refuses it too",
    () =>
      Effect.gen(function* () {
        let planned: ReadonlyArray<unknown> = []
        const policy = new HealthAwarePolicy(
          new (class extends Cassandra.policies.loadBalancing.LoadBalancingPolicy {
            override getDistance() {
              return distance.local
            }
            override newQueryPlan(
              _keyspace: string,
              _options: unknown,
              callback: (error: Error, plan: Iterator<Cassandra.Host>) => void
            ) {
              callback(null as unknown as Error, planned[Symbol.iterator]() as Iterator<Cassandra.Host>)
            }
          })()
        )
        const cluster = refusingCluster({ loadBalancing: policy })
        planned = cluster.nodes
        const stopping = knownHost(cluster, "10.0.0.1:9042")
        const { runner, summary } = yield* countedRunner(cluster.client)
        const write = { query: "UPDATE counts SET c = c + 1 WHERE k = ?", params: [1], options: {} }
        const fiber = yield* Effect.forkChild(runner.execute(write))
        yield* callsReach(cluster.calls, 1)
        cluster.calls[0]!.fail(shuttingDown())
        yield* callsReach(cluster.calls, 2)
        // It refused the PREPARE sent here too, as shutting down: later plans try it last.
        assert.isTrue(policy.avoided.has(stopping))
        // The driver's plan, built before, still picked it.
        cluster.calls[1]!.fail(refusedAttempt())
        yield* callsReach(cluster.calls, 3)
        assert.strictEqual(yield* runner.inFlight, 1)
        cluster.calls[2]!.answer()
        yield* Fiber.join(fiber)
        assert.strictEqual(yield* runner.inFlight, 0)
        const counted = yield* summary
        assert.strictEqual(counted.requests, 1)
        assert.strictEqual(counted.succeeded, 1)
      }).pipe(Effect.scoped)
  )

  it.live("fails at once under an execution profile whose retry policy never retries", () =>
    Effect.gen(function* () {
      const never = new Cassandra.ExecutionProfile("never", {
        retry: new Cassandra.policies.retry.FallthroughRetryPolicy()
      })
      const cluster = refusingCluster({}, [never])
      const { runner } = yield* countedRunner(cluster.client)
      const fiber = yield* Effect.forkChild(Effect.exit(runner.execute(request({ executionProfile: "never" }))))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(refusedAttempt())
      assert.strictEqual(reasonOf(yield* Fiber.join(fiber))._tag, "Overloaded")
      assert.strictEqual(cluster.calls.length, 1)
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("is sent again under an execution profile that retries, though the session's policy never retries", () =>
    Effect.gen(function* () {
      const retrying = new Cassandra.ExecutionProfile("retrying", {
        retry: new Cassandra.policies.retry.RetryPolicy()
      })
      const cluster = refusingCluster({ retry: new Cassandra.policies.retry.FallthroughRetryPolicy() }, [retrying])
      const { runner } = yield* countedRunner(cluster.client)
      const fiber = yield* Effect.forkChild(runner.execute(request({ executionProfile: "retrying" })))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(refusedAttempt())
      yield* callsReach(cluster.calls, 2)
      cluster.calls[1]!.answer()
      yield* Fiber.join(fiber)
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("is sent again, and settles, over a client whose nodes and options cannot be read", () =>
    Effect.gen(function* () {
      const calls: Array<{ readonly answer: () => void; readonly fail: (error: unknown) => void }> = []
      const client = {
        keyspace: undefined,
        get hosts(): never {
          throw new Error("hosts")
        },
        execute: () =>
          new Promise((resolve, reject) => {
            calls.push({ answer: () => resolve(emptyResult), fail: reject })
          })
      } as unknown as Cassandra.Client
      const runner = yield* runnerOver(client, {})
      const fiber = yield* Effect.forkChild(runner.execute(request()))
      yield* callsReach(calls, 1)
      calls[0]!.fail(refusedAttempt())
      yield* callsReach(calls, 2)
      calls[1]!.answer()
      yield* Fiber.join(fiber)
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("is sent again when the node is unknown to the client, which avoids no other node", () =>
    Effect.gen(function* () {
      const policy = new HealthAwarePolicy(new Cassandra.policies.loadBalancing.RoundRobinPolicy())
      const cluster = refusingCluster({ loadBalancing: policy })
      const { runner } = yield* countedRunner(cluster.client)
      const fiber = yield* Effect.forkChild(runner.execute(request()))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(refusedAttempt("192.0.2.9:9042"))
      yield* callsReach(cluster.calls, 2)
      assert.strictEqual(policy.avoided.size, 0)
      assert.strictEqual(policy.stopping.size, 0)
      cluster.calls[1]!.answer()
      yield* Fiber.join(fiber)
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it("recognizes no refusal in a Proxy whose reads throw, nor an OVERLOADED with another text", () => {
    const hostile = new Proxy(refusedAttempt(), {
      get: () => {
        throw new Error("read")
      }
    })
    assert.isUndefined(shuttingDownNode(hostile))
    const trapped = new Proxy(refusedAttempt(), {
      getPrototypeOf: () => {
        throw new Error("prototype")
      }
    })
    assert.isUndefined(shuttingDownNode(trapped))
    const coordinatorThrows = refusedAttempt()
    Object.defineProperty(coordinatorThrows, "coordinator", {
      get: () => {
        throw new Error("coordinator")
      }
    })
    assert.isUndefined(shuttingDownNode(coordinatorThrows))
    for (const text of ["Too many in flight hints: 10", "Server is shutting down.", "server is shutting down", ""]) {
      const other = new Cassandra.errors.ResponseError(codes.overloaded, text)
      assert.isUndefined(shuttingDownNode(Object.assign(other, { coordinator: "10.0.0.1:9042" })), text)
    }
    const unavailable = new Cassandra.errors.ResponseError(codes.unavailableException, "Server is shutting down")
    assert.isUndefined(shuttingDownNode(Object.assign(unavailable, { coordinator: "10.0.0.1:9042" })))
  })

  it.live("an interrupted request refused is not sent again, and settles once", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const { runner, summary } = yield* countedRunner(cluster.client)
      const fiber = yield* Effect.forkChild(runner.execute(request()))
      yield* callsReach(cluster.calls, 1)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* runner.inFlight, 1)
      cluster.calls[0]!.fail(refusedAttempt())
      yield* until(runner.inFlight, (n) => n === 0)
      assert.strictEqual(cluster.calls.length, 1)
      const counted = yield* summary
      assert.strictEqual(counted.requests, 1)
      assert.strictEqual(counted.failed, 0)
    }).pipe(Effect.scoped)
  )

  it.live("a request whose deadline passed is not sent again, and fails once with its timeout", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const { runner, summary } = yield* countedRunner(cluster.client)
      const fiber = yield* Effect.forkChild(Effect.exit(runner.execute(request({ timeout: "50 millis" }))))
      yield* callsReach(cluster.calls, 1)
      assert.strictEqual(reasonOf(yield* Fiber.join(fiber))._tag, "ClientTimeout")
      cluster.calls[0]!.fail(refusedAttempt())
      yield* until(runner.inFlight, (n) => n === 0)
      assert.strictEqual(cluster.calls.length, 1)
      const counted = yield* summary
      assert.strictEqual(counted.requests, 1)
      assert.strictEqual(counted.failed, 1)
    }).pipe(Effect.scoped)
  )

  it.live("a batch refused is sent again as a batch, with the same statements", () =>
    Effect.gen(function* () {
      const cluster = refusingCluster()
      const { runner } = yield* countedRunner(cluster.client)
      const statements = [
        { query: "UPDATE counts SET c = c + 1 WHERE k = ?", params: [1] },
        { query: "UPDATE counts SET c = c + 1 WHERE k = ?", params: [2] }
      ]
      const fiber = yield* Effect.forkChild(runner.batch(statements as never, { type: "counter" } as never))
      yield* callsReach(cluster.calls, 1)
      cluster.calls[0]!.fail(refusedAttempt())
      yield* callsReach(cluster.calls, 2)
      assert.deepStrictEqual(cluster.calls[1]!.queries, cluster.calls[0]!.queries)
      assert.strictEqual(cluster.calls[1]!.options.counter, cluster.calls[0]!.options.counter)
      cluster.calls[1]!.answer()
      yield* Fiber.join(fiber)
      assert.strictEqual(yield* runner.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("is not run again through the caller's client once closing stopped waiting for it", () =>
    Effect.gen(function* () {
      const address = "127.0.0.191"
      const isWrite = (query: string) => query.startsWith("INSERT")
      const node = yield* fakeCluster([address], (arrival, nth) =>
        isWrite(arrival.query) && nth === 0
          ? { answer: { _tag: "Overloaded", message: "Server is shutting down" }, delay: 300 }
          : { _tag: "Void" }
      )
      const client = new Cassandra.Client({
        contactPoints: [address],
        localDataCenter: "dc1",
        protocolOptions: { port: node.port, maxVersion: 4 },
        isMetadataSyncEnabled: false
      })
      yield* Effect.addFinalizer(() => Effect.promise(() => client.shutdown()))
      const scope = yield* Scope.make()
      const session = yield* Session.makeFromClient(client, { drainTimeout: "50 millis" }).pipe(Scope.provide(scope))
      const write = yield* Effect.forkChild(
        Effect.exit(session.execute({ query: "INSERT INTO ks.kv (k, v) VALUES (1, 1)", params: [], options: {} }))
      )
      const writes = Effect.sync(() => node.arrivals.filter(({ query }) => isWrite(query)).length)
      yield* until(writes, (n) => n === 1)
      // The refusal comes after the drain timed out: the session is closed, and the caller keeps its client.
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(reasonOf(yield* Fiber.join(write))._tag, "SessionClosed")
      assert.strictEqual(yield* writes, 1, "the closed session sent the write again")
    }).pipe(Effect.scoped)
  )
})
