import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"
import * as CqlSchema from "effect-cassandra/CqlSchema"
import * as Query from "effect-cassandra/Query"
import { Session } from "effect-cassandra/Session"

/** A session answering with the given pages in order, as Cassandra may: a page can be empty and still have a next one. */
const pagedSession = (pages: ReadonlyArray<{ readonly rows: Array<Query.Row>; readonly pageState?: string }>) => {
  const requested: Array<string | undefined> = []
  const session: Session = {
    client: undefined as never,
    keyspace: undefined,
    execute: (request) =>
      Effect.sync(() => {
        const pageState = request.options?.pageState
        requested.push(pageState)
        const page = pages[requested.length - 1] ?? { rows: [] }
        return { rows: page.rows, pageState: page.pageState ?? null } as never
      }),
    batch: () => Effect.die("no batch"),
    inFlight: Effect.succeed(0)
  }
  return { session, requested }
}

const Row = Schema.Struct({ k: Schema.Number })
const options = { Result: Row, execute: () => Query.cql`SELECT k FROM t WHERE v = ${1} ALLOW FILTERING` }

describe("CqlSchema paging", () => {
  it("finds the first row past empty pages that have a next page", () => {
    const pages = [{ rows: [], pageState: "p1" }, { rows: [], pageState: "p2" }, { rows: [{ k: 7 }, { k: 8 }] }]
    const one = pagedSession(pages)
    const found = Effect.runSync(Effect.provideService(CqlSchema.findOne(options)(), Session, one.session))
    assert.deepStrictEqual(found, { k: 7 })
    assert.deepStrictEqual(one.requested, [undefined, "p1", "p2"])
    const option = pagedSession(pages)
    const maybe = Effect.runSync(Effect.provideService(CqlSchema.findOneOption(options)(), Session, option.session))
    assert.deepStrictEqual(maybe, Option.some({ k: 7 }))
    const all = pagedSession(pages)
    const rows = Effect.runSync(Effect.provideService(CqlSchema.findAll(options)(), Session, all.session))
    assert.deepStrictEqual(rows, [{ k: 7 }, { k: 8 }])
  })

  it("stops at the first page holding a row, and says none only after the last page", () => {
    const early = pagedSession([{ rows: [{ k: 1 }], pageState: "p1" }, { rows: [{ k: 2 }] }])
    Effect.runSync(Effect.provideService(CqlSchema.findOne(options)(), Session, early.session))
    assert.deepStrictEqual(early.requested, [undefined])
    const none = pagedSession([{ rows: [], pageState: "p1" }, { rows: [] }])
    const maybe = Effect.runSync(Effect.provideService(CqlSchema.findOneOption(options)(), Session, none.session))
    assert.isTrue(Option.isNone(maybe))
    assert.deepStrictEqual(none.requested, [undefined, "p1"])
  })
})

describe("CqlSchema.findAll decoding", () => {
  const pages = [
    { rows: [{ k: 1 }, { k: 2 }], pageState: "p1" },
    { rows: [] as Array<Query.Row>, pageState: "p2" },
    { rows: [{ k: 3 }] }
  ]

  it.live("decodes every row of every page in order with a Schema that decodes asynchronously", () =>
    Effect.gen(function* () {
      const Later = Schema.Struct({
        k: Schema.Number.pipe(
          Schema.decodeTo(Schema.Number, {
            decode: SchemaGetter.transformEffect((k: number) => Effect.as(Effect.sleep("1 millis"), k * 10)),
            encode: SchemaGetter.transform((k: number) => k / 10)
          })
        )
      })
      const { session, requested } = pagedSession(pages)
      const rows = yield* Effect.provideService(
        CqlSchema.findAll({ Result: Later, execute: options.execute })(),
        Session,
        session
      )
      assert.deepStrictEqual(rows, [{ k: 10 }, { k: 20 }, { k: 30 }])
      assert.deepStrictEqual(requested, [undefined, "p1", "p2"])
    })
  )

  it("names the row that failed to decode by its index over every page", () => {
    const { session } = pagedSession([pages[0]!, pages[1]!, { rows: [{ k: 3 }, { k: "four" }] }])
    const error = Effect.runSync(
      Effect.flip(Effect.provideService(CqlSchema.findAll(options)(), Session, session))
    ) as CqlSchema.CqlSchemaError
    assert.strictEqual(error._tag, "CqlSchemaError")
    assert.strictEqual(error.direction, "Result")
    assert.strictEqual(error.rowIndex, 3)
    assert.strictEqual(error.column, "k")
  })
})

describe("CqlSchema parameterless forms", () => {
  it("take no argument in their type, and ignore one given through a cast", () => {
    const helpers = [
      CqlSchema.findAll(options),
      CqlSchema.findNonEmpty(options),
      CqlSchema.findOne(options),
      CqlSchema.findOneOption(options),
      CqlSchema.void({ execute: options.execute })
    ] as const
    // @ts-expect-error a parameterless helper takes no request
    CqlSchema.findAll(options)(42)
    // @ts-expect-error a parameterless stream takes no request
    CqlSchema.stream(options)("x")
    for (const helper of helpers) {
      const { session, requested } = pagedSession([{ rows: [{ k: 1 }] }])
      const call = helper as unknown as (request: unknown) => Effect.Effect<unknown, unknown, Session>
      Effect.runSync(Effect.provideService(call({ unexpected: true }), Session, session))
      assert.deepStrictEqual(requested, [undefined])
    }
  })
})
