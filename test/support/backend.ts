/**
 * Where the integration tests get Cassandra from, in this order: an existing cluster named by
 * CASSANDRA_CONTACT_POINTS, a testcontainers container when a Docker engine answers, else the local manager
 * (tools/cassandra, Java 17 + Maven). The choice is logged; with none available the acquisition fails and says how
 * to get one.
 */
import * as ChildProcess from "node:child_process"
import { CassandraContainer } from "@testcontainers/cassandra"
import { Effect, Schema, type Scope } from "effect"
import * as LocalCassandra from "../../tools/cassandra/LocalCassandra.ts"

/**
 * A Cassandra cluster the integration tests can connect to.
 *
 * @since 0.1.0
 * @category models
 */
export interface Backend {
  readonly kind: "existing" | "testcontainers" | "local"
  readonly contactPoints: ReadonlyArray<string>
  readonly localDataCenter: string
  readonly credentials?: { readonly username: string; readonly password: string }
}

/**
 * No Cassandra could be provided for the integration tests.
 *
 * @since 0.1.0
 * @category errors
 */
export class BackendError extends Schema.TaggedError<BackendError>("effect-cassandra/test/BackendError")(
  "BackendError",
  { message: Schema.String }
) {}

const howToGetOne =
  "set CASSANDRA_CONTACT_POINTS to a running cluster, start a Docker engine, or install Java 17 and Maven (apt-get install openjdk-17-jdk-headless maven)"

const existingCluster = (contactPoints: string): Backend => {
  const username = process.env.CASSANDRA_USERNAME
  return {
    kind: "existing",
    contactPoints: contactPoints
      .split(",")
      .map((point) => point.trim())
      .filter((point) => point.length > 0),
    localDataCenter: process.env.CASSANDRA_LOCAL_DC || "datacenter1",
    ...(username ? { credentials: { username, password: process.env.CASSANDRA_PASSWORD ?? "" } } : {})
  }
}

/** Whether a Docker engine answers within a few seconds; `docker` missing or a dead daemon both mean no. */
const dockerAnswers: Effect.Effect<boolean> = Effect.callback((resume) => {
  let docker: ChildProcess.ChildProcess
  try {
    docker = ChildProcess.spawn("docker", ["info", "--format", "{{.ServerVersion}}"], { stdio: "ignore" })
  } catch {
    return resume(Effect.succeed(false))
  }
  const deadline = setTimeout(() => docker.kill("SIGKILL"), 5_000)
  docker.once("error", () => resume(Effect.succeed(false)))
  docker.once("close", (code) => {
    clearTimeout(deadline)
    resume(Effect.succeed(code === 0))
  })
  return Effect.sync(() => {
    clearTimeout(deadline)
    docker.kill("SIGKILL")
  })
})

const container = Effect.acquireRelease(
  Effect.tryPromise({
    try: () => new CassandraContainer("cassandra:5.0").start(),
    catch: (cause) =>
      new BackendError({
        message: `Docker answered but the cassandra:5.0 container did not start (${cause instanceof Error ? cause.message : String(cause)}): fix Docker or ${howToGetOne}`
      })
  }),
  (started) => Effect.promise(() => started.stop().then(() => undefined))
).pipe(
  Effect.map(
    (started): Backend => ({
      kind: "testcontainers",
      contactPoints: [started.getContactPoint()],
      localDataCenter: started.getDatacenter()
    })
  )
)

const localCluster = LocalCassandra.start({ name: "test", nodes: 1, firstAddress: 1 }).pipe(
  Effect.map(
    (cluster): Backend => ({
      kind: "local",
      contactPoints: cluster.contactPoints,
      localDataCenter: cluster.localDataCenter
    })
  ),
  Effect.mapError((error) => {
    const missingTools =
      error.reason === "JavaMissing" || error.reason === "MavenMissing" || error.reason === "MavenFailed"
    return new BackendError({
      message: missingTools
        ? `no Cassandra for the integration tests (${error.message}): ${howToGetOne}`
        : `the local Cassandra for the integration tests did not start: ${error.message}`
    })
  })
)

/**
 * Provides Cassandra for the integration tests for the life of the scope (a container or local node is stopped when
 * it closes; an existing cluster is left alone).
 *
 * @since 0.1.0
 * @category constructors
 */
export const acquireBackend: Effect.Effect<Backend, BackendError, Scope.Scope> = Effect.gen(function* () {
  const contactPoints = process.env.CASSANDRA_CONTACT_POINTS
  if (contactPoints !== undefined && contactPoints.trim() !== "") {
    const backend = existingCluster(contactPoints)
    yield* Effect.logInfo(
      `Cassandra for the tests: the existing cluster at ${backend.contactPoints.join(", ")} (CASSANDRA_CONTACT_POINTS)`
    )
    return backend
  }
  if (yield* dockerAnswers) {
    yield* Effect.logInfo("Cassandra for the tests: a cassandra:5.0 container (a Docker engine answered)")
    return yield* container
  }
  yield* Effect.logInfo(
    "Cassandra for the tests: a local node on 127.0.0.1 (no CASSANDRA_CONTACT_POINTS, no Docker engine; tools/cassandra)"
  )
  return yield* localCluster
})
