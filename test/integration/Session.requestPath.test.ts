import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as CassandraError from "effect-cassandra/CassandraError"
import * as Session from "effect-cassandra/Session"
import { testConnection } from "../support/cassandra.ts"
import { holdEventLoopUntil } from "../support/requestRunner.ts"
import { testOptions, uniqueKeyspace } from "../support/session.ts"

const probe = "SELECT release_version FROM system.local"

const send = (session: Session.Session, options: Record<string, unknown>) =>
  session.execute({ query: probe, params: [], options: options as Session.RequestOptions })

/** Each bad option, and the name its error must give. */
const badOptions: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
  [{ timestamp: new Date(Number.NaN) }, "timestamp"],
  [{ timestamp: "1700000000000000" }, "timestamp"],
  [{ pageSize: -1 }, "pageSize"],
  [{ pageSize: 2.5 }, "pageSize"],
  [{ pageSize: Number.NaN }, "pageSize"],
  [{ consistency: "MOST" }, "consistency"],
  [{ consistency: 1 }, "consistency"],
  [{ serialConsistency: "QUORUM" }, "serialConsistency"],
  [{ routingKey: "k1" }, "routingKey"],
  [{ routingKey: [] }, "routingKey"],
  [{ pageState: 42 }, "pageState"],
  [{ idempotent: "yes" }, "idempotent"],
  [{ tracing: 1 }, "tracing"],
  [{ prepare: "no" }, "prepare"],
  [{ executionProfile: 7 }, "executionProfile"],
  [{ timeout: 0 }, "timeout"],
  [{ timeout: -10 }, "timeout"],
  [{ timeout: Number.NaN }, "timeout"],
  [{ timeout: 2 ** 31 }, "timeout"],
  [{ timeout: "whenever" }, "timeout"],
  [{ attemptTimeout: 0 }, "attemptTimeout"],
  [{ attemptTimeout: Number.NaN }, "attemptTimeout"],
  [{ attemptTimeout: 2 ** 31 }, "attemptTimeout"],
  [{ attemptTimeout: "whenever" }, "attemptTimeout"]
]

const expectRefused = (error: CassandraError.CassandraError, option: string) => {
  assert.instanceOf(error.reason, CassandraError.InvalidArgument, option)
  assert.include(error.message, option)
  assert.include(error.message, "the request was not sent")
}

/**
 * A proxy in front of the real node: each chunk a client sends is passed on through `toNode`, each the node answers
 * through `toClient`, and either may hold it back before calling `forward`. `connections` counts the client
 * connections still open.
 */
const proxyNode = (relay: {
  readonly toNode: (forward: () => void) => void
  readonly toClient: (forward: () => void) => void
}) =>
  Effect.gen(function* () {
    const [host, port = "9042"] = testConnection().contactPoints[0]!.split(":")
    const open = new Set<Net.Socket>()
    const server = Net.createServer((client) => {
      open.add(client)
      const upstream = Net.connect(Number(port), host)
      client.on("data", (bytes) => relay.toNode(() => upstream.write(bytes)))
      upstream.on("data", (bytes) => relay.toClient(() => client.write(bytes)))
      const close = () => {
        open.delete(client)
        client.destroy()
        upstream.destroy()
      }
      for (const socket of [client, upstream]) {
        socket.on("close", close)
        socket.on("error", close)
      }
    })
    yield* Effect.acquireRelease(
      Effect.callback<void>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.void))
      }),
      () =>
        Effect.sync(() => {
          for (const socket of open) socket.destroy()
          server.close()
        })
    )
    const address = server.address() as Net.AddressInfo
    return { contactPoint: `127.0.0.1:${address.port}`, connections: Effect.sync(() => open.size) }
  })

/**
 * A node that answers late: what a client sends before `holdMillis` after it starts listening is held back until
 * then, and passed on to the real node. `answered` says whether anything was passed on yet, `allClosed` whether every
 * client connection closed within 20 seconds.
 */
