/**
 * A session per worker, on a real three-node cluster (keyspace replicated three times, LOCAL_QUORUM): a
 * `node:cluster` service and a `worker_threads` service (test/cluster/programs/workers.ts), four workers each, every
 * worker with its own session built by the same layer, its own topology stream and two paced fibers of idempotent
 * writes and reads. Both services run at once through a rolling restart of the three nodes; then one worker of each is
 * killed mid-traffic (SIGKILL; `terminate()` for a thread) and replaced; then every worker is stopped and must exit
 * by itself, its session closed and nothing left open. Prints one line per kind. Addresses 127.0.0.123-125.
 */
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Query from "effect-cassandra/Query"
import * as LocalCassandra from "../../tools/cassandra/LocalCassandra.ts"

const { cql } = Query
const firstAddress = 123
const nodeCount = 3
const workerCount = 4
const addressOf = (index: number) => `127.0.0.${firstAddress + index - 1}`
const program = Path.join(import.meta.dirname, "programs", "workers.ts")

type Kind = "cluster" | "threads"

interface WorkerState {
  pid?: number
  ready: boolean
  readonly events: Array<string>
  report?: { readonly requests: number; readonly failed: number; readonly lost: number; readonly failures: unknown }
  exited?: { readonly natural: boolean; readonly exit: unknown }
  killed?: unknown
}

interface Service {
  readonly kind: Kind
  readonly child: ChildProcess.ChildProcess
  readonly workers: Map<number, WorkerState>
  readonly output: () => string
}

/** Starts a service of `kind` for the life of the scope; closing it kills the primary and every worker left. */
const startService = (kind: Kind, contactPoints: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync((): Service => {
      const child = ChildProcess.spawn(process.execPath, ["--conditions=effect-cassandra/source", program], {
        env: {
          ...process.env,
          WORKERS_KIND: kind,
          WORKERS_COUNT: String(workerCount),
          WORKERS_KEYSPACE: "workers",
          CASSANDRA_CONTACT_POINTS: contactPoints.join(",")
        },
        stdio: ["ignore", "pipe", "pipe", "ipc"]
      })
      let output = ""
      child.stdout?.on("data", (chunk) => (output += chunk))
      child.stderr?.on("data", (chunk) => (output += chunk))
      const workers = new Map<number, WorkerState>()
      const stateOf = (id: number) => {
        let state = workers.get(id)
        if (state === undefined) {
          state = { ready: false, events: [] }
          workers.set(id, state)
        }
        return state
      }
      child.on("message", (message: { readonly _tag: string; readonly worker: number } & Record<string, any>) => {
        const state = stateOf(message.worker)
        if (message._tag === "Ready") {
          state.ready = true
          state.pid = message.pid
        } else if (message._tag === "Event") state.events.push(`${message.kind} ${message.address}`)
        else if (message._tag === "Report") state.report = message as never
        else if (message._tag === "Exited") state.exited = { natural: message.natural, exit: message.exit }
        else if (message._tag === "Killed") state.killed = message.exit
      })
      return { kind, child, workers, output: () => output }
    }),
    ({ child, workers }) =>
      Effect.sync(() => {
        for (const state of workers.values()) {
          if (state.pid !== undefined && state.pid !== child.pid && state.exited === undefined) {
            try {
              process.kill(state.pid, "SIGKILL")
            } catch {
              // Already gone.
            }
          }
        }
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      })
  )

/** Polls until `condition` holds for `service`, failing with what was awaited and the service's output. */
const until = (service: Service, what: string, condition: () => boolean, timeout: Duration.Input = "120 seconds") =>
  Effect.sync(condition).pipe(
    Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (holds) => holds }),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () =>
        Effect.fail(new Error(`workers ${service.kind}: ${what} did not happen:\n${service.output().slice(-4000)}`))
    })
  )

const seen = (state: WorkerState | undefined, kind: "NodeDown" | "NodeUp", index: number) =>
  state?.events.some((event) => event.startsWith(`${kind} ${addressOf(index)}:`)) === true

