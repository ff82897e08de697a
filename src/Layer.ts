/**
 * The layers an application provides once at its edge: the session, the raw client and the topology together.
 *
 * @since 0.1.0
 */
import type * as Cassandra from "cassandra-driver"
import type * as Config from "effect/Config"
import * as Layer from "effect/Layer"
import type * as CassandraError from "./CassandraError.ts"
import * as Session from "./Session.ts"
import * as Topology from "./Topology.ts"

/**
 * Everything the library's layers provide.
 *
 * @since 0.1.0
 * @category models
 */
export type Services = Session.Session | Cassandra.Client | Topology.Topology

// Fresh, because layers are memoized by identity: a shared topology layer would follow the first session built.
const withTopology = <E>(session: Layer.Layer<Session.Session | Cassandra.Client, E>) =>
  Layer.provideMerge(Layer.fresh(Topology.layer), session)

/**
 * The session, raw client and topology, from options given in code.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CassandraLayer, Query } from "effect-cassandra"
 *
 * const program = Query.cql`SELECT release_version FROM system.local`.pipe(
 *   Effect.provide(CassandraLayer.layer({ contactPoints: ["127.0.0.1"], localDataCenter: "datacenter1" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Session.Options): Layer.Layer<Services, CassandraError.CassandraError> =>
  withTopology(Session.layer(options))

/**
 * The session, raw client and topology, with options read from configuration.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Wrap<Session.Options>
): Layer.Layer<Services, CassandraError.CassandraError | Config.ConfigError> =>
  withTopology(Session.layerConfig(config))

/**
 * The session and topology over a caller-owned `cassandra-driver` client.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromClient = (
  client: Cassandra.Client,
  options?: Session.ClientSessionOptions
): Layer.Layer<Services, CassandraError.CassandraError> => withTopology(Session.layerFromClient(client, options))
