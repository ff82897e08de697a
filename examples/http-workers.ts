/**
 * A small HTTP service on `node:cluster` workers, each with its own session built by the same layer (sessions are
 * never shared across processes: each worker connects, watches the topology and drains on its own):
 *
 *   CASSANDRA_CONTACT_POINTS=127.0.0.1 node --conditions=effect-cassandra/source examples/http-workers.ts
 *
 * It listens on HTTP_HOST:HTTP_PORT (default 127.0.0.1:8080) with HTTP_WORKERS workers (default 2), which share
 * the port, and serves a typed read and a typed write:
 *
 *   curl -X PUT -H 'content-type: application/json' -d '{"name":"Ada"}' http://127.0.0.1:8080/users/1
 *   curl http://127.0.0.1:8080/users/1
 *
 * SIGTERM (or Ctrl-C) to the primary drains, during startup too: each worker stops accepting connections, finishes
 * the requests in flight, then closes its session (which waits for its own requests in flight); the primary exits
 * once every worker has. A worker that dies after it listened is replaced; one that dies before it listened, or
 * more than 5 replacements in a minute, stops the service with exit code 1 rather than restarting in a loop.
 *
 * The HTTP server is Effect's (`effect/http`, marked unstable in effect 4.1) on `@effect/platform-node`.
 */
import cluster, { type Worker } from "node:cluster"
import * as Http from "node:http"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { ByteSize, Cause, Config, Data, Effect, Exit, Layer, Option, type Runtime, Schema } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { CassandraLayer, CqlSchema, CqlType, Query } from "effect-cassandra"

const { cql, identifier } = Query
const keyspace = identifier("example_http")
const users = identifier("example_http", "users")

const CassandraLive = CassandraLayer.layerConfig({
  contactPoints: Config.String("CASSANDRA_CONTACT_POINTS").pipe(Config.map((points) => points.split(","))),
  localDataCenter: Config.String("CASSANDRA_LOCAL_DC").pipe(Config.withDefault("datacenter1"))
})

const User = Schema.Struct({ id: CqlType.Int, name: CqlType.Text })
const UserId = Schema.Struct({ id: Schema.NumberFromString.pipe(Schema.decodeTo(CqlType.Int)) })
const NewName = Schema.Struct({ name: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(100)) })

const findUser = CqlSchema.findOneOption({
  Request: CqlType.Int,
  Result: User,
  execute: (id) => cql`SELECT id, name FROM ${users} WHERE id = ${id}`
})

const saveUser = CqlSchema.void({
  Request: User,
  // An upsert of the whole row: safe to retry.
  execute: (user) =>
    cql`INSERT INTO ${users} (id, name) VALUES (${user.id}, ${user.name})`.withOptions({ idempotent: true })
})

const worker = `${cluster.worker?.id ?? 0}`
const headers = { "x-worker": worker }
const badRequest = HttpServerResponse.json({ error: "bad request" }, { status: 400, headers })
const tooLarge = HttpServerResponse.json({ error: "request body too large" }, { status: 413, headers })

/** Far more than a name needs: a larger body is refused, never read whole. */
const maxBodyBytes = 16 * 1024

/**
 * The new name from the JSON body, read only when the body declares no more than `maxBodyBytes` (else none); a
 * chunked body that turns out larger stops being read at the limit (`MaxBodySize`) and is a bad request.
 */
const newNameOf = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  if (Number(request.headers["content-length"] ?? 0) > maxBodyBytes) return Option.none()
  const { name } = yield* HttpServerRequest.schemaBodyJson(NewName).pipe(
    Effect.provideService(HttpServerRequest.MaxBodySize, ByteSize.bytes(maxBodyBytes))
  )
  return Option.some(name)
})

const Routes = Layer.mergeAll(
  HttpRouter.add(
    "GET",
    "/users/:id",
    Effect.gen(function* () {
      const { id } = yield* HttpRouter.schemaPathParams(UserId)
      const user = yield* findUser(id)
      return yield* Option.match(user, {
        onNone: () => HttpServerResponse.json({ error: "not found" }, { status: 404, headers }),
        onSome: (found) => HttpServerResponse.json(found, { headers })
      })
    }).pipe(Effect.catchTag("SchemaError", () => badRequest))
  ),
  HttpRouter.add(
    "PUT",
    "/users/:id",
    Effect.gen(function* () {
      const { id } = yield* HttpRouter.schemaPathParams(UserId)
      const name = yield* newNameOf
      if (Option.isNone(name)) return yield* tooLarge
      yield* saveUser({ id, name: name.value })
      return yield* HttpServerResponse.json({ id, name: name.value }, { headers })
    }).pipe(Effect.catchTags({ SchemaError: () => badRequest, HttpServerError: () => badRequest }))
  )
)

