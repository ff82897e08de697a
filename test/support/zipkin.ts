/**
 * A real Zipkin server for a test: the executable jar of `io.zipkin:zipkin-server` from Maven Central (fetched once
 * into .cache/zipkin with Maven), run with Java 17+ on a free loopback port with in-memory storage, and stopped when
 * the scope closes.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect, Schema, type Scope } from "effect"
import { withProgress } from "../../tools/cassandra/internal/progress.ts"
import { answers, awaitReady, getJson, onFreePort, type ServerProcess, spawnServer } from "./serverProcess.ts"

const version = "3.6.1"
const jarName = `zipkin-server-${version}-exec.jar`
const defaultCacheDirectory = Path.resolve(import.meta.dirname, "..", "..", ".cache", "zipkin")

/**
 * A span as Zipkin's v2 API returns it (the fields the tests read; Zipkin keeps names in lower case).
 *
 * @since 0.1.0
 * @category models
 */
export const ZipkinSpan = Schema.Struct({
  traceId: Schema.String,
  id: Schema.String,
  parentId: Schema.optional(Schema.String),
  name: Schema.optional(Schema.String),
  kind: Schema.optional(Schema.String),
  localEndpoint: Schema.optional(Schema.Struct({ serviceName: Schema.optional(Schema.String) })),
  tags: Schema.optional(Schema.Record(Schema.String, Schema.String))
})

/**
 * @since 0.1.0
 * @category models
 */
export type ZipkinSpan = typeof ZipkinSpan.Type

const decodeTrace = Schema.decodeUnknownEffect(Schema.Array(ZipkinSpan))

/**
 * A running Zipkin: where to send spans, and its query API.
 *
 * @since 0.1.0
 * @category models
 */
export interface Zipkin {
  readonly url: string
  readonly process: ServerProcess
  /** Zipkin's v2 JSON span endpoint, for the OpenTelemetry Zipkin exporter. */
  readonly spansEndpoint: string
  /** The trace as stored: its spans, and the exact JSON Zipkin answered. */
  readonly trace: (
    traceId: string
  ) => Effect.Effect<{ readonly spans: ReadonlyArray<ZipkinSpan>; readonly json: string }, Error>
}

const runMaven = (args: ReadonlyArray<string>) =>
  spawnServer("mvn", "mvn", args, { missingHint: "install maven (apt-get install maven)" }).pipe(
    Effect.flatMap((maven) => Effect.map(maven.exited, (code) => ({ code, output: maven.output() }))),
    Effect.scoped
  )

/**
 * The server's executable jar in `cacheDirectory`, copied there from Maven Central once, with a progress line every
 * few seconds while Maven fetches it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const ensureJar = (cacheDirectory: string = defaultCacheDirectory): Effect.Effect<string, Error> =>
  Effect.gen(function* () {
    const jarFile = Path.join(cacheDirectory, jarName)
    if (Fs.existsSync(jarFile)) return jarFile
    const fetching = `fetching the Zipkin server ${version} (about 135 MB)`
    yield* Effect.logInfo(`${fetching} with Maven into ${cacheDirectory}`)
    // Maven writes into a directory of this process's own, removed in the end; the jar is moved into place only once
    // complete, so an interrupted or failed copy leaves nothing behind and is fetched again.
    const downloadDirectory = Path.join(cacheDirectory, `download-${process.pid}`)
    const fetched = Effect.gen(function* () {
      const { code, output } = yield* withProgress(
        runMaven([
          "-B",
          "--no-transfer-progress",
          "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy",
          `-Dartifact=io.zipkin:zipkin-server:${version}:jar:exec`,
          `-DoutputDirectory=${downloadDirectory}`
        ]),
        (elapsed) => `${fetching}: ${elapsed}`
      )
      const downloaded = Path.join(downloadDirectory, jarName)
      if (code !== 0 || !Fs.existsSync(downloaded)) {
        const reason = output.split("\n").findLast((line) => line.includes("[ERROR]")) ?? `exit code ${code}`
        return yield* Effect.fail(
          new Error(`Maven could not fetch the Zipkin server (${reason.trim()}): check access to Maven Central`)
        )
      }
      Fs.renameSync(downloaded, jarFile)
      return jarFile
    })
    return yield* fetched.pipe(
      Effect.ensuring(Effect.sync(() => Fs.rmSync(downloadDirectory, { recursive: true, force: true })))
    )
  })

/**
 * Starts a Zipkin server with in-memory storage on a free 127.0.0.1 port, for the life of the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start: Effect.Effect<Zipkin, Error, Scope.Scope> = Effect.gen(function* () {
  const jar = yield* ensureJar()
  const java = process.env.JAVA_HOME ? Path.join(process.env.JAVA_HOME, "bin", "java") : "java"
  const { url, server } = yield* onFreePort((port) =>
    Effect.gen(function* () {
      const url = `http://127.0.0.1:${port}`
      const server = yield* spawnServer(
        "zipkin",
        java,
        [
          "-Xms64m",
          "-Xmx256m",
          "-XX:+UseSerialGC",
          "-jar",
          jar,
          // Loopback only: Zipkin's own setting (QUERY_PORT) listens on every interface.
          `--armeria.ports[0].port=${port}`,
          "--armeria.ports[0].ip=127.0.0.1",
          "--armeria.ports[0].protocols[0]=http"
        ],
        {
          env: { STORAGE_TYPE: "mem" },
          missingHint: "install Java 17 (apt-get install openjdk-17-jdk-headless) or set JAVA_HOME"
        }
      )
      yield* awaitReady(server, "readiness (/health)", answers(`${url}/health`), "180 seconds")
      return { url, server }
    })
  )
  const trace = (traceId: string) =>
    getJson(`${url}/api/v2/trace/${traceId}`).pipe(
      Effect.flatMap((body) => Effect.map(decodeTrace(body), (spans) => ({ spans, json: JSON.stringify(body) }))),
      Effect.mapError((error) => new Error(`Zipkin trace ${traceId}: ${error.message}`))
    )
  return { url, process: server, spansEndpoint: `${url}/api/v2/spans`, trace } satisfies Zipkin
})
