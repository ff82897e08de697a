/**
 * One side of one benchmark round, in a process of its own: it warms up, measures, and prints one JSON `Sample`.
 *
 *   node --conditions=<the package's source condition> --expose-gc bench/child.ts '<Job as JSON>'
 */
import { PerformanceObserver } from "node:perf_hooks"
import * as V8 from "node:v8"
import * as Cassandra from "cassandra-driver"
import { Context, Effect, type Exit, Layer, Schema, type Scope, Tracer } from "effect"
import { BatchJob, CqlSchema, CqlType, Logging, Metrics, Query, Session } from "effect-cassandra"
import type { Job, Operation, Sample } from "./jobs.ts"
import { quantile } from "./stats.ts"
import { makeStubClient, timingOutTable } from "./stubClient.ts"
import { importTable, keyspace, kvTable, readKeys, wideTable } from "./tables.ts"

const localDataCenter = "datacenter1"
type Request = (i: number) => Effect.Effect<unknown, unknown, Session.Session>
type RawRequest = (i: number) => Promise<unknown>

const forceGc = (): void => (globalThis as { gc?: () => void }).gc?.()

/** Garbage-collection time and count, from the moment it is created. */
const watchGc = () => {
  let millis = 0
  let count = 0
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      millis += entry.duration
      count++
    }
  })
  observer.observe({ entryTypes: ["gc"] })
  return {
    // Entries are delivered asynchronously, and those of the last turn may still be buffered: taken before
    // disconnecting, which would drop them.
    stop: async () => {
      await new Promise((resolve) => setImmediate(resolve))
      for (const entry of observer.takeRecords()) {
        millis += entry.duration
        count++
      }
      observer.disconnect()
      return { millis, count }
    }
  }
}

/**
 * Wall time, client CPU and GC pauses of one measured run of `count` requests. It may pay for collecting some of its
 * warm-up's garbage, as each side does. Not a forced GC first: it added 2 to 4 µs a request to the client-only rows of
 * Effect's floor and the library (runs of some 50 ms) in a run of ba37cbb, with no GC pause in those runs; most likely
 * V8's helper threads still sweeping after it, in the process's CPU time.
 */
const measure = async (count: number, work: () => Promise<unknown>): Promise<Sample> => {
  const gc = watchGc()
  const cpu = process.cpuUsage()
  const mainThreadCpu = process.threadCpuUsage()
  const started = performance.now()
  await work()
  const seconds = (performance.now() - started) / 1000
  // Read in the reverse order of the start, so that the main thread's window lies within the process's.
  const usedByMainThread = process.threadCpuUsage(mainThreadCpu)
  const used = process.cpuUsage(cpu)
  const collected = await gc.stop()
  return {
    seconds,
    cpuMicros: used.user + used.system,
    mainThreadCpuMicros: usedByMainThread.user + usedByMainThread.system,
    count,
    gcMillis: collected.millis,
    gcCount: collected.count
  }
}

/**
 * Heap bytes allocated per request by a batch small enough to run without a GC between two forced ones; undefined when
 * a GC ran anyway (then the growth would undercount).
 */
const allocatedBytesPerRequest = async (count: number, work: () => Promise<unknown>) => {
  forceGc()
  const gc = watchGc()
  const before = V8.getHeapStatistics().used_heap_size
  await work()
  const grown = V8.getHeapStatistics().used_heap_size - before
  return (await gc.stop()).count === 0 ? grown / count : undefined
}

