import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as TestClock from "effect/testing/TestClock"
import { ensureJar } from "../support/zipkin.ts"

const capturedLines = (lines: Array<string>) =>
  Logger.layer([
    Logger.make(({ message }) => {
      lines.push(Array.isArray(message) ? message.join(" ") : String(message))
    })
  ])

// A stand-in for mvn, first on PATH: it starts a download, waits until `release` exists (some 10 s at most: 200 waits
// of 50 ms, so that a test that failed before releasing it leaves no process behind), then fails as Maven does offline.
const fakeMaven = (bin: string, release: string) =>
  Fs.writeFileSync(
    Path.join(bin, "mvn"),
    `#!/bin/sh\nfor a in "$@"; do case "$a" in -DoutputDirectory=*) out="\${a#-DoutputDirectory=}";; esac; done\n` +
      `mkdir -p "$out"\ntouch "$out/zipkin-server.jar.part" "${release}.started"\nn=0\nwhile [ ! -e "${release}" ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n + 1)); done\necho "[ERROR] Could not transfer artifact io.zipkin:zipkin-server: network unreachable"\nexit 1\n`,
    { mode: 0o755 }
  )

describe("Zipkin jar", () => {
  it.effect("reports a long download every few seconds, and leaves no partial download behind when it fails", () => {
    const lines: Array<string> = []
    return Effect.acquireUseRelease(
      Effect.sync(() => {
        const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "zipkin-jar-"))
        Fs.mkdirSync(Path.join(directory, "bin"))
        fakeMaven(Path.join(directory, "bin"), Path.join(directory, "release"))
        const path = process.env.PATH
        process.env.PATH = `${Path.join(directory, "bin")}:${path}`
        return { directory, path }
      }),
      ({ directory }) =>
        Effect.gen(function* () {
          const cache = Path.join(directory, "cache")
          const fetching = yield* Effect.forkChild(Effect.flip(ensureJar(cache)))
          // Once the fake Maven runs, the progress lines come after 5 and 10 seconds.
          const started = Path.join(directory, "release.started")
          // Polled on the real clock: the test's clock moves only when told to.
          const givingUpAt = Date.now() + 4_000
          while (!Fs.existsSync(started)) {
            if (Date.now() > givingUpAt) return yield* Effect.die(new Error("the fake Maven did not start within 4 s"))
            yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
          }
          yield* TestClock.adjust("5 seconds")
          yield* TestClock.adjust("5 seconds")
          Fs.writeFileSync(Path.join(directory, "release"), "")
          const error = yield* Fiber.join(fetching)
          assert.include(error.message, "network unreachable")
          const progress = lines.filter((line) => /fetching the Zipkin server .*: \d+ s/.test(line))
          assert.lengthOf(progress, 2, lines.join("\n"))
          assert.deepStrictEqual(Fs.readdirSync(cache), [], "no partial download is left in the cache")
        }).pipe(Effect.provide(capturedLines(lines))),
      ({ directory, path }) =>
        Effect.sync(() => {
          process.env.PATH = path
          Fs.rmSync(directory, { recursive: true, force: true })
        })
    )
  })
})
