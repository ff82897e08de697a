import { execFile } from "node:child_process"
import { readdirSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { testConnection } from "../support/cassandra.ts"

/** What each example prints when it worked; every file in examples/ must be listed, so none can rot unrun. */
const expectedOutput: Record<string, RegExp> = {
  "dependency-injection.ts": /found Ada Lovelace/,
  "schema-rows.ts": /streamed 5000 of 5000 readings, in order: true/
}

const runExample = (file: string) =>
  Effect.callback<{ readonly code: number; readonly output: string }>((resume) => {
    const connection = testConnection()
    const child = execFile(
      process.execPath,
      ["--conditions=source", `examples/${file}`],
      {
        timeout: 120_000,
        env: {
          ...process.env,
          CASSANDRA_CONTACT_POINTS: connection.contactPoints.join(","),
          CASSANDRA_LOCAL_DC: connection.localDataCenter,
          ...(connection.credentials === undefined
            ? {}
            : {
                CASSANDRA_USERNAME: connection.credentials.username,
                CASSANDRA_PASSWORD: connection.credentials.password
              })
        }
      },
      (error, stdout, stderr) => {
        resume(Effect.succeed({ code: error === null ? 0 : Number(error.code ?? 1), output: `${stdout}${stderr}` }))
      }
    )
    return Effect.sync(() => child.kill())
  })

describe("examples", () => {
  it("are all listed here", () => {
    const files = readdirSync(new URL("../../examples", import.meta.url)).filter(
      (file) => file.endsWith(".ts") && file !== "demo.ts"
    )
    assert.deepStrictEqual(files.sort(), Object.keys(expectedOutput).sort())
  })

  for (const [file, expected] of Object.entries(expectedOutput)) {
    it.live(`${file} runs against the test node`, () =>
      Effect.gen(function* () {
        const { code, output } = yield* runExample(file)
        assert.strictEqual(code, 0, output)
        assert.match(output, expected)
      })
    )
  }
})