/** `count` requests through `concurrency` looping async workers, the way an application drives the raw driver. */
const loopingWorkers = async (count: number, concurrency: number, request: RawRequest) => {
  let next = 0
  const worker = async () => {
    while (next < count) await request(next++)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
}

/** The same through `concurrency` looping fibers: the library's equivalent of the workers above. */
const loopingFibers = <R>(
  count: number,
  concurrency: number,
  request: (i: number) => Effect.Effect<unknown, unknown, R>
) =>
  Effect.suspend(() => {
    let next = 0
    const worker = Effect.gen(function* () {
      while (next < count) yield* request(next++)
    })
    return Effect.forEach(Array.from({ length: Math.min(concurrency, count) }), () => worker, {
      concurrency,
      discard: true
    })
  })

/**
 * Effect's floor: the raw driver in the same looping fibers, one `Effect.promise` per request and nothing else; with
 * a `span`, each request inside that span under its tracer.
 */
const effectFloor = (count: number, concurrency: number, request: RawRequest, span?: FloorSpan) => {
  const send = (i: number) => Effect.promise(() => request(i))
  return Effect.runPromise(
    span === undefined
      ? loopingFibers(count, concurrency, send)
      : Effect.withTracer(
          loopingFibers(count, concurrency, (i) => Effect.useSpan(span.name, span.options, () => send(i))),
          span.tracer
        )
  )
}

interface FloorSpan {
  readonly name: string
  readonly options: Tracer.SpanOptionsNoTrace
  readonly tracer: Tracer.Tracer
}

/** The same with one fiber forked per item, as `Effect.forEach` over every request does. */
const forEachItem = (count: number, concurrency: number, request: Request) =>
  Effect.suspend(() =>
    Effect.forEach(
      Array.from({ length: count }, (_, i) => i),
      request,
      { concurrency, discard: true }
    )
  )

const kv = Query.identifier("bench", "kv")
const wide = Query.identifier("bench", "wide")
const libraryRequests: Record<Operation, Request> = {
  read: (i) => Query.cql`SELECT v FROM ${kv} WHERE k = ${i % readKeys}`,
  write: (i) => Query.cql`INSERT INTO ${kv} (k, v) VALUES (${i % readKeys}, ${"written"})`
}
const rawRequests = (client: Cassandra.Client): Record<Operation, RawRequest> => ({
  read: (i) => client.execute(`SELECT v FROM ${kvTable} WHERE k = ?`, [i % readKeys], { prepare: true }),
  write: (i) =>
    client.execute(`INSERT INTO ${kvTable} (k, v) VALUES (?, ?)`, [i % readKeys, "written"], { prepare: true })
})

const timingOut = Query.identifier(keyspace, timingOutTable)
/** A read the stub fails with a server read timeout, its failure caught and dropped as a caller handling it would. */
const failedRead: Request = (i) => Effect.ignore(Query.cql`SELECT v FROM ${timingOut} WHERE k = ${i % readKeys}`)
/** The raw driver's equivalent: a `catch` handler dropping the failure, one for every request. */
const ignoreFailure = () => {}

const imports = Query.identifier("bench", "imports")
const insertText = `INSERT INTO ${importTable} (k, v, n) VALUES (?, ?, ?)`
const insertConcurrency = 256
/** The options `executeConcurrent` sends every row with: one object for the whole job. */
const insertOptions = { prepare: true }
/**
 * One row of the insert job, as each side holds it until it is sent: the driver's parameter array, the library's
 * statement (the same values, bound).
 */
const insertInputs = {
  raw: (k: number): Array<unknown> => [k, `row-${k}`, BigInt(k)],
  library: (k: number) => Query.cql`INSERT INTO ${imports} (k, v, n) VALUES (${k}, ${`row-${k}`}, ${BigInt(k)})`
}

const WideRow = Schema.Struct({
  p: CqlType.Int,
  c: CqlType.Int,
  name: CqlType.Text,
  amount: CqlType.BigInt,
  price: CqlType.Double,
  active: CqlType.Boolean,
  created: CqlType.Timestamp,
  ref: CqlType.Uuid,
  note: CqlType.Text,
  qty: CqlType.Int
})
const findWideRows = CqlSchema.findAll({
  Request: Schema.Number,
  Result: WideRow,
  execute: (p) => Query.cql`SELECT * FROM ${wide} WHERE p = ${p}`
})

/**
 * A tracer that really exports: every ended span is handed to an in-memory exporter, which keeps the current batch
 * (as an exporter holds spans until it sends them) so that span work cannot be optimized away.
 */
const inMemoryTracer = () => {
  const exportBatch = 512
  let batch: Array<Tracer.NativeSpan> = []
  class ExportedSpan extends Tracer.NativeSpan {
    override end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
      super.end(endTime, exit)
      if (batch.length === exportBatch) batch = []
      batch.push(this)
    }
  }
  return Tracer.make({ span: (options) => new ExportedSpan(options) })
}

