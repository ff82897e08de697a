import { execFile } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { type BackendChoice, type ContainerRuntime, chooseBackend } from "../support/backend.ts"

const docker: ContainerRuntime = { description: "Docker Engine 27.3.1 at localhost" }

/** A runtime lookup that fails the test if the choice runs it. */
const mustNotLook = Effect.die(new Error("looked for a container runtime"))

/**
 * The choice `acquireBackend` makes in a fresh Node process (testcontainers reads DOCKER_HOST once per process) with
 * `env` in place of the parent's DOCKER_HOST and CASSANDRA_CONTACT_POINTS.
 */
const choiceInProcess = (env: Readonly<Record<string, string>>) =>
  Effect.callback<BackendChoice>((resume) => {
    const backend = pathToFileURL(Path.resolve(import.meta.dirname, "..", "support", "backend.ts")).href
    const script = [
      `const { chooseBackend, findContainerRuntime } = await import(${JSON.stringify(backend)})`,
      `const { Effect } = await import("effect")`,
      "const choice = await Effect.runPromise(chooseBackend(process.env.CASSANDRA_CONTACT_POINTS, findContainerRuntime))",
      "console.log(JSON.stringify(choice))"
    ].join("\n")
    const { DOCKER_HOST: _dockerHost, CASSANDRA_CONTACT_POINTS: _contactPoints, ...inherited } = process.env
    const child = execFile(
      process.execPath,
      ["--input-type=module", "-e", script],
      { env: { ...inherited, ...env }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resume(
          error === null
            ? Effect.succeed(JSON.parse(stdout.trim().split("\n").at(-1) ?? "null") as BackendChoice)
            : Effect.die(new Error(`the choice failed (${error.message}):\n${stdout}${stderr}`))
        )
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe("the integration tests' backend", () => {
  it.effect("is the cluster CASSANDRA_CONTACT_POINTS names, without looking for a container runtime", () =>
    Effect.gen(function* () {
      const choice = yield* chooseBackend("10.0.0.1,10.0.0.2", mustNotLook)
      assert.deepStrictEqual(choice, { _tag: "Existing", contactPoints: "10.0.0.1,10.0.0.2" })
    })
  )

  it.effect("is a container when testcontainers finds a runtime and no cluster is named (a blank one is none)", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* chooseBackend(undefined, Effect.succeed(Option.some(docker))), {
        _tag: "Container",
        runtime: docker
      })
      assert.deepStrictEqual(yield* chooseBackend("  ", Effect.succeed(Option.some(docker))), {
        _tag: "Container",
        runtime: docker
      })
    })
  )

  it.effect("is the local manager when testcontainers finds no runtime", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* chooseBackend(undefined, Effect.succeed(Option.none())), { _tag: "Local" })
    })
  )

  it.live(
    "passes over a DOCKER_HOST naming a socket that does not exist, as testcontainers does, and chooses as without it",
    () =>
      Effect.gen(function* () {
        const directory = yield* Effect.acquireRelease(
          Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-cassandra-backend-"))),
          (directory) => Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true }))
        )
        const deadSocket = `unix://${Path.join(directory, "missing", "docker.sock")}`
        const [withDeadSocket, withoutDockerHost] = yield* Effect.all(
          [choiceInProcess({ DOCKER_HOST: deadSocket }), choiceInProcess({})],
          { concurrency: 2 }
        )
        // Here (no engine on this machine, as in CI) both fall back to the local manager; with a Docker socket at a
        // standard place both would choose a container through it.
        assert.notStrictEqual(withDeadSocket._tag, "Existing")
        assert.deepStrictEqual(withDeadSocket, withoutDockerHost)
      }),
    60_000
  )
})
