/**
 * Schema agreement after a schema change: every node that is up reports the same schema version. The driver waits
 * for it itself after a schema change it sent, but only up to `maxSchemaAgreementWaitSeconds`, reporting a timeout
 * as `info.isSchemaInAgreement === false` that nothing reads, and not at all when that setting is 0; the migrator
 * waits on until its own deadline and fails when agreement does not come.
 */
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"

// Leading spaces and comments. Each repetition takes one whitespace character or one whole comment, and the
// alternatives start differently, so the match is linear.
const leading = /^(?:\s|--[^\n]*(?:\n|$)|\/\/[^\n]*(?:\n|$)|\/\*(?:[^*]|\*(?!\/))*\*\/)*/
// Then the first keyword: CREATE, ALTER and DROP are the statements that change the schema.
const schemaChange = new RegExp(`${leading.source}(?:create|alter|drop)\\b`, "i")

/** Whether a CQL statement changes the schema (CREATE, ALTER or DROP of anything). */
export const isSchemaChange = (text: string): boolean => schemaChange.test(text)

// Where a schema change's literals can start: a column list, a string, a function body, a map, an option, `WITH`.
const firstLiteral = /[('${=;]|\bwith\b/i
const headLimit = 128

/**
 * A schema change named for an error message: its keywords and the name of what it changes, up to where a literal
 * could start (`CREATE ROLE app WITH PASSWORD = '…'` is named `CREATE ROLE app`), at most 128 characters.
 */
export const schemaChangeHead = (text: string): string => {
  const statement = text.slice(leading.exec(text)?.[0].length ?? 0)
  const end = statement.search(firstLiteral)
  const head = (end === -1 ? statement : statement.slice(0, end)).trimEnd()
  return head.length > headLimit ? `${head.slice(0, headLimit)}…` : head
}

/**
 * Milliseconds on the process's monotonic clock: deadlines here and in the migrator's lease measure elapsed time only,
 * so a wall clock set back or forward (by NTP or by hand) neither extends nor cuts them.
 */
export const monotonicMillis: Effect.Effect<number> = Effect.sync(() => performance.now())

const localVersionQuery = "SELECT schema_version FROM system.local"
const peerVersionsQuery = "SELECT rpc_address, schema_version FROM system.peers"
const pollInterval = "200 millis"
/** Bound of the coordinator's answer; a slower answer counts as no agreement yet, and it is asked again. */
const versionReadTimeoutMillis = 2_000

const readOn = (client: Cassandra.Client, host: Cassandra.Host, query: string) =>
  Effect.tryPromise(() =>
    client.execute(query, [], {
      host,
      prepare: false,
      isIdempotent: true,
      consistency: Cassandra.types.consistencies.localOne,
      readTimeout: versionReadTimeoutMillis
    })
  )

/** A peer the driver knows to be down: left out, as the Java driver does; it takes the schema when it is back. */
const isKnownDown = (client: Cassandra.Client, rpcAddress: unknown, port: string) => {
  const host = client.hosts.get(`${String(rpcAddress)}:${port}`)
  return host !== undefined && !host.isUp()
}

/**
 * Whether every node agrees with the coordinator of the schema change on the schema version, as the coordinator
 * sees it: its own version and each peer's, which a peer announces only once it applied the change. (Asking another
 * node could see agreement on the old version, before the news of the change reached it.)
 */
const inAgreement = (client: Cassandra.Client, coordinator: string) =>
  Effect.suspend(() => {
    const host = client.hosts.get(coordinator)
    if (host === undefined) return Effect.succeed(false)
    // The driver keys peers by their rpc_address and the port it connects to, the coordinator's.
    const port = coordinator.slice(coordinator.lastIndexOf(":") + 1)
    return Effect.all([readOn(client, host, localVersionQuery), readOn(client, host, peerVersionsQuery)]).pipe(
      Effect.map(([local, peers]) => {
        const version = String(local.first()?.get("schema_version"))
        return peers.rows.every((peer) => {
          const peerVersion: unknown = peer.get("schema_version")
          // A peer with no schema version yet (still joining) is left out, as the driver does.
          return (
            peerVersion === null ||
            isKnownDown(client, peer.get("rpc_address"), port) ||
            String(peerVersion) === version
          )
        })
      }),
      Effect.orElseSucceed(() => false)
    )
  })

/**
 * Waits until the cluster agrees on the schema after a change coordinated by `coordinator` (`address:port`, as the
 * driver's result reports it), polling; succeeds with the milliseconds waited when it does, fails with them when
 * `timeoutMillis` passed first. Traced as one span.
 *
 * The polls go through the raw client, not the session, on purpose: each must reach the coordinator of the change
 * (the session's load balancing, retries and speculative executions would ask another node, which may agree on the
 * old version); they are the migrator's bookkeeping, not the application's requests, so they are neither throttled
 * behind them nor counted in their metrics (five a second for up to a minute would skew them).
 */
export const awaitSchemaAgreement = (
  client: Cassandra.Client,
  coordinator: string,
  timeoutMillis: number
): Effect.Effect<number, { readonly waitedMillis: number }> =>
  Effect.gen(function* () {
    const start = yield* monotonicMillis
    while (true) {
      const agreed = yield* inAgreement(client, coordinator)
      const waitedMillis = (yield* monotonicMillis) - start
      if (agreed) return waitedMillis
      if (waitedMillis >= timeoutMillis) return yield* Effect.fail({ waitedMillis })
      yield* Effect.sleep(pollInterval)
    }
  }).pipe(Effect.withSpan("Migrator.awaitSchemaAgreement", { attributes: { "cassandra.coordinator": coordinator } }))
