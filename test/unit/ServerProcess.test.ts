import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { awaitReady, onFreePort, spawnServer } from "../support/serverProcess.ts"

/** Whether `pid` runs (a zombie, dead but not yet reaped, does not). */
const isAlive = (pid: number) => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return false
  }
}

// A launcher that starts the real server as its child and writes the child's pid, as `npx` or a JVM wrapper does.
const launcher = (pidFile: string) => `sleep 1000 & echo $! > ${pidFile}; wait`

const withPidFile = <A, E>(use: (pidFile: string) => Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "server-process-"))),
    (directory) => use(Path.join(directory, "pid")),
    (directory) => Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true }))
  )

const grandchildOf = (pidFile: string, scope: Scope.Scope) =>
  Effect.gen(function* () {
    const server = yield* spawnServer("launcher", "sh", ["-c", launcher(pidFile)]).pipe(Scope.provide(scope))
    yield* awaitReady(
      server,
      "the child's pid",
      Effect.sync(() => Fs.existsSync(pidFile) && Fs.readFileSync(pidFile, "utf8").trim() !== ""),
      "20 seconds"
    )
    return Number(Fs.readFileSync(pidFile, "utf8").trim())
  })

describe("serverProcess", () => {
  for (const [ending, exit] of [
    ["succeeds", Exit.void],
    ["fails", Exit.fail(new Error("assertion failed"))],
    ["is interrupted", Exit.interrupt(1)]
  ] as const) {
    it.live(`stops the server's whole process group when the test ${ending}`, () =>
      withPidFile((pidFile) =>
        Effect.gen(function* () {
          const scope = yield* Scope.make()
          const grandchild = yield* grandchildOf(pidFile, scope)
          assert.isTrue(isAlive(grandchild))
          yield* Scope.close(scope, exit)
          assert.isFalse(isAlive(grandchild), `pid ${grandchild} outlived the scope`)
        })
      )
    )
  }

  it.live("starts a server again on another free port when the one it was given was taken meanwhile", () =>
    Effect.gen(function* () {
      const ports: Array<number> = []
      const port = yield* onFreePort((port) => {
        ports.push(port)
        return ports.length === 1
          ? Effect.fail(new Error(`listen tcp 127.0.0.1:${port}: bind: address already in use`))
          : Effect.succeed(port)
      })
      assert.lengthOf(ports, 2)
      assert.strictEqual(port, ports[1])
      const refused = yield* Effect.flip(onFreePort(() => Effect.fail(new Error("config file is invalid"))))
      assert.strictEqual(refused.message, "config file is invalid", "other failures are not retried")
    })
  )
})