const slowNode = (holdMillis: number) =>
  Effect.gen(function* () {
    let forwarded = false
    let answersAt = Number.POSITIVE_INFINITY
    const proxy = yield* proxyNode({
      toNode: (forward) =>
        setTimeout(
          () => {
            forwarded = true
            forward()
          },
          Math.max(0, answersAt - performance.now())
        ),
      toClient: (forward) => forward()
    })
    answersAt = performance.now() + holdMillis
    const allClosed = proxy.connections.pipe(
      Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (n) => n === 0 }),
      Effect.timeoutOption("20 seconds"),
      Effect.map((closed) => closed._tag === "Some")
    )
    return { ...proxy, answered: Effect.sync(() => forwarded), allClosed }
  })

/** A node whose answers are held back from `hold()` until `release()`, then passed on in order. */
const holdingNode = Effect.gen(function* () {
  let holding = false
  const held: Array<() => void> = []
  const proxy = yield* proxyNode({
    toNode: (forward) => forward(),
    toClient: (forward) => (holding ? held.push(forward) : forward())
  })
  return {
    ...proxy,
    hold: () => {
      holding = true
    },
    release: () => {
      holding = false
      for (const forward of held.splice(0)) forward()
    }
  }
})

const until = <A>(effect: Effect.Effect<A>, done: (a: A) => boolean) =>
  effect.pipe(Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: done }))

/**
 * A session closed by `scope`, over a holding node, whose one throttle place a first request holds: sent, its answer
 * held back until `node.release()`.
 */
const firstHeld = (options: { readonly maxQueued: number; readonly drainTimeout: Duration.Input }) =>
  Effect.gen(function* () {
    const node = yield* holdingNode
    const scope = yield* Scope.make()
    const session = yield* Session.make(
      testOptions({
        contactPoints: [node.contactPoint],
        throttle: { maxInFlight: 1, maxQueued: options.maxQueued },
        drainTimeout: options.drainTimeout
      })
    ).pipe(Scope.provide(scope))
    yield* send(session, {})
    node.hold()
    const first = yield* Effect.forkChild(Effect.exit(send(session, {})))
    yield* until(session.inFlight, (n) => n === 1)
    return { node, scope, session, first }
  })

