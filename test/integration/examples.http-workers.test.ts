/**
 * `examples/http-workers.ts` attacked: malformed and oversized requests, workers that cannot start, and SIGTERM while
 * the workers are still starting. Its happy path (typed reads and writes, drain on SIGTERM under load) is checked by
 * `examples.test.ts`; here each run starts the service on a free port against the test node.
 */
import * as Fs from "node:fs"
import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Query from "effect-cassandra/Query"
import { testConnection } from "../support/cassandra.ts"
import {
  awaitReady,
  freePort,
  liveProcessesOf,
  pollUntil,
  type ServerProcess,
  spawnServer
} from "../support/serverProcess.ts"
import { testOptions } from "../support/session.ts"

const startService = (port: number, workers = 2) => {
  const connection = testConnection()
  return spawnServer(
    "http-workers",
    process.execPath,
    ["--conditions=effect-cassandra/source", "examples/http-workers.ts"],
    {
      env: {
        CASSANDRA_CONTACT_POINTS: connection.contactPoints.join(","),
        CASSANDRA_LOCAL_DC: connection.localDataCenter,
        HTTP_PORT: String(port),
        HTTP_WORKERS: String(workers),
        ...(connection.credentials === undefined
          ? {}
          : {
              CASSANDRA_USERNAME: connection.credentials.username,
              CASSANDRA_PASSWORD: connection.credentials.password
            })
      }
    }
  )
}

const serving = (server: ServerProcess, port: number) =>
  awaitReady(
    server,
    "serving",
    Effect.sync(() => server.output().includes(`serving http://127.0.0.1:${port}`)),
    "90 seconds"
  )

const send = (url: string, init: RequestInit = {}) =>
  Effect.promise(async () => {
    const response = await fetch(url, init)
    return { status: response.status, worker: response.headers.get("x-worker"), text: await response.text() }
  })

