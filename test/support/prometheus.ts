/**
 * A real Prometheus server for a test: the `prometheus` binary (Debian package `prometheus`, which `.ci/run` installs
 * when missing) started on a free loopback port with its own configuration and storage in a temporary directory,
 * scraping the given targets every second, and stopped (directory removed) when the scope closes. The system's own
 * Prometheus service, if any, is never used.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect, Schema, type Scope } from "effect"
import { answers, awaitReady, getJson, onFreePort, spawnServer } from "./serverProcess.ts"

/**
 * A running Prometheus and its HTTP query API.
 *
 * @since 0.1.0
 * @category models
 */
export interface Prometheus {
  readonly url: string
  /** The instant vector of a PromQL query, evaluated now. */
  readonly query: (promql: string) => Effect.Effect<ReadonlyArray<Sample>, Error>
}

/**
 * One series of an instant vector: its labels and its value (`NaN`, `+Inf` included).
 *
 * @since 0.1.0
 * @category models
 */
export interface Sample {
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

const QueryResponse = Schema.Struct({
  status: Schema.Literal("success"),
  data: Schema.Struct({
    resultType: Schema.Literal("vector"),
    result: Schema.Array(
      Schema.Struct({
        metric: Schema.Record(Schema.String, Schema.String),
        value: Schema.Tuple([Schema.Number, Schema.String])
      })
    )
  })
})

const decodeQueryResponse = Schema.decodeUnknownEffect(QueryResponse)

const configuration = (targets: ReadonlyArray<string>) =>
  [
    "global:",
    "  scrape_interval: 1s",
    "  evaluation_interval: 1s",
    "scrape_configs:",
    "  - job_name: test",
    "    static_configs:",
    `      - targets: [${targets.map((target) => JSON.stringify(target)).join(", ")}]`,
    ""
  ].join("\n")

/**
 * Starts Prometheus scraping `targets` (`host:port`, path `/metrics`) every second, for the life of the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (targets: ReadonlyArray<string>): Effect.Effect<Prometheus, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const directory = yield* Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-cassandra-prometheus-"))),
      (directory) => Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true }))
    )
    const configFile = Path.join(directory, "prometheus.yml")
    Fs.writeFileSync(configFile, configuration(targets))
    const url = yield* onFreePort((port) =>
      Effect.gen(function* () {
        const url = `http://127.0.0.1:${port}`
        const server = yield* spawnServer(
          "prometheus",
          process.env.PROMETHEUS_BINARY ?? "prometheus",
          [
            `--config.file=${configFile}`,
            `--storage.tsdb.path=${Path.join(directory, "data")}`,
            `--web.listen-address=127.0.0.1:${port}`
          ],
          { missingHint: "install Prometheus (apt-get install prometheus) or set PROMETHEUS_BINARY" }
        )
        yield* awaitReady(server, "readiness (/-/ready)", answers(`${url}/-/ready`), "60 seconds")
        return url
      })
    )
    const query = (promql: string) =>
      getJson(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`).pipe(
        Effect.flatMap(decodeQueryResponse),
        Effect.map((response) =>
          response.data.result.map((sample) => ({ labels: sample.metric, value: Number(sample.value[1]) }))
        ),
        Effect.mapError((error) => new Error(`PromQL ${promql}: ${error.message}`))
      )
    return { url, query } satisfies Prometheus
  })
