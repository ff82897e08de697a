import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import { Effect } from "effect"
import { Query, Session } from "effect-cassandra"
import { clientOnlyBaseline, clientOnlyVariants } from "../../bench/jobs.ts"
import { makeStubClient, timingOutTable } from "../../bench/stubClient.ts"

describe("client-only benchmark", () => {
  it("measures every library row over a stub row listed before it, with the same query shape", () => {
    for (const [index, variant] of clientOnlyVariants.entries()) {
      const baseline = clientOnlyBaseline(variant)
      if (variant.startsWith("stub-")) {
        assert.isUndefined(baseline, variant)
        continue
      }
      assert.isDefined(baseline, variant)
      assert.isTrue(baseline.startsWith("stub-"), `${variant} over ${baseline}`)
      assert.isBelow(clientOnlyVariants.indexOf(baseline), index, variant)
    }
    assert.strictEqual(clientOnlyBaseline("read"), "stub-read")
    assert.strictEqual(clientOnlyBaseline("read+metrics+tracer"), "stub-read")
    assert.strictEqual(clientOnlyBaseline("effect-floor+tracer"), "stub-read")
    assert.strictEqual(clientOnlyBaseline("failed-read"), "stub-failed-read")
    assert.strictEqual(clientOnlyBaseline("findAll-10-columns"), "stub-wide")
    assert.strictEqual(clientOnlyBaseline("write"), "stub-write")
  })

  it("fails each read of the timing-out table with a fresh server read timeout, as the driver builds one", async () => {
    const { client } = makeStubClient()
    const query = `SELECT v FROM bench.${timingOutTable} WHERE k = ?`
    const failure = (): Promise<unknown> =>
      client.execute(query, [1], { prepare: true }).then(
        () => assert.fail("answered"),
        (error: unknown) => error
      )
    const [first, second] = await Promise.all([failure(), failure()])
    assert.instanceOf(first, Cassandra.errors.ResponseError)
    assert.notStrictEqual(first, second, "built per request")
    // Fields the driver sets but its typings leave out.
    const fields: object = first
    assert.include(fields, {
      code: Cassandra.types.responseErrorCodes.readTimeout,
      consistencies: Cassandra.types.consistencies.localQuorum,
      received: 1,
      blockFor: 2,
      isDataPresent: 0,
      coordinator: "127.0.0.1:9042",
      message: "Server timeout during read query at consistency LOCAL_QUORUM (1 replica(s) responded over 2 required)"
    })
    // Every other read is still answered.
    const answered = await client.execute("SELECT v FROM bench.kv WHERE k = ?", [1], { prepare: true })
    assert.strictEqual(answered.first()?.get("v"), "value-1")
  })

  it.live("gives the library's read of the timing-out table, and only that one, a ReadTimeout reason", () =>
    Effect.gen(function* () {
      const { client } = makeStubClient()
      const session = yield* Session.makeFromClient(client)
      const read = (table: Query.Identifier) =>
        Effect.provideService(Query.cql`SELECT v FROM ${table} WHERE k = ${1}`, Session.Session, session)
      const failed = yield* Effect.flip(read(Query.identifier("bench", timingOutTable)))
      assert.strictEqual(failed.reason._tag, "ReadTimeout")
      assert.instanceOf(failed.driverError, Cassandra.errors.ResponseError)
      const answered = yield* read(Query.identifier("bench", "kv"))
      assert.strictEqual(answered[0]?.v, "value-1")
    }).pipe(Effect.scoped)
  )
})