describe("the request path against a real Cassandra", () => {
  it.live("refuses each bad request option with a typed reason before it counts as in flight", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      // A close that waited for a request wrongly counted in flight would take this long.
      const session = yield* Session.make(testOptions({ drainTimeout: "5 minutes" })).pipe(Scope.provide(scope))
      for (const [options, option] of badOptions) {
        expectRefused(yield* Effect.flip(send(session, options)), option)
        assert.strictEqual(yield* session.inFlight, 0, option)
      }
      const badBatch = yield* Effect.flip(
        session.batch([{ query: probe, params: [] }], { type: "eventually" as Session.BatchType })
      )
      expectRefused(badBatch, "type must be logged, unlogged or counter")
      assert.lengthOf((yield* send(session, {})).rows, 1)
      yield* Scope.close(scope, Exit.void).pipe(
        Effect.timeoutOrElse({ duration: "60 seconds", orElse: () => Effect.die("close waited for the drain timeout") })
      )
    })
  )

  it.live("keeps a throttled session serving after more bad requests than it has places", () =>
    Effect.gen(function* () {
      const session = yield* Session.make(testOptions({ throttle: { maxInFlight: 2, maxQueued: 1 } }))
      for (const [options, option] of badOptions.slice(0, 4)) {
        expectRefused(yield* Effect.flip(send(session, options)), option)
      }
      // Bad requests sent while good ones hold every place never disturb them.
      const good = yield* Effect.forkChild(
        Effect.all(
          Array.from({ length: 3 }, () => send(session, {})),
          { concurrency: "unbounded" }
        )
      )
      for (const [options, option] of badOptions) expectRefused(yield* Effect.flip(send(session, options)), option)
      const results = yield* Fiber.join(good)
      assert.deepStrictEqual(
        results.map((result) => result.rows.length),
        [1, 1, 1]
      )
      assert.strictEqual(yield* session.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live("treats an infinite timeout as no deadline, whether the session's or a statement's", () =>
    Effect.gen(function* () {
      const unbounded = yield* Session.make(testOptions({ requestTimeout: Duration.infinity }))
      assert.lengthOf((yield* send(unbounded, {})).rows, 1)
      const session = yield* Session.make(testOptions())
      assert.lengthOf((yield* send(session, { timeout: Duration.infinity })).rows, 1)
      assert.lengthOf((yield* send(session, { timeout: "Infinity" })).rows, 1)
      const refused = yield* Effect.flip(Session.make(testOptions({ requestTimeout: Duration.days(30) })))
      assert.instanceOf(refused.reason, CassandraError.Configuration)
      assert.include(refused.message, "requestTimeout")
    }).pipe(Effect.scoped)
  )

  it.live(
    "lets a statement that allows it run longer on the server than the session's attempt timeout",
    () =>
      Effect.gen(function* () {
        const setup = yield* Session.make(testOptions())
        const keyspace = uniqueKeyspace("slow_attempts")
        const run = (query: string) => setup.execute({ query, params: [], options: {} })
        yield* Effect.acquireRelease(
          run(`CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`),
          () => run(`DROP KEYSPACE IF EXISTS ${keyspace}`).pipe(Effect.ignore)
        )
        yield* run(`CREATE TABLE ${keyspace}.wide (p int, c int, PRIMARY KEY (p, c))`)
        // Counting this partition takes a Cassandra 5.0 node about 240 ms and a 6.0 one far less: the attempts below
        // are bounded at an eighth of the fastest of three counts, measured first; unprepared, so no PREPARE is
        // bounded by them either.
        const rows = 200_000
        const chunk = 1_000
        yield* Effect.forEach(
          Array.from({ length: rows / chunk }, (_, index) => index * chunk),
          (first) =>
            setup.batch(
              Array.from({ length: chunk }, (_, offset) => ({
                query: `INSERT INTO ${keyspace}.wide (p, c) VALUES (0, ?)`,
                params: [first + offset]
              })),
              { type: "unlogged" }
            ),
          { concurrency: 4, discard: true }
        )
        const countOn = (on: Session.Session, options: Session.RequestOptions) =>
          on.execute({
            query: `SELECT count(*) AS n FROM ${keyspace}.wide WHERE p = 0`,
            params: [],
            options: { prepare: false, ...options }
          })
        const countTime = Effect.gen(function* () {
          const started = performance.now()
          yield* countOn(setup, {})
          return performance.now() - started
        })
        let fastest = Number.POSITIVE_INFINITY
        for (let round = 0; round < 3; round++) fastest = Math.min(fastest, yield* countTime)
        // Cut at the session's attempt timeout, on every node the driver tries: the query really is this slow.
        const cutAtEachAttempt = (error: CassandraError.CassandraError) => {
          assert.instanceOf(error.reason, CassandraError.NoHostAvailable)
          if (error.reason instanceof CassandraError.NoHostAvailable) {
            assert.deepStrictEqual(
              error.reason.hosts.map((host) => host.reason),
              ["ClientTimeout"]
            )
          }
        }
        // A node may count several times faster once warm (a 6.0 one did, after three counts), or once the machine
        // is less busy, and a session's first count, on fresh connections, can be slower than its next: a session is
        // kept once two counts in a row were cut. A count that beats the bound lowers it to an eighth of that count,
        // or of one more, and a new session tries again, a few times at most. The bound is the session's read timeout
        // too, so on a busy machine connecting can time out: such a connect is made again with the same bound, a few
        // times at most, apart from those tries.
        const eighthOf = (millis: number) => `${Math.floor(millis / 8)} millis` as const
        /** How long the first of two counts that beat the session's bound took, or undefined when both were cut. */
        const beatenIn = (bounded: Session.Session) =>
          Effect.gen(function* () {
            for (let count = 0; count < 2; count++) {
              const started = performance.now()
              if (Exit.isSuccess(yield* Effect.exit(countOn(bounded, {})))) return performance.now() - started
            }
            return undefined
          })
        /** Whether `error` is a connect that timed out under the bound on every host, and nothing else. */
        const connectTimedOut = (error: CassandraError.CassandraError) =>
          error.reason instanceof CassandraError.NoHostAvailable &&
          error.reason.hosts.length > 0 &&
          error.reason.hosts.every((host) => host.reason === "ClientTimeout")
        let session: Session.Session | undefined
        let connectTimeouts = 0
        for (let tries = 1; session === undefined; ) {
          assert.isAbove(
            fastest,
            8,
            "the count must take several milliseconds for an attempt bound below it to mean anything"
          )
          assert.isAtMost(tries, 6, `no bound cut two counts in a row; the fastest took ${fastest.toFixed(1)} ms`)
          const connected = yield* Effect.exit(Session.make(testOptions({ attemptTimeout: eighthOf(fastest) })))
          if (Exit.isFailure(connected)) {
            const error = Exit.findErrorOption(connected)
            // Anything but a connect timing out under the bound is this test's failure, with its own cause.
            if (Option.isNone(error) || !connectTimedOut(error.value)) return yield* connected
            connectTimeouts++
            assert.isAtMost(
              connectTimeouts,
              5,
              `${connectTimeouts} sessions under ${eighthOf(fastest)} timed out connecting`
            )
            continue
          }
          const beaten = yield* beatenIn(connected.value)
          if (beaten === undefined) session = connected.value
          else {
            fastest = Math.min(beaten, yield* countTime)
            tries++
          }
        }
        const attemptBound = eighthOf(fastest)
        const cut = session
        const count = (options: Session.RequestOptions) => countOn(cut, options)
        const counted = (result: { readonly rows: ReadonlyArray<Record<string, unknown>> }) => String(result.rows[0]?.n)
        cutAtEachAttempt(yield* Effect.flip(count({})))
        cutAtEachAttempt(yield* Effect.flip(count({ timeout: "30 seconds", attemptTimeout: attemptBound })))
        assert.strictEqual(counted(yield* count({ attemptTimeout: "30 seconds" })), String(rows))
        // A statement's own longer deadline raises its attempts' bound to it when it sets none of its own.
        assert.strictEqual(counted(yield* count({ timeout: "30 seconds" })), String(rows))
        assert.strictEqual(yield* session.inFlight, 0)
      }).pipe(Effect.scoped),
    120_000
  )

  it.live("refuses write timestamps in the wrong unit unless any timestamp is allowed", () =>
    Effect.gen(function* () {
      const session = yield* Session.make(testOptions())
      const keyspace = `request_path_${process.pid}`
      const ddl = (query: string) => session.execute({ query, params: [], options: {} })
      yield* ddl(
        `CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`
      )
      yield* Effect.addFinalizer(() => ddl(`DROP KEYSPACE IF EXISTS ${keyspace}`).pipe(Effect.ignore))
      yield* ddl(`CREATE TABLE IF NOT EXISTS ${keyspace}.cells (k int PRIMARY KEY, v text)`)
      const write = (k: number, options: Session.RequestOptions) =>
        session.execute({ query: `INSERT INTO ${keyspace}.cells (k, v) VALUES (?, ?)`, params: [k, "v"], options })
      const writetime = (k: number) =>
        Effect.map(
          session.execute({
            query: `SELECT writetime(v) AS w FROM ${keyspace}.cells WHERE k = ?`,
            params: [k],
            options: {}
          }),
          (result) => result.rows[0]?.w as bigint | undefined
        )
      const nowMillis = BigInt(Date.now())
      for (const timestamp of [nowMillis * 1_000_000n, nowMillis, nowMillis / 1000n, -1n, 2n ** 64n]) {
        expectRefused(yield* Effect.flip(write(1, { timestamp })), "timestamp")
      }
      expectRefused(yield* Effect.flip(write(1, { timestamp: new Date("2200-01-01") })), "timestamp")
      assert.isUndefined(yield* writetime(1))
      const micros = nowMillis * 1000n
      yield* write(2, { timestamp: micros })
      assert.strictEqual(yield* writetime(2), micros)
      const at = new Date(Date.now() - 60_000)
      yield* write(3, { timestamp: at })
      assert.strictEqual(yield* writetime(3), BigInt(at.getTime()) * 1000n)
      yield* write(4, { timestamp: 1_000n, allowAnyTimestamp: true })
      assert.strictEqual(yield* writetime(4), 1_000n)
      assert.strictEqual(yield* session.inFlight, 0)
    }).pipe(Effect.scoped)
  )

  it.live(
    "leaves no connection open when the session gave up connecting, even if the node answers later",
    () =>
      Effect.gen(function* () {
        const node = yield* slowNode(2000)
        const error = yield* Effect.flip(
          Effect.scoped(
            Session.make(
              testOptions({
                contactPoints: [node.contactPoint],
                connectTimeout: "1 second",
                pooling: { heartbeatInterval: "1 second" }
              })
            )
          )
        )
        assert.strictEqual(error.reason._tag, "NoHostAvailable")
        // The driver goes on connecting on its own and succeeds; then the session must close what it opened.
        yield* until(node.answered, (answered) => answered)
        assert.isTrue(yield* node.allClosed, "every connection the abandoned client opened was closed")
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "stops building a session at once when interrupted while connecting, and closes what it opened",
    () =>
      Effect.gen(function* () {
        const node = yield* slowNode(3000)
        const building = yield* Effect.forkChild(
          Effect.scoped(Session.make(testOptions({ contactPoints: [node.contactPoint], connectTimeout: "1 minute" })))
        )
        yield* until(node.connections, (n) => n > 0)
        yield* Fiber.interrupt(building)
        // Interruption did not wait for the node to answer.
        assert.isFalse(yield* node.answered)
        yield* until(node.answered, (answered) => answered)
        assert.isTrue(yield* node.allClosed, "every connection the interrupted build opened was closed")
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "closes only once a request queued behind one whose deadline ran out while queued is sent and answered",
    () =>
      Effect.gen(function* () {
        const { node, scope, session, first } = yield* firstHeld({ maxQueued: 2, drainTimeout: "30 seconds" })
        const expiringSince = performance.now()
        const expiring = yield* Effect.forkChild(send(session, { timeout: "100 millis" }))
        const queued = yield* Effect.forkChild(Effect.exit(send(session, {})))
        const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
        // One timer callback holds the event loop past the expiring request's deadline, then lets the first answer
        // through: the loop reads that answer before it runs the expiring request's timer, so the place goes to the
        // expired request, which passes it on to the one behind it.
        yield* Effect.sync(() =>
          setTimeout(() => {
            holdEventLoopUntil(expiringSince + 150)
            node.release()
          }, 1)
        )
        yield* Fiber.join(closing)
        assert.strictEqual(yield* session.inFlight, 0, "closing waited for every request it accepted")
        assert.isTrue(Exit.isSuccess(yield* Fiber.join(first)))
        assert.strictEqual((yield* Effect.flip(Fiber.join(expiring))).reason._tag, "ClientTimeout")
        const queuedExit = yield* Fiber.join(queued)
        assert.isTrue(Exit.isSuccess(queuedExit), `the request queued behind it was served: ${String(queuedExit)}`)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "fails a request still queued when closing stops waiting for it as the session closed, unsent to the shut-down client",
    () =>
      Effect.gen(function* () {
        const { node, scope, session, first } = yield* firstHeld({ maxQueued: 1, drainTimeout: "200 millis" })
        const queued = yield* Effect.forkChild(send(session, {}), { startImmediately: true })
        assert.strictEqual((yield* Effect.flip(send(session, {}))).reason._tag, "Throttled", "the queue holds it")
        // The first request's answer is held past the drain timeout: the client is shut down with the second queued.
        yield* Scope.close(scope, Exit.void)
        yield* Fiber.join(first)
        assert.strictEqual((yield* Effect.flip(Fiber.join(queued))).reason._tag, "SessionClosed")
        node.release()
      }).pipe(Effect.scoped),
    60_000
  )
})