const ServerLive = NodeHttpServer.layerConfig(() => Http.createServer(), {
  host: Config.String("HTTP_HOST").pipe(Config.withDefault("127.0.0.1")),
  port: Config.Port("HTTP_PORT").pipe(Config.withDefault(8080)),
  gracefulShutdownTimeout: Config.succeed("10 seconds")
})

/** A worker: the routes over its own session; it tells the primary once it listens, and serves until SIGTERM. */
const runWorker = Effect.sync(() => process.send?.("listening")).pipe(
  Effect.andThen(Effect.never),
  Effect.provide(
    HttpRouter.serve(Routes, { disableLogger: true }).pipe(Layer.provide(ServerLive), Layer.provide(CassandraLive))
  )
)

/** Why the primary stopped its workers on its own. */
class WorkersStopped extends Data.TaggedError("WorkersStopped")<{ readonly problem: string }> {}

/** Replacements allowed within a minute: a worker dying faster than that is not helped by replacing it. */
const maxReplacementsPerMinute = 5

/**
 * Forks `count` workers and keeps them running until interrupted (SIGTERM or SIGINT through `NodeRuntime.runMain`,
 * at any time, startup included), then drains every worker that is running and waits for each to exit. A worker
 * that dies after it listened is replaced; one that dies before it listened, or more than
 * `maxReplacementsPerMinute` replacements in a minute, stops the service (every other worker drained) with an error:
 * a worker that cannot start will not start the next time either, and restarting it in a loop would only load the
 * cluster with sessions that connect and fail.
 */
const superviseWorkers = (count: number, url: string) =>
  Effect.callback<void, WorkersStopped>((resume) => {
    let draining = false
    // Counts every worker that listened, replacements too: the service is announced once, when the first all did.
    let listening = 0
    const replacedAt: Array<number> = []
    const drain = (then: () => void) => {
      draining = true
      const running = Object.values(cluster.workers ?? {}).filter(
        (child): child is Worker => child !== undefined && !child.isDead()
      )
      let left = running.length
      if (left === 0) return then()
      for (const child of running) {
        child.once("exit", () => {
          if (--left === 0) then()
        })
        child.process.kill("SIGTERM")
      }
    }
    const stop = (problem: string) => {
      if (draining) return
      console.log(`stopping: ${problem}`)
      drain(() => resume(Effect.fail(new WorkersStopped({ problem }))))
    }
    const fork = () => {
      const child = cluster.fork()
      let listened = false
      child.once("message", () => {
        listened = true
        if (++listening === count) console.log(`serving ${url} with ${count} workers`)
      })
      child.once("exit", (code, signal) => {
        if (draining) return
        const exit = signal ?? code
        if (!listened) return stop(`worker ${child.id} exited (${exit}) before it listened: not replacing it`)
        const now = Date.now()
        replacedAt.push(now)
        while (replacedAt[0]! <= now - 60_000) replacedAt.shift()
        if (replacedAt.length > maxReplacementsPerMinute) {
          return stop(`workers exited ${replacedAt.length} times within a minute: not replacing them`)
        }
        console.log(`worker ${child.id} exited (${exit}): replacing it`)
        fork()
      })
    }
    for (let i = 0; i < count; i++) fork()
    return Effect.callback<void>((drained) => {
      console.log("draining workers")
      drain(() => {
        console.log("all workers drained")
        drained(Effect.void)
      })
    })
  })

/** The primary: creates the table once, then forks and supervises the workers. */
const runPrimary = Effect.gen(function* () {
  yield* Effect.gen(function* () {
    yield* cql`CREATE KEYSPACE IF NOT EXISTS ${keyspace}
      WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`
    yield* cql`CREATE TABLE IF NOT EXISTS ${users} (id int PRIMARY KEY, name text)`
  }).pipe(Effect.provide(CassandraLive))
  const count = yield* Config.Int("HTTP_WORKERS").pipe(Config.withDefault(2))
  const url = `http://${yield* Config.String("HTTP_HOST").pipe(Config.withDefault("127.0.0.1"))}:${yield* Config.Port("HTTP_PORT").pipe(Config.withDefault(8080))}`
  yield* superviseWorkers(count, url)
})

/** A stop asked for by a signal is a clean exit, once drained: a supervisor (systemd, Kubernetes) expects 0. */
const teardown: Runtime.Teardown = (exit, onExit) =>
  onExit(Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause) ? 1 : 0)

NodeRuntime.runMain<void, unknown>(cluster.isPrimary ? runPrimary : runWorker, { teardown })
