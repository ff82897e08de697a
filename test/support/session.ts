import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Query from "effect-cassandra/Query"
import type * as Session from "effect-cassandra/Session"
import { testConnection } from "./cassandra.ts"

/** Session options pointing at the integration suite's Cassandra, plus any overrides. */
export const testOptions = (overrides: Partial<Session.Options> = {}): Session.Options => {
  const connection = testConnection()
  return {
    contactPoints: connection.contactPoints,
    localDataCenter: connection.localDataCenter,
    ...(connection.credentials === undefined
      ? {}
      : {
          credentials: {
            username: connection.credentials.username,
            password: Redacted.make(connection.credentials.password)
          }
        }),
    ...overrides
  }
}

let keyspaceCounter = 0

/** A keyspace name unique to this test process. */
export const uniqueKeyspace = (prefix: string) =>
  `${prefix}_${process.pid}_${Date.now() % 100_000}_${keyspaceCounter++}`

/** The session layer of the integration suite, with a fresh keyspace created (and dropped at the end). */
export const sessionWithKeyspace = (prefix: string, overrides: Partial<Session.Options> = {}) => {
  const keyspace = uniqueKeyspace(prefix)
  const admin = CassandraLayer.layer(testOptions(overrides))
  const create = Layer.effectDiscard(
    Effect.acquireRelease(
      Query.cql`CREATE KEYSPACE ${Query.identifier(keyspace)} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`.pipe(
        Effect.orDie
      ),
      () => Query.cql`DROP KEYSPACE IF EXISTS ${Query.identifier(keyspace)}`.pipe(Effect.ignore)
    )
  ).pipe(Layer.provide(admin))
  return { keyspace, layer: CassandraLayer.layer(testOptions({ keyspace, ...overrides })).pipe(Layer.provide(create)) }
}

/** A `kv (k int, v text)` table and a `series (p int, c int)` table holding the 10 rows of partition 1. */
export const createKvAndSeries = Effect.gen(function* () {
  yield* Query.cql`CREATE TABLE IF NOT EXISTS kv (k int PRIMARY KEY, v text)`
  yield* Query.cql`CREATE TABLE IF NOT EXISTS series (p int, c int, PRIMARY KEY (p, c))`
  yield* Effect.forEach(
    Array.from({ length: 10 }, (_, c) => c),
    (c) => Query.cql`INSERT INTO series (p, c) VALUES (${1}, ${c})`,
    { discard: true }
  )
})
