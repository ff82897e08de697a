import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { testConnection } from "../support/cassandra.ts"
import { runProgram } from "../support/programs.ts"

const root = Path.resolve(import.meta.dirname, "../..")

/** The first TypeScript block after a README heading, exactly as a reader copies it. */
const codeAfter = (heading: string): string => {
  const readme = readFileSync(Path.join(root, "README.md"), "utf8")
  const section = readme.slice(readme.indexOf(`## ${heading}\n`))
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1]
  if (block === undefined) throw new Error(`README has no TypeScript block after "${heading}"`)
  return block
}

describe("the README", () => {
  it.live("its short tour runs as written against the test node", () =>
    Effect.gen(function* () {
      // Inside the package, so that `effect-cassandra` resolves to src/ through the `effect-cassandra/source` condition.
      const directory = Path.join(root, ".cache", "readme")
      mkdirSync(directory, { recursive: true })
      const file = Path.join(directory, "tour.ts")
      writeFileSync(file, codeAfter("A short tour"))
      const connection = testConnection()
      const { code, output } = yield* runProgram(file, {
        CASSANDRA_CONTACT_POINTS: connection.contactPoints.join(",")
      })
      assert.strictEqual(code, 0, output)
      assert.match(output, /user 1 is Ada/)
    })
  )
})
