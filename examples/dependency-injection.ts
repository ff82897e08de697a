/**
 * An application whose `UserRepository` depends on the Cassandra session, wired by Layers, with the connection
 * settings read from environment variables:
 *
 *   CASSANDRA_CONTACT_POINTS=127.0.0.1 CASSANDRA_LOCAL_DC=datacenter1 node --conditions=effect-cassandra/source examples/dependency-injection.ts
 *
 * CASSANDRA_USERNAME and CASSANDRA_PASSWORD are used when set.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Config, Context, Effect, Layer, Option, Schema } from "effect"
import { CassandraLayer, CqlSchema, CqlType, Query, Session } from "effect-cassandra"

const keyspace = "example_di"

class User extends Schema.Class<User>("User")({
  id: CqlType.Uuid,
  name: CqlType.Text,
  joined: CqlType.Timestamp
}) {}

class UserRepository extends Context.Service<
  UserRepository,
  {
    readonly save: (user: User) => Effect.Effect<void, unknown>
    readonly findById: (id: string) => Effect.Effect<Option.Option<User>, unknown>
  }
>()("example/UserRepository") {
  static readonly layer = Layer.effect(
    UserRepository,
    Effect.gen(function* () {
      const table = Query.identifier(keyspace, "users")
      yield* Query.cql`CREATE KEYSPACE IF NOT EXISTS ${Query.identifier(keyspace)}
        WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`
      yield* Query.cql`CREATE TABLE IF NOT EXISTS ${table} (id uuid PRIMARY KEY, name text, joined timestamp)`
      const save = CqlSchema.void({
        Request: User,
        execute: (user) =>
          Query.cql`INSERT INTO ${table} (id, name, joined) VALUES (${user.id}, ${user.name}, ${user.joined})`
      })
      const findById = CqlSchema.findOneOption({
        Request: CqlType.Uuid,
        Result: User,
        execute: (id) => Query.cql`SELECT id, name, joined FROM ${table} WHERE id = ${id}`
      })
      const session = yield* Session.Session
      return {
        save: (user) => Effect.provideService(save(user), Session.Session, session),
        findById: (id) => Effect.provideService(findById(id), Session.Session, session)
      }
    })
  )
}

const CassandraLive = CassandraLayer.layerConfig({
  contactPoints: Config.String("CASSANDRA_CONTACT_POINTS").pipe(
    Config.map((points) => points.split(",").map((point) => point.trim()))
  ),
  localDataCenter: Config.String("CASSANDRA_LOCAL_DC").pipe(Config.withDefault("datacenter1")),
  credentials: Config.all({
    username: Config.String("CASSANDRA_USERNAME"),
    password: Config.Redacted("CASSANDRA_PASSWORD")
  }).pipe(Config.option, Config.map(Option.getOrUndefined)),
  applicationName: Config.succeed("dependency-injection-example")
})

const program = Effect.gen(function* () {
  const users = yield* UserRepository
  const ada = new User({ id: crypto.randomUUID(), name: "Ada Lovelace", joined: new Date("1843-07-01T00:00:00Z") })
  yield* users.save(ada)
  const found = yield* users.findById(ada.id)
  yield* Effect.log(`found ${Option.map(found, (user) => user.name).pipe(Option.getOrElse(() => "nobody"))}`)
})

program.pipe(Effect.provide(UserRepository.layer.pipe(Layer.provide(CassandraLive))), NodeRuntime.runMain)
