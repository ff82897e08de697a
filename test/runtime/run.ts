/**
 * The runtime matrix: runs test/runtime/smoke.ts on Node.js 22 and 24, Bun and Deno, in parallel, against the package
 * as users install it (the `npm pack` tarball, so `dist/`), and prints how each went and how long it took.
 *
 *   node test/runtime/run.ts [node22 node24 bun deno]    (default: all four; `npm run test:runtimes`)
 *
 * Each runtime is provisioned from the npm registry by scripts/provision-runtime.sh. The nodes are started here once
 * with the local manager and shared by every runtime: a two-node cluster on 127.0.0.101-102 (node 2 is stopped and
 * started once every runtime subscribed to topology events) and a TLS node on 127.0.0.103. Every node is stopped at
 * the end, also after a failure or Ctrl-C. Exits with status 1 when any runtime failed.
 */
import { execFile, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Deferred, Effect, Exit, Fiber } from "effect"
import * as LocalCassandra from "../../tools/cassandra/LocalCassandra.ts"
import { runMain } from "../support/runMain.ts"

const root = Path.resolve(import.meta.dirname, "..", "..")
const workDirectory = Path.join(root, ".cache", "runtime-smoke")
const appDirectory = Path.join(workDirectory, "app")
const firstAddress = 101
const tlsAddress = firstAddress + 2
/** An address no node listens on, and which Deno is not granted. */
const ungrantedAddress = `127.0.0.${firstAddress + 3}`

/** What the smoke program is given: the nodes' addresses and the CA file (Deno grants exactly these). */
interface Grants {
  readonly addresses: ReadonlyArray<string>
  readonly caFile: string
}

interface Runtime {
  /** How the runtime's users run a TypeScript entry point of their project. */
  readonly command: (executable: string, grants: Grants) => ReadonlyArray<string>
}

const runtimes: Record<string, Runtime> = {
  node22: { command: (node) => [node, "smoke.ts"] },
  node24: { command: (node) => [node, "smoke.ts"] },
  bun: { command: (bun) => [bun, "smoke.ts"] },
  // Deno uses the project's node_modules as npm installed it (package.json present); it grants a Cassandra client
  // the environment (its settings), the nodes' addresses and the CA file, and nothing else.
  deno: {
    command: (deno, grants) => [
      deno,
      "run",
      "--allow-env",
      `--allow-net=${grants.addresses.join(",")}`,
      `--allow-read=${grants.caFile}`,
      "smoke.ts"
    ]
  }
}

/** Runs a command to its end; fails with all it printed when it exits non-zero. */
const run = (command: string, args: ReadonlyArray<string>, cwd: string) =>
  Effect.callback<string, Error>((resume) => {
    const child = execFile(command, args, { cwd, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      resume(
        error === null
          ? Effect.succeed(stdout)
          : Effect.fail(new Error(`${command} ${args.join(" ")} failed:\n${stdout}${stderr}`))
      )
    )
    return Effect.sync(() => child.kill())
  })

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const started = performance.now()
    return Effect.map(effect, (value) => [value, (performance.now() - started) / 1000] as const)
  })

/** The package as users install it: its tarball and `effect`, installed with npm into a fresh project. */
const installPackage = Effect.gen(function* () {
  Fs.rmSync(workDirectory, { recursive: true, force: true })
  Fs.mkdirSync(appDirectory, { recursive: true })
  const tarball = (yield* run("npm", ["pack", "--silent", "--pack-destination", workDirectory], root)).trim()
  const manifest = JSON.parse(Fs.readFileSync(Path.join(root, "package.json"), "utf8"))
  Fs.writeFileSync(
    Path.join(appDirectory, "package.json"),
    JSON.stringify({
      name: "runtime-smoke",
      private: true,
      type: "module",
      dependencies: {
        "effect-cassandra": `file:../${tarball.split("\n").at(-1)}`,
        effect: manifest.devDependencies.effect
      }
    })
  )
  yield* run("npm", ["install", "--no-audit", "--no-fund", "--no-package-lock"], appDirectory)
  Fs.copyFileSync(Path.join(import.meta.dirname, "smoke.ts"), Path.join(appDirectory, "smoke.ts"))
})

const provision = (name: string) =>
  Effect.map(run("bash", [Path.join(root, "scripts", "provision-runtime.sh"), name], root), (out) => out.trim())

interface Outcome {
  readonly name: string
  readonly version: string
  readonly passed: boolean
  readonly seconds: number
  readonly checks: ReadonlyArray<string>
  readonly output: string
}

/**
 * Runs the smoke program on one runtime; `awaiting` completes when it subscribed to topology events (or ended), so
 * that the node is stopped only once every runtime can see it go.
 */