/**
 * The span the library makes for one read over `client` (its name, kind and every attribute, what the node answered
 * included), for Effect's floor to make the same, under the tracer of the library's `+tracer` rows.
 */
const spanOfLibraryRead = async (client: Cassandra.Client): Promise<FloorSpan> => {
  let span: Tracer.NativeSpan | undefined
  const capturing = Tracer.make({ span: (options) => (span = new Tracer.NativeSpan(options)) })
  await withSession(Session.makeFromClient(client), Logging.layer("off"), (run) =>
    run(Effect.withTracer(Effect.asVoid(libraryRequests.read(0)), capturing))
  )
  if (span === undefined) throw new Error("the library made no span for a read under a tracer")
  return {
    name: span.name,
    options: { kind: span.kind, attributes: Object.fromEntries(span.attributes) },
    tracer: inMemoryTracer()
  }
}

const rawClient = async (contactPoints: ReadonlyArray<string>) => {
  const client = new Cassandra.Client({
    contactPoints: [...contactPoints],
    localDataCenter,
    encoding: Session.encoding,
    queryOptions: { consistency: Cassandra.types.consistencies.localQuorum }
  })
  await client.connect()
  return client
}

/** The layer of each observability setting; `default` provides nothing, so the session uses its own defaults. */
const observabilityLayers = {
  default: Layer.empty,
  off: Logging.layer("off"),
  on: Metrics.layer()
}

/** Builds a library session with `layer` provided, runs `use` with it, and closes it. */
const withSession = <A>(
  acquire: Effect.Effect<Session.Session, unknown, Scope.Scope>,
  layer: Layer.Layer<never> | Layer.Layer<Metrics.Metrics>,
  use: (run: <B>(effect: Effect.Effect<B, unknown, Session.Session>) => Promise<B>) => Promise<A>
): Promise<A> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const session = yield* acquire
        // Each run gets the layer's services and the session, as a request handler of an Effect server does.
        const runWithSession = Effect.runPromiseWith(
          Context.add(yield* Effect.context<never>(), Session.Session, session)
        )
        return yield* Effect.promise(() => use(runWithSession))
      }).pipe(Effect.provide(layer))
    )
  )

/**
 * Sends `ratePerSecond` requests for `seconds`, open loop: latency counts from when each request was due, so a
 * client that falls behind shows it. A failed request (the driver refuses requests beyond its connection's limit when
 * the client cannot keep up) counts with the time it took to fail, and is counted.
 */
const openLoop = (ratePerSecond: number, seconds: number, send: (i: number) => Promise<unknown>) =>
  new Promise<{ latencies: Float64Array; failed: number }>((resolve) => {
    const total = Math.round(ratePerSecond * seconds)
    const latencies = new Float64Array(total)
    const interval = 1000 / ratePerSecond
    const started = performance.now()
    let issued = 0
    let completed = 0
    let failed = 0
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - started) / interval) + 1)
      while (issued < due) {
        const index = issued++
        const intended = started + index * interval
        const settled = () => {
          latencies[index] = performance.now() - intended
          if (++completed === total) resolve({ latencies, failed })
        }
        send(index).then(settled, () => {
          failed++
          settled()
        })
      }
      if (issued < total) setTimeout(tick, 1)
    }
    tick()
  })

