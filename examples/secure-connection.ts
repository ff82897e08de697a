/**
 * A session over TLS (mutual TLS when a client certificate is given) with a password login, every setting read from
 * environment variables:
 *
 *   CASSANDRA_CONTACT_POINTS=127.0.0.41 CASSANDRA_CA=ca.pem CASSANDRA_CERT=client.pem CASSANDRA_KEY=client.key \
 *   CASSANDRA_KEY_PASSPHRASE=… CASSANDRA_USERNAME=app CASSANDRA_PASSWORD=… \
 *   node --conditions=effect-cassandra/source examples/secure-connection.ts
 *
 * CASSANDRA_CA, CASSANDRA_CERT and CASSANDRA_KEY hold PEM text or the path of a PEM file. The client certificate and
 * key, the key's passphrase and the login are optional; CASSANDRA_LOCAL_DC defaults to datacenter1. The key, its
 * passphrase and the password are read as `Redacted`, so no log or error of the program can show them.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Option } from "effect"
import { CassandraLayer, Query } from "effect-cassandra"

const optional = <A>(config: Config.Config<A>) => config.pipe(Config.option, Config.map(Option.getOrUndefined))

const CassandraLive = CassandraLayer.layerConfig({
  contactPoints: Config.String("CASSANDRA_CONTACT_POINTS").pipe(
    Config.map((points) => points.split(",").map((point) => point.trim()))
  ),
  localDataCenter: Config.String("CASSANDRA_LOCAL_DC").pipe(Config.withDefault("datacenter1")),
  tls: Config.all({
    ca: Config.String("CASSANDRA_CA"),
    cert: optional(Config.String("CASSANDRA_CERT")),
    key: optional(Config.Redacted("CASSANDRA_KEY")),
    passphrase: optional(Config.Redacted("CASSANDRA_KEY_PASSPHRASE"))
  }),
  credentials: optional(
    Config.all({
      username: Config.String("CASSANDRA_USERNAME"),
      password: Config.Redacted("CASSANDRA_PASSWORD")
    })
  ),
  applicationName: Config.succeed("secure-connection-example")
})

const program = Effect.gen(function* () {
  const [local] = yield* Query.cql`SELECT cluster_name, release_version FROM system.local`
  yield* Effect.log(`connected to ${local?.cluster_name} (Cassandra ${local?.release_version}) over TLS`)
})

program.pipe(Effect.provide(CassandraLive), NodeRuntime.runMain)