describe("a session per worker", () => {
  it.live(
    "node:cluster and worker_threads workers each keep their own session through a rolling restart and a killed worker",
    () =>
      Effect.gen(function* () {
        const cluster = yield* LocalCassandra.start({ nodes: nodeCount, firstAddress, name: "workers" })
        yield* Effect.gen(function* () {
          yield* cql`CREATE KEYSPACE workers WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}`
          yield* cql`CREATE TABLE workers.kv (k int PRIMARY KEY, v text)`
        }).pipe(
          Effect.provide(
            CassandraLayer.layer({ contactPoints: cluster.contactPoints, localDataCenter: cluster.localDataCenter })
          )
        )
        const services = [
          yield* startService("cluster", cluster.contactPoints),
          yield* startService("threads", cluster.contactPoints)
        ]
        const originals = Array.from({ length: workerCount }, (_, index) => index + 1)
        for (const service of services) {
          yield* until(service, "every worker ready", () => originals.every((id) => service.workers.get(id)?.ready))
        }

        for (let index = 1; index <= nodeCount; index++) {
          yield* cluster.stopNode(index)
          yield* cluster.startNode(index)
          for (const service of services) {
            yield* until(service, `every worker saw node ${index} down and up`, () =>
              originals.every(
                (id) =>
                  seen(service.workers.get(id), "NodeDown", index) && seen(service.workers.get(id), "NodeUp", index)
              )
            )
          }
        }

        // One worker of each service killed mid-traffic, and replaced by worker 5.
        for (const service of services) {
          const killedPid = service.workers.get(2)!.pid!
          service.child.send({ _tag: "Kill", worker: 2 })
          yield* until(service, "worker 2 killed", () => service.workers.get(2)?.killed !== undefined)
          yield* until(service, "replacement worker 5 ready", () => service.workers.get(5)?.ready === true)
          if (service.kind === "cluster") {
            assert.strictEqual(service.workers.get(2)!.killed, "SIGKILL")
            assert.throws(() => process.kill(killedPid, 0), /ESRCH/)
          }
        }

        for (const service of services) service.child.send({ _tag: "Stop" })
        for (const service of services) {
          const live = [1, 3, 4, 5]
          yield* until(service, "every worker reported and exited", () =>
            live.every((id) => service.workers.get(id)?.exited !== undefined)
          )
          const reports = live.map((id) => service.workers.get(id)!.report!)
          const events = originals.map((id) => service.workers.get(id)!.events.length)
          const sum = (key: "requests" | "failed" | "lost") =>
            reports.reduce((total, report) => total + (report?.[key] ?? 0), 0)
          console.log(
            `workers ${service.kind}: workers=${workerCount} requests=${sum("requests")} failed=${sum("failed")} lost=${sum("lost")} events_per_worker=${events.join("/")} replaced=1`
          )
          for (const id of live) {
            const state = service.workers.get(id)!
            assert.isDefined(state.report, `worker ${id} of ${service.kind} sent no report`)
            assert.isAbove(state.report!.requests, 0, `worker ${id} of ${service.kind} sent no request`)
            assert.deepStrictEqual(state.report!.failures, [], `worker ${id} of ${service.kind}`)
            assert.strictEqual(state.report!.failed, 0)
            assert.strictEqual(state.report!.lost, 0)
            // It exited by itself once its session closed: no socket or timer was left open.
            assert.isTrue(state.exited!.natural, `worker ${id} of ${service.kind} did not exit by itself`)
            assert.strictEqual(state.exited!.exit, 0)
          }
          for (const id of originals) {
            for (let index = 1; index <= nodeCount; index++) {
              assert.isTrue(seen(service.workers.get(id), "NodeDown", index), `worker ${id}: node ${index} down`)
              assert.isTrue(seen(service.workers.get(id), "NodeUp", index), `worker ${id}: node ${index} up`)
            }
          }
        }
      }).pipe(Effect.scoped),
    900_000
  )
})