/**
 * Requests (or rows) every real-node child runs before it measures. V8 optimizes the driver's hot code, and the
 * library's, after some 9,000 to 11,000 requests: at c=1, 2,000 reads in that span cost 1.5 to 2 times the CPU of the
 * same reads after it, 55 µs a read of it off the main thread (measured at commit 0d76c91, the raw driver and the
 * library alike; steady from 20,000 on). With half its measured count as warm-up, a c=1 child of a full run measured
 * requests 6,000 to 18,000, that one-time compile included, more of it for the side with more code (a quick run's,
 * 2,000 to 6,000, code not yet optimized).
 */
const realNodeWarmUp = 20_000

/** How many requests at once the warm-up of a fixed-load child sends: it warms V8 up, not the fixed load. */
const latencyWarmUpConcurrency = 32

const latencySample = async (ratePerSecond: number, seconds: number, send: (i: number) => Promise<unknown>) => {
  // A failed warm-up request is dropped, as the open loop counts and goes on past one.
  await loopingWorkers(realNodeWarmUp, latencyWarmUpConcurrency, (i) => send(i).catch(ignoreFailure))
  await openLoop(ratePerSecond, Math.min(seconds, 2), send)
  let result: { readonly latencies: ArrayLike<number>; readonly failed: number } = { latencies: [], failed: 0 }
  const sample = await measure(Math.round(ratePerSecond * seconds), async () => {
    result = await openLoop(ratePerSecond, seconds, send)
  })
  const latencies = Array.from(result.latencies)
  return {
    ...sample,
    failedRequests: result.failed,
    latencyMillis: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), p999: quantile(latencies, 0.999) }
  }
}

/** How many requests each client-only allocation batch runs: small enough to fit the young generation. */
const allocationBatch = 500

/** A client-only row: warm-up, the timed run, then the allocation batch. */
const clientOnlySample = async (job: Extract<Job, { kind: "clientOnly" }>): Promise<Sample> => {
  const stub = makeStubClient()
  const { variant, concurrency, warmUpRequests, requests } = job
  const sampleWith = async (run: (count: number) => Promise<unknown>) => {
    await run(warmUpRequests)
    const sample = await measure(requests, () => run(requests))
    const allocated = await allocatedBytesPerRequest(allocationBatch, () => run(allocationBatch))
    return allocated === undefined ? sample : { ...sample, allocatedBytesPerRequest: allocated }
  }
  if (variant.startsWith("stub-")) {
    const raw = rawRequests(stub.client)
    const stubAlone = {
      "stub-read": raw.read,
      "stub-wide": (i: number) => stub.client.execute(`SELECT * FROM ${wideTable} WHERE p = ?`, [i], { prepare: true }),
      "stub-write": raw.write,
      "stub-failed-read": (i: number) =>
        stub.client
          .execute(`SELECT v FROM ${keyspace}.${timingOutTable} WHERE k = ?`, [i % readKeys], { prepare: true })
          .catch(ignoreFailure)
    }[variant as "stub-read" | "stub-wide" | "stub-write" | "stub-failed-read"]
    return sampleWith((count) => loopingWorkers(count, concurrency, stubAlone))
  }
  if (variant === "effect-floor" || variant === "effect-floor+tracer") {
    const read = rawRequests(stub.client).read
    const span = variant === "effect-floor" ? undefined : await spanOfLibraryRead(stub.client)
    return sampleWith((count) => effectFloor(count, concurrency, read, span))
  }
  const request: Request =
    variant === "findAll-10-columns"
      ? (i) => findWideRows(i)
      : variant === "write"
        ? libraryRequests.write
        : variant === "failed-read"
          ? failedRead
          : libraryRequests.read
  const tracer = variant.includes("tracer") ? inMemoryTracer() : undefined
  const traced = (effect: Effect.Effect<void, unknown, Session.Session>) =>
    tracer === undefined ? effect : Effect.withTracer(effect, tracer)
  const layer = Layer.mergeAll(
    variant.includes("metrics") ? Metrics.layer() : Layer.empty,
    variant === "read+log-bridge" ? Layer.empty : Logging.layer("off")
  )
  const throttle = variant === "read+throttle" ? { maxInFlight: 1024, maxQueued: 1024 } : undefined
  return withSession(Session.makeFromClient(stub.client, throttle === undefined ? {} : { throttle }), layer, (run) =>
    sampleWith((count) => run(traced(loopingFibers(count, concurrency, request))))
  )
}

