import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Query from "effect-cassandra/Query"
import { testConnection } from "../support/cassandra.ts"
import { recordingTracer } from "../support/programs.ts"
import { createKvAndSeries, sessionWithKeyspace, testOptions } from "../support/session.ts"

const { cql } = Query

const setup = sessionWithKeyspace("observed_traces", { spanAttributes: { "app.tenant": "acme" } })

/** Runs a program inside a `caller` span with the recording tracer, and returns the request spans and the caller. */
const traced = <A, E, R>(program: Effect.Effect<A, E, R>) => {
  const { spans, tracer } = recordingTracer()
  return program.pipe(
    Effect.exit,
    Effect.withSpan("caller"),
    Effect.provideService(Tracer.Tracer, tracer),
    Effect.map((exit) => {
      const caller = spans.find((span) => span.name === "caller")
      if (caller === undefined) throw new Error("no caller span")
      return { exit, caller, requests: spans.filter((span) => span !== caller) }
    })
  )
}

const parentId = (span: Tracer.Span) => Option.map(span.parent, (parent) => parent.spanId)

const boundValue = "bound-value-never-in-a-span"

layer(Layer.effectDiscard(createKvAndSeries).pipe(Layer.provideMerge(setup.layer)), {
  timeout: 120_000,
  excludeTestServices: true
})("traces against a real Cassandra", (it) => {
  it.effect("gives each request one client span named and attributed after the OpenTelemetry conventions", () =>
    Effect.gen(function* () {
      yield* cql`INSERT INTO kv (k, v) VALUES (${1}, ${boundValue})`
      const { exit, caller, requests } = yield* traced(cql`SELECT v FROM kv WHERE k = ${1}`)
      assert.isTrue(Exit.isSuccess(exit))
      assert.lengthOf(requests, 1)
      const [span] = requests
      if (span === undefined) return
      assert.strictEqual(span.name, "SELECT kv")
      assert.strictEqual(span.kind, "client")
      assert.deepStrictEqual(parentId(span), Option.some(caller.spanId))
      assert.strictEqual(span.traceId, caller.traceId)
      const attributes = Object.fromEntries(span.attributes)
      const coordinatorId = attributes["cassandra.coordinator.id"]
      assert.match(String(coordinatorId), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
      assert.deepStrictEqual(attributes, {
        "db.system.name": "cassandra",
        "db.namespace": setup.keyspace,
        "db.collection.name": "kv",
        "db.operation.name": "SELECT",
        "db.query.text": "SELECT v FROM kv WHERE k = ?",
        "cassandra.consistency.level": "local_quorum",
        "cassandra.query.idempotent": true,
        "server.address": testConnection().contactPoints[0]?.split(":")[0],
        "server.port": 9042,
        "cassandra.coordinator.dc": "datacenter1",
        "cassandra.coordinator.id": coordinatorId,
        "db.response.returned_rows": 1,
        "cassandra.speculative_execution.count": 0,
        "app.tenant": "acme"
      })
      assert.notInclude(JSON.stringify([...span.attributes]), boundValue)
    })
  )

  it.effect("marks a failed request with its error type and the server's error code", () =>
    Effect.gen(function* () {
      const { exit, caller, requests } = yield* traced(cql`SELEC v FROM kv WHERE k = ${boundValue}`)
      assert.isTrue(Exit.isFailure(exit))
      assert.lengthOf(requests, 1)
      const [span] = requests
      if (span === undefined) return
      assert.strictEqual(span.name, `SELEC ${setup.keyspace}`)
      assert.deepStrictEqual(parentId(span), Option.some(caller.spanId))
      assert.strictEqual(span.attributes.get("error.type"), "Syntax")
      assert.strictEqual(span.attributes.get("db.response.status_code"), "0x2000")
      assert.isTrue(span.status._tag === "Ended" && Exit.isFailure(span.status.exit))
      assert.notInclude(JSON.stringify([...span.attributes]), boundValue)
    })
  )

  it.effect("gives a batch one span with its size, and each page of a stream its own span", () =>
    Effect.gen(function* () {
      const batch = yield* traced(
        Query.batch([
          cql`INSERT INTO kv (k, v) VALUES (${2}, ${boundValue})`,
          cql`INSERT INTO kv (k, v) VALUES (${3}, ${boundValue})`
        ])
      )
      assert.lengthOf(batch.requests, 1)
      const [batchSpan] = batch.requests
      assert.strictEqual(batchSpan?.name, "BATCH INSERT kv")
      assert.strictEqual(batchSpan?.attributes.get("db.operation.name"), "BATCH INSERT")
      assert.strictEqual(batchSpan?.attributes.get("db.operation.batch.size"), 2)
      assert.strictEqual(batchSpan?.attributes.get("cassandra.batch.type"), "logged")
      assert.strictEqual(batchSpan?.attributes.get("db.query.text"), "INSERT INTO kv (k, v) VALUES (?, ?)")
      assert.notInclude(JSON.stringify([...(batchSpan?.attributes ?? [])]), boundValue)

      const pages = yield* traced(
        Stream.runCount(cql`SELECT c FROM series WHERE p = ${1}`.withOptions({ pageSize: 3 }).stream)
      )
      assert.deepStrictEqual(pages.exit, Exit.succeed(10))
      assert.deepStrictEqual(
        pages.requests.map((span) => [span.name, span.attributes.get("cassandra.page.size")]),
        Array.from({ length: 4 }, () => ["SELECT series", 3])
      )
      assert.deepStrictEqual(
        pages.requests.map((span) => span.attributes.get("db.response.returned_rows")),
        [3, 3, 3, 1]
      )
      for (const span of pages.requests) assert.deepStrictEqual(parentId(span), Option.some(pages.caller.spanId))
    })
  )

  it.effect("leaves the query text out when omitQueryTextInSpans is set", () => {
    return Effect.gen(function* () {
      const { requests } = yield* traced(cql`SELECT release_version FROM system.local`)
      assert.lengthOf(requests, 1)
      assert.strictEqual(requests[0]?.name, "SELECT local")
      assert.strictEqual(requests[0]?.attributes.get("db.namespace"), "system")
      assert.isFalse(requests[0]?.attributes.has("db.query.text"))
    }).pipe(Effect.provide(CassandraLayer.layer(testOptions({ omitQueryTextInSpans: true }))))
  })
})
