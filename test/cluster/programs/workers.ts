/**
 * A service with WORKERS_COUNT workers of kind WORKERS_KIND (`cluster`: `node:cluster` processes, `threads`:
 * `worker_threads`), each building its own session with the same layer (keyspace WORKERS_KEYSPACE on
 * CASSANDRA_CONTACT_POINTS, LOCAL_QUORUM), watching its own topology stream and running two fibers of idempotent
 * writes and reads, each pausing 50 ms after every write and read pair. Started by test/cluster/Workers.test.ts
 * with an IPC channel:
 *
 * - the primary forwards every worker message to the test, tagged with the worker's id: `Ready` (with its pid),
 *   `Event` (a node going down or up, as that worker's topology stream reported it), `Report` (its requests,
 *   failures and lost writes, once stopped);
 * - `{ _tag: "Kill", worker }` kills a worker at once (SIGKILL for a process, `terminate()` for a thread) and starts
 *   a replacement with the next id;
 * - `{ _tag: "Stop" }` asks every worker to stop its traffic, report and close its session; each must then exit by
 *   itself, with nothing left open (no socket, no timer), within 30 seconds of its report: `Exited` says whether it
 *   did.
 *
 *   node --conditions=effect-cassandra/source test/cluster/programs/workers.ts
 */
import cluster from "node:cluster"
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Logging from "effect-cassandra/Logging"
import * as Topology from "effect-cassandra/Topology"
import { lostWrites, newTraffic, startClients, stopClients, writeKeysFrom } from "../../support/traffic.ts"

type Message = { readonly _tag: string } & Record<string, unknown>

const naturalExitTimeout = 30_000
const thinkTime = "50 millis"

/** One worker's life: its own session and topology stream, traffic until told to stop, then a report. */
const runWorker = (id: number, send: (message: Message) => void, stopped: Promise<void>) =>
  Effect.gen(function* () {
    writeKeysFrom(id * 10_000_000)
    const topology = yield* Topology.Topology
    yield* topology.events.pipe(
      Stream.runForEach((event) =>
        Effect.sync(() => {
          if (event._tag === "NodeDown" || event._tag === "NodeUp") {
            send({ _tag: "Event", kind: event._tag, address: event.node.address })
          }
        })
      ),
      Effect.forkScoped
    )
    const traffic = newTraffic()
    // Paced as a service serving its users: sixteen saturating loops would overload the three nodes sharing two cores
    // with them, and Cassandra's own replica timeouts would then measure the machine rather than the sessions.
    const clients = yield* startClients(traffic, 2, thinkTime)
    send({ _tag: "Ready", pid: process.pid })
    yield* Effect.promise(() => stopped)
    yield* stopClients(clients)
    const lost = yield* lostWrites(traffic.acknowledged)
    send({ _tag: "Report", requests: traffic.requests, failed: traffic.failed, lost, failures: traffic.failures })
  }).pipe(
    Effect.scoped,
    Effect.provide(
      CassandraLayer.layer({
        contactPoints: (process.env.CASSANDRA_CONTACT_POINTS ?? "").split(","),
        localDataCenter: "datacenter1",
        keyspace: process.env.WORKERS_KEYSPACE ?? "workers",
        connectTimeout: "30 seconds"
      })
    ),
    Effect.provide(Logging.layer("off"))
  )

const kind = process.env.WORKERS_KIND === "threads" ? "threads" : "cluster"

if (!isMainThread) {
  // A worker thread: messages through its port, unreferenced at the end so that the thread can exit by itself.
  const port = parentPort!
  const stopped = new Promise<void>((resolve) => port.once("message", () => resolve()))
  Effect.runPromise(
    runWorker(workerData.id, (message) => port.postMessage({ ...message, worker: workerData.id }), stopped)
  ).then(
    () => port.unref(),
    (error) => {
      console.error(`worker ${workerData.id}:`, error)
      process.exit(1)
    }
  )
} else if (cluster.isWorker) {
  const id = Number(process.env.WORKER_ID)
  const stopped = new Promise<void>((resolve) => process.once("message", () => resolve()))
  Effect.runPromise(runWorker(id, (message) => process.send?.({ ...message, worker: id }), stopped)).then(
    () => process.disconnect(),
    (error) => {
      console.error(`worker ${id}:`, error)
      process.exit(1)
    }
  )
} else {
  const toTest = (message: Message) => process.send?.(message)
  interface Running {
    readonly kill: () => void
    readonly stop: () => void
    readonly exited: Promise<number | string>
    /** Settles once the worker has sent its report (its lost-write check can take a while). */
    readonly reported: Promise<void>
  }
  /** Forwards a worker's messages to the test, and resolves `reported` with its report. */
  const relay = (subscribe: (listener: (message: Message) => void) => void) =>
    new Promise<void>((reported) =>
      subscribe((message) => {
        toTest(message)
        if (message._tag === "Report") reported()
      })
    )
  const running = new Map<number, Running>()
  let nextId = 1
  const start = () => {
    const id = nextId++
    if (kind === "threads") {
      const worker = new Worker(new URL(import.meta.url), { workerData: { id } })
      worker.on("error", (error) => console.error(`worker ${id}:`, error))
      running.set(id, {
        reported: relay((listener) => worker.on("message", listener)),
        kill: () => void worker.terminate(),
        stop: () => worker.postMessage("stop"),
        exited: new Promise((resolve) => worker.once("exit", (code) => resolve(code)))
      })
    } else {
      const worker = cluster.fork({ WORKER_ID: String(id) })
      running.set(id, {
        reported: relay((listener) => worker.on("message", listener)),
        kill: () => worker.process.kill("SIGKILL"),
        stop: () => worker.send("stop"),
        exited: new Promise((resolve) => worker.once("exit", (code, signal) => resolve(signal ?? code)))
      })
    }
  }
  const count = Number(process.env.WORKERS_COUNT ?? "4")
  for (let index = 0; index < count; index++) start()
  process.on("message", (message: Message) => {
    if (message._tag === "Kill") {
      const worker = message.worker as number
      const target = running.get(worker)
      if (target === undefined) return
      running.delete(worker)
      target.kill()
      void target.exited.then((exit) => {
        toTest({ _tag: "Killed", worker, exit })
        start()
      })
    } else if (message._tag === "Stop") {
      void Promise.all(
        [...running].map(async ([worker, target]) => {
          target.stop()
          await Promise.race([target.reported, target.exited])
          let timer: NodeJS.Timeout | undefined
          const natural = await Promise.race([
            target.exited.then(() => true),
            new Promise<boolean>((resolve) => {
              timer = setTimeout(() => resolve(false), naturalExitTimeout)
            })
          ])
          clearTimeout(timer)
          if (!natural) target.kill()
          toTest({ _tag: "Exited", worker, natural, exit: await target.exited })
        })
      ).then(() => process.disconnect())
    }
  })
}