/**
 * Heap held per request while `count` requests wait on the stub: the heap after a forced GC with every request in
 * flight, less the heap after a forced GC before they started, divided by the count. Run twice; the first warms up.
 */
const inFlightSample = async (job: Extract<Job, { kind: "inFlight" }>): Promise<Sample> => {
  const stub = makeStubClient()
  const keys = Array.from({ length: job.count }, (_, i) => i)
  const heldPerRequest = async (start: () => Promise<unknown>) => {
    stub.hold()
    forceGc()
    const before = V8.getHeapStatistics().used_heap_size
    const done = start()
    while (stub.held() < job.count) await new Promise((resolve) => setImmediate(resolve))
    forceGc()
    const held = V8.getHeapStatistics().used_heap_size - before
    stub.release()
    await done
    return held / job.count
  }
  const sampleWith = async (start: () => Promise<unknown>): Promise<Sample> => {
    await heldPerRequest(start)
    let heapBytesPerRequest = 0
    const sample = await measure(job.count, async () => {
      heapBytesPerRequest = await heldPerRequest(start)
    })
    return { ...sample, heapBytesPerRequest }
  }
  if (job.side === "raw") {
    const read = rawRequests(stub.client).read
    return sampleWith(() => Promise.all(keys.map(read)))
  }
  if (job.side === "effectFloor") {
    const read = rawRequests(stub.client).read
    return sampleWith(() =>
      Effect.runPromise(
        Effect.forEach(keys, (i) => Effect.promise(() => read(i)), { concurrency: "unbounded", discard: true })
      )
    )
  }
  return withSession(Session.makeFromClient(stub.client), Logging.layer("off"), (run) =>
    sampleWith(() => run(Effect.forEach(keys, libraryRequests.read, { concurrency: "unbounded", discard: true })))
  )
}

/**
 * Heap held per input of an insert job waiting to run: `count` of them built and held, the heap after a forced GC less
 * the heap before, divided by the count. A job holds every input until it ends, and the collector copies what it
 * holds. Run twice; the first warms up.
 */
const heldInputsSample = async (job: Extract<Job, { kind: "heldInputs" }>): Promise<Sample> => {
  // Without a forced GC, the heap would still hold the garbage of building the inputs: a figure, but a wrong one.
  if ((globalThis as { gc?: () => void }).gc === undefined) throw new Error("heldInputs needs node --expose-gc")
  const build = insertInputs[job.side]
  const heldPerInput = () => {
    forceGc()
    const before = V8.getHeapStatistics().used_heap_size
    const inputs = Array.from({ length: job.count }, (_, k) => build(k))
    forceGc()
    const held = V8.getHeapStatistics().used_heap_size - before
    // Read after measuring, so that the inputs are alive (not collected) when the heap is measured.
    return inputs.length === job.count ? held / job.count : Number.NaN
  }
  heldPerInput()
  let heapBytesPerRequest = 0
  const sample = await measure(job.count, async () => {
    heapBytesPerRequest = heldPerInput()
  })
  return { ...sample, heapBytesPerRequest }
}

