/**
 * A statement run on a session of this library takes the session's own request path; the same statement run on a
 * copy of the session with another `execute` takes that `execute`. Both must give the same rows, results, pages,
 * conditions and spans against the real node.
 */
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Metrics from "effect-cassandra/Metrics"
import * as Query from "effect-cassandra/Query"
import * as Session from "effect-cassandra/Session"
import { recordingTracer } from "../support/programs.ts"
import { createKvAndSeries, sessionWithKeyspace, testOptions } from "../support/session.ts"

const { cql } = Query

const setup = sessionWithKeyspace("query_send")

/** The session in context, and a copy whose `execute` only passes each request on. */
const bothPaths = Session.Session.useSync((session) => ({
  own: session,
  decorated: { ...session, execute: (request: Session.Request) => session.execute(request) } as Session.Session
}))

/** Runs `program` on `session` under a recording tracer, in a `caller` span; gives its value and the spans. */
const tracedOn = <A, E>(session: Session.Session, program: Effect.Effect<A, E, Session.Session>) => {
  const { spans, tracer } = recordingTracer()
  return program.pipe(
    Effect.withSpan("caller"),
    Effect.provideService(Session.Session, session),
    Effect.provideService(Tracer.Tracer, tracer),
    Effect.map((value) => {
      const caller = spans.find((span) => span.name === "caller")
      if (caller === undefined) throw new Error("no caller span")
      const requests = spans.filter((span) => span !== caller)
      return {
        value,
        spans: requests.map((span) => ({
          name: span.name,
          kind: span.kind,
          ended: span.status._tag === "Ended",
          exit: span.status._tag === "Ended" ? span.status.exit._tag : undefined,
          parent: Option.map(span.parent, (parent) => parent.spanId === caller.spanId),
          attributes: Object.fromEntries(span.attributes)
        }))
      }
    })
  )
}

/** The same program on both paths: what each gave, and the spans each made. */
const onBothPaths = <A, E>(program: Effect.Effect<A, E, Session.Session>) =>
  Effect.gen(function* () {
    const { own, decorated } = yield* bothPaths
    return [yield* tracedOn(own, program), yield* tracedOn(decorated, program)] as const
  })

/**
 * What the metrics layer recorded of a workload run on a fresh session of its own, through the session's own path or
 * through a decorator's `execute`: each counter and the number of observations of each histogram, by series.
 */
const recordedBy = (decorate: boolean) =>
  Effect.gen(function* () {
    const session = yield* Session.Session
    const path: Session.Session = decorate
      ? { ...session, execute: (request: Session.Request) => session.execute(request) }
      : session
    yield* Effect.gen(function* () {
      yield* cql`SELECT v FROM kv WHERE k = ${1}`
      yield* cql`SELECT v FROM kv WHERE k = ${1}`.withOptions({ consistency: "ONE" }).result
      yield* Effect.flip(cql`SELECT nope FROM kv WHERE k = ${1}`)
      yield* Stream.runDrain(cql`SELECT c FROM series WHERE p = ${1}`.withOptions({ pageSize: 3 }).stream)
    }).pipe(Effect.provideService(Session.Session, path))
    const snapshots = yield* Metric.snapshot
    return snapshots
      .flatMap((snapshot) =>
        snapshot.type === "Counter"
          ? [{ id: snapshot.id, attributes: snapshot.attributes, count: Number(snapshot.state.count) }]
          : snapshot.type === "Histogram"
            ? [{ id: snapshot.id, attributes: snapshot.attributes, count: snapshot.state.count }]
            : []
      )
      .filter((series) => series.count > 0)
      .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))
  }).pipe(
    Effect.provide(
      CassandraLayer.layer(testOptions({ keyspace: setup.keyspace })).pipe(
        Layer.provideMerge(Metrics.layer({ pollInterval: "1 hour" }))
      )
    ),
    Effect.provideService(Metric.MetricRegistry, new Map())
  )

