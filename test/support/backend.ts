/**
 * Where the integration tests get Cassandra from, in this order: an existing cluster named by
 * CASSANDRA_CONTACT_POINTS, a testcontainers container when testcontainers finds a container runtime, else the local
 * manager (tools/cassandra, Java 17 + Maven). The choice is logged; with none available the acquisition fails and says
 * how to get one.
 */
import { CassandraContainer } from "@testcontainers/cassandra"
import { Effect, Option, Schema, type Scope } from "effect"
import { getContainerRuntimeClient } from "testcontainers"
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
  "set CASSANDRA_CONTACT_POINTS to a running cluster, start a container runtime (Docker, or Podman or Colima named by DOCKER_HOST), or install Java 17 and Maven (apt-get install openjdk-17-jdk-headless maven)"

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

/**
 * A container runtime that answered testcontainers.
 *
 * @since 0.1.0
 * @category models
 */
export interface ContainerRuntime {
  /** What it is and where, for the log: "Docker Desktop 27.3.1 at localhost". */
  readonly description: string
}

/**
 * The container runtime testcontainers itself would use, found by its own strategies in its own order: `tc.host` in
 * ~/.testcontainers.properties, DOCKER_HOST (how Podman and Colima are named; else that file's `docker.host`), the
 * Docker socket, a rootless or Docker Desktop socket, the Windows named pipe. Each candidate must answer an info request, so a
 * socket nothing listens on is passed over; none when no strategy works within 20 seconds.
 *
 * @since 0.1.0
 * @category constructors
 */
export const findContainerRuntime: Effect.Effect<Option.Option<ContainerRuntime>> = Effect.tryPromise(() =>
  getContainerRuntimeClient()
).pipe(
  Effect.timeout("20 seconds"),
  Effect.map(({ info: { containerRuntime } }) =>
    Option.some({
      description: `${containerRuntime.operatingSystem} ${containerRuntime.serverVersion} at ${containerRuntime.host}`
    })
  ),
  Effect.orElseSucceed(() => Option.none())
)

/**
 * Which backend the integration tests use.
 *
 * @since 0.1.0
 * @category models
 */
export type BackendChoice =
  | { readonly _tag: "Existing"; readonly contactPoints: string }
  | { readonly _tag: "Container"; readonly runtime: ContainerRuntime }
  | { readonly _tag: "Local" }

/**
 * Chooses the backend: the cluster named by `contactPoints` when it names one (the runtime is then not looked for),
 * else a container when `findRuntime` finds a runtime, else the local manager.
 *
 * @since 0.1.0
 * @category constructors
 */
export const chooseBackend = (
  contactPoints: string | undefined,
  findRuntime: Effect.Effect<Option.Option<ContainerRuntime>>
): Effect.Effect<BackendChoice> =>
  contactPoints !== undefined && contactPoints.trim() !== ""
    ? Effect.succeed({ _tag: "Existing", contactPoints })
    : Effect.map(
        findRuntime,
        Option.match({
          onNone: (): BackendChoice => ({ _tag: "Local" }),
          onSome: (runtime): BackendChoice => ({ _tag: "Container", runtime })
        })
      )

const container = Effect.acquireRelease(
  Effect.tryPromise({
    try: () => new CassandraContainer("cassandra:5.0").start(),
    catch: (cause) =>
      new BackendError({
        message: `a container runtime answered but the cassandra:5.0 container did not start (${cause instanceof Error ? cause.message : String(cause)}): fix it or ${howToGetOne}`
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

const localCluster = (version: string | undefined) =>
  LocalCassandra.start({ name: "test", nodes: 1, firstAddress: 1, ...(version === undefined ? {} : { version }) }).pipe(
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
 * it closes; an existing cluster is left alone). `localVersion` is the Cassandra release the local manager runs
 * (default: its newest 5.0.x).
 *
 * @since 0.1.0
 * @category constructors
 */
export const acquireBackend = (
  options: { readonly localVersion?: string } = {}
): Effect.Effect<Backend, BackendError, Scope.Scope> =>
  Effect.gen(function* () {
    const choice = yield* chooseBackend(process.env.CASSANDRA_CONTACT_POINTS, findContainerRuntime)
    switch (choice._tag) {
      case "Existing": {
        const backend = existingCluster(choice.contactPoints)
        yield* Effect.logInfo(
          `Cassandra for the tests: the existing cluster at ${backend.contactPoints.join(", ")} (CASSANDRA_CONTACT_POINTS)`
        )
        return backend
      }
      case "Container":
        yield* Effect.logInfo(`Cassandra for the tests: a cassandra:5.0 container (${choice.runtime.description})`)
        return yield* container
      case "Local":
        yield* Effect.logInfo(
          "Cassandra for the tests: a local node on 127.0.0.1 (no CASSANDRA_CONTACT_POINTS, no container runtime found by testcontainers; tools/cassandra)"
        )
        return yield* localCluster(options.localVersion)
    }
  })
