import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import { assert, describe, it } from "@effect/vitest"
import { ZipkinExporter } from "@opentelemetry/exporter-zipkin"
import { resourceFromAttributes } from "@opentelemetry/resources"
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Query from "effect-cassandra/Query"
import { testConnection } from "../support/cassandra.ts"
import { pollUntil } from "../support/serverProcess.ts"
import { sessionWithKeyspace } from "../support/session.ts"
import * as Zipkin from "../support/zipkin.ts"

const { cql } = Query

// Bound values that look like what must never leave the application: they are sent to Cassandra, never to Zipkin.
const secretKey = "acct-7f3e9c1d-private"
const secretValue = "sk_live_Q8vX2mZp4RtL9wKd"

const serviceName = "effect-cassandra-zipkin-test"

// Zipkin takes whole microseconds, but the exporter sends a span's start (in nanoseconds from Effect's clock) as a
// fraction of one, which Zipkin refuses (400, "Expected a long"), losing the whole batch.
const wholeMicroseconds = (exporter: SpanExporter): SpanExporter => ({
  export: (spans, done) =>
    exporter.export(
      spans.map((span) =>
        Object.create(span, {
          startTime: { value: [span.startTime[0], span.startTime[1] - (span.startTime[1] % 1000)] }
        })
      ),
      done
    ),
  shutdown: () => exporter.shutdown()
})

describe("Session traces in a real Zipkin", () => {
  it.live(
    "exports a request's client span through @effect/opentelemetry, under its parent, with the Cassandra attributes and no bound value",
    () =>
      Effect.gen(function* () {
        const zipkin = yield* Zipkin.start
        const setup = sessionWithKeyspace("zipkin_traces")
        // The wiring the README shows. It is provided to the traced requests only: closing it flushes their spans.
        const TracingLive = OtelTracer.layer.pipe(
          Layer.provide(
            Layer.effect(
              OtelTracer.OtelTracerProvider,
              Effect.acquireRelease(
                Effect.sync(
                  () =>
                    new BasicTracerProvider({
                      resource: resourceFromAttributes({ "service.name": serviceName }),
                      spanProcessors: [
                        new BatchSpanProcessor(wholeMicroseconds(new ZipkinExporter({ url: zipkin.spansEndpoint })))
                      ]
                    })
                ),
                (provider) => Effect.promise(() => provider.shutdown())
              )
            )
          )
        )
        const ids = yield* Effect.gen(function* () {
          yield* cql`CREATE TABLE accounts (id text PRIMARY KEY, api_key text)`
          return yield* Effect.gen(function* () {
            const parent = yield* Effect.currentSpan
            yield* cql`INSERT INTO accounts (id, api_key) VALUES (${secretKey}, ${secretValue})`
            const rows = yield* cql`SELECT api_key FROM accounts WHERE id = ${secretKey}`
            assert.lengthOf(rows, 1)
            return { traceId: parent.traceId, parentId: parent.spanId }
          }).pipe(Effect.withSpan("checkout"), Effect.provide(TracingLive))
        }).pipe(Effect.provide(setup.layer))

        const stored = yield* pollUntil(
          zipkin.process,
          "the trace's three spans stored",
          // Zipkin answers 404 until it has stored a span of the trace.
          zipkin.trace(ids.traceId).pipe(Effect.orElseSucceed(() => ({ spans: [], json: "" }))),
          (trace) => trace.spans.length >= 3,
          "30 seconds"
        )

        assert.lengthOf(stored.spans, 3, stored.json)
        const parent = stored.spans.find((span) => span.id === ids.parentId)
        assert.strictEqual(parent?.name, "checkout")
        const select = stored.spans.find((span) => span.name === "select accounts")
        if (select === undefined) return assert.fail(`no "select accounts" span in ${stored.json}`)
        assert.strictEqual(select.kind, "CLIENT")
        assert.strictEqual(select.parentId, ids.parentId)
        assert.strictEqual(select.localEndpoint?.serviceName, serviceName)
        const host = testConnection().contactPoints[0]?.split(":")[0]
        assert.deepInclude(select.tags, {
          "db.system.name": "cassandra",
          "db.namespace": setup.keyspace,
          "db.collection.name": "accounts",
          "db.operation.name": "SELECT",
          "db.query.text": "SELECT api_key FROM accounts WHERE id = ?",
          "db.response.returned_rows": "1",
          "cassandra.consistency.level": "local_quorum",
          "server.address": host,
          "server.port": "9042",
          "cassandra.coordinator.dc": testConnection().localDataCenter
        })
        const insert = stored.spans.find((span) => span.name === "insert accounts")
        assert.strictEqual(insert?.parentId, ids.parentId)
        assert.strictEqual(insert?.tags?.["db.query.text"], "INSERT INTO accounts (id, api_key) VALUES (?, ?)")

        assert.notInclude(stored.json, secretKey)
        assert.notInclude(stored.json, secretValue)
      }),
    300_000
  )
})