layer(Layer.effectDiscard(createKvAndSeries).pipe(Layer.provideMerge(setup.layer)), {
  timeout: 120_000,
  excludeTestServices: true
})("a statement on the session's own path and through a decorator's `execute`", (it) => {
  it.effect("gives the same rows and the same single span, a child of the caller", () =>
    Effect.gen(function* () {
      yield* cql`INSERT INTO kv (k, v) VALUES (${1}, ${"one"})`
      const [own, decorated] = yield* onBothPaths(cql`SELECT v FROM kv WHERE k = ${1}`)
      assert.deepStrictEqual(
        own.value.map((row) => row.v),
        ["one"]
      )
      assert.deepStrictEqual(own, decorated)
      assert.lengthOf(own.spans, 1)
      assert.deepStrictEqual(own.spans[0]?.parent, Option.some(true))
      assert.strictEqual(own.spans[0]?.exit, "Success")
    })
  )

  it.effect("gives the same result (rows, info, page state) and span for `.result` with options", () =>
    Effect.gen(function* () {
      const statement = cql`SELECT c FROM series WHERE p = ${1}`.withOptions({ pageSize: 4, consistency: "ONE" })
      const [own, decorated] = yield* onBothPaths(statement.result)
      assert.deepStrictEqual(
        own.value.rows.map((row) => row.c),
        [0, 1, 2, 3]
      )
      assert.isTrue(Option.isSome(own.value.pageState))
      assert.deepStrictEqual(own.value.rows, decorated.value.rows)
      assert.deepStrictEqual(own.value.pageState, decorated.value.pageState)
      assert.deepStrictEqual(own.value.info, decorated.value.info)
      assert.deepStrictEqual(own.spans, decorated.spans)
      assert.strictEqual(own.spans[0]?.attributes["cassandra.consistency.level"], "one")
    })
  )

  it.effect("pages alike: `.page` from a page state, and `.stream` with one span per page", () =>
    Effect.gen(function* () {
      const statement = cql`SELECT c FROM series WHERE p = ${1}`.withOptions({ pageSize: 3 })
      const paged = Effect.gen(function* () {
        const first = yield* statement.page()
        const second = yield* statement.page(Option.getOrThrow(first.pageState))
        const all = yield* Stream.runCollect(statement.stream)
        return { first: first.rows, second: second.rows, all: Array.from(all) }
      })
      const [own, decorated] = yield* onBothPaths(paged)
      assert.deepStrictEqual(
        own.value.second.map((row) => row.c),
        [3, 4, 5]
      )
      assert.lengthOf(own.value.all, 10)
      assert.deepStrictEqual(own, decorated)
      // Two pages, then four for the stream (the last one empty-ended by the server or not, alike on both paths).
      assert.isTrue(own.spans.every((span) => span.name === "SELECT series" && span.exit === "Success"))
    })
  )

  it.effect("tells alike whether a conditional statement was applied, with the current row when it was not", () =>
    Effect.gen(function* () {
      // Each run on its own key, never written before: no tombstone of a write outside Paxos can shadow it.
      let key = 100
      const [own, decorated] = yield* onBothPaths(
        Effect.suspend(() => {
          const k = key++
          return Effect.all([
            cql`INSERT INTO kv (k, v) VALUES (${k}, ${"seven"}) IF NOT EXISTS`.conditional,
            cql`INSERT INTO kv (k, v) VALUES (${k}, ${"other"}) IF NOT EXISTS`.conditional.pipe(
              Effect.map((conditional) =>
                conditional._tag === "NotApplied" ? conditional.current.map((row) => row.v) : conditional
              )
            )
          ])
        })
      )
      assert.deepStrictEqual(own.value, [{ _tag: "Applied" }, ["seven"]])
      assert.deepStrictEqual(own.value, decorated.value)
      assert.deepStrictEqual(own.spans, decorated.spans)
    })
  )

  it.effect("fails alike, with the server's error and a failed span, for a statement the server refuses", () =>
    Effect.gen(function* () {
      const [own, decorated] = yield* onBothPaths(
        Effect.flip(cql`SELECT nope FROM kv WHERE k = ${1}`).pipe(Effect.map((error) => error.reason._tag))
      )
      assert.strictEqual(own.value, "Invalid")
      assert.deepStrictEqual(own, decorated)
      assert.strictEqual(own.spans[0]?.exit, "Failure")
    })
  )

  it.effect("makes no span where tracing is turned off, on either path", () =>
    Effect.gen(function* () {
      const [own, decorated] = yield* onBothPaths(
        Effect.withTracerEnabled(cql`SELECT v FROM kv WHERE k = ${1}`.result, false)
      )
      assert.deepStrictEqual(own.spans, [])
      assert.deepStrictEqual(decorated.spans, [])
    })
  )

  it.effect("records the same metric series and counts on both paths", () =>
    Effect.gen(function* () {
      const own = yield* recordedBy(false)
      const decorated = yield* recordedBy(true)
      assert.isTrue(own.some((series) => series.id === "cassandra_requests_total"))
      assert.isTrue(own.some((series) => series.id === "cassandra_errors_total"))
      assert.deepStrictEqual(own, decorated)
    })
  )

  it.effect("runs a statement of a session's template on its session under the caller's span", () =>
    Effect.gen(function* () {
      const { own } = yield* bothPaths
      const template = yield* Query.template
      yield* cql`INSERT INTO kv (k, v) VALUES (${2}, ${"two"})`
      const traced = yield* tracedOn(own, template`SELECT v FROM kv WHERE k = ${2}`)
      assert.deepStrictEqual(
        traced.value.map((row) => row.v),
        ["two"]
      )
      assert.lengthOf(traced.spans, 1)
      assert.deepStrictEqual(traced.spans[0]?.parent, Option.some(true))
    })
  )
})