const realNodeSample = async (
  job: Exclude<Job, { kind: "clientOnly" | "inFlight" | "heldInputs" }>
): Promise<Sample> => {
  const warmedAndMeasured = async (count: number, run: (count: number) => Promise<unknown>) => {
    await run(Math.max(realNodeWarmUp, Math.round(count / 2)))
    return measure(count, () => run(count))
  }
  switch (job.kind) {
    case "requests": {
      if (job.side === "raw" || job.side === "effectFloor") {
        const client = await rawClient(job.contactPoints)
        const request = rawRequests(client)[job.operation]
        const sample = await warmedAndMeasured(job.requests, (count) =>
          (job.side === "raw" ? loopingWorkers : effectFloor)(count, job.concurrency, request)
        )
        await client.shutdown()
        return sample
      }
      const drive = job.side === "fibers" ? loopingFibers : forEachItem
      return withSession(
        Session.make({ contactPoints: [...job.contactPoints], localDataCenter }),
        observabilityLayers[job.observability],
        (run) =>
          warmedAndMeasured(job.requests, (count) => run(drive(count, job.concurrency, libraryRequests[job.operation])))
      )
    }
    case "insertJob": {
      const rows = (count: number) => Array.from({ length: count }, (_, k) => k)
      if (job.side === "raw") {
        const client = await rawClient(job.contactPoints)
        const sample = await warmedAndMeasured(job.rows, (count) =>
          Cassandra.concurrent.executeConcurrent(client, insertText, rows(count).map(insertInputs.raw), {
            concurrencyLevel: insertConcurrency,
            collectResults: job.outcomes === "kept"
          })
        )
        await client.shutdown()
        return sample
      }
      if (job.side === "effectFloor") {
        const client = await rawClient(job.contactPoints)
        const sample = await warmedAndMeasured(job.rows, (count) => {
          const inputs = rows(count).map(insertInputs.raw)
          const send = (i: number) => Effect.promise(() => client.execute(insertText, inputs[i], insertOptions))
          if (job.outcomes === "counted") return Effect.runPromise(loopingFibers(count, insertConcurrency, send))
          // Kept as `collectResults` keeps them: every row's result set at its input's position.
          const kept: Array<Cassandra.types.ResultSet> = []
          const keep = (i: number) =>
            Effect.map(send(i), (result) => {
              kept[i] = result
            })
          return Effect.runPromise(loopingFibers(count, insertConcurrency, keep))
        })
        await client.shutdown()
        return sample
      }
      return withSession(Session.make({ contactPoints: [...job.contactPoints], localDataCenter }), Layer.empty, (run) =>
        warmedAndMeasured(job.rows, async (count) => {
          const statements = rows(count).map(insertInputs.library)
          const { failures } = await run(
            job.outcomes === "counted"
              ? BatchJob.run(statements, { concurrency: insertConcurrency, summary: true })
              : BatchJob.run(statements, { concurrency: insertConcurrency })
          )
          if (failures.length > 0) throw failures[0]?.error
        })
      )
    }
    case "latency": {
      if (job.side === "raw" || job.side === "effectFloor") {
        const client = await rawClient(job.contactPoints)
        const read = rawRequests(client).read
        const sample = await latencySample(
          job.ratePerSecond,
          job.seconds,
          job.side === "raw" ? read : (i) => Effect.runPromise(Effect.promise(() => read(i)))
        )
        await client.shutdown()
        return sample
      }
      return withSession(Session.make({ contactPoints: [...job.contactPoints], localDataCenter }), Layer.empty, (run) =>
        latencySample(job.ratePerSecond, job.seconds, (i) => run(libraryRequests.read(i)))
      )
    }
  }
}

const job = JSON.parse(process.argv[2] ?? "null") as Job | null
if (job === null) {
  process.stderr.write("usage: child.ts '<Job as JSON>' (bench/jobs.ts)\n")
  process.exit(2)
}
const sample =
  job.kind === "clientOnly"
    ? await clientOnlySample(job)
    : job.kind === "inFlight"
      ? await inFlightSample(job)
      : job.kind === "heldInputs"
        ? await heldInputsSample(job)
        : await realNodeSample(job)
// Exits once the sample is written rather than when the event loop empties: after overload (a fixed-load run past
// the client's peak) a driver connect attempt to the swamped node can outlive the session's close until its connect
// timeout, as no driver call cancels it, and would hold up the next round.
process.stdout.write(`${JSON.stringify(sample)}\n`, () => process.exit(0))