const smoke = (
  name: string,
  executable: string,
  grants: Grants,
  environment: Record<string, string>,
  awaiting: Deferred.Deferred<void>
) =>
  Effect.gen(function* () {
    // `deno --version` prints "deno 2.9.6 (stable, release, …)" and more lines; the others print the version alone.
    const version = (yield* run(executable, ["--version"], appDirectory)).replace(/^deno /, "").split(/[\s(]/)[0]!
    const [command, ...args] = runtimes[name]!.command(executable, grants)
    const started = performance.now()
    const result = yield* Effect.callback<{ code: number | null; output: string }>((resume) => {
      const child = spawn(command!, args, { cwd: appDirectory, env: { ...process.env, ...environment } })
      let output = ""
      let pending = ""
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk
        pending += chunk
        const lines = pending.split("\n")
        pending = lines.pop()!
        for (const line of lines) {
          if (line === "awaiting-topology") Deferred.doneUnsafe(awaiting, Exit.void)
          if (line.startsWith("ok ") || line.startsWith("failed ")) console.log(`[${name}] ${line}`)
        }
      })
      child.stderr.on("data", (chunk: Buffer) => {
        output += chunk
      })
      child.once("close", (code) => resume(Effect.succeed({ code, output })))
      return Effect.sync(() => child.kill("SIGKILL"))
    }).pipe(Effect.ensuring(Deferred.done(awaiting, Exit.void)))
    return {
      name,
      version,
      passed: result.code === 0,
      seconds: (performance.now() - started) / 1000,
      checks: result.output.split("\n").filter((line) => line.startsWith("ok ")),
      output: result.output
    } satisfies Outcome
  })

const program = Effect.gen(function* () {
  const selected = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(runtimes)
  const unknown = selected.filter((name) => !(name in runtimes))
  if (unknown.length > 0)
    return yield* Effect.die(
      new Error(`unknown runtime(s) ${unknown.join(", ")}: choose from ${Object.keys(runtimes).join(", ")}`)
    )

  const [[executables, clusters], preparation] = yield* timed(
    Effect.all(
      [
        Effect.andThen(installPackage, Effect.forEach(selected, provision, { concurrency: "unbounded" })),
        Effect.all(
          [
            LocalCassandra.start({ name: "runtime-smoke", nodes: 2, firstAddress }),
            LocalCassandra.start({
              name: "runtime-smoke-tls",
              nodes: 1,
              firstAddress: tlsAddress,
              tls: { clientCertificate: false }
            })
          ],
          { concurrency: 2 }
        )
      ],
      { concurrency: 2 }
    )
  )
  const [cluster, tlsCluster] = clusters
  console.log(`runtime matrix: package installed, runtimes provisioned and nodes up in ${preparation.toFixed(1)} s`)

  const awaiting = yield* Effect.forEach(selected, () => Deferred.make<void>())
  const fibers = yield* Effect.forEach(selected, (name, index) =>
    Effect.forkChild(
      smoke(
        name,
        executables[index]!,
        { addresses: [...cluster.contactPoints, ...tlsCluster.contactPoints], caFile: tlsCluster.tls!.caFile },
        {
          SMOKE_CONTACT_POINT: cluster.contactPoints[0]!,
          SMOKE_STOPPED_NODE: cluster.contactPoints[1]!,
          SMOKE_TLS_CONTACT_POINT: tlsCluster.contactPoints[0]!,
          SMOKE_TLS_CA: tlsCluster.tls!.caFile,
          SMOKE_KEYSPACE: `smoke_${name}`,
          SMOKE_UNGRANTED_ADDRESS: ungrantedAddress
        },
        awaiting[index]!
      )
    )
  )
  yield* Effect.forEach(awaiting, Deferred.await, { discard: true })
  const [, restart] = yield* timed(Effect.andThen(cluster.stopNode(2), cluster.startNode(2)))
  console.log(`runtime matrix: node 2 stopped and started in ${restart.toFixed(1)} s`)
  const outcomes = yield* Fiber.joinAll(fibers)

  console.log("\nruntime   version                 result  seconds  checks")
  for (const outcome of outcomes) {
    console.log(
      `${outcome.name.padEnd(9)} ${outcome.version.padEnd(23)} ${(outcome.passed ? "passed" : "FAILED").padEnd(7)} ${outcome.seconds.toFixed(1).padStart(7)}  ${outcome.checks.length}`
    )
  }
  for (const outcome of outcomes.filter((o) => !o.passed))
    console.log(`\n--- ${outcome.name} output ---\n${outcome.output}`)
  return outcomes.every((outcome) => outcome.passed)
})

await runMain(program)
