import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"
import * as SchemaIssue from "effect/SchemaIssue"
import * as CqlSchema from "effect-cassandra/CqlSchema"
import * as Query from "effect-cassandra/Query"
import { Session } from "effect-cassandra/Session"
import { makeMetricsHub } from "../../src/internal/metricsRecorder.ts"

/** A session over `client` answering with the given pages in order. */
const pagedSession = (
  client: Cassandra.Client,
  pages: ReadonlyArray<{ readonly rows: Array<Query.Row>; readonly pageState?: string }>
): Session => {
  let requested = 0
  return {
    client,
    keyspace: undefined,
    execute: () =>
      Effect.sync(() => {
        const page = pages[requested++] ?? { rows: [] }
        return { rows: page.rows, pageState: page.pageState ?? null } as never
      }),
    batch: () => Effect.die("no batch"),
    inFlight: Effect.succeed(0)
  }
}

// Even keys wait before they decode (an asynchronous transformation), odd ones decode at once: a Schema that is
// synchronous for some rows and not for others. Every decoding is counted, to see each row decoded exactly once.
const decodings: Array<number> = []
const Mixed = Schema.Struct({
  k: Schema.Number.pipe(
    Schema.decodeTo(Schema.Number, {
      decode: SchemaGetter.transformEffect((k: number) => {
        decodings.push(k)
        if (k % 2 === 1) return Effect.succeed(k * 10)
        const later = Effect.as(Effect.sleep("1 millis"), k * 10)
        // An even key from 100 up is refused, after waiting.
        return k < 100
          ? later
          : Effect.andThen(later, Effect.fail(new SchemaIssue.InvalidValue({ message: "too big" })))
      }),
      encode: SchemaGetter.transform((k: number) => k / 10)
    })
  )
})
const execute = () => Query.cql`SELECT k FROM t`

/** Runs `findAll` over the pages with the metrics layer attached, returning its outcome and the decode counters. */
const findAllCounted = (pages: ReadonlyArray<{ readonly rows: Array<Query.Row>; readonly pageState?: string }>) =>
  Effect.gen(function* () {
    decodings.length = 0
    const hub = yield* makeMetricsHub("1 hour")
    const client = new Cassandra.Client({ contactPoints: ["192.0.2.1"], localDataCenter: "dc1" })
    yield* hub.attach(client)
    const found = yield* Effect.result(
      Effect.provideService(CqlSchema.findAll({ Result: Mixed, execute })(), Session, pagedSession(client, pages))
    )
    const summary = yield* hub.summary
    return { found, decoded: summary.rowsDecoded, failures: summary.decodeFailures }
  }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map()))

describe("CqlSchema.findAll decoding, synchronous for some rows and not others", () => {
  it.live("decodes each row once, in order over every page, and counts every decoded row", () =>
    Effect.gen(function* () {
      const { found, decoded, failures } = yield* findAllCounted([
        { rows: [{ k: 1 }, { k: 2 }, { k: 3 }, { k: 4 }], pageState: "p1" },
        { rows: [], pageState: "p2" },
        { rows: [{ k: 5 }, { k: 6 }] }
      ])
      assert.deepStrictEqual(found._tag === "Success" ? found.success : found.failure, [
        { k: 10 },
        { k: 20 },
        { k: 30 },
        { k: 40 },
        { k: 50 },
        { k: 60 }
      ])
      assert.deepStrictEqual(decodings, [1, 2, 3, 4, 5, 6])
      assert.strictEqual(decoded, 6)
      assert.strictEqual(failures, 0)
    })
  )

  it.live("fails at a row mid-page with its index over every page, never its value, and counts the rows before", () =>
    Effect.gen(function* () {
      const { found, decoded, failures } = yield* findAllCounted([
        { rows: [{ k: 1 }, { k: 2 }], pageState: "p1" },
        { rows: [{ k: 3 }, { k: 4 }, { k: "secret-value" }, { k: 5 }] }
      ])
      assert.strictEqual(found._tag, "Failure")
      const error = found._tag === "Failure" ? (found.failure as CqlSchema.CqlSchemaError) : undefined
      assert.strictEqual(error?._tag, "CqlSchemaError")
      assert.strictEqual(error?.rowIndex, 4)
      assert.strictEqual(error?.column, "k")
      assert.notInclude(error?.message ?? "", "secret-value")
      // The row after the failing one is never decoded.
      assert.deepStrictEqual(decodings, [1, 2, 3, 4])
      assert.strictEqual(decoded, 4)
      assert.strictEqual(failures, 1)
    })
  )

  it.live("fails at a row whose asynchronous decoding fails, with its index, counting the rows before", () =>
    Effect.gen(function* () {
      const { found, decoded, failures } = yield* findAllCounted([
        { rows: [{ k: 1 }], pageState: "p1" },
        { rows: [{ k: 3 }, { k: 2 }, { k: 200 }, { k: 5 }] }
      ])
      const error = found._tag === "Failure" ? (found.failure as CqlSchema.CqlSchemaError) : undefined
      assert.strictEqual(error?._tag, "CqlSchemaError")
      assert.strictEqual(error?.rowIndex, 3)
      assert.notInclude(error?.message ?? "", "200")
      assert.deepStrictEqual(decodings, [1, 3, 2, 200])
      assert.strictEqual(decoded, 3)
      assert.strictEqual(failures, 1)
    })
  )
})
