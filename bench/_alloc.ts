import { writeFileSync } from "node:fs"
import { Session as Inspector } from "node:inspector/promises"
import { Context, Effect } from "effect"
import { Logging, Query, Session } from "effect-cassandra"
import { makeStubClient } from "./stubClient.ts"

const variant = process.argv[2] ?? "read"
const stub = makeStubClient()
const kv = Query.identifier("bench", "kv")
const read = (i: number) => Query.cql`SELECT v FROM ${kv} WHERE k = ${i % 10000}`
const rawRead = (i: number) => stub.client.execute("SELECT v FROM bench.kv WHERE k = ?", [i % 10000], { prepare: true })
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
    return Effect.forEach(Array.from({ length: concurrency }), () => worker, { concurrency, discard: true })
  })
const inspector = new Inspector()
inspector.connect()
const profiled = async (run: (n: number) => Promise<unknown>) => {
  await run(30000)
  await inspector.post("HeapProfiler.startSampling", {
    samplingInterval: 32,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true
  })
  await run(20000)
  const { profile } = await inspector.post("HeapProfiler.stopSampling")
  writeFileSync(`/tmp/micro/hp/${variant}.json`, JSON.stringify(profile))
}
if (variant === "floor") {
  await profiled((n) => Effect.runPromise(loopingFibers(n, 32, (i) => Effect.promise(() => rawRead(i)))))
} else {
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const session = yield* Session.makeFromClient(stub.client, {})
        const ctx = Context.add(yield* Effect.context<never>(), Session.Session, session)
        yield* Effect.promise(() => profiled((n) => Effect.runPromiseWith(ctx)(loopingFibers(n, 32, read))))
      }).pipe(Effect.provide(Logging.layer("off")))
    )
  )
}
console.log("done", variant)
