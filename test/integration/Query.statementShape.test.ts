/**
 * Statements built at a call site that inlines a name reuse the text built at its first call, only their values being
 * new: against the real node, every call writes its own values (blobs given as Uint8Array included), alone, in a
 * batch, and from a session's template.
 */
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Query from "effect-cassandra/Query"
import { sessionWithKeyspace } from "../support/session.ts"

const { cql, identifier } = Query
const { keyspace, layer: sessionLayer } = sessionWithKeyspace("statement_shape")
const table = identifier(keyspace, "shaped")

interface Shaped {
  readonly k: number
  readonly a: string | null
  readonly b: Uint8Array | null
  readonly c: number | null
  readonly d: Uint8Array | null
}

const rows: ReadonlyArray<Shaped> = Array.from({ length: 12 }, (_, k) => ({
  k,
  a: k % 3 === 0 ? null : `text ${k}`,
  b: k % 4 === 1 ? null : new Uint8Array([k, 255 - k, 7]),
  c: k % 5 === 2 ? null : k * 1000,
  d: k % 2 === 0 ? Buffer.from([k, k]) : new Uint8Array(new ArrayBuffer(8), 2, 3).fill(k)
}))

const bytes = (value: unknown) => (value === null ? null : [...(value as Uint8Array)])

const asRead = (row: Shaped) => ({ k: row.k, a: row.a, b: bytes(row.b), c: row.c, d: bytes(row.d) })

layer(sessionLayer, { excludeTestServices: true })("Statements reusing their call site's text", (it) => {
  it.effect("write every call's own values, alone, in a batch and from a template, and read them back", () =>
    Effect.gen(function* () {
      yield* cql`CREATE TABLE ${table} (k int PRIMARY KEY, a text, b blob, c int, d blob)`
      const template = yield* Query.template
      const inserts = [
        (row: Shaped) =>
          cql`INSERT INTO ${table} (k, a, b, c, d) VALUES (${row.k}, ${row.a}, ${row.b}, ${row.c}, ${row.d})`,
        (row: Shaped) =>
          template`INSERT INTO ${table} (k, a, b, c, d) VALUES (${row.k}, ${row.a}, ${row.b}, ${row.c}, ${row.d})`
      ]
      for (const [index, row] of rows.slice(0, 8).entries()) yield* inserts[index % 2]!(row)
      yield* Query.batch(rows.slice(8).map(inserts[0]!))
      const read = (k: number) => cql`SELECT k, a, b, c, d FROM ${table} WHERE k = ${k}`
      for (const row of rows) {
        const [found] = yield* read(row.k)
        assert.deepStrictEqual(
          { k: found?.k, a: found?.a, b: bytes(found?.b), c: found?.c, d: bytes(found?.d) },
          asRead(row),
          `row ${row.k}`
        )
      }
      // A later write that binds undefined leaves the column as it was (unset), at the same call site.
      yield* inserts[0]!({ ...rows[1]!, a: undefined as unknown as null, c: 77 })
      const [rewritten] = yield* read(1)
      assert.strictEqual(rewritten?.a, rows[1]!.a)
      assert.strictEqual(rewritten?.c, 77)
    })
  )
})