describe("http-workers.ts under attack", () => {
  it.live(
    "answer malformed and oversized requests with typed errors that echo nothing, and stay up",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const base = `http://127.0.0.1:${port}`
        const server = yield* startService(port)
        yield* serving(server, port)
        const marker = "Zq7marker"
        for (const id of ["1.5", "99999999999", `${marker}`, "%00", "1".repeat(50)]) {
          const answer = yield* send(`${base}/users/${id}`)
          assert.deepStrictEqual([answer.status, answer.text], [400, '{"error":"bad request"}'], id)
        }
        // A segment longer than the router matches is no route at all: not found, nothing echoed.
        assert.deepStrictEqual(
          yield* send(`${base}/users/${marker.repeat(500)}`).pipe(Effect.map(({ status, text }) => [status, text])),
          [404, ""]
        )
        const put = (body: string | Uint8Array) =>
          send(`${base}/users/1`, { method: "PUT", body, headers: { "content-type": "application/json" } })
        for (const body of [`{"name":5}`, "[]", `"${marker}"`, `{"name":"${marker}`, "null", `{"name":""}`]) {
          const answer = yield* put(body)
          assert.deepStrictEqual([answer.status, answer.text], [400, '{"error":"bad request"}'], body)
        }
        // 50 MB: refused as too large, from its length, before it is read whole.
        const huge = yield* put(new Uint8Array(50 * 1024 * 1024).fill(0x61))
        assert.deepStrictEqual([huge.status, huge.text], [413, '{"error":"request body too large"}'])
        const ok = yield* put(JSON.stringify({ name: "still serving" }))
        assert.strictEqual(ok.status, 200)
        yield* server.assertRunning
        assert.notInclude(server.output(), "replacing")
        assert.notInclude(server.output(), marker)
      }),
    180_000
  )

  it.live(
    "exit 1 instead of restarting forever workers that cannot start",
    () =>
      Effect.gen(function* () {
        // The port is taken: every worker fails to listen, every replacement would too.
        const blocker = yield* Effect.acquireRelease(
          Effect.callback<Net.Server>((resume) => {
            const taken = Net.createServer()
            taken.listen(0, "127.0.0.1", () => resume(Effect.succeed(taken)))
          }),
          (taken) => Effect.sync(() => taken.close())
        )
        const port = (blocker.address() as Net.AddressInfo).port
        const server = yield* startService(port)
        const code = yield* server.exited.pipe(Effect.timeout("120 seconds"))
        assert.strictEqual(code, 1, server.output())
        assert.match(server.output(), /worker \d+ exited \(1\) before it listened: not replacing it/)
        assert.notMatch(server.output(), /\): replacing it/)
        assert.deepStrictEqual(liveProcessesOf(server.child.pid!), [])
      }),
    180_000
  )

  it.live(
    "drain the workers already started when SIGTERM arrives (twice) during startup, and replace none",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const server = yield* startService(port)
        const group = server.child.pid!
        // A worker process exists (the primary's child), and the service is not serving yet.
        yield* pollUntil(
          server,
          "a worker started",
          Effect.sync(() => liveProcessesOf(group).length),
          (count) => count >= 2,
          "90 seconds"
        )
        assert.notInclude(server.output(), "serving")
        // Twice, as an impatient operator or a supervisor's retry sends it: the second changes nothing.
        server.child.kill("SIGTERM")
        server.child.kill("SIGTERM")
        const code = yield* server.exited.pipe(Effect.timeout("60 seconds"))
        assert.strictEqual(code, 0, server.output())
        assert.notInclude(server.output(), "replacing")
        // Nothing outlives the primary: every worker was drained and exited before it did.
        assert.deepStrictEqual(liveProcessesOf(group), [], server.output())
      }),
    180_000
  )

  it.live(
    "a worker killed outright leaves no connection open on the node, and is replaced",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const server = yield* startService(port)
        yield* serving(server, port)
        const primary = server.child.pid!
        const worker = liveProcessesOf(primary).find((pid) => parentOf(pid) === primary)
        assert.isDefined(worker)
        const ports = nodeConnectionPortsOf(Number(worker))
        // Its session's connections: what the node must drop once the process is gone.
        assert.isAtLeast(ports.length, 1)
        const clientPorts = Effect.map(
          Query.cql<{ readonly port: number }>`SELECT port FROM system_views.clients`,
          (rows) => new Set(rows.map((row) => row.port))
        )
        assert.includeMembers([...(yield* clientPorts)], ports)
        process.kill(Number(worker), "SIGKILL")
        // Not one poll: the node learns of the closed sockets when their FIN (sent by the kernel) is read.
        yield* clientPorts.pipe(
          Effect.repeat({
            schedule: Schedule.spaced("200 millis"),
            until: (open) => ports.every((port) => !open.has(port))
          }),
          Effect.timeout("30 seconds")
        )
        yield* pollUntil(
          server,
          "a replacement worker",
          Effect.sync(() => server.output()),
          (output) => /worker \d+ exited \(SIGKILL\): replacing it/.test(output),
          "30 seconds"
        )
      }).pipe(Effect.provide(CassandraLayer.layer(testOptions()))),
    180_000
  )
})

const parentOf = (pid: string) => {
  const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
}

/** The local ports of a process's TCP connections to a node's native port (9042); Linux's /proc. */
const nodeConnectionPortsOf = (pid: number): Array<number> => {
  const inodes = new Set(
    Fs.readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(Fs.readlinkSync(`/proc/${pid}/fd/${fd}`))
        return match === null ? [] : [match[1]!]
      } catch {
        return []
      }
    })
  )
  return Fs.readFileSync(`/proc/${pid}/net/tcp`, "utf8")
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields.length > 9 && fields[2]!.endsWith(":2352") && inodes.has(fields[9]!))
    .map((fields) => Number.parseInt(fields[1]!.split(":")[1]!, 16))
}
